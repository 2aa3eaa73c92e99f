// WebP plugin: lossy, lossless (exact) and auto on the 1080p desktop picture and on
// synthetic text-like and photo-like pictures.
#include "ds_encoders_test/testkit.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <random>

using namespace ds_enc_test;

namespace {

// "VP8L" (lossless) or "VP8 " (lossy): the first chunk of a simple WebP file.
std::string bitstreamKind(const ds_encoded& out) {
    if (out.size < 16 || std::memcmp(out.data, "RIFF", 4) != 0 ||
        std::memcmp(out.data + 8, "WEBP", 4) != 0)
        return "not webp";
    return std::string(reinterpret_cast<const char*>(out.data) + 12, 4);
}

Image blankImage(uint32_t w, uint32_t h, uint8_t value) {
    Image img;
    img.width = w;
    img.height = h;
    img.stride = w * 4;
    img.pixels.assign(size_t(img.stride) * h, value);
    return img;
}

// Black "glyphs" (short strokes) on white: what a terminal or document looks like.
Image textLike() {
    Image img = blankImage(640, 360, 0xFF);
    std::mt19937 rng(7);
    for (uint32_t line = 8; line + 12 < img.height; line += 16)
        for (uint32_t x = 8; x + 8 < img.width; x += 8)
            for (int stroke = 0; stroke < 3; ++stroke) {
                const uint32_t sx = x + rng() % 6, sy = line + rng() % 10;
                const bool vertical = rng() % 2;
                for (uint32_t k = 0; k < 3; ++k) {
                    uint8_t* p = img.pixels.data() + size_t(sy + (vertical ? k : 0)) * img.stride +
                                 size_t(sx + (vertical ? 0 : k)) * 4;
                    p[0] = p[1] = p[2] = 0x10;
                }
            }
    return img;
}

// Smooth gradients with sensor-like noise: what a photo or video looks like.
Image photoLike() {
    Image img = blankImage(640, 360, 0xFF);
    std::mt19937 rng(11);
    for (uint32_t y = 0; y < img.height; ++y)
        for (uint32_t x = 0; x < img.width; ++x) {
            uint8_t* p = img.pixels.data() + size_t(y) * img.stride + size_t(x) * 4;
            const int n = static_cast<int>(rng() % 17) - 8;
            p[0] = static_cast<uint8_t>(std::clamp(int(x * 255 / img.width) + n, 0, 255));
            p[1] = static_cast<uint8_t>(std::clamp(int(y * 255 / img.height) + n, 0, 255));
            p[2] = static_cast<uint8_t>(std::clamp(int((x + y) * 127 / img.width) + n, 0, 255));
        }
    return img;
}

std::unique_ptr<EncoderPlugin> webp(const std::map<std::string, std::string>& config) {
    auto p = std::make_unique<EncoderPlugin>("webp");
    std::string err;
    EXPECT_EQ(p->create(config, &err), DS_OK) << err;
    return p;
}

TEST(Webp, LossyRoundTripIsFullSizeAndClose) {
    auto p = webp({{"lossless", "false"}});
    ds_encoded out{};
    std::string err;
    ASSERT_EQ(p->encode(desktopImage().frame(), 75, ds_rect{}, out, &err), DS_OK) << err;
    EXPECT_EQ(bitstreamKind(out), "VP8 ");
    const Image decoded = decodeWebp(out.data, out.size);
    EXPECT_EQ(decoded.width, 1920u);
    EXPECT_EQ(decoded.height, 1080u);
    // Lossy WebP is always 4:2:0: luma is asserted (RGB PSNR is capped by the chroma of the
    // coloured text, see the JPEG test).
    EXPECT_GE(psnrLuma(decoded, desktopImage()), 30.0);
}

TEST(Webp, LosslessDecodesToExactlyTheSourcePixels) {
    auto p = webp({{"lossless", "true"}});
    ds_encoded out{};
    std::string err;
    ASSERT_EQ(p->encode(desktopImage().frame(), 75, ds_rect{}, out, &err), DS_OK) << err;
    EXPECT_EQ(bitstreamKind(out), "VP8L");
    EXPECT_EQ(out.quality, 100);
    const Image decoded = decodeWebp(out.data, out.size);
    ASSERT_EQ(decoded.width, 1920u);
    ASSERT_EQ(decoded.height, 1080u);
    EXPECT_TRUE(sameRgb(decoded, desktopImage()));
}

TEST(Webp, LosslessRectangleIsExactlyTheRectangle) {
    auto p = webp({{"lossless", "true"}});
    const ds_rect rect{1001, 333, 317, 201};  // odd offsets and sizes on purpose
    ds_encoded out{};
    std::string err;
    ASSERT_EQ(p->encode(desktopImage().frame(), 75, rect, out, &err), DS_OK) << err;
    const Image decoded = decodeWebp(out.data, out.size);
    EXPECT_TRUE(sameRgb(decoded, desktopImage().crop(rect.x, rect.y, rect.width, rect.height)));
    // RGBX input gives the same exact pixels.
    const Image rgbx = desktopImage().crop(1000, 300, 400, 300).toRgbx();
    ASSERT_EQ(p->encode(rgbx.frame(), 75, ds_rect{1, 33, 317, 201}, out, &err), DS_OK) << err;
    EXPECT_TRUE(sameRgb(decodeWebp(out.data, out.size), decoded));
}

TEST(Webp, HigherQualityNeverGivesASmallerFile) {
    for (const char* method : {"0", "4"}) {
        auto p = webp({{"lossless", "false"}, {"method", method}});
        size_t previous = 0;
        for (int q : {30, 50, 75, 90}) {
            ds_encoded out{};
            std::string err;
            ASSERT_EQ(p->encode(desktopImage().frame(), q, ds_rect{}, out, &err), DS_OK) << err;
            EXPECT_GE(out.size, previous) << "method " << method << " quality " << q;
            previous = out.size;
        }
    }
}

TEST(Webp, AutoPicksLosslessForTextAndLossyForPhotos) {
    auto p = webp({{"lossless", "auto"}});
    auto lossy = webp({{"lossless", "false"}});
    auto lossless = webp({{"lossless", "true"}});
    std::string err;
    for (const Image& img : {textLike(), photoLike()}) {
        ds_encoded a{}, l{}, ll{};
        ASSERT_EQ(p->encode(img.frame(), 75, ds_rect{}, a, &err), DS_OK) << err;
        const std::string kind = bitstreamKind(a);
        const size_t autoSize = a.size;
        ASSERT_EQ(lossy->encode(img.frame(), 75, ds_rect{}, l, &err), DS_OK) << err;
        ASSERT_EQ(lossless->encode(img.frame(), 75, ds_rect{}, ll, &err), DS_OK) << err;
        // The sample-based choice agrees with the whole-picture truth on these clear cases.
        EXPECT_EQ(kind, ll.size <= l.size ? "VP8L" : "VP8 ")
            << "lossy " << l.size << " B, lossless " << ll.size << " B";
        EXPECT_EQ(autoSize, std::min(l.size, ll.size));
        if (kind == "VP8L") {
            EXPECT_TRUE(sameRgb(decodeWebp(a.data, autoSize), img));
        }
    }
    ds_encoded text{}, photo{};
    ASSERT_EQ(p->encode(textLike().frame(), 75, ds_rect{}, text, &err), DS_OK) << err;
    EXPECT_EQ(bitstreamKind(text), "VP8L");
    const Image photoImg = photoLike();
    ASSERT_EQ(p->encode(photoImg.frame(), 75, ds_rect{}, photo, &err), DS_OK) << err;
    EXPECT_EQ(bitstreamKind(photo), "VP8 ");
}

TEST(Webp, AutoIsTheDefaultAndOnTheDesktopDecodesToTheRightSize) {
    auto p = webp({});
    ds_encoded out{};
    std::string err;
    ASSERT_EQ(p->encode(desktopImage().frame(), 75, ds_rect{}, out, &err), DS_OK) << err;
    const Image decoded = decodeWebp(out.data, out.size);
    EXPECT_EQ(decoded.width, 1920u);
    EXPECT_EQ(decoded.height, 1080u);
    EXPECT_GE(psnrLuma(decoded, desktopImage()), 30.0);
    // A picture smaller than one sample tile is judged on itself.
    ASSERT_EQ(p->encode(desktopImage().frame(), 75, ds_rect{5, 5, 17, 9}, out, &err), DS_OK) << err;
    EXPECT_EQ(decodeWebp(out.data, out.size).width, 17u);
}

TEST(Webp, OutOfRangeMethodIsAConfigError) {
    EncoderPlugin p("webp");
    std::string err;
    EXPECT_EQ(p.create({{"method", "7"}}, &err), DS_ERR_CONFIG);
    EXPECT_NE(err.find("[encoder.webp] method = 7"), std::string::npos) << err;
    EXPECT_EQ(p.create({{"lossless.level", "x"}}, &err), DS_ERR_CONFIG);
    EXPECT_NE(err.find("lossless.level"), std::string::npos) << err;
}

}  // namespace
