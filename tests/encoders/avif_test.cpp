// AVIF plugin. AV1 encoding is slow under ASan, so one test encodes the full 1080p picture and
// the others work on rectangles of it at speed 10.
#include "ds_encoders_test/testkit.hpp"

#include <gtest/gtest.h>

#include <avif/avif.h>

using namespace ds_enc_test;

namespace {

TEST(Avif, FullFrameRoundTripIsFullSize) {
    EncoderPlugin p("avif");
    std::string err;
    ASSERT_EQ(p.create({}, &err), DS_OK) << err;  // the defaults: speed 8, 2 threads, auto
    ds_encoded out{};
    ASSERT_EQ(p.encode(desktopImage().frame(), 75, ds_rect{}, out, &err), DS_OK) << err;
    EXPECT_EQ(out.codec, DS_CODEC_AVIF);
    const Image decoded = decodeAvif(out.data, out.size);
    EXPECT_EQ(decoded.width, 1920u);
    EXPECT_EQ(decoded.height, 1080u);
    EXPECT_GE(psnrLuma(decoded, desktopImage()), 30.0);  // 4:2:0: see the JPEG test about RGB PSNR
    EXPECT_TRUE(p.host().logContains("avif encoder ready: codec "));
    EXPECT_TRUE(p.host().logContains("speed 8, threads 2"));
}

TEST(Avif, HigherQualityNeverGivesASmallerFile) {
    EncoderPlugin p("avif");
    std::string err;
    ASSERT_EQ(p.create({{"speed", "10"}}, &err), DS_OK) << err;
    const ds_rect rect{};  // the whole picture: ~0.2 s per encode at speed 10
    size_t previous = 0;
    for (int q : {30, 50, 75, 90}) {
        ds_encoded out{};
        ASSERT_EQ(p.encode(desktopImage().frame(), q, rect, out, &err), DS_OK) << err;
        EXPECT_EQ(out.quality, q);
        EXPECT_GE(out.size, previous) << "quality " << q;
        previous = out.size;
    }
}

// Every codec name is either usable (libavif was built with it) or refused with
// DS_ERR_UNSUPPORTED naming the ones that are available; nothing in between.
TEST(Avif, CodecChoiceFollowsWhatLibavifCanEncodeWith) {
    int usable = 0;
    for (const char* name : {"aom", "rav1e", "svt"}) {
        const bool available =
            avifCodecName(avifCodecChoiceFromName(name), AVIF_CODEC_FLAG_CAN_ENCODE) != nullptr;
        EncoderPlugin p("avif");
        std::string err;
        const ds_status s = p.create({{"codec", name}, {"speed", "10"}, {"threads", "1"}}, &err);
        if (!available) {
            EXPECT_EQ(s, DS_ERR_UNSUPPORTED) << name;
            EXPECT_NE(err.find(std::string("codec = ") + name), std::string::npos) << err;
            EXPECT_NE(err.find("available:"), std::string::npos) << err;
            continue;
        }
        ++usable;
        ASSERT_EQ(s, DS_OK) << name << ": " << err;
        ds_encoded out{};
        ASSERT_EQ(p.encode(desktopImage().frame(), 60, ds_rect{800, 500, 128, 96}, out, &err),
                  DS_OK)
            << name << ": " << err;
        const Image decoded = decodeAvif(out.data, out.size);
        EXPECT_EQ(decoded.width, 128u) << name;
        EXPECT_GE(psnr(decoded, desktopImage().crop(800, 500, 128, 96)), 25.0) << name;
        EXPECT_TRUE(p.host().logContains(std::string("codec ") + name)) << name;
        if (std::string(name) == "svt") {
            // SVT-AV1 cannot do tiny or odd 4:2:0 pictures: a clear error, not a crash.
            const ds_status small =
                p.encode(desktopImage().frame(), 60, ds_rect{5, 5, 17, 9}, out, &err);
            EXPECT_EQ(small, DS_ERR_UNSUPPORTED);
            EXPECT_NE(err.find("at least 64x64"), std::string::npos) << err;
        }
    }
    EXPECT_GE(usable, 1) << "the installed libavif cannot encode with aom, rav1e or svt";
}

TEST(Avif, Yuv444KeepsMoreDetailThan420) {
    EncoderPlugin a("avif"), b("avif");
    std::string err;
    ASSERT_EQ(a.create({{"yuv", "420"}}, &err), DS_OK) << err;
    ASSERT_EQ(b.create({{"yuv", "444"}}, &err), DS_OK) << err;
    const ds_rect rect{1000, 420, 256, 160};  // yellow/white text on blue: chroma matters
    const Image expected = desktopImage().crop(rect.x, rect.y, rect.width, rect.height);
    ds_encoded o420{}, o444{};
    ASSERT_EQ(a.encode(desktopImage().frame(), 90, rect, o420, &err), DS_OK) << err;
    const double db420 = psnr(decodeAvif(o420.data, o420.size), expected);
    ASSERT_EQ(b.encode(desktopImage().frame(), 90, rect, o444, &err), DS_OK) << err;
    const double db444 = psnr(decodeAvif(o444.data, o444.size), expected);
    EXPECT_GT(db444, db420);
}

TEST(Avif, BadSettingsAreConfigErrors) {
    EncoderPlugin p("avif");
    std::string err;
    EXPECT_EQ(p.create({{"threads", "0"}}, &err), DS_ERR_CONFIG);
    EXPECT_NE(err.find("[encoder.avif] threads = 0"), std::string::npos) << err;
    EXPECT_EQ(p.create({{"codec", "x264"}}, &err), DS_ERR_CONFIG);
    EXPECT_NE(err.find("x264"), std::string::npos) << err;
    EXPECT_EQ(p.create({{"yuv", "422"}}, &err), DS_ERR_CONFIG);
}

}  // namespace
