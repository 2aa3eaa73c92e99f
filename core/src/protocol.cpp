#include "deskstream/core/protocol.hpp"

#include "deskstream/core/frame_ack.hpp"

#include <Poco/Dynamic/Var.h>
#include <Poco/Exception.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/JSON/Stringifier.h>

#include <algorithm>
#include <cctype>
#include <limits>
#include <set>
#include <sstream>
#include <typeinfo>

namespace deskstream::core {

using Poco::Dynamic::Var;
using Poco::JSON::Array;
using Poco::JSON::Object;

// ======================================================================== enums and equality

const char* toString(Role role) { return role == Role::Desktop ? "desktop" : "viewer"; }

const char* toString(CommandType t) {
    switch (t) {
        case CommandType::StartStream:
            return "start_stream";
        case CommandType::StopStream:
            return "stop_stream";
        case CommandType::SetConfig:
            return "set_config";
        case CommandType::RequestKeyframe:
            return "request_keyframe";
        case CommandType::Input:
            return "input";
    }
    return "unknown";
}

bool parseCommandType(const std::string& text, CommandType& out) {
    for (CommandType t : {CommandType::StartStream, CommandType::StopStream, CommandType::SetConfig,
                          CommandType::RequestKeyframe, CommandType::Input}) {
        if (text == toString(t)) {
            out = t;
            return true;
        }
    }
    return false;
}

const char* toString(InputEvent e) {
    switch (e) {
        case InputEvent::MouseMove:
            return "mouse_move";
        case InputEvent::MouseDown:
            return "mouse_down";
        case InputEvent::MouseUp:
            return "mouse_up";
        case InputEvent::Wheel:
            return "wheel";
        case InputEvent::KeyDown:
            return "key_down";
        case InputEvent::KeyUp:
            return "key_up";
    }
    return "unknown";
}

bool parseInputEvent(const std::string& text, InputEvent& out) {
    for (InputEvent e : {InputEvent::MouseMove, InputEvent::MouseDown, InputEvent::MouseUp,
                         InputEvent::Wheel, InputEvent::KeyDown, InputEvent::KeyUp}) {
        if (text == toString(e)) {
            out = e;
            return true;
        }
    }
    return false;
}

bool MonitorInfo::operator==(const MonitorInfo& o) const {
    return index == o.index && name == o.name && x == o.x && y == o.y && width == o.width &&
           height == o.height && primary == o.primary;
}
bool Capabilities::operator==(const Capabilities& o) const {
    return codecs == o.codecs && input == o.input;
}
bool SetConfig::operator==(const SetConfig& o) const {
    return fps == o.fps && quality == o.quality && encoder == o.encoder && monitors == o.monitors;
}
bool InputCommand::operator==(const InputCommand& o) const {
    return event == o.event && x == o.x && y == o.y && button == o.button && key == o.key &&
           deltaX == o.deltaX && deltaY == o.deltaY && monitor == o.monitor;
}
bool Command::operator==(const Command& o) const {
    if (type != o.type) return false;
    if (type == CommandType::SetConfig) return config == o.config;
    if (type == CommandType::Input) return input == o.input;
    return true;
}
bool Handshake::operator==(const Handshake& o) const {
    return protocol == o.protocol && role == o.role && clientId == o.clientId && token == o.token &&
           ticket == o.ticket && name == o.name && hostname == o.hostname &&
           monitors == o.monitors && capabilities == o.capabilities;
}
bool AgentHandshakeAck::operator==(const AgentHandshakeAck& o) const {
    return clientId == o.clientId && dbRegistered == o.dbRegistered && instanceId == o.instanceId &&
           streamId == o.streamId && heartbeatIntervalMs == o.heartbeatIntervalMs &&
           maxInFlight == o.maxInFlight;
}
bool DesktopSummary::operator==(const DesktopSummary& o) const {
    return clientId == o.clientId && name == o.name && hostname == o.hostname &&
           monitors == o.monitors && viewers == o.viewers;
}
bool ViewerHandshakeAck::operator==(const ViewerHandshakeAck& o) const {
    return viewerId == o.viewerId && heartbeatIntervalMs == o.heartbeatIntervalMs &&
           desktops == o.desktops;
}
bool RegistrationFailed::operator==(const RegistrationFailed& o) const {
    return clientId == o.clientId && code == o.code && error == o.error;
}
bool Pong::operator==(const Pong& o) const {
    return timestamp == o.timestamp && serverTime == o.serverTime &&
           availableDesktopClients == o.availableDesktopClients;
}
bool Subscribe::operator==(const Subscribe& o) const {
    return desktopClientId == o.desktopClientId && monitor == o.monitor;
}
bool Subscribed::operator==(const Subscribed& o) const {
    return desktopClientId == o.desktopClientId && streamId == o.streamId && monitors == o.monitors;
}
bool Redirect::operator==(const Redirect& o) const {
    return url == o.url && desktopClientId == o.desktopClientId;
}
bool ErrorMessage::operator==(const ErrorMessage& o) const {
    return code == o.code && message == o.message;
}
bool ViewerFrameAck::operator==(const ViewerFrameAck& o) const {
    return desktopClientId == o.desktopClientId && frameNumber == o.frameNumber &&
           latency == o.latency && monitor == o.monitor;
}
bool AgentFrameAck::operator==(const AgentFrameAck& o) const {
    return frameNumber == o.frameNumber && latency == o.latency && viewers == o.viewers;
}
bool CommandMessage::operator==(const CommandMessage& o) const {
    return desktopClientId == o.desktopClientId && commandId == o.commandId && command == o.command;
}
bool CommandQueued::operator==(const CommandQueued& o) const {
    return commandId == o.commandId && status == o.status;
}
bool CommandResult::operator==(const CommandResult& o) const {
    return commandId == o.commandId && status == o.status && error == o.error &&
           desktopClientId == o.desktopClientId;
}
bool AgentStats::operator==(const AgentStats& o) const {
    return quality == o.quality && fps == o.fps && inFlight == o.inFlight &&
           framesEncoded == o.framesEncoded && framesSent == o.framesSent &&
           framesDroppedWindow == o.framesDroppedWindow && latencyMs == o.latencyMs;
}

// ======================================================================== strict reader

namespace {

// Thrown inside this file only; parseMessage turns it into an Error. Keeps every field check a
// one-liner without threading Result through dozens of helpers.
struct FieldError {
    ErrorCode code;
    std::string field;
    std::string message;
};

[[noreturn]] void failField(const std::string& field, const std::string& what) {
    throw FieldError{ErrorCode::BadRequest, field, "field '" + field + "' " + what};
}

enum class Kind { Null, Bool, Int, UInt, Double, String, Obj, Arr, Other };

Kind kindOf(const Var& v) {
    if (v.isEmpty()) return Kind::Null;
    const std::type_info& t = v.type();
    if (t == typeid(bool)) return Kind::Bool;
    if (t == typeid(Poco::Int64) || t == typeid(Poco::Int32) || t == typeid(int) ||
        t == typeid(long) || t == typeid(long long))
        return Kind::Int;
    if (t == typeid(Poco::UInt64) || t == typeid(Poco::UInt32) || t == typeid(unsigned) ||
        t == typeid(unsigned long) || t == typeid(unsigned long long))
        return Kind::UInt;
    if (t == typeid(double) || t == typeid(float)) return Kind::Double;
    if (t == typeid(std::string)) return Kind::String;
    if (t == typeid(Object::Ptr)) return Kind::Obj;
    if (t == typeid(Array::Ptr)) return Kind::Arr;
    return Kind::Other;
}

const char* kindName(Kind k) {
    switch (k) {
        case Kind::Null:
            return "null";
        case Kind::Bool:
            return "a boolean";
        case Kind::Int:
        case Kind::UInt:
            return "an integer";
        case Kind::Double:
            return "a fractional number";
        case Kind::String:
            return "a string";
        case Kind::Obj:
            return "an object";
        case Kind::Arr:
            return "an array";
        case Kind::Other:
            return "an unsupported value";
    }
    return "?";
}

/// Reads fields of one JSON object; `prefix` names nested fields ("command.fps",
/// "monitors[0].width") in error messages.
class Reader {
public:
    Reader(Object::Ptr obj, std::string prefix)
        : obj_(std::move(obj)), prefix_(std::move(prefix)) {}

