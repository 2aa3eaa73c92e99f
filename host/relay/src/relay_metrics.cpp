// The relay's metric definitions (names, help, labels, buckets) and the scrape-time families
// that read the relay's state; see relay_metrics.hpp and docs/operations.md.
#include "relay_metrics.hpp"

#include <dirent.h>
#include <unistd.h>

#include <fstream>
#include <set>
#include <sstream>

namespace deskstream::relay {

namespace {

using core::metrics::Emit;
using core::metrics::Type;

// Seconds: 1 ms .. ~16 s, for frame delivery (viewer-reported) latency.
const std::vector<double> kLatencyBuckets = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                             0.25,  0.5,    1,     2.5,  5,     10};
// Seconds: store calls are fast when healthy, seconds when the store is in trouble.
const std::vector<double> kStoreBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                           0.1,    0.25,  0.5,    1,     2.5,  5};
// Seconds: a connection lives from a failed handshake (ms) to days.
const std::vector<double> kDurationBuckets = {0.1, 1, 10, 60, 300, 1800, 3600, 21600, 86400};

const char* kRegistrationNames[] = {"ok", "store_unavailable", "unauthorized", "bad_request"};
const char* kDropNames[] = {"agent_window", "lagging_viewer", "too_large", "invalid"};
const char* kOpenedNames[] = {"accepted", "forbidden_origin", "over_capacity", "bad_upgrade",
                              "shutting_down"};

// Relay events that have a family of their own above; the rest go to events_total.
const std::set<std::string> kBrokenOut = {
    "frames_received",    "frames_forwarded",   "frames_dropped",        "rows_reaped",
    "heartbeat_timeouts", "registrations",      "registration_failures", "store_errors",
    "connections_opened", "connections_closed", "http_requests",         "http_errors"};

// The operations of the store bridge (StoreClient): a fixed set, so the label is bounded.
const char* kStoreOperations[] = {"check",
                                  "register_client",
                                  "touch_client",
                                  "unregister_client",
                                  "list_clients",
                                  "reap_clients",
                                  "unregister_instance_clients",
                                  "upsert_instance",
                                  "list_instances",
                                  "enqueue_command",
                                  "claim_commands",
                                  "complete_command",
                                  "get_command",
                                  "expire_commands",
                                  "purge_commands",
                                  "poll_notifications"};

std::string commandTypeLabel(const std::string& type) {
    core::CommandType t;
    // Command types are validated before they are stored; anything else is not ours to label.
    return core::parseCommandType(type, t) ? type : (type.empty() ? "unknown" : "other");
}

long readStatusField(const char* field) {
    std::ifstream in("/proc/self/status");
    const std::string key = std::string(field) + ":";
    for (std::string line; std::getline(in, line);) {
        if (line.rfind(key, 0) != 0) continue;
        std::istringstream v(line.substr(key.size()));
        long n = -1;
        v >> n;
        return n;
    }
    return -1;
}

long countOpenFds() {
    DIR* d = opendir("/proc/self/fd");
    if (!d) return -1;
    long n = 0;
    while (const dirent* e = readdir(d))
        if (e->d_name[0] != '.') ++n;
    closedir(d);
    return n - 1;  // the descriptor opendir itself holds
}

}  // namespace

