// deskstream core: the per-connection rules of the relay, for one agent or viewer WebSocket
// (sans-IO, in the manner of h11's Connection: events in, actions out, no clock, no socket).
//
// The host's pump feeds every event of one connection, on one thread:
//   onText(text, now, wallNow)     a complete text message
//   onBinary(bytes, now)           a complete binary message
//   onTick(now)                    at the latest at nextDeadline() (handshake timeout, pings)
//   onTransportError(code, what)   the WebSocket layer found a framing error / oversized message
//   on...Result(...)               the outcome of an action that needed the shared relay state
//                                  (registration, command storage, command result storage)
// and performs the returned actions in order. Rules owned here (docs/architecture.md):
//   * the handshake comes first; anything else (or nothing within handshakeTimeout) -> 1008;
//   * role, protocol version and token (when a secret is set) are checked on the handshake;
//     agents' failures go out as registration_failed (through the shared Registry) + 1008;
//   * after the handshake: heartbeat pings every interval, close 4008 when nothing was heard for
//     interval x (missedLimit + 1); any message proves life;
//   * bad input gets an `error` answer; repeated bad input closes (AbuseGuard: 1008 / 1009);
//   * which message types each side may send after the handshake;
//   * an agent's frame order (FrameOrderCheck: advertised monitors, numbers never going back,
//     at most 2^53-1) — a frame breaking it is a bad frame and is not forwarded.
// Rules that need state shared between connections (registration and replacement with 4000,
// subscriptions, command routing, fan-out) stay in Registry / CommandRouter / FanOut; this
// object asks for them with actions and gets their outcome back as events.
//
// States: AwaitingHandshake -> (agent: Registering ->) Open -> Closed; a protocol violation
// (bad handshake, refused token, abuse, transport error) ends in Error instead. In Closed and
// Error every event returns no action and nextDeadline() is TimePoint::max().
#pragma once

#include "deskstream/core/abuse.hpp"
#include "deskstream/core/auth.hpp"
#include "deskstream/core/frame_header.hpp"
#include "deskstream/core/frame_order.hpp"
#include "deskstream/core/heartbeat.hpp"
#include "deskstream/core/protocol.hpp"
#include "deskstream/core/rate_limits.hpp"
#include "deskstream/core/registry.hpp"
#include "deskstream/core/types.hpp"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace deskstream::core {

/// The relay's counters (names are stable: /api/stats, /metrics, docs/relay.md).
enum class RelayCounter : std::size_t {
    ConnectionsOpened,
    ConnectionsClosed,
    Registrations,
    RegistrationFailures,
    Replaced,
    Unregistrations,
    HandshakeTimeouts,
    HeartbeatTimeouts,
    AuthFailures,
    BadMessages,   // every protocol-level bad input, all kinds
    BadJson,       // text that failed parsing or validation
    UnknownTypes,  // a "type" unknown or not allowed on that endpoint
    BadFrames,     // binary message with a bad header / length mismatch
    TooLarge,      // message over max_message_bytes (1009) or control text over the limit
    BinaryBeforeHandshake,
    ProtocolErrors,  // WebSocket framing errors (1002)
    AbuseCloses,     // connections closed after bad_message_limit bad messages
    FramesReceived,
    FramesForwarded,
    FramesDropped,  // latest-frame-wins drops in viewer queues
    CommandsQueued,
    CommandsDelivered,
    CommandResults,
    CommandsExpired,
    RowsReaped,
    StoreErrors,
    HttpRequests,
    HttpErrors,
    Forbidden,     // requests outside a token's scope (desktops, rights): docs/security.md
    RateLimited,   // input events / commands over their rate (rate_limited)
    PeerRefusals,  // connections refused: too many from one address, or its back-off
    AuthBackoffs,  // back-offs started after too many failed authentications
    kCount
};
/// "connections_opened", ... (the stable spelling).
const char* counterName(RelayCounter c);

