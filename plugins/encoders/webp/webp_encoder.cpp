// deskstream encoder plugin "webp": libwebp, lossy (VP8) or lossless (VP8L), or "auto".
//
// The picture is imported straight from the caller's frame with the stride-taking
// WebPPictureImport{BGRX,RGBX} calls, so a rectangle is read in place (pointer offset + stride)
// and the full frame is never copied. The 4th byte is ignored: a desktop is opaque, and
// dropping alpha keeps BGRA captures with garbage alpha (common on X11) from turning
// transparent. The encoded bytes are written into one vector per instance that keeps its
// capacity between frames.
//
// lossless = auto encodes a few small tiles of the picture both ways and keeps the mode whose
// tiles came out smaller: text and flat UI favour lossless, photos and video favour lossy. The
// tiles cover 0.8% of a 1080p frame (~1-2 ms, 5-10% of a frame's encode). It is the default because
// it always aims at the smallest output, which is also what the agent's adaptive quality wants:
// on the text-heavy test desktop lossless was 5x smaller and faster than lossy method 0.
#include "encoder_common.hpp"

#include <webp/encode.h>

#include <algorithm>
#include <string>
#include <vector>

namespace {

const char* webpErrorText(WebPEncodingError e) {
    switch (e) {
        case VP8_ENC_OK:
            return "ok";
        case VP8_ENC_ERROR_OUT_OF_MEMORY:
            return "out of memory";
        case VP8_ENC_ERROR_BITSTREAM_OUT_OF_MEMORY:
            return "bitstream out of memory";
        case VP8_ENC_ERROR_NULL_PARAMETER:
            return "null parameter";
        case VP8_ENC_ERROR_INVALID_CONFIGURATION:
            return "invalid configuration";
        case VP8_ENC_ERROR_BAD_DIMENSION:
            return "bad dimension (WebP allows at most 16383x16383)";
        case VP8_ENC_ERROR_PARTITION0_OVERFLOW:
            return "partition 0 overflow";
        case VP8_ENC_ERROR_PARTITION_OVERFLOW:
            return "partition overflow";
        case VP8_ENC_ERROR_BAD_WRITE:
            return "bad write";
        case VP8_ENC_ERROR_FILE_TOO_BIG:
            return "file too big";
        case VP8_ENC_ERROR_USER_ABORT:
            return "user abort";
        case VP8_ENC_ERROR_LAST:
            break;
    }
    return "unknown error";
}

class WebpEncoder final : public deskstream::Encoder {
public:
    static constexpr ds_codec kCodec = DS_CODEC_WEBP;
    static constexpr const char* kLicense = "MIT";
    static constexpr const char* kVendor = "deskstream";
    static constexpr ds_config_key kConfigKeys[] = {
        {"lossless", DS_CONFIG_STRING, "auto", 1, 0, "false|true|auto",
         "false: lossy VP8; true: lossless VP8L (exact pixels); auto: whichever is smaller for "
         "the picture, judged on a few sample tiles"},
        {"method", DS_CONFIG_INT, "0", 0, 6, nullptr, "lossy effort: 0 fastest .. 6 smallest"},
        {"lossless.level", DS_CONFIG_INT, "1", 0, 9, nullptr,
         "lossless effort (WebPConfigLosslessPreset): 0 fastest .. 9 smallest"},
    };

    enum class Mode { Lossy, Lossless, Auto };

    WebpEncoder(const deskstream::Host& host, const deskstream::Config& config) {
        const std::string mode =
            ds_enc::getChoice(config, "lossless", "auto", {"false", "true", "auto"});
        mode_ = mode == "true" ? Mode::Lossless : mode == "auto" ? Mode::Auto : Mode::Lossy;
        const int method = static_cast<int>(config.getInt("method", 0, 0, 6));
        const int level = static_cast<int>(config.getInt("lossless.level", 1, 0, 9));

        if (!WebPConfigInit(&lossy_) || !WebPConfigInit(&lossless_))
            throw deskstream::Error(DS_ERR_UNSUPPORTED,
                                    "libwebp version mismatch (WebPConfigInit)");
        lossy_.method = method;
        if (!WebPConfigLosslessPreset(&lossless_, level))
            throw deskstream::Error(
                DS_ERR_CONFIG, "[" + config.section() + "] lossless.level rejected by libwebp");
        lossless_.exact = 1;  // keep RGB bit-exact (alpha is opaque anyway, see above)
        if (!WebPValidateConfig(&lossy_) || !WebPValidateConfig(&lossless_))
            throw deskstream::Error(DS_ERR_CONFIG,
                                    "[" + config.section() + "] invalid WebP settings");
        host.debug("webp encoder ready: lossless " + mode + ", method " + std::to_string(method) +
                   ", lossless.level " + std::to_string(level));
    }

