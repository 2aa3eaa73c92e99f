// Randomized robustness: random bytes and mutated JSON into every decoder must never crash,
// hang or leak (this binary runs under ASan+UBSan). Fixed seeds: failures are reproducible.
#include "deskstream/core/auth.hpp"
#include "deskstream/core/commands.hpp"
#include "deskstream/core/frame_header.hpp"
#include "deskstream/core/protocol.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <random>

using namespace deskstream::core;

namespace {

const char* const kSeeds[] = {
    R"({"type":"handshake","protocol":1,"role":"desktop","clientId":"office-pc","token":"","name":"Office PC","hostname":"pc01","monitors":[{"index":0,"name":"HDMI-1","x":0,"y":0,"width":1920,"height":1080,"primary":true}],"capabilities":{"codecs":["jpeg","webp"],"input":true}})",
    R"({"type":"handshake","protocol":1,"role":"viewer","token":"abc"})",
    R"({"type":"subscribe","desktopClientId":"office-pc","monitor":0})",
    R"({"type":"frame_ack","desktopClientId":"office-pc","frameNumber":123,"latency":42})",
    R"({"type":"command","desktopClientId":"office-pc","commandId":"x","command":{"type":"set_config","fps":15,"monitors":[0,1]}})",
    R"({"type":"command","commandId":"x","command":{"type":"input","event":"mouse_down","x":1,"y":2,"button":0}})",
    R"({"type":"command_result","commandId":"c1","status":"failed","error":"e"})",
    R"({"type":"pong","timestamp":5,"serverTime":6,"availableDesktopClients":["a","b"]})",
    R"({"type":"handshake_ack","viewerId":"v","heartbeatIntervalMs":5000,"desktops":[{"clientId":"a","monitors":[]}]})",
    R"({"type":"handshake_ack","clientId":"a","dbRegistered":true,"instanceId":"i","streamId":7,"heartbeatIntervalMs":5000,"maxInFlight":10})",
};

const Channel kChannels[] = {Channel::AgentToRelay, Channel::ViewerToRelay, Channel::RelayToAgent,
                             Channel::RelayToViewer};

std::string mutate(std::string s, std::mt19937& rng) {
    static const std::string tokens[] = {
        "{",       "}",    "[",    "]",        ",",     ":",
        "\"",      "null", "true", "-1",       "1e999", "18446744073709551616",
        "\\u0000", "\xff", "0.5",  "\"type\"", "\"\"",  "9223372036854775807"};
    std::uniform_int_distribution<int> op(0, 3);
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits && !s.empty(); ++e) {
        std::size_t pos = rng() % s.size();
        switch (op(rng)) {
            case 0:
                s.erase(pos, 1 + rng() % 8);
                break;
            case 1:
                s.insert(pos, tokens[rng() % (sizeof tokens / sizeof tokens[0])]);
                break;
            case 2:
                s[pos] = static_cast<char>(rng() % 256);
                break;
            default:
                s = s.substr(0, pos);
                break;
        }
    }
    return s;
}

}  // namespace

TEST(Fuzz, RandomBytesIntoTheFrameDecoder) {
    std::mt19937 rng(1234);
    std::vector<std::uint8_t> valid;
    {
        FrameHeader h;
        h.screenWidth = 100;
        h.screenHeight = 100;
        h.rectWidth = 10;
        h.rectHeight = 10;
        std::vector<std::uint8_t> p(40, 1);
        valid = buildFrame(h, p.data(), p.size());
    }
    int accepted = 0;
    for (int i = 0; i < 20000; ++i) {
        std::vector<std::uint8_t> b;
        if (i % 2 == 0) {
            b.resize(rng() % 200);
            for (auto& x : b) x = static_cast<std::uint8_t>(rng());
            if (b.size() >= 4 && i % 4 == 0) std::memcpy(b.data(), "DSF1", 4);
        } else {
            b = valid;
            const int flips = 1 + static_cast<int>(rng() % 3);
            for (int k = 0; k < flips; ++k)
                b[rng() % b.size()] ^= static_cast<std::uint8_t>(1u << (rng() % 8));
            if (rng() % 4 == 0) b.resize(rng() % (b.size() + 1));
        }
        DecodedFrame d = decodeFrame(b.data(), b.size(), 150);
        if (d.ok) {
            ++accepted;
            // Whatever is accepted is self-consistent.
            EXPECT_EQ(d.header.payloadLength, b.size() - d.header.headerLength);
            EXPECT_LE(std::uint64_t{d.header.rectX} + d.header.rectWidth, d.header.screenWidth);
        }
        rewriteStreamId(b.data(), b.size(), 9);
        (void)decodeFrameChecked(b.data(), b.size());
    }
    EXPECT_GT(accepted, 0);  // the mutator does not only produce garbage
}

TEST(Fuzz, RandomAndMutatedJsonIntoTheMessageParser) {
    std::mt19937 rng(42);
    int ok = 0, rejected = 0;
    for (int i = 0; i < 6000; ++i) {
        std::string text;
        if (i % 5 == 0) {
            text.resize(rng() % 300);
            for (auto& c : text) c = static_cast<char>(rng() % 256);
        } else {
            text = mutate(kSeeds[rng() % (sizeof kSeeds / sizeof kSeeds[0])], rng);
        }
        for (Channel ch : kChannels) {
            Result<Message> r = parseMessage(text, ch);
            if (r.ok()) {
                ++ok;
                // Whatever parses serializes, and the serialization parses to the same value.
                Result<Message> again = parseMessage(serialize(r.value()), ch);
                ASSERT_TRUE(again.ok()) << serialize(r.value());
                EXPECT_TRUE(again.value() == r.value()) << serialize(r.value());
            } else {
                ++rejected;
                EXPECT_FALSE(r.error().message.empty());
            }
        }
        (void)parseCommand(text);
        (void)parseMonitorsJson(text);
        (void)CommandRouter().prepareHttp("pc", text, 0);
    }
    EXPECT_GT(ok, 0);
    EXPECT_GT(rejected, 0);
}

TEST(Fuzz, RandomTokensIntoTheVerifier) {
    std::mt19937 rng(7);
    const std::string good = mintToken("secret", Role::Viewer, "alice", std::chrono::hours(1), 0);
    for (int i = 0; i < 3000; ++i) {
        std::string t = good;
        const int edits = 1 + static_cast<int>(rng() % 3);
        for (int k = 0; k < edits; ++k) {
            std::size_t pos = rng() % t.size();
            if (rng() % 2)
                t[pos] = static_cast<char>(rng() % 256);
            else
                t.erase(pos, 1 + rng() % 5);
            if (t.empty()) break;
        }
        auto r = verifyToken(t, "secret", Role::Viewer, 1000);
        if (r.ok()) {
            EXPECT_EQ(r->sub, "alice");  // only an unchanged signature can pass
        }
    }
}
