// The frame_ack fast JSON path and the binary ack (core frame_ack.hpp): the fast path takes the
// usual forms and agrees with the full decoder whenever it answers; everything unusual falls
// back; the binary ack round-trips and refuses bad layouts; RelayConnection turns a binary ack
// into the same AckFrame action as the JSON one.
#include "deskstream/core/frame_ack.hpp"
#include "deskstream/core/relay_connection.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

using namespace deskstream::core;

namespace {

// The full decoder's answer for `text`: the same object with an extra field, which the full
// decoder ignores and the fast path never takes.
Result<Message> fullDecode(std::string text) {
    const auto close = text.rfind('}');
    text.insert(close, ",\"zzExtra\":0");
    return parseMessage(text, Channel::ViewerToRelay);
}

}  // namespace

TEST(FrameAckFast, TakesTheUsualFormsAndAgreesWithTheFullDecoder) {
    const std::vector<std::string> usual = {
        // the web page's key order (web/js/relay-client.js)
        R"({"type":"frame_ack","desktopClientId":"pc-1","frameNumber":42,"monitor":0,"latency":17})",
        // core::serialize's form
        serialize(Message{ViewerFrameAck{"pc-1", 42, 17, std::nullopt}}),
        R"( { "latency" : 0 , "frameNumber" : 18446744073709551615 , "type" : "frame_ack" ,
              "desktopClientId" : "A.b_c-9" } )",
        R"({"type":"frame_ack","desktopClientId":"x","frameNumber":0,"latency":3600000,"monitor":65535})",
    };
    for (const auto& text : usual) {
        auto fast = parseFrameAckFast(text);
        ASSERT_TRUE(fast.has_value()) << text;
        auto full = fullDecode(text);
        ASSERT_TRUE(full.ok()) << text << ": " << full.error().message;
        EXPECT_EQ(std::get<ViewerFrameAck>(full.value()), *fast) << text;
        auto viaParse = parseMessage(text, Channel::ViewerToRelay);
        ASSERT_TRUE(viaParse.ok());
        EXPECT_EQ(std::get<ViewerFrameAck>(viaParse.value()), *fast);
    }
}

TEST(FrameAckFast, UnusualOrInvalidFormsFallBackToTheFullDecoder) {
    const std::vector<std::string> fallBack = {
        R"({"type":"frame_ack","desktopClientId":"pc","frameNumber":15.0,"latency":1})",
        R"({"type":"frame_ack","desktopClientId":"pc","frameNumber":1.5e1,"latency":1})",
        R"({"type":"frame_ack","desktopClientId":"pc","frameNumber":-1,"latency":1})",
        R"({"type":"frame_ack","desktopClientId":"pc","frameNumber":18446744073709551616,"latency":1})",
        R"({"type":"frame_ack","desktopClientId":"pc","frameNumber":01,"latency":1})",
        R"({"type":"frame_ack","desktopClientId":"pc","frameNumber":1,"latency":3600001})",
        R"({"type":"frame_ack","desktopClientId":"pc","frameNumber":1,"latency":1,"monitor":65536})",
        R"({"type":"frame_ack","desktopClientId":"p\u0063","frameNumber":1,"latency":1})",
        R"({"type":"frame_ack","desktopClientId":"p c","frameNumber":1,"latency":1})",
        R"({"type":"frame_ack","desktopClientId":"","frameNumber":1,"latency":1})",
        R"({"type":"frame_ack","desktopClientId":"pc","frameNumber":1})",
        R"({"type":"frame_ack","desktopClientId":"pc","frameNumber":1,"latency":1,"latency":2})",
        R"({"type":"frame_ack","desktopClientId":"pc","frameNumber":1,"latency":1,"extra":true})",
        R"({"type":"frame_ack","desktopClientId":"pc","frameNumber":"1","latency":1})",
        R"({"type":"frame_ack","desktopClientId":"pc","frameNumber":1,"latency":1}x)",
        R"({"type":"frame_ack","desktopClientId":"pc","frameNumber":1,"latency":1)",
        R"({"type":"ping","timestamp":1})",
        R"([1,2])",
        "",
    };
    for (const auto& text : fallBack) EXPECT_FALSE(parseFrameAckFast(text).has_value()) << text;
    // The full decoder's answers stand: refusals stay refusals (no fast path around them).
    EXPECT_FALSE(parseMessage(fallBack[0], Channel::ViewerToRelay).ok());
    EXPECT_FALSE(parseMessage(fallBack[2], Channel::ViewerToRelay).ok());
    EXPECT_FALSE(parseMessage(fallBack[5], Channel::ViewerToRelay).ok());
    EXPECT_FALSE(parseMessage(fallBack[10], Channel::ViewerToRelay).ok());
    // An unknown extra field is still accepted by the full decoder (forward compatibility).
    EXPECT_TRUE(parseMessage(fallBack[12], Channel::ViewerToRelay).ok());
    // The fast path is for viewers only: an agent's frame_ack form differs.
    const std::string viewerAck =
        R"({"type":"frame_ack","desktopClientId":"pc","frameNumber":1,"latency":1})";
    EXPECT_FALSE(parseMessage(viewerAck, Channel::AgentToRelay).ok());
}

