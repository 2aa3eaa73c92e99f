// Metrics registry and the Prometheus text exposition (format 0.0.4); see metrics.hpp.
#include "deskstream/core/metrics.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <variant>

namespace deskstream::core::metrics {

namespace {

bool validName(const std::string& n, bool allowColon) {
    if (n.empty()) return false;
    for (size_t i = 0; i < n.size(); ++i) {
        const char c = n[i];
        const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                           (allowColon && c == ':');
        if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
    }
    return true;
}

bool endsWith(const std::string& s, const char* suffix) {
    const size_t n = std::strlen(suffix);
    return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}

void addDouble(std::atomic<std::uint64_t>& bits, double d) {
    std::uint64_t old = bits.load(std::memory_order_relaxed);
    for (;;) {
        double v;
        std::memcpy(&v, &old, sizeof v);
        v += d;
        std::uint64_t next;
        std::memcpy(&next, &v, sizeof next);
        if (bits.compare_exchange_weak(old, next, std::memory_order_relaxed)) return;
    }
}

void appendLabels(std::string& out, const std::vector<std::string>& names,
                  const std::vector<std::string>& values, const char* extraName = nullptr,
                  const std::string& extraValue = {}) {
    if (names.empty() && !extraName) return;
    out += '{';
    for (size_t i = 0; i < names.size(); ++i) {
        if (i) out += ',';
        out += names[i];
        out += "=\"";
        out += escapeLabelValue(values[i]);
        out += '"';
    }
    if (extraName) {
        if (!names.empty()) out += ',';
        out += extraName;
        out += "=\"";
        out += extraValue;
        out += '"';
    }
    out += '}';
}

void appendSample(std::string& out, const std::string& name, const std::vector<std::string>& names,
                  const std::vector<std::string>& values, const std::string& value) {
    out += name;
    appendLabels(out, names, values);
    out += ' ';
    out += value;
    out += '\n';
}

}  // namespace

const char* toString(Type t) {
    switch (t) {
        case Type::Counter:
            return "counter";
        case Type::Gauge:
            return "gauge";
        case Type::Histogram:
            return "histogram";
    }
    return "untyped";
}

// ------------------------------------------------------------------ values

std::uint64_t Gauge::toBits(double v) {
    std::uint64_t b;
    std::memcpy(&b, &v, sizeof b);
    return b;
}

double Gauge::fromBits(std::uint64_t b) {
    double v;
    std::memcpy(&v, &b, sizeof v);
    return v;
}

void Gauge::add(double d) { addDouble(bits_, d); }

Histogram::Histogram(const std::vector<double>& bounds)
    : bounds_(bounds), buckets_(new std::atomic<std::uint64_t>[bounds.size() + 1]) {
    for (size_t i = 0; i <= bounds_.size(); ++i) buckets_[i].store(0, std::memory_order_relaxed);
}

void Histogram::observe(double v) {
    // le semantics: a value equal to a bound belongs to that bound's bucket. NaN goes to +Inf.
    const size_t i =
        static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin());
    buckets_[i].fetch_add(1, std::memory_order_relaxed);
    addDouble(sumBits_, v);
}

Histogram::Snapshot Histogram::snapshot() const {
    Snapshot s;
    s.cumulative.resize(bounds_.size() + 1);
    std::uint64_t running = 0;
    for (size_t i = 0; i <= bounds_.size(); ++i) {
        running += buckets_[i].load(std::memory_order_relaxed);
        s.cumulative[i] = running;
    }
    s.count = running;  // _count equals the +Inf bucket by construction
    const std::uint64_t b = sumBits_.load(std::memory_order_relaxed);
    std::memcpy(&s.sum, &b, sizeof s.sum);
    return s;
}

std::vector<double> exponentialBuckets(double start, double factor, int count) {
    if (start <= 0 || factor <= 1 || count < 1)
        throw std::invalid_argument("exponentialBuckets: start > 0, factor > 1 and count >= 1");
    std::vector<double> out;
    double v = start;
    for (int i = 0; i < count; ++i, v *= factor) out.push_back(v);
    return out;
}

// ------------------------------------------------------------------ families

template <class M>
Family<M>::Family(std::string name, std::vector<std::string> labelNames, std::vector<double> bounds)
    : name_(std::move(name)), labelNames_(std::move(labelNames)), bounds_(std::move(bounds)) {}

