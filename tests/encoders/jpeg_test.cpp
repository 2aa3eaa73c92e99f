// JPEG plugin: round trips on the 1080p desktop picture.
#include "ds_encoders_test/testkit.hpp"

#include <gtest/gtest.h>

#include <turbojpeg.h>

#include <ostream>

using namespace ds_enc_test;

namespace {

struct Encoded {
    size_t size = 0;
    Image decoded;
};

Encoded encodeFull(EncoderPlugin& p, int quality) {
    ds_encoded out{};
    std::string err;
    EXPECT_EQ(p.encode(desktopImage().frame(), quality, ds_rect{}, out, &err), DS_OK) << err;
    if (!out.data) return {};
    return {out.size, decodeJpeg(out.data, out.size)};
}

// Subsampling as the JPEG's own header reports it.
int headerSubsampling(const ds_encoded& out) {
    tjhandle h = tjInitDecompress();
    int w = 0, ht = 0, ss = -1, cs = 0;
    tjDecompressHeader3(h, out.data, static_cast<unsigned long>(out.size), &w, &ht, &ss, &cs);
    tjDestroy(h);
    return ss;
}

struct Subsampling {
    const char* config;  // the [encoder.jpeg] subsampling value
    int tj;              // what the JPEG header must say
};
void PrintTo(const Subsampling& s, std::ostream* os) { *os << s.config; }

class JpegSubsampling : public ::testing::TestWithParam<Subsampling> {};

// PSNR is checked on luma (Y, BT.601) for every subsampling, and also on R,G,B for 4:4:4.
// RGB PSNR with chroma subsampling is capped near 25 dB on this picture whatever the quality
// (saturated coloured text: yellow on blue, white on green), so it is measured and recorded,
// not asserted; docs/encoders.md explains the numbers.
TEST_P(JpegSubsampling, Quality75RoundTripIsFullSizeAndAbove30dB) {
    EncoderPlugin p("jpeg");
    std::string err;
    ASSERT_EQ(p.create({{"subsampling", GetParam().config}}, &err), DS_OK) << err;
    ds_encoded out{};
    ASSERT_EQ(p.encode(desktopImage().frame(), 75, ds_rect{}, out, &err), DS_OK) << err;
    EXPECT_EQ(headerSubsampling(out), GetParam().tj);
    EXPECT_EQ(out.quality, 75);
    const Image decoded = decodeJpeg(out.data, out.size);
    EXPECT_EQ(decoded.width, 1920u);
    EXPECT_EQ(decoded.height, 1080u);
    const double luma = psnrLuma(decoded, desktopImage());
    const double rgb = psnr(decoded, desktopImage());
    RecordProperty("psnr_y_db", std::to_string(luma));
    RecordProperty("psnr_rgb_db", std::to_string(rgb));
    RecordProperty("bytes", std::to_string(out.size));
    EXPECT_GE(luma, 30.0);
    if (GetParam().tj == TJSAMP_444) {
        EXPECT_GE(rgb, 30.0);
    }
}

INSTANTIATE_TEST_SUITE_P(All, JpegSubsampling,
                         ::testing::Values(Subsampling{"420", TJSAMP_420},
                                           Subsampling{"422", TJSAMP_422},
                                           Subsampling{"444", TJSAMP_444}),
                         [](const auto& info) { return std::string("s") + info.param.config; });

TEST(Jpeg, HigherQualityNeverGivesASmallerFile) {
    EncoderPlugin p("jpeg");
    std::string err;
    ASSERT_EQ(p.create({}, &err), DS_OK) << err;
    size_t previous = 0;
    double previousDb = 0;
    for (int q : {30, 50, 75, 90}) {
        Encoded e = encodeFull(p, q);
        const double db = psnrLuma(e.decoded, desktopImage());
        EXPECT_GE(e.size, previous) << "quality " << q;
        EXPECT_GE(db, previousDb) << "quality " << q;
        previous = e.size;
        previousDb = db;
    }
}

TEST(Jpeg, FullChromaIsLargerThanSubsampled) {
    EncoderPlugin a("jpeg"), b("jpeg");
    std::string err;
    ASSERT_EQ(a.create({{"subsampling", "420"}}, &err), DS_OK) << err;
    ASSERT_EQ(b.create({{"subsampling", "444"}}, &err), DS_OK) << err;
    EXPECT_LT(encodeFull(a, 75).size, encodeFull(b, 75).size);
}

TEST(Jpeg, OutputBufferIsReusedInSteadyState) {
    // The buffer is sized once (tjBufSize) and handed to TurboJPEG with TJFLAG_NOREALLOC: the
    // same memory serves every frame of that size or smaller.
    EncoderPlugin p("jpeg");
    std::string err;
    ASSERT_EQ(p.create({}, &err), DS_OK) << err;
    ds_encoded first{}, out{};
    const ds_frame f = desktopImage().frame();
    ASSERT_EQ(p.encode(f, 75, ds_rect{}, first, &err), DS_OK) << err;
    const uint8_t* buffer = first.data;
    for (int q : {90, 30, 100}) {
        ASSERT_EQ(p.encode(f, q, ds_rect{}, out, &err), DS_OK) << err;
        EXPECT_EQ(out.data, buffer);
    }
    ASSERT_EQ(p.encode(f, 75, ds_rect{10, 10, 320, 200}, out, &err), DS_OK) << err;
    EXPECT_EQ(out.data, buffer) << "a smaller rectangle must not reallocate";
}

TEST(Jpeg, QualityZeroIsClampedToTheLowestJpegQuality) {
    EncoderPlugin p("jpeg");
    std::string err;
    ASSERT_EQ(p.create({}, &err), DS_OK) << err;
    ds_encoded out{};
    ASSERT_EQ(p.encode(desktopImage().frame(), 0, ds_rect{0, 0, 128, 128}, out, &err), DS_OK)
        << err;
    EXPECT_EQ(out.quality, 1);
    EXPECT_EQ(decodeJpeg(out.data, out.size).width, 128u);
}

TEST(Jpeg, EmptySubsamplingMeansTheDefault) {
    EncoderPlugin p("jpeg");
    std::string err;
    ASSERT_EQ(p.create({{"subsampling", ""}}, &err), DS_OK) << err;
    ds_encoded out{};
    ASSERT_EQ(p.encode(desktopImage().frame(), 75, ds_rect{0, 0, 64, 64}, out, &err), DS_OK) << err;
    EXPECT_EQ(headerSubsampling(out), TJSAMP_420);
}

}  // namespace
