// WebSocket frame codec: every RFC 6455 rule the parser enforces (table-driven, fed whole, one
// byte at a time and in random pieces), fragmentation, limits, memory bounds and the encoders.
#include "deskstream/ws_codec.hpp"

#include "ds_test/ws_frames.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

using namespace deskstream::core::ws;
using namespace ds_test::ws_frames;

namespace {

enum class Split { Whole, ByteAtATime, Random };

struct Outcome {
    std::vector<Message> messages;
    std::optional<Violation> violation;
};

Outcome run(const Bytes& stream, Split split, Limits limits = {}, unsigned seed = 1) {
    Parser p(limits);
    Outcome o;
    std::mt19937 rng(seed);
    std::size_t at = 0;
    while (at < stream.size() && !o.violation) {
        std::size_t n = stream.size() - at;
        if (split == Split::ByteAtATime) n = 1;
        if (split == Split::Random) n = std::min<std::size_t>(n, 1 + rng() % 7);
        o.violation = p.feed(stream.data() + at, n, o.messages);
        at += n;
    }
    return o;
}

std::string payloadText(const Message& m) {
    return std::string(reinterpret_cast<const char*>(m.payload()), m.payloadSize());
}

// --- the rule table -------------------------------------------------------------------------

struct RuleCase {
    const char* name;
    Bytes stream;
    std::uint16_t closeCode;  // 0: no violation
    std::size_t messages;     // messages emitted before the violation / in all
};

Bytes text(const std::string& s, bool fin = true) {
    return clientFrame((fin ? kFin : 0) | 1, bytesOf(s));
}

std::vector<RuleCase> ruleCases() {
    std::vector<RuleCase> c;
    c.push_back({"masked text is fine", text("hello"), 0, 1});
    c.push_back({"unmasked text", clientFrame(kFin | 1, bytesOf("hi"), false), 1002, 0});
    c.push_back({"unmasked ping", clientFrame(kFin | 9, {}, false), 1002, 0});
    c.push_back({"RSV1", clientFrame(kFin | 0x40 | 1, bytesOf("x")), 1002, 0});
    c.push_back({"RSV2", clientFrame(kFin | 0x20 | 2, bytesOf("x")), 1002, 0});
    c.push_back({"RSV3", clientFrame(kFin | 0x10 | 9, {}), 1002, 0});
    for (std::uint8_t op : {3, 4, 5, 6, 7, 11, 12, 13, 14, 15}) {
        c.push_back({"unknown opcode", clientFrame(kFin | op, bytesOf("x")), 1002, 0});
    }
    c.push_back({"ping of 125 bytes", clientFrame(kFin | 9, Bytes(125, 'p')), 0, 1});
    c.push_back({"ping of 126 bytes", clientFrame(kFin | 9, Bytes(126, 'p')), 1002, 0});
    c.push_back({"close of 126 bytes (64-bit form)",
                 clientFrame(kFin | 8, Bytes(126, 'c'), true, 127), 1002, 0});
    c.push_back(
        {"small ping in 16-bit form", clientFrame(kFin | 9, Bytes(5, 'p'), true, 126), 1002, 0});
    c.push_back({"fragmented ping", clientFrame(9, bytesOf("p")), 1002, 0});
    c.push_back({"fragmented pong", clientFrame(10, bytesOf("p")), 1002, 0});
    c.push_back({"fragmented close", clientFrame(8, closePayload(1000)), 1002, 0});
    c.push_back({"continuation first", clientFrame(kFin | 0, bytesOf("x")), 1002, 0});
    c.push_back({"continuation after a complete message",
                 concat({text("a"), clientFrame(kFin | 0, bytesOf("x"))}), 1002, 1});
    c.push_back({"text inside a fragmented text", concat({text("a", false), text("b")}), 1002, 0});
    c.push_back({"binary inside a fragmented text",
                 concat({text("a", false), clientFrame(kFin | 2, bytesOf("b"))}), 1002, 0});
    c.push_back({"fragmented text with a ping between",
                 concat({text("he", false), clientFrame(kFin | 9, bytesOf("p")),
                         clientFrame(0, bytesOf("ll")), clientFrame(kFin | 0, bytesOf("o"))}),
                 0, 2});
    c.push_back({"invalid UTF-8: 0xFF", clientFrame(kFin | 1, {0x61, 0xFF}), 1007, 0});
    c.push_back({"invalid UTF-8: overlong", clientFrame(kFin | 1, {0xC0, 0x80}), 1007, 0});
    c.push_back(
        {"invalid UTF-8: overlong 3-byte", clientFrame(kFin | 1, {0xE0, 0x80, 0x80}), 1007, 0});
    c.push_back({"invalid UTF-8: surrogate", clientFrame(kFin | 1, {0xED, 0xA0, 0x80}), 1007, 0});
    c.push_back({"invalid UTF-8: above U+10FFFF", clientFrame(kFin | 1, {0xF4, 0x90, 0x80, 0x80}),
                 1007, 0});
    c.push_back({"invalid UTF-8: truncated at the end", clientFrame(kFin | 1, {0x61, 0xE2, 0x82}),
                 1007, 0});
    c.push_back({"invalid UTF-8: lone continuation", clientFrame(kFin | 1, {0x80}), 1007, 0});
    c.push_back({"invalid UTF-8 in a first fragment fails before the message ends",
                 clientFrame(1, {0xFF}), 1007, 0});
    c.push_back(
        {"UTF-8 split across fragments is fine",
         concat({clientFrame(1, {0xE2}), clientFrame(0, {0x82}), clientFrame(kFin | 0, {0xAC})}), 0,
         1});
    c.push_back({"valid 4-byte UTF-8", clientFrame(kFin | 1, {0xF0, 0x9F, 0x98, 0x80}), 0, 1});
    c.push_back({"invalid UTF-8 in binary is fine", clientFrame(kFin | 2, {0xFF, 0xFE}), 0, 1});
    c.push_back({"close without payload", clientFrame(kFin | 8, {}), 0, 1});
    c.push_back({"close with a 1-byte payload", clientFrame(kFin | 8, {0x03}), 1002, 0});
    for (std::uint16_t code :
         {0, 999, 1004, 1005, 1006, 1012, 1014, 1015, 1016, 2000, 2999, 5000, 65535}) {
        c.push_back({"invalid close code", clientFrame(kFin | 8, closePayload(code)), 1002, 0});
    }
    for (std::uint16_t code :
         {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999}) {
        c.push_back({"valid close code", clientFrame(kFin | 8, closePayload(code, "bye")), 0, 1});
    }
    c.push_back({"close reason with invalid UTF-8",
                 clientFrame(kFin | 8, concat({closePayload(1000), Bytes{0xC3, 0x28}})), 1007, 0});
    c.push_back({"64-bit length with the top bit set", headerOnly(kFin | 2, 1ull << 63), 1002, 0});
    c.push_back({"2^62-byte payload declared", headerOnly(kFin | 2, 1ull << 62), 1009, 0});
    c.push_back({"declared length one over the message limit",
                 headerOnly(kFin | 2, (16u << 20) + 1), 1009, 0});
    c.push_back(
        {"text declared one over the text limit", headerOnly(kFin | 1, (64u << 10) + 1), 1009, 0});
    c.push_back({"text reassembled past the text limit",
                 concat({clientFrame(1, Bytes(40000, 'a')), clientFrame(0, Bytes(40000, 'a'))}),
                 1009, 0});
    c.push_back({"empty text message", text(""), 0, 1});
    c.push_back({"empty fragments", concat({text("", false), clientFrame(kFin | 0, {})}), 0, 1});
    c.push_back({"three messages at once",
                 concat({text("a"), clientFrame(kFin | 2, {1, 2}), clientFrame(kFin | 10, {})}), 0,
                 3});
    return c;
}

}  // namespace

