// deskstream core: the per-connection rules of the relay (see relay_connection.hpp).
#include "deskstream/core/relay_connection.hpp"

#include "deskstream/core/auth.hpp"

namespace deskstream::core {

using namespace relay_action;

const char* counterName(RelayCounter c) {
    switch (c) {
        case RelayCounter::ConnectionsOpened:
            return "connections_opened";
        case RelayCounter::ConnectionsClosed:
            return "connections_closed";
        case RelayCounter::Registrations:
            return "registrations";
        case RelayCounter::RegistrationFailures:
            return "registration_failures";
        case RelayCounter::Replaced:
            return "replaced";
        case RelayCounter::Unregistrations:
            return "unregistrations";
        case RelayCounter::HandshakeTimeouts:
            return "handshake_timeouts";
        case RelayCounter::HeartbeatTimeouts:
            return "heartbeat_timeouts";
        case RelayCounter::AuthFailures:
            return "auth_failures";
        case RelayCounter::BadMessages:
            return "bad_messages";
        case RelayCounter::BadJson:
            return "bad_json";
        case RelayCounter::UnknownTypes:
            return "unknown_types";
        case RelayCounter::BadFrames:
            return "bad_frames";
        case RelayCounter::TooLarge:
            return "too_large";
        case RelayCounter::BinaryBeforeHandshake:
            return "binary_before_handshake";
        case RelayCounter::ProtocolErrors:
            return "protocol_errors";
        case RelayCounter::AbuseCloses:
            return "abuse_closes";
        case RelayCounter::FramesReceived:
            return "frames_received";
        case RelayCounter::FramesForwarded:
            return "frames_forwarded";
        case RelayCounter::FramesDropped:
            return "frames_dropped";
        case RelayCounter::CommandsQueued:
            return "commands_queued";
        case RelayCounter::CommandsDelivered:
            return "commands_delivered";
        case RelayCounter::CommandResults:
            return "command_results";
        case RelayCounter::CommandsExpired:
            return "commands_expired";
        case RelayCounter::RowsReaped:
            return "rows_reaped";
        case RelayCounter::StoreErrors:
            return "store_errors";
        case RelayCounter::HttpRequests:
            return "http_requests";
        case RelayCounter::HttpErrors:
            return "http_errors";
        case RelayCounter::kCount:
            break;
    }
    return "?";
}

RelayConnection::RelayConnection(RelayConnectionConfig config, TimePoint connectedAt)
    : config_(std::move(config)),
      heartbeat_(config_.heartbeatInterval, config_.missedLimit),
      handshakeTimer_(config_.handshakeTimeout, connectedAt),
      abuse_(config_.badMessageLimit, config_.badMessageWindow) {}

TimePoint RelayConnection::nextDeadline() const {
    switch (state_) {
        case State::AwaitingHandshake:
            return handshakeTimer_.nextDeadline();
        case State::Open:
            return heartbeat_.nextDeadline();
        default:
            return TimePoint::max();
    }
}

void RelayConnection::warnOnce(const std::string& what, RelayActions& out) {
    if (warned_) return;  // one line per connection, not per message
    warned_ = true;
    out.push_back(Log{Log::Level::Warning, what + " (further bad input is only counted)"});
}

void RelayConnection::closeWith(State end, int code, const std::string& reason, RelayActions& out) {
    state_ = end;
    out.push_back(Close{code, reason, false});
}

void RelayConnection::refuseHandshake(const Error& error, const std::string& clientId,
                                      const std::string& reason, RelayActions& out) {
    if (isAgent()) {
        out.push_back(Count{RelayCounter::RegistrationFailures, 1});
        out.push_back(RejectAgent{
            clientId, error.code == ErrorCode::TooLarge ? ErrorCode::BadRequest : error.code,
            error.message});
    } else {
        out.push_back(Send{serializeError(error)});
    }
    closeWith(State::Error, close_code::kPolicy, reason, out);
}

void RelayConnection::badInput(RelayCounter kind, const Error& error, TimePoint now,
                               RelayActions& out) {
    out.push_back(Count{RelayCounter::BadMessages, 1});
    out.push_back(Count{kind, 1});
    ++badCount_;
    warnOnce("bad input: " + error.message, out);
    out.push_back(Send{serializeError(error)});
    const HeartbeatAction a = abuse_.onBadInput(error, now);
    if (a.kind == HeartbeatAction::Kind::Close) {
        out.push_back(Count{RelayCounter::AbuseCloses, 1});
        closeWith(State::Error, a.closeCode, a.reason, out);
    }
}

RelayActions RelayConnection::onTick(TimePoint now) {
    RelayActions out;
    if (state_ == State::AwaitingHandshake) {
        const HeartbeatAction a = handshakeTimer_.onTick(now);
        if (a.kind == HeartbeatAction::Kind::Close) {
            out.push_back(Count{RelayCounter::HandshakeTimeouts, 1});
            warnOnce(
                "no handshake within " + std::to_string(toMs(config_.handshakeTimeout)) + " ms",
                out);
            closeWith(State::Closed, a.closeCode, a.reason, out);
        }
    } else if (state_ == State::Open) {
        const HeartbeatAction a = heartbeat_.onTick(now);
        if (a.kind == HeartbeatAction::Kind::SendPing) {
            out.push_back(Send{serialize(Message{Ping{a.timestamp}})});
        } else if (a.kind == HeartbeatAction::Kind::Close) {
            out.push_back(Count{RelayCounter::HeartbeatTimeouts, 1});
            out.push_back(Log{
                Log::Level::Warning,
                "no pong for " +
                    std::to_string(toMs(heartbeat_.interval()) * (heartbeat_.missedLimit() + 1)) +
                    " ms, closing " + std::to_string(a.closeCode)});
            closeWith(State::Closed, a.closeCode, a.reason, out);
        }
    }
    return out;
}

RelayActions RelayConnection::onTransportError(int closeCode, const std::string& what) {
    RelayActions out;
    if (finished()) return out;
    out.push_back(Count{RelayCounter::BadMessages, 1});
    if (closeCode == close_code::kTooLarge) {
        out.push_back(Count{RelayCounter::TooLarge, 1});
        // Tell the peer why before the close frame (it is queued ahead of it).
        // `what` names the limit that applied (text, handshake-sized or max_message_bytes).
        out.push_back(Send{serializeError(makeError(
            ErrorCode::TooLarge, "",
            what.empty()
                ? "message larger than " + std::to_string(config_.maxMessageBytes) + " bytes"
                : what))});
    } else {
        out.push_back(Count{RelayCounter::ProtocolErrors, 1});
    }
    warnOnce(what + " -> close " + std::to_string(closeCode), out);
    ++badCount_;
    state_ = State::Error;
    out.push_back(Close{closeCode, what, true});
    return out;
}

RelayActions RelayConnection::onText(const std::string& text, TimePoint now, WallMs wallNow) {
    RelayActions out;
    if (finished()) return out;
    const Result<Message> parsed =
        parseMessage(text, isAgent() ? Channel::AgentToRelay : Channel::ViewerToRelay);

    if (state_ == State::AwaitingHandshake) {
        // The handshake must come first: anything else closes the connection with 1008.
        if (parsed.ok() && std::holds_alternative<Handshake>(parsed.value())) {
            onHandshake(std::get<Handshake>(parsed.value()), wallNow, out);
            return out;
        }
        const Error err = parsed.ok() ? makeError(ErrorCode::BadRequest, "type",
                                                  "the first message must be a handshake")
                                      : parsed.error();
        out.push_back(Count{RelayCounter::BadMessages, 1});
        out.push_back(Count{parsed.ok() ? RelayCounter::UnknownTypes : RelayCounter::BadJson, 1});
        warnOnce("bad handshake: " + err.message, out);
        refuseHandshake(err, "", "handshake required", out);
        return out;
    }
    if (state_ == State::Registering) {
        // Unreachable with a host that reports the registration before the next message.
        badInput(RelayCounter::UnknownTypes,
                 makeError(ErrorCode::BadRequest, "type", "registration in progress"), now, out);
        return out;
    }

    heartbeat_.onMessage(now);
    if (!parsed.ok()) {
        const Error& e = parsed.error();
        const RelayCounter c = e.code == ErrorCode::TooLarge ? RelayCounter::TooLarge
                               : e.field == "type"           ? RelayCounter::UnknownTypes
                                                             : RelayCounter::BadJson;
        badInput(c, e, now, out);
        return out;
    }
    if (isAgent())
        onAgentMessage(parsed.value(), wallNow, now, out);
    else
        onViewerMessage(parsed.value(), now, out);
    return out;
}

void RelayConnection::onHandshake(const Handshake& hs, WallMs wallNow, RelayActions& out) {
    if (isAgent()) {
        if (hs.role != Role::Desktop) {
            warnOnce("viewer handshake on /ws/agent", out);
            refuseHandshake(
                makeError(ErrorCode::BadRequest, "role", "role must be \"desktop\" on /ws/agent"),
                hs.clientId, "wrong role", out);
            return;
        }
        if (!config_.authSecret.empty()) {
            auto claims = verifyToken(hs.token, config_.authSecret, Role::Desktop, wallNow);
            if (!claims.ok()) {
                out.push_back(Count{RelayCounter::AuthFailures, 1});
                warnOnce("agent " + hs.clientId + " refused: " + claims.error().message, out);
                refuseHandshake(makeError(ErrorCode::Unauthorized, "", claims.error().message),
                                hs.clientId, "unauthorized", out);
                return;
            }
        }
        handshakeTimer_.onHandshake();
        // Pending -> the store write runs in the host -> onAgentRegistered().
        state_ = State::Registering;
        out.push_back(RegisterAgent{hs, wallNow});
        return;
    }

    if (hs.role != Role::Viewer || hs.protocol != limits::kProtocolVersion) {
        out.push_back(Count{RelayCounter::BadMessages, 1});
        const bool badRole = hs.role != Role::Viewer;
        const Error e = makeError(
            ErrorCode::BadRequest, badRole ? "role" : "protocol",
            badRole ? "role must be \"viewer\" on /ws/viewer" : "unsupported protocol version");
        warnOnce(e.message, out);
        refuseHandshake(e, "", "bad handshake", out);
        return;
    }
    if (!config_.authSecret.empty()) {
        auto claims = verifyToken(hs.token, config_.authSecret, Role::Viewer, wallNow);
        if (!claims.ok()) {
            out.push_back(Count{RelayCounter::AuthFailures, 1});
            warnOnce("viewer refused: " + claims.error().message, out);
            refuseHandshake(claims.error(), "", "unauthorized", out);
            return;
        }
    }
    handshakeTimer_.onHandshake();
    state_ = State::Registering;
    out.push_back(RegisterViewer{});
}

RelayActions RelayConnection::onAgentRegistered(const std::optional<AgentInfo>& info,
                                                TimePoint now) {
    RelayActions out;
    const bool registering =
        state_ == State::Registering || (state_ == State::Closed && closedWhileRegistering_);
    if (!registering || !isAgent()) return out;
    closedWhileRegistering_ = false;
    if (!info) {
        // The Registry already sent registration_failed and asked for the close (the close
        // here repeats it for a host that only acts on this object's actions).
        out.push_back(Count{RelayCounter::RegistrationFailures, 1});
        closeWith(State::Closed, close_code::kPolicy, "registration failed", out);
        return out;
    }
    state_ = State::Open;
    peerId_ = info->clientId;
    streamId_ = info->streamId;
    {
        std::vector<int> monitors;
        for (const auto& m : info->monitors) monitors.push_back(m.index);
        frameOrder_ = FrameOrderCheck(monitors);
    }
    heartbeat_.start(now);
    out.push_back(Count{RelayCounter::Registrations, 1});
    // Commands stored while it was away (or for its previous connection).
    out.push_back(DeliverPending{peerId_});
    return out;
}

RelayActions RelayConnection::onViewerRegistered(const std::string& viewerId, TimePoint now) {
    RelayActions out;
    if (state_ != State::Registering || isAgent()) return out;
    state_ = State::Open;
    peerId_ = viewerId;
    heartbeat_.start(now);
    out.push_back(Log{Log::Level::Debug, "viewer " + viewerId + " connected"});
    return out;
}

void RelayConnection::onAgentMessage(const Message& m, WallMs wallNow, TimePoint now,
                                     RelayActions& out) {
    if (auto* ping = std::get_if<Ping>(&m)) {
        out.push_back(Send{serialize(Message{Pong{ping->timestamp, wallNow, std::nullopt}})});
        out.push_back(AgentAlive{peerId_});
    } else if (auto* pong = std::get_if<Pong>(&m)) {
        heartbeat_.onPong(now, pong->timestamp);
        out.push_back(AgentAlive{peerId_});
    } else if (auto* result = std::get_if<CommandResult>(&m)) {
        out.push_back(StoreCommandResult{peerId_, *result});
    } else if (auto* stats = std::get_if<AgentStats>(&m)) {
        out.push_back(KeepAgentStats{*stats});
    } else if (auto* err = std::get_if<ErrorMessage>(&m)) {
        out.push_back(Log{Log::Level::Warning, "agent " + peerId_ + " reports an error: " +
                                                   toString(err->code) + ": " + err->message});
    } else if (std::holds_alternative<Handshake>(m)) {
        badInput(RelayCounter::UnknownTypes,
                 makeError(ErrorCode::BadRequest, "type", "already registered"), now, out);
    } else {
        badInput(RelayCounter::UnknownTypes,
                 makeError(ErrorCode::BadRequest, "type",
                           std::string("unexpected message type ") + typeName(m)),
                 now, out);
    }
}

void RelayConnection::onViewerMessage(const Message& m, TimePoint now, RelayActions& out) {
    if (auto* ping = std::get_if<Ping>(&m)) {
        out.push_back(AnswerViewerPing{ping->timestamp});
    } else if (auto* pong = std::get_if<Pong>(&m)) {
        heartbeat_.onPong(now, pong->timestamp);
    } else if (auto* sub = std::get_if<Subscribe>(&m)) {
        out.push_back(SubscribeViewer{*sub});
    } else if (auto* unsub = std::get_if<Unsubscribe>(&m)) {
        out.push_back(UnsubscribeViewer{*unsub});
    } else if (auto* cmd = std::get_if<CommandMessage>(&m)) {
        out.push_back(QueueCommand{*cmd, peerId_});
    } else if (auto* ack = std::get_if<ViewerFrameAck>(&m)) {
        out.push_back(AckFrame{*ack});
    } else if (std::holds_alternative<Handshake>(m)) {
        badInput(RelayCounter::UnknownTypes,
                 makeError(ErrorCode::BadRequest, "type", "already handshaken"), now, out);
    } else {
        badInput(RelayCounter::UnknownTypes,
                 makeError(ErrorCode::BadRequest, "type",
                           std::string("unexpected message type ") + typeName(m)),
                 now, out);
    }
}

RelayActions RelayConnection::onCommandResultStored(const Result<bool>& stored, TimePoint now) {
    RelayActions out;
    if (finished() || stored.ok()) return out;
    if (stored.error().code == ErrorCode::Internal)
        out.push_back(
            Send{serializeError(stored.error())});  // store trouble: not the agent's fault
    else
        badInput(RelayCounter::BadJson, stored.error(), now, out);
    return out;
}

RelayActions RelayConnection::onSubscribeUnknown(const std::string& desktopClientId,
                                                 TimePoint now) {
    RelayActions out;
    if (finished() || isAgent()) return out;
    badInput(RelayCounter::BadJson,
             makeError(ErrorCode::NotFound, "desktopClientId",
                       "desktop '" + desktopClientId + "' is not connected"),
             now, out);
    return out;
}

RelayActions RelayConnection::onCommandQueued(const Result<CommandQueued>& queued, TimePoint now) {
    RelayActions out;
    if (finished()) return out;
    if (queued.ok()) {
        out.push_back(Send{serialize(Message{queued.value()})});
    } else if (queued.error().code == ErrorCode::Internal) {
        out.push_back(Send{serializeError(queued.error())});  // store trouble: not the peer's fault
    } else {
        badInput(RelayCounter::BadJson, queued.error(), now, out);
    }
    return out;
}

RelayActions RelayConnection::onBinary(std::vector<std::uint8_t> bytes, TimePoint now) {
    RelayActions out;
    if (finished()) return out;
    if (state_ != State::Open) {
        out.push_back(Count{RelayCounter::BadMessages, 1});
        out.push_back(Count{RelayCounter::BinaryBeforeHandshake, 1});
        warnOnce("binary message before the handshake", out);
        refuseHandshake(
            makeError(ErrorCode::BadRequest, "", "the first message must be a handshake"), "",
            "handshake required", out);
        return out;
    }
    heartbeat_.onMessage(now);
    if (!isAgent()) {
        badInput(RelayCounter::BadFrames,
                 makeError(ErrorCode::BadRequest, "", "viewers do not send binary messages"), now,
                 out);
        return out;
    }
    out.push_back(Count{RelayCounter::FramesReceived, 1});
    auto header = decodeFrameChecked(bytes.data(), bytes.size(),
                                     static_cast<std::size_t>(config_.maxMessageBytes));
    if (!header.ok()) {
        badInput(header.error().code == ErrorCode::TooLarge ? RelayCounter::TooLarge
                                                            : RelayCounter::BadFrames,
                 header.error(), now, out);
        return out;
    }
    if (auto e = frameOrder_.onFrame(header.value())) {
        badInput(RelayCounter::BadFrames, *e, now, out);
        return out;
    }
    // The relay trusts its own stream id, then forwards the bytes as they are.
    rewriteStreamId(bytes.data(), bytes.size(), streamId_);
    FrameHeader h = header.value();
    h.streamId = streamId_;
    out.push_back(ForwardFrame{std::move(bytes), h});
    return out;
}

}  // namespace deskstream::core
