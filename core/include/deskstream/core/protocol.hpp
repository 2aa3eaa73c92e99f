// deskstream core: JSON control messages of wire protocol v1 (docs/protocol.md).
//
// parseMessage(text, channel) turns one WebSocket text message into a typed Message, with
// strict validation: malformed JSON, a missing "type", an unknown type, a type not allowed on
// that channel, a missing required field, a field of the wrong JSON type or out of range all
// give an Error with code bad_request (too_large for an over-long text) and a message naming
// the field. Unknown EXTRA fields are ignored (forward compatibility: peers may add fields).
//
// serialize(message) gives the compact JSON text to send. parse(serialize(m)) == m for every
// message that passed validation.
#pragma once

#include "deskstream/core/types.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace deskstream::core {

enum class Role { Desktop, Viewer };
const char* toString(Role role);  // "desktop" | "viewer"

/// Who sent the message to whom. Decides which types (and which form of frame_ack, command,
/// handshake_ack, command_result) are accepted.
enum class Channel {
    AgentToRelay,   // handshake(desktop), ping, pong, command_result, agent_stats, error
    ViewerToRelay,  // handshake(viewer), ping, pong, subscribe, unsubscribe, frame_ack, command
    RelayToAgent,   // handshake_ack, registration_failed, ping, pong, frame_ack, start_stream,
                    // stop_stream, command, error
    RelayToViewer,  // handshake_ack, ping, pong, subscribed, unsubscribed, redirect, error,
                    // command_queued, command_result, desktop_disconnected
};

// ------------------------------------------------------------------ shared sub-objects

struct MonitorInfo {
    int index = 0;              // 0..255
    std::string name;           // <= 256 chars, may be empty
    int x = 0, y = 0;           // may be negative (virtual desktop layout)
    int width = 0, height = 0;  // 1..65535
    bool primary = false;
    bool operator==(const MonitorInfo& o) const;
};

struct Capabilities {
    std::vector<std::string> codecs;  // e.g. "jpeg", "webp"; each [a-z0-9_-]{1,64}
    bool input = false;
    bool operator==(const Capabilities& o) const;
};

// ------------------------------------------------------------------ commands

enum class CommandType { StartStream, StopStream, SetConfig, RequestKeyframe, Input };
const char* toString(CommandType t);  // "start_stream", ...
bool parseCommandType(const std::string& text, CommandType& out);

/// set_config: at least one field present.
struct SetConfig {
    std::optional<int> fps;                    // 1..120
    std::optional<int> quality;                // 1..100
    std::optional<std::string> encoder;        // plugin name [a-z0-9_-]{1,64}
    std::optional<std::vector<int>> monitors;  // 1..16 distinct indices 0..255
    bool operator==(const SetConfig& o) const;
};

enum class InputEvent { MouseMove, MouseDown, MouseUp, Wheel, KeyDown, KeyUp };
const char* toString(InputEvent e);  // "mouse_move", ...
bool parseInputEvent(const std::string& text, InputEvent& out);

/// input: mouse_* and wheel need x, y (0..65535, screen coordinates of `monitor`);
/// mouse_down/mouse_up need button (0 left, 1 middle, 2 right, 3 back, 4 forward);
/// key_* need key (a DOM KeyboardEvent.key value, 1..64 chars). wheel may carry deltaX/deltaY.
struct InputCommand {
    InputEvent event = InputEvent::MouseMove;
    std::optional<int> x, y;
    std::optional<int> button;
    std::optional<std::string> key;
    std::optional<int> deltaX, deltaY;  // wheel, -10000..10000
    std::optional<int> monitor;         // 0..255; absent: primary/first
    bool operator==(const InputCommand& o) const;
};

/// The "command" object of a command message (the part stored as command_data_json).
struct Command {
    CommandType type = CommandType::RequestKeyframe;
    SetConfig config;    // meaningful when type == SetConfig
    InputCommand input;  // meaningful when type == Input
    bool operator==(const Command& o) const;
};