TEST(WsCodec, EveryRuleWholeByteAtATimeAndRandomPieces) {
    for (const auto& rc : ruleCases()) {
        for (Split split : {Split::Whole, Split::ByteAtATime, Split::Random}) {
            SCOPED_TRACE(std::string(rc.name) + " split " +
                         std::to_string(static_cast<int>(split)));
            Outcome o = run(rc.stream, split);
            if (rc.closeCode == 0) {
                EXPECT_FALSE(o.violation) << o.violation->what;
            } else {
                ASSERT_TRUE(o.violation);
                EXPECT_EQ(o.violation->closeCode, rc.closeCode) << o.violation->what;
                EXPECT_FALSE(o.violation->what.empty());
            }
            EXPECT_EQ(o.messages.size(), rc.messages);
        }
    }
}

TEST(WsCodec, ViolationsAreDetectedWithoutWaitingForThePayload) {
    // Decided by the first two bytes: nothing more is needed (a dripping peer cannot hold it).
    for (const Bytes& first2 :
         {Bytes{kFin | 1, 0x05}, Bytes{kFin | 0x40 | 1, 0x85}, Bytes{kFin | 3, 0x85},
          Bytes{9, 0x80}, Bytes{kFin | 9, 0xFE}, Bytes{kFin | 0, 0x81}}) {
        Parser p;
        std::vector<Message> out;
        auto v = p.feed(first2.data(), 2, out);
        ASSERT_TRUE(v) << int(first2[0]) << " " << int(first2[1]);
        EXPECT_EQ(v->closeCode, 1002);
    }
    // The limit is checked once the length is known, before any payload byte.
    Bytes h = headerOnly(kFin | 2, (16u << 20) + 1);
    Parser p;
    std::vector<Message> out;
    auto v = p.feed(h.data(), 10, out);  // without the mask key: not decided yet
    EXPECT_FALSE(v);
    v = p.feed(h.data() + 10, 4, out);
    ASSERT_TRUE(v);
    EXPECT_EQ(v->closeCode, 1009);
}

