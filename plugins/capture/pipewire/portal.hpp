// The xdg-desktop-portal ScreenCast handshake of the pipewire capture plugin, over the D-Bus
// session bus (libdbus-1): CreateSession, SelectSources, Start, OpenPipeWireRemote. It yields a
// PipeWire remote fd and the node id of the chosen screen; the session stays open (and the
// stream allowed) for as long as the PortalSession lives.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

struct DBusConnection;

namespace ds_pipewire {

// Throws deskstream::Error(DS_ERR_UNSUPPORTED) naming why no ScreenCast portal is reachable.
void checkPortalReachable(std::chrono::milliseconds timeout);

class PortalSession {
public:
    // Asks the portal for one monitor. A non-empty restoreToken lets the portal reuse the
    // previous choice without asking the user. `interaction` bounds the wait for the user's
    // answer. Throws deskstream::Error.
    PortalSession(const std::string& restoreToken, bool cursor,
                  std::chrono::milliseconds interaction);
    ~PortalSession();
    PortalSession(const PortalSession&) = delete;
    PortalSession& operator=(const PortalSession&) = delete;

    // A new fd on each call, owned by the caller (pw_context_connect_fd takes it).
    int openRemote();
    uint32_t nodeId() const { return nodeId_; }
    const std::string& restoreToken() const { return restoreToken_; }  // empty: none given
    int32_t x() const { return x_; }
    int32_t y() const { return y_; }

private:
    DBusConnection* bus_ = nullptr;
    std::string session_;
    uint32_t nodeId_ = 0;
    std::string restoreToken_;
    int32_t x_ = 0, y_ = 0;
};

}  // namespace ds_pipewire
