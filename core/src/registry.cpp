#include "deskstream/core/registry.hpp"

#include <algorithm>

namespace deskstream::core {

bool ClientRecord::operator==(const ClientRecord& o) const {
    return clientId == o.clientId && name == o.name && hostname == o.hostname &&
           instanceId == o.instanceId && monitorsJson == o.monitorsJson &&
           capabilitiesJson == o.capabilitiesJson && connectedAtMs == o.connectedAtMs &&
           lastPingMs == o.lastPingMs;
}

namespace {

void fail(Actions& out, ConnId conn, const std::string& clientId, ErrorCode code,
          const std::string& why) {
    out.push_back(SendAction{conn, RegistrationFailed{clientId, code, why}});
    out.push_back(CloseAction{conn, close_code::kPolicy, "registration failed"});
}

ErrorMessage errorMsg(ErrorCode code, std::string msg) {
    return ErrorMessage{code, std::move(msg)};
}

}  // namespace

Registry::Registry(RegistryConfig config) : config_(std::move(config)) {}

// ============================================================================ agents

Actions Registry::onAgentHandshake(ConnId conn, const Handshake& hs, WallMs nowMs) {
    Actions out;
    // A second handshake on a known connection is a protocol violation: refuse it without
    // touching the first registration.
    if (pending_.count(conn) || agentConn_.count(conn) || viewers_.count(conn)) {
        out.push_back(SendAction{conn, errorMsg(ErrorCode::BadRequest, "handshake already done")});
        return out;
    }
    if (hs.protocol != limits::kProtocolVersion) {
        fail(out, conn, isValidId(hs.clientId) ? hs.clientId : std::string(),
             ErrorCode::ProtocolMismatch,
             "protocol " + std::to_string(hs.protocol) + " not supported (this relay speaks " +
                 std::to_string(limits::kProtocolVersion) + ")");
        return out;
    }
    if (hs.role != Role::Desktop || !isValidId(hs.clientId)) {
        fail(out, conn, std::string(), ErrorCode::BadRequest,
             "clientId must match [A-Za-z0-9._-]{1,128}");
        return out;
    }
    Pending p;
    p.handshake = hs;
    p.seq = nextSeq_++;
    p.since = nowMs;
    pending_.emplace(conn, std::move(p));

    ClientRecord rec;
    rec.clientId = hs.clientId;
    rec.name = hs.name;
    rec.hostname = hs.hostname;
    rec.instanceId = config_.instanceId;
    rec.monitorsJson = monitorsToJson(hs.monitors);
    rec.capabilitiesJson = capabilitiesToJson(hs.capabilities);
    rec.connectedAtMs = nowMs;
    rec.lastPingMs = nowMs;
    out.push_back(StoreRegisterAction{conn, std::move(rec)});
    return out;
}

Actions Registry::rejectAgent(ConnId conn, const std::string& clientId, ErrorCode code,
                              const std::string& why) {
    Actions out;
    pending_.erase(conn);
    fail(out, conn, isValidId(clientId) ? clientId : std::string(), code, why);
    return out;
}

Actions Registry::onStoreResult(ConnId conn, bool ok, const std::string& error, WallMs nowMs) {
    Actions out;
    auto pit = pending_.find(conn);
    if (pit == pending_.end()) return out;  // unknown (already rejected): nothing to do
    Pending p = std::move(pit->second);
    pending_.erase(pit);
    const std::string& clientId = p.handshake.clientId;

    if (p.abandoned) {
        // The connection went away while the row was being written. Leave no trace, unless
        // someone else holds (or is about to hold) this clientId here: their row is the same
        // row (one per clientId), so removing it would unregister them.
        bool other = byClient_.count(clientId) != 0;
        for (const auto& [c, q] : pending_) {
            (void)c;
            if (q.handshake.clientId == clientId) other = true;
        }
        if (ok && !other) out.push_back(StoreUnregisterAction{clientId, config_.instanceId});
        return out;
    }
    if (!ok) {
        fail(out, conn, clientId, ErrorCode::StoreUnavailable,
             error.empty() ? std::string("registration could not be stored") : error);
        return out;
    }

    auto existing = byClient_.find(clientId);
    if (existing != byClient_.end() && existing->second.seq > p.seq) {
        // A NEWER handshake for this clientId was confirmed first: this older one lost.
        out.push_back(CloseAction{conn, close_code::kReplaced, "replaced"});
        return out;
    }
    if (existing != byClient_.end()) {
        const ConnId old = existing->second.info.conn;
        detachAll(clientId, old, out);
        agentConn_.erase(old);
        byClient_.erase(existing);
        out.push_back(CloseAction{old, close_code::kReplaced, "replaced"});
    }

    Agent a;
    a.info.conn = conn;
    a.info.clientId = clientId;
    a.info.name = p.handshake.name;
    a.info.hostname = p.handshake.hostname;
    a.info.monitors = p.handshake.monitors;
    a.info.capabilities = p.handshake.capabilities;
    a.info.streamId = nextStreamId_++;
    if (nextStreamId_ == 0) nextStreamId_ = 1;  // 0 is never a valid streamId
    a.info.connectedAtMs = nowMs;
    a.handshake = p.handshake;
    a.seq = p.seq;
    const std::uint32_t streamId = a.info.streamId;
    byClient_.emplace(clientId, std::move(a));
    agentConn_[conn] = clientId;

    AgentHandshakeAck ack;
    ack.clientId = clientId;
    ack.dbRegistered = true;
    ack.instanceId = config_.instanceId;
    ack.streamId = streamId;
    ack.heartbeatIntervalMs = config_.heartbeatIntervalMs;
    ack.maxInFlight = config_.maxInFlight;
    out.push_back(SendAction{conn, ack});

    // Viewers that watched the replaced connection (or subscribed to nothing yet) move over.
    attachAll(clientId, conn, out);
    if (subscriberCount(clientId) > 0)
        out.push_back(SendAction{conn, StartStream{}});
    else
        out.push_back(SendAction{conn, StopStream{}});
    return out;
}

Actions Registry::onAgentClosed(ConnId conn) {
    Actions out;
    auto pit = pending_.find(conn);
    if (pit != pending_.end()) {
        // The store write is in flight; onStoreResult cleans up.
        pit->second.abandoned = true;
        return out;
    }
    auto it = agentConn_.find(conn);
    if (it == agentConn_.end()) return out;  // replaced or never registered
    const std::string clientId = it->second;
    agentConn_.erase(it);
    byClient_.erase(clientId);
    out.push_back(StoreUnregisterAction{clientId, config_.instanceId});
    // Viewers are told and their subscriptions dropped: a desktop that comes back is a new
    // stream they subscribe to again.
    auto sit = subscribers_.find(clientId);
    if (sit != subscribers_.end()) {
        for (const auto& [viewer, monitor] : sit->second) {
            (void)monitor;
            out.push_back(DetachViewerAction{conn, viewer});
            out.push_back(SendAction{viewer, DesktopDisconnected{clientId}});
            auto v = viewers_.find(viewer);
            if (v != viewers_.end()) v->second.subscriptions.erase(clientId);
        }
        subscribers_.erase(sit);
    }
    return out;
}

// ============================================================================ viewers

Actions Registry::onViewerHandshake(ConnId conn, const ViewerScope& scope) {
    Actions out;
    if (pending_.count(conn) || agentConn_.count(conn) || viewers_.count(conn)) {
        out.push_back(SendAction{conn, errorMsg(ErrorCode::BadRequest, "handshake already done")});
        return out;
    }
    Viewer v;
    v.viewerId = "v" + std::to_string(nextViewer_++) + "-" + config_.instanceId.substr(0, 8);
    viewerIds_[v.viewerId] = conn;
    ViewerHandshakeAck ack;
    ack.viewerId = v.viewerId;
    ack.heartbeatIntervalMs = config_.heartbeatIntervalMs;
    for (auto& d : desktops())
        if (scope.maySee(d.clientId)) ack.desktops.push_back(std::move(d));
    v.scope = scope;
    viewers_.emplace(conn, std::move(v));
    out.push_back(SendAction{conn, std::move(ack)});
    return out;
}

Actions Registry::onSubscribe(ConnId viewer, const Subscribe& sub) {
    Actions out;
    auto vit = viewers_.find(viewer);
    if (vit == viewers_.end()) {
        out.push_back(
            SendAction{viewer, errorMsg(ErrorCode::BadRequest, "subscribe before handshake")});
        return out;
    }
    auto ait = byClient_.find(sub.desktopClientId);
    if (ait == byClient_.end()) {
        out.push_back(
            SendAction{viewer, errorMsg(ErrorCode::NotFound,
                                        "desktop '" + sub.desktopClientId + "' is not connected")});
        return out;
    }
    Agent& agent = ait->second;
    if (sub.monitor) {
        const auto& ms = agent.info.monitors;
        const bool known =
            ms.empty() || std::any_of(ms.begin(), ms.end(), [&](const MonitorInfo& m) {
                return m.index == *sub.monitor;
            });
        if (!known) {
            out.push_back(SendAction{
                viewer, errorMsg(ErrorCode::NotFound, "desktop '" + sub.desktopClientId +
                                                          "' has no monitor " +
                                                          std::to_string(*sub.monitor))});
            return out;
        }
    }
    auto& subs = subscribers_[sub.desktopClientId];
    const bool already = subs.count(viewer) != 0;
    if (!already && subs.size() >= config_.maxViewersPerDesktop) {
        out.push_back(SendAction{
            viewer, errorMsg(ErrorCode::RateLimited, "too many viewers on this desktop")});
        if (subs.empty()) subscribers_.erase(sub.desktopClientId);
        return out;
    }
    const bool first = subs.empty();
    subs[viewer] = sub.monitor;
    vit->second.subscriptions[sub.desktopClientId] = sub.monitor;
    agent.info.viewers = subs.size();

    // Attached before the answer: "subscribed" promises that the next frame reaches the viewer
    // (answering first let a frame sent right after it miss the fan-out).
    out.push_back(AttachViewerAction{agent.info.conn, viewer, sub.monitor});
    out.push_back(SendAction{
        viewer, Subscribed{sub.desktopClientId, agent.info.streamId, agent.info.monitors}});
    if (first) out.push_back(SendAction{agent.info.conn, StartStream{}});
    return out;
}

Actions Registry::onUnsubscribe(ConnId viewer, const Unsubscribe& unsub) {
    Actions out;
    auto vit = viewers_.find(viewer);
    if (vit == viewers_.end()) {
        out.push_back(
            SendAction{viewer, errorMsg(ErrorCode::BadRequest, "unsubscribe before handshake")});
        return out;
    }
    vit->second.subscriptions.erase(unsub.desktopClientId);
    auto sit = subscribers_.find(unsub.desktopClientId);
    const bool was = sit != subscribers_.end() && sit->second.erase(viewer) != 0;
    out.push_back(SendAction{viewer, Unsubscribed{unsub.desktopClientId}});
    if (!was) return out;
    const bool last = sit->second.empty();
    if (last) subscribers_.erase(sit);
    auto ait = byClient_.find(unsub.desktopClientId);
    if (ait != byClient_.end()) {
        ait->second.info.viewers = last ? 0 : subscribers_[unsub.desktopClientId].size();
        out.push_back(DetachViewerAction{ait->second.info.conn, viewer});
        if (last) out.push_back(SendAction{ait->second.info.conn, StopStream{}});
    }
    return out;
}

Actions Registry::onViewerClosed(ConnId viewer) {
    Actions out;
    auto vit = viewers_.find(viewer);
    if (vit == viewers_.end()) return out;
    std::vector<std::string> subs;
    for (const auto& [clientId, monitor] : vit->second.subscriptions) {
        (void)monitor;
        subs.push_back(clientId);
    }
    for (const auto& clientId : subs) {
        Actions a = onUnsubscribe(viewer, Unsubscribe{clientId});
        for (auto& act : a) {
            // No message to a closed connection.
            if (auto* s = std::get_if<SendAction>(&act); s && s->conn == viewer) continue;
            out.push_back(std::move(act));
        }
    }
    viewerIds_.erase(vit->second.viewerId);
    viewers_.erase(vit);
    return out;
}

// ============================================================================ helpers

void Registry::detachAll(const std::string& clientId, ConnId agentConn, Actions& out) {
    auto sit = subscribers_.find(clientId);
    if (sit == subscribers_.end()) return;
    for (const auto& [viewer, monitor] : sit->second) {
        (void)monitor;
        out.push_back(DetachViewerAction{agentConn, viewer});
    }
}

void Registry::attachAll(const std::string& clientId, ConnId agentConn, Actions& out) {
    auto sit = subscribers_.find(clientId);
    if (sit == subscribers_.end()) return;
    for (const auto& [viewer, monitor] : sit->second)
        out.push_back(AttachViewerAction{agentConn, viewer, monitor});
    auto ait = byClient_.find(clientId);
    if (ait != byClient_.end()) ait->second.info.viewers = sit->second.size();
}

std::size_t Registry::subscriberCount(const std::string& clientId) const {
    auto sit = subscribers_.find(clientId);
    return sit == subscribers_.end() ? 0 : sit->second.size();
}

// ============================================================================ queries

std::optional<AgentInfo> Registry::findAgent(const std::string& clientId) const {
    auto it = byClient_.find(clientId);
    if (it == byClient_.end()) return std::nullopt;
    return it->second.info;
}

std::optional<AgentInfo> Registry::agentByConn(ConnId conn) const {
    auto it = agentConn_.find(conn);
    if (it == agentConn_.end()) return std::nullopt;
    return findAgent(it->second);
}

bool Registry::isPending(ConnId conn) const { return pending_.count(conn) != 0; }
bool Registry::isRegisteredAgent(ConnId conn) const { return agentConn_.count(conn) != 0; }
bool Registry::isViewer(ConnId conn) const { return viewers_.count(conn) != 0; }

std::optional<std::string> Registry::viewerId(ConnId conn) const {
    auto it = viewers_.find(conn);
    if (it == viewers_.end()) return std::nullopt;
    return it->second.viewerId;
}

std::optional<ConnId> Registry::viewerConn(const std::string& viewerId) const {
    auto it = viewerIds_.find(viewerId);
    if (it == viewerIds_.end()) return std::nullopt;
    return it->second;
}

std::vector<std::string> Registry::subscriptionsOf(ConnId viewer) const {
    std::vector<std::string> out;
    auto it = viewers_.find(viewer);
    if (it == viewers_.end()) return out;
    for (const auto& [clientId, monitor] : it->second.subscriptions) {
        (void)monitor;
        out.push_back(clientId);
    }
    return out;
}

std::vector<std::pair<ConnId, std::optional<int>>> Registry::subscribersOf(
    const std::string& clientId) const {
    std::vector<std::pair<ConnId, std::optional<int>>> out;
    auto it = subscribers_.find(clientId);
    if (it == subscribers_.end()) return out;
    for (const auto& [viewer, monitor] : it->second) out.emplace_back(viewer, monitor);
    return out;
}

std::vector<std::string> Registry::availableDesktops() const {
    std::vector<std::string> out;
    out.reserve(byClient_.size());
    for (const auto& [clientId, agent] : byClient_) {
        (void)agent;
        out.push_back(clientId);  // std::map: already sorted
    }
    return out;
}

std::vector<std::string> Registry::availableDesktops(ConnId viewer) const {
    std::vector<std::string> out = availableDesktops();
    out.erase(std::remove_if(out.begin(), out.end(),
                             [&](const std::string& id) { return !maySee(viewer, id); }),
              out.end());
    return out;
}

bool Registry::maySee(ConnId viewer, const std::string& clientId) const {
    auto it = viewers_.find(viewer);
    return it != viewers_.end() && it->second.scope.maySee(clientId);
}

std::vector<DesktopSummary> Registry::desktops() const {
    std::vector<DesktopSummary> out;
    for (const auto& [clientId, agent] : byClient_) {
        DesktopSummary d;
        d.clientId = clientId;
        d.name = agent.info.name;
        d.hostname = agent.info.hostname;
        d.monitors = agent.info.monitors;
        d.viewers = static_cast<int>(subscriberCount(clientId));
        out.push_back(std::move(d));
    }
    return out;
}

std::vector<AgentInfo> Registry::agents() const {
    std::vector<AgentInfo> out;
    for (const auto& [clientId, agent] : byClient_) {
        AgentInfo info = agent.info;
        info.viewers = subscriberCount(clientId);
        out.push_back(std::move(info));
    }
    return out;
}

// ============================================================================ PingThrottle

bool PingThrottle::shouldRefresh(const std::string& clientId, TimePoint now) {
    auto it = last_.find(clientId);
    if (it != last_.end() && now - it->second < interval_) return false;
    last_[clientId] = now;
    return true;
}

}  // namespace deskstream::core