TEST(WsCodec, MessagesCarryPayloadKindAndCloseFields) {
    Bytes stream = concat({text("he", false), clientFrame(kFin | 9, bytesOf("ping!")),
                           clientFrame(kFin | 0, bytesOf("llo")), clientFrame(kFin | 2, {0, 1, 2}),
                           clientFrame(kFin | 10, bytesOf("pong")),
                           clientFrame(kFin | 8, closePayload(4001, "gone \xC3\xA9"))});
    for (Split split : {Split::Whole, Split::ByteAtATime, Split::Random}) {
        Outcome o = run(stream, split);
        ASSERT_FALSE(o.violation);
        ASSERT_EQ(o.messages.size(), 5u);
        EXPECT_EQ(o.messages[0].kind, Opcode::Ping);
        EXPECT_EQ(payloadText(o.messages[0]), "ping!");
        EXPECT_EQ(o.messages[1].kind, Opcode::Text);
        EXPECT_EQ(payloadText(o.messages[1]), "hello");
        EXPECT_EQ(o.messages[1].offset, 0u);
        EXPECT_EQ(o.messages[2].kind, Opcode::Binary);
        EXPECT_EQ(o.messages[2].bytes, (Bytes{0, 1, 2}));
        EXPECT_EQ(o.messages[3].kind, Opcode::Pong);
        EXPECT_EQ(payloadText(o.messages[3]), "pong");
        EXPECT_EQ(o.messages[4].kind, Opcode::Close);
        EXPECT_EQ(o.messages[4].closeCode, 4001);
        EXPECT_EQ(o.messages[4].closeReason, "gone \xC3\xA9");
    }
    Outcome empty = run(clientFrame(kFin | 8, {}), Split::Whole);
    ASSERT_EQ(empty.messages.size(), 1u);
    EXPECT_EQ(empty.messages[0].closeCode, 1005);
    EXPECT_TRUE(empty.messages[0].closeReason.empty());
}

