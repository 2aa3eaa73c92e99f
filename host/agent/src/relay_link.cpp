// The agent's connection to the relay: socket in, core session, actions out (see
// relay_link.hpp). The only file of the agent that touches the WebSocket.
#include "relay_link.hpp"

#include "clock.hpp"
#include "tls_client.hpp"

#include <Poco/Buffer.h>
#include <Poco/Exception.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/HTTPSClientSession.h>
#include <Poco/Net/SSLException.h>
#include <Poco/URI.h>

#include <algorithm>
#include <stdexcept>
#include <tuple>

namespace deskstream::agent {

using Poco::Net::WebSocket;

namespace {

// What to tell the operator after registration_failed, by code.
std::string registrationAdvice(core::ErrorCode code) {
    switch (code) {
        case core::ErrorCode::StoreUnavailable:
            return "check that the relay's store is reachable and that its database user may "
                   "write active_desktop_clients";
        case core::ErrorCode::Unauthorized:
            return "check [agent] token: it must be a desktop token signed with the relay's "
                   "[auth] secret, not expired, and minted for this client_id "
                   "(deskstream token --role desktop --sub <client_id>)";
        case core::ErrorCode::ProtocolMismatch:
            return "the relay speaks another protocol version: upgrade the agent or the relay";
        default:
            return "check the agent's handshake (client_id, monitors) against the relay log";
    }
}

std::string closeReason(const Poco::Buffer<char>& b) {
    if (b.size() < 2) return {};
    int code = (static_cast<unsigned char>(b[0]) << 8) | static_cast<unsigned char>(b[1]);
    std::string text(b.begin() + 2, b.size() - 2);
    return text.empty() ? std::to_string(code) : std::to_string(code) + " " + text;
}

bool isOpen(core::AgentSessionState s) {
    return s == core::AgentSessionState::AwaitingAck || s == core::AgentSessionState::Registered;
}

}  // namespace

RelayLink::RelayLink(LinkOptions options, SessionHub& hub, CommandRunner& commands,
                     core::AgentMetrics& metrics, std::function<core::Handshake()> handshake,
                     std::function<void(const std::string&)> refused, Poco::Logger& log)
    : options_(std::move(options)),
      hub_(hub),
      commands_(commands),
      metrics_(metrics),
      handshake_(std::move(handshake)),
      refused_(std::move(refused)),
      log_(log) {
    // Built once, before the threads start: an unreadable [agent] tls.ca fails start-up.
    if (Poco::URI(options_.relayUrl).getScheme() == "wss")
        tls_ = makeClientTlsContext(options_.tlsCa, options_.tlsInsecure);
}

// ------------------------------------------------------------------ connection thread

void RelayLink::run() {
    while (true) {
        // Sleep until the session says the next attempt is due (backoff, open breaker), or stop.
        core::AgentActions actions;
        {
            auto lock = hub_.lock();
            core::AgentSession& s = hub_.locked();
            while (hub_.runningLocked() && !s.attemptDue(monoNow()))
                hub_.waitUntil(lock, s.nextDeadline());
            if (!hub_.runningLocked()) break;
            actions = s.onAttempt(monoNow());
        }
        if (attempted_) metrics_.reconnect();
        attempted_ = true;
        perform(actions);

        std::string why;
        try {
            auto ws = openSocket();
            {
                std::lock_guard<std::mutex> lock(socketMutex_);
                socket_ = ws;
            }
            closeWhy_.clear();
            core::Handshake handshake = handshake_();
            perform(hub_.change([&](core::AgentSession& s) {
                return s.onConnected(monoNow(), std::move(handshake));
            }));
            why = pump(*ws);
        } catch (const CertificateProblem& e) {
            // Fatal, like a refused registration: the relay is not the one configured, or its
            // certificate cannot be trusted, and no retry changes that (docs/security-tls.md).
            const std::string msg = std::string(e.what()) +
                                    " — give the relay's CA in [agent] tls.ca, or fix the relay's "
                                    "certificate (its names must include the relay_url host)";
            log_.error("agent %s: %s", options_.clientId, msg);
            refused_(msg);
            why = e.what();
        } catch (const Poco::Exception& e) {
            why = e.displayText();
        } catch (const std::exception& e) {
            why = e.what();
        }
        {
            std::lock_guard<std::mutex> lock(socketMutex_);
            socket_.reset();
        }
        if (tls_) tlsSocket_ = Poco::Net::StreamSocket();
        if (!hub_.running()) break;
        perform(
            hub_.change([&](core::AgentSession& s) { return s.onDisconnected(monoNow(), why); }));
    }
}

// One connection: tick the session at its deadlines and feed it what arrives, until the
// connection ends. Returns why it ended.
std::string RelayLink::pump(WebSocket& ws) {
    Poco::Buffer<char> buffer(0);
    while (true) {
        if (!hub_.running()) {
            closeSocket(core::close_code::kNormal, "agent stopping");
            return "agent stopping";
        }
        auto [actions, deadline, open] = hub_.change([](core::AgentSession& s) {
            const core::TimePoint now = monoNow();
            core::AgentActions a;
            if (now >= s.nextDeadline()) a = s.onTick(now);
            return std::make_tuple(std::move(a), s.nextDeadline(), isOpen(s.state()));
        });
        perform(actions);
        if (!open) return closeWhy_.empty() ? std::string("connection closed") : closeWhy_;

        // Sleep until the session's next deadline or until data is there. The socket is only
        // read after poll() said so: a receive timeout never cuts a frame in half (docs/agent.md).
        const auto waitUs = std::clamp<std::int64_t>((deadline - monoNow()).count(), 0, 60'000'000);
        if (!tlsBuffered() && !ws.poll(Poco::Timespan(waitUs), Poco::Net::Socket::SELECT_READ))
            continue;

        int flags = 0;
        buffer.resize(0);
        const int n = ws.receiveFrame(buffer, flags);
        const int opcode = flags & WebSocket::FRAME_OP_BITMASK;
        if (n == 0 && flags == 0) return "connection closed by the relay";
        if (opcode == WebSocket::FRAME_OP_CLOSE) {
            const std::string reason = closeReason(buffer);
            log_.warning("agent %s: relay closed the connection%s", options_.clientId,
                         reason.empty() ? std::string() : " (" + reason + ")");
            return "relay closed the connection" +
                   (reason.empty() ? std::string() : " (" + reason + ")");
        }
        if (opcode == WebSocket::FRAME_OP_TEXT) {
            const std::string text(buffer.begin(), buffer.size());
            perform(hub_.change([&](core::AgentSession& s) {
                auto a = s.onText(text, monoNow(), wallMs());
                metrics_.inFlight(static_cast<int>(s.flow().inFlight()));  // acks retire frames
                metrics_.quality(s.quality());
                return a;
            }));
            continue;
        }
        hub_.with([](core::AgentSession& s) { s.onFrameReceived(monoNow()); });
        if (opcode == WebSocket::FRAME_OP_PING)
            sendRaw(buffer.begin(), buffer.size(),
                    WebSocket::FRAME_FLAG_FIN | WebSocket::FRAME_OP_PONG,
                    /*fromLink=*/true, /*skippable=*/true);
        // binary, pong: nothing for the agent
    }
}

bool RelayLink::tlsBuffered() {
    try {
        return tls_ && tlsSocket_.impl() && tlsSocket_.available() > 0;  // SSL_pending
    } catch (const Poco::Exception&) {
        return false;  // the socket is gone: the poll/read that follows reports it
    }
}

std::shared_ptr<WebSocket> RelayLink::openSocket() {
    Poco::URI uri(options_.relayUrl);
    const bool secure = uri.getScheme() == "wss";
    if (!secure && uri.getScheme() != "ws")
        throw std::runtime_error(
            "relay_url must be ws://host:port/ws/agent or wss://host:port/ws/agent (got scheme '" +
            uri.getScheme() + "')");
    std::unique_ptr<Poco::Net::HTTPClientSession> session;
    if (secure) {
        if (options_.tlsInsecure)
            log_.warning(
                "agent %s: [agent] tls.insecure = true: the relay's certificate is NOT checked "
                "(tests only; anyone on the path can read and change this connection)",
                options_.clientId);
        session =
            std::make_unique<Poco::Net::HTTPSClientSession>(uri.getHost(), uri.getPort(), tls_);
        tlsSocket_ = session->socket();  // the same SecureStreamSocketImpl the WebSocket will use
    } else {
        session = std::make_unique<Poco::Net::HTTPClientSession>(uri.getHost(), uri.getPort());
    }
    session->setTimeout(Poco::Timespan(options_.connectTimeout.count() * 1000));
    Poco::Net::HTTPRequest request(Poco::Net::HTTPRequest::HTTP_GET,
                                   uri.getPathEtc().empty() ? "/ws/agent" : uri.getPathEtc(),
                                   Poco::Net::HTTPMessage::HTTP_1_1);
    Poco::Net::HTTPResponse response;
    std::shared_ptr<WebSocket> ws;
    clearCertificateProblem();
    try {
        ws = std::make_shared<WebSocket>(*session, request, response);
    } catch (const Poco::Net::SSLException& e) {
        // A chain problem is reported by OpenSSL's verify callback (lastCertificateProblem);
        // a host-name mismatch by Poco after the handshake (CertificateValidationException).
        // With tls.insecure nothing is checked, so no failure is the certificate's.
        if (options_.tlsInsecure) throw;
        const std::string problem = lastCertificateProblem();
        if (!problem.empty())
            throw CertificateProblem("the relay's TLS certificate failed verification: " + problem);
        if (dynamic_cast<const Poco::Net::CertificateValidationException*>(&e))
            throw CertificateProblem(
                "the relay's TLS certificate failed verification: " + e.displayText() +
                " (its names do not include '" + uri.getHost() + "')");
        throw;
    }
    ws->setNoDelay(true);  // small control messages must not wait behind Nagle
    ws->setMaxPayloadSize(static_cast<int>(options_.maxMessageBytes));
    ws->setSendTimeout(Poco::Timespan(options_.sendTimeout.count() * 1000));
    // Reads only start after poll() said data is there; this long timeout then only guards
    // against a peer that stalls mid-frame, which is fatal for the connection (docs/agent.md).
    ws->setReceiveTimeout(Poco::Timespan(30, 0));
    return ws;
}

// ------------------------------------------------------------------ actions

void RelayLink::perform(const core::AgentActions& actions) {
    std::chrono::milliseconds lastDelay{0};
    for (const auto& action : actions) {
        if (auto* send = std::get_if<core::AgentSend>(&action)) {
            const std::string text = core::serialize(send->message);
            const bool isPing = std::holds_alternative<core::Ping>(send->message);
            sendRaw(text.data(), text.size(), WebSocket::FRAME_TEXT, /*fromLink=*/true,
                    /*skippable=*/isPing);
        } else if (auto* close = std::get_if<core::AgentClose>(&action)) {
            closeWhy_ = close->reason;
            closeSocket(close->code, close->reason);
        } else if (auto* exec = std::get_if<core::AgentExecute>(&action)) {
            std::string error;
            try {
                error = commands_.run(exec->command);
            } catch (const std::exception& e) {
                error = e.what();
                if (error.empty()) error = "failed";
            }
            perform(hub_.change([&](core::AgentSession& s) {
                return s.onCommandDone(exec->commandId, exec->command, error);
            }));
        } else if (auto* reg = std::get_if<core::AgentRegistered>(&action)) {
            log_.information("agent %s: registered with relay %s (instance %s, stream %u)",
                             options_.clientId, options_.relayUrl, reg->ack.instanceId,
                             static_cast<unsigned>(reg->ack.streamId));
        } else if (auto* refused = std::get_if<core::AgentRefused>(&action)) {
            const std::string msg = "registration refused by the relay: code " +
                                    std::string(core::toString(refused->failure.code)) +
                                    ", reason: " + refused->failure.error + " — " +
                                    registrationAdvice(refused->failure.code);
            log_.error("agent %s: %s", options_.clientId, msg);
            refused_(msg);
        } else if (auto* streaming = std::get_if<core::AgentStreamingChanged>(&action)) {
            log_.information(
                "agent %s: %s", options_.clientId,
                std::string(streaming->streaming
                                ? "streaming started (a viewer is watching)"
                                : "streaming stopped (no viewer): idle, encoding nothing"));
        } else if (auto* retry = std::get_if<core::AgentRetry>(&action)) {
            lastDelay = retry->delay;
            if (retry->wasRegistered)
                log_.warning("agent %s: connection to %s lost: %s; reconnecting", options_.clientId,
                             options_.relayUrl, retry->why);
            else if (retry->consecutiveFailures == 1)
                log_.warning("agent %s: cannot connect to %s: %s (retrying with backoff)",
                             options_.clientId, options_.relayUrl, retry->why);
        } else if (auto* breaker = std::get_if<core::AgentBreakerChanged>(&action)) {
            metrics_.breaker(breaker->state);
            if (breaker->state == core::BreakerState::Open)
                log_.error(
                    "agent %s: circuit breaker open after %d failed attempts to reach %s; "
                    "next attempt in %d s",
                    options_.clientId, breaker->consecutiveFailures, options_.relayUrl,
                    static_cast<int>(lastDelay.count() / 1000));
            else if (breaker->state == core::BreakerState::HalfOpen)
                log_.information("agent %s: circuit breaker half-open: probing %s",
                                 options_.clientId, options_.relayUrl);
            else
                log_.information("agent %s: circuit breaker closed", options_.clientId);
        } else if (auto* notice = std::get_if<core::AgentNotice>(&action)) {
            switch (notice->level) {
                case core::AgentNotice::Level::Debug:
                    log_.debug("agent %s: %s", options_.clientId, notice->text);
                    break;
                case core::AgentNotice::Level::Info:
                    log_.information("agent %s: %s", options_.clientId, notice->text);
                    break;
                case core::AgentNotice::Level::Warning:
                    log_.warning("agent %s: %s", options_.clientId, notice->text);
                    break;
            }
        }
    }
}

// ------------------------------------------------------------------ sending

bool RelayLink::sendFrame(const std::uint8_t* data, std::size_t size) {
    if (!sendRaw(data, size, WebSocket::FRAME_BINARY)) return false;
    bytesSent_ += size;
    return true;
}

bool RelayLink::sendRaw(const void* data, std::size_t size, int flags, bool fromLink,
                        bool skippable) {
    std::shared_ptr<WebSocket> ws;
    {
        std::lock_guard<std::mutex> lock(socketMutex_);
        ws = socket_;
    }
    if (!ws) return false;
    try {
        std::unique_lock<std::timed_mutex> lock(sendMutex_, std::defer_lock);
        if (!fromLink) {
            lock.lock();
        } else {
            while (!lock.try_lock_for(options_.controlSendWait)) {
                // A frame send holds the socket: a slow link, or a dead one. A ping is left out
                // (its missing pong counts against the heartbeat); anything else waits, and the
                // heartbeat keeps running meanwhile, so a dead link is still closed on time
                // (interval x (missed + 1), docs/agent.md) instead of when the send times out.
                if (skippable) return false;
                auto [actions, open] = hub_.change([](core::AgentSession& s) {
                    const core::TimePoint now = monoNow();
                    core::AgentActions a;
                    if (now >= s.nextDeadline()) a = s.onTick(now);
                    return std::make_pair(std::move(a), isOpen(s.state()));
                });
                perform(actions);
                if (!open) return false;
            }
        }
        ws->sendFrame(data, static_cast<int>(size), flags);
        return true;
    } catch (const Poco::Exception& e) {
        log_.warning("agent %s: send failed: %s", options_.clientId, e.displayText());
    } catch (const std::exception& e) {
        log_.warning("agent %s: send failed: %s", options_.clientId, std::string(e.what()));
    }
    interrupt();  // the connection thread notices and reconnects
    return false;
}

void RelayLink::closeSocket(int code, const std::string& reason) {
    std::shared_ptr<WebSocket> ws;
    {
        std::lock_guard<std::mutex> lock(socketMutex_);
        ws = socket_;
    }
    if (!ws) return;
    std::unique_lock<std::timed_mutex> lock(sendMutex_, std::defer_lock);
    if (!lock.try_lock_for(options_.controlSendWait)) {
        interrupt();  // a frame send is stuck on the socket: no close frame, just shut it
        return;
    }
    try {
        ws->shutdown(static_cast<Poco::UInt16>(code), reason);
    } catch (...) {}
}

void RelayLink::reregister(const std::string& why) {
    log_.information("agent %s: re-registering with %s: %s", options_.clientId, options_.relayUrl,
                     why);
    closeSocket(core::close_code::kNormal, why);
}

void RelayLink::interrupt() {
    std::shared_ptr<WebSocket> ws;
    {
        std::lock_guard<std::mutex> lock(socketMutex_);
        ws = socket_;
    }
    if (!ws) return;
    try {
        // TCP shutdown, not WebSocket::shutdown(), which would send a close frame and block on
        // the same full socket; not under sendMutex: a send stuck on a dead peer must not block
        // this, and the shutdown wakes that send (docs/agent.md).
        ws->Poco::Net::StreamSocket::shutdown();
    } catch (...) {}
}

}  // namespace deskstream::agent
