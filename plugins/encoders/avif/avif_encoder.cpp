// deskstream encoder plugin "avif": libavif, still AV1 pictures tuned for a live stream.
//
// Real-time defaults: speed 8 and 2 encoder threads. Speed 8 rather than 10 because on the 1080p
// test desktop (libavif 0.11.1 + aom 3.6) speed 8 took ~1.4x the time of 9/10 but produced a
// picture 7x smaller at a higher PSNR (docs/performance.md); 9 and 10 give identical output. Quality
// 0..100 maps linearly onto AV1's quantizer range 63..0 (min = max quantizer, so the quality is
// the one asked for). The YUV picture is kept between frames of the same size; the RGB->YUV
// conversion reads the caller's frame in place (pointer offset + stride), so a rectangle is
// never copied first. The 4th byte is ignored: desktops are opaque.
//
// The AV1 codec (aom, rav1e, svt) is chosen among those the installed libavif can encode with,
// asked at run time with avifCodecName(choice, AVIF_CODEC_FLAG_CAN_ENCODE).
#include "encoder_common.hpp"

#include <avif/avif.h>

#include <cmath>
#include <string>

namespace {

class AvifEncoder final : public deskstream::Encoder {
public:
    static constexpr ds_codec kCodec = DS_CODEC_AVIF;
    static constexpr const char* kLicense = "MIT";
    static constexpr const char* kVendor = "deskstream";
    static constexpr ds_config_key kConfigKeys[] = {
        {"speed", DS_CONFIG_INT, "8", 0, 10, nullptr,
         "libavif speed: 0 slowest/smallest .. 10 fastest (use 8-10 for a live stream)"},
        {"threads", DS_CONFIG_INT, "2", 1, 64, nullptr, "encoder threads (maxThreads)"},
        {"codec", DS_CONFIG_STRING, "auto", 1, 0, "auto|aom|rav1e|svt",
         "AV1 encoder; auto: libavif's first available one. Must be built into libavif"},
        {"yuv", DS_CONFIG_STRING, "420", 1, 0, "420|444",
         "chroma format: 420 smaller, 444 sharper coloured text"},
    };

    AvifEncoder(const deskstream::Host& host, const deskstream::Config& config) {
        speed_ =
            static_cast<int>(config.getInt("speed", 8, AVIF_SPEED_SLOWEST, AVIF_SPEED_FASTEST));
        threads_ = static_cast<int>(config.getInt("threads", 2, 1, 64));
        const std::string codec =
            ds_enc::getChoice(config, "codec", "auto", {"auto", "aom", "rav1e", "svt"});
        yuv_ = ds_enc::getChoice(config, "yuv", "420", {"420", "444"}) == "444"
                   ? AVIF_PIXEL_FORMAT_YUV444
                   : AVIF_PIXEL_FORMAT_YUV420;
        choice_ = codec == "auto" ? AVIF_CODEC_CHOICE_AUTO : avifCodecChoiceFromName(codec.c_str());
        const char* name = avifCodecName(choice_, AVIF_CODEC_FLAG_CAN_ENCODE);
        if (!name)
            throw deskstream::Error(DS_ERR_UNSUPPORTED,
                                    "[" + config.section() + "] codec = " + codec +
                                        ": this libavif cannot encode with it (available: " +
                                        availableEncoders() + ")");
        codecName_ = name;
        host.info("avif encoder ready: codec " + std::string(name) + " (libavif " + avifVersion() +
                  "), speed " + std::to_string(speed_) + ", threads " + std::to_string(threads_));
    }

    ~AvifEncoder() override {
        avifRWDataFree(&output_);
        if (image_) avifImageDestroy(image_);
    }

    AvifEncoder(const AvifEncoder&) = delete;
    AvifEncoder& operator=(const AvifEncoder&) = delete;

    // Comma-separated names of the AV1 encoders the installed libavif has.
    static std::string availableEncoders() {
        std::string list;
        for (avifCodecChoice c :
             {AVIF_CODEC_CHOICE_AOM, AVIF_CODEC_CHOICE_RAV1E, AVIF_CODEC_CHOICE_SVT}) {
            const char* n = avifCodecName(c, AVIF_CODEC_FLAG_CAN_ENCODE);
            if (n) list += (list.empty() ? "" : ", ") + std::string(n);
        }
        return list.empty() ? "none" : list;
    }

