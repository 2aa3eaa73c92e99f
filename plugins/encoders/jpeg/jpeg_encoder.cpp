// deskstream encoder plugin "jpeg": TurboJPEG (libjpeg-turbo).
//
// Steady state is allocation-free: one compressor handle per instance and one output buffer
// sized with tjBufSize() for the largest picture seen so far, handed to tjCompress2() with
// TJFLAG_NOREALLOC. Pixels are read straight from the caller's frame (BGRX/RGBX pixel formats,
// pitch = frame stride), so neither a colour conversion copy nor a rectangle copy is made.
#include "encoder_common.hpp"

#include <turbojpeg.h>

#include <climits>
#include <string>

namespace {

class JpegEncoder final : public deskstream::Encoder {
public:
    static constexpr ds_codec kCodec = DS_CODEC_JPEG;
    static constexpr const char* kLicense = "MIT";
    static constexpr const char* kVendor = "deskstream";
    static constexpr ds_config_key kConfigKeys[] = {
        {"subsampling", DS_CONFIG_STRING, "420", 1, 0, "420|422|444",
         "chroma subsampling: 420 smallest, 444 sharpest coloured text"},
    };

    JpegEncoder(const deskstream::Host& host, const deskstream::Config& config) {
        const std::string ss =
            ds_enc::getChoice(config, "subsampling", "420", {"420", "422", "444"});
        subsamp_ = ss == "444" ? TJSAMP_444 : ss == "422" ? TJSAMP_422 : TJSAMP_420;
        // TJFLAG_FASTDCT is not offered: with libjpeg-turbo 2.1.5's SIMD DCT it produced
        // byte-identical output at the same speed on the test picture.
        flags_ = TJFLAG_NOREALLOC;
        handle_ = tjInitCompress();
        if (!handle_)
            throw deskstream::Error(
                DS_ERR_INTERNAL, std::string("tjInitCompress failed: ") + tjGetErrorStr2(nullptr));
        host.debug("jpeg encoder ready: subsampling " + ss);
    }

    ~JpegEncoder() override {
        if (buffer_) tjFree(buffer_);
        if (handle_) tjDestroy(handle_);
    }

    JpegEncoder(const JpegEncoder&) = delete;
    JpegEncoder& operator=(const JpegEncoder&) = delete;

    void encode(const ds_frame& frame, const ds_encode_params& params, ds_encoded& out) override {
        const ds_enc::Region r = ds_enc::checkedRegion(frame, params);
        if (r.width > kMaxDim || r.height > kMaxDim)
            throw deskstream::Error(DS_ERR_INVALID_ARGUMENT,
                                    "picture larger than JPEG's 65535 limit");
        ensureBuffer(r.width, r.height);

        // TurboJPEG wants 1..100; 0 would be rejected, so the lowest quality is used instead.
        const int quality = params.quality < 1 ? 1 : params.quality;
        unsigned long size = capacity_;
        unsigned char* dst = buffer_;
        if (tjCompress2(handle_, r.data, static_cast<int>(r.width), static_cast<int>(r.stride),
                        static_cast<int>(r.height), pixelFormat(r.format), &dst, &size, subsamp_,
                        quality, flags_) != 0)
            throw deskstream::Error(DS_ERR_INTERNAL,
                                    std::string("tjCompress2 failed: ") + tjGetErrorStr2(handle_));
        out.data = dst;
        out.size = size;
        out.width = r.width;
        out.height = r.height;
        out.quality = quality;
    }

private:
    // JPEG has no alpha: the 4th byte is skipped either way, so the X formats serve A too.
    static int pixelFormat(ds_pixel_format f) {
        return (f == DS_PIXEL_RGBA || f == DS_PIXEL_RGBX) ? TJPF_RGBX : TJPF_BGRX;
    }

    static constexpr uint32_t kMaxDim = 65535;  // JPEG's SOF field is 16 bits

    // Grows the output buffer only when a bigger picture arrives; never shrinks it.
    void ensureBuffer(uint32_t width, uint32_t height) {
        const unsigned long need =
            tjBufSize(static_cast<int>(width), static_cast<int>(height), subsamp_);
        if (need == static_cast<unsigned long>(-1) || need > static_cast<unsigned long>(INT_MAX))
            throw deskstream::Error(DS_ERR_INVALID_ARGUMENT, "tjBufSize: picture too large");
        if (need <= capacity_) return;
        if (buffer_) tjFree(buffer_);
        buffer_ = nullptr;
        capacity_ = 0;
        buffer_ = tjAlloc(static_cast<int>(need));
        if (!buffer_) throw deskstream::Error(DS_ERR_NO_MEMORY, "cannot allocate the JPEG buffer");
        capacity_ = need;
    }

    tjhandle handle_ = nullptr;
    int subsamp_ = TJSAMP_420;
    int flags_ = 0;
    unsigned char* buffer_ = nullptr;
    unsigned long capacity_ = 0;
};

}  // namespace

DESKSTREAM_PLUGIN(JpegEncoder, "jpeg", "1.0.0", "JPEG encoder on libjpeg-turbo's TurboJPEG API")