    std::string name(const std::string& key) const {
        return prefix_.empty() ? key : prefix_ + "." + key;
    }

    const std::string& prefix() const { return prefix_; }

    /// Present and not null.
    bool has(const std::string& key) const { return obj_->has(key) && !obj_->get(key).isEmpty(); }

    Var need(const std::string& key, const char* expected) const {
        if (!has(key)) failField(name(key), std::string("is required (") + expected + ")");
        return obj_->get(key);
    }

    std::string str(const std::string& key, std::size_t maxLen, bool allowEmpty = true) const {
        return strValue(need(key, "a string"), name(key), maxLen, allowEmpty);
    }
    std::optional<std::string> optStr(const std::string& key, std::size_t maxLen,
                                      bool allowEmpty = true) const {
        if (!has(key)) return std::nullopt;
        return str(key, maxLen, allowEmpty);
    }
    std::string id(const std::string& key) const {
        std::string v = str(key, limits::kMaxIdLength, false);
        if (!isValidId(v)) failField(name(key), "must match [A-Za-z0-9._-]{1,128}");
        return v;
    }

    std::int64_t integer(const std::string& key, std::int64_t lo, std::int64_t hi) const {
        return intValue(need(key, "an integer"), name(key), lo, hi);
    }
    std::optional<std::int64_t> optInteger(const std::string& key, std::int64_t lo,
                                           std::int64_t hi) const {
        if (!has(key)) return std::nullopt;
        return integer(key, lo, hi);
    }
    std::uint64_t uint64(const std::string& key) const {
        Var v = need(key, "a non-negative integer");
        Kind k = kindOf(v);
        if (k == Kind::UInt) return v.convert<Poco::UInt64>();
        if (k == Kind::Int) {
            Poco::Int64 i = v.convert<Poco::Int64>();
            if (i < 0) failField(name(key), "must not be negative");
            return static_cast<std::uint64_t>(i);
        }
        failField(name(key), std::string("must be an integer, not ") + kindName(k));
    }

    bool boolean(const std::string& key) const {
        Var v = need(key, "a boolean");
        if (kindOf(v) != Kind::Bool)
            failField(name(key), std::string("must be a boolean, not ") + kindName(kindOf(v)));
        return v.extract<bool>();
    }
    std::optional<bool> optBoolean(const std::string& key) const {
        if (!has(key)) return std::nullopt;
        return boolean(key);
    }

    Object::Ptr object(const std::string& key) const {
        Var v = need(key, "an object");
        if (kindOf(v) != Kind::Obj)
            failField(name(key), std::string("must be an object, not ") + kindName(kindOf(v)));
        return v.extract<Object::Ptr>();
    }
    Array::Ptr array(const std::string& key, std::size_t maxItems) const {
        Var v = need(key, "an array");
        if (kindOf(v) != Kind::Arr)
            failField(name(key), std::string("must be an array, not ") + kindName(kindOf(v)));
        Array::Ptr a = v.extract<Array::Ptr>();
        if (a->size() > maxItems)
            failField(name(key), "has more than " + std::to_string(maxItems) + " items");
        return a;
    }

