// deskstream core: the relay's registry of agent and viewer connections (sans-IO).
//
// Agents: handshake -> PENDING (StoreRegisterAction) -> the host writes the store and reports
// onStoreResult(): ok -> REGISTERED (handshake_ack, streamId assigned), failure ->
// registration_failed + close 1008 and NO trace left (Invariant 1, docs/architecture.md). A confirmed registration of
// a clientId that another connection holds REPLACES it: the old connection gets close 4000
// "replaced", its viewers move to the new connection. Closing a registered agent removes its
// registration at once (StoreUnregisterAction) unless it was replaced.
//
// Viewers: handshake -> viewerId; subscribe/unsubscribe by desktop clientId. Subscriptions are
// kept by clientId, so they survive an agent replacement. The first subscriber of a desktop
// makes the agent start_stream, the last one leaving makes it stop_stream.
//
// Not thread-safe: the host serializes calls (one mutex around the registry is enough; every
// call is O(viewers of one desktop) at most and performs no I/O).
#pragma once

#include "deskstream/core/actions.hpp"
#include "deskstream/core/auth.hpp"
#include "deskstream/core/protocol.hpp"
#include "deskstream/core/types.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

namespace deskstream::core {

struct RegistryConfig {
    std::string instanceId;  // this relay instance (uuid)
    std::int64_t heartbeatIntervalMs = 5000;
    int maxInFlight = 10;  // told to agents in handshake_ack
    std::size_t maxViewersPerDesktop = 1000;
};

/// A registered agent, as seen by queries.
struct AgentInfo {
    ConnId conn = 0;
    std::string clientId;
    std::string name;
    std::string hostname;
    std::vector<MonitorInfo> monitors;
    Capabilities capabilities;
    std::uint32_t streamId = 0;
    WallMs connectedAtMs = 0;
    std::size_t viewers = 0;  // subscribed viewers
};

class Registry {
public:
    explicit Registry(RegistryConfig config);

    // ---------------------------------------------------------------- agents
    /// A validated desktop handshake (auth already checked by the host). Returns
    /// StoreRegisterAction, or registration_failed + close 1008 when the handshake is unusable
    /// (bad clientId, wrong protocol -> protocol_mismatch, connection already known).
    Actions onAgentHandshake(ConnId conn, const Handshake& hs, WallMs nowMs);

    /// Rejects a handshake before any store write (e.g. unauthorized): registration_failed +
    /// close 1008. Nothing is kept.
    Actions rejectAgent(ConnId conn, const std::string& clientId, ErrorCode code,
                        const std::string& why);

    /// The outcome of the StoreRegisterAction of `conn`. ok: handshake_ack (+ close 4000 of a
    /// replaced connection, viewer moves, start/stop_stream). Failure: registration_failed
    /// (code store_unavailable, `error` as reason) + close 1008. If `conn` closed meanwhile and
    /// the write succeeded, the row is removed again (StoreUnregisterAction) unless another
    /// connection holds the clientId.
    Actions onStoreResult(ConnId conn, bool ok, const std::string& error, WallMs nowMs);

    /// The agent connection is gone (any reason, including a close the core asked for).
    /// Registered owner: StoreUnregisterAction + desktop_disconnected to its viewers.
    Actions onAgentClosed(ConnId conn);

    // ---------------------------------------------------------------- viewers
    /// A validated viewer handshake: assigns a viewerId, answers handshake_ack with the desktops
    /// its token's `scope` covers (kept for maySee / availableDesktops).
    Actions onViewerHandshake(ConnId conn, const ViewerScope& scope = ViewerScope::everything());

    /// subscribed + AttachViewerAction (+ start_stream to the agent on its first viewer), or
    /// error not_found when the desktop is not registered HERE (the host may look the store up
    /// first and answer redirect instead), or bad_request when `conn` is no viewer.
    /// Re-subscribing to the same desktop only updates the monitor filter.
    Actions onSubscribe(ConnId viewer, const Subscribe& sub);