/// Validates a command object given as JSON text (e.g. the "command" member of the HTTP body).
Result<Command> parseCommand(const std::string& json);
/// Canonical JSON text of a command object (for the store and for delivery).
std::string serializeCommand(const Command& c);

// ------------------------------------------------------------------ messages

/// handshake. Desktop: clientId required, token/name/hostname/monitors/capabilities optional.
/// Viewer: only protocol, role and token are read.
struct Handshake {
    int protocol = limits::kProtocolVersion;
    Role role = Role::Desktop;
    std::string clientId;  // desktop only
    std::string token;     // may be empty
    std::string ticket;    // viewer only: a one-use ticket instead of a token (may be empty)
    std::string name;
    std::string hostname;
    std::vector<MonitorInfo> monitors;
    Capabilities capabilities;
    bool operator==(const Handshake& o) const;
};

/// handshake_ack to an agent.
struct AgentHandshakeAck {
    std::string clientId;
    bool dbRegistered = true;
    std::string instanceId;
    std::uint32_t streamId = 0;
    std::int64_t heartbeatIntervalMs = 5000;
    int maxInFlight = 10;
    bool operator==(const AgentHandshakeAck& o) const;
};

/// One entry of the desktop list given to viewers.
struct DesktopSummary {
    std::string clientId;
    std::string name;
    std::string hostname;
    std::vector<MonitorInfo> monitors;
    int viewers = 0;
    bool operator==(const DesktopSummary& o) const;
};

/// handshake_ack to a viewer.
struct ViewerHandshakeAck {
    std::string viewerId;
    std::int64_t heartbeatIntervalMs = 5000;
    std::vector<DesktopSummary> desktops;
    bool operator==(const ViewerHandshakeAck& o) const;
};

struct RegistrationFailed {
    std::string clientId;  // may be empty when the handshake had none
    ErrorCode code = ErrorCode::StoreUnavailable;
    std::string error;
    bool operator==(const RegistrationFailed& o) const;
};

struct Ping {
    std::int64_t timestamp = 0;  // ms, sender's clock; echoed by the pong
    bool operator==(const Ping& o) const { return timestamp == o.timestamp; }
};

struct Pong {
    std::int64_t timestamp = 0;                                       // echoed from the ping
    std::int64_t serverTime = 0;                                      // ms, responder's wall clock
    std::optional<std::vector<std::string>> availableDesktopClients;  // pongs to viewers
    bool operator==(const Pong& o) const;
};

struct Subscribe {
    std::string desktopClientId;
    std::optional<int> monitor;  // absent: every monitor
    bool operator==(const Subscribe& o) const;
};

struct Subscribed {
    std::string desktopClientId;
    std::uint32_t streamId = 0;
    std::vector<MonitorInfo> monitors;
    bool operator==(const Subscribed& o) const;
};

struct Unsubscribe {
    std::string desktopClientId;
    bool operator==(const Unsubscribe& o) const { return desktopClientId == o.desktopClientId; }
};

/// Addition: relay -> viewer confirmation of an unsubscribe.
struct Unsubscribed {
    std::string desktopClientId;
    bool operator==(const Unsubscribed& o) const { return desktopClientId == o.desktopClientId; }
};

/// Addition: relay -> viewer when the desktop the viewer watches went away.
struct DesktopDisconnected {
    std::string desktopClientId;
    bool operator==(const DesktopDisconnected& o) const {
        return desktopClientId == o.desktopClientId;
    }
};

struct Redirect {
    std::string url;              // ws:// or wss:// URL of the instance holding the desktop
    std::string desktopClientId;  // optional (addition)
    bool operator==(const Redirect& o) const;
};

struct ErrorMessage {
    ErrorCode code = ErrorCode::BadRequest;
    std::string message;
    bool operator==(const ErrorMessage& o) const;
};

/// frame_ack viewer -> relay.
struct ViewerFrameAck {
    std::string desktopClientId;
    std::uint64_t frameNumber = 0;
    std::int64_t latency = 0;    // ms, 0..3600000
    std::optional<int> monitor;  // addition: the frame's monitor (informational)
    bool operator==(const ViewerFrameAck& o) const;
};

