// JSON codec: every message round-trips; every class of bad input is refused with the right
// code and a message naming the field.
#include "deskstream/core/protocol.hpp"

#include <gtest/gtest.h>

#include <array>

using namespace deskstream::core;

namespace {

MonitorInfo mon(int index, bool primary = false) {
    MonitorInfo m;
    m.index = index;
    m.name = "HDMI-" + std::to_string(index + 1);
    m.x = index * 1920;
    m.width = 1920;
    m.height = 1080;
    m.primary = primary;
    return m;
}

void expectRoundTrip(const Message& m, Channel ch) {
    const std::string text = serialize(m);
    Result<Message> back = parseMessage(text, ch);
    ASSERT_TRUE(back.ok()) << text << " -> " << back.error().message;
    EXPECT_EQ(back.value().index(), m.index()) << text;
    EXPECT_TRUE(back.value() == m) << text << " -> " << serialize(back.value());
    EXPECT_EQ(serialize(back.value()), text);
}

Error expectError(const std::string& text, Channel ch, ErrorCode code, const std::string& field) {
    Result<Message> r = parseMessage(text, ch);
    EXPECT_FALSE(r.ok()) << text;
    if (r.ok()) return {};
    EXPECT_EQ(r.error().code, code) << text << ": " << r.error().message;
    EXPECT_EQ(r.error().field, field) << text << ": " << r.error().message;
    if (!field.empty()) {
        EXPECT_NE(r.error().message.find(field), std::string::npos) << r.error().message;
    }
    return r.error();
}

Command setConfig() {
    Command c;
    c.type = CommandType::SetConfig;
    c.config.fps = 15;
    c.config.quality = 60;
    c.config.encoder = "webp";
    c.config.monitors = std::vector<int>{0, 1};
    return c;
}

Command input(InputEvent e) {
    Command c;
    c.type = CommandType::Input;
    c.input.event = e;
    c.input.monitor = 0;
    if (e == InputEvent::KeyDown || e == InputEvent::KeyUp) {
        c.input.key = "Enter";
    } else {
        c.input.x = 100;
        c.input.y = 200;
    }
    if (e == InputEvent::MouseDown || e == InputEvent::MouseUp) c.input.button = 2;
    if (e == InputEvent::Wheel) c.input.deltaY = -1;
    return c;
}

}  // namespace

TEST(Protocol, AgentHandshakeRoundTripAndSpecExample) {
    Handshake h;
    h.role = Role::Desktop;
    h.clientId = "office-pc";
    h.token = "abc.def.ghi";
    h.name = "Office PC";
    h.hostname = "pc01";
    h.monitors = {mon(0, true), mon(1)};
    h.capabilities.codecs = {"jpeg", "webp", "avif"};
    h.capabilities.input = true;
    expectRoundTrip(h, Channel::AgentToRelay);

    // The handshake example of docs/protocol.md (with an empty token).
    const std::string spec =
        R"({"type":"handshake","protocol":1,"role":"desktop","clientId":"office-pc","token":"",
 "name":"Office PC","hostname":"pc01",
 "monitors":[{"index":0,"name":"HDMI-1","x":0,"y":0,"width":1920,"height":1080,"primary":true}],
 "capabilities":{"codecs":["jpeg","webp","avif"],"input":true}})";
    auto r = parseMessage(spec, Channel::AgentToRelay);
    ASSERT_TRUE(r.ok()) << r.error().message;
    const auto& hs = std::get<Handshake>(r.value());
    EXPECT_EQ(hs.clientId, "office-pc");
    ASSERT_EQ(hs.monitors.size(), 1u);
    EXPECT_TRUE(hs.monitors[0].primary);
    EXPECT_TRUE(hs.capabilities.input);
}

