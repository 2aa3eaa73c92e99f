// deskstream core: the agent's side of its link to the relay, as one sans-IO object (in the
// manner of h11's Connection and quiche's connection): events in, actions out, no I/O, no clock,
// no randomness of its own.
//
// It owns every protocol rule of the agent (docs/agent.md, docs/protocol.md):
//   * handshake first, then wait for handshake_ack (registered) or registration_failed (final,
//     state Refused); no answer within handshakeTimeout closes the connection;
//   * heartbeat against the relay once registered (ping every interval, 4008 after
//     interval x (missedLimit + 1) of silence), pongs to the relay's pings;
//   * the frame window, adaptive quality and pacing (AgentFlow), and the agent_stats message;
//   * idle when unwatched: frames are wanted only between start_stream and stop_stream;
//   * commands executed at most once (CommandDedup): a redelivered command is confirmed again
//     with `done` and counted as a duplicate, never executed twice;
//   * reconnection: full-jitter backoff behind a circuit breaker (ReconnectPolicy), with the
//     randomness injected by the host.
// A message the relay cannot send in the current state (frame_ack before handshake_ack: no
// frame was sent; a second handshake_ack; registration_failed after the registration) is a
// protocol violation: the session closes the connection (1008) and enters state Error, where it
// ignores input until the host reports the connection gone. start_stream, stop_stream and
// command are accepted while the handshake_ack is still on its way (the relay's registry counts
// the agent in before that ack is written). Text that does not parse is ignored and counted
// (tolerant reader).
//
// The host drives it (one instance for the agent's lifetime, across reconnections):
//   attemptDue(now)            -> onAttempt(now); connect; onConnected(now, handshake) or
//                                 onDisconnected(now, why)
//   text / other frames        -> onText(text, now, wallMs) / onFrameReceived(now)
//   timer                      -> onTick(now), sleeping until nextDeadline() in between
//   an Execute action          -> run it, then onCommandDone(id, command, error)
//   connection gone            -> onDisconnected(now, why): schedules the next attempt
//   capture thread             -> takeCaptureSlot(now), sleeping until nextCaptureAt()
//   encoder thread             -> admitFrame(now) after each encoded frame
// and performs the returned actions in order. Not thread-safe: the host serializes calls.
#pragma once

