// Private state of the relay shared by the HTTP handlers, the WebSocket sessions and the
// background threads (maintenance, store notifications).
//
// Locking: one mutex guards the core state machines (Registry, CommandRouter, PingThrottle)
// and the session map. It is never held across I/O: store calls and socket writes happen
// after the lock is released (sends only enqueue onto the peer's own writer thread anyway).
#pragma once

#include "deskstream/core/commands.hpp"
#include "deskstream/core/fanout.hpp"
#include "deskstream/core/frame_header.hpp"
#include "deskstream/core/registry.hpp"
#include "deskstream/core/relay_connection.hpp"
#include "deskstream/relay/options.hpp"
#include "deskstream/relay/relay.hpp"
#include "deskstream/relay/store_client.hpp"
#include "ws_connection.hpp"

#include <Poco/Logger.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/ThreadPool.h>

#include <array>
#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>

namespace deskstream::relay {

class Session;

// Per-relay counters: core's list (names are stable, see docs/relay.md); their spelling is
// core::counterName (found by argument-dependent lookup as counterName(c)).
using Counter = core::RelayCounter;


class RelayImpl {
public:
    RelayImpl(RelayOptions options, StoreClient store, Poco::Logger &logger);
    ~RelayImpl();

    void start();
    void stop();
    bool running() const { return running_.load(); }
    uint16_t port() const { return port_; }
    const std::string &instanceId() const { return options_.instance_id; }
    const RelayOptions &options() const { return options_; }
    const StoreClient &store() const { return store_; }
    Poco::Logger &log() const { return logger_; }

    void count(Counter c, uint64_t n = 1) { counters_[static_cast<size_t>(c)].fetch_add(n); }
    std::map<std::string, uint64_t> counters() const;
    size_t agentCount() const;
    size_t viewerCount() const;

    static int64_t wallNowMs();
    static core::TimePoint monoNow();

    // ---- sessions
    bool accepting() const { return accepting_.load(); }
    // Reserves a viewer slot (false when max_viewers are connected); release with releaseViewer.
    bool reserveViewer();
    void releaseViewer() { viewerSlots_.fetch_sub(1); }
    core::ConnId addSession(const std::shared_ptr<Session> &session);
    void removeSession(core::ConnId id);
    std::shared_ptr<Session> session(core::ConnId id) const;

    // Runs `fn(registry)` under the lock and performs the returned actions after it.
    template <class F> void withRegistry(F &&fn) {
        core::Actions actions;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            actions = fn(registry_);
        }
        perform(std::move(actions));
    }
    template <class F> auto locked(F &&fn) const {
        std::lock_guard<std::mutex> lock(mutex_);
        return fn(registry_);
    }
    void perform(core::Actions actions);

    // ---- fan-out (core::FanOut per agent connection, its own mutex)
    // A validated frame from agent `agent` (streamId already rewritten): queued by reference
    // for each subscribed viewer, whose writer is woken; acks that became due go to the agent.
    void onAgentFrame(core::ConnId agent, Bytes bytes, const core::FrameHeader &header);
    // The viewer's writer pulls its next frame (null when none).
    Bytes pullFrame(core::ConnId viewer);
    void onViewerAck(core::ConnId viewer, const core::ViewerFrameAck &ack);
    void tickStream(core::ConnId agent);
    // When tickStream(agent) has something to do next (TimePoint::max(): nothing pending).
    core::TimePoint streamDeadline(core::ConnId agent);
    // The agent's own figures (agent_stats), kept for /api/desktops.
    void onAgentStats(core::ConnId agent, const core::AgentStats &stats);
    struct StreamSnapshot {
        core::FanOutStats fanout;
        std::vector<std::pair<std::string, core::ViewerStats>> viewers; // by viewerId
        std::optional<core::AgentStats> agent;
    };
    // Statistics of the stream of agent connection `agent`; nullopt when it has none yet.
    std::optional<StreamSnapshot> streamSnapshot(core::ConnId agent);
    void dropStream(core::ConnId agent);
    void dropViewerStreams(core::ConnId viewer);

    // ---- heartbeat bookkeeping: refreshes last_ping at a bounded rate
    void onAgentAlive(const std::string &clientId, core::ConnId conn);
    void forgetAgent(const std::string &clientId);

    // ---- commands
    // Validated + stored + (when the agent is here) delivered. originViewer 0: HTTP.
    core::Result<core::CommandQueued> queueCommand(const core::Result<core::CommandRecord> &prepared,
                                                   core::ConnId originViewer);
    core::Result<core::CommandRecord> prepareCommand(const core::CommandMessage &m,
                                                     const std::string &origin) const;
    core::Result<core::CommandRecord> prepareHttpCommand(const std::string &clientId,
                                                         const std::string &body) const;
    void deliverPending(const std::string &clientId);
    // The agent `clientId` reported a result; stores it and informs the originating viewer.
    core::Result<bool> onCommandResult(const std::string &clientId, const core::CommandResult &r);
    void forgetViewer(core::ConnId viewer);
    // Instance (from the store) holding `clientId`, "" when none.
    std::string holderOf(const std::string &clientId) const;
    // ws URL of the instance `instanceId` for redirects, "" when unknown.
    std::string viewerUrlOf(const std::string &instanceId) const;

private:
    void maintenanceLoop();
    void notificationLoop();
    void runMaintenance(bool force);
    void storeError(const std::string &what, const StoreStatus &s);
    struct AgentStream {
        explicit AgentStream(core::FanOutConfig c) : fanout(c) {}
        std::mutex mutex; // guards fanout; never held with mutex_ or across I/O
        core::FanOut fanout;
        std::optional<core::AgentStats> agentStats; // the latest agent_stats
    };
    std::shared_ptr<AgentStream> stream(core::ConnId agent, bool create);
    void attachViewer(core::ConnId agent, core::ConnId viewer, std::optional<int> monitor);
    void detachViewer(core::ConnId agent, core::ConnId viewer);
    void sendAcks(core::ConnId agent, const std::vector<core::AgentFrameAck> &acks);

    RelayOptions options_;
    StoreClient store_;
    Poco::Logger &logger_;
    std::array<std::atomic<uint64_t>, static_cast<size_t>(Counter::kCount)> counters_{};

    mutable std::mutex mutex_;
    core::Registry registry_;
    core::CommandRouter router_;
    core::PingThrottle throttle_;
    std::unordered_map<core::ConnId, std::shared_ptr<Session>> sessions_;
    std::atomic<core::ConnId> nextConn_{1};
    std::atomic<int> viewerSlots_{0};
    std::unordered_map<core::ConnId, std::shared_ptr<AgentStream>> streams_;    // by agent conn
    std::unordered_map<core::ConnId, std::vector<core::ConnId>> viewerStreams_; // viewer -> agents

    std::atomic<bool> running_{false};
    std::atomic<bool> accepting_{false};
    uint16_t port_ = 0;
    int64_t startedAtMs_ = 0;
    std::unique_ptr<Poco::ThreadPool> pool_;
    std::unique_ptr<Poco::Net::HTTPServer> server_;

    std::mutex stopMutex_;
    std::condition_variable stopCv_;
    bool stopping_ = false;
    std::thread maintenance_;
    std::thread notifications_;
    std::chrono::steady_clock::time_point lastMaintenance_{};
    std::atomic<int64_t> lastStoreErrorLogMs_{0};
};

} // namespace deskstream::relay