TEST(BinaryAck, RoundTripsAndRefusesBadLayouts) {
    ViewerFrameAck a{"desk.top-1", 0x0102030405060708ULL, 3600000, 3};
    auto bytes = encodeBinaryAck(a);
    ASSERT_EQ(bytes.size(), 16u + a.desktopClientId.size());
    EXPECT_EQ(bytes[0], 0xAC);
    EXPECT_EQ(bytes[1], 0x01);
    EXPECT_EQ(bytes[8], 0x08);
    auto back = decodeBinaryAck(bytes.data(), bytes.size());
    ASSERT_TRUE(back.ok()) << back.error().message;
    EXPECT_EQ(back.value(), a);
    ViewerFrameAck noMonitor{"pc", 7, 0, std::nullopt};
    auto nm = encodeBinaryAck(noMonitor);
    ASSERT_TRUE(decodeBinaryAck(nm.data(), nm.size()).ok());
    EXPECT_FALSE(decodeBinaryAck(nm.data(), nm.size()).value().monitor.has_value());

    auto shortened = bytes;
    shortened.pop_back();
    EXPECT_FALSE(decodeBinaryAck(shortened.data(), shortened.size()).ok());
    EXPECT_FALSE(decodeBinaryAck(bytes.data(), 15).ok());
    auto badLatency = bytes;
    badLatency[9] = 0xFF;
    EXPECT_FALSE(decodeBinaryAck(badLatency.data(), badLatency.size()).ok());
    auto badId = bytes;
    badId[16] = ' ';
    EXPECT_FALSE(decodeBinaryAck(badId.data(), badId.size()).ok());
    auto emptyId = encodeBinaryAck(ViewerFrameAck{"", 1, 1, std::nullopt});
    EXPECT_FALSE(decodeBinaryAck(emptyId.data(), emptyId.size()).ok());
}

TEST(BinaryAck, AViewersBinaryAckBecomesTheSameActionAsTheJsonOne) {
    RelayConnectionConfig c;
    c.kind = RelayConnectionConfig::Kind::Viewer;
    TimePoint now{};
    RelayConnection conn(c, now);
    conn.onText(R"({"type":"handshake","protocol":1,"role":"viewer"})", now, 0);
    conn.onViewerRegistered("v1", now);
    ASSERT_TRUE(conn.open());
    const ViewerFrameAck ack{"pc-1", 9, 12, 0};
    auto viaBinary = conn.onBinary(encodeBinaryAck(ack), now);
    auto viaJson = conn.onText(serialize(Message{ack}), now, 0);
    auto ackOf = [](const RelayActions& actions) -> std::optional<ViewerFrameAck> {
        for (const auto& a : actions)
            if (auto* f = std::get_if<relay_action::AckFrame>(&a)) return f->ack;
        return std::nullopt;
    };
    ASSERT_TRUE(ackOf(viaBinary).has_value());
    ASSERT_TRUE(ackOf(viaJson).has_value());
    EXPECT_EQ(*ackOf(viaBinary), ack);
    EXPECT_EQ(*ackOf(viaJson), ack);
    EXPECT_EQ(conn.badMessages(), 0);
    // Any other binary message from a viewer is still bad input.
    conn.onBinary(std::vector<std::uint8_t>{1, 2, 3}, now);
    EXPECT_EQ(conn.badMessages(), 1);
    auto truncated = encodeBinaryAck(ack);
    truncated.resize(10);
    conn.onBinary(truncated, now);
    EXPECT_EQ(conn.badMessages(), 2);
}
