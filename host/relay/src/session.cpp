// Session: the pump between one WebSocket (WsConnection) and its core::RelayConnection.
#include "session.hpp"

#include "deskstream/core/log_context.hpp"

#include <Poco/Logger.h>

#include <algorithm>

namespace deskstream::relay {

namespace {

using core::RelayConnectionConfig;
namespace act = core::relay_action;

WsLimits limitsFor(const RelayOptions& o, Session::Kind kind) {
    WsLimits l;
    l.maxMessageBytes = o.maxMessageBytes;
    l.maxTextBytes = static_cast<int64_t>(core::limits::kMaxControlMessageBytes);
    l.sendTimeoutMs = o.sendTimeoutMs;
    l.receiveTimeoutMs = o.receiveTimeoutMs;
    l.closeGraceMs = o.closeGraceMs;
    l.controlQueueLimit = static_cast<size_t>(std::max(16, o.controlQueueLimit));
    l.frameQueueLimit =
        kind == Session::Kind::Viewer ? static_cast<size_t>(std::max(1, o.viewerQueue)) : 1;
    return l;
}

RelayConnectionConfig connectionConfig(const RelayOptions& o, Session::Kind kind) {
    RelayConnectionConfig c;
    c.kind = kind == Session::Kind::Agent ? RelayConnectionConfig::Kind::Agent
                                          : RelayConnectionConfig::Kind::Viewer;
    c.heartbeatInterval = core::fromMs(o.heartbeatIntervalMs);
    c.missedLimit = o.missedLimit;
    c.handshakeTimeout = core::fromMs(o.handshakeTimeoutMs);
    c.badMessageLimit = o.badMessageLimit;
    c.badMessageWindow = core::fromMs(o.badMessageWindowMs);
    c.authSecret = o.authSecret;
    c.maxMessageBytes = o.maxMessageBytes;
    return c;
}

const char* kindName(Session::Kind k) { return k == Session::Kind::Agent ? "agent" : "viewer"; }

std::chrono::steady_clock::time_point toSteady(core::TimePoint t) {
    using clock = std::chrono::steady_clock;
    // TimePoint::max() (no deadline) must not overflow the steady clock's representation.
    if (t >= core::fromSteady(clock::time_point::max())) return clock::time_point::max();
    return clock::time_point(std::chrono::duration_cast<clock::duration>(t));
}

}  // namespace

Session::Session(RelayImpl& relay, Kind kind, Poco::Net::StreamSocket socket,
                 std::vector<std::uint8_t> early)
    : relay_(relay),
      kind_(kind),
      conn_(std::make_unique<WsConnection>(std::move(socket), limitsFor(relay.options(), kind),
                                           std::move(early))),
      core_(connectionConfig(relay.options(), kind), RelayImpl::monoNow()),
      peer_(conn_->peer()) {}

// The writer thread (inside conn_) may call back into this session: stop it first.
Session::~Session() { conn_.reset(); }

void Session::run() {
    if (kind_ == Kind::Viewer) {
        // Frames come from the core FanOut's queue of this viewer, pulled by its own writer.
        conn_->setFrameSource([this] { return relay_.pullFrame(id_); });
    }
    id_ = relay_.addSession(shared_from_this());
    core::logctx::Scope logFields;  // this pool thread's log fields, restored when it leaves
    core::logctx::set("connection_id", std::to_string(id_));
    relay_.count(Counter::ConnectionsOpened);
    const auto openedAt = std::chrono::steady_clock::now();
    relay_.metrics().connectionStarted(role());
    relay_.log().debug("%s connection %?u from %s opened", std::string(kindName(kind_)), id_,
                       peer_);
    int code = 1006;
    try {
        code = conn_->run(*this);
    } catch (const std::exception& e) {
        relay_.log().error("%s connection %?u: unexpected error: %s", std::string(kindName(kind_)),
                           id_, std::string(e.what()));
    }
    finish();
    const uint64_t dropped = conn_->droppedFrames();
    if (dropped) relay_.count(Counter::FramesDropped, dropped);
    if (dropped) relay_.metrics().framesDropped(RelayMetrics::Drop::LaggingViewer, dropped);
    relay_.removeSession(id_);
    relay_.count(Counter::ConnectionsClosed);
    relay_.metrics().connectionEnded(role(), openedAt);
    const int bad = core_.badMessages();
    if (bad > 1) {
        relay_.log().information("%s %s (%s) closed with %d after %d bad messages",
                                 std::string(kindName(kind_)), who(), peer_, code, bad);
    } else {
        relay_.log().information("%s %s (%s) closed with %d", std::string(kindName(kind_)), who(),
                                 peer_, code);
    }
}

std::string Session::who() const { return core_.peerId().empty() ? "-" : core_.peerId(); }

void Session::finish() {
    if (finished_) return;
    finished_ = true;
    if (kind_ == Kind::Agent) {
        // Unregisters the row at once unless this connection was replaced.
        bool unregisters = false;
        relay_.withRegistry([&](core::Registry& r) {
            core::Actions actions = r.onAgentClosed(id_);
            for (const auto& a : actions)
                unregisters |= std::holds_alternative<core::StoreUnregisterAction>(a);
            return actions;
        });
        if (unregisters) {
            relay_.forgetAgent(core_.peerId());
            relay_.count(Counter::Unregistrations);
        }
        relay_.dropStream(id_);
    } else {
        relay_.withRegistry([&](core::Registry& r) { return r.onViewerClosed(id_); });
        relay_.forgetViewer(id_);
        relay_.dropViewerStreams(id_);
    }
}

std::chrono::steady_clock::time_point Session::nextDeadline() const {
    core::TimePoint t = core_.nextDeadline();
    // An agent's stream also has a deadline: viewers that stopped acknowledging are skipped.
    if (kind_ == Kind::Agent && core_.open()) t = std::min(t, relay_.streamDeadline(id_));
    return toSteady(t);
}

std::uint64_t Session::messageLimit() const {
    // Before the handshake nothing larger than a handshake can be legitimate: a peer that has
    // not authenticated cannot make the relay hold more (docs/relay.md, "WebSocket conformance").
    if (core_.state() == core::RelayConnection::State::AwaitingHandshake)
        return core::limits::kMaxControlMessageBytes;
    return UINT64_MAX;
}

void Session::onTick(std::chrono::steady_clock::time_point now) {
    if (kind_ == Kind::Agent && core_.open()) relay_.tickStream(id_);
    perform(core_.onTick(core::fromSteady(now)));
}

void Session::onText(std::string&& message) {
    perform(core_.onText(message, RelayImpl::monoNow(), RelayImpl::wallNowMs()));
}

void Session::onBinary(std::vector<std::uint8_t>&& message) {
    perform(core_.onBinary(std::move(message), RelayImpl::monoNow()), true);
}

void Session::onTransportError(int closeCode, const std::string& what) {
    perform(core_.onTransportError(closeCode, what));
}

void Session::subscribe(const core::Subscribe& sub) {
    const bool here = relay_.locked(
        [&](const core::Registry& r) { return r.findAgent(sub.desktopClientId).has_value(); });
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
        // Unknown anywhere: bad input for the abuse guard (core::RelayConnection).
        if (holder.empty()) {
            perform(core_.onSubscribeUnknown(sub.desktopClientId, RelayImpl::monoNow()));
            return;
        }
    }
    relay_.withRegistry([&](core::Registry& r) { return r.onSubscribe(id_, sub); });
}

