// Bad input from the network gets its answer (error message or close code), is counted, and
// never disturbs a well-behaved client on the same relay (Invariant 6, docs/architecture.md).
#include "relay_fixture.hpp"

#include "deskstream/core/frame_header.hpp"

#include <Poco/Net/WebSocket.h>

using namespace ds_itest;
using Poco::Net::WebSocket;

namespace {

std::vector<uint8_t> validFrame(size_t payload) {
    deskstream::core::FrameHeader h;
    h.codec = deskstream::core::FrameCodec::Jpeg;
    h.flags = deskstream::core::frame_flags::kKey;
    h.frameNumber = 1;
    h.quality = 80;
    h.screenWidth = 640;
    h.screenHeight = 480;
    h.rectWidth = 640;
    h.rectHeight = 480;
    std::vector<uint8_t> data(payload, 0x11);
    return deskstream::core::buildFrame(h, data.data(), data.size());
}

// A ping must still be answered: the connection is alive and in sync.
void expectAlive(WsClient& c, int64_t ts) {
    c.send("{\"type\":\"ping\",\"timestamp\":" + std::to_string(ts) + "}");
    Json pong = c.waitFor("pong");
    ASSERT_TRUE(pong) << "no pong for " << ts;
    EXPECT_EQ(pong->getValue<int64_t>("timestamp"), ts);
}

void expectError(WsClient& c, const std::string& code, const std::string& what) {
    Json err = c.waitFor("error");
    ASSERT_TRUE(err) << "no error answer for " << what;
    EXPECT_EQ(str(err, "code"), code) << what;
    EXPECT_FALSE(str(err, "message").empty()) << what;
}

}  // namespace

TEST_F(RelayTest, BadMessagesGetErrorsAndDoNotDisturbOthers) {
    auto good = connectAgent("good-pc");
    auto bad = connectAgent("bad-pc");

    bad->send("{nope");
    expectError(*bad, "bad_request", "malformed JSON");
    bad->send("{\"type\":\"explode\"}");
    expectError(*bad, "bad_request", "unknown type");
    bad->send("[1,2,3]");
    expectError(*bad, "bad_request", "not an object");
    bad->send("{\"type\":\"command_result\",\"commandId\":5,\"status\":\"done\"}");
    expectError(*bad, "bad_request", "wrong field type");
    bad->send("{\"type\":\"command_result\"}");
    expectError(*bad, "bad_request", "missing fields");
    bad->send("{\"type\":\"subscribe\",\"desktopClientId\":\"x\"}");
    expectError(*bad, "bad_request", "type not allowed for agents");
    expectAlive(*bad, 1);

    // Binary frames whose header lies.
    auto f = validFrame(100);
    f[56] = static_cast<uint8_t>(f[56] + 1);  // payloadLength disagrees with the message
    bad->sendBinary(f);
    expectError(*bad, "bad_request", "payloadLength mismatch");
    auto g = validFrame(100);
    g[0] = 'X';  // magic
    bad->sendBinary(g);
    expectError(*bad, "bad_request", "bad magic");
    bad->sendBinary(std::vector<uint8_t>(10, 0));
    expectError(*bad, "bad_request", "short header");
    expectAlive(*bad, 2);
    expectAlive(*good, 3);

    EXPECT_GE(counter("bad_json"), 3u);
    EXPECT_GE(counter("unknown_types"), 2u);
    EXPECT_GE(counter("bad_frames"), 3u);
    EXPECT_TRUE(hasRow("bad-pc"));

    // Over max_message_bytes (256 KiB in the fixture): too_large, then 1009.
    bad->sendBinary(std::vector<uint8_t>(300 * 1024, 0));
    expectError(*bad, "too_large", "oversized message");
    EXPECT_EQ(bad->waitClose(), 1009);
    EXPECT_GE(counter("too_large"), 1u);
    EXPECT_TRUE(eventually([&] { return !hasRow("bad-pc"); }));

    expectAlive(*good, 4);
    EXPECT_TRUE(hasRow("good-pc"));
}

TEST_F(RelayTest, BinaryBeforeHandshakeIsRefusedWith1008) {
    WsClient agent(port(), "/ws/agent");
    agent.sendBinary(validFrame(10));
    Json failed = agent.waitFor("registration_failed");
    ASSERT_TRUE(failed);
    EXPECT_EQ(str(failed, "code"), "bad_request");
    EXPECT_EQ(agent.waitClose(), 1008);

    WsClient viewer(port(), "/ws/viewer");
    viewer.sendBinary(validFrame(10));
    expectError(viewer, "bad_request", "viewer binary before handshake");
    EXPECT_EQ(viewer.waitClose(), 1008);
    EXPECT_GE(counter("binary_before_handshake"), 2u);
    EXPECT_TRUE(rows().empty());
}