RelayMetrics::RelayMetrics(std::shared_ptr<core::metrics::Registry> registry)
    : registry_(registry ? std::move(registry) : std::make_shared<core::metrics::Registry>()) {
    auto& r = *registry_;
    auto& opened = r.counter("deskstream_relay_connections_opened_total",
                             "WebSocket connection requests, by role and how the upgrade ended.",
                             {"role", "outcome"});
    auto& current =
        r.gauge("deskstream_relay_connections",
                "WebSocket connections open now (handshaken or not), by role.", {"role"});
    auto& duration =
        r.histogram("deskstream_relay_connection_duration_seconds",
                    "How long WebSocket connections lasted, by role.", kDurationBuckets, {"role"});
    auto& timeouts = r.counter(
        "deskstream_relay_heartbeat_timeouts_total",
        "Connections closed because the peer stopped answering pings, by role.", {"role"});
    for (Role role : {Role::Agent, Role::Viewer}) {
        for (size_t o = 0; o < opened_[0].size(); ++o)
            opened_[idx(role)][o] = &opened.labels({name(role), kOpenedNames[o]});
        current_[idx(role)] = &current.labels({name(role)});
        duration_[idx(role)] = &duration.labels({name(role)});
        heartbeatTimeouts_[idx(role)] = &timeouts.labels({name(role)});
    }
    auto& regs = r.counter("deskstream_relay_registration_attempts_total",
                           "Agent registration attempts, by result.", {"result"});
    for (size_t i = 0; i < registrations_.size(); ++i)
        registrations_[i] = &regs.labels({kRegistrationNames[i]});
    auto& drops = r.counter("deskstream_relay_frames_dropped_total",
                            "Frames not delivered, by reason: agent_window (the agent skipped "
                            "encoding, reported in agent_stats), lagging_viewer (latest-frame-wins "
                            "in a viewer's queue), too_large, invalid (bad binary header).",
                            {"reason"});
    for (size_t i = 0; i < drops_.size(); ++i) drops_[i] = &drops.labels({kDropNames[i]});
    deliveryLatency_ =
        &r.histogram("deskstream_relay_frame_delivery_latency_seconds",
                     "Frame delivery latency reported by viewers in their frame acks.",
                     kLatencyBuckets)
             .get();
    commands_ = &r.counter("deskstream_relay_commands_total",
                           "Commands that reached a final status, by command type and status "
                           "(done, failed, expired).",
                           {"type", "status"});
    storeLatency_ = &r.histogram("deskstream_relay_store_operation_duration_seconds",
                                 "Duration of store calls, by operation (poll_notifications, a "
                                 "long poll, is not timed).",
                                 kStoreBuckets, {"operation"});
    storeErrors_ = &r.counter("deskstream_relay_store_errors_total",
                              "Store calls that failed (not_found answers are not failures), by "
                              "operation.",
                              {"operation"});
    // Every operation's series exists from the start, so rate() sees the first error.
    for (const char* op : kStoreOperations) storeErrors_->labels({op});
    reaperRuns_ = &r.counter("deskstream_relay_reaper_runs_total",
                             "Runs of the maintenance job that reaps stale registrations.")
                       .get();
}

RelayMetrics::~RelayMetrics() {
    for (const auto& n : callbacks_) registry_->remove(n);
}

void RelayMetrics::expose(RelayState state) {
    auto rp = std::make_shared<const RelayState>(std::move(state));
    auto add = [&](const std::string& n, const std::string& help, Type type,
                   std::vector<std::string> labels, std::function<void(const Emit&)> fn) {
        registry_->callback(n, help, type, labels, std::move(fn));
        callbacks_.push_back(n);
    };
    auto fromCounter = [rp](const char* counter) {
        return [rp, counter](const Emit& emit) {
            const auto all = rp->counters();
            auto it = all.find(counter);
            emit({}, it == all.end() ? 0.0 : static_cast<double>(it->second));
        };
    };
    add("deskstream_relay_frames_received_total", "Binary frames received from agents.",
        Type::Counter, {}, fromCounter("frames_received"));
    add("deskstream_relay_frames_forwarded_total", "Frames written to viewers.", Type::Counter, {},
        fromCounter("frames_forwarded"));
    add("deskstream_relay_reaped_rows_total", "Stale registrations removed by the reaper.",
        Type::Counter, {}, fromCounter("rows_reaped"));
    add("deskstream_relay_http_requests_total", "HTTP requests (WebSocket upgrades included).",
        Type::Counter, {}, fromCounter("http_requests"));
    add("deskstream_relay_http_errors_total", "HTTP requests answered with an error status.",
        Type::Counter, {}, fromCounter("http_errors"));
    add("deskstream_relay_events_total",
        "Other relay events by kind (bad input, timeouts, commands queued and delivered...); "
        "see docs/operations.md.",
        Type::Counter, {"event"}, [rp](const Emit& emit) {
            for (const auto& [n, v] : rp->counters())
                if (!kBrokenOut.count(n)) emit({n}, static_cast<double>(v));
        });
    add("deskstream_relay_agents", "Agents registered on this relay now.", Type::Gauge, {},
        [rp](const Emit& emit) { emit({}, static_cast<double>(rp->agents())); });
    add("deskstream_relay_viewers", "Viewers handshaken on this relay now.", Type::Gauge, {},
        [rp](const Emit& emit) { emit({}, static_cast<double>(rp->viewers())); });
    exposeProcessMetrics(*registry_, DESKSTREAM_VERSION);
}