TEST(WsCodec, BinaryHeadroomLeavesRoomInFrontOfThePayload) {
    Limits limits;
    limits.binaryHeadroom = 10;
    Bytes stream = concat({clientFrame(2, {1, 2}), clientFrame(kFin | 0, {3}), text("t")});
    for (Split split : {Split::Whole, Split::ByteAtATime}) {
        Outcome o = run(stream, split, limits);
        ASSERT_FALSE(o.violation);
        ASSERT_EQ(o.messages.size(), 2u);
        EXPECT_EQ(o.messages[0].offset, 10u);
        ASSERT_EQ(o.messages[0].bytes.size(), 13u);
        EXPECT_EQ(o.messages[0].payloadSize(), 3u);
        EXPECT_EQ(0, std::memcmp(o.messages[0].payload(), "\x01\x02\x03", 3));
        EXPECT_EQ(o.messages[1].offset, 0u);  // text: no headroom
        EXPECT_EQ(payloadText(o.messages[1]), "t");
    }
    // The headroom does not count against the message limit.
    limits.maxMessageBytes = 3;
    EXPECT_FALSE(run(clientFrame(kFin | 2, {1, 2, 3}), Split::Whole, limits).violation);
}

TEST(WsCodec, LimitsAreExactAndTextIsLimitedWhileReassembling) {
    Limits limits;
    limits.maxMessageBytes = 1000;
    limits.maxTextBytes = 100;
    EXPECT_FALSE(run(clientFrame(kFin | 2, Bytes(1000, 1)), Split::Whole, limits).violation);
    EXPECT_EQ(run(clientFrame(kFin | 2, Bytes(1001, 1)), Split::Whole, limits).violation->closeCode,
              1009);
    EXPECT_FALSE(run(clientFrame(kFin | 1, Bytes(100, 'a')), Split::Whole, limits).violation);
    EXPECT_EQ(
        run(clientFrame(kFin | 1, Bytes(101, 'a')), Split::Whole, limits).violation->closeCode,
        1009);
    // Reassembly: 60 + 40 is fine, 60 + 41 fails at the second fragment's header, before its
    // payload is read and before any FIN.
    EXPECT_FALSE(
        run(concat({clientFrame(1, Bytes(60, 'a')), clientFrame(kFin | 0, Bytes(40, 'a'))}),
            Split::Whole, limits)
            .violation);
    Bytes over = concat({clientFrame(1, Bytes(60, 'a')), clientFrame(0, Bytes(41, 'a'))});
    Parser p(limits);
    std::vector<Message> out;
    const std::size_t secondHeader = 2 + 4 + 60 + 2 + 4;
    auto v = p.feed(over.data(), secondHeader, out);
    ASSERT_TRUE(v);
    EXPECT_EQ(v->closeCode, 1009);
    // Binary messages are limited by maxMessageBytes only.
    EXPECT_FALSE(run(concat({clientFrame(2, Bytes(600, 1)), clientFrame(kFin | 0, Bytes(400, 1))}),
                     Split::Whole, limits)
                     .violation);
    // A text limit above the message limit is capped by the message limit.
    limits.maxTextBytes = 5000;
    EXPECT_EQ(
        run(clientFrame(kFin | 1, Bytes(1001, 'a')), Split::Whole, limits).violation->closeCode,
        1009);
}

TEST(WsCodec, SetLimitsAppliesToThePendingMessage) {
    Parser p;  // 16 MiB / 64 KiB
    std::vector<Message> out;
    Bytes first = clientFrame(2, Bytes(2000, 1));
    ASSERT_FALSE(p.feed(first.data(), first.size(), out));
    EXPECT_TRUE(p.inMessage());
    Limits handshake;
    handshake.maxMessageBytes = 1024;
    handshake.maxTextBytes = 1024;
    p.setLimits(handshake);
    Bytes next = clientFrame(kFin | 0, {1});
    auto v = p.feed(next.data(), next.size(), out);
    ASSERT_TRUE(v);
    EXPECT_EQ(v->closeCode, 1009);

    // Raising the limits (handshake accepted) lets bigger messages through afterwards.
    Parser q(handshake);
    Bytes big = clientFrame(kFin | 2, Bytes(5000, 1));
    Bytes hello = text("hello");
    ASSERT_FALSE(q.feed(hello.data(), hello.size(), out));
    q.setLimits(Limits{});
    EXPECT_FALSE(q.feed(big.data(), big.size(), out));
    EXPECT_EQ(out.back().payloadSize(), 5000u);
}