void Session::perform(core::RelayActions actions, bool binary) {
    for (auto& action : actions) {
        if (auto* send = std::get_if<act::Send>(&action)) {
            conn_->sendText(std::move(send->text));
        } else if (auto* close = std::get_if<act::Close>(&action)) {
            if (!close->byTransport) conn_->close(close->code, close->reason);
            finish();
        } else if (auto* count = std::get_if<act::Count>(&action)) {
            relay_.count(count->counter, count->n);
            relay_.metrics().connectionCount(role(), count->counter, count->n, binary);
        } else if (auto* log = std::get_if<act::Log>(&action)) {
            // One line per event, with the client id once known (the connection id before).
            const std::string line =
                std::string(kindName(kind_)) + " " +
                (core_.peerId().empty() ? "connection " + std::to_string(id_) : core_.peerId()) +
                " (" + peer_ + "): " + log->line;
            if (log->level == act::Log::Level::Warning)
                relay_.log().warning(line);
            else if (log->level == act::Log::Level::Info)
                relay_.log().information(line);
            else
                relay_.log().debug(line);
        } else if (auto* reject = std::get_if<act::RejectAgent>(&action)) {
            // Refused at the handshake (the registration_failures count came just before).
            relay_.metrics().registration(reject->code == core::ErrorCode::Unauthorized
                                              ? RelayMetrics::Registration::Unauthorized
                                              : RelayMetrics::Registration::BadRequest);
            relay_.withRegistry([&](core::Registry& r) {
                return r.rejectAgent(id_, reject->clientId, reject->code, reject->message);
            });
        } else if (auto* reg = std::get_if<act::RegisterAgent>(&action)) {
            // Pending -> the store write runs here (StoreRegisterAction) -> ack or failure.
            bool storeWrite = false;  // the registry accepted it and asked for the store write
            relay_.withRegistry([&](core::Registry& r) {
                core::Actions actions = r.onAgentHandshake(id_, reg->handshake, reg->nowMs);
                for (const auto& a : actions)
                    storeWrite |= std::holds_alternative<core::StoreRegisterAction>(a);
                return actions;
            });
            auto info = relay_.locked([&](const core::Registry& r) { return r.agentByConn(id_); });
            // Refused after a store write: the store failed; before it: the handshake was bad.
            // (Success is counted from the core's `registrations` count: RelayMetrics.)
            if (!info) {
                relay_.metrics().registration(storeWrite
                                                  ? RelayMetrics::Registration::StoreUnavailable
                                                  : RelayMetrics::Registration::BadRequest);
            } else {
                core::logctx::set("client_id", info->clientId);
                relay_.log().information("agent %s registered (%s, stream %?u)", info->clientId,
                                         peer_, info->streamId);
            }
            perform(core_.onAgentRegistered(info, RelayImpl::monoNow()));
            if (info) {
                // After its pending commands; viewers resume on this notice instead of polling
                // (docs/protocol.md, desktop_connected).
                relay_.sendToViewers(core::serializeDesktopConnected(
                    core::DesktopSummary{info->clientId, info->name, info->hostname, info->monitors,
                                         static_cast<int>(info->viewers)}));
            }
        } else if (std::holds_alternative<act::RegisterViewer>(action)) {
            relay_.withRegistry([&](core::Registry& r) { return r.onViewerHandshake(id_); });
            auto viewerId = relay_.locked([&](const core::Registry& r) { return r.viewerId(id_); })
                                .value_or("");
            core::logctx::set("client_id", viewerId);
            perform(core_.onViewerRegistered(viewerId, RelayImpl::monoNow()));
        } else if (auto* deliver = std::get_if<act::DeliverPending>(&action)) {
            relay_.deliverPending(deliver->clientId);
        } else if (auto* alive = std::get_if<act::AgentAlive>(&action)) {
            relay_.onAgentAlive(alive->clientId, id_);
        } else if (auto* result = std::get_if<act::StoreCommandResult>(&action)) {
            auto stored = relay_.onCommandResult(result->clientId, result->result);
            perform(core_.onCommandResultStored(stored, RelayImpl::monoNow()));
        } else if (auto* stats = std::get_if<act::KeepAgentStats>(&action)) {
            relay_.onAgentStats(id_, stats->stats);
        } else if (auto* frame = std::get_if<act::ForwardFrame>(&action)) {
            relay_.onAgentFrame(
                id_, std::make_shared<const std::vector<std::uint8_t>>(std::move(frame->bytes)),
                frame->header);
        } else if (auto* ping = std::get_if<act::AnswerViewerPing>(&action)) {
            auto ids = relay_.locked([](const core::Registry& r) { return r.availableDesktops(); });
            sendMessage(core::Pong{ping->timestamp, RelayImpl::wallNowMs(), std::move(ids)});
        } else if (auto* sub = std::get_if<act::SubscribeViewer>(&action)) {
            subscribe(sub->subscribe);
        } else if (auto* unsub = std::get_if<act::UnsubscribeViewer>(&action)) {
            relay_.withRegistry(
                [&](core::Registry& r) { return r.onUnsubscribe(id_, unsub->unsubscribe); });
        } else if (auto* cmd = std::get_if<act::QueueCommand>(&action)) {
            auto queued =
                relay_.queueCommand(relay_.prepareCommand(cmd->command, cmd->viewerId), id_);
            perform(core_.onCommandQueued(queued, RelayImpl::monoNow()));
        } else if (auto* ack = std::get_if<act::AckFrame>(&action)) {
            relay_.onViewerAck(id_, ack->ack);
        }
    }
}

}  // namespace deskstream::relay
