#include "deskstream/host/config.hpp"

#include "deskstream/host/plugin_registry.hpp"

#include <Poco/Environment.h>
#include <Poco/UUIDGenerator.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

namespace deskstream::host {

namespace fs = std::filesystem;

namespace {

const std::set<std::string>& hostSections() {
    static const std::set<std::string> s = {"host", "relay", "heartbeat", "auth", "agent"};
    return s;
}

std::string trim(const std::string& s) {
    size_t b = s.find_first_not_of(" \t\r\n");
    if (b == std::string::npos) return "";
    size_t e = s.find_last_not_of(" \t\r\n");
    return s.substr(b, e - b + 1);
}

std::vector<std::string> split(const std::string& s, char sep) {
    std::vector<std::string> out;
    std::string cur;
    std::istringstream in(s);
    while (std::getline(in, cur, sep)) out.push_back(trim(cur));
    if (!s.empty() && s.back() == sep) out.push_back("");
    return out;
}

// The whole value must be the number: strtoll stops at a NUL byte, so "8\0x" (or a NUL
// alone) would otherwise pass as 8 (or 0) and later reach std::stoi (found by fuzzing:
// docs/fuzzing.md).
bool parseInt(const std::string& v, long long& out) {
    if (v.empty()) return false;
    char* end = nullptr;
    errno = 0;
    out = std::strtoll(v.c_str(), &end, 10);
    return errno == 0 && end != v.c_str() && end == v.c_str() + v.size() &&
           !std::isspace(static_cast<unsigned char>(v[0]));
}

bool parseBool(const std::string& v, bool& out) {
    if (v == "true" || v == "yes" || v == "on" || v == "1") return out = true, true;
    if (v == "false" || v == "no" || v == "off" || v == "0") return out = false, true;
    return false;
}

std::string joinChoices(const std::vector<std::string>& c) {
    std::string s;
    for (const auto& x : c) s += (s.empty() ? "" : "|") + x;
    return s;
}

std::string rangeText(long long min, long long max) {
    return "is out of range [" + std::to_string(min) + ", " + std::to_string(max) + "]";
}

// Returns "" when `v` is a valid value of `spec`, else what is wrong.
std::string checkValue(const KeySpec& spec, const std::string& v) {
    switch (spec.type) {
        case ValueType::String:
        case ValueType::List:
            return "";
        case ValueType::Int: {
            long long n;
            if (!parseInt(v, n)) return "is not an integer";
            if (n < spec.min || n > spec.max) return rangeText(spec.min, spec.max);
            return "";
        }
        case ValueType::Bool: {
            bool b;
            return parseBool(v, b) ? "" : "is not a boolean (true|false)";
        }
        case ValueType::Choice:
            if (std::find(spec.choices.begin(), spec.choices.end(), v) == spec.choices.end())
                return "is not one of " + joinChoices(spec.choices);
            return "";
        case ValueType::HostPort: {
            size_t colon = v.rfind(':');
            if (colon == std::string::npos || colon == 0 || colon + 1 == v.size())
                return "is not host:port";
            long long port;
            if (!parseInt(v.substr(colon + 1), port))
                return "is not host:port (the port is not a number)";
            if (port < 0 || port > 65535) return "has a port out of range [0, 65535]";
            return "";
        }
        case ValueType::Monitors: {
            if (v == "all") return "";
            for (const auto& part : split(v, ',')) {
                long long n;
                if (!parseInt(part, n) || n < 0 || n > 255)
                    return "is not 'all' or a comma-separated list of monitor indices (0..255)";
            }
            return "";
        }
    }
    return "";
}

// Checks a plugin key against the plugin's declaration.
std::string checkPluginValue(const ds_config_key& k, const std::string& v) {
    switch (k.type) {
        case DS_CONFIG_STRING:
            if (k.allowed) {
                std::vector<std::string> choices = split(k.allowed, '|');
                if (std::find(choices.begin(), choices.end(), v) == choices.end())
                    return std::string("is not one of ") + k.allowed;
            }
            return "";
        case DS_CONFIG_INT: {
            long long n;
            if (!parseInt(v, n)) return "is not an integer";
            if (k.min_value <= k.max_value && (n < k.min_value || n > k.max_value))
                return rangeText(k.min_value, k.max_value);
            return "";
        }
        case DS_CONFIG_BOOL: {
            bool b;
            return parseBool(v, b) ? "" : "is not a boolean (true|false)";
        }
        case DS_CONFIG_DOUBLE: {
            char* end = nullptr;
            std::strtod(v.c_str(), &end);
            return (end != v.c_str() && end == v.c_str() + v.size()) ? "" : "is not a number";
        }
    }
    return "has a type the plugin declared wrongly";
}

}  // namespace

std::string Problem::text() const {
    std::string s = severity == Severity::Warning ? "warning: " : "error: ";
    if (!origin.empty()) s += origin + ": ";
    std::string subject = section.empty() ? "" : "[" + section + "]";
    if (!key.empty()) subject += (subject.empty() ? "" : " ") + key + " = '" + value + "'";
    s += subject.empty() ? message : subject + ": " + message;
    return s;
}

std::vector<IniEntry> parseIni(const std::string& text, const std::string& origin,
                               std::vector<Problem>& problems) {
    std::vector<IniEntry> out;
    std::istringstream in(text);
    std::string raw, section;
    int lineNo = 0;
    while (std::getline(in, raw)) {
        ++lineNo;
        std::string line = trim(raw);
        if (line.empty() || line[0] == ';' || line[0] == '#') continue;
        std::string where = origin + ":" + std::to_string(lineNo);
        if (line[0] == '[') {
            size_t close = line.find(']');
            std::string rest = close == std::string::npos ? "" : trim(line.substr(close + 1));
            bool trailingJunk = !rest.empty() && rest[0] != ';' && rest[0] != '#';
            if (close == std::string::npos || trailingJunk) {
                problems.push_back({Problem::Severity::Error, where, "", "", "",
                                    "malformed section header '" + line + "'"});
                section.clear();
                continue;
            }
            section = trim(line.substr(1, close - 1));
            // A header alone is recorded with an empty key so that empty unknown sections are
            // reported too.
            out.push_back({section, "", "", lineNo});
            continue;
        }
        size_t eq = line.find('=');
        if (eq == std::string::npos) {
            problems.push_back({Problem::Severity::Error, where, section.empty() ? "?" : section,
                                "", "", "line '" + line + "' is not 'key = value'"});
            continue;
        }
        std::string key = trim(line.substr(0, eq));
        std::string value = line.substr(eq + 1);
        // Inline comment: ';' or '#' preceded by whitespace.
        for (size_t i = 1; i < value.size(); ++i) {
            if ((value[i] == ';' || value[i] == '#') &&
                (value[i - 1] == ' ' || value[i - 1] == '\t')) {
                value.resize(i);
                break;
            }
        }
        value = trim(value);
        if (key.empty()) {
            problems.push_back({Problem::Severity::Error, where, section, "", value, "empty key"});
            continue;
        }
        if (section.empty()) {
            problems.push_back(
                {Problem::Severity::Error, where, "", key, value, "key outside of any section"});
            continue;
        }
        out.push_back({section, key, value, lineNo});
    }
    return out;
}

std::string executableDir() {
#if defined(__linux__)
    std::error_code ec;
    fs::path p = fs::read_symlink("/proc/self/exe", ec);
    if (!ec) return p.parent_path().string();
#endif
    return "";
}

std::string resolveFolder(const std::string& entry) {
    std::string e = entry;
    const std::string token = "{exe_dir}";
    for (size_t pos; (pos = e.find(token)) != std::string::npos;)
        e.replace(pos, token.size(), executableDir());
    fs::path p(e);
    if (p.is_relative()) p = fs::current_path() / p;
    return p.lexically_normal().string();
}

Configuration::Configuration()
    : defaultsLayer_(new Poco::Util::MapConfiguration),
      fileLayer_(new Poco::Util::MapConfiguration),
      overrideLayer_(new Poco::Util::MapConfiguration),
      layered_(new Poco::Util::LayeredConfiguration) {
    for (const auto& k : schema())
        defaultsLayer_->setString(std::string(k.section) + "." + k.key, k.defaultValue);
    // Lower priority numbers take precedence.
    layered_->add(Poco::Util::AbstractConfiguration::Ptr(overrideLayer_, true), 0);
    layered_->add(Poco::Util::AbstractConfiguration::Ptr(fileLayer_, true), 10);
    layered_->add(Poco::Util::AbstractConfiguration::Ptr(defaultsLayer_, true), 20);
    instanceId_ = Poco::UUIDGenerator::defaultGenerator().createRandom().toString();
}

void Configuration::loadFile(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw ConfigError("cannot read configuration file '" + path + "'");
    std::ostringstream text;
    text << in.rdbuf();
    loadString(text.str(), path);
    filePath_ = path;
}

void Configuration::loadString(const std::string& text, const std::string& origin) {
    file_.clear();
    fileLayer_->clear();
    syntaxProblems_.clear();
    for (auto& sec : origins_)
        for (auto it = sec.second.begin(); it != sec.second.end();)
            it = it->second == "--set" ? std::next(it) : sec.second.erase(it);
    fileEntries_ = parseIni(text, origin, syntaxProblems_);
    for (const auto& e : fileEntries_) {
        std::string where = origin + ":" + std::to_string(e.line);
        if (e.key.empty()) {
            file_[e.section];
            origins_[e.section].emplace("", where);
            continue;
        }
        file_[e.section][e.key] = e.value;
        origins_[e.section][e.key] = where;
        fileLayer_->setString(e.section + "." + e.key, e.value);
    }
}

void Configuration::set(const std::string& assignment) {
    size_t eq = assignment.find('=');
    if (eq == std::string::npos || eq == 0)
        throw ConfigError("--set '" + assignment + "': expected section.key=value");
    std::string path = trim(assignment.substr(0, eq));
    std::string value = trim(assignment.substr(eq + 1));
    size_t dot = path.find('.');
    if (dot == std::string::npos || dot == 0 || dot + 1 == path.size())
        throw ConfigError("--set '" + assignment + "': expected section.key=value");
    std::string first = path.substr(0, dot);
    std::string section, key;
    if (first == "capture" || first == "encoder" || first == "store") {
        size_t dot2 = path.find('.', dot + 1);
        if (dot2 == std::string::npos || dot2 + 1 == path.size())
            throw ConfigError("--set '" + assignment + "': expected " + first +
                              ".<plugin>.key=value");
        section = path.substr(0, dot2);
        key = path.substr(dot2 + 1);
    } else if (hostSections().count(first)) {
        section = first;
        key = path.substr(dot + 1);
    } else {
        size_t last = path.rfind('.');
        section = path.substr(0, last);
        key = path.substr(last + 1);
    }
    set(section, key, value);
}

void Configuration::set(const std::string& section, const std::string& key,
                        const std::string& value) {
    overrides_[section][key] = value;
    origins_[section][key] = "--set";
    overrideLayer_->setString(section + "." + key, value);
}

std::optional<std::string> Configuration::get(const std::string& section,
                                              const std::string& key) const {
    for (const auto* layer : {&overrides_, &file_}) {
        auto s = layer->find(section);
        if (s == layer->end()) continue;
        auto k = s->second.find(key);
        if (k != s->second.end()) return k->second;
    }
    if (const KeySpec* spec = findKey(section, key)) return std::string(spec->defaultValue);
    return std::nullopt;
}

std::vector<std::string> Configuration::userKeys(const std::string& section) const {
    std::set<std::string> keys;
    for (const auto* layer : {&overrides_, &file_}) {
        auto s = layer->find(section);
        if (s == layer->end()) continue;
        for (const auto& kv : s->second) keys.insert(kv.first);
    }
    return {keys.begin(), keys.end()};
}

std::vector<std::string> Configuration::userSections() const {
    std::set<std::string> s;
    for (const auto& kv : file_) s.insert(kv.first);
    for (const auto& kv : overrides_) s.insert(kv.first);
    return {s.begin(), s.end()};
}

std::vector<Problem> Configuration::validate(const PluginRegistry* plugins) const {
    std::vector<Problem> problems = syntaxProblems_;
    auto where = [&](const std::string& section, const std::string& key) -> std::string {
        auto s = origins_.find(section);
        if (s == origins_.end()) return "";
        auto k = s->second.find(key);
        if (k != s->second.end()) return k->second;
        return s->second.empty() ? "" : s->second.begin()->second;
    };
    auto error = [&](const std::string& section, const std::string& key, const std::string& value,
                     const std::string& message) {
        problems.push_back(
            {Problem::Severity::Error, where(section, key), section, key, value, message});
    };

    for (const auto& section : userSections()) {
        std::string kind, name;
        if (hostSections().count(section)) {
            for (const auto& key : userKeys(section)) {
                std::string value = *get(section, key);
                const KeySpec* spec = findKey(section, key);
                if (!spec) {
                    error(section, key, value, "unknown key");
                    continue;
                }
                std::string msg = checkValue(*spec, value);
                if (!msg.empty()) error(section, key, value, msg);
            }
        } else if (isPluginSection(section, &kind, &name)) {
            if (!plugins) continue;
            const PluginInfo* p = plugins->find(*kindFromName(kind), name);
            if (!p) {
                problems.push_back({Problem::Severity::Warning, where(section, ""), section, "", "",
                                    "no " + kind + " plugin named '" + name +
                                        "' is loaded; its keys were not checked"});
                continue;
            }
            for (const auto& key : userKeys(section)) {
                std::string value = *get(section, key);
                auto it =
                    std::find_if(p->configKeys.begin(), p->configKeys.end(),
                                 [&](const ds_config_key& k) { return k.key && key == k.key; });
                if (it == p->configKeys.end()) {
                    error(section, key, value,
                          "unknown key (plugin '" + name + "' " + p->version +
                              " does not declare it)");
                    continue;
                }
                std::string msg = checkPluginValue(*it, value);
                if (!msg.empty()) error(section, key, value, msg);
            }
        } else {
            error(section, "", "", "unknown section");
        }
    }

    // Rules between keys, checked only when each value is valid on its own.
    auto intOf = [&](const char* section, const char* key, long long& out) {
        const KeySpec* spec = findKey(section, key);
        std::string v = *get(section, key);
        return checkValue(*spec, v).empty() && parseInt(v, out);
    };
    long long q, qmin, qmax, lo, hi;
    if (intOf("agent", "quality", q) && intOf("agent", "quality.min", qmin) &&
        intOf("agent", "quality.max", qmax) && !(qmin <= q && q <= qmax))
        error("agent", "quality", std::to_string(q),
              "must lie within quality.min .. quality.max (" + std::to_string(qmin) + " .. " +
                  std::to_string(qmax) + ")");
    if (intOf("agent", "adapt.low_latency_ms", lo) && intOf("agent", "adapt.high_latency_ms", hi) &&
        lo >= hi)
        error("agent", "adapt.low_latency_ms", std::to_string(lo),
              "must be below adapt.high_latency_ms (" + std::to_string(hi) + ")");
    // [agent] metrics_listen: empty (off) or host:port, checked as [relay] listen is.
    const std::string metricsListen = *get("agent", "metrics_listen");
    if (!metricsListen.empty()) {
        const std::string why = checkValue(*findKey("relay", "listen"), metricsListen);
        if (!why.empty()) error("agent", "metrics_listen", metricsListen, why + " (or empty: off)");
    }

    // [relay] health_listen: empty (off) or host:port, checked as [relay] listen is.
    const std::string healthListen = *get("relay", "health_listen");
    if (!healthListen.empty()) {
        const std::string why = checkValue(*findKey("relay", "listen"), healthListen);
        if (!why.empty()) error("relay", "health_listen", healthListen, why + " (or empty: off)");
    }

    // [relay] TLS needs both files; the agent's TLS keys mean nothing without a wss:// URL.
    const std::string tlsCert = *get("relay", "tls.cert"), tlsKey = *get("relay", "tls.key");
    if (tlsCert.empty() != tlsKey.empty())
        error("relay", tlsCert.empty() ? "tls.key" : "tls.cert", tlsCert.empty() ? tlsKey : tlsCert,
              "TLS needs both tls.cert and tls.key");
    if (get("agent", "relay_url")->rfind("wss://", 0) != 0) {
        for (const char* key : {"tls.ca", "tls.insecure"}) {
            const std::string v = *get("agent", key);
            if (v != findKey("agent", key)->defaultValue)
                problems.push_back({Problem::Severity::Warning, where("agent", key), "agent", key,
                                    v, "has no effect: [agent] relay_url is not a wss:// URL"});
        }
    }

    // The plugins the role needs must be there.
    if (plugins) {
        std::string role = *get("host", "role");
        auto need = [&](ds_plugin_kind kind, const char* section, const char* key) {
            std::string name = *get(section, key);
            try {
                plugins->require(kind, name, "");
            } catch (const std::exception& e) {
                error(section, key, name, e.what());
            }
        };
        if (role == "relay" || role == "all") need(DS_KIND_STORE, "relay", "store");
        if (role == "agent" || role == "all") {
            if (*get("agent", "capture") == "auto") {
                if (plugins->ofKind(DS_KIND_CAPTURE).empty())
                    error(
                        "agent", "capture", "auto", "no capture plugin is loaded (searched " + [&] {
                            std::string s;
                            for (const auto& f : plugins->folders())
                                s += (s.empty() ? "" : ", ") + f;
                            return s;
                        }() + ")");
            } else {
                need(DS_KIND_CAPTURE, "agent", "capture");
            }
            need(DS_KIND_ENCODER, "agent", "encoder");
        }
    }
    return problems;
}

// ---------------------------------------------------------------- typed views
namespace {
std::string invalid(const Configuration& c, const char* section, const char* key,
                    const std::string& msg) {
    return "[" + std::string(section) + "] " + key + " = '" + c.get(section, key).value_or("") +
           "': " + msg;
}
}  // namespace

#define DS_VALUE(section, key) value(*this, section, key)
namespace {
std::string value(const Configuration& c, const char* section, const char* key) {
    const KeySpec* spec = findKey(section, key);
    std::string v = c.get(section, key).value_or("");
    if (spec) {
        std::string msg = checkValue(*spec, v);
        if (!msg.empty()) throw ConfigError(invalid(c, section, key, msg));
    }
    return v;
}
long long intValue(const Configuration& c, const char* section, const char* key) {
    long long n = 0;
    parseInt(value(c, section, key), n);
    return n;
}
}  // namespace

HostConfig Configuration::host() const {
    HostConfig h;
    h.roleName = DS_VALUE("host", "role");
    h.role = h.roleName == "relay" ? Role::Relay : h.roleName == "agent" ? Role::Agent : Role::All;
    for (const auto& entry : split(DS_VALUE("host", "plugins.path"), ';'))
        if (!entry.empty()) h.pluginsPath.push_back(resolveFolder(entry));
    h.stateDir = resolveFolder(DS_VALUE("host", "state_dir"));
    h.logLevel = DS_VALUE("host", "log.level");
    return h;
}

RelayConfig Configuration::relay() const {
    RelayConfig r;
    std::string listen = DS_VALUE("relay", "listen");
    size_t colon = listen.rfind(':');
    r.listenHost = listen.substr(0, colon);
    if (r.listenHost.size() > 2 && r.listenHost.front() == '[' && r.listenHost.back() == ']')
        r.listenHost = r.listenHost.substr(1, r.listenHost.size() - 2);
    r.listenPort = static_cast<uint16_t>(std::stoi(listen.substr(colon + 1)));
    r.publicUrl = DS_VALUE("relay", "public_url");
    r.store = DS_VALUE("relay", "store");
    r.webRoot = resolveFolder(DS_VALUE("relay", "web_root"));
    r.maxMessageBytes = intValue(*this, "relay", "max_message_bytes");
    r.viewerQueue = static_cast<int>(intValue(*this, "relay", "viewer_queue"));
    r.reaperIntervalMs = intValue(*this, "relay", "reaper.interval_ms");
    r.registrationTtlMs = intValue(*this, "relay", "registration.ttl_ms");
    r.instanceId = DS_VALUE("relay", "instance_id");
    if (r.instanceId.empty()) r.instanceId = instanceId_;
    r.maxThreads = static_cast<int>(intValue(*this, "relay", "max_threads"));
    r.ioThreads = static_cast<int>(intValue(*this, "relay", "io_threads"));
    r.maxQueued = static_cast<int>(intValue(*this, "relay", "max_queued"));
    r.maxViewers = static_cast<int>(intValue(*this, "relay", "max_viewers"));
    r.commandTtlMs = intValue(*this, "relay", "command.ttl_ms");
    r.commandRetentionMs = intValue(*this, "relay", "command.retention_ms");
    r.commandLeaseMs = intValue(*this, "relay", "command.lease_ms");
    r.viewerAckTimeoutMs = intValue(*this, "relay", "viewer_ack_timeout_ms");
    r.tlsCert = DS_VALUE("relay", "tls.cert");
    r.tlsKey = DS_VALUE("relay", "tls.key");
    if (r.tlsCert.empty() != r.tlsKey.empty())
        throw ConfigError(invalid(*this, "relay", r.tlsCert.empty() ? "tls.key" : "tls.cert",
                                  "TLS needs both tls.cert and tls.key"));
    r.frameTimeoutMs = intValue(*this, "relay", "frame_timeout_ms");
    r.httpIdleTimeoutMs = intValue(*this, "relay", "http_idle_timeout_ms");
    r.healthListen = DS_VALUE("relay", "health_listen");
    if (!r.healthListen.empty()) {
        const std::string why = checkValue(*findKey("relay", "listen"), r.healthListen);
        if (!why.empty())
            throw ConfigError(invalid(*this, "relay", "health_listen", why + " (or empty: off)"));
    }
    return r;
}

HeartbeatConfig Configuration::heartbeat() const {
    HeartbeatConfig h;
    h.intervalMs = intValue(*this, "heartbeat", "interval_ms");
    h.missedLimit = static_cast<int>(intValue(*this, "heartbeat", "missed_limit"));
    h.handshakeTimeoutMs = intValue(*this, "heartbeat", "handshake_timeout_ms");
    return h;
}

AuthConfig Configuration::auth() const {
    AuthConfig a;
    a.secret = DS_VALUE("auth", "secret");
    for (const auto& o : split(DS_VALUE("auth", "allowed_origins"), ','))
        if (!o.empty()) a.allowedOrigins.push_back(o);
    a.maxConnectionsPerIp = static_cast<int>(intValue(*this, "auth", "max_connections_per_ip"));
    a.authFailuresPerMinute = static_cast<int>(intValue(*this, "auth", "auth_failures_per_minute"));
    a.authBackoffMs = intValue(*this, "auth", "auth_backoff_ms");
    a.authBackoffMaxMs = intValue(*this, "auth", "auth_backoff_max_ms");
    a.inputPerSecond = static_cast<int>(intValue(*this, "auth", "input_per_second"));
    a.commandsPerMinute = static_cast<int>(intValue(*this, "auth", "commands_per_minute"));
    a.httpCommandsPerMinute = static_cast<int>(intValue(*this, "auth", "http_commands_per_minute"));
    return a;
}

AgentConfig Configuration::agent() const {
    AgentConfig a;
    a.relayUrl = DS_VALUE("agent", "relay_url");
    a.clientId = DS_VALUE("agent", "client_id");
    if (a.clientId.empty()) a.clientId = Poco::Environment::nodeName();
    a.name = DS_VALUE("agent", "name");
    if (a.name.empty()) a.name = a.clientId;
    a.token = DS_VALUE("agent", "token");
    a.capture = DS_VALUE("agent", "capture");
    a.encoder = DS_VALUE("agent", "encoder");
    a.fps = static_cast<int>(intValue(*this, "agent", "fps"));
    a.quality = static_cast<int>(intValue(*this, "agent", "quality"));
    a.qualityMin = static_cast<int>(intValue(*this, "agent", "quality.min"));
    a.qualityMax = static_cast<int>(intValue(*this, "agent", "quality.max"));
    if (!(a.qualityMin <= a.quality && a.quality <= a.qualityMax))
        throw ConfigError(
            invalid(*this, "agent", "quality", "must lie within quality.min .. quality.max"));
    a.maxInFlight = static_cast<int>(intValue(*this, "agent", "max_in_flight"));
    a.adaptHighLatencyMs = intValue(*this, "agent", "adapt.high_latency_ms");
    a.adaptLowLatencyMs = intValue(*this, "agent", "adapt.low_latency_ms");
    if (a.adaptLowLatencyMs >= a.adaptHighLatencyMs)
        throw ConfigError(
            invalid(*this, "agent", "adapt.low_latency_ms", "must be below adapt.high_latency_ms"));
    a.adaptStepDown = static_cast<int>(intValue(*this, "agent", "adapt.step_down"));
    a.adaptStepUp = static_cast<int>(intValue(*this, "agent", "adapt.step_up"));
    std::string monitors = DS_VALUE("agent", "monitors");
    if (monitors != "all")
        for (const auto& m : split(monitors, ','))
            a.monitors.push_back(static_cast<uint32_t>(std::stoul(m)));
    a.layout = DS_VALUE("agent", "layout") == "combined" ? Layout::Combined : Layout::Separate;
    a.tlsCa = DS_VALUE("agent", "tls.ca");
    bool insecure = false;
    parseBool(DS_VALUE("agent", "tls.insecure"), insecure);
    a.tlsInsecure = insecure;
    a.metricsListen = DS_VALUE("agent", "metrics_listen");
    if (!a.metricsListen.empty()) {
        const std::string why = checkValue(*findKey("relay", "listen"), a.metricsListen);
        if (!why.empty())
            throw ConfigError(invalid(*this, "agent", "metrics_listen", why + " (or empty: off)"));
    }
    a.damageEncoding = DS_VALUE("agent", "encoding") == "damage";
    a.damageTile = static_cast<int>(intValue(*this, "agent", "damage.tile"));
    a.damageMaxRects = static_cast<int>(intValue(*this, "agent", "damage.max_rects"));
    a.damageMaxColours = static_cast<int>(intValue(*this, "agent", "damage.max_colours"));
    a.damageLosslessEncoder = DS_VALUE("agent", "damage.lossless_encoder");
    a.damageVideoFrames = static_cast<int>(intValue(*this, "agent", "damage.video_frames"));
    a.damageRefineMs = intValue(*this, "agent", "damage.refine_ms");
    return a;
}
#undef DS_VALUE

}  // namespace deskstream::host
