// deskstream core: a small metrics registry (counters, gauges, histograms with fixed buckets,
// labelled families) and its Prometheus text exposition, format 0.0.4 (docs/operations.md).
//
// Threading: updating a metric (Counter::inc, Gauge::set, Histogram::observe) is lock-free
// (relaxed atomics), so the frame path pays a few atomic adds. Resolving a labelled child
// (Family::labels) takes the family's mutex: resolve children once, keep the reference (it stays
// valid for the registry's lifetime), and update it on the hot path. render() takes the
// registry's mutex and each family's in turn; callbacks run under the registry's mutex.
//
// Names are checked when a family is created (std::invalid_argument on a bad name, a counter
// without "_total", a reserved suffix or a clash with an existing family of another shape), so a
// registry always renders text that `promtool check metrics` accepts.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace deskstream::core::metrics {

enum class Type { Counter, Gauge, Histogram };
const char* toString(Type t);  // "counter", "gauge", "histogram"

class Counter {
public:
    void inc(std::uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
    std::uint64_t value() const { return value_.load(std::memory_order_relaxed); }

private:
    std::atomic<std::uint64_t> value_{0};
};

class Gauge {
public:
    void set(double v) { bits_.store(toBits(v), std::memory_order_relaxed); }
    void add(double d);
    void inc() { add(1); }
    void dec() { add(-1); }
    double value() const { return fromBits(bits_.load(std::memory_order_relaxed)); }

private:
    static std::uint64_t toBits(double v);
    static double fromBits(std::uint64_t b);
    std::atomic<std::uint64_t> bits_{0};  // a double's bits: 0 is +0.0
};

class Histogram {
public:
    /// `bounds`: the upper bounds of the finite buckets, strictly increasing (checked by the
    /// family); the +Inf bucket is implicit.
    explicit Histogram(const std::vector<double>& bounds);
    void observe(double v);
    struct Snapshot {
        std::vector<std::uint64_t> cumulative;  // one per bound, then +Inf (== count)
        std::uint64_t count = 0;
        double sum = 0;
    };
    Snapshot snapshot() const;
    const std::vector<double>& bounds() const { return bounds_; }

private:
    std::vector<double> bounds_;
    std::unique_ptr<std::atomic<std::uint64_t>[]>
        buckets_;  // per bucket, not cumulative; +Inf last
    std::atomic<std::uint64_t> sumBits_{0};
};

/// Exponential bucket bounds: start, start*factor, ... (count bounds).
std::vector<double> exponentialBuckets(double start, double factor, int count);

/// A named metric with fixed label names and one child per distinct tuple of label values.
template <class M>
class Family {
public:
    /// The child for these label values (created on first use); one value per label name,
    /// else std::invalid_argument. The reference stays valid for the registry's lifetime.
    M& labels(const std::vector<std::string>& values);
    /// The only child of a family without labels.
    M& get() { return labels({}); }
    const std::string& name() const { return name_; }
    const std::vector<std::string>& labelNames() const { return labelNames_; }

    // Used by the registry.
    Family(std::string name, std::vector<std::string> labelNames, std::vector<double> bounds);
    template <class F>
    void forEach(F&& fn) const {
        std::lock_guard<std::mutex> lock(mutex_);
        for (const auto& kv : children_) fn(kv.first, *kv.second);
    }
    const std::vector<double>& bounds() const { return bounds_; }

private:
    std::string name_;
    std::vector<std::string> labelNames_;
    std::vector<double> bounds_;  // histograms only
    mutable std::mutex mutex_;
    std::map<std::vector<std::string>, std::unique_ptr<M>> children_;
};

using CounterFamily = Family<Counter>;
using GaugeFamily = Family<Gauge>;
using HistogramFamily = Family<Histogram>;

/// Emits one sample of a callback family: label values (one per label name) and the value.
using Emit = std::function<void(const std::vector<std::string>& labelValues, double value)>;

class Registry {
public:
    Registry();
    ~Registry();
    Registry(const Registry&) = delete;
    Registry& operator=(const Registry&) = delete;

    /// Get-or-create: asking again with the same name, type and label names returns the same
    /// family (so two components may share one); any other clash throws std::invalid_argument.
    /// Counter names end in "_total".
    CounterFamily& counter(const std::string& name, const std::string& help,
                           const std::vector<std::string>& labelNames = {});
    GaugeFamily& gauge(const std::string& name, const std::string& help,
                       const std::vector<std::string>& labelNames = {});
    HistogramFamily& histogram(const std::string& name, const std::string& help,
                               const std::vector<double>& bounds,
                               const std::vector<std::string>& labelNames = {});
    /// A counter or gauge family whose samples a callback produces at each render (values kept
    /// elsewhere: process figures, sizes of live tables). The callback must not touch this
    /// registry. Replaces a callback family of the same name; remove() it before whatever the
    /// callback reads goes away.
    void callback(const std::string& name, const std::string& help, Type type,
                  const std::vector<std::string>& labelNames, std::function<void(const Emit&)> fn);
    void remove(const std::string& name);
    bool contains(const std::string& name) const;

    /// The text exposition (format 0.0.4), families sorted by name.
    std::string render() const;
    static constexpr const char* kContentType = "text/plain; version=0.0.4; charset=utf-8";

private:
    struct Entry;
    Entry& entry(const std::string& name, const std::string& help, Type type,
                 const std::vector<std::string>& labelNames, const std::vector<double>* bounds);
    mutable std::mutex mutex_;
    std::map<std::string, std::unique_ptr<Entry>> entries_;
};

// Text format helpers (exposed for tests).
std::string escapeLabelValue(const std::string& v);  // \ " and newline escaped
std::string escapeHelp(const std::string& v);        // \ and newline escaped
std::string formatValue(double v);                   // shortest round-trip; +Inf, -Inf, NaN

}  // namespace deskstream::core::metrics
