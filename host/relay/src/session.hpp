// Session: one agent or viewer WebSocket, from upgrade to close. Runs on the HTTPServer thread
// that accepted it (WsConnection::run), turns received messages into core calls and performs
// the core's answers. Timers (handshake timeout, heartbeat) are driven from the same thread
// between messages, so a Session's own state needs no lock.
#pragma once

#include "deskstream/core/abuse.hpp"
#include "deskstream/core/frame_order.hpp"
#include "deskstream/core/heartbeat.hpp"
#include "deskstream/core/protocol.hpp"
#include "relay_impl.hpp"
#include "ws_connection.hpp"

#include <atomic>
#include <memory>
#include <string>

namespace deskstream::relay {

class Session : public WsHandler, public std::enable_shared_from_this<Session> {
public:
    enum class Kind { Agent, Viewer };

    Session(RelayImpl &relay, Kind kind, std::unique_ptr<Poco::Net::WebSocket> ws);
    ~Session() override;

    // Registers with the relay, runs until the connection ends, cleans up.
    void run();

    // Any thread.
    bool sendText(std::string text) { return conn_->sendText(std::move(text)); }
    bool sendMessage(const core::Message &m) { return conn_->sendText(core::serialize(m)); }
    bool sendBinary(Bytes bytes) { return conn_->sendBinary(std::move(bytes)); }
    void close(int code, const std::string &reason) { conn_->close(code, reason); }
    void closeNow(int code, const std::string &reason) { conn_->closeNow(code, reason); }
    void notifyFrames() { conn_->notifyFrames(); }
    core::ConnId id() const { return id_; }
    Kind kind() const { return kind_; }

    // WsHandler (reader thread).
    void onText(std::string &&message) override;
    void onBinary(std::vector<std::uint8_t> &&message) override;
    void onTick(std::chrono::steady_clock::time_point now) override;
    void onTransportError(int closeCode, const std::string &what) override;

private:
    void onHandshake(const core::Handshake &hs);
    void onAgentMessage(const core::Message &m);
    void onViewerMessage(const core::Message &m);
    void onSubscribe(const core::Subscribe &sub);
    void onCommand(const core::CommandMessage &cm);
    // Bad input after the handshake: error answer, counted, logged once; core's AbuseGuard
    // decides when repeated abuse closes the connection (1008, or 1009 for repeated too_large).
    void badInput(Counter kind, const core::Error &error);
    // Our own close decision: close frame queued, state released at once (row removed).
    void closeSelf(int code, const std::string &reason);
    void finish();
    void warnOnce(const std::string &what);

    RelayImpl &relay_;
    Kind kind_;
    std::unique_ptr<WsConnection> conn_;
    core::ConnId id_ = 0;
    std::string peer_;
    core::Heartbeat heartbeat_;
    core::HandshakeTimer handshakeTimer_;
    core::AbuseGuard abuse_;
    bool handshaken_ = false;
    bool finished_ = false;
    std::string clientId_; // agents, once registered
    std::string viewerId_; // viewers, once handshaken
    std::uint32_t streamId_ = 0;
    core::FrameOrderCheck frameOrder_; // monitors advertised, frame numbers in order
    int badCount_ = 0;
    bool warned_ = false;
};

} // namespace deskstream::relay
