// The schema of every host configuration key. docs/configuration.md and examples/deskstream.ini
// are checked against this table by tests/host (config_docs_test).
#include "deskstream/host/config.hpp"

#include <regex>

namespace deskstream::host {

namespace {
using T = ValueType;
const long long kDay = 86400000LL;

std::vector<KeySpec> makeSchema() {
    return {
        // [host]
        {"host", "role", T::Choice, "all", 0, 0, {"relay", "agent", "all"},
         "what this process runs: the relay, the agent, or both"},
        {"host", "plugins.path", T::String, "{exe_dir}/../lib/deskstream/plugins;{exe_dir}/../plugins", 0, 0, {},
         "folders scanned for plugins, ';'-separated; relative entries are resolved against the "
         "current directory; {exe_dir} is the folder of the deskstream executable"},
        {"host", "state_dir", T::String, "var", 0, 0, {},
         "folder for the SQLite file and other local state (relative: to the current directory)"},
        {"host", "log.level", T::Choice, "information", 0, 0,
         {"trace", "debug", "information", "notice", "warning", "error", "critical", "fatal", "none"},
         "lowest level of log lines written"},
        {"host", "log.format", T::Choice, "text", 0, 0, {"text", "json"},
         "log line format: text (one readable line) or json (one JSON object per line with time, "
         "level, logger, message, client_id, connection_id, instance_id)"},
        // [relay]
        {"relay", "listen", T::HostPort, "127.0.0.1:8080", 0, 0, {},
         "address and port of the HTTP/WebSocket server (port 0: any free port)"},
        {"relay", "public_url", T::String, "http://127.0.0.1:8080", 0, 0, {},
         "URL advertised to other instances and printed as the viewer URL"},
        {"relay", "store", T::String, "sqlite", 0, 0, {}, "store plugin name"},
        {"relay", "web_root", T::String, "{exe_dir}/../share/deskstream/web", 0, 0, {},
         "folder of the viewer and dashboard files; {exe_dir} as in [host] plugins.path"},
        {"relay", "max_message_bytes", T::Int, "16777216", 1024, 1LL << 30, {},
         "largest WebSocket message accepted"},
        {"relay", "viewer_queue", T::Int, "3", 1, 64, {},
         "frames held per viewer before latest-frame-wins"},
        {"relay", "reaper.interval_ms", T::Int, "30000", 100, kDay, {},
         "period of the job that removes stale registrations"},
        {"relay", "registration.ttl_ms", T::Int, "60000", 1000, kDay, {},
         "a registration not refreshed for this long is stale"},
        {"relay", "instance_id", T::String, "", 0, 0, {},
         "this relay instance's id in the store; empty: a UUID kept in state_dir/relay-instance-id"},
        {"relay", "max_threads", T::Int, "512", 2, 4096, {},
         "HTTP server threads (one per open WebSocket)"},
        {"relay", "max_queued", T::Int, "256", 1, 65536, {},
         "connections waiting for a thread before new ones are refused"},
        {"relay", "max_viewers", T::Int, "200", 1, 100000, {},
         "viewer connections accepted at once over all desktops"},
        {"relay", "command.ttl_ms", T::Int, "300000", 1000, kDay, {},
         "pending or delivered commands older than this expire with a reason"},
        {"relay", "command.retention_ms", T::Int, "604800000", 1000, 365 * kDay, {},
         "finished (done, failed, expired) commands are deleted this long after completion"},
        {"relay", "command.lease_ms", T::Int, "30000", 100, 3600000, {},
         "a delivered command without a result is delivered again after this"},
        {"relay", "viewer_ack_timeout_ms", T::Int, "2000", 100, 60000, {},
         "a viewer that acknowledges nothing for this long is skipped (lagging)"},
        // [heartbeat]
        {"heartbeat", "interval_ms", T::Int, "5000", 100, 3600000, {}, "ping period"},
        {"heartbeat", "missed_limit", T::Int, "3", 1, 100, {},
         "pongs missed in a row before the connection is closed"},
        {"heartbeat", "handshake_timeout_ms", T::Int, "5000", 100, 600000, {},
         "time a new connection has to send its handshake"},
        // [auth]
        {"auth", "secret", T::String, "", 0, 0, {},
         "HS256 key for tokens; empty: loopback-only, no authentication"},
        {"auth", "allowed_origins", T::List, "", 0, 0, {},
         "comma-separated Origins accepted for viewers; empty: no Origin check"},
        // [agent]
        {"agent", "relay_url", T::String, "ws://127.0.0.1:8080/ws/agent", 0, 0, {},
         "WebSocket URL of the relay's agent endpoint"},
        {"agent", "client_id", T::String, "", 0, 0, {}, "this desktop's id; empty: the host name"},
        {"agent", "name", T::String, "", 0, 0, {}, "display name; empty: the client id"},
        {"agent", "token", T::String, "", 0, 0, {}, "token presented to the relay (when [auth] secret is set)"},
        {"agent", "capture", T::String, "auto", 0, 0, {},
         "capture plugin name, or auto: the highest-ranked capture plugin whose probe succeeds"},
        {"agent", "encoder", T::String, "jpeg", 0, 0, {}, "encoder plugin name"},
        {"agent", "fps", T::Int, "8", 1, 1000, {}, "frames per second sent at most"},
        {"agent", "quality", T::Int, "75", 0, 100, {}, "starting encoder quality"},
        {"agent", "quality.min", T::Int, "30", 0, 100, {}, "lowest quality adaptation may use"},
        {"agent", "quality.max", T::Int, "90", 0, 100, {}, "highest quality adaptation may use"},
        {"agent", "max_in_flight", T::Int, "10", 1, 1000, {}, "frames sent and not yet acknowledged"},
        {"agent", "adapt.high_latency_ms", T::Int, "500", 1, 600000, {},
         "acknowledgement latency above which quality steps down"},
        {"agent", "adapt.low_latency_ms", T::Int, "100", 0, 600000, {},
         "acknowledgement latency below which quality steps up"},
        {"agent", "adapt.step_down", T::Int, "5", 0, 100, {}, "quality decrease per step"},
        {"agent", "adapt.step_up", T::Int, "2", 0, 100, {}, "quality increase per step"},
        {"agent", "monitors", T::Monitors, "all", 0, 0, {},
         "monitors streamed: all, or a comma-separated list of indices (0,1)"},
        {"agent", "layout", T::Choice, "separate", 0, 0, {"separate", "combined"},
         "separate streams per monitor, or one side-by-side picture"},
        {"agent", "metrics_listen", T::String, "", 0, 0, {},
         "host:port serving the agent's GET /metrics when it runs alone; empty: off"},
    };
}
} // namespace

const std::vector<KeySpec> &schema() {
    static const std::vector<KeySpec> s = makeSchema();
    return s;
}

const KeySpec *findKey(const std::string &section, const std::string &key) {
    for (const auto &k : schema())
        if (section == k.section && key == k.key) return &k;
    return nullptr;
}

bool isPluginSection(const std::string &section, std::string *kind, std::string *name) {
    static const std::regex re("^(capture|encoder|store)\\.([a-z0-9_]+)$");
    std::smatch m;
    if (!std::regex_match(section, m, re)) return false;
    if (kind) *kind = m[1];
    if (name) *name = m[2];
    return true;
}

} // namespace deskstream::host