TEST_F(RelayTest, NonHandshakeFirstMessageIsRefusedWith1008) {
    WsClient agent(port(), "/ws/agent");
    agent.send("{\"type\":\"ping\",\"timestamp\":1}");
    Json failed = agent.waitFor("registration_failed");
    ASSERT_TRUE(failed);
    EXPECT_EQ(agent.waitClose(), 1008);

    WsClient agent2(port(), "/ws/agent");
    agent2.send(
        "{\"type\":\"handshake\",\"protocol\":1,\"role\":\"desktop\",\"clientId\":\"bad id!\"}");
    Json failed2 = agent2.waitFor("registration_failed");
    ASSERT_TRUE(failed2);
    EXPECT_EQ(str(failed2, "code"), "bad_request");
    EXPECT_EQ(agent2.waitClose(), 1008);

    WsClient wrongRole(port(), "/ws/agent");
    wrongRole.send(viewerHandshake());
    ASSERT_TRUE(wrongRole.waitFor("registration_failed"));
    EXPECT_EQ(wrongRole.waitClose(), 1008);
    EXPECT_TRUE(rows().empty());
}

TEST_F(RelayTest, RepeatedAbuseClosesThatConnectionOnly) {
    auto good = connectViewer();
    auto bad = connectViewer();
    for (int i = 0; i < 30 && !bad->closed(); ++i) bad->send("garbage " + std::to_string(i));
    EXPECT_EQ(bad->waitClose(), 1008);
    EXPECT_GE(counter("abuse_closes"), 1u);
    expectAlive(*good, 7);
}

TEST_F(RelayTest, WebSocketFramingRules) {
    auto c = connectViewer();
    // A WebSocket PING is answered with a PONG carrying the same payload.
    c->sendFrame("abc", 3, WebSocket::FRAME_OP_PING | WebSocket::FRAME_FLAG_FIN);
    bool gotPong = false;
    for (int i = 0; i < 10 && !gotPong; ++i) {
        auto f = c->receive(1000);
        if (f.opcode == WebSocket::FRAME_OP_PONG) {
            gotPong = true;
            EXPECT_EQ(f.data, "abc");
        }
        if (f.timeout || f.closed) break;
    }
    EXPECT_TRUE(gotPong);
    // A fragmented text message is reassembled.
    const std::string a = "{\"type\":\"ping\",";
    const std::string b = "\"timestamp\":42}";
    c->sendFrame(a.data(), static_cast<int>(a.size()), WebSocket::FRAME_OP_TEXT);
    c->sendFrame(b.data(), static_cast<int>(b.size()),
                 WebSocket::FRAME_OP_CONT | WebSocket::FRAME_FLAG_FIN);
    Json pong = c->waitFor("pong");
    ASSERT_TRUE(pong);
    EXPECT_EQ(pong->getValue<int64_t>("timestamp"), 42);
    // A reserved opcode is a protocol error: 1002.
    c->sendFrame("x", 1, 0x3 | WebSocket::FRAME_FLAG_FIN);
    EXPECT_EQ(c->waitClose(), 1002);
    EXPECT_GE(counter("protocol_errors"), 1u);

    auto other = connectViewer();
    expectAlive(*other, 8);
}

TEST_F(RelayTest, OversizedTextIsClosedWith1009) {
    // Text over the 64 KiB text limit (under max_message_bytes) is refused while it arrives, not
    // after reassembly (docs/relay.md, "WebSocket conformance"): too_large, then 1009 at once.
    auto c = connectViewer();
    const std::string big = "{\"type\":\"ping\",\"pad\":\"" + std::string(70 * 1024, 'x') + "\"}";
    c->send(big);
    expectError(*c, "too_large", "oversized text");
    EXPECT_EQ(c->waitClose(), 1009);
    auto other = connectViewer();
    expectAlive(*other, 11);
}

namespace {

std::vector<uint8_t> frameOf(uint16_t monitor, uint64_t number) {
    deskstream::core::FrameHeader h;
    h.codec = deskstream::core::FrameCodec::Jpeg;
    h.flags = deskstream::core::frame_flags::kKey;
    h.frameNumber = number;
    h.monitor = monitor;
    h.quality = 80;
    h.screenWidth = h.rectWidth = 64;
    h.screenHeight = h.rectHeight = 64;
    std::vector<uint8_t> data(32, 0x22);
    return deskstream::core::buildFrame(h, data.data(), data.size());
}

uint64_t frameNumberOf(const std::string& bytes) {
    if (bytes.size() < 64) return 0;  // nothing arrived
    return deskstream::core::peekFrameNumber(reinterpret_cast<const uint8_t*>(bytes.data()));
}

// Heartbeats are not under test in these: the test reads one client at a time, so a 450 ms
// heartbeat death on a loaded machine would only add noise.
RelayOptions idleTolerant(RelayOptions o) {
    o.heartbeatIntervalMs = 1000;
    o.missedLimit = 3;
    return o;
}

}  // namespace