    void encode(const ds_frame& frame, const ds_encode_params& params, ds_encoded& out) override {
        const ds_enc::Region r = ds_enc::checkedRegion(frame, params);
        if (r.width > WEBP_MAX_DIMENSION || r.height > WEBP_MAX_DIMENSION)
            throw deskstream::Error(DS_ERR_INVALID_ARGUMENT,
                                    "picture larger than WebP's 16383 limit");

        bool lossless = mode_ == Mode::Lossless;
        if (mode_ == Mode::Auto) lossless = losslessIsSmaller(r, params.quality);

        WebPConfig cfg = lossless ? lossless_ : lossy_;
        if (!lossless) cfg.quality = static_cast<float>(params.quality);
        output_.clear();  // keeps its capacity: no reallocation once the largest frame was seen
        encodeInto(cfg, r, &appendWriter, &output_);

        out.data = output_.data();
        out.size = output_.size();
        out.width = r.width;
        out.height = r.height;
        out.quality = lossless ? 100 : params.quality;
    }

private:
    static int appendWriter(const uint8_t* data, size_t size, const WebPPicture* pic) {
        auto* buf = static_cast<std::vector<uint8_t>*>(pic->custom_ptr);
        buf->insert(buf->end(), data, data + size);
        return 1;
    }

    static int countWriter(const uint8_t*, size_t size, const WebPPicture* pic) {
        *static_cast<size_t*>(pic->custom_ptr) += size;
        return 1;
    }

    // Imports r (in place, by stride) and encodes it with cfg through writer.
    static void encodeInto(const WebPConfig& cfg, const ds_enc::Region& r,
                           WebPWriterFunction writer, void* custom) {
        WebPPicture pic;
        if (!WebPPictureInit(&pic))
            throw deskstream::Error(DS_ERR_UNSUPPORTED,
                                    "libwebp version mismatch (WebPPictureInit)");
        pic.use_argb =
            cfg.lossless;  // lossless works on ARGB, lossy on YUV: import straight into it
        pic.width = static_cast<int>(r.width);
        pic.height = static_cast<int>(r.height);
        pic.writer = writer;
        pic.custom_ptr = custom;
        const int stride = static_cast<int>(r.stride);
        const bool rgb = r.format == DS_PIXEL_RGBA || r.format == DS_PIXEL_RGBX;
        const int ok = rgb ? WebPPictureImportRGBX(&pic, r.data, stride)
                           : WebPPictureImportBGRX(&pic, r.data, stride);
        if (!ok) {
            WebPPictureFree(&pic);
            throw deskstream::Error(DS_ERR_NO_MEMORY, "WebPPictureImport failed (out of memory)");
        }
        const int encoded = WebPEncode(&cfg, &pic);
        const WebPEncodingError error = pic.error_code;
        WebPPictureFree(&pic);
        if (!encoded)
            throw deskstream::Error(DS_ERR_INTERNAL,
                                    std::string("WebPEncode failed: ") + webpErrorText(error));
    }

    // The cheap judgement behind lossless = auto: up to 4 tiles spread over the picture are
    // encoded both ways (sizes counted, nothing stored); lossless wins ties.
    bool losslessIsSmaller(const ds_enc::Region& r, int quality) const {
        const uint32_t tw = std::min<uint32_t>(kTile, r.width);
        const uint32_t th = std::min<uint32_t>(kTile, r.height);
        WebPConfig lossy = lossy_;
        lossy.quality = static_cast<float>(quality);
        size_t lossySize = 0, losslessSize = 0;
        for (int i = 0; i < 4; ++i) {
            // Tile centres at 1/4 and 3/4 of each axis, clamped inside the picture.
            const uint32_t cx = r.width * (i % 2 == 0 ? 1u : 3u) / 4;
            const uint32_t cy = r.height * (i / 2 == 0 ? 1u : 3u) / 4;
            const uint32_t x = std::min(cx > tw / 2 ? cx - tw / 2 : 0u, r.width - tw);
            const uint32_t y = std::min(cy > th / 2 ? cy - th / 2 : 0u, r.height - th);
            ds_enc::Region tile = r;
            tile.data = r.data + static_cast<size_t>(y) * r.stride + static_cast<size_t>(x) * 4;
            tile.width = tw;
            tile.height = th;
            encodeInto(lossy, tile, &countWriter, &lossySize);
            encodeInto(lossless_, tile, &countWriter, &losslessSize);
            if (tw == r.width && th == r.height) break;  // the picture is a single tile
        }
        return losslessSize <= lossySize;
    }

    static constexpr uint32_t kTile = 64;

    Mode mode_ = Mode::Auto;
    WebPConfig lossy_{};
    WebPConfig lossless_{};
    std::vector<uint8_t> output_;
};

}  // namespace

DESKSTREAM_PLUGIN(WebpEncoder, "webp", "1.0.0", "WebP encoder on libwebp (lossy, lossless or auto)")