    static std::string strValue(const Var& v, const std::string& field, std::size_t maxLen,
                                bool allowEmpty) {
        Kind k = kindOf(v);
        if (k != Kind::String)
            failField(field, std::string("must be a string, not ") + kindName(k));
        const std::string& s = v.extract<std::string>();
        if (s.size() > maxLen)
            failField(field, "is longer than " + std::to_string(maxLen) + " bytes");
        if (!allowEmpty && s.empty()) failField(field, "must not be empty");
        return s;
    }
    static std::int64_t intValue(const Var& v, const std::string& field, std::int64_t lo,
                                 std::int64_t hi) {
        Kind k = kindOf(v);
        std::int64_t i = 0;
        if (k == Kind::Int) {
            i = v.convert<Poco::Int64>();
        } else if (k == Kind::UInt) {
            Poco::UInt64 u = v.convert<Poco::UInt64>();
            if (u > static_cast<Poco::UInt64>(hi)) failField(field, "is out of range");
            i = static_cast<std::int64_t>(u);
        } else {
            failField(field, std::string("must be an integer, not ") + kindName(k));
        }
        if (i < lo || i > hi)
            failField(field,
                      "must be between " + std::to_string(lo) + " and " + std::to_string(hi));
        return i;
    }

private:
    Object::Ptr obj_;
    std::string prefix_;
};

Object::Ptr objectAt(const Array::Ptr& a, std::size_t i, const std::string& field) {
    Var v = a->get(static_cast<unsigned>(i));
    if (kindOf(v) != Kind::Obj)
        failField(field, std::string("must be an object, not ") + kindName(kindOf(v)));
    return v.extract<Object::Ptr>();
}

std::string indexed(const std::string& base, std::size_t i) {
    return base + "[" + std::to_string(i) + "]";
}

bool isShortName(const std::string& s) {
    if (s.empty() || s.size() > limits::kMaxShortString) return false;
    for (char c : s) {
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return false;
    }
    return true;
}

MonitorInfo readMonitor(const Reader& r) {
    MonitorInfo m;
    m.index = static_cast<int>(r.integer("index", 0, 255));
    m.name = r.optStr("name", limits::kMaxNameLength).value_or("");
    m.x = static_cast<int>(r.optInteger("x", -1000000, 1000000).value_or(0));
    m.y = static_cast<int>(r.optInteger("y", -1000000, 1000000).value_or(0));
    m.width = static_cast<int>(r.integer("width", 1, 65535));
    m.height = static_cast<int>(r.integer("height", 1, 65535));
    m.primary = r.optBoolean("primary").value_or(false);
    return m;
}

std::vector<MonitorInfo> readMonitors(const Reader& r, const std::string& key, bool required) {
    std::vector<MonitorInfo> out;
    if (!required && !r.has(key)) return out;
    Array::Ptr a = r.array(key, limits::kMaxMonitors);
    std::set<int> seen;
    for (std::size_t i = 0; i < a->size(); ++i) {
        const std::string field = indexed(r.name(key), i);
        MonitorInfo m = readMonitor(Reader(objectAt(a, i, field), field));
        if (!seen.insert(m.index).second) failField(field + ".index", "is a duplicate");
        out.push_back(std::move(m));
    }
    return out;
}

std::vector<std::string> readIdList(const Reader& r, const std::string& key, std::size_t max) {
    std::vector<std::string> out;
    Array::Ptr a = r.array(key, max);
    for (std::size_t i = 0; i < a->size(); ++i) {
        const std::string field = indexed(r.name(key), i);
        std::string s =
            Reader::strValue(a->get(static_cast<unsigned>(i)), field, limits::kMaxIdLength, false);
        if (!isValidId(s)) failField(field, "must match [A-Za-z0-9._-]{1,128}");
        out.push_back(std::move(s));
    }
    return out;
}

Capabilities readCapabilities(const Reader& parent) {
    Capabilities c;
    if (!parent.has("capabilities")) return c;
    Reader r(parent.object("capabilities"), parent.name("capabilities"));
    if (r.has("codecs")) {
        Array::Ptr a = r.array("codecs", limits::kMaxCodecs);
        for (std::size_t i = 0; i < a->size(); ++i) {
            const std::string field = indexed(r.name("codecs"), i);
            std::string s = Reader::strValue(a->get(static_cast<unsigned>(i)), field,
                                             limits::kMaxShortString, false);
            if (!isShortName(s)) failField(field, "must match [a-z0-9_-]{1,64}");
            c.codecs.push_back(std::move(s));
        }
    }
    c.input = r.optBoolean("input").value_or(false);
    return c;
}

Command readCommand(const Reader& r) {
    Command c;
    const std::string typeText = r.str("type", limits::kMaxShortString, false);
    if (!parseCommandType(typeText, c.type))
        failField(r.name("type"), "is not a known command type ('" + typeText +
                                      "'; expected start_stream, stop_stream, set_config, "
                                      "request_keyframe or input)");
    if (c.type == CommandType::SetConfig) {
        SetConfig& s = c.config;
        if (auto v = r.optInteger("fps", 1, 120)) s.fps = static_cast<int>(*v);
        if (auto v = r.optInteger("quality", 1, 100)) s.quality = static_cast<int>(*v);
        if (auto v = r.optStr("encoder", limits::kMaxShortString, false)) {
            if (!isShortName(*v)) failField(r.name("encoder"), "must match [a-z0-9_-]{1,64}");
            s.encoder = *v;
        }
        if (r.has("monitors")) {
            Array::Ptr a = r.array("monitors", limits::kMaxMonitors);
            if (a->size() == 0) failField(r.name("monitors"), "must not be empty");
            std::vector<int> list;
            std::set<int> seen;
            for (std::size_t i = 0; i < a->size(); ++i) {
                const std::string field = indexed(r.name("monitors"), i);
                int m = static_cast<int>(
                    Reader::intValue(a->get(static_cast<unsigned>(i)), field, 0, 255));
                if (!seen.insert(m).second) failField(field, "is a duplicate");
                list.push_back(m);
            }
            s.monitors = std::move(list);
        }
        if (!s.fps && !s.quality && !s.encoder && !s.monitors)
            throw FieldError{ErrorCode::BadRequest, r.prefix(),
                             "field '" + r.prefix() +
                                 "' (set_config) needs at least one of fps, quality, encoder, "
                                 "monitors"};
    } else if (c.type == CommandType::Input) {
        InputCommand& in = c.input;
        const std::string ev = r.str("event", limits::kMaxShortString, false);
        if (!parseInputEvent(ev, in.event))
            failField(r.name("event"), "is not a known input event ('" + ev +
                                           "'; expected mouse_move, mouse_down, mouse_up, "
                                           "wheel, key_down or key_up)");
        if (auto v = r.optInteger("monitor", 0, 255)) in.monitor = static_cast<int>(*v);
        const bool mouse = in.event == InputEvent::MouseMove || in.event == InputEvent::MouseDown ||
                           in.event == InputEvent::MouseUp || in.event == InputEvent::Wheel;
        if (mouse) {
            in.x = static_cast<int>(r.integer("x", 0, 65535));
            in.y = static_cast<int>(r.integer("y", 0, 65535));
        }
        if (in.event == InputEvent::MouseDown || in.event == InputEvent::MouseUp)
            in.button = static_cast<int>(r.integer("button", 0, 4));
        if (in.event == InputEvent::Wheel) {
            if (auto v = r.optInteger("deltaX", -10000, 10000)) in.deltaX = static_cast<int>(*v);
            if (auto v = r.optInteger("deltaY", -10000, 10000)) in.deltaY = static_cast<int>(*v);
        }
        if (in.event == InputEvent::KeyDown || in.event == InputEvent::KeyUp) {
            in.key = r.str("key", limits::kMaxShortString, false);
            // DOM key names are printable ("a", "Enter", "ArrowUp"); a control character would
            // reach the agent's key lookup (and logs) as raw bytes.
            for (unsigned char ch : *in.key)
                if (ch < 0x20 || ch == 0x7f)
                    failField(r.name("key"), "must not contain control characters");
        }
    }
    return c;
}

// ------------------------------------------------------------------------ writers

Object::Ptr newObject(const char* type) {
    Object::Ptr o = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
    if (type != nullptr) o->set("type", std::string(type));
    return o;
}

std::string toText(const Object::Ptr& o) {
    std::ostringstream out;
    o->stringify(out);
    return out.str();
}

Object::Ptr monitorObject(const MonitorInfo& m) {
    Object::Ptr o = newObject(nullptr);
    o->set("index", m.index);
    o->set("name", m.name);
    o->set("x", m.x);
    o->set("y", m.y);
    o->set("width", m.width);
    o->set("height", m.height);
    o->set("primary", m.primary);
    return o;
}

Array::Ptr monitorArray(const std::vector<MonitorInfo>& ms) {
    Array::Ptr a = new Array();
    for (const auto& m : ms) a->add(monitorObject(m));
    return a;
}

Object::Ptr capabilitiesObject(const Capabilities& c) {
    Object::Ptr o = newObject(nullptr);
    Array::Ptr codecs = new Array();
    for (const auto& s : c.codecs) codecs->add(s);
    o->set("codecs", codecs);
    o->set("input", c.input);
    return o;
}

Object::Ptr commandObject(const Command& c) {
    Object::Ptr o = newObject(toString(c.type));
    if (c.type == CommandType::SetConfig) {
        const SetConfig& s = c.config;
        if (s.fps) o->set("fps", *s.fps);
        if (s.quality) o->set("quality", *s.quality);
        if (s.encoder) o->set("encoder", *s.encoder);
        if (s.monitors) {
            Array::Ptr a = new Array();
            for (int m : *s.monitors) a->add(m);
            o->set("monitors", a);
        }
    } else if (c.type == CommandType::Input) {
        const InputCommand& in = c.input;
        o->set("event", std::string(toString(in.event)));
        if (in.monitor) o->set("monitor", *in.monitor);
        if (in.x) o->set("x", *in.x);
        if (in.y) o->set("y", *in.y);
        if (in.button) o->set("button", *in.button);
        if (in.deltaX) o->set("deltaX", *in.deltaX);
        if (in.deltaY) o->set("deltaY", *in.deltaY);
        if (in.key) o->set("key", *in.key);
    }
    return o;
}

// Poco's Var holds Int64/UInt64 natively; set() with the exact type keeps full precision.
void setI64(Object::Ptr& o, const char* k, std::int64_t v) { o->set(k, Poco::Int64(v)); }
void setU64(Object::Ptr& o, const char* k, std::uint64_t v) { o->set(k, Poco::UInt64(v)); }

// ------------------------------------------------------------------------ per type

Message readHandshake(const Reader& r, Channel ch) {
    Handshake h;
    h.protocol = static_cast<int>(r.integer("protocol", 1, 1000000));
    const std::string role = r.str("role", limits::kMaxShortString, false);
    if (role == "desktop")
        h.role = Role::Desktop;
    else if (role == "viewer")
        h.role = Role::Viewer;
    else
        failField("role", "must be \"desktop\" or \"viewer\"");
    if (ch == Channel::AgentToRelay && h.role != Role::Desktop)
        failField("role", "must be \"desktop\" on the agent endpoint");
    if (ch == Channel::ViewerToRelay && h.role != Role::Viewer)
        failField("role", "must be \"viewer\" on the viewer endpoint");
    h.token = r.optStr("token", limits::kMaxTokenLength).value_or("");
    if (h.role == Role::Viewer) h.ticket = r.optStr("ticket", limits::kMaxIdLength).value_or("");
    if (h.role == Role::Desktop) {
        h.clientId = r.id("clientId");
        h.name = r.optStr("name", limits::kMaxNameLength).value_or("");
        h.hostname = r.optStr("hostname", limits::kMaxNameLength).value_or("");
        h.monitors = readMonitors(r, "monitors", false);
        h.capabilities = readCapabilities(r);
    }
    return h;
}

DesktopSummary readDesktop(const Reader& r) {
    DesktopSummary d;
    d.clientId = r.id("clientId");
    d.name = r.optStr("name", limits::kMaxNameLength).value_or("");
    d.hostname = r.optStr("hostname", limits::kMaxNameLength).value_or("");
    d.monitors = readMonitors(r, "monitors", false);
    d.viewers = static_cast<int>(r.optInteger("viewers", 0, 1000000).value_or(0));
    return d;
}

Message readCommandMessage(const Reader& r, Channel ch) {
    CommandMessage m;
    if (ch == Channel::ViewerToRelay) {
        m.desktopClientId = r.id("desktopClientId");
        if (r.has("commandId")) {
            // An empty commandId means "assign one" (same as absent).
            std::string id = r.str("commandId", limits::kMaxIdLength);
            if (!id.empty() && !isValidId(id))
                failField("commandId", "must match [A-Za-z0-9._-]{1,128}");
            m.commandId = std::move(id);
        }
    } else {
        m.commandId = r.id("commandId");
        if (r.has("desktopClientId")) m.desktopClientId = r.id("desktopClientId");
    }
    m.command = readCommand(Reader(r.object("command"), "command"));
    return m;
}

bool allowed(const std::string& type, Channel ch) {
    static const std::set<std::string> agentToRelay = {"handshake",      "ping",        "pong",
                                                       "command_result", "agent_stats", "error"};
    static const std::set<std::string> viewerToRelay = {
        "handshake", "ping", "pong", "subscribe", "unsubscribe", "frame_ack", "command", "error"};
    static const std::set<std::string> relayToAgent = {
        "handshake_ack", "registration_failed", "ping",    "pong", "frame_ack",
        "start_stream",  "stop_stream",         "command", "error"};
    static const std::set<std::string> relayToViewer = {
        "handshake_ack", "ping",  "pong",           "subscribed",     "unsubscribed",
        "redirect",      "error", "command_queued", "command_result", "desktop_disconnected"};
    switch (ch) {
        case Channel::AgentToRelay:
            return agentToRelay.count(type) != 0;
        case Channel::ViewerToRelay:
            return viewerToRelay.count(type) != 0;
        case Channel::RelayToAgent:
            return relayToAgent.count(type) != 0;
        case Channel::RelayToViewer:
            return relayToViewer.count(type) != 0;
    }
    return false;
}

bool knownType(const std::string& t) {
    static const std::set<std::string> all = {"handshake",
                                              "handshake_ack",
                                              "registration_failed",
                                              "ping",
                                              "pong",
                                              "subscribe",
                                              "subscribed",
                                              "unsubscribe",
                                              "unsubscribed",
                                              "desktop_disconnected",
                                              "redirect",
                                              "error",
                                              "frame_ack",
                                              "start_stream",
                                              "stop_stream",
                                              "command",
                                              "command_queued",
                                              "command_result",
                                              "agent_stats"};
    return all.count(t) != 0;
}

Message readMessage(const Reader& r, const std::string& type, Channel ch) {
    if (type == "handshake") return readHandshake(r, ch);
    if (type == "handshake_ack") {
        if (ch == Channel::RelayToAgent) {
            AgentHandshakeAck a;
            a.clientId = r.id("clientId");
            a.dbRegistered = r.boolean("dbRegistered");
            a.instanceId = r.str("instanceId", limits::kMaxIdLength);
            a.streamId = static_cast<std::uint32_t>(
                r.integer("streamId", 0, std::numeric_limits<std::uint32_t>::max()));
            a.heartbeatIntervalMs = r.integer("heartbeatIntervalMs", 1, 3600000);
            a.maxInFlight = static_cast<int>(r.integer("maxInFlight", 1, 100000));
            return a;
        }
        ViewerHandshakeAck a;
        a.viewerId = r.id("viewerId");
        a.heartbeatIntervalMs = r.integer("heartbeatIntervalMs", 1, 3600000);
        if (r.has("desktops")) {
            Array::Ptr arr = r.array("desktops", limits::kMaxDesktopList);
            for (std::size_t i = 0; i < arr->size(); ++i) {
                const std::string field = indexed("desktops", i);
                a.desktops.push_back(readDesktop(Reader(objectAt(arr, i, field), field)));
            }
        }
        return a;
    }
    if (type == "registration_failed") {
        RegistrationFailed f;
        f.clientId = r.optStr("clientId", limits::kMaxIdLength).value_or("");
        const std::string code = r.str("code", limits::kMaxShortString, false);
        if (!parseErrorCode(code, f.code)) failField("code", "is not a known error code");
        f.error = r.optStr("error", limits::kMaxMessageText).value_or("");
        return f;
    }
    if (type == "ping") {
        Ping p;
        p.timestamp = r.integer("timestamp", 0, std::numeric_limits<std::int64_t>::max());
        return p;
    }
    if (type == "pong") {
        Pong p;
        p.timestamp = r.integer("timestamp", 0, std::numeric_limits<std::int64_t>::max());
        p.serverTime =
            r.optInteger("serverTime", 0, std::numeric_limits<std::int64_t>::max()).value_or(0);
        if (r.has("availableDesktopClients"))
            p.availableDesktopClients =
                readIdList(r, "availableDesktopClients", limits::kMaxDesktopList);
        return p;
    }
    if (type == "subscribe") {
        Subscribe s;
        s.desktopClientId = r.id("desktopClientId");
        if (auto m = r.optInteger("monitor", 0, 255)) s.monitor = static_cast<int>(*m);
        return s;
    }
    if (type == "subscribed") {
        Subscribed s;
        s.desktopClientId = r.id("desktopClientId");
        s.streamId = static_cast<std::uint32_t>(
            r.integer("streamId", 0, std::numeric_limits<std::uint32_t>::max()));
        s.monitors = readMonitors(r, "monitors", false);
        return s;
    }
    if (type == "unsubscribe") return Unsubscribe{r.id("desktopClientId")};
    if (type == "unsubscribed") return Unsubscribed{r.id("desktopClientId")};
    if (type == "desktop_disconnected") return DesktopDisconnected{r.id("desktopClientId")};
    if (type == "redirect") {
        Redirect d;
        d.url = r.str("url", limits::kMaxUrlLength, false);
        if (d.url.rfind("ws://", 0) != 0 && d.url.rfind("wss://", 0) != 0)
            failField("url", "must start with ws:// or wss://");
        if (r.has("desktopClientId")) d.desktopClientId = r.id("desktopClientId");
        return d;
    }
    if (type == "error") {
        ErrorMessage e;
        const std::string code = r.str("code", limits::kMaxShortString, false);
        if (!parseErrorCode(code, e.code)) failField("code", "is not a known error code");
        e.message = r.optStr("message", limits::kMaxMessageText).value_or("");
        return e;
    }
    if (type == "frame_ack") {
        if (ch == Channel::ViewerToRelay) {
            ViewerFrameAck a;
            a.desktopClientId = r.id("desktopClientId");
            a.frameNumber = r.uint64("frameNumber");
            a.latency = r.integer("latency", 0, 3600000);
            if (auto m = r.optInteger("monitor", 0, 65535)) a.monitor = static_cast<int>(*m);
            return a;
        }
        AgentFrameAck a;
        a.frameNumber = r.uint64("frameNumber");
        a.latency = r.integer("latency", 0, 3600000);
        a.viewers = static_cast<int>(r.integer("viewers", 0, 1000000));
        return a;
    }
    if (type == "agent_stats") {
        AgentStats a;
        a.quality = static_cast<int>(r.integer("quality", 0, 100));
        a.fps = static_cast<int>(r.integer("fps", 0, 1000));
        a.inFlight = static_cast<int>(r.integer("inFlight", 0, 1000000));
        a.framesEncoded = r.uint64("framesEncoded");
        a.framesSent = r.uint64("framesSent");
        a.framesDroppedWindow = r.uint64("framesDroppedWindow");
        a.latencyMs = r.optInteger("latencyMs", 0, 3600000);
        return a;
    }
    if (type == "start_stream") return StartStream{};
    if (type == "stop_stream") return StopStream{};
    if (type == "command") return readCommandMessage(r, ch);
    if (type == "command_queued") {
        CommandQueued q;
        q.commandId = r.id("commandId");
        q.status = r.str("status", limits::kMaxShortString, false);
        return q;
    }
    // command_result
    CommandResult c;
    c.commandId = r.id("commandId");
    const std::string status = r.str("status", limits::kMaxShortString, false);
    if (status == "done")
        c.status = CommandStatus::Done;
    else if (status == "failed")
        c.status = CommandStatus::Failed;
    else
        failField("status", "must be \"done\" or \"failed\"");
    c.error = r.optStr("error", limits::kMaxMessageText).value_or("");
    if (r.has("desktopClientId")) c.desktopClientId = r.id("desktopClientId");
    return c;
}

/// Throws FieldError for an integer literal outside [-2^63, 2^64-1]: Poco's parser wraps such
/// a literal around (2^64 reads as 0) instead of refusing it. Strings are skipped.
void checkIntegerLiterals(const std::string& text) {
    static const std::string kMaxU64 = "18446744073709551615";
    static const std::string kMinI64 = "9223372036854775808";  // magnitude of -2^63
    const std::size_t n = text.size();
    for (std::size_t i = 0; i < n; ++i) {
        const char c = text[i];
        if (c == '"') {  // skip the string, escapes included
            for (++i; i < n && text[i] != '"'; ++i)
                if (text[i] == '\\') ++i;
            continue;
        }
        if (c != '-' && (c < '0' || c > '9')) continue;
        const bool negative = c == '-';
        std::size_t end = i + (negative ? 1 : 0);
        bool integer = true;
        while (end < n &&
               (std::isdigit(static_cast<unsigned char>(text[end])) || text[end] == '.' ||
                text[end] == 'e' || text[end] == 'E' || text[end] == '+' || text[end] == '-')) {
            if (!std::isdigit(static_cast<unsigned char>(text[end]))) integer = false;
            ++end;
        }
        if (integer) {
            std::string digits = text.substr(i + (negative ? 1 : 0), end - i - (negative ? 1 : 0));
            digits.erase(0, std::min(digits.find_first_not_of('0'), digits.size() - 1));
            const std::string& limit = negative ? kMinI64 : kMaxU64;
            if (digits.size() > limit.size() || (digits.size() == limit.size() && digits > limit))
                throw FieldError{ErrorCode::BadRequest, "",
                                 "an integer is out of range (at most 2^64-1, at least -2^63)"};
        }
        i = end - 1;
    }
}

/// Poco's parse errors quote the offending input byte as it is. The text goes back to the peer
/// in an `error` message, a WebSocket text frame that must be UTF-8, and into the log, so every
/// byte outside printable ASCII is written as \xNN (found by fuzzing: docs/fuzzing.md).
std::string printableAscii(const std::string& text) {
    static const char kHex[] = "0123456789abcdef";
    std::string out;
    out.reserve(text.size());
    for (unsigned char c : text) {
        if (c >= 0x20 && c < 0x7f) {
            out += static_cast<char>(c);
        } else {
            out += "\\x";
            out += kHex[c >> 4];
            out += kHex[c & 15];
        }
    }
    return out;
}

/// Parses text into a JSON object, or throws FieldError.
Object::Ptr parseObject(const std::string& text, const char* what) {
    if (text.size() > limits::kMaxControlMessageBytes)
        throw FieldError{ErrorCode::TooLarge, "",
                         std::string(what) + " longer than " +
                             std::to_string(limits::kMaxControlMessageBytes) + " bytes"};
    checkIntegerLiterals(text);
    Var v;
    try {
        Poco::JSON::Parser parser;
        parser.setDepth(16);  // our messages nest 4 deep at most
        v = parser.parse(text);
    } catch (const Poco::Exception& e) {
        // Poco's message names the position; it never echoes more than a few characters.
        throw FieldError{ErrorCode::BadRequest, "",
                         "malformed JSON: " + printableAscii(e.message())};
    } catch (const std::exception& e) {
        throw FieldError{ErrorCode::BadRequest, "", "malformed JSON: " + printableAscii(e.what())};
    }
    if (kindOf(v) != Kind::Obj)
        throw FieldError{ErrorCode::BadRequest, "",
                         std::string(what) + " must be a JSON object, not " + kindName(kindOf(v))};
    return v.extract<Object::Ptr>();
}

}  // namespace

// ======================================================================== public API

std::optional<Error> integerLiteralError(const std::string& json) {
    try {
        checkIntegerLiterals(json);
    } catch (const FieldError& e) {
        return makeError(e.code, e.field, e.message);
    }
    return std::nullopt;
}

Result<Command> parseCommand(const std::string& json) {
    try {
        return readCommand(Reader(parseObject(json, "command"), "command"));
    } catch (const FieldError& e) {
        return makeError(e.code, e.field, e.message);
    } catch (const std::exception& e) {  // Poco conversions: never escape as a crash
        return makeError(ErrorCode::BadRequest, "command", std::string("bad command: ") + e.what());
    }
}

std::string serializeCommand(const Command& c) { return toText(commandObject(c)); }

Result<Message> parseMessage(const std::string& text, Channel channel) {
    // The most frequent message, read without building a JSON object (frame_ack.hpp); anything
    // unusual falls through to the full decoder below.
    if (channel == Channel::ViewerToRelay) {
        if (auto ack = parseFrameAckFast(text)) return Message{std::move(*ack)};
    }
    try {
        Reader r(parseObject(text, "message"), "");
        const std::string type = r.str("type", limits::kMaxShortString, false);
        if (!knownType(type))
            return makeError(ErrorCode::BadRequest, "type", "unknown message type '" + type + "'");
        if (!allowed(type, channel))
            return makeError(ErrorCode::BadRequest, "type",
                             "message type '" + type + "' is not allowed on this connection");
        return readMessage(r, type, channel);
    } catch (const FieldError& e) {
        return makeError(e.code, e.field, e.message);
    } catch (const std::exception& e) {
        return makeError(ErrorCode::BadRequest, "", std::string("bad message: ") + e.what());
    }
}

const char* typeName(const Message& m) {
    struct V {
        const char* operator()(const Handshake&) const { return "handshake"; }
        const char* operator()(const AgentHandshakeAck&) const { return "handshake_ack"; }
        const char* operator()(const ViewerHandshakeAck&) const { return "handshake_ack"; }
        const char* operator()(const RegistrationFailed&) const { return "registration_failed"; }
        const char* operator()(const Ping&) const { return "ping"; }
        const char* operator()(const Pong&) const { return "pong"; }
        const char* operator()(const Subscribe&) const { return "subscribe"; }
        const char* operator()(const Subscribed&) const { return "subscribed"; }
        const char* operator()(const Unsubscribe&) const { return "unsubscribe"; }
        const char* operator()(const Unsubscribed&) const { return "unsubscribed"; }
        const char* operator()(const DesktopDisconnected&) const { return "desktop_disconnected"; }
        const char* operator()(const Redirect&) const { return "redirect"; }
        const char* operator()(const ErrorMessage&) const { return "error"; }
        const char* operator()(const ViewerFrameAck&) const { return "frame_ack"; }
        const char* operator()(const AgentFrameAck&) const { return "frame_ack"; }
        const char* operator()(const StartStream&) const { return "start_stream"; }
        const char* operator()(const StopStream&) const { return "stop_stream"; }
        const char* operator()(const CommandMessage&) const { return "command"; }
        const char* operator()(const CommandQueued&) const { return "command_queued"; }
        const char* operator()(const CommandResult&) const { return "command_result"; }
        const char* operator()(const AgentStats&) const { return "agent_stats"; }
    };
    return std::visit(V{}, m);
}

namespace {

struct Writer {
    Object::Ptr o;