struct RelayConnectionConfig {
    enum class Kind { Agent, Viewer };
    Kind kind = Kind::Viewer;
    Duration heartbeatInterval = std::chrono::seconds(5);
    int missedLimit = 3;
    Duration handshakeTimeout = std::chrono::seconds(5);
    int badMessageLimit = 10;
    Duration badMessageWindow = std::chrono::seconds(60);
    std::string authSecret;                   // empty: no token check
    std::int64_t maxMessageBytes = 16 << 20;  // binary frames
    int inputPerSecond = 200;                 // viewer input commands per second (<= 0: unlimited)
    int commandsPerMinute = 120;              // viewer commands other than input, per minute
    // Redeems a one-use ticket given in the viewer's handshake instead of a token (the relay's
    // ticket book; docs/security.md). Unset: tickets are refused.
    std::function<Result<TokenClaims>(const std::string& ticket, WallMs now)> redeemTicket;
    // The viewer was authenticated at the upgrade already (a ticket in the URL query).
    std::optional<TokenClaims> preauthorized;
};

/// Actions of a RelayConnection (performed by the host in order).
namespace relay_action {
/// Send this text message to the peer.
struct Send {
    std::string text;
};
/// Close the connection with (code, reason) after what is queued, and release what the relay
/// holds for it (registry entry, fan-out). Always the last action of a connection.
struct Close {
    int code = close_code::kPolicy;
    std::string reason;
    bool byTransport = false;  // the WebSocket layer closes the socket itself: only release
};
struct Count {
    RelayCounter counter = RelayCounter::BadMessages;
    std::uint64_t n = 1;
};
/// One log line (the connection logs its first bad input only; later ones are counted).
struct Log {
    enum class Level { Debug, Info, Warning };
    Level level = Level::Info;
    std::string line;
};
/// Agent: Registry::rejectAgent (registration_failed to the peer; no trace kept).
struct RejectAgent {
    std::string clientId;
    ErrorCode code = ErrorCode::BadRequest;
    std::string message;
};
/// Agent: Registry::onAgentHandshake (+ the store write it asks for); then report the
/// registered agent (or nullopt) with onAgentRegistered().
struct RegisterAgent {
    Handshake handshake;
    WallMs nowMs = 0;
};
/// Viewer: Registry::onViewerHandshake with the token's scope; then report the viewerId with
/// onViewerRegistered().
struct RegisterViewer {
    ViewerScope scope;
};
/// Agent registered: claim and deliver the commands stored for it.
struct DeliverPending {
    std::string clientId;
};
/// Agent: a ping or pong arrived (refreshes the store's last_ping at a bounded rate).
struct AgentAlive {
    std::string clientId;
};
/// Agent: store the command result; report the outcome with onCommandResultStored().
struct StoreCommandResult {
    std::string clientId;
    CommandResult result;
};
/// Agent: its agent_stats, kept for /api/desktops.
struct KeepAgentStats {
    AgentStats stats;
};
/// Agent: a validated frame (stream id already rewritten to `streamId`) for the fan-out.
struct ForwardFrame {
    std::vector<std::uint8_t> bytes;
    FrameHeader header;
};
/// Viewer: answer a ping with a pong listing the available desktops.
struct AnswerViewerPing {
    std::int64_t timestamp = 0;
};
/// Viewer: subscribe (redirect when another instance holds the desktop, else Registry).
struct SubscribeViewer {
    Subscribe subscribe;
};
/// Viewer: Registry::onUnsubscribe.
struct UnsubscribeViewer {
    Unsubscribe unsubscribe;
};
/// Viewer: prepare, store and route a command; report the outcome with onCommandQueued().
struct QueueCommand {
    CommandMessage command;
    std::string viewerId;
};
/// Viewer: a frame acknowledgement for the fan-out.
struct AckFrame {
    ViewerFrameAck ack;
};
}  // namespace relay_action

using RelayAction = std::variant<
    relay_action::Send, relay_action::Close, relay_action::Count, relay_action::Log,
    relay_action::RejectAgent, relay_action::RegisterAgent, relay_action::RegisterViewer,
    relay_action::DeliverPending, relay_action::AgentAlive, relay_action::StoreCommandResult,
    relay_action::KeepAgentStats, relay_action::ForwardFrame, relay_action::AnswerViewerPing,
    relay_action::SubscribeViewer, relay_action::UnsubscribeViewer, relay_action::QueueCommand,
    relay_action::AckFrame>;
using RelayActions = std::vector<RelayAction>;

class RelayConnection {
public:
    enum class State { AwaitingHandshake, Registering, Open, Closed, Error };

    /// `connectedAt` starts the handshake timer.
    RelayConnection(RelayConnectionConfig config, TimePoint connectedAt);

