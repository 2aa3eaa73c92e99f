// deskstream host configuration: the INI model, its schema, validation and typed accessors.
//
// Layers, highest precedence first: --set overrides, the INI file, the schema defaults.
// Everything the rest of the program needs is read through the typed structs below
// (HostConfig, RelayConfig, ...) so that no other module parses configuration strings.
#pragma once

#include <Poco/AutoPtr.h>
#include <Poco/Util/LayeredConfiguration.h>
#include <Poco/Util/MapConfiguration.h>

#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace deskstream::host {

class PluginRegistry;

// Thrown for a configuration that cannot be used (a file that cannot be read, a malformed
// --set, a typed accessor asked for a value that does not validate).
class ConfigError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// One finding of validation. `text()` is the line printed by --check-config.
struct Problem {
    enum class Severity { Error, Warning };
    Severity severity = Severity::Error;
    std::string origin;  // "file.ini:12", "--set", or "" for derived checks
    std::string section;
    std::string key;  // empty for a whole-section problem
    std::string value;
    std::string message;  // what is wrong, e.g. "is not an integer"
    std::string text() const;
};

// The value types of the schema.
enum class ValueType {
    String,
    Int,
    Bool,
    Choice,    // one of `choices`
    HostPort,  // host:port with port 0..65535
    Monitors,  // "all" or a comma-separated list of monitor indices
    List,      // comma-separated strings (may be empty)
};

struct KeySpec {
    const char* section;
    const char* key;
    ValueType type;
    const char* defaultValue;
    long long min = 0, max = 0;        // Int: inclusive range
    std::vector<std::string> choices;  // Choice
    const char* description = "";
};

// Every host key (sections host, relay, heartbeat, auth, agent). Plugin sections
// ([capture.x], [encoder.x], [store.x]) are described by the plugins' descriptors.
const std::vector<KeySpec>& schema();
const KeySpec* findKey(const std::string& section, const std::string& key);
// "capture.x11" -> true (a plugin section: kind.name with kind capture|encoder|store).
bool isPluginSection(const std::string& section, std::string* kind = nullptr,
                     std::string* name = nullptr);

enum class Role { Relay, Agent, All };
enum class Layout { Separate, Combined };

struct HostConfig {
    Role role = Role::All;
    std::string roleName;                  // "relay" | "agent" | "all"
    std::vector<std::string> pluginsPath;  // folders, {exe_dir} expanded, made absolute
    std::string stateDir;                  // absolute
    std::string logLevel;                  // Poco level name
    bool runsRelay() const { return role != Role::Agent; }
    bool runsAgent() const { return role != Role::Relay; }
};

struct RelayConfig {
    std::string listenHost;
    uint16_t listenPort = 8080;
    std::string publicUrl;
    std::string store;
    std::string webRoot;  // absolute
    long long maxMessageBytes = 0;
    int viewerQueue = 0;
    long long reaperIntervalMs = 0;
    long long registrationTtlMs = 0;
    std::string instanceId;  // configured, or a random UUID chosen once per process
    int maxThreads = 0;
    int ioThreads = 0;
    int maxQueued = 0;
    int maxViewers = 0;
    long long commandTtlMs = 0;
    long long commandRetentionMs = 0;
    long long commandLeaseMs = 0;
    long long viewerAckTimeoutMs = 0;
    std::string tlsCert, tlsKey;   // both empty: no TLS
    long long frameTimeoutMs = 0;  // -> RelayOptions::receiveTimeoutMs
    long long httpIdleTimeoutMs = 0;
    std::string healthListen;  // host:port of the probe listener; empty: off
};

struct HeartbeatConfig {
    long long intervalMs = 0;
    int missedLimit = 0;
    long long handshakeTimeoutMs = 0;
};

struct AuthConfig {
    std::string secret;  // never log it
    std::vector<std::string> allowedOrigins;
    // Limits against abuse (docs/security.md).
    int maxConnectionsPerIp = 256;
    int authFailuresPerMinute = 20;
    int64_t authBackoffMs = 30000;
    int64_t authBackoffMaxMs = 900000;
    int inputPerSecond = 200;
    int commandsPerMinute = 120;
    int httpCommandsPerMinute = 120;
};