template <class M>
M& Family<M>::labels(const std::vector<std::string>& values) {
    if (values.size() != labelNames_.size())
        throw std::invalid_argument("metric " + name_ + ": " + std::to_string(labelNames_.size()) +
                                    " label value(s) expected, got " +
                                    std::to_string(values.size()));
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = children_.find(values);
    if (it != children_.end()) return *it->second;
    std::unique_ptr<M> child;
    if constexpr (std::is_same_v<M, Histogram>)
        child = std::make_unique<M>(bounds_);
    else
        child = std::make_unique<M>();
    M& ref = *child;
    children_.emplace(values, std::move(child));
    return ref;
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

// ------------------------------------------------------------------ registry

struct Registry::Entry {
    std::string name, help;
    Type type = Type::Counter;
    std::vector<std::string> labelNames;
    std::variant<std::monostate, std::unique_ptr<CounterFamily>, std::unique_ptr<GaugeFamily>,
                 std::unique_ptr<HistogramFamily>>
        family;
    std::function<void(const Emit&)> callback;  // set for callback families
};

Registry::Registry() = default;
Registry::~Registry() = default;

Registry::Entry& Registry::entry(const std::string& name, const std::string& help, Type type,
                                 const std::vector<std::string>& labelNames,
                                 const std::vector<double>* bounds) {
    auto bad = [&](const std::string& why) {
        return std::invalid_argument("metric " + name + ": " + why);
    };
    if (!validName(name, true)) throw bad("not a valid metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)");
    if (type == Type::Counter && !endsWith(name, "_total"))
        throw bad("a counter's name ends in _total");
    if (type != Type::Counter && endsWith(name, "_total")) throw bad("only counters end in _total");
    for (const char* reserved : {"_bucket", "_sum", "_count"})
        if (endsWith(name, reserved))
            throw bad(std::string("the suffix ") + reserved + " is reserved");
    for (size_t i = 0; i < labelNames.size(); ++i) {
        const std::string& l = labelNames[i];
        if (!validName(l, false) || l.rfind("__", 0) == 0)
            throw bad("bad label name \"" + l + "\"");
        if (type == Type::Histogram && l == "le")
            throw bad("a histogram may not have the label le");
        if (std::find(labelNames.begin(), labelNames.begin() + static_cast<long>(i), l) !=
            labelNames.begin() + static_cast<long>(i))
            throw bad("label \"" + l + "\" given twice");
    }
    if (bounds) {
        if (bounds->empty()) throw bad("a histogram needs at least one bucket bound");
        for (size_t i = 0; i < bounds->size(); ++i) {
            if (!std::isfinite((*bounds)[i]))
                throw bad("bucket bounds are finite (+Inf is implicit)");
            if (i && (*bounds)[i] <= (*bounds)[i - 1])
                throw bad("bucket bounds must increase strictly");
        }
    }
    if (help.empty()) throw bad("HELP text is required");
    // Another family's samples must not collide with ours (x_count vs histogram x, ...).
    for (const auto& kv : entries_) {
        if (kv.first == name) continue;
        const Entry& e = *kv.second;
        const auto clash = [](const std::string& hist, const std::string& other) {
            return other == hist + "_bucket" || other == hist + "_sum" || other == hist + "_count";
        };
        if ((e.type == Type::Histogram && clash(e.name, name)) ||
            (type == Type::Histogram && clash(name, e.name)))
            throw bad("its samples would clash with those of " + e.name);
    }
    auto it = entries_.find(name);
    if (it != entries_.end()) {
        Entry& e = *it->second;
        if (e.type != type || e.labelNames != labelNames || e.callback ||
            (bounds && std::get<std::unique_ptr<HistogramFamily>>(e.family)->bounds() != *bounds))
            throw bad("already registered with another type, labels, buckets or as a callback");
        return e;
    }
    auto e = std::make_unique<Entry>();
    e->name = name;
    e->help = help;
    e->type = type;
    e->labelNames = labelNames;
    Entry& ref = *e;
    entries_.emplace(name, std::move(e));
    return ref;
}

CounterFamily& Registry::counter(const std::string& name, const std::string& help,
                                 const std::vector<std::string>& labelNames) {
    std::lock_guard<std::mutex> lock(mutex_);
    Entry& e = entry(name, help, Type::Counter, labelNames, nullptr);
    if (std::holds_alternative<std::monostate>(e.family)) {
        e.family = std::make_unique<CounterFamily>(name, labelNames, std::vector<double>{});
        if (labelNames.empty())
            std::get<std::unique_ptr<CounterFamily>>(e.family)->get();  // 0 from the start
    }
    return *std::get<std::unique_ptr<CounterFamily>>(e.family);
}

GaugeFamily& Registry::gauge(const std::string& name, const std::string& help,
                             const std::vector<std::string>& labelNames) {
    std::lock_guard<std::mutex> lock(mutex_);
    Entry& e = entry(name, help, Type::Gauge, labelNames, nullptr);
    if (std::holds_alternative<std::monostate>(e.family)) {
        e.family = std::make_unique<GaugeFamily>(name, labelNames, std::vector<double>{});
        if (labelNames.empty()) std::get<std::unique_ptr<GaugeFamily>>(e.family)->get();
    }
    return *std::get<std::unique_ptr<GaugeFamily>>(e.family);
}

HistogramFamily& Registry::histogram(const std::string& name, const std::string& help,
                                     const std::vector<double>& bounds,
                                     const std::vector<std::string>& labelNames) {
    std::lock_guard<std::mutex> lock(mutex_);
    Entry& e = entry(name, help, Type::Histogram, labelNames, &bounds);
    if (std::holds_alternative<std::monostate>(e.family)) {
        e.family = std::make_unique<HistogramFamily>(name, labelNames, bounds);
        if (labelNames.empty()) std::get<std::unique_ptr<HistogramFamily>>(e.family)->get();
    }
    return *std::get<std::unique_ptr<HistogramFamily>>(e.family);
}

void Registry::callback(const std::string& name, const std::string& help, Type type,
                        const std::vector<std::string>& labelNames,
                        std::function<void(const Emit&)> fn) {
    if (type == Type::Histogram)
        throw std::invalid_argument("metric " + name + ": callbacks are counters or gauges");
    if (!fn) throw std::invalid_argument("metric " + name + ": empty callback");
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = entries_.find(name);
    if (it != entries_.end() && it->second->callback) entries_.erase(it);  // replaced
    Entry& e = entry(name, help, type, labelNames, nullptr);
    if (!std::holds_alternative<std::monostate>(e.family) || e.callback)
        throw std::invalid_argument("metric " + name + ": already registered");
    e.callback = std::move(fn);
}

void Registry::remove(const std::string& name) {
    std::lock_guard<std::mutex> lock(mutex_);
    entries_.erase(name);
}

bool Registry::contains(const std::string& name) const {
    std::lock_guard<std::mutex> lock(mutex_);
    return entries_.count(name) != 0;
}

// ------------------------------------------------------------------ exposition

std::string escapeLabelValue(const std::string& v) {
    std::string out;
    out.reserve(v.size());
    for (char c : v) {
        if (c == '\\')
            out += "\\\\";
        else if (c == '"')
            out += "\\\"";
        else if (c == '\n')
            out += "\\n";
        else
            out += c;
    }
    return out;
}

std::string escapeHelp(const std::string& v) {
    std::string out;
    out.reserve(v.size());
    for (char c : v) {
        if (c == '\\')
            out += "\\\\";
        else if (c == '\n')
            out += "\\n";
        else
            out += c;
    }
    return out;
}

std::string formatValue(double v) {
    if (std::isnan(v)) return "NaN";
    if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
    char buf[64];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    return std::string(buf, r.ptr);
}

std::string Registry::render() const {
    std::string out;
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& kv : entries_) {
        const Entry& e = *kv.second;
        out += "# HELP " + e.name + " " + escapeHelp(e.help) + "\n";
        out += "# TYPE " + e.name + " " + toString(e.type) + "\n";
        if (e.callback) {
            e.callback([&](const std::vector<std::string>& values, double value) {
                if (values.size() != e.labelNames.size())
                    return;  // a caller's slip: skip, never crash
                appendSample(out, e.name, e.labelNames, values, formatValue(value));
            });
        } else if (auto* c = std::get_if<std::unique_ptr<CounterFamily>>(&e.family)) {
            (*c)->forEach([&](const std::vector<std::string>& values, const Counter& m) {
                appendSample(out, e.name, e.labelNames, values, std::to_string(m.value()));
            });
        } else if (auto* g = std::get_if<std::unique_ptr<GaugeFamily>>(&e.family)) {
            (*g)->forEach([&](const std::vector<std::string>& values, const Gauge& m) {
                appendSample(out, e.name, e.labelNames, values, formatValue(m.value()));
            });
        } else if (auto* h = std::get_if<std::unique_ptr<HistogramFamily>>(&e.family)) {
            (*h)->forEach([&](const std::vector<std::string>& values, const Histogram& m) {
                const Histogram::Snapshot s = m.snapshot();
                for (size_t i = 0; i <= m.bounds().size(); ++i) {
                    out += e.name + "_bucket";
                    appendLabels(out, e.labelNames, values, "le",
                                 i < m.bounds().size() ? formatValue(m.bounds()[i]) : "+Inf");
                    out += ' ' + std::to_string(s.cumulative[i]) + '\n';
                }
                appendSample(out, e.name + "_sum", e.labelNames, values, formatValue(s.sum));
                appendSample(out, e.name + "_count", e.labelNames, values, std::to_string(s.count));
            });
        }
    }
    return out;
}

}  // namespace deskstream::core::metrics
