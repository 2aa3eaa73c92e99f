// SessionMap: live sessions by connection id (see session_map.hpp).
#include "session_map.hpp"

namespace deskstream::relay {

bool SessionMap::reserveViewer() {
    if (viewerSlots_.fetch_add(1) >= maxViewers_) {
        viewerSlots_.fetch_sub(1);
        return false;
    }
    return true;
}

core::ConnId SessionMap::add(const std::shared_ptr<PeerConnection>& session) {
    const core::ConnId id = nextConn_.fetch_add(1);
    std::lock_guard<std::mutex> lock(mutex_);
    sessions_[id] = session;
    return id;
}

void SessionMap::remove(core::ConnId id) {
    std::shared_ptr<PeerConnection> keep;  // destroyed after the lock
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = sessions_.find(id);
    if (it != sessions_.end()) {
        keep = std::move(it->second);
        sessions_.erase(it);
    }
}

std::shared_ptr<PeerConnection> SessionMap::get(core::ConnId id) const {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = sessions_.find(id);
    return it == sessions_.end() ? nullptr : it->second;
}

std::vector<std::shared_ptr<PeerConnection>> SessionMap::all() const {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<std::shared_ptr<PeerConnection>> out;
    out.reserve(sessions_.size());
    for (const auto& kv : sessions_) out.push_back(kv.second);
    return out;
}

std::vector<core::ConnId> SessionMap::ids() const {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<core::ConnId> out;
    out.reserve(sessions_.size());
    for (const auto& kv : sessions_) out.push_back(kv.first);
    return out;
}

void SessionMap::sendToEach(const std::vector<core::ConnId>& conns, const std::string& text) {
    for (core::ConnId c : conns)
        if (auto s = get(c)) s->sendText(text);  // enqueues onto that connection
}

bool SessionMap::empty() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return sessions_.empty();
}

bool SessionMap::send(core::ConnId conn, const core::Message& message) {
    auto s = get(conn);
    return s && s->sendMessage(message);
}

void SessionMap::close(core::ConnId conn, int code, const std::string& reason) {
    if (auto s = get(conn)) s->close(code, reason);
}

void SessionMap::notifyFrames(core::ConnId viewer) {
    if (auto s = get(viewer)) s->notifyFrames();
}

void SessionMap::wake(core::ConnId conn) {
    if (auto s = get(conn)) s->wake();
}

}  // namespace deskstream::relay