TEST(Protocol, ViewerHandshakeRoundTrip) {
    Handshake h;
    h.role = Role::Viewer;
    h.token = "t";
    expectRoundTrip(h, Channel::ViewerToRelay);
    auto r = parseMessage(R"({"type":"handshake","protocol":1,"role":"viewer","token":"x"})",
                          Channel::ViewerToRelay);
    ASSERT_TRUE(r.ok()) << r.error().message;
}

TEST(Protocol, EveryRelayToAgentMessageRoundTrips) {
    AgentHandshakeAck ack{"office-pc", true, "5f0c6b1e-1111-4222-8333-444455556666", 7, 5000, 10};
    expectRoundTrip(ack, Channel::RelayToAgent);
    expectRoundTrip(RegistrationFailed{"office-pc", ErrorCode::StoreUnavailable, "db down"},
                    Channel::RelayToAgent);
    expectRoundTrip(Ping{1700000000000}, Channel::RelayToAgent);
    expectRoundTrip(Pong{1, 2, std::nullopt}, Channel::RelayToAgent);
    expectRoundTrip(AgentFrameAck{123, 42, 2}, Channel::RelayToAgent);
    expectRoundTrip(StartStream{}, Channel::RelayToAgent);
    expectRoundTrip(StopStream{}, Channel::RelayToAgent);
    expectRoundTrip(ErrorMessage{ErrorCode::TooLarge, "frame too large"}, Channel::RelayToAgent);
    CommandMessage c;
    c.commandId = "c-1";
    for (Command cmd : {setConfig(), input(InputEvent::MouseMove), input(InputEvent::MouseDown),
                        input(InputEvent::MouseUp), input(InputEvent::Wheel),
                        input(InputEvent::KeyDown), input(InputEvent::KeyUp)}) {
        c.command = cmd;
        expectRoundTrip(c, Channel::RelayToAgent);
    }
    for (CommandType t :
         {CommandType::StartStream, CommandType::StopStream, CommandType::RequestKeyframe}) {
        c.command = Command{};
        c.command.type = t;
        expectRoundTrip(c, Channel::RelayToAgent);
    }
}

TEST(Protocol, EveryRelayToViewerMessageRoundTrips) {
    ViewerHandshakeAck ack;
    ack.viewerId = "v1";
    ack.desktops = {DesktopSummary{"office-pc", "Office PC", "pc01", {mon(0, true)}, 2}};
    expectRoundTrip(ack, Channel::RelayToViewer);
    expectRoundTrip(Pong{5, 6, std::vector<std::string>{"a", "b"}}, Channel::RelayToViewer);
    expectRoundTrip(Pong{5, 6, std::vector<std::string>{}}, Channel::RelayToViewer);
    expectRoundTrip(Subscribed{"office-pc", 7, {mon(0), mon(1)}}, Channel::RelayToViewer);
    expectRoundTrip(Unsubscribed{"office-pc"}, Channel::RelayToViewer);
    expectRoundTrip(DesktopDisconnected{"office-pc"}, Channel::RelayToViewer);
    expectRoundTrip(Redirect{"ws://10.0.0.2:8080/ws/viewer", "office-pc"}, Channel::RelayToViewer);
    expectRoundTrip(Redirect{"wss://relay/ws/viewer", ""}, Channel::RelayToViewer);
    expectRoundTrip(ErrorMessage{ErrorCode::NotFound, "no such desktop"}, Channel::RelayToViewer);
    expectRoundTrip(CommandQueued{"c-1", "pending"}, Channel::RelayToViewer);
    expectRoundTrip(CommandResult{"c-1", CommandStatus::Failed, "no input", "office-pc"},
                    Channel::RelayToViewer);
    expectRoundTrip(Ping{9}, Channel::RelayToViewer);
}