/// frame_ack relay -> agent.
struct AgentFrameAck {
    std::uint64_t frameNumber = 0;
    std::int64_t latency = 0;  // ms, worst latency among the viewers that acked
    int viewers = 0;           // viewers that acked (skipped ones are not counted)
    bool operator==(const AgentFrameAck& o) const;
};

struct StartStream {
    bool operator==(const StartStream&) const { return true; }
};
struct StopStream {
    bool operator==(const StopStream&) const { return true; }
};

/// command viewer -> relay (desktopClientId set, commandId optional) and relay -> agent
/// (desktopClientId empty, commandId required).
struct CommandMessage {
    std::string desktopClientId;
    std::string commandId;  // empty: the relay assigns a uuid
    Command command;
    bool operator==(const CommandMessage& o) const;
};

struct CommandQueued {
    std::string commandId;
    std::string status = "pending";
    bool operator==(const CommandQueued& o) const;
};

enum class CommandStatus { Done, Failed };

/// command_result agent -> relay and relay -> viewer (then desktopClientId is set).
struct CommandResult {
    std::string commandId;
    CommandStatus status = CommandStatus::Done;
    std::string error;            // empty when none; <= 1024 chars
    std::string desktopClientId;  // relay -> viewer only (optional elsewhere)
    bool operator==(const CommandResult& o) const;
};

/// Addition: agent -> relay every few seconds while registered: the agent-side figures the
/// relay cannot observe itself, shown in GET /api/desktops.
struct AgentStats {
    int quality = 0;   // current adaptive quality, 0..100
    int fps = 0;       // configured capture rate (rounded), 0..1000
    int inFlight = 0;  // frames sent and not yet acknowledged
    std::uint64_t framesEncoded = 0;
    std::uint64_t framesSent = 0;
    std::uint64_t framesDroppedWindow = 0;  // dropped because the window was full
    std::optional<std::int64_t> latencyMs;  // last acknowledged latency, ms
    bool operator==(const AgentStats& o) const;
};

using Message =
    std::variant<Handshake, AgentHandshakeAck, ViewerHandshakeAck, RegistrationFailed, Ping, Pong,
                 Subscribe, Subscribed, Unsubscribe, Unsubscribed, DesktopDisconnected, Redirect,
                 ErrorMessage, ViewerFrameAck, AgentFrameAck, StartStream, StopStream,
                 CommandMessage, CommandQueued, CommandResult, AgentStats>;

/// The wire "type" string of a message ("handshake", "frame_ack", ...).
const char* typeName(const Message& m);

/// Parses and validates one text message received on `channel`.
/// Errors: bad_request (field named in Error::field, "type" for unknown/forbidden types),
/// too_large (text longer than limits::kMaxControlMessageBytes). Never throws.
Result<Message> parseMessage(const std::string& text, Channel channel);

/// bad_request when `json` holds an integer literal outside [-2^63, 2^64-1] (a JSON parser
/// would wrap it around silently); parseMessage applies it, callers parsing JSON text
/// themselves (the HTTP command body) call it first.
std::optional<Error> integerLiteralError(const std::string& json);

/// Compact JSON text of a message. Never throws for messages built from valid values.
std::string serialize(const Message& m);

/// Convenience: the `error` message text for an Error (code + message).
std::string serializeError(const Error& e);

/// Extension (docs/protocol.md, "desktop_connected"): relay -> every viewer when a desktop's
/// registration is confirmed (first connection or reconnection), so viewers resume without
/// polling. {"type":"desktop_connected","desktopClientId":..,"desktop":{<handshake_ack entry>}}.
/// Not a Message variant: viewers that do not know it skip it.
std::string serializeDesktopConnected(const DesktopSummary& d);

/// JSON array text of monitors / JSON object text of capabilities (store record columns).
std::string monitorsToJson(const std::vector<MonitorInfo>& monitors);
std::string capabilitiesToJson(const Capabilities& caps);
/// Parses monitors_json as written by monitorsToJson (e.g. read back from the store).
Result<std::vector<MonitorInfo>> parseMonitorsJson(const std::string& json);

}  // namespace deskstream::core
