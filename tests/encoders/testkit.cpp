#include "ds_encoders_test/testkit.hpp"

#include <avif/avif.h>
#include <png.h>
#include <turbojpeg.h>
#include <webp/decode.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>

namespace ds_enc_test {

ds_frame Image::frame() const {
    ds_frame f{};
    f.struct_size = sizeof(ds_frame);
    f.width = width;
    f.height = height;
    f.stride = stride;
    f.format = format;
    f.data = pixels.data();
    return f;
}

Image Image::crop(uint32_t x, uint32_t y, uint32_t w, uint32_t h) const {
    if (uint64_t(x) + w > width || uint64_t(y) + h > height)
        throw std::runtime_error("crop outside image");
    Image out;
    out.width = w;
    out.height = h;
    out.stride = w * 4;
    out.format = format;
    out.pixels.resize(size_t(out.stride) * h);
    for (uint32_t row = 0; row < h; ++row)
        std::memcpy(out.pixels.data() + size_t(row) * out.stride, pixel(x, y + row), size_t(w) * 4);
    return out;
}

Image Image::toRgbx() const {
    Image out = *this;
    out.format = DS_PIXEL_RGBX;
    for (uint32_t y = 0; y < height; ++y)
        for (uint32_t x = 0; x < width; ++x) {
            uint8_t* p = out.pixels.data() + size_t(y) * stride + size_t(x) * 4;
            std::swap(p[0], p[2]);
        }
    return out;
}

Image Image::withPadding(uint32_t extraBytes) const {
    Image out;
    out.width = width;
    out.height = height;
    out.format = format;
    out.stride = width * 4 + extraBytes;
    out.pixels.assign(size_t(out.stride) * height, 0xEE);
    for (uint32_t y = 0; y < height; ++y)
        std::memcpy(out.pixels.data() + size_t(y) * out.stride, pixel(0, y), size_t(width) * 4);
    return out;
}

Image loadPng(const std::string& path) {
    png_image png;
    std::memset(&png, 0, sizeof png);
    png.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&png, path.c_str()))
        throw std::runtime_error("cannot read PNG " + path + ": " + png.message);
    png.format = PNG_FORMAT_BGRA;  // opaque sources get alpha 255
    Image img;
    img.width = png.width;
    img.height = png.height;
    img.stride = png.width * 4;
    img.format = DS_PIXEL_BGRX;
    img.pixels.resize(PNG_IMAGE_SIZE(png));
    if (!png_image_finish_read(&png, nullptr, img.pixels.data(),
                               static_cast<png_int_32>(img.stride), nullptr)) {
        std::string msg = png.message;
        png_image_free(&png);
        throw std::runtime_error("cannot decode PNG " + path + ": " + msg);
    }
    return img;
}

const Image& desktopImage() {
    static const Image img = loadPng(ds_test::sharedDataPath("desktop-1080p.png"));
    return img;
}

static Image blank(uint32_t w, uint32_t h) {
    Image img;
    img.width = w;
    img.height = h;
    img.stride = w * 4;
    img.pixels.resize(size_t(img.stride) * h);
    return img;
}

Image decodeJpeg(const uint8_t* data, size_t size) {
    tjhandle h = tjInitDecompress();
    if (!h) throw std::runtime_error("tjInitDecompress failed");
    int w = 0, ht = 0, ss = 0, cs = 0;
    if (tjDecompressHeader3(h, data, static_cast<unsigned long>(size), &w, &ht, &ss, &cs) != 0) {
        std::string e = tjGetErrorStr2(h);
        tjDestroy(h);
        throw std::runtime_error("JPEG header does not decode: " + e);
    }
    Image img = blank(static_cast<uint32_t>(w), static_cast<uint32_t>(ht));
    int rc = tjDecompress2(h, data, static_cast<unsigned long>(size), img.pixels.data(), w,
                           static_cast<int>(img.stride), ht, TJPF_BGRX, 0);
    std::string e = rc != 0 ? tjGetErrorStr2(h) : "";
    tjDestroy(h);
    if (rc != 0) throw std::runtime_error("JPEG does not decode: " + e);
    return img;
}

Image decodeWebp(const uint8_t* data, size_t size) {
    int w = 0, h = 0;
    if (!WebPGetInfo(data, size, &w, &h)) throw std::runtime_error("WebP header does not decode");
    Image img = blank(static_cast<uint32_t>(w), static_cast<uint32_t>(h));
    if (!WebPDecodeBGRAInto(data, size, img.pixels.data(), img.pixels.size(),
                            static_cast<int>(img.stride)))
        throw std::runtime_error("WebP does not decode");
    return img;
}