// Extension: not a Message variant (viewers that do not know it skip it), only encoded.
TEST(Protocol, DesktopConnectedNoticeCarriesTheHandshakeAckEntry) {
    DesktopSummary d{"office-pc", "<img src=x>", "pc01", {mon(0, true)}, 2};
    const std::string text = serializeDesktopConnected(d);
    EXPECT_EQ(
        text.rfind(R"({"type":"desktop_connected","desktopClientId":"office-pc","desktop":{)", 0),
        0u)
        << text;
    // The "desktop" object is exactly what handshake_ack lists, so one parser reads both.
    ViewerHandshakeAck ack;
    ack.viewerId = "v1";
    ack.desktops = {d};
    const std::string ackText = serialize(ack);
    const std::string entry = text.substr(text.find("\"desktop\":") + 10, std::string::npos);
    EXPECT_NE(ackText.find(entry.substr(0, entry.size() - 1)), std::string::npos) << text << "\n"
                                                                                  << ackText;
    // Unknown to parseMessage: a strict C++ viewer sees an unknown type, never a crash.
    auto parsed = parseMessage(text, Channel::RelayToViewer);
    ASSERT_FALSE(parsed.ok());
    EXPECT_EQ(parsed.error().field, "type");
}

TEST(Protocol, EveryPeerToRelayMessageRoundTrips) {
    expectRoundTrip(Ping{1}, Channel::AgentToRelay);
    expectRoundTrip(Pong{1, 2, std::nullopt}, Channel::AgentToRelay);
    expectRoundTrip(CommandResult{"c-1", CommandStatus::Done, "", ""}, Channel::AgentToRelay);
    expectRoundTrip(Subscribe{"office-pc", 1}, Channel::ViewerToRelay);
    expectRoundTrip(Subscribe{"office-pc", std::nullopt}, Channel::ViewerToRelay);
    expectRoundTrip(Unsubscribe{"office-pc"}, Channel::ViewerToRelay);
    expectRoundTrip(ViewerFrameAck{"office-pc", 123, 42, std::nullopt}, Channel::ViewerToRelay);
    expectRoundTrip(ViewerFrameAck{"office-pc", 18446744073709551615ull, 0, 1},
                    Channel::ViewerToRelay);
    CommandMessage c{"office-pc", "", setConfig()};
    expectRoundTrip(c, Channel::ViewerToRelay);
    c.commandId = "0b0e5c1c-8f6e-4d8e-9d3e-2f1a1b1c1d1e";
    expectRoundTrip(c, Channel::ViewerToRelay);
}

