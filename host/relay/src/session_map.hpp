// SessionMap: the live WebSocket sessions by connection id, the viewer slots (max_viewers),
// and Peers: how every other part reaches a connection (send, close, wake its I/O loop).
#pragma once

#include "parts.hpp"

#include <atomic>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace deskstream::relay {

class SessionMap : public Peers {
public:
    explicit SessionMap(int maxViewers) : maxViewers_(maxViewers) {}

    // Reserves a viewer slot (false when max_viewers are connected); release with releaseViewer.
    bool reserveViewer();
    void releaseViewer() { viewerSlots_.fetch_sub(1); }

    core::ConnId add(const std::shared_ptr<PeerConnection>& session);
    void remove(core::ConnId id);  // the session is destroyed outside the lock
    std::shared_ptr<PeerConnection> get(core::ConnId id) const;
    std::vector<std::shared_ptr<PeerConnection>> all() const;
    std::vector<core::ConnId> ids() const;
    // Queues the same text to each of `conns` that is still live.
    void sendToEach(const std::vector<core::ConnId>& conns, const std::string& text);
    bool empty() const;

    bool send(core::ConnId conn, const core::Message& message) override;
    void close(core::ConnId conn, int code, const std::string& reason) override;
    void notifyFrames(core::ConnId viewer) override;
    void wake(core::ConnId conn) override;

private:
    const int maxViewers_;
    mutable std::mutex mutex_;
    std::unordered_map<core::ConnId, std::shared_ptr<PeerConnection>> sessions_;
    std::atomic<core::ConnId> nextConn_{1};
    std::atomic<int> viewerSlots_{0};
};

}  // namespace deskstream::relay
