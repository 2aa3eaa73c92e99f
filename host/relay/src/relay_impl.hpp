// RelayImpl: the relay's composition root. Owns the parts and wires them one way:
//   SessionMap (Peers)      live connections by id
//   Registry + PingThrottle core state shared by all connections, under one mutex (mutex_)
//   StoreBridge             the store (records are core's; C structs only in StoreClient)
//   Streams                 per-agent fan-out          -> Peers, Counters
//   CommandDelivery         store-first commands       -> StoreBridge, AgentDirectory, Peers
//   MaintenanceJobs         reaper + notifications     -> StoreBridge, AgentDirectory, commands
//   RelayMetrics            the labelled Prometheus families the parts and sessions update
//   the HTTP server         http_handlers.cpp and Session (one pump per WebSocket)
// Sessions and HTTP handlers call the methods below; the parts never call back into RelayImpl
// (it implements AgentDirectory over the registry for them).
//
// Locking: mutex_ guards the Registry and PingThrottle only and is never held across I/O:
// store calls and socket writes happen after it is released (sends only enqueue onto the
// peer's own connection, written by its I/O loop). Each part has its own lock; none is held
// while another part is called.
#pragma once

#include "command_delivery.hpp"
#include "deskstream/core/rate_limits.hpp"
#include "io_loop.hpp"
#include "deskstream/core/registry.hpp"
#include "deskstream/core/relay_connection.hpp"
#include "deskstream/core/tickets.hpp"
#include "deskstream/relay/options.hpp"
#include "deskstream/relay/relay.hpp"
#include "deskstream/relay/store_client.hpp"
#include "http_listener.hpp"
#include "maintenance.hpp"
#include "parts.hpp"
#include "relay_metrics.hpp"
#include "session_map.hpp"
#include "store_bridge.hpp"
#include "streams.hpp"

#include <Poco/Logger.h>
#include <Poco/ThreadPool.h>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace deskstream::relay {

class RelayImpl : private AgentDirectory {
public:
    RelayImpl(RelayOptions options, StoreClient store, Poco::Logger& logger);
    ~RelayImpl() override;

    void start();
    void stop();
    bool running() const { return running_.load(); }
    uint16_t port() const { return port_; }
    uint16_t healthPort() const { return healthPort_; }
    const std::string& instanceId() const { return options_.instanceId; }
    const RelayOptions& options() const { return options_; }
    const StoreClient& store() const { return store_.client(); }
    int64_t startedAtMs() const { return startedAtMs_.load(); }
    Poco::Logger& log() const { return logger_; }

    void count(Counter c, uint64_t n = 1) { counters_.count(c, n); }
    std::map<std::string, uint64_t> counters() const { return counters_.snapshot(); }
    RelayMetrics& metrics() { return metrics_; }
    size_t agentCount() const;
    size_t viewerCount() const;

    static int64_t wallNowMs();
    static core::TimePoint monoNow();

    // ---- sessions
    bool accepting() const { return accepting_.load(); }
    bool reserveViewer() { return sessions_.reserveViewer(); }
    void releaseViewer() { sessions_.releaseViewer(); }
    core::ConnId addSession(const std::shared_ptr<PeerConnection>& session) {
        return sessions_.add(session);
    }
    void removeSession(core::ConnId id) { sessions_.remove(id); }
    // The I/O loop a new WebSocket goes to (the least loaded).
    IoLoop& ioLoop() { return loops_->pick(); }
    int ioThreads() const { return static_cast<int>(loops_->size()); }