TEST(Protocol, SpecExamplesParse) {
    const std::pair<const char*, Channel> examples[] = {
        {R"({"type":"handshake_ack","clientId":"office-pc","dbRegistered":true,"instanceId":"abc","streamId":7,"heartbeatIntervalMs":5000,"maxInFlight":10})",
         Channel::RelayToAgent},
        {R"({"type":"registration_failed","clientId":"office-pc","code":"store_unavailable","error":"x"})",
         Channel::RelayToAgent},
        {R"({"type":"subscribe","desktopClientId":"office-pc","monitor":0})",
         Channel::ViewerToRelay},
        {R"({"type":"frame_ack","desktopClientId":"office-pc","frameNumber":123,"latency":42})",
         Channel::ViewerToRelay},
        {R"({"type":"frame_ack","frameNumber":123,"latency":42,"viewers":2})",
         Channel::RelayToAgent},
        {R"({"type":"command","desktopClientId":"office-pc","command":{"type":"set_config","fps":15}})",
         Channel::ViewerToRelay},
        {R"({"type":"command_result","commandId":"c1","status":"done","error":null})",
         Channel::AgentToRelay},
        {R"({"type":"pong","timestamp":5,"serverTime":6,"availableDesktopClients":["office-pc"]})",
         Channel::RelayToViewer},
        {R"({"type":"redirect","url":"ws://host:8080/ws/viewer"})", Channel::RelayToViewer},
        {R"({"type":"stop_stream"})", Channel::RelayToAgent},
        // Unknown extra fields are ignored (forward compatibility).
        {R"({"type":"ping","timestamp":1,"futureField":{"a":[1,2]}})", Channel::AgentToRelay},
    };
    for (const auto& [text, ch] : examples) {
        auto r = parseMessage(text, ch);
        EXPECT_TRUE(r.ok()) << text << ": " << (r.ok() ? "" : r.error().message);
    }
}

TEST(Protocol, MalformedJsonAndNonObjects) {
    for (const char* text : {"", "{", "not json", "{\"type\":\"ping\",}", "[1,2]", "42", "\"ping\"",
                             "null", "{\"type\":\"ping\"} trailing"}) {
        auto r = parseMessage(text, Channel::AgentToRelay);
        EXPECT_FALSE(r.ok()) << text;
        if (!r.ok()) {
            EXPECT_EQ(r.error().code, ErrorCode::BadRequest) << text;
        }
    }
}

TEST(Protocol, TypeErrors) {
    expectError(R"({"timestamp":1})", Channel::AgentToRelay, ErrorCode::BadRequest, "type");
    expectError(R"({"type":7})", Channel::AgentToRelay, ErrorCode::BadRequest, "type");
    expectError(R"({"type":"bogus"})", Channel::AgentToRelay, ErrorCode::BadRequest, "type");
    // Known types on the wrong connection.
    expectError(R"({"type":"subscribe","desktopClientId":"a"})", Channel::AgentToRelay,
                ErrorCode::BadRequest, "type");
    expectError(R"({"type":"start_stream"})", Channel::ViewerToRelay, ErrorCode::BadRequest,
                "type");
    expectError(R"({"type":"handshake_ack","viewerId":"v"})", Channel::ViewerToRelay,
                ErrorCode::BadRequest, "type");
}

TEST(Protocol, MissingRequiredFields) {
    expectError(R"({"type":"ping"})", Channel::AgentToRelay, ErrorCode::BadRequest, "timestamp");
    expectError(R"({"type":"ping","timestamp":null})", Channel::AgentToRelay, ErrorCode::BadRequest,
                "timestamp");
    expectError(R"({"type":"handshake","role":"desktop","clientId":"a"})", Channel::AgentToRelay,
                ErrorCode::BadRequest, "protocol");
    expectError(R"({"type":"handshake","protocol":1,"role":"desktop"})", Channel::AgentToRelay,
                ErrorCode::BadRequest, "clientId");
    expectError(R"({"type":"subscribe"})", Channel::ViewerToRelay, ErrorCode::BadRequest,
                "desktopClientId");
    expectError(R"({"type":"frame_ack","desktopClientId":"a","latency":1})", Channel::ViewerToRelay,
                ErrorCode::BadRequest, "frameNumber");
    expectError(R"({"type":"command","desktopClientId":"a"})", Channel::ViewerToRelay,
                ErrorCode::BadRequest, "command");
    expectError(R"({"type":"command","command":{"type":"start_stream"}})", Channel::RelayToAgent,
                ErrorCode::BadRequest, "commandId");
    expectError(R"({"type":"command_result","commandId":"c"})", Channel::AgentToRelay,
                ErrorCode::BadRequest, "status");
    expectError(
        R"({"type":"handshake","protocol":1,"role":"desktop","clientId":"a","monitors":[{"index":0,"width":10}]})",
        Channel::AgentToRelay, ErrorCode::BadRequest, "monitors[0].height");
}

TEST(Protocol, WrongFieldTypes) {
    expectError(R"({"type":"ping","timestamp":"1"})", Channel::AgentToRelay, ErrorCode::BadRequest,
                "timestamp");
    expectError(R"({"type":"ping","timestamp":1.5})", Channel::AgentToRelay, ErrorCode::BadRequest,
                "timestamp");
    expectError(R"({"type":"ping","timestamp":true})", Channel::AgentToRelay, ErrorCode::BadRequest,
                "timestamp");
    expectError(R"({"type":"handshake","protocol":"1","role":"viewer"})", Channel::ViewerToRelay,
                ErrorCode::BadRequest, "protocol");
    expectError(R"({"type":"handshake","protocol":1,"role":"viewer","token":5})",
                Channel::ViewerToRelay, ErrorCode::BadRequest, "token");
    expectError(
        R"({"type":"handshake","protocol":1,"role":"desktop","clientId":"a","monitors":{}})",
        Channel::AgentToRelay, ErrorCode::BadRequest, "monitors");
    expectError(
        R"({"type":"handshake","protocol":1,"role":"desktop","clientId":"a","capabilities":{"input":"yes"}})",
        Channel::AgentToRelay, ErrorCode::BadRequest, "capabilities.input");
    expectError(
        R"({"type":"handshake","protocol":1,"role":"desktop","clientId":"a","capabilities":{"codecs":["jpeg",3]}})",
        Channel::AgentToRelay, ErrorCode::BadRequest, "capabilities.codecs[1]");
    expectError(R"({"type":"subscribe","desktopClientId":"a","monitor":"0"})",
                Channel::ViewerToRelay, ErrorCode::BadRequest, "monitor");
    expectError(R"({"type":"command","desktopClientId":"a","command":"set_config"})",
                Channel::ViewerToRelay, ErrorCode::BadRequest, "command");
    expectError(R"({"type":"frame_ack","desktopClientId":"a","frameNumber":-1,"latency":1})",
                Channel::ViewerToRelay, ErrorCode::BadRequest, "frameNumber");
    expectError(
        R"({"type":"handshake_ack","clientId":"a","dbRegistered":1,"instanceId":"i","streamId":1,"heartbeatIntervalMs":5000,"maxInFlight":10})",
        Channel::RelayToAgent, ErrorCode::BadRequest, "dbRegistered");
}

TEST(Protocol, BadValuesAndLimits) {
    expectError(R"({"type":"handshake","protocol":1,"role":"admin"})", Channel::ViewerToRelay,
                ErrorCode::BadRequest, "role");
    expectError(R"({"type":"handshake","protocol":1,"role":"desktop","clientId":"a"})",
                Channel::ViewerToRelay, ErrorCode::BadRequest, "role");
    expectError(R"({"type":"handshake","protocol":1,"role":"viewer"})", Channel::AgentToRelay,
                ErrorCode::BadRequest, "role");
    expectError(R"({"type":"handshake","protocol":1,"role":"desktop","clientId":"bad id"})",
                Channel::AgentToRelay, ErrorCode::BadRequest, "clientId");
    expectError(R"({"type":"handshake","protocol":1,"role":"desktop","clientId":""})",
                Channel::AgentToRelay, ErrorCode::BadRequest, "clientId");
    const std::string id128(128, 'a'), id129(129, 'a');
    EXPECT_TRUE(parseMessage(R"({"type":"subscribe","desktopClientId":")" + id128 + "\"}",
                             Channel::ViewerToRelay)
                    .ok());
    expectError(R"({"type":"subscribe","desktopClientId":")" + id129 + "\"}",
                Channel::ViewerToRelay, ErrorCode::BadRequest, "desktopClientId");
    expectError(R"({"type":"subscribe","desktopClientId":"a","monitor":256})",
                Channel::ViewerToRelay, ErrorCode::BadRequest, "monitor");
    expectError(R"({"type":"frame_ack","desktopClientId":"a","frameNumber":1,"latency":-5})",
                Channel::ViewerToRelay, ErrorCode::BadRequest, "latency");
    expectError(R"({"type":"redirect","url":"http://x/"})", Channel::RelayToViewer,
                ErrorCode::BadRequest, "url");
    expectError(R"({"type":"error","code":"oops","message":"m"})", Channel::RelayToViewer,
                ErrorCode::BadRequest, "code");
    expectError(R"({"type":"command_result","commandId":"c","status":"maybe"})",
                Channel::AgentToRelay, ErrorCode::BadRequest, "status");
    expectError(
        R"({"type":"handshake","protocol":1,"role":"desktop","clientId":"a","monitors":[{"index":0,"width":1,"height":1},{"index":0,"width":1,"height":1}]})",
        Channel::AgentToRelay, ErrorCode::BadRequest, "monitors[1].index");
    // Text over the control-message limit: too_large.
    std::string huge = R"({"type":"ping","timestamp":1,"pad":")" +
                       std::string(limits::kMaxControlMessageBytes, 'x') + "\"}";
    expectError(huge, Channel::AgentToRelay, ErrorCode::TooLarge, "");
    // Nesting bombs are refused, not recursed into.
    std::string deep = R"({"type":"ping","timestamp":1,"x":)" + std::string(200, '[') +
                       std::string(200, ']') + "}";
    EXPECT_FALSE(parseMessage(deep, Channel::AgentToRelay).ok());
}

