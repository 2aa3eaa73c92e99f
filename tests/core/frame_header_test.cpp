// Binary frame header: exact offsets, round trips, and every rejection.
#include "deskstream/core/frame_header.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <functional>

using namespace deskstream::core;

namespace {

FrameHeader sample() {
    FrameHeader h;
    h.codec = FrameCodec::Webp;
    h.flags = frame_flags::kKey | frame_flags::kLastRect;
    h.frameNumber = 0x0102030405060708ull;
    h.captureTimeUs = 1700000000123456ull;
    h.streamId = 0xA1B2C3D4u;
    h.monitor = 3;
    h.quality = 75;
    h.screenWidth = 1920;
    h.screenHeight = 1080;
    h.rectX = 10;
    h.rectY = 20;
    h.rectWidth = 100;
    h.rectHeight = 50;
    return h;
}

std::vector<std::uint8_t> sampleFrame(std::size_t payload = 16) {
    std::vector<std::uint8_t> p(payload, 0xAB);
    return buildFrame(sample(), p.data(), p.size());
}

void put32(std::vector<std::uint8_t>& b, std::size_t off, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) b[off + i] = static_cast<std::uint8_t>(v >> (8 * i));
}

}  // namespace

TEST(FrameHeader, OffsetsAreLittleEndianAsSpecified) {
    auto f = sampleFrame(16);
    ASSERT_EQ(f.size(), 80u);
    EXPECT_EQ(0, std::memcmp(f.data(), "DSF1", 4));
    EXPECT_EQ(f[4], 64);
    EXPECT_EQ(f[5], 0);
    EXPECT_EQ(f[6], 2);  // webp
    EXPECT_EQ(f[7], frame_flags::kKey | frame_flags::kLastRect);
    EXPECT_EQ(f[8], 0x08);
    EXPECT_EQ(f[15], 0x01);
    EXPECT_EQ(f[24], 0xD4);
    EXPECT_EQ(f[27], 0xA1);
    EXPECT_EQ(f[28], 3);
    EXPECT_EQ(f[30], 75);
    EXPECT_EQ(f[31], 0);
    EXPECT_EQ(f[32] | (f[33] << 8), 1920);
    EXPECT_EQ(f[36] | (f[37] << 8), 1080);
    EXPECT_EQ(f[40], 10);
    EXPECT_EQ(f[44], 20);
    EXPECT_EQ(f[48], 100);
    EXPECT_EQ(f[52], 50);
    EXPECT_EQ(f[56], 16);
    for (int i = 60; i < 64; ++i) EXPECT_EQ(f[i], 0);
    EXPECT_EQ(f[64], 0xAB);
}

TEST(FrameHeader, RoundTrip) {
    auto f = sampleFrame(100);
    DecodedFrame d = decodeFrame(f.data(), f.size());
    ASSERT_TRUE(d.ok) << toString(d.error);
    FrameHeader expected = sample();
    expected.payloadLength = 100;
    EXPECT_EQ(d.header, expected);
    for (int codec = 1; codec <= 5; ++codec) {
        FrameHeader h = sample();
        h.codec = static_cast<FrameCodec>(codec);
        h.quality = static_cast<std::uint8_t>(codec == 5 ? 100 : 0);
        auto g = buildFrame(h, nullptr, 0);
        auto r = decodeFrameChecked(g.data(), g.size());
        ASSERT_TRUE(r.ok()) << r.error().message;
        EXPECT_EQ(r->codec, h.codec);
        EXPECT_EQ(r->quality, h.quality);
    }
}

TEST(FrameHeader, LongerHeaderLengthIsAccepted) {
    // A future header may grow: payload starts at headerLength.
    std::vector<std::uint8_t> f(72 + 8, 0);
    FrameHeader h = sample();
    h.headerLength = 72;
    h.payloadLength = 8;
    encodeFrameHeader(h, f.data());
    auto d = decodeFrame(f.data(), f.size());
    ASSERT_TRUE(d.ok) << toString(d.error);
    EXPECT_EQ(d.header.headerLength, 72);
}