    RelayActions onText(const std::string& text, TimePoint now, WallMs wallNow);
    RelayActions onBinary(std::vector<std::uint8_t> bytes, TimePoint now);
    RelayActions onTick(TimePoint now);
    /// closeCode 1009 (too large) or 1002 (bad framing) or 1006 (stream out of sync); the
    /// transport closes the socket itself; this answers (1009: an error message first),
    /// counts, and releases the connection.
    RelayActions onTransportError(int closeCode, const std::string& what);

    /// Outcome of RegisterAgent: the registered agent, or nullopt (registration_failed was
    /// already sent by the Registry).
    RelayActions onAgentRegistered(const std::optional<AgentInfo>& info, TimePoint now);
    /// Outcome of RegisterViewer.
    RelayActions onViewerRegistered(const std::string& viewerId, TimePoint now);
    /// Outcome of StoreCommandResult: error -> bad input (not_found), or an internal error
    /// answer when the store failed (not the agent's fault: not counted as bad input).
    RelayActions onCommandResultStored(const Result<bool>& stored, TimePoint now);
    /// Outcome of SubscribeViewer when the desktop is connected nowhere (neither here nor at
    /// another instance of a shared store): bad input, so probing ids is bounded per connection.
    RelayActions onSubscribeUnknown(const std::string& desktopClientId, TimePoint now);
    /// Outcome of QueueCommand: command_queued, or the error (store trouble is not the peer's
    /// fault and does not count as abuse).
    RelayActions onCommandQueued(const Result<CommandQueued>& queued, TimePoint now);
    /// The relay closed this connection for its own reasons (replacement, registration lost,
    /// shutdown): no more actions.
    void onClosedByRelay() {
        if (finished()) return;
        closedWhileRegistering_ = state_ == State::Registering;
        state_ = State::Closed;
    }

    /// The earliest instant onTick() can return something; TimePoint::max() when none.
    TimePoint nextDeadline() const;

    State state() const { return state_; }
    bool open() const { return state_ == State::Open; }
    bool finished() const { return state_ == State::Closed || state_ == State::Error; }
    RelayConnectionConfig::Kind kind() const { return config_.kind; }
    /// Agent clientId once registered, viewerId once handshaken; "" before.
    const std::string& peerId() const { return peerId_; }
    std::uint32_t streamId() const { return streamId_; }
    int badMessages() const { return badCount_; }
    /// A viewer's scope from its token or ticket (everything without a secret).
    const ViewerScope& scope() const { return scope_; }
    const Heartbeat& heartbeat() const { return heartbeat_; }

private:
    bool isAgent() const { return config_.kind == RelayConnectionConfig::Kind::Agent; }
    void onHandshake(const Handshake& hs, WallMs wallNow, RelayActions& out);
    void onAgentMessage(const Message& m, WallMs wallNow, TimePoint now, RelayActions& out);
    void onViewerMessage(const Message& m, TimePoint now, RelayActions& out);
    // Refuses the connection before/at the handshake: answer (agents: registration_failed
    // through the Registry; viewers: error), close 1008, state Error.
    void refuseHandshake(const Error& error, const std::string& clientId, const std::string& reason,
                         RelayActions& out);
    void badInput(RelayCounter kind, const Error& error, TimePoint now, RelayActions& out);
    void closeWith(State end, int code, const std::string& reason, RelayActions& out);
    void warnOnce(const std::string& what, RelayActions& out);
    // A viewer's command within its scope and rates; false: answered (forbidden/rate_limited).
    bool commandAllowed(const CommandMessage& cmd, TimePoint now, RelayActions& out);
    const char* kindName() const { return isAgent() ? "agent" : "viewer"; }

    RelayConnectionConfig config_;
    State state_ = State::AwaitingHandshake;
    Heartbeat heartbeat_;
    HandshakeTimer handshakeTimer_;
    AbuseGuard abuse_;
    std::string peerId_;
    std::uint32_t streamId_ = 0;
    FrameOrderCheck frameOrder_;  // agents: monitors advertised, frame numbers in order
    ViewerScope scope_;
    Rate inputRate_;
    Rate commandRate_;
    bool rateWarned_ = false;
    int badCount_ = 0;
    bool warned_ = false;
    bool closedWhileRegistering_ = false;  // e.g. registration_failed + 1008 from the Registry
};

}  // namespace deskstream::core