TEST(Protocol, CommandValidation) {
    auto bad = [](const std::string& cmd, const std::string& field) {
        expectError(R"({"type":"command","desktopClientId":"a","command":)" + cmd + "}",
                    Channel::ViewerToRelay, ErrorCode::BadRequest, field);
    };
    bad(R"({"type":"reboot"})", "command.type");
    bad(R"({})", "command.type");
    bad(R"({"type":"set_config"})", "command");  // nothing to set
    bad(R"({"type":"set_config","fps":0})", "command.fps");
    bad(R"({"type":"set_config","fps":"15"})", "command.fps");
    bad(R"({"type":"set_config","quality":101})", "command.quality");
    bad(R"({"type":"set_config","encoder":"../evil"})", "command.encoder");
    bad(R"({"type":"set_config","monitors":[]})", "command.monitors");
    bad(R"({"type":"set_config","monitors":[0,0]})", "command.monitors[1]");
    bad(R"({"type":"set_config","monitors":[0,"1"]})", "command.monitors[1]");
    bad(R"({"type":"input"})", "command.event");
    bad(R"({"type":"input","event":"teleport"})", "command.event");
    bad(R"({"type":"input","event":"mouse_move","x":1})", "command.y");
    bad(R"({"type":"input","event":"mouse_move","x":-1,"y":0})", "command.x");
    bad(R"({"type":"input","event":"mouse_down","x":1,"y":1})", "command.button");
    bad(R"({"type":"input","event":"mouse_down","x":1,"y":1,"button":9})", "command.button");
    bad(R"({"type":"input","event":"key_down"})", "command.key");
    bad(R"({"type":"input","event":"key_down","key":""})", "command.key");
    bad(R"({"type":"input","event":"wheel","x":1,"y":1,"deltaY":1e9})", "command.deltaY");
    // commandId: absent or empty = assign one; otherwise an id.
    expectError(
        R"({"type":"command","desktopClientId":"a","commandId":"no spaces","command":{"type":"start_stream"}})",
        Channel::ViewerToRelay, ErrorCode::BadRequest, "commandId");
    EXPECT_TRUE(
        parseMessage(
            R"({"type":"command","desktopClientId":"a","commandId":"","command":{"type":"start_stream"}})",
            Channel::ViewerToRelay)
            .ok());
    // The viewer page's input messages are accepted as they are.
    EXPECT_TRUE(
        parseCommand(
            R"({"type":"input","event":"wheel","monitor":0,"deltaX":0,"deltaY":-1,"x":5,"y":6})")
            .ok());
}

