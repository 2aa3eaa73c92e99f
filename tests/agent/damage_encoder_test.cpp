// The agent's damage encoder (host/agent/src/damage_encoder.*) with the real JPEG encoder
// plugin: key pictures, nothing for an unchanged picture, partial rects for a change, a key
// after a frame that was not sent, the repeat of a still picture, and lossless refinement.
#include "damage_encoder.hpp"
#include "encoder_slot.hpp"

#include "deskstream/core/frame_header.hpp"
#include "deskstream/host/config.hpp"
#include "deskstream/host/plugin_registry.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <vector>

using namespace deskstream;
using namespace deskstream::agent;
namespace flags = deskstream::core::frame_flags;

namespace {

struct Image {
    std::uint32_t width = 640, height = 360;
    std::vector<std::uint8_t> px = std::vector<std::uint8_t>(std::size_t{640} * 360 * 4, 90);
    ds_frame frame() const {
        ds_frame f{};
        f.struct_size = sizeof f;
        f.width = width;
        f.height = height;
        f.stride = width * 4;
        f.format = DS_PIXEL_BGRA;
        f.data = px.data();
        return f;
    }
    void fill(std::uint32_t x, std::uint32_t y, std::uint32_t w, std::uint32_t h, std::uint8_t v) {
        for (std::uint32_t r = y; r < y + h; ++r)
            for (std::uint32_t c = x; c < x + w; ++c)
                for (int k = 0; k < 3; ++k) px[(std::size_t{r} * width + c) * 4 + k] = v;
    }
    void noise(std::uint32_t x, std::uint32_t y, std::uint32_t w, std::uint32_t h) {
        std::uint32_t s = 7;
        for (std::uint32_t r = y; r < y + h; ++r)
            for (std::uint32_t c = x; c < x + w; ++c)
                for (int k = 0; k < 3; ++k) {
                    s = s * 1664525u + 1013904223u;
                    px[(std::size_t{r} * width + c) * 4 + k] = static_cast<std::uint8_t>(s >> 24);
                }
    }
};

core::TimePoint ms(int v) { return core::TimePoint(std::chrono::milliseconds(v)); }

class DamageEncoderTest : public ::testing::Test {
protected:
    void SetUp() override {
        plugins.scan({DS_TEST_PLUGIN_DIR});
        slot = std::make_unique<EncoderSlot>(std::make_unique<host::EncoderInstance>(
            plugins.require(DS_KIND_ENCODER, "jpeg", "test"), config.poco()));
        core::damage::TrackerConfig c;
        c.refineAfter = std::chrono::milliseconds(500);
        enc = std::make_unique<DamageEncoder>(c, *slot, nullptr);
    }
    host::PluginRegistry plugins;
    host::Configuration config;
    std::unique_ptr<EncoderSlot> slot;
    std::unique_ptr<DamageEncoder> enc;
    PreparedFrame out;
    std::string error;
};

TEST_F(DamageEncoderTest, FirstPictureIsOneKeyRectThenOnlyChangesArePartialRects) {
    Image img;
    ASSERT_TRUE(enc->picture(0, img.frame(), false, 75, 1, ms(0), out, error)) << error;
    ASSERT_EQ(out.count, 1u);
    EXPECT_EQ(out.rects[0].header.flags, flags::kKey | flags::kLastRect);
    EXPECT_EQ(out.rects[0].header.rectWidth, 640u);
    EXPECT_EQ(out.rects[0].header.rectHeight, 360u);

    ASSERT_TRUE(enc->picture(0, img.frame(), false, 75, 2, ms(100), out, error));
    EXPECT_EQ(out.count, 0u) << "nothing changed: nothing to send";

    img.fill(100, 50, 10, 10, 250);
    img.fill(500, 300, 4, 4, 10);
    ASSERT_TRUE(enc->picture(0, img.frame(), false, 75, 3, ms(200), out, error));
    ASSERT_EQ(out.count, 2u);
    EXPECT_EQ(out.rects[0].header.flags, flags::kPartial);
    EXPECT_EQ(out.rects[1].header.flags, flags::kPartial | flags::kLastRect);
    EXPECT_EQ(out.rects[0].header.rectX, 100u);
    EXPECT_EQ(out.rects[0].header.rectWidth, 10u);
    EXPECT_EQ(out.rects[1].header.rectX, 500u);
    EXPECT_EQ(out.rects[0].header.screenWidth, 640u);
    // Encoded bytes follow the (not yet written) header.
    EXPECT_EQ(out.rects[0].bytes.size(),
              core::kFrameHeaderSize + out.rects[0].header.payloadLength);
}

TEST_F(DamageEncoderTest, AFrameThatWasNotSentMakesTheNextPictureAKey) {
    Image img;
    ASSERT_TRUE(enc->picture(0, img.frame(), false, 75, 1, ms(0), out, error));
    img.fill(10, 10, 5, 5, 200);
    ASSERT_TRUE(enc->picture(0, img.frame(), false, 75, 2, ms(100), out, error));
    ASSERT_EQ(out.count, 1u);
    enc->notSent(0);  // the window dropped it
    img.fill(300, 10, 5, 5, 200);
    ASSERT_TRUE(enc->picture(0, img.frame(), false, 75, 3, ms(200), out, error));
    ASSERT_EQ(out.count, 1u);
    EXPECT_TRUE(out.rects[0].header.flags & flags::kKey);
    EXPECT_EQ(out.rects[0].header.rectWidth, 640u);
}

TEST_F(DamageEncoderTest, RepeatSendsTheStillPictureWholeAndNothingBeforeAPicture) {
    EXPECT_FALSE(enc->repeat(0, 75, 1, ms(0), out, error));
    EXPECT_EQ(out.count, 0u);
    EXPECT_TRUE(error.empty());
    Image img;
    ASSERT_TRUE(enc->picture(0, img.frame(), false, 75, 1, ms(0), out, error));
    ASSERT_TRUE(enc->repeat(0, 75, 2, ms(100), out, error)) << error;
    ASSERT_EQ(out.count, 1u);
    EXPECT_EQ(out.rects[0].header.flags, flags::kKey | flags::kLastRect);
    EXPECT_EQ(out.rects[0].header.captureTimeUs, 2u);
}

TEST_F(DamageEncoderTest, ALossyRegionIsRefinedAtQuality100AfterTheQuietTime) {
    Image img;
    ASSERT_TRUE(enc->picture(0, img.frame(), false, 75, 1, ms(0), out, error));
    img.noise(64, 64, 128, 128);
    ASSERT_TRUE(enc->picture(0, img.frame(), false, 60, 2, ms(1000), out, error));
    ASSERT_EQ(out.count, 1u);
    EXPECT_EQ(out.rects[0].header.quality, 60) << "photo-like: the adaptive quality";
    EXPECT_EQ(enc->nextRefinementAt(), ms(1500));
    ASSERT_TRUE(enc->refine(ms(1499), 3, out, error));
    EXPECT_EQ(out.count, 0u);
    ASSERT_TRUE(enc->refine(ms(1500), 3, out, error)) << error;
    ASSERT_EQ(out.count, 1u);
    EXPECT_EQ(out.rects[0].header.quality, 100);
    EXPECT_EQ(out.rects[0].header.flags, flags::kPartial | flags::kLastRect);
    EXPECT_EQ(out.rects[0].header.rectX, 64u);
    EXPECT_EQ(enc->nextRefinementAt(), core::TimePoint::max());
}

}  // namespace