    /// unsubscribed + DetachViewerAction (+ stop_stream when it was the last viewer).
    Actions onUnsubscribe(ConnId viewer, const Unsubscribe& unsub);

    /// The viewer connection is gone: its subscriptions are dropped (+ stop_stream as needed).
    Actions onViewerClosed(ConnId viewer);

    // ---------------------------------------------------------------- queries
    std::optional<AgentInfo> findAgent(const std::string& clientId) const;  // registered only
    std::optional<AgentInfo> agentByConn(ConnId conn) const;                // registered only
    bool isPending(ConnId conn) const;
    bool isRegisteredAgent(ConnId conn) const;
    bool isViewer(ConnId conn) const;
    std::optional<std::string> viewerId(ConnId conn) const;
    std::optional<ConnId> viewerConn(const std::string& viewerId) const;
    /// The desktop clientIds `viewer` is subscribed to.
    std::vector<std::string> subscriptionsOf(ConnId viewer) const;
    /// Viewer connections subscribed to `clientId` (with their monitor filter).
    std::vector<std::pair<ConnId, std::optional<int>>> subscribersOf(
        const std::string& clientId) const;
    /// Registered clientIds, sorted (pongs' availableDesktopClients).
    std::vector<std::string> availableDesktops() const;
    /// The same, only those `viewer`'s scope covers.
    std::vector<std::string> availableDesktops(ConnId viewer) const;
    /// Whether `viewer` (a handshaken viewer) may see desktop `clientId`.
    bool maySee(ConnId viewer, const std::string& clientId) const;
    std::vector<DesktopSummary> desktops() const;
    std::vector<AgentInfo> agents() const;
    std::size_t agentCount() const { return byClient_.size(); }
    std::size_t pendingCount() const { return pending_.size(); }
    std::size_t viewerCount() const { return viewers_.size(); }
    const RegistryConfig& config() const { return config_; }

private:
    struct Agent {
        AgentInfo info;
        Handshake handshake;
        std::uint64_t seq = 0;  // handshake order: a later handshake wins a replacement
    };
    struct Pending {
        Handshake handshake;
        std::uint64_t seq = 0;
        WallMs since = 0;
        bool abandoned = false;  // connection closed while the store write ran
    };
    struct Viewer {
        std::string viewerId;
        std::map<std::string, std::optional<int>> subscriptions;  // clientId -> monitor
        ViewerScope scope;
    };

    void detachAll(const std::string& clientId, ConnId agentConn, Actions& out);
    void attachAll(const std::string& clientId, ConnId agentConn, Actions& out);
    std::size_t subscriberCount(const std::string& clientId) const;

    RegistryConfig config_;
    std::uint64_t nextSeq_ = 1;
    std::uint32_t nextStreamId_ = 1;
    std::uint64_t nextViewer_ = 1;
    std::unordered_map<ConnId, Pending> pending_;
    std::map<std::string, Agent> byClient_;              // registered, by clientId
    std::unordered_map<ConnId, std::string> agentConn_;  // registered conn -> clientId
    std::unordered_map<ConnId, Viewer> viewers_;
    std::unordered_map<std::string, ConnId> viewerIds_;
    std::map<std::string, std::map<ConnId, std::optional<int>>> subscribers_;  // by clientId
};

/// Throttles last_ping refreshes (store touch_client): at most once per `interval` per client.
class PingThrottle {
public:
    explicit PingThrottle(Duration interval) : interval_(interval) {}
    /// True (and remembers `now`) when `clientId` was not refreshed within the interval.
    bool shouldRefresh(const std::string& clientId, TimePoint now);
    void forget(const std::string& clientId) { last_.erase(clientId); }
    std::size_t size() const { return last_.size(); }

private:
    Duration interval_;
    std::unordered_map<std::string, TimePoint> last_;
};

}  // namespace deskstream::core