TEST(Protocol, CommandTextHelpers) {
    Command c = setConfig();
    auto back = parseCommand(serializeCommand(c));
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(back.value(), c);
    auto bad = parseCommand("[]");
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(bad.error().code, ErrorCode::BadRequest);
}

TEST(Protocol, MonitorsJsonRoundTrip) {
    std::vector<MonitorInfo> ms = {mon(0, true), mon(1)};
    auto back = parseMonitorsJson(monitorsToJson(ms));
    ASSERT_TRUE(back.ok()) << back.error().message;
    EXPECT_EQ(back.value(), ms);
    EXPECT_FALSE(parseMonitorsJson("{}").ok());
    EXPECT_FALSE(parseMonitorsJson("[{\"index\":\"0\"}]").ok());
    EXPECT_EQ(capabilitiesToJson(Capabilities{{"jpeg"}, true}),
              R"({"codecs":["jpeg"],"input":true})");
}

TEST(Protocol, ErrorSerialization) {
    Error e = makeError(ErrorCode::RateLimited, "x", "slow down");
    EXPECT_EQ(serializeError(e), R"({"type":"error","code":"rate_limited","message":"slow down"})");
    for (ErrorCode c : {ErrorCode::BadRequest, ErrorCode::Unauthorized, ErrorCode::NotFound,
                        ErrorCode::TooLarge, ErrorCode::RateLimited, ErrorCode::Internal,
                        ErrorCode::StoreUnavailable, ErrorCode::ProtocolMismatch}) {
        ErrorCode back{};
        ASSERT_TRUE(parseErrorCode(toString(c), back));
        EXPECT_EQ(back, c);
    }
}