// Issue 18 point 10, frames: only advertised monitors, numbers never backwards, none above 2^53-1.
TEST_F(RelayTest, FramesForUnadvertisedMonitorsOrOutOfOrderAreRefusedAsBadFrames) {
    startRelay(idleTolerant(testOptions()));
    auto agent = connectAgent("seq-pc");  // advertises monitor 0 only
    auto viewer = connectViewer();
    viewer->send("{\"type\":\"subscribe\",\"desktopClientId\":\"seq-pc\"}");
    ASSERT_TRUE(viewer->waitFor("subscribed"));
    const uint64_t badBefore = counter("bad_frames");

    agent->sendBinary(frameOf(0, 10));
    ASSERT_EQ(frameNumberOf(viewer->waitBinary()), 10u);
    viewer->send(
        "{\"type\":\"frame_ack\",\"desktopClientId\":\"seq-pc\",\"frameNumber\":10,\"latency\":1}");

    agent->sendBinary(frameOf(999, 11));  // never advertised
    expectError(*agent, "bad_request", "monitor 999");
    agent->sendBinary(frameOf(0, 9));  // backwards
    expectError(*agent, "bad_request", "frame number going backwards");
    agent->sendBinary(frameOf(0, UINT64_MAX));  // a jump to 2^64-1
    expectError(*agent, "bad_request", "frame number 2^64-1");
    EXPECT_EQ(counter("bad_frames"), badBefore + 3);
    // None of them reached the viewer: the next frame it gets is the next good one.
    agent->sendBinary(frameOf(0, 12));
    EXPECT_EQ(frameNumberOf(viewer->waitBinary()), 12u);
}

// Issue 18 point 10, JSON: integers are JSON integers, 2^64 is out of range, no control
// characters in key names. Each is refused over the socket and nothing is stored.
TEST_F(RelayTest, NonIntegerNumbersOutOfRangeIntegersAndControlCharactersInKeysAreRefused) {
    startRelay(idleTolerant(testOptions()));
    auto viewer = connectViewer();
    for (const char* ts : {"15.0", "1.5e1"}) {
        viewer->send(std::string("{\"type\":\"ping\",\"timestamp\":") + ts + "}");
        expectError(*viewer, "bad_request", ts);
    }
    viewer->send("{\"type\":\"ping\",\"timestamp\":18446744073709551616}");
    Json err = viewer->waitFor("error");
    ASSERT_TRUE(err);
    EXPECT_NE(str(err, "message").find("out of range"), std::string::npos) << str(err, "message");
    EXPECT_FALSE(viewer->waitFor("pong", 200));  // not echoed as 0
    viewer->send(
        "{\"type\":\"command\",\"desktopClientId\":\"k-pc\",\"commandId\":\"nul-key\","
        "\"command\":{\"type\":\"input\",\"event\":\"key_down\",\"key\":\"\\u0000\"}}");
    expectError(*viewer, "bad_request", "NUL key");
    viewer->send(
        "{\"type\":\"command\",\"desktopClientId\":\"k-pc\",\"commandId\":\"fps-float\","
        "\"command\":{\"type\":\"set_config\",\"fps\":15.0}}");
    expectError(*viewer, "bad_request", "fps 15.0");
    for (const char* id : {"nul-key", "fps-float"}) {
        std::optional<deskstream::relay::CommandRecord> rec;
        store->getCommand(id, rec);
        EXPECT_FALSE(rec) << id;
    }
    // The same over REST.
    EXPECT_EQ(httpRequest(port(), "POST", "/api/desktops/k-pc/commands",
                          "{\"command\":{\"type\":\"set_config\",\"fps\":1.5e1}}")
                  .status,
              400);
    EXPECT_EQ(httpRequest(port(), "POST", "/api/desktops/k-pc/commands",
                          "{\"command\":{\"type\":\"set_config\",\"fps\":18446744073709551631}}")
                  .status,
              400);
    expectAlive(*viewer, 42);
}

// Issue 18 point 11: subscribing to ids that exist nowhere counts as bad input, so a prober is
// closed after bad_message_limit attempts instead of scanning the store forever.
TEST_F(RelayTest, SubscribingToUnknownIdsCountsTowardsTheAbuseLimit) {
    RelayOptions o = idleTolerant(testOptions());
    o.badMessageLimit = 5;
    startRelay(o);
    auto viewer = connectViewer();
    for (int i = 0; i < 5; ++i) {
        viewer->send("{\"type\":\"subscribe\",\"desktopClientId\":\"ghost-" + std::to_string(i) +
                     "\"}");
        expectError(*viewer, "not_found", "unknown id");
    }
    // Bound: the 6th within the window closes the connection with 1008; without counting it
    // would get a 6th not_found and stay open.
    viewer->send("{\"type\":\"subscribe\",\"desktopClientId\":\"ghost-5\"}");
    EXPECT_EQ(viewer->waitClose(3000), 1008);
    EXPECT_GE(counter("abuse_closes"), 1u);
}
