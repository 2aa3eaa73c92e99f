// Behaviour every encoder plugin shares: descriptor, bad input, bad configuration, rectangle
// encodes read in place, pixel formats and strides.
#include "ds_encoders_test/testkit.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <limits>
#include <ostream>
#include <string>

using namespace ds_enc_test;

namespace {

struct Case {
    const char* name;
    ds_codec codec;
    // Settings that keep the test fast (AVIF at its fastest speed).
    std::map<std::string, std::string> fastConfig;
    // A key and an invalid value for it.
    const char* badKey;
    const char* badValue;
};

// Keeps ctest's test names readable (gtest would otherwise dump the struct's bytes).
void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

class EncoderCommon : public ::testing::TestWithParam<Case> {
protected:
    void SetUp() override {
        plugin_ = std::make_unique<EncoderPlugin>(GetParam().name);
        std::string err;
        ASSERT_EQ(plugin_->create(GetParam().fastConfig, &err), DS_OK) << err;
    }
    // Expects DS_ERR_INVALID_ARGUMENT with a message containing `needle`.
    void expectRejected(const ds_frame& f, int quality, ds_rect rect, const std::string& needle) {
        ds_encoded out{};
        std::string err;
        EXPECT_EQ(plugin_->encode(f, quality, rect, out, &err), DS_ERR_INVALID_ARGUMENT);
        EXPECT_NE(err.find(needle), std::string::npos) << "message was: " << err;
    }
    std::unique_ptr<EncoderPlugin> plugin_;
};

TEST_P(EncoderCommon, DescriptorDeclaresKindCodecAndKeys) {
    const ds_plugin_descriptor& d = plugin_->descriptor();
    EXPECT_EQ(d.kind, DS_KIND_ENCODER);
    EXPECT_STREQ(d.name, GetParam().name);
    EXPECT_EQ(plugin_->vtable().codec, GetParam().codec);
    ASSERT_GT(d.config_key_count, 0u);
    bool badKeyDeclared = false;
    for (uint32_t i = 0; i < d.config_key_count; ++i) {
        const ds_config_key& k = d.config_keys[i];
        ASSERT_NE(k.key, nullptr);
        EXPECT_NE(k.default_value, nullptr) << k.key << " has no default";
        EXPECT_NE(k.description, nullptr) << k.key;
        if (std::strcmp(k.key, GetParam().badKey) == 0) badKeyDeclared = true;
    }
    EXPECT_TRUE(badKeyDeclared) << GetParam().badKey << " is missing from kConfigKeys";
}

TEST_P(EncoderCommon, InvalidConfigValueIsRejectedNamingSectionKeyAndValue) {
    std::string err;
    EXPECT_EQ(plugin_->create({{GetParam().badKey, GetParam().badValue}}, &err), DS_ERR_CONFIG);
    EXPECT_NE(err.find(std::string("[encoder.") + GetParam().name + "]"), std::string::npos) << err;
    EXPECT_NE(err.find(GetParam().badKey), std::string::npos) << err;
    EXPECT_NE(err.find(GetParam().badValue), std::string::npos) << err;
}

TEST_P(EncoderCommon, BadInputReturnsErrorsWithMessages) {
    const Image& img = desktopImage();
    const ds_rect all{0, 0, 0, 0};
    ds_frame f = img.frame();

    ds_frame nullData = f;
    nullData.data = nullptr;
    expectRejected(nullData, 75, all, "NULL");

    ds_frame empty = f;
    empty.width = 0;
    expectRejected(empty, 75, all, "empty");

    ds_frame narrow = f;
    narrow.stride = f.width * 4 - 4;
    expectRejected(narrow, 75, all, "stride");

    ds_frame badFormat = f;
    const int32_t bogus = 99;  // as a C caller could pass it
    std::memcpy(&badFormat.format, &bogus, sizeof bogus);
    expectRejected(badFormat, 75, all, "pixel format 99");

    expectRejected(f, -1, all, "quality");
    expectRejected(f, 101, all, "quality");
    expectRejected(f, 75, ds_rect{1900, 0, 40, 10}, "outside");
    expectRejected(f, 75, ds_rect{0, 1000, 10, 81}, "outside");
    // Coordinates that wrap around in 32-bit arithmetic must not sneak through.
    const uint32_t big = std::numeric_limits<uint32_t>::max() - 5;
    expectRejected(f, 75, ds_rect{big, 0, 10, 10}, "outside");
    expectRejected(f, 75, ds_rect{0, big, 10, 10}, "outside");

    // NULL pointers through the C ABI.
    char err[256] = "";
    ds_encode_params p{sizeof(ds_encode_params), 75, 1, all};
    ds_encoded out{};
    EXPECT_EQ(plugin_->vtable().encode(nullptr, &f, &p, &out, err, sizeof err),
              DS_ERR_INVALID_ARGUMENT);
    std::string e2;
    ds_encoded ok{};
    // The instance still works after all of that.
    ASSERT_EQ(plugin_->encode(f, 75, ds_rect{0, 0, 64, 48}, ok, &e2), DS_OK) << e2;
    EXPECT_EQ(ok.width, 64u);
}

TEST_P(EncoderCommon, RectangleEncodeDecodesToTheRectanglePixels) {
    const Image& img = desktopImage();
    const ds_rect rect{300, 200, 256, 144};
    ds_encoded out{};
    std::string err;
    ASSERT_EQ(plugin_->encode(img.frame(), 90, rect, out, &err), DS_OK) << err;
    EXPECT_EQ(out.codec, GetParam().codec);
    EXPECT_EQ(out.width, rect.width);
    EXPECT_EQ(out.height, rect.height);
    Image decoded = decode(GetParam().codec, out.data, out.size);
    ASSERT_EQ(decoded.width, rect.width);
    ASSERT_EQ(decoded.height, rect.height);
    const Image expected = img.crop(rect.x, rect.y, rect.width, rect.height);
    // Lossy at quality 90 on the right pixels is far above 30 dB; a wrong offset or stride
    // produces a picture of something else (well under 20 dB).
    EXPECT_GE(psnr(decoded, expected), 30.0);
    // A rectangle shifted by one pixel is a worse match: the offset really is (x, y).
    const Image shifted = img.crop(rect.x + 1, rect.y + 1, rect.width, rect.height);
    EXPECT_GT(psnr(decoded, expected), psnr(decoded, shifted));

    // A rectangle touching the frame's right and bottom edges (the last bytes of the buffer).
    const ds_rect corner{img.width - 96, img.height - 40, 96, 40};
    ASSERT_EQ(plugin_->encode(img.frame(), 90, corner, out, &err), DS_OK) << err;
    decoded = decode(GetParam().codec, out.data, out.size);
    ASSERT_EQ(decoded.width, corner.width);
    ASSERT_EQ(decoded.height, corner.height);
    EXPECT_GE(psnr(decoded, img.crop(corner.x, corner.y, corner.width, corner.height)), 30.0);
}

TEST_P(EncoderCommon, RgbxAndPaddedStrideGiveTheSamePicture) {
    const Image crop = desktopImage().crop(640, 360, 160, 96);
    ds_encoded out{};
    std::string err;
    ASSERT_EQ(plugin_->encode(crop.frame(), 80, ds_rect{}, out, &err), DS_OK) << err;
    const Image reference = decode(GetParam().codec, out.data, out.size);
    EXPECT_GE(psnr(reference, crop), 30.0);

    const Image rgbx = crop.toRgbx();
    ASSERT_EQ(plugin_->encode(rgbx.frame(), 80, ds_rect{}, out, &err), DS_OK) << err;
    EXPECT_GE(psnr(decode(GetParam().codec, out.data, out.size), crop), 30.0);

    const Image padded = crop.withPadding(28);
    ASSERT_EQ(plugin_->encode(padded.frame(), 80, ds_rect{}, out, &err), DS_OK) << err;
    EXPECT_GE(psnr(decode(GetParam().codec, out.data, out.size), crop), 30.0);

    Image bgra = crop;
    bgra.format = DS_PIXEL_BGRA;
    for (size_t i = 3; i < bgra.pixels.size(); i += 4) bgra.pixels[i] = 0;  // alpha is ignored
    ASSERT_EQ(plugin_->encode(bgra.frame(), 80, ds_rect{}, out, &err), DS_OK) << err;
    EXPECT_GE(psnr(decode(GetParam().codec, out.data, out.size), crop), 30.0);
}

INSTANTIATE_TEST_SUITE_P(
    Plugins, EncoderCommon,
    ::testing::Values(Case{"jpeg", DS_CODEC_JPEG, {}, "subsampling", "411"},
                      Case{"webp", DS_CODEC_WEBP, {}, "lossless", "maybe"},
                      Case{"avif", DS_CODEC_AVIF, {{"speed", "10"}}, "speed", "11"}),
    [](const ::testing::TestParamInfo<Case>& info) { return std::string(info.param.name); });

}  // namespace