TEST(Protocol, StringsAreEscaped) {
    ErrorMessage e{ErrorCode::Internal, "quote \" backslash \\ newline \n tab \t unicode \xC3\xA9"};
    expectRoundTrip(e, Channel::RelayToViewer);
}

TEST(Protocol, IdRules) {
    EXPECT_TRUE(isValidId("office-pc.1_A"));
    EXPECT_FALSE(isValidId(""));
    EXPECT_FALSE(isValidId("a b"));
    EXPECT_FALSE(isValidId("a/b"));
    EXPECT_FALSE(isValidId(std::string(129, 'x')));
    EXPECT_TRUE(isValidId(std::string(128, 'x')));
    std::array<std::uint8_t, 16> bytes{};
    for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<std::uint8_t>(0xf0 + i);
    const std::string u = uuidFromBytes(bytes);
    EXPECT_EQ(u, "f0f1f2f3-f4f5-46f7-b8f9-fafbfcfdfeff");  // version 4, RFC 4122 variant
    EXPECT_TRUE(isValidId(u));
    bytes[15] = 0;
    EXPECT_NE(u, uuidFromBytes(bytes));
}

TEST(Protocol, AgentStatsRoundTripsAndIsValidated) {
    AgentStats s;
    s.quality = 62;
    s.fps = 30;
    s.inFlight = 4;
    s.framesEncoded = 1000;
    s.framesSent = 990;
    s.framesDroppedWindow = 10;
    s.latencyMs = 42;
    expectRoundTrip(s, Channel::AgentToRelay);
    s.latencyMs.reset();
    expectRoundTrip(s, Channel::AgentToRelay);
    // Only agents send it.
    auto r = parseMessage(serialize(s), Channel::ViewerToRelay);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().field, "type");
    // Out of range and wrong types name the field.
    auto bad = parseMessage(R"({"type":"agent_stats","quality":101,"fps":8,"inFlight":0,)"
                            R"("framesEncoded":0,"framesSent":0,"framesDroppedWindow":0})",
                            Channel::AgentToRelay);
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(bad.error().field, "quality");
    bad = parseMessage(R"({"type":"agent_stats","quality":50,"fps":8,"inFlight":"2",)"
                       R"("framesEncoded":0,"framesSent":0,"framesDroppedWindow":0})",
                       Channel::AgentToRelay);
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(bad.error().field, "inFlight");
}