struct AgentConfig {
    std::string relayUrl;
    std::string clientId;  // configured, or the host name
    std::string name;      // configured, or clientId
    std::string token;     // never log it
    std::string capture;   // "auto" or a capture plugin name
    std::string encoder;
    int fps = 0;
    int quality = 0, qualityMin = 0, qualityMax = 0;
    int maxInFlight = 0;
    long long adaptHighLatencyMs = 0, adaptLowLatencyMs = 0;
    int adaptStepDown = 0, adaptStepUp = 0;
    std::vector<uint32_t> monitors;  // empty: all monitors
    Layout layout = Layout::Separate;
    std::string metricsListen;   // host:port of the agent's own /metrics; empty: off
    std::string tlsCa;           // wss://: PEM CA file; empty: the system CA store
    bool tlsInsecure = false;    // wss://: no certificate check (tests only)
    bool damageEncoding = true;  // encoding = damage (else full)
    int damageTile = 64, damageMaxRects = 16, damageMaxColours = 48;
    std::string damageLosslessEncoder;  // empty: the main encoder
    int damageVideoFrames = 8;
    long long damageRefineMs = 500;  // 0: never
};

// Reads INI text: "[section]", "key = value", full-line comments starting with ';' or '#',
// and inline comments introduced by whitespace followed by ';' or '#'. Keys keep their case.
struct IniEntry {
    std::string section, key, value;
    int line = 0;
};
std::vector<IniEntry> parseIni(const std::string& text, const std::string& origin,
                               std::vector<Problem>& problems);

// The configuration of one deskstream process.
class Configuration {
public:
    Configuration();

    // Loads an INI file (replacing a previously loaded file). Throws ConfigError when the file
    // cannot be read; syntax problems are kept and reported by validate().
    void loadFile(const std::string& path);
    void loadString(const std::string& text, const std::string& origin = "<string>");
    // Applies "section.key=value" (the part before the LAST '.' preceding '=' that names a
    // known section... see docs/configuration.md). Throws ConfigError when malformed.
    void set(const std::string& assignment);
    void set(const std::string& section, const std::string& key, const std::string& value);

    // The value in force (override > file > schema default); nullopt when unset and without
    // a default (plugin keys).
    std::optional<std::string> get(const std::string& section, const std::string& key) const;
    // Keys of a section that the user set (file or --set), sorted.
    std::vector<std::string> userKeys(const std::string& section) const;
    std::vector<std::string> userSections() const;
    const std::string& filePath() const { return filePath_; }

    // All problems: syntax, unknown sections/keys, bad types, ranges, choices, cross-key rules
    // and, when `plugins` is given, plugin sections and the plugins the role needs.
    std::vector<Problem> validate(const PluginRegistry* plugins) const;

    // Typed views. Throw ConfigError naming section, key and value when a value is invalid.
    HostConfig host() const;
    RelayConfig relay() const;
    HeartbeatConfig heartbeat() const;
    AuthConfig auth() const;
    AgentConfig agent() const;

    // The merged view as a Poco configuration ("section.key" properties), e.g. for
    // createView("encoder.jpeg"). Includes defaults.
    const Poco::Util::AbstractConfiguration& poco() const { return *layered_; }

private:
    std::vector<IniEntry> fileEntries_;
    std::vector<Problem> syntaxProblems_;
    std::map<std::string, std::map<std::string, std::string>> file_, overrides_;
    std::map<std::string, std::map<std::string, std::string>> origins_;  // section -> key -> where
    std::string filePath_;
    std::string instanceId_;  // random, chosen once
    Poco::AutoPtr<Poco::Util::MapConfiguration> defaultsLayer_, fileLayer_, overrideLayer_;
    Poco::AutoPtr<Poco::Util::LayeredConfiguration> layered_;
};

// Expands "{exe_dir}" and makes a relative folder absolute against the current directory.
std::string resolveFolder(const std::string& entry);
// Directory of the running executable (from /proc/self/exe), "" when unknown.
std::string executableDir();

}  // namespace deskstream::host