    void encode(const ds_frame& frame, const ds_encode_params& params, ds_encoded& out) override {
        const ds_enc::Region r = ds_enc::checkedRegion(frame, params);
        avifRWDataFree(&output_);  // the previous output's lifetime ends with this call
        // SVT-AV1 refuses these sizes with only a generic libavif error; say why up front.
        if (codecName_ == "svt" &&
            (r.width < 64 || r.height < 64 ||
             (yuv_ == AVIF_PIXEL_FORMAT_YUV420 && (r.width % 2 != 0 || r.height % 2 != 0))))
            throw deskstream::Error(DS_ERR_UNSUPPORTED,
                                    "codec svt cannot encode a " + std::to_string(r.width) + "x" +
                                        std::to_string(r.height) +
                                        " picture (needs at least 64x64, even sizes in 4:2:0); "
                                        "use codec = aom for small or odd rectangles");

        if (!image_ || image_->width != r.width || image_->height != r.height) {
            if (image_) avifImageDestroy(image_);
            image_ = avifImageCreate(r.width, r.height, 8, yuv_);
            if (!image_) throw deskstream::Error(DS_ERR_NO_MEMORY, "avifImageCreate failed");
        }

        avifRGBImage rgb;
        avifRGBImageSetDefaults(&rgb, image_);
        const bool isRgb = r.format == DS_PIXEL_RGBA || r.format == DS_PIXEL_RGBX;
        rgb.format = isRgb ? AVIF_RGB_FORMAT_RGBA : AVIF_RGB_FORMAT_BGRA;
        rgb.ignoreAlpha = AVIF_TRUE;
        // libavif's struct is not const-correct; avifImageRGBToYUV only reads these pixels.
        rgb.pixels = const_cast<uint8_t*>(r.data);
        rgb.rowBytes = r.stride;
        check(avifImageRGBToYUV(image_, &rgb), "avifImageRGBToYUV");

        // One encoder per picture: after avifEncoderWrite() a libavif encoder holds a finished
        // sequence and cannot start another one.
        avifEncoder* enc = avifEncoderCreate();
        if (!enc) throw deskstream::Error(DS_ERR_NO_MEMORY, "avifEncoderCreate failed");
        enc->codecChoice = choice_;
        enc->maxThreads = threads_;
        enc->speed = speed_;
        const int q = quantizer(params.quality);
        enc->minQuantizer = q;
        enc->maxQuantizer = q;
        const avifResult res = avifEncoderWrite(enc, image_, &output_);
        const std::string diag = enc->diag.error;
        avifEncoderDestroy(enc);
        if (res != AVIF_RESULT_OK)
            throw deskstream::Error(DS_ERR_INTERNAL, std::string("avifEncoderWrite failed: ") +
                                                         avifResultToString(res) +
                                                         (diag.empty() ? "" : " (" + diag + ")"));
        out.data = output_.data;
        out.size = output_.size;
        out.width = r.width;
        out.height = r.height;
        out.quality = params.quality;
    }

    void releaseOutput(ds_encoded&) override { avifRWDataFree(&output_); }

    // quality 100 -> quantizer 0 (best), quality 0 -> 63 (worst).
    static int quantizer(int quality) {
        const double q = (100.0 - quality) * AVIF_QUANTIZER_WORST_QUALITY / 100.0;
        return static_cast<int>(std::lround(q));
    }

private:
    static void check(avifResult r, const char* what) {
        if (r != AVIF_RESULT_OK)
            throw deskstream::Error(
                r == AVIF_RESULT_OUT_OF_MEMORY ? DS_ERR_NO_MEMORY : DS_ERR_INTERNAL,
                std::string(what) + " failed: " + avifResultToString(r));
    }

    int speed_ = 8;
    int threads_ = 2;
    avifPixelFormat yuv_ = AVIF_PIXEL_FORMAT_YUV420;
    avifCodecChoice choice_ = AVIF_CODEC_CHOICE_AUTO;
    std::string codecName_;  // the encoder libavif will use, e.g. "aom"
    avifImage* image_ = nullptr;
    avifRWData output_ = AVIF_DATA_EMPTY;
};

}  // namespace

DESKSTREAM_PLUGIN(AvifEncoder, "avif", "1.0.0", "AVIF (AV1 still picture) encoder on libavif")