// Issue 18 point 10: integers are JSON integers within their range; key names are printable.
TEST(Protocol, IntegersMustBeJsonIntegersWithinRange) {
    for (const char* v : {"15.0", "1.5e1", "15e0", "1E1"}) {
        auto r = parseMessage(std::string(R"({"type":"ping","timestamp":)") + v + "}",
                              Channel::ViewerToRelay);
        ASSERT_FALSE(r.ok()) << v;
        EXPECT_EQ(r.error().field, "timestamp") << v;
        r = parseMessage(
            std::string(
                R"({"type":"command","desktopClientId":"a","command":{"type":"set_config","fps":)") +
                v + "}}",
            Channel::ViewerToRelay);
        EXPECT_FALSE(r.ok()) << v;
    }
    // 2^64 wraps to 0 in the JSON parser: refused before it gets there. 2^64-1 still parses.
    auto r =
        parseMessage(R"({"type":"ping","timestamp":18446744073709551616})", Channel::ViewerToRelay);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find("out of range"), std::string::npos) << r.error().message;
    EXPECT_FALSE(
        parseMessage(R"({"type":"ping","timestamp":-9223372036854775809})", Channel::ViewerToRelay)
            .ok());
    EXPECT_FALSE(parseMessage(R"({"type":"ping","timestamp":000018446744073709551616})",
                              Channel::ViewerToRelay)
                     .ok());
    EXPECT_FALSE(integerLiteralError(R"({"a":18446744073709551615,"b":-9223372036854775808})"));
    EXPECT_TRUE(integerLiteralError(R"({"a":18446744073709551616})"));
    // Digits inside strings are text, not numbers.
    EXPECT_FALSE(integerLiteralError(R"({"a":"99999999999999999999999","b":"\"1e400"})"));
    ASSERT_TRUE(
        parseMessage(R"({"type":"ping","timestamp":1700000000000})", Channel::ViewerToRelay).ok());
}

TEST(Protocol, KeyNamesRefuseControlCharacters) {
    for (const char* key : {"\\u0000", "a\\u001fb", "\\n", "\\u007f"}) {
        auto r = parseMessage(
            std::string(
                R"({"type":"command","desktopClientId":"a","command":{"type":"input","event":"key_down","key":")") +
                key + "\"}}",
            Channel::ViewerToRelay);
        ASSERT_FALSE(r.ok()) << key;
        EXPECT_EQ(r.error().field, "command.key") << key;
    }
    EXPECT_TRUE(
        parseMessage(
            R"({"type":"command","desktopClientId":"a","command":{"type":"input","event":"key_up","key":"ArrowUp"}})",
            Channel::ViewerToRelay)
            .ok());
    EXPECT_TRUE(
        parseMessage(
            R"({"type":"command","desktopClientId":"a","command":{"type":"input","event":"key_up","key":"é"}})",
            Channel::ViewerToRelay)
            .ok());
}

// Found by fuzzing (tests/fuzz/corpus/json_message/crash-raw-byte-in-error-reply.json): Poco
// quoted the offending byte raw in its parse error, so the relay's `error` reply was not valid
// UTF-8 (a browser closes the socket on such a text frame) and no peer could parse it.
TEST(Protocol, MalformedJsonErrorQuotesRawBytesAsPrintableAscii) {
    const std::string text = "{\"type\":\"command\",\"commandId\":\"c-9\",\"command\":\x85\xdd}";
    for (Channel ch : {Channel::AgentToRelay, Channel::ViewerToRelay, Channel::RelayToAgent,
                       Channel::RelayToViewer}) {
        auto r = parseMessage(text, ch);
        ASSERT_FALSE(r.ok());
        EXPECT_EQ(r.error().code, ErrorCode::BadRequest);
        const std::string& why = r.error().message;
        EXPECT_NE(why.find("malformed JSON"), std::string::npos) << why;
        EXPECT_NE(why.find("\\x85"), std::string::npos) << why;
        for (unsigned char c : why) EXPECT_TRUE(c >= 0x20 && c < 0x7f) << why;
        for (Channel peer : {Channel::RelayToAgent, Channel::RelayToViewer})
            EXPECT_TRUE(parseMessage(serializeError(r.error()), peer).ok()) << why;
    }
}