    // Runs `fn(registry)` under the lock and performs the returned actions after it.
    template <class F>
    void withRegistry(F&& fn) {
        core::Actions actions;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            actions = fn(registry_);
        }
        perform(std::move(actions));
    }
    template <class F>
    auto locked(F&& fn) const {
        std::lock_guard<std::mutex> lock(mutex_);
        return fn(registry_);
    }
    void perform(core::Actions actions);
    // Queues `text` to every handshaken viewer whose token may see `clientId` (e.g. the
    // desktop_connected notice of that desktop).
    void sendToViewers(const std::string& text, const std::string& clientId);

    // ---- limits per source address and tickets (docs/security.md); each under its own lock
    core::PeerGuard::Admission admitPeer(const std::string& address) {
        std::lock_guard<std::mutex> lock(limitsMutex_);
        return peers_.admit(address, monoNow());
    }
    void releasePeer(const std::string& address) {
        std::lock_guard<std::mutex> lock(limitsMutex_);
        peers_.release(address);
    }
    core::PeerGuard::Admission peerBackoff(const std::string& address) {
        std::lock_guard<std::mutex> lock(limitsMutex_);
        return peers_.check(address, monoNow());
    }
    // One failed authentication from `address` (counted; one log line when a back-off starts).
    void authFailed(const std::string& address);
    bool allowHttpCommand(const std::string& address) {
        std::lock_guard<std::mutex> lock(limitsMutex_);
        return httpCommands_.allow(address, monoNow());
    }
    // A ticket for `claims` (empty when the book is full).
    std::string issueTicket(const core::TokenClaims& claims);
    core::Result<core::TokenClaims> redeemTicket(const std::string& ticket, core::WallMs nowMs) {
        std::lock_guard<std::mutex> lock(limitsMutex_);
        return tickets_.redeem(ticket, nowMs);
    }

    // ---- fan-out
    void onAgentFrame(core::ConnId agent, Bytes bytes, const core::FrameHeader& header) {
        streams_.onAgentFrame(agent, std::move(bytes), header, monoNow());
    }
    Bytes pullFrame(core::ConnId viewer) { return streams_.pullFrame(viewer, monoNow()); }
    void onViewerAck(core::ConnId viewer, const core::ViewerFrameAck& ack);
    void tickStream(core::ConnId agent) { streams_.tick(agent, monoNow()); }
    // When tickStream(agent) has something to do next (TimePoint::max(): nothing pending).
    core::TimePoint streamDeadline(core::ConnId agent) { return streams_.deadline(agent); }
    void onAgentStats(core::ConnId agent, const core::AgentStats& stats) {
        streams_.onAgentStats(agent, stats);
    }
    bool consumeKeyframeResult(core::ConnId agent, const std::string& commandId) {
        return streams_.consumeKeyframeResult(agent, commandId);
    }
    struct StreamSnapshot {
        core::FanOutStats fanout;
        std::vector<std::pair<std::string, core::ViewerStats>> viewers;  // by viewerId
        std::optional<core::AgentStats> agent;
    };
    // Statistics of the stream of agent connection `agent`; nullopt when it has none yet.
    std::optional<StreamSnapshot> streamSnapshot(core::ConnId agent);
    void dropStream(core::ConnId agent) { streams_.dropAgent(agent); }
    void dropViewerStreams(core::ConnId viewer) { streams_.dropViewer(viewer); }

    // ---- heartbeat bookkeeping: refreshes last_ping at a bounded rate
    void onAgentAlive(const std::string& clientId, core::ConnId conn);
    void forgetAgent(const std::string& clientId);

    // ---- commands
    core::Result<core::CommandQueued> queueCommand(
        const core::Result<core::CommandRecord>& prepared, core::ConnId originViewer) {
        return commands_.queue(prepared, originViewer, wallNowMs());
    }
    core::Result<core::CommandRecord> prepareCommand(const core::CommandMessage& m,
                                                     const std::string& origin) const {
        return commands_.prepare(m, origin, wallNowMs());
    }
    core::Result<core::CommandRecord> prepareHttpCommand(const std::string& clientId,
                                                         const std::string& body) const {
        return commands_.prepareHttp(clientId, body, wallNowMs());
    }
    void deliverPending(const std::string& clientId) {
        commands_.deliverPending(clientId, wallNowMs());
    }
    core::Result<bool> onCommandResult(const std::string& clientId, const core::CommandResult& r) {
        return commands_.onResult(clientId, r, wallNowMs());
    }
    void forgetViewer(core::ConnId viewer) { commands_.forgetViewer(viewer); }
    std::string holderOf(const std::string& clientId) const { return store_.holderOf(clientId); }
    // For subscribes: a key lookup in an index of the store refreshed every 250 ms (18.11).
    std::string indexedHolderOf(const std::string& clientId) const {
        return store_.indexedHolderOf(clientId);
    }
    std::string viewerUrlOf(const std::string& instanceId) const {
        return store_.viewerUrlOf(instanceId);
    }

private:
    // AgentDirectory, for the parts.
    std::optional<core::ConnId> agentConn(const std::string& clientId) const override;
    std::vector<std::string> localAgents() const override;

    RelayOptions options_;
    Poco::Logger& logger_;
    Counters counters_;
    StoreBridge store_;

    mutable std::mutex mutex_;
    core::Registry registry_;
    core::PingThrottle throttle_;

    std::mutex limitsMutex_;  // peers_, httpCommands_, tickets_
    core::PeerGuard peers_;
    core::KeyedRate httpCommands_;
    core::TicketBook tickets_;

    SessionMap sessions_;
    Streams streams_;
    CommandDelivery commands_;
    MaintenanceJobs jobs_;

    std::atomic<bool> running_{false};
    std::atomic<bool> accepting_{false};
    uint16_t port_ = 0;
    std::unique_ptr<IoLoops> loops_;
    std::unique_ptr<Poco::ThreadPool> pool_;
    std::unique_ptr<HttpListener> server_;
    // [relay] health_listen: the probes' own listener and 2-thread pool (null when off).
    uint16_t healthPort_ = 0;
    std::unique_ptr<Poco::ThreadPool> healthPool_;
    std::unique_ptr<HttpListener> healthServer_;
    std::atomic<int64_t> startedAtMs_{0};
    // Last member: destroyed first, so its scrape-time callbacks never see a dead member.
    RelayMetrics metrics_{options_.metrics};
};

}  // namespace deskstream::relay
