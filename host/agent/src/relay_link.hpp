// The agent's connection to the relay: opens the WebSocket, hands every message to the core
// session and performs the actions it returns (send, close, run a command, log), sleeps until
// the session's next deadline, and reconnects when the session says so (backoff and circuit
// breaker are the session's). It is also the sender the encoder stage hands frames to.
#pragma once

#include "ports.hpp"
#include "session_hub.hpp"

#include "deskstream/core/agent_metrics.hpp"

#include <Poco/Logger.h>
#include <Poco/Net/Context.h>
#include <Poco/Net/StreamSocket.h>
#include <Poco/Net/WebSocket.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

namespace deskstream::agent {

struct LinkOptions {
    std::string relayUrl;
    std::string clientId;
    std::chrono::milliseconds connectTimeout{5000};
    std::chrono::milliseconds sendTimeout{10000};
    std::size_t maxMessageBytes = 16u * 1024u * 1024u;
    /// How long the connection thread waits for a frame send in progress before it skips a ping
    /// or, for any other message, checks the heartbeat and waits again: a frame send stuck on a
    /// dead link must not keep the heartbeat from seeing that the link is dead.
    std::chrono::milliseconds controlSendWait{1000};
    /// wss:// only: [agent] tls.ca (PEM; empty: the system CA store) and tls.insecure (tests
    /// only: no certificate check, a warning on each connect). docs/security-tls.md.
    std::string tlsCa;
    bool tlsInsecure = false;
};

class RelayLink : public FrameSender {
public:
    /// `handshake` builds the handshake for each connection; `refused` is called once when the
    /// relay refused the registration or its TLS certificate failed verification (with the
    /// message for the operator). Throws when a wss:// URL's TLS set-up fails ([agent] tls.ca).
    RelayLink(LinkOptions options, SessionHub& hub, CommandRunner& commands,
              core::AgentMetrics& metrics, std::function<core::Handshake()> handshake,
              std::function<void(const std::string&)> refused, Poco::Logger& log);

    /// The connection thread's body; returns when the hub stops.
    void run();
    /// Shuts the socket down (wakes a blocked poll/receive): stop and fatal errors.
    void interrupt();
    /// Ends the connection cleanly (close 1000 `why`): the session reconnects and sends a new
    /// handshake (the monitor layout changed; docs/agent.md).
    void reregister(const std::string& why);

    bool sendFrame(const std::uint8_t* data, std::size_t size) override;
    std::uint64_t bytesSent() const { return bytesSent_; }

private:
    std::shared_ptr<Poco::Net::WebSocket> openSocket();
    /// Bytes OpenSSL already decrypted and holds (wss:// only): poll() on the socket cannot see
    /// them, so the pump reads before polling while there are any.
    bool tlsBuffered();
    std::string pump(Poco::Net::WebSocket& ws);
    void perform(const core::AgentActions& actions);
    /// `fromLink`: a send of the connection thread, which keeps the heartbeat running while it
    /// waits for the socket; `skippable`: given up after controlSendWait (pings, pongs).
    bool sendRaw(const void* data, std::size_t size, int flags, bool fromLink = false,
                 bool skippable = false);
    void closeSocket(int code, const std::string& reason);

    const LinkOptions options_;
    SessionHub& hub_;
    CommandRunner& commands_;
    core::AgentMetrics& metrics_;
    bool attempted_ = false;  // connection thread: the first attempt is not a reconnect
    std::function<core::Handshake()> handshake_;
    std::function<void(const std::string&)> refused_;
    Poco::Logger& log_;
    Poco::Net::Context::Ptr tls_;        // wss:// only
    Poco::Net::StreamSocket tlsSocket_;  // connection thread: the TLS layer under the WebSocket

    std::mutex socketMutex_;  // guards socket_ (the pointer)
    std::shared_ptr<Poco::Net::WebSocket> socket_;
    std::timed_mutex sendMutex_;  // one writer at a time: Poco's WebSocket is not thread-safe
    std::string closeWhy_;        // connection thread: why the session closed the connection
    std::atomic<std::uint64_t> bytesSent_{0};
};

}  // namespace deskstream::agent
