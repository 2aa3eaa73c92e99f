#include "session.hpp"

#include "deskstream/core/auth.hpp"
#include "deskstream/core/frame_header.hpp"

#include <Poco/Logger.h>

namespace deskstream::relay {

namespace {

WsLimits limitsFor(const RelayOptions &o, Session::Kind kind) {
    WsLimits l;
    l.max_message_bytes = o.max_message_bytes;
    l.send_timeout_ms = o.send_timeout_ms;
    l.receive_timeout_ms = o.receive_timeout_ms;
    l.close_grace_ms = o.close_grace_ms;
    l.control_queue_limit = static_cast<size_t>(std::max(16, o.control_queue_limit));
    l.frame_queue_limit = kind == Session::Kind::Viewer
                              ? static_cast<size_t>(std::max(1, o.viewer_queue))
                              : 1;
    // Tick often enough to honour the shortest timer (tests use 100 ms heartbeats).
    const int64_t shortest = std::min(o.heartbeat_interval_ms, o.handshake_timeout_ms);
    l.tick = std::chrono::milliseconds(std::clamp<int64_t>(shortest / 10, 5, 50));
    return l;
}

const char *kindName(Session::Kind k) { return k == Session::Kind::Agent ? "agent" : "viewer"; }

} // namespace

Session::Session(RelayImpl &relay, Kind kind, std::unique_ptr<Poco::Net::WebSocket> ws)
    : relay_(relay), kind_(kind),
      conn_(std::make_unique<WsConnection>(std::move(ws), limitsFor(relay.options(), kind))),
      peer_(conn_->peer()),
      heartbeat_(core::fromMs(relay.options().heartbeat_interval_ms), relay.options().missed_limit),
      handshakeTimer_(core::fromMs(relay.options().handshake_timeout_ms), RelayImpl::monoNow()),
      abuse_(relay.options().bad_message_limit, core::fromMs(relay.options().bad_message_window_ms)) {}

// The writer thread (inside conn_) may call back into this session: stop it first.
Session::~Session() { conn_.reset(); }

void Session::run() {
    if (kind_ == Kind::Viewer) {
        // Frames come from the core FanOut's queue of this viewer, pulled by its own writer.
        conn_->setFrameSource([this] { return relay_.pullFrame(id_); });
    }
    id_ = relay_.addSession(shared_from_this());
    relay_.count(Counter::ConnectionsOpened);
    relay_.log().debug("%s connection %?u from %s opened", std::string(kindName(kind_)), id_, peer_);
    int code = 1006;
    try {
        code = conn_->run(*this);
    } catch (const std::exception &e) {
        relay_.log().error("%s connection %?u: unexpected error: %s", std::string(kindName(kind_)),
                           id_, std::string(e.what()));
    }
    finish();
    const uint64_t dropped = conn_->droppedFrames();
    if (dropped) relay_.count(Counter::FramesDropped, dropped);
    relay_.removeSession(id_);
    relay_.count(Counter::ConnectionsClosed);
    const std::string who = !clientId_.empty() ? clientId_ : (!viewerId_.empty() ? viewerId_ : "-");
    if (badCount_ > 1) {
        relay_.log().information("%s %s (%s) closed with %d after %d bad messages",
                             std::string(kindName(kind_)), who, peer_, code, badCount_);
    } else {
        relay_.log().information("%s %s (%s) closed with %d", std::string(kindName(kind_)), who,
                                 peer_, code);
    }
}

void Session::finish() {
    if (finished_) return;
    finished_ = true;
    if (kind_ == Kind::Agent) {
        // Unregisters the row at once unless this connection was replaced.
        bool unregisters = false;
        relay_.withRegistry([&](core::Registry &r) {
            core::Actions actions = r.onAgentClosed(id_);
            for (const auto &a : actions)
                unregisters |= std::holds_alternative<core::StoreUnregisterAction>(a);
            return actions;
        });
        if (unregisters) {
            relay_.forgetAgent(clientId_);
            relay_.count(Counter::Unregistrations);
        }
        relay_.dropStream(id_);
    } else {
        relay_.withRegistry([&](core::Registry &r) { return r.onViewerClosed(id_); });
        relay_.forgetViewer(id_);
        relay_.dropViewerStreams(id_);
    }
}

void Session::closeSelf(int code, const std::string &reason) {
    conn_->close(code, reason);
    finish();
}

void Session::warnOnce(const std::string &what) {
    if (warned_) return; // one line per connection, not per message
    warned_ = true;
    relay_.log().warning("%s connection %?u (%s): %s (further bad input is only counted)",
                         std::string(kindName(kind_)), id_, peer_, what);
}

void Session::onTransportError(int closeCode, const std::string &what) {
    relay_.count(Counter::BadMessages);
    if (closeCode == 1009) {
        relay_.count(Counter::TooLarge);
        // Tell the peer why before the close frame (it is queued ahead of it).
        conn_->sendText(core::serializeError(core::makeError(
            core::ErrorCode::TooLarge, "",
            "message larger than " + std::to_string(relay_.options().max_message_bytes) + " bytes")));
    } else {
        relay_.count(Counter::ProtocolErrors);
    }
    warnOnce(what + " -> close " + std::to_string(closeCode));
    ++badCount_;
    finish();
}

void Session::badInput(Counter kind, const core::Error &error) {
    relay_.count(Counter::BadMessages);
    relay_.count(kind);
    ++badCount_;
    warnOnce("bad input: " + error.message);
    conn_->sendText(core::serializeError(error));
    core::HeartbeatAction a = abuse_.onBadInput(error, RelayImpl::monoNow());
    if (a.kind == core::HeartbeatAction::Kind::Close) {
        relay_.count(Counter::AbuseCloses);
        closeSelf(a.closeCode, a.reason);
    }
}

void Session::onTick(std::chrono::steady_clock::time_point now) {
    const core::TimePoint t = core::fromSteady(now);
    if (!handshaken_) {
        core::HeartbeatAction a = handshakeTimer_.onTick(t);
        if (a.kind == core::HeartbeatAction::Kind::Close) {
            relay_.count(Counter::HandshakeTimeouts);
            warnOnce("no handshake within " + std::to_string(relay_.options().handshake_timeout_ms) + " ms");
            closeSelf(a.closeCode, a.reason);
        }
        return;
    }
    if (kind_ == Kind::Agent) relay_.tickStream(id_); // skips viewers that stopped acking
    core::HeartbeatAction a = heartbeat_.onTick(t);
    if (a.kind == core::HeartbeatAction::Kind::SendPing) {
        conn_->sendText(core::serialize(core::Message{core::Ping{a.timestamp}}));
    } else if (a.kind == core::HeartbeatAction::Kind::Close) {
        relay_.count(Counter::HeartbeatTimeouts);
        relay_.log().warning("%s %s (%s): no pong for %?d ms, closing %d",
                             std::string(kindName(kind_)),
                             !clientId_.empty() ? clientId_ : viewerId_, peer_,
                             core::toMs(heartbeat_.interval()) * (heartbeat_.missedLimit() + 1),
                             a.closeCode);
        closeSelf(a.closeCode, a.reason);
    }
}

void Session::onText(std::string &&message) {
    const core::TimePoint now = RelayImpl::monoNow();
    const core::Channel channel =
        kind_ == Kind::Agent ? core::Channel::AgentToRelay : core::Channel::ViewerToRelay;
    core::Result<core::Message> parsed = core::parseMessage(message, channel);

    if (!handshaken_) {
        // The handshake must come first: anything else closes the connection with 1008.
        if (parsed.ok() && std::holds_alternative<core::Handshake>(parsed.value())) {
            onHandshake(std::get<core::Handshake>(parsed.value()));
            return;
        }
        core::Error err = parsed.ok() ? core::makeError(core::ErrorCode::BadRequest, "type",
                                                        "the first message must be a handshake")
                                      : parsed.error();
        relay_.count(Counter::BadMessages);
        relay_.count(parsed.ok() ? Counter::UnknownTypes : Counter::BadJson);
        warnOnce("bad handshake: " + err.message);
        if (kind_ == Kind::Agent) {
            relay_.count(Counter::RegistrationFailures);
            relay_.withRegistry([&](core::Registry &r) {
                return r.rejectAgent(id_, "", err.code == core::ErrorCode::TooLarge
                                                  ? core::ErrorCode::BadRequest
                                                  : err.code,
                                     err.message);
            });
        } else {
            conn_->sendText(core::serializeError(err));
        }
        closeSelf(1008, "handshake required");
        return;
    }

    heartbeat_.onMessage(now);
    if (!parsed.ok()) {
        const core::Error &e = parsed.error();
        Counter c = e.code == core::ErrorCode::TooLarge ? Counter::TooLarge
                    : e.field == "type"                 ? Counter::UnknownTypes
                                                        : Counter::BadJson;
        badInput(c, e);
        return;
    }
    if (kind_ == Kind::Agent) onAgentMessage(parsed.value());
    else onViewerMessage(parsed.value());
}

void Session::onHandshake(const core::Handshake &hs) {
    const RelayOptions &o = relay_.options();
    const int64_t nowMs = RelayImpl::wallNowMs();
    if (kind_ == Kind::Agent) {
        if (hs.role != core::Role::Desktop) {
            relay_.count(Counter::RegistrationFailures);
            warnOnce("viewer handshake on /ws/agent");
            relay_.withRegistry([&](core::Registry &r) {
                return r.rejectAgent(id_, hs.clientId, core::ErrorCode::BadRequest,
                                     "role must be \"desktop\" on /ws/agent");
            });
            closeSelf(1008, "wrong role"); // no-op when the registry already closed it
            return;
        }
        if (!o.auth_secret.empty()) {
            auto claims = core::verifyToken(hs.token, o.auth_secret, core::Role::Desktop, nowMs);
            if (!claims.ok()) {
                relay_.count(Counter::AuthFailures);
                relay_.count(Counter::RegistrationFailures);
                warnOnce("agent " + hs.clientId + " refused: " + claims.error().message);
                relay_.withRegistry([&](core::Registry &r) {
                    return r.rejectAgent(id_, hs.clientId, core::ErrorCode::Unauthorized,
                                         claims.error().message);
                });
                closeSelf(1008, "unauthorized");
                return;
            }
        }
        handshakeTimer_.onHandshake();
        // Pending -> the store write runs here (StoreRegisterAction) -> ack or failure.
        relay_.withRegistry([&](core::Registry &r) { return r.onAgentHandshake(id_, hs, nowMs); });
        auto info = relay_.locked([&](const core::Registry &r) { return r.agentByConn(id_); });
        if (!info) {
            relay_.count(Counter::RegistrationFailures);
            closeSelf(1008, "registration failed"); // no-op when the registry closed it already
            return;
        }
        handshaken_ = true;
        clientId_ = info->clientId;
        streamId_ = info->streamId;
        {
            std::vector<int> monitors;
            for (const auto &m : info->monitors) monitors.push_back(m.index);
            frameOrder_ = core::FrameOrderCheck(monitors);
        }
        heartbeat_.start(RelayImpl::monoNow());
        relay_.count(Counter::Registrations);
        relay_.log().information("agent %s registered (%s, stream %?u)", clientId_, peer_, streamId_);
        // Commands stored while it was away (or for its previous connection).
        relay_.deliverPending(clientId_);
        return;
    }

    // Viewer.
    if (hs.role != core::Role::Viewer || hs.protocol != core::limits::kProtocolVersion) {
        relay_.count(Counter::BadMessages);
        core::Error e = core::makeError(core::ErrorCode::BadRequest, hs.role != core::Role::Viewer ? "role" : "protocol",
                                        hs.role != core::Role::Viewer
                                            ? "role must be \"viewer\" on /ws/viewer"
                                            : "unsupported protocol version");
        warnOnce(e.message);
        conn_->sendText(core::serializeError(e));
        closeSelf(1008, "bad handshake");
        return;
    }
    if (!o.auth_secret.empty()) {
        auto claims = core::verifyToken(hs.token, o.auth_secret, core::Role::Viewer, nowMs);
        if (!claims.ok()) {
            relay_.count(Counter::AuthFailures);
            warnOnce("viewer refused: " + claims.error().message);
            conn_->sendText(core::serializeError(claims.error()));
            closeSelf(1008, "unauthorized");
            return;
        }
    }
    handshakeTimer_.onHandshake();
    relay_.withRegistry([&](core::Registry &r) { return r.onViewerHandshake(id_); });
    viewerId_ = relay_.locked([&](const core::Registry &r) { return r.viewerId(id_); }).value_or("");
    handshaken_ = true;
    heartbeat_.start(RelayImpl::monoNow());
    relay_.log().debug("viewer %s connected (%s)", viewerId_, peer_);
}

void Session::onAgentMessage(const core::Message &m) {
    if (auto *ping = std::get_if<core::Ping>(&m)) {
        sendMessage(core::Pong{ping->timestamp, RelayImpl::wallNowMs(), std::nullopt});
        relay_.onAgentAlive(clientId_, id_);
    } else if (auto *pong = std::get_if<core::Pong>(&m)) {
        heartbeat_.onPong(RelayImpl::monoNow(), pong->timestamp);
        relay_.onAgentAlive(clientId_, id_);
    } else if (auto *result = std::get_if<core::CommandResult>(&m)) {
        auto r = relay_.onCommandResult(clientId_, *result);
        if (!r.ok() && r.error().code == core::ErrorCode::Internal)
            sendText(core::serializeError(r.error())); // store trouble: not the agent's fault
        else if (!r.ok())
            badInput(Counter::BadJson, r.error());
    } else if (auto *stats = std::get_if<core::AgentStats>(&m)) {
        relay_.onAgentStats(id_, *stats);
    } else if (auto *err = std::get_if<core::ErrorMessage>(&m)) {
        relay_.log().warning("agent %s reports an error: %s: %s", clientId_,
                             std::string(core::toString(err->code)), err->message);
    } else if (std::holds_alternative<core::Handshake>(m)) {
        badInput(Counter::UnknownTypes,
                 core::makeError(core::ErrorCode::BadRequest, "type", "already registered"));
    } else {
        badInput(Counter::UnknownTypes,
                 core::makeError(core::ErrorCode::BadRequest, "type",
                                 std::string("unexpected message type ") + core::typeName(m)));
    }
}

void Session::onViewerMessage(const core::Message &m) {
    if (auto *ping = std::get_if<core::Ping>(&m)) {
        auto ids = relay_.locked([](const core::Registry &r) { return r.availableDesktops(); });
        sendMessage(core::Pong{ping->timestamp, RelayImpl::wallNowMs(), std::move(ids)});
    } else if (auto *pong = std::get_if<core::Pong>(&m)) {
        heartbeat_.onPong(RelayImpl::monoNow(), pong->timestamp);
    } else if (auto *sub = std::get_if<core::Subscribe>(&m)) {
        onSubscribe(*sub);
    } else if (auto *unsub = std::get_if<core::Unsubscribe>(&m)) {
        relay_.withRegistry([&](core::Registry &r) { return r.onUnsubscribe(id_, *unsub); });
    } else if (auto *cmd = std::get_if<core::CommandMessage>(&m)) {
        onCommand(*cmd);
    } else if (auto *ack = std::get_if<core::ViewerFrameAck>(&m)) {
        relay_.onViewerAck(id_, *ack);
    } else if (std::holds_alternative<core::Handshake>(m)) {
        badInput(Counter::UnknownTypes,
                 core::makeError(core::ErrorCode::BadRequest, "type", "already handshaken"));
    } else {
        badInput(Counter::UnknownTypes,
                 core::makeError(core::ErrorCode::BadRequest, "type",
                                 std::string("unexpected message type ") + core::typeName(m)));
    }
}

void Session::onSubscribe(const core::Subscribe &sub) {
    const bool here = relay_.locked([&](const core::Registry &r) {
        return r.findAgent(sub.desktopClientId).has_value();
    });
    if (!here) {
        // Held by another instance of a shared store: send the viewer there.
        const std::string holder = relay_.holderOf(sub.desktopClientId);
        if (!holder.empty() && holder != relay_.instanceId()) {
            const std::string url = relay_.viewerUrlOf(holder);
            if (!url.empty()) {
                sendMessage(core::Redirect{url, sub.desktopClientId});
                return;
            }
        }
        // Unknown anywhere: bad input for the abuse guard, so probing ids is bounded per connection.
        if (holder.empty()) {
            badInput(Counter::BadJson, core::makeError(core::ErrorCode::NotFound, "desktopClientId",
                                                       "desktop '" + sub.desktopClientId +
                                                           "' is not connected"));
            return;
        }
    }
    relay_.withRegistry([&](core::Registry &r) { return r.onSubscribe(id_, sub); });
}

void Session::onCommand(const core::CommandMessage &cm) {
    auto prepared = relay_.prepareCommand(cm, viewerId_);
    auto queued = relay_.queueCommand(prepared, id_);
    if (!queued.ok()) {
        if (queued.error().code == core::ErrorCode::Internal) {
            sendText(core::serializeError(queued.error())); // store trouble: not the peer's fault
        } else {
            badInput(Counter::BadJson, queued.error());
        }
        return;
    }
    sendMessage(queued.value());
}

void Session::onBinary(std::vector<std::uint8_t> &&message) {
    if (!handshaken_) {
        relay_.count(Counter::BadMessages);
        relay_.count(Counter::BinaryBeforeHandshake);
        warnOnce("binary message before the handshake");
        core::Error e = core::makeError(core::ErrorCode::BadRequest, "",
                                        "the first message must be a handshake");
        if (kind_ == Kind::Agent) {
            relay_.count(Counter::RegistrationFailures);
            relay_.withRegistry([&](core::Registry &r) {
                return r.rejectAgent(id_, "", core::ErrorCode::BadRequest, e.message);
            });
        } else {
            conn_->sendText(core::serializeError(e));
        }
        closeSelf(1008, "handshake required");
        return;
    }
    heartbeat_.onMessage(RelayImpl::monoNow());
    if (kind_ == Kind::Viewer) {
        badInput(Counter::BadFrames, core::makeError(core::ErrorCode::BadRequest, "",
                                                     "viewers do not send binary messages"));
        return;
    }
    relay_.count(Counter::FramesReceived);
    auto header = core::decodeFrameChecked(message.data(), message.size(),
                                           static_cast<size_t>(relay_.options().max_message_bytes));
    if (!header.ok()) {
        badInput(header.error().code == core::ErrorCode::TooLarge ? Counter::TooLarge
                                                                  : Counter::BadFrames,
                 header.error());
        return;
    }
    if (auto e = frameOrder_.onFrame(header.value())) {
        badInput(Counter::BadFrames, *e);
        return;
    }
    // The relay trusts its own stream id, then forwards the bytes as they are.
    core::rewriteStreamId(message.data(), message.size(), streamId_);
    relay_.onAgentFrame(id_, std::make_shared<const std::vector<std::uint8_t>>(std::move(message)),
                        header.value());
}

} // namespace deskstream::relay