    void operator()(const Handshake& h) {
        o->set("protocol", h.protocol);
        o->set("role", std::string(toString(h.role)));
        if (h.role == Role::Desktop) o->set("clientId", h.clientId);
        o->set("token", h.token);
        if (!h.ticket.empty()) o->set("ticket", h.ticket);
        if (h.role == Role::Desktop) {
            o->set("name", h.name);
            o->set("hostname", h.hostname);
            o->set("monitors", monitorArray(h.monitors));
            o->set("capabilities", capabilitiesObject(h.capabilities));
        }
    }
    void operator()(const AgentHandshakeAck& a) {
        o->set("clientId", a.clientId);
        o->set("dbRegistered", a.dbRegistered);
        o->set("instanceId", a.instanceId);
        setI64(o, "streamId", a.streamId);
        setI64(o, "heartbeatIntervalMs", a.heartbeatIntervalMs);
        o->set("maxInFlight", a.maxInFlight);
    }
    void operator()(const ViewerHandshakeAck& a) {
        o->set("viewerId", a.viewerId);
        setI64(o, "heartbeatIntervalMs", a.heartbeatIntervalMs);
        Array::Ptr arr = new Array();
        for (const auto& d : a.desktops) {
            Object::Ptr x = newObject(nullptr);
            x->set("clientId", d.clientId);
            x->set("name", d.name);
            x->set("hostname", d.hostname);
            x->set("monitors", monitorArray(d.monitors));
            x->set("viewers", d.viewers);
            arr->add(x);
        }
        o->set("desktops", arr);
    }
    void operator()(const RegistrationFailed& f) {
        o->set("clientId", f.clientId);
        o->set("code", std::string(toString(f.code)));
        o->set("error", f.error);
    }
    void operator()(const Ping& p) { setI64(o, "timestamp", p.timestamp); }
    void operator()(const Pong& p) {
        setI64(o, "timestamp", p.timestamp);
        setI64(o, "serverTime", p.serverTime);
        if (p.availableDesktopClients) {
            Array::Ptr arr = new Array();
            for (const auto& s : *p.availableDesktopClients) arr->add(s);
            o->set("availableDesktopClients", arr);
        }
    }
    void operator()(const Subscribe& s) {
        o->set("desktopClientId", s.desktopClientId);
        if (s.monitor) o->set("monitor", *s.monitor);
    }
    void operator()(const Subscribed& s) {
        o->set("desktopClientId", s.desktopClientId);
        setI64(o, "streamId", s.streamId);
        o->set("monitors", monitorArray(s.monitors));
    }
    void operator()(const Unsubscribe& s) { o->set("desktopClientId", s.desktopClientId); }
    void operator()(const Unsubscribed& s) { o->set("desktopClientId", s.desktopClientId); }
    void operator()(const DesktopDisconnected& s) { o->set("desktopClientId", s.desktopClientId); }
    void operator()(const Redirect& d) {
        o->set("url", d.url);
        if (!d.desktopClientId.empty()) o->set("desktopClientId", d.desktopClientId);
    }
    void operator()(const ErrorMessage& e) {
        o->set("code", std::string(toString(e.code)));
        o->set("message", e.message);
    }
    void operator()(const ViewerFrameAck& a) {
        o->set("desktopClientId", a.desktopClientId);
        setU64(o, "frameNumber", a.frameNumber);
        setI64(o, "latency", a.latency);
        if (a.monitor) o->set("monitor", *a.monitor);
    }
    void operator()(const AgentFrameAck& a) {
        setU64(o, "frameNumber", a.frameNumber);
        setI64(o, "latency", a.latency);
        o->set("viewers", a.viewers);
    }
    void operator()(const AgentStats& a) {
        o->set("quality", a.quality);
        o->set("fps", a.fps);
        o->set("inFlight", a.inFlight);
        setU64(o, "framesEncoded", a.framesEncoded);
        setU64(o, "framesSent", a.framesSent);
        setU64(o, "framesDroppedWindow", a.framesDroppedWindow);
        if (a.latencyMs) setI64(o, "latencyMs", *a.latencyMs);
    }
    void operator()(const StartStream&) {}
    void operator()(const StopStream&) {}
    void operator()(const CommandMessage& c) {
        if (!c.desktopClientId.empty()) o->set("desktopClientId", c.desktopClientId);
        if (!c.commandId.empty()) o->set("commandId", c.commandId);
        o->set("command", commandObject(c.command));
    }
    void operator()(const CommandQueued& q) {
        o->set("commandId", q.commandId);
        o->set("status", q.status);
    }
    void operator()(const CommandResult& c) {
        o->set("commandId", c.commandId);
        o->set("status", std::string(c.status == CommandStatus::Done ? "done" : "failed"));
        if (!c.error.empty()) o->set("error", c.error);
        if (!c.desktopClientId.empty()) o->set("desktopClientId", c.desktopClientId);
    }
};

}  // namespace

std::string serialize(const Message& m) {
    Writer w{newObject(typeName(m))};
    std::visit(w, m);
    return toText(w.o);
}

std::string serializeError(const Error& e) { return serialize(ErrorMessage{e.code, e.message}); }

std::string serializeDesktopConnected(const DesktopSummary& d) {
    Object::Ptr o = newObject("desktop_connected");
    o->set("desktopClientId", d.clientId);
    Object::Ptr x = newObject(nullptr);
    x->set("clientId", d.clientId);
    x->set("name", d.name);
    x->set("hostname", d.hostname);
    x->set("monitors", monitorArray(d.monitors));
    x->set("viewers", d.viewers);
    o->set("desktop", x);
    return toText(o);
}

std::string monitorsToJson(const std::vector<MonitorInfo>& monitors) {
    std::ostringstream out;
    monitorArray(monitors)->stringify(out);
    return out.str();
}

std::string capabilitiesToJson(const Capabilities& caps) {
    return toText(capabilitiesObject(caps));
}

Result<std::vector<MonitorInfo>> parseMonitorsJson(const std::string& json) {
    try {
        Poco::JSON::Parser parser;
        parser.setDepth(8);
        Var v = parser.parse(json);
        if (kindOf(v) != Kind::Arr)
            return makeError(ErrorCode::BadRequest, "monitors", "monitors must be a JSON array");
        Object::Ptr wrapper = new Object();
        wrapper->set("monitors", v);
        return readMonitors(Reader(wrapper, ""), "monitors", true);
    } catch (const FieldError& e) {
        return makeError(e.code, e.field, e.message);
    } catch (const std::exception& e) {
        return makeError(ErrorCode::BadRequest, "monitors",
                         std::string("malformed JSON: ") + e.what());
    }
}

}  // namespace deskstream::core
