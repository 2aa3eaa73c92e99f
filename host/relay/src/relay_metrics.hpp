// The relay's Prometheus metric set: its families in a core::metrics::Registry, and the children
// the relay's code paths update, resolved once so an update is one atomic add. Every name, label
// and the reason each label set is bounded: docs/operations.md.
#pragma once

#include "deskstream/core/metrics.hpp"
#include "deskstream/core/protocol.hpp"
#include "deskstream/core/relay_connection.hpp"
#include "deskstream/relay/process_metrics.hpp"
#include "deskstream/relay/store_client.hpp"

#include <array>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace deskstream::relay {

class RelayMetrics {
public:
    enum class Role { Agent, Viewer };
    enum class Registration { Ok, StoreUnavailable, Unauthorized, BadRequest };
    enum class Drop { AgentWindow, LaggingViewer, TooLarge, Invalid };
    // How a WebSocket upgrade request ended (before any message was read).
    enum class Opened { Accepted, ForbiddenOrigin, OverCapacity, BadUpgrade, ShuttingDown };

    // `registry` null: the relay keeps its own.
    explicit RelayMetrics(std::shared_ptr<core::metrics::Registry> registry);
    // Removes the callback families that read `relay` (the registry may outlive the relay).
    ~RelayMetrics();
    RelayMetrics(const RelayMetrics&) = delete;
    RelayMetrics& operator=(const RelayMetrics&) = delete;

    // What the scrape-time families read from the relay (its event counters, registered
    // agents, viewers); the callbacks must stay valid until this object is destroyed.
    struct RelayState {
        std::function<std::map<std::string, uint64_t>()> counters;
        std::function<size_t()> agents;
        std::function<size_t()> viewers;
    };
    // Registers the families computed at scrape time from `state` and the process figures.
    void expose(RelayState state);
    std::string render() const { return registry_->render(); }
    const std::shared_ptr<core::metrics::Registry>& registry() const { return registry_; }

    void connectionOpened(Role role, Opened outcome) { opened_[idx(role)][idx(outcome)]->inc(); }
    void connectionStarted(Role role) { current_[idx(role)]->inc(); }
    void connectionEnded(Role role, std::chrono::steady_clock::time_point startedAt);
    void registration(Registration r) { registrations_[idx(r)]->inc(); }
    // A Count action of a connection's core::RelayConnection onto the labelled families: the
    // one place where core's counters meet labels (heartbeat timeouts by role; registrations
    // as result "ok"; a binary message of an agent refused as too large or invalid is a
    // dropped frame). `binary`: the action answers a binary message. Failed registrations are
    // not derived here: their label needs the cause, which only the registry's answer or the
    // refusal carries (Session classifies them where it handles those).
    void connectionCount(Role role, core::RelayCounter counter, uint64_t n, bool binary);
    void heartbeatTimeout(Role role) { heartbeatTimeouts_[idx(role)]->inc(); }
    void framesDropped(Drop reason, uint64_t n = 1) { drops_[idx(reason)]->inc(n); }
    // agent_stats carries the agent's cumulative window drops: the increase since `previous`.
    void agentStats(const std::optional<core::AgentStats>& previous, const core::AgentStats& now);
    // A viewer's frame_ack (latency in ms, validated 0..3600000 by the codec).
    void deliveryLatencyMs(int64_t ms) {
        deliveryLatency_->observe(static_cast<double>(ms) / 1000.0);
    }
    // A command reached a final status (done, failed, expired); type as stored.
    void commandFinished(const std::string& type, const char* status, uint64_t n = 1);
    void reaperRun() { reaperRuns_->inc(); }
    // One store call (the store bridge's observer): latency and errors by operation.
    void storeCall(const char* operation, double seconds, bool timed, const StoreStatus& status);

    static const char* name(Role r) { return r == Role::Agent ? "agent" : "viewer"; }

private:
    template <class E>
    static size_t idx(E e) {
        return static_cast<size_t>(e);
    }

    std::shared_ptr<core::metrics::Registry> registry_;
    std::vector<std::string> callbacks_;  // names registered by expose(), removed by ~RelayMetrics
    std::array<std::array<core::metrics::Counter*, 5>, 2> opened_{};
    std::array<core::metrics::Gauge*, 2> current_{};
    std::array<core::metrics::Histogram*, 2> duration_{};
    std::array<core::metrics::Counter*, 4> registrations_{};
    std::array<core::metrics::Counter*, 2> heartbeatTimeouts_{};
    std::array<core::metrics::Counter*, 4> drops_{};
    core::metrics::Histogram* deliveryLatency_ = nullptr;
    core::metrics::CounterFamily* commands_ = nullptr;
    core::metrics::HistogramFamily* storeLatency_ = nullptr;
    core::metrics::CounterFamily* storeErrors_ = nullptr;
    core::metrics::Counter* reaperRuns_ = nullptr;
};

}  // namespace deskstream::relay