TEST(WsCodec, AViolationIsStickyAndReleasesMemory) {
    Parser p;
    std::vector<Message> out;
    Bytes start = clientFrame(2, Bytes(100000, 1));
    ASSERT_FALSE(p.feed(start.data(), start.size(), out));
    EXPECT_GE(p.bufferedBytes(), 100000u);
    Bytes bad = clientFrame(kFin | 2, {1});  // a new data frame inside a fragmented message
    auto v = p.feed(bad.data(), bad.size(), out);
    ASSERT_TRUE(v);
    EXPECT_EQ(v->closeCode, 1002);
    EXPECT_LT(p.bufferedBytes(), 64u);
    Bytes fine = text("ok");
    auto again = p.feed(fine.data(), fine.size(), out);
    ASSERT_TRUE(again);
    EXPECT_EQ(again->closeCode, 1002);
    EXPECT_EQ(again->what, v->what);
    EXPECT_TRUE(out.empty());
}

TEST(WsCodec, InMessageTracksFramesAndFragments) {
    Parser p;
    std::vector<Message> out;
    EXPECT_FALSE(p.inMessage());
    Bytes f = clientFrame(kFin | 1, bytesOf("abc"));
    p.feed(f.data(), 1, out);
    EXPECT_TRUE(p.inMessage());  // one header byte is a frame begun
    p.feed(f.data() + 1, f.size() - 2, out);
    EXPECT_TRUE(p.inMessage());
    p.feed(f.data() + f.size() - 1, 1, out);
    EXPECT_FALSE(p.inMessage());
    ASSERT_EQ(out.size(), 1u);

    Bytes frag = clientFrame(1, bytesOf("a"));
    p.feed(frag.data(), frag.size(), out);
    EXPECT_TRUE(p.inMessage());  // between fragments
    Bytes ping = clientFrame(kFin | 9, {});
    p.feed(ping.data(), ping.size(), out);
    EXPECT_TRUE(p.inMessage());  // a control frame does not end the fragmented message
    Bytes last = clientFrame(kFin | 0, bytesOf("b"));
    p.feed(last.data(), last.size(), out);
    EXPECT_FALSE(p.inMessage());
    EXPECT_EQ(payloadText(out.back()), "ab");
}

TEST(WsCodec, MemoryGrowsOnlyWithBytesReceived) {
    // A header claiming 15 MiB, then a trickle: the buffer follows what arrived.
    Parser p;
    std::vector<Message> out;
    Bytes h = headerOnly(2, 15u << 20);
    ASSERT_FALSE(p.feed(h.data(), h.size(), out));
    EXPECT_LT(p.bufferedBytes(), 64u);
    const std::uint8_t one = 0;
    ASSERT_FALSE(p.feed(&one, 1, out));
    EXPECT_LE(p.bufferedBytes(), (1u << 20) + 1 + 14);  // one bounded chunk (1 MiB), + header
    Bytes chunk(64 * 1024, 0);
    std::size_t fed = 1;
    std::size_t peak = 0;
    while (fed + chunk.size() <= (8u << 20)) {
        ASSERT_FALSE(p.feed(chunk.data(), chunk.size(), out));
        fed += chunk.size();
        peak = std::max(peak, p.bufferedBytes());
        // What arrived plus at most one bounded chunk: max(1 MiB, what arrived), <= 4 MiB.
        ASSERT_LE(p.bufferedBytes(),
                  fed + std::min<std::size_t>(std::max<std::size_t>(fed, 1u << 20), 4u << 20) + 14);
    }
    EXPECT_GE(peak, fed);
    EXPECT_TRUE(out.empty());

    // A complete single-frame message ends with exactly its size (no slack handed on).
    Parser q;
    Bytes f = clientFrame(kFin | 2, Bytes(3'000'000, 7));
    std::size_t at = 0;
    while (at < f.size()) {
        const std::size_t n = std::min<std::size_t>(65536, f.size() - at);
        ASSERT_FALSE(q.feed(f.data() + at, n, out));
        at += n;
    }
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].bytes.size(), 3'000'000u);
    EXPECT_EQ(out[0].bytes.capacity(), 3'000'000u);
    EXPECT_LT(q.bufferedBytes(), 256u);
}