void RelayMetrics::connectionCount(Role role, core::RelayCounter counter, uint64_t n, bool binary) {
    using C = core::RelayCounter;
    if (counter == C::HeartbeatTimeouts) heartbeatTimeouts_[idx(role)]->inc(n);
    if (counter == C::Registrations) registrations_[idx(Registration::Ok)]->inc(n);
    // A viewer's binary message is bad input, not a frame; before the handshake it is counted
    // as binary_before_handshake.
    if (!binary || role != Role::Agent) return;
    if (counter == C::TooLarge)
        framesDropped(Drop::TooLarge, n);
    else if (counter == C::BadFrames)
        framesDropped(Drop::Invalid, n);
}

void RelayMetrics::connectionEnded(Role role, std::chrono::steady_clock::time_point startedAt) {
    current_[idx(role)]->dec();
    duration_[idx(role)]->observe(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - startedAt).count());
}

void RelayMetrics::agentStats(const std::optional<core::AgentStats>& previous,
                              const core::AgentStats& now) {
    const uint64_t before = previous ? previous->framesDroppedWindow : 0;
    // A smaller figure means the agent restarted its count (a new agent process).
    const uint64_t added = now.framesDroppedWindow >= before ? now.framesDroppedWindow - before
                                                             : now.framesDroppedWindow;
    if (added) drops_[idx(Drop::AgentWindow)]->inc(added);
}

void RelayMetrics::commandFinished(const std::string& type, const char* status, uint64_t n) {
    commands_->labels({commandTypeLabel(type), status}).inc(n);
}

void RelayMetrics::storeCall(const char* operation, double seconds, bool timed,
                             const StoreStatus& status) {
    if (timed) storeLatency_->labels({operation}).observe(seconds);
    if (status.code < 0 && status.code != DS_ERR_NOT_FOUND) storeErrors_->labels({operation}).inc();
}

void exposeProcessMetrics(core::metrics::Registry& registry, const std::string& version) {
    if (registry.contains("process_resident_memory_bytes")) return;
    registry.callback("process_resident_memory_bytes", "Resident memory size in bytes.",
                      Type::Gauge, {}, [](const Emit& emit) {
                          const long kb = readStatusField("VmRSS");
                          if (kb >= 0) emit({}, static_cast<double>(kb) * 1024.0);
                      });
    registry.callback("process_open_fds", "Number of open file descriptors.", Type::Gauge, {},
                      [](const Emit& emit) {
                          const long n = countOpenFds();
                          if (n >= 0) emit({}, static_cast<double>(n));
                      });
    registry.callback("process_threads", "Number of OS threads in the process.", Type::Gauge, {},
                      [](const Emit& emit) {
                          const long n = readStatusField("Threads");
                          if (n >= 0) emit({}, static_cast<double>(n));
                      });
    registry.callback("deskstream_build_info", "Always 1; the labels carry the build's version.",
                      Type::Gauge, {"version"},
                      [version](const Emit& emit) { emit({version}, 1.0); });
}

}  // namespace deskstream::relay