#include "deskstream/core/commands.hpp"
#include "deskstream/core/flow.hpp"
#include "deskstream/core/heartbeat.hpp"
#include "deskstream/core/protocol.hpp"
#include "deskstream/core/reconnect.hpp"
#include "deskstream/core/types.hpp"

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace deskstream::core {

struct AgentSessionConfig {
    FlowConfig flow;
    ReconnectOptions reconnect;
    Duration heartbeatInterval = std::chrono::seconds(5);  // until handshake_ack says otherwise
    int missedLimit = 3;
    Duration handshakeTimeout = std::chrono::seconds(10);
    Duration statsInterval = std::chrono::seconds(2);  // agent_stats while registered
    std::size_t dedupCapacity = 4096;                  // executed commandIds remembered
    // A still screen gives no new picture (damage-driven capture): each monitor's last frame is
    // sent again at least this often, so a viewer the agent is not told about (a second
    // subscriber) gets a picture within it (docs/agent.md, "A picture for every viewer").
    Duration pictureRefresh = std::chrono::seconds(1);
};

enum class AgentSessionState {
    Disconnected,  // no connection; the next attempt is due at nextDeadline()
    AwaitingAck,   // handshake sent, waiting for handshake_ack / registration_failed
    Registered,    // handshake_ack received: heartbeat, frames and commands
    Closing,       // the session closed the connection (timeout); waiting for it to go
    Error,         // the relay violated the protocol; closed with 1008, input ignored
    Refused,       // registration_failed: final, no more attempts
};
const char* toString(AgentSessionState s);

// ---------------------------------------------------------------- actions (performed in order)

/// Send `message` as a text frame.
struct AgentSend {
    Message message;
};
/// Close the connection with a close frame (code, reason).
struct AgentClose {
    int code = close_code::kNormal;
    std::string reason;
};
/// Run a command (set_config, input, request_keyframe), then report onCommandDone().
struct AgentExecute {
    std::string commandId;
    Command command;
};
/// The relay accepted the registration.
struct AgentRegistered {
    AgentHandshakeAck ack;
};
/// registration_failed: the session is over for good.
struct AgentRefused {
    RegistrationFailed failure;
};
/// start_stream / stop_stream changed whether frames are wanted.
struct AgentStreamingChanged {
    bool streaming = false;
};
/// The circuit breaker changed state (reported once per change).
struct AgentBreakerChanged {
    BreakerState state = BreakerState::Closed;
    int consecutiveFailures = 0;
};
/// The connection is gone (or could not be made); the next attempt is in `delay`.
struct AgentRetry {
    std::chrono::milliseconds delay{0};
    bool wasRegistered = false;  // lost after registration (else: could not connect/register)
    int consecutiveFailures = 0;
    std::string why;
};
/// Something worth one log line that needs no other action.
struct AgentNotice {
    enum class Level { Debug, Info, Warning };
    Level level = Level::Info;
    std::string text;
};

using AgentAction =
    std::variant<AgentSend, AgentClose, AgentExecute, AgentRegistered, AgentRefused,
                 AgentStreamingChanged, AgentBreakerChanged, AgentRetry, AgentNotice>;
using AgentActions = std::vector<AgentAction>;

struct AgentSessionCounters {
    std::uint64_t registrations = 0;      // successful registrations
    std::uint64_t commandsExecuted = 0;   // commands run (done or failed), each id once
    std::uint64_t commandsDuplicate = 0;  // redelivered ids confirmed without running
    std::uint64_t framesEncoded = 0;      // frames offered to admitFrame()
    std::uint64_t badMessages = 0;        // text from the relay that did not parse
    std::uint64_t protocolErrors = 0;     // violations that closed the connection
};

/// A frame the window admitted: send it with this number and stream id.
struct AdmittedFrame {
    std::uint64_t frameNumber = 0;
    std::uint32_t streamId = 0;
};

enum class CaptureSlot {
    Wait,     // not wanted (not registered, not streaming) or not due yet: nextCaptureAt()
    Skip,     // due, but the window is full: dropped (counted) before any capture work
    Capture,  // capture now
};

class AgentSession {
public:
    /// `uniform01` returns a uniformly distributed number in [0, 1) (reconnection jitter).
    AgentSession(AgentSessionConfig config, std::function<double()> uniform01);

    // ------------------------------------------------------------ connection lifecycle
    /// True when disconnected and the next connection attempt is due.
    bool attemptDue(TimePoint now) const;
    /// A connection attempt starts now (an open breaker becomes half-open).
    AgentActions onAttempt(TimePoint now);
    /// The WebSocket is open: sends `handshake` (role desktop) and waits for the answer.
    AgentActions onConnected(TimePoint now, Handshake handshake);
    /// The connection failed or is gone: schedules the next attempt (none when Refused).
    AgentActions onDisconnected(TimePoint now, const std::string& why);

    // ------------------------------------------------------------ input
    /// One text message from the relay. `wallNow` is the pong's serverTime.
    AgentActions onText(const std::string& text, TimePoint now, WallMs wallNow);
    /// Any other frame (binary, WebSocket ping/pong): a life sign, nothing else.
    void onFrameReceived(TimePoint now);
    /// Timers: handshake timeout, heartbeat, lost frames, agent_stats.
    AgentActions onTick(TimePoint now);
    /// The earliest instant onTick (or an attempt) has something to do; TimePoint::max() when
    /// nothing is scheduled. The connection thread sleeps until then.
    TimePoint nextDeadline() const;

    // ------------------------------------------------------------ commands
    /// The host ran an AgentExecute: `error` empty means done. A successful set_config also
    /// applies its fps and quality to the flow. Sends the command_result.
    AgentActions onCommandDone(const std::string& commandId, const Command& command,
                               const std::string& error);

    // ------------------------------------------------------------ capture and encoding
    /// True while registered and streaming (a viewer watches).
    bool wantsFrames() const { return state_ == AgentSessionState::Registered && streaming_; }
    /// When the next capture is due; TimePoint::max() while frames are not wanted.
    TimePoint nextCaptureAt() const;
    /// Takes the capture slot that is due at `now` (Capture), drops it when the window is full
    /// (Skip, counted), or says to wait.
    CaptureSlot takeCaptureSlot(TimePoint now);
    /// A frame was encoded: gives it a number and admits it into the window, or drops it
    /// (window full, or no longer registered).
    std::optional<AdmittedFrame> admitFrame(TimePoint now);
    /// Asked once per capture slot taken: true when every monitor that has no new picture must
    /// send its last frame again (start_stream, a done request_keyframe, or pictureRefresh
    /// passed since the last time it said so). Saying true consumes the debt.
    bool takePictureRepeat(TimePoint now);
    /// The quality to encode with (adaptive, within [quality.min, quality.max]).
    int quality() const { return flow_.quality(); }

    // ------------------------------------------------------------ inspection
    AgentSessionState state() const { return state_; }
    bool connected() const;
    bool registered() const { return state_ == AgentSessionState::Registered; }
    bool streaming() const { return streaming_; }
    std::uint32_t streamId() const { return streamId_; }
    const AgentFlow& flow() const { return flow_; }
    const AgentSessionCounters& counters() const { return counters_; }
    BreakerState breaker() const { return policy_.state(); }
    std::optional<Duration> lastAckLatency() const { return flow_.lastLatency(); }
    /// The heartbeat in use (the relay's interval once registered).
    Duration heartbeatInterval() const { return heartbeat_.interval(); }

private:
    void handleRegistered(const Message& m, TimePoint now, WallMs wallNow, AgentActions& out);
    void handleCommand(const CommandMessage& c, TimePoint now, AgentActions& out);
    void setStreaming(bool on, TimePoint now, AgentActions& out);
    void violation(const std::string& what, AgentActions& out);
    void takeBreakerChange(AgentActions& out);
    AgentStats statsMessage() const;

    AgentSessionConfig config_;
    ReconnectPolicy policy_;
    AgentFlow flow_;
    Heartbeat heartbeat_;
    CommandDedup dedup_;
    AgentSessionState state_ = AgentSessionState::Disconnected;
    bool streaming_ = false;
    bool registeredThisConnection_ = false;
    std::uint32_t streamId_ = 0;
    std::uint64_t frameNumber_ = 0;
    bool pictureOwed_ = false;                   // start_stream / request_keyframe since
    TimePoint lastRepeatAt_ = TimePoint::min();  // takePictureRepeat last said true
    TimePoint retryAt_ = TimePoint::min();       // the first attempt is due at once
    TimePoint handshakeDeadline_ = TimePoint::max();
    TimePoint nextStats_ = TimePoint::max();
    AgentSessionCounters counters_;
};

}  // namespace deskstream::core