Image decodeAvif(const uint8_t* data, size_t size) {
    avifDecoder* dec = avifDecoderCreate();
    if (!dec) throw std::runtime_error("avifDecoderCreate failed");
    avifImage* yuv = avifImageCreateEmpty();
    avifResult r = avifDecoderReadMemory(dec, yuv, data, size);
    if (r != AVIF_RESULT_OK) {
        avifImageDestroy(yuv);
        avifDecoderDestroy(dec);
        throw std::runtime_error(std::string("AVIF does not decode: ") + avifResultToString(r));
    }
    Image img = blank(yuv->width, yuv->height);
    avifRGBImage rgb;
    avifRGBImageSetDefaults(&rgb, yuv);
    rgb.format = AVIF_RGB_FORMAT_BGRA;
    rgb.depth = 8;
    rgb.pixels = img.pixels.data();
    rgb.rowBytes = img.stride;
    r = avifImageYUVToRGB(yuv, &rgb);
    avifImageDestroy(yuv);
    avifDecoderDestroy(dec);
    if (r != AVIF_RESULT_OK)
        throw std::runtime_error(std::string("AVIF YUV->RGB failed: ") + avifResultToString(r));
    return img;
}

Image decode(ds_codec codec, const uint8_t* data, size_t size) {
    switch (codec) {
        case DS_CODEC_JPEG:
            return decodeJpeg(data, size);
        case DS_CODEC_WEBP:
            return decodeWebp(data, size);
        case DS_CODEC_AVIF:
            return decodeAvif(data, size);
        default:
            throw std::runtime_error("no decoder for codec " + std::to_string(codec));
    }
}

static void sameSize(const Image& a, const Image& b) {
    if (a.width != b.width || a.height != b.height)
        throw std::runtime_error("pictures differ in size: " + std::to_string(a.width) + "x" +
                                 std::to_string(a.height) + " vs " + std::to_string(b.width) + "x" +
                                 std::to_string(b.height));
}

// Byte offsets of B, G, R in a pixel of the given format.
static void channelOrder(ds_pixel_format f, int out[3]) {
    const bool rgb = f == DS_PIXEL_RGBA || f == DS_PIXEL_RGBX;
    out[0] = rgb ? 2 : 0;
    out[1] = 1;
    out[2] = rgb ? 0 : 2;
}

double psnr(const Image& a, const Image& b) {
    sameSize(a, b);
    int ca[3], cb[3];
    channelOrder(a.format, ca);
    channelOrder(b.format, cb);
    double sse = 0;
    for (uint32_t y = 0; y < a.height; ++y)
        for (uint32_t x = 0; x < a.width; ++x) {
            const uint8_t *p = a.pixel(x, y), *q = b.pixel(x, y);
            for (int c = 0; c < 3; ++c) {
                const double d = double(p[ca[c]]) - double(q[cb[c]]);
                sse += d * d;
            }
        }
    if (sse == 0) return std::numeric_limits<double>::infinity();
    const double mse = sse / (double(a.width) * a.height * 3);
    return 10.0 * std::log10(255.0 * 255.0 / mse);
}

double psnrLuma(const Image& a, const Image& b) {
    sameSize(a, b);
    int ca[3], cb[3];
    channelOrder(a.format, ca);
    channelOrder(b.format, cb);
    double sse = 0;
    for (uint32_t y = 0; y < a.height; ++y)
        for (uint32_t x = 0; x < a.width; ++x) {
            const uint8_t *p = a.pixel(x, y), *q = b.pixel(x, y);
            const double ya = 0.114 * p[ca[0]] + 0.587 * p[ca[1]] + 0.299 * p[ca[2]];
            const double yb = 0.114 * q[cb[0]] + 0.587 * q[cb[1]] + 0.299 * q[cb[2]];
            sse += (ya - yb) * (ya - yb);
        }
    if (sse == 0) return std::numeric_limits<double>::infinity();
    const double mse = sse / (double(a.width) * a.height);
    return 10.0 * std::log10(255.0 * 255.0 / mse);
}

bool sameRgb(const Image& a, const Image& b) { return std::isinf(psnr(a, b)); }

EncoderPlugin::EncoderPlugin(const std::string& name)
    : name_(name), plugin_(ds_test::pluginPath("encoder", name)) {}

EncoderPlugin::~EncoderPlugin() { destroy(); }

ds_status EncoderPlugin::create(const std::map<std::string, std::string>& config,
                                std::string* error) {
    destroy();
    ds_test::TestConfig cfg("encoder." + name_, config);
    char err[512] = "";
    ds_status s = vtable().create(host_.api(), cfg.get(), &instance_, err, sizeof err);
    if (s != DS_OK) {
        instance_ = nullptr;
        if (error) *error = err;
    }
    return s;
}

void EncoderPlugin::destroy() {
    if (instance_) vtable().destroy(instance_);
    instance_ = nullptr;
}

ds_status EncoderPlugin::encode(const ds_frame& frame, int quality, ds_rect rect, ds_encoded& out,
                                std::string* error) {
    ds_encode_params p{};
    p.struct_size = sizeof p;
    p.quality = quality;
    p.keyframe = 1;
    p.rect = rect;
    char err[512] = "";
    out = ds_encoded{};
    ds_status s = vtable().encode(instance_, &frame, &p, &out, err, sizeof err);
    if (s != DS_OK && error) *error = err;
    return s;
}

}  // namespace ds_enc_test