TEST(FrameHeader, RejectsEachMalformation) {
    struct Case {
        const char* name;
        std::function<void(std::vector<std::uint8_t>&)> mutate;
        FrameError expected;
    };
    const std::vector<Case> cases = {
        {"short", [](auto& b) { b.resize(63); }, FrameError::TooShort},
        {"magic", [](auto& b) { b[3] = '2'; }, FrameError::BadMagic},
        {"headerLength<64", [](auto& b) { b[4] = 63; }, FrameError::BadHeaderLength},
        {"headerLength>size",
         [](auto& b) {
             b[4] = 0xFF;
             b[5] = 0x00;
         },
         FrameError::BadHeaderLength},
        {"codec 0", [](auto& b) { b[6] = 0; }, FrameError::UnknownCodec},
        {"codec 6", [](auto& b) { b[6] = 6; }, FrameError::UnknownCodec},
        {"quality 101", [](auto& b) { b[30] = 101; }, FrameError::BadQuality},
        {"payload too long", [](auto& b) { put32(b, 56, 17); }, FrameError::PayloadMismatch},
        {"payload too short", [](auto& b) { put32(b, 56, 15); }, FrameError::PayloadMismatch},
        {"extra bytes", [](auto& b) { b.push_back(0); }, FrameError::PayloadMismatch},
        {"rect right", [](auto& b) { put32(b, 40, 1821); }, FrameError::RectOutsideScreen},
        {"rect bottom", [](auto& b) { put32(b, 44, 1031); }, FrameError::RectOutsideScreen},
        {"rect wraps", [](auto& b) { put32(b, 40, 0xFFFFFFF0u); }, FrameError::RectOutsideScreen},
        {"rect empty", [](auto& b) { put32(b, 48, 0); }, FrameError::RectOutsideScreen},
        {"screen empty", [](auto& b) { put32(b, 32, 0); }, FrameError::RectOutsideScreen},
    };
    for (const auto& c : cases) {
        auto f = sampleFrame(16);
        c.mutate(f);
        DecodedFrame d = decodeFrame(f.data(), f.size());
        EXPECT_FALSE(d.ok) << c.name;
        EXPECT_EQ(d.error, c.expected) << c.name << ": " << toString(d.error);
        auto r = decodeFrameChecked(f.data(), f.size());
        ASSERT_FALSE(r.ok()) << c.name;
        EXPECT_EQ(r.error().code, ErrorCode::BadRequest) << c.name;
        EXPECT_FALSE(r.error().field.empty()) << c.name;
    }
}

TEST(FrameHeader, RectTouchingTheEdgeIsInside) {
    FrameHeader h = sample();
    h.rectX = 1820;
    h.rectY = 1030;
    auto f = buildFrame(h, nullptr, 0);
    EXPECT_TRUE(decodeFrame(f.data(), f.size()).ok);
}

TEST(FrameHeader, TooLargeIsItsOwnError) {
    auto f = sampleFrame(1000);
    EXPECT_TRUE(decodeFrame(f.data(), f.size(), f.size()).ok);  // exactly the limit: fine
    DecodedFrame d = decodeFrame(f.data(), f.size(), f.size() - 1);
    EXPECT_FALSE(d.ok);
    EXPECT_EQ(d.error, FrameError::TooLarge);
    auto r = decodeFrameChecked(f.data(), f.size(), f.size() - 1);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, ErrorCode::TooLarge);
    EXPECT_TRUE(decodeFrame(f.data(), f.size(), 0).ok);  // 0: no limit
}

TEST(FrameHeader, NullAndEmptyInput) {
    EXPECT_EQ(decodeFrame(nullptr, 0).error, FrameError::TooShort);
    std::uint8_t b[1] = {0};
    EXPECT_EQ(decodeFrame(b, 0).error, FrameError::TooShort);
}

TEST(FrameHeader, RewriteStreamIdInPlace) {
    auto f = sampleFrame(16);
    auto before = f;
    ASSERT_TRUE(rewriteStreamId(f.data(), f.size(), 7));
    EXPECT_EQ(peekStreamId(f.data()), 7u);
    for (std::size_t i = 0; i < f.size(); ++i) {
        if (i >= 24 && i < 28) continue;
        EXPECT_EQ(f[i], before[i]) << "byte " << i << " changed";
    }
    auto d = decodeFrame(f.data(), f.size());
    ASSERT_TRUE(d.ok);
    EXPECT_EQ(d.header.streamId, 7u);
    EXPECT_EQ(peekFrameNumber(f.data()), sample().frameNumber);
    EXPECT_EQ(peekMonitor(f.data()), 3);
    std::uint8_t tiny[10] = {};
    EXPECT_FALSE(rewriteStreamId(tiny, sizeof tiny, 7));
}