TEST(WsCodec, RandomValidStreamsParseTheSameWhateverTheSplit) {
    std::mt19937 rng(42);
    for (int round = 0; round < 30; ++round) {
        Bytes stream;
        std::vector<std::pair<Opcode, Bytes>> expected;
        const int count = 1 + static_cast<int>(rng() % 6);
        for (int m = 0; m < count; ++m) {
            const bool isText = rng() % 2 == 0;
            const std::size_t size = rng() % 3 == 0 ? rng() % 70000 : rng() % 300;
            Bytes payload(size);
            for (auto& b : payload)
                b = isText ? static_cast<std::uint8_t>('a' + rng() % 26)
                           : static_cast<std::uint8_t>(rng());
            if (isText && size > 60000) payload.resize(60000);
            // Split into 1-3 fragments with an optional ping between them.
            const int frags = 1 + static_cast<int>(rng() % 3);
            std::size_t at = 0;
            for (int i = 0; i < frags; ++i) {
                const std::size_t end =
                    i == frags - 1 ? payload.size() : at + (payload.size() - at) / 2;
                const std::uint8_t op = i == 0 ? (isText ? 1 : 2) : 0;
                stream =
                    concat({stream,
                            clientFrame(static_cast<std::uint8_t>((i == frags - 1 ? kFin : 0) | op),
                                        Bytes(payload.begin() + at, payload.begin() + end))});
                at = end;
                if (i < frags - 1 && rng() % 2 == 0) {
                    stream = concat({stream, clientFrame(kFin | 9, bytesOf("x"))});
                    expected.push_back({Opcode::Ping, bytesOf("x")});
                }
            }
            expected.push_back({isText ? Opcode::Text : Opcode::Binary, payload});
        }
        for (Split split : {Split::Whole, Split::Random}) {
            Outcome o = run(stream, split, Limits{}, static_cast<unsigned>(round));
            ASSERT_FALSE(o.violation) << o.violation->what;
            ASSERT_EQ(o.messages.size(), expected.size());
            for (std::size_t i = 0; i < expected.size(); ++i) {
                EXPECT_EQ(o.messages[i].kind, expected[i].first);
                EXPECT_EQ(Bytes(o.messages[i].payload(),
                                o.messages[i].payload() + o.messages[i].payloadSize()),
                          expected[i].second);
            }
        }
    }
}

TEST(WsCodec, WriteHeaderUsesTheShortestLengthForm) {
    struct Case {
        std::uint64_t length;
        Bytes header;
    };
    const Case cases[] = {
        {0, {0x82, 0}},
        {125, {0x82, 125}},
        {126, {0x82, 126, 0, 126}},
        {65535, {0x82, 126, 0xFF, 0xFF}},
        {65536, {0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0}},
        {0x0102030405060708ull, {0x82, 127, 1, 2, 3, 4, 5, 6, 7, 8}},
    };
    for (const auto& c : cases) {
        std::uint8_t out[10];
        const std::size_t n = writeHeader(out, Opcode::Binary, c.length);
        EXPECT_EQ(Bytes(out, out + n), c.header) << c.length;
    }
    std::uint8_t out[10];
    ASSERT_EQ(writeHeader(out, Opcode::Text, 3, false), 2u);
    EXPECT_EQ(out[0], 0x01);  // no FIN
    EXPECT_EQ(out[1], 3);     // never masked
}

