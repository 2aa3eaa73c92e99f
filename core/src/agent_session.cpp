// deskstream core: the agent's protocol rules as one sans-IO session (see agent_session.hpp).
#include "deskstream/core/agent_session.hpp"

#include <algorithm>
#include <cmath>

namespace deskstream::core {

const char* toString(AgentSessionState s) {
    switch (s) {
        case AgentSessionState::Disconnected:
            return "disconnected";
        case AgentSessionState::AwaitingAck:
            return "awaiting-ack";
        case AgentSessionState::Registered:
            return "registered";
        case AgentSessionState::Closing:
            return "closing";
        case AgentSessionState::Error:
            return "error";
        case AgentSessionState::Refused:
            return "refused";
    }
    return "?";
}

namespace {
constexpr std::size_t kMaxResultError = 1000;  // command_result error text sent to the relay
}  // namespace

AgentSession::AgentSession(AgentSessionConfig config, std::function<double()> uniform01)
    : config_(std::move(config)),
      policy_(config_.reconnect, std::move(uniform01)),
      flow_(config_.flow),
      heartbeat_(config_.heartbeatInterval, config_.missedLimit),
      dedup_(std::max<std::size_t>(1, config_.dedupCapacity)) {}

bool AgentSession::connected() const {
    return state_ == AgentSessionState::AwaitingAck || state_ == AgentSessionState::Registered ||
           state_ == AgentSessionState::Closing || state_ == AgentSessionState::Error;
}

void AgentSession::takeBreakerChange(AgentActions& out) {
    if (auto change = policy_.takeStateChange())
        out.push_back(AgentBreakerChanged{*change, policy_.consecutiveFailures()});
}

// ------------------------------------------------------------------ connection lifecycle

bool AgentSession::attemptDue(TimePoint now) const {
    return state_ == AgentSessionState::Disconnected && now >= retryAt_;
}

AgentActions AgentSession::onAttempt(TimePoint /*now*/) {
    AgentActions out;
    if (state_ != AgentSessionState::Disconnected) return out;
    policy_.onAttempt();
    takeBreakerChange(out);
    return out;
}

AgentActions AgentSession::onConnected(TimePoint now, Handshake handshake) {
    AgentActions out;
    if (state_ != AgentSessionState::Disconnected) return out;
    handshake.role = Role::Desktop;
    handshake.protocol = limits::kProtocolVersion;
    state_ = AgentSessionState::AwaitingAck;
    registeredThisConnection_ = false;
    streaming_ = false;
    flow_.reset();
    handshakeDeadline_ = now + config_.handshakeTimeout;
    out.push_back(AgentSend{std::move(handshake)});
    return out;
}

AgentActions AgentSession::onDisconnected(TimePoint now, const std::string& why) {
    AgentActions out;
    if (state_ == AgentSessionState::Refused) return out;  // final: no more attempts
    const bool wasRegistered = registeredThisConnection_;
    state_ = AgentSessionState::Disconnected;
    registeredThisConnection_ = false;
    streaming_ = false;
    flow_.reset();
    handshakeDeadline_ = TimePoint::max();
    nextStats_ = TimePoint::max();
    // After a registration the failure sequence starts afresh (onSuccess reset it), so the
    // first retry is quick; otherwise backoff grows and the breaker may open.
    const std::chrono::milliseconds delay = policy_.onFailure();
    retryAt_ = now + delay;
    out.push_back(AgentRetry{delay, wasRegistered, policy_.consecutiveFailures(), why});
    takeBreakerChange(out);
    return out;
}

// ------------------------------------------------------------------ input

void AgentSession::onFrameReceived(TimePoint now) {
    if (state_ == AgentSessionState::Registered) heartbeat_.onMessage(now);
}

void AgentSession::violation(const std::string& what, AgentActions& out) {
    ++counters_.protocolErrors;
    state_ = AgentSessionState::Error;
    streaming_ = false;
    out.push_back(
        AgentNotice{AgentNotice::Level::Warning, "protocol violation by the relay: " + what});
    out.push_back(AgentClose{close_code::kPolicy, "protocol violation"});
}

AgentActions AgentSession::onText(const std::string& text, TimePoint now, WallMs wallNow) {
    AgentActions out;
    if (state_ != AgentSessionState::AwaitingAck && state_ != AgentSessionState::Registered)
        return out;  // not connected, closing, error or refused: input is ignored
    if (state_ == AgentSessionState::Registered) heartbeat_.onMessage(now);
    auto parsed = parseMessage(text, Channel::RelayToAgent);
    if (!parsed) {
        ++counters_.badMessages;
        out.push_back(
            AgentNotice{AgentNotice::Level::Warning,
                        "ignoring a bad message from the relay: " + parsed.error().message});
        return out;
    }
    const Message& m = parsed.value();
    if (state_ == AgentSessionState::Registered) {
        handleRegistered(m, now, wallNow, out);
        return out;
    }
    // AwaitingAck: only the answer to the handshake, and the messages any state allows.
    if (auto* ack = std::get_if<AgentHandshakeAck>(&m)) {
        state_ = AgentSessionState::Registered;
        registeredThisConnection_ = true;
        handshakeDeadline_ = TimePoint::max();
        heartbeat_ = Heartbeat(fromMs(std::max<std::int64_t>(1, ack->heartbeatIntervalMs)),
                               config_.missedLimit);
        heartbeat_.start(now);
        streamId_ = ack->streamId;
        flow_.reset();
        flow_.setRelayWindow(ack->maxInFlight);
        nextStats_ = now;  // the first agent_stats goes out at the next tick
        ++counters_.registrations;
        policy_.onSuccess();
        out.push_back(AgentRegistered{*ack});
        takeBreakerChange(out);
    } else if (auto* failed = std::get_if<RegistrationFailed>(&m)) {
        state_ = AgentSessionState::Refused;
        handshakeDeadline_ = TimePoint::max();
        out.push_back(AgentRefused{*failed});
    } else if (std::holds_alternative<AgentFrameAck>(m)) {
        violation("frame_ack before handshake_ack (no frame was sent)", out);
    } else {
        // ping, error, and the messages a relay may send while its handshake_ack is still on
        // its way (start_stream, stop_stream, command: its registry already counts us in).
        handleRegistered(m, now, wallNow, out);
    }
    return out;
}

void AgentSession::handleRegistered(const Message& m, TimePoint now, WallMs wallNow,
                                    AgentActions& out) {
    if (auto* ping = std::get_if<Ping>(&m)) {
        out.push_back(AgentSend{Pong{ping->timestamp, wallNow, std::nullopt}});
    } else if (auto* pong = std::get_if<Pong>(&m)) {
        heartbeat_.onPong(now, pong->timestamp);
    } else if (auto* ack = std::get_if<AgentFrameAck>(&m)) {
        AckOutcome r = flow_.onAck(ack->frameNumber, now);
        if (r.known && r.qualityChange != 0)
            out.push_back(AgentNotice{AgentNotice::Level::Debug,
                                      "latency " + std::to_string(toMs(r.latency)) +
                                          " ms -> quality " + std::to_string(r.quality)});
    } else if (std::holds_alternative<StartStream>(m)) {
        setStreaming(true, now, out);
    } else if (std::holds_alternative<StopStream>(m)) {
        setStreaming(false, now, out);
    } else if (auto* cmd = std::get_if<CommandMessage>(&m)) {
        handleCommand(*cmd, now, out);
    } else if (auto* err = std::get_if<ErrorMessage>(&m)) {
        out.push_back(AgentNotice{
            AgentNotice::Level::Warning,
            "relay reported an error: " + std::string(toString(err->code)) + " " + err->message});
    } else if (state_ == AgentSessionState::Registered) {
        // handshake_ack again, registration_failed after the registration.
        violation(std::string(typeName(m)) + " after registration", out);
    }
}

void AgentSession::setStreaming(bool on, TimePoint now, AgentActions& out) {
    const bool changed = streaming_ != on;
    streaming_ = on;
    if (on) flow_.onCaptured(now - flow_.period());  // the first capture is due at once
    if (on) pictureOwed_ = true;  // the (new) viewers need a whole picture, changed or not
    if (changed) out.push_back(AgentStreamingChanged{on});
}

void AgentSession::handleCommand(const CommandMessage& c, TimePoint now, AgentActions& out) {
    if (!dedup_.markExecuted(c.commandId)) {
        // At-least-once delivery: confirm again, never execute twice.
        ++counters_.commandsDuplicate;
        out.push_back(AgentSend{CommandResult{c.commandId, CommandStatus::Done, "", ""}});
        return;
    }
    switch (c.command.type) {
        case CommandType::StartStream:
        case CommandType::StopStream:
            // The stream state is the session's own: no host work.
            setStreaming(c.command.type == CommandType::StartStream, now, out);
            ++counters_.commandsExecuted;
            out.push_back(AgentSend{CommandResult{c.commandId, CommandStatus::Done, "", ""}});
            return;
        case CommandType::SetConfig:
        case CommandType::RequestKeyframe:
        case CommandType::Input:
            out.push_back(AgentExecute{c.commandId, c.command});
            return;
    }
}

AgentActions AgentSession::onCommandDone(const std::string& commandId, const Command& command,
                                         const std::string& error) {
    AgentActions out;
    ++counters_.commandsExecuted;
    if (error.empty() && command.type == CommandType::SetConfig) {
        if (command.config.fps) flow_.setFps(*command.config.fps);
        if (command.config.quality) flow_.setQuality(*command.config.quality);
    }
    if (error.empty() && command.type == CommandType::RequestKeyframe) pictureOwed_ = true;
    CommandResult result;
    result.commandId = commandId;
    result.status = error.empty() ? CommandStatus::Done : CommandStatus::Failed;
    result.error = error.substr(0, kMaxResultError);
    if (!error.empty())
        out.push_back(AgentNotice{
            AgentNotice::Level::Warning,
            "command " + commandId + " (" + toString(command.type) + ") failed: " + error});
    // Connection lost meanwhile: the result is lost too; the relay redelivers and the dedup
    // confirms it then.
    if (state_ == AgentSessionState::Registered || state_ == AgentSessionState::AwaitingAck)
        out.push_back(AgentSend{std::move(result)});
    return out;
}

// ------------------------------------------------------------------ timers

AgentActions AgentSession::onTick(TimePoint now) {
    AgentActions out;
    if (state_ == AgentSessionState::AwaitingAck) {
        if (now >= handshakeDeadline_) {
            state_ = AgentSessionState::Closing;
            handshakeDeadline_ = TimePoint::max();
            out.push_back(AgentClose{close_code::kPolicy,
                                     "no handshake_ack within " +
                                         std::to_string(toMs(config_.handshakeTimeout)) + " ms"});
        }
        return out;
    }
    if (state_ != AgentSessionState::Registered) return out;
    HeartbeatAction hb = heartbeat_.onTick(now);
    if (hb.kind == HeartbeatAction::Kind::Close) {
        state_ = AgentSessionState::Closing;
        streaming_ = false;
        out.push_back(AgentNotice{
            AgentNotice::Level::Warning,
            "relay silent for " +
                std::to_string(toMs(heartbeat_.interval()) * (heartbeat_.missedLimit() + 1)) +
                " ms: closing (heartbeat timeout)"});
        out.push_back(AgentClose{hb.closeCode, hb.reason});
        return out;
    }
    if (hb.kind == HeartbeatAction::Kind::SendPing) out.push_back(AgentSend{Ping{hb.timestamp}});
    flow_.onTick(now);        // frames unacknowledged for too long leave the window as lost
    if (now >= nextStats_) {  // the figures only the agent knows, for /api/desktops
        out.push_back(AgentSend{statsMessage()});
        nextStats_ = now + config_.statsInterval;
    }
    return out;
}

TimePoint AgentSession::nextDeadline() const {
    switch (state_) {
        case AgentSessionState::Disconnected:
            return retryAt_;
        case AgentSessionState::AwaitingAck:
            return handshakeDeadline_;
        case AgentSessionState::Registered:
            return std::min({heartbeat_.nextDeadline(), nextStats_, flow_.nextExpiry()});
        case AgentSessionState::Closing:
        case AgentSessionState::Error:
        case AgentSessionState::Refused:
            return TimePoint::max();
    }
    return TimePoint::max();
}

AgentStats AgentSession::statsMessage() const {
    AgentStats s;
    s.quality = flow_.quality();
    s.fps = static_cast<int>(std::lround(flow_.fps()));
    s.inFlight = static_cast<int>(flow_.inFlight());
    s.framesEncoded = counters_.framesEncoded;
    s.framesSent = flow_.sent();
    s.framesDroppedWindow = flow_.dropped();
    if (auto l = flow_.lastLatency()) s.latencyMs = toMs(*l);
    return s;
}

// ------------------------------------------------------------------ capture and encoding

TimePoint AgentSession::nextCaptureAt() const {
    return wantsFrames() ? flow_.nextCaptureAt() : TimePoint::max();
}

CaptureSlot AgentSession::takeCaptureSlot(TimePoint now) {
    if (!wantsFrames() || !flow_.captureDue(now)) return CaptureSlot::Wait;
    flow_.onCaptured(now);
    flow_.onTick(now);  // a lost ack must not keep the window closed
    if (flow_.windowFull()) {
        // Window full: this frame is dropped (counted) before it costs any capture or encoding.
        ++frameNumber_;
        flow_.onWindowFullSkip();
        return CaptureSlot::Skip;
    }
    return CaptureSlot::Capture;
}

bool AgentSession::takePictureRepeat(TimePoint now) {
    if (!wantsFrames()) return false;
    if (!pictureOwed_ && lastRepeatAt_ != TimePoint::min() &&
        now - lastRepeatAt_ < config_.pictureRefresh)
        return false;
    pictureOwed_ = false;
    lastRepeatAt_ = now;
    return true;
}

std::optional<AdmittedFrame> AgentSession::admitFrame(TimePoint now) {
    ++counters_.framesEncoded;
    const std::uint64_t number = ++frameNumber_;
    if (state_ != AgentSessionState::Registered) return std::nullopt;
    if (!flow_.onFrameReady(number, now)) return std::nullopt;  // window full: dropped, counted
    return AdmittedFrame{number, streamId_};
}

}  // namespace deskstream::core
