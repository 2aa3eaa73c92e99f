// Session: the pump of one agent or viewer WebSocket, from upgrade to close. It moves bytes and
// actions only: every received message, tick and transport error goes to the connection's
// core::RelayConnection (which owns the rules: handshake first, timeouts, heartbeat, token,
// abuse limits), and the actions that come back are performed here against the shared relay
// state (RelayImpl: registry, commands, fan-out, store). Runs on the HTTPServer thread that
// accepted the socket (WsConnection::run), which sleeps until the connection's next deadline;
// so the core object needs no lock. docs/architecture.md ("Relay") traces a message through.
#pragma once

#include "deskstream/core/relay_connection.hpp"
#include "relay_impl.hpp"
#include "ws_connection.hpp"

#include <memory>
#include <string>

namespace deskstream::relay {

class Session : public WsHandler,
                public PeerConnection,
                public std::enable_shared_from_this<Session> {
public:
    enum class Kind { Agent, Viewer };

    // `socket`: upgraded (101 sent); `early`: bytes read past the upgrade request.
    Session(RelayImpl& relay, Kind kind, Poco::Net::StreamSocket socket,
            std::vector<std::uint8_t> early);
    ~Session() override;

    // Registers with the relay, runs until the connection ends, cleans up.
    void run();

    // Any thread: these only queue onto the connection's writer (or ask it to close).
    bool sendText(std::string text) override { return conn_->sendText(std::move(text)); }
    bool sendMessage(const core::Message& m) override {
        return conn_->sendText(core::serialize(m));
    }
    void close(int code, const std::string& reason) override { conn_->close(code, reason); }
    void closeNow(int code, const std::string& reason) override { conn_->closeNow(code, reason); }
    void notifyFrames() override { conn_->notifyFrames(); }
    core::ConnId id() const { return id_; }
    Kind kind() const { return kind_; }

    // WsHandler (reader thread).
    void onText(std::string&& message) override;
    void onBinary(std::vector<std::uint8_t>&& message) override;
    void onTick(std::chrono::steady_clock::time_point now) override;
    void onTransportError(int closeCode, const std::string& what) override;
    std::chrono::steady_clock::time_point nextDeadline() const override;
    // Until the handshake is accepted only a handshake-sized message (64 KiB) is allowed.
    std::uint64_t messageLimit() const override;

private:
    // Performs the core's actions in order (some feed an outcome back, which adds actions).
    // `binary`: they answer a binary message (for the frame-drop metrics).
    void perform(core::RelayActions actions, bool binary = false);
    RelayMetrics::Role role() const {
        return kind_ == Kind::Agent ? RelayMetrics::Role::Agent : RelayMetrics::Role::Viewer;
    }
    void subscribe(const core::Subscribe& sub);
    // Releases what the relay holds for this connection (registry entry, fan-out). Once.
    void finish();
    std::string who() const;

    RelayImpl& relay_;
    Kind kind_;
    std::unique_ptr<WsConnection> conn_;
    core::RelayConnection core_;
    core::ConnId id_ = 0;
    std::string peer_;
    bool finished_ = false;
};

}  // namespace deskstream::relay