// A server frame, masked as a client would send it, parses back to the same message.
TEST(WsCodec, EncodedFramesRoundTripThroughTheParser) {
    auto asClient = [](const Bytes& serverFrame) {
        EXPECT_EQ(serverFrame[1] & 0x80, 0);  // server frames are never masked
        std::size_t h = 2;
        if ((serverFrame[1] & 0x7F) == 126) h = 4;
        if ((serverFrame[1] & 0x7F) == 127) h = 10;
        return clientFrame(serverFrame[0],
                           Bytes(serverFrame.begin() + static_cast<long>(h), serverFrame.end()));
    };
    for (std::size_t size : {0u, 5u, 125u, 126u, 65535u, 65536u, 200000u}) {
        Bytes payload(size, 0x5A);
        Bytes f = encodeFrame(Opcode::Binary, payload.data(), payload.size());
        Outcome o = run(asClient(f), Split::Whole);
        ASSERT_FALSE(o.violation);
        ASSERT_EQ(o.messages.size(), 1u);
        EXPECT_EQ(o.messages[0].bytes, payload);
    }
    Bytes close = encodeClose(1001, "going away");
    Outcome o = run(asClient(close), Split::Whole);
    ASSERT_EQ(o.messages.size(), 1u);
    EXPECT_EQ(o.messages[0].closeCode, 1001);
    EXPECT_EQ(o.messages[0].closeReason, "going away");
}

TEST(WsCodec, EncodeCloseCutsTheReasonAtACharacterBoundary) {
    std::string reason;
    for (int i = 0; i < 100; ++i) reason += "\xC3\xA9";  // 200 bytes of two-byte characters
    Bytes f = encodeClose(1008, reason);
    ASSERT_EQ(static_cast<std::size_t>(f[1] & 0x7F), f.size() - 2);
    EXPECT_LE(f.size() - 2, 125u);
    EXPECT_EQ(f.size() - 2, 2u + 122u);  // 123 would split a character
    EXPECT_EQ(f[2], 0x03);
    EXPECT_EQ(f[3], 0xF0);
    EXPECT_TRUE(isValidUtf8(f.data() + 4, f.size() - 4));
    EXPECT_EQ(encodeClose(1000, "").size(), 4u);
}

TEST(WsCodec, CloseCodeValidity) {
    for (unsigned code = 0; code <= 65535; ++code) {
        const bool expected = (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011) ||
                              (code >= 3000 && code <= 4999);
        ASSERT_EQ(isValidCloseCode(static_cast<std::uint16_t>(code)), expected) << code;
    }
}

TEST(WsCodec, Utf8Validity) {
    struct Case {
        Bytes bytes;
        bool valid;
    };
    const Case cases[] = {
        {{}, true},
        {bytesOf("plain ascii, long enough for the 8-byte path"), true},
        {{0xC2, 0x80}, true},               // U+0080
        {{0xDF, 0xBF}, true},               // U+07FF
        {{0xE0, 0xA0, 0x80}, true},         // U+0800
        {{0xED, 0x9F, 0xBF}, true},         // U+D7FF
        {{0xEE, 0x80, 0x80}, true},         // U+E000
        {{0xEF, 0xBF, 0xBF}, true},         // U+FFFF
        {{0xF0, 0x90, 0x80, 0x80}, true},   // U+10000
        {{0xF4, 0x8F, 0xBF, 0xBF}, true},   // U+10FFFF
        {{0xC1, 0xBF}, false},              // overlong
        {{0xE0, 0x9F, 0xBF}, false},        // overlong
        {{0xF0, 0x8F, 0xBF, 0xBF}, false},  // overlong
        {{0xED, 0xBF, 0xBF}, false},        // surrogate
        {{0xF4, 0x90, 0x80, 0x80}, false},  // > U+10FFFF
        {{0xF5, 0x80, 0x80, 0x80}, false},
        {{0xFE}, false},
        {{0xC2}, false},  // truncated
        {{0xC2, 0x41}, false},
        {{0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x80}, false},  // after the fast path
    };
    for (const auto& c : cases) {
        EXPECT_EQ(isValidUtf8(c.bytes.data(), c.bytes.size()), c.valid)
            << ::testing::PrintToString(c.bytes);
    }
}
