// Shared by tests/encoders and bench/encoders: the test picture (PNG via libpng), the codecs'
// own decoders, PSNR, and a thin owner of one encoder plugin instance loaded through the SDK.
#pragma once

#include "deskstream/plugin.h"
#include "ds_test/plugin_fixture.hpp"

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace ds_enc_test {

// A 4-bytes-per-pixel picture in memory (BGRX unless converted).
struct Image {
    uint32_t width = 0;
    uint32_t height = 0;
    uint32_t stride = 0;  // bytes per row
    ds_pixel_format format = DS_PIXEL_BGRX;
    std::vector<uint8_t> pixels;

    // A ds_frame borrowing this picture's pixels.
    ds_frame frame() const;
    // A copy of a rectangle (for comparisons; encoders themselves never copy).
    Image crop(uint32_t x, uint32_t y, uint32_t w, uint32_t h) const;
    // The same picture with R and B swapped and format RGBX.
    Image toRgbx() const;
    // The same picture in a buffer whose stride is larger than width*4 (padding bytes = 0xEE).
    Image withPadding(uint32_t extraBytes) const;
    const uint8_t* pixel(uint32_t x, uint32_t y) const {
        return pixels.data() + size_t(y) * stride + size_t(x) * 4;
    }
};

// Loads a PNG file with libpng into BGRX. Throws std::runtime_error with the reason.
Image loadPng(const std::string& path);
// /work/shared/data/desktop-1080p.png, loaded once per process.
const Image& desktopImage();

// The codecs' own decoders, to BGRX. Throw std::runtime_error when the data does not decode.
Image decodeJpeg(const uint8_t* data, size_t size);
Image decodeWebp(const uint8_t* data, size_t size);
Image decodeAvif(const uint8_t* data, size_t size);
Image decode(ds_codec codec, const uint8_t* data, size_t size);

// PSNR over the B, G, R channels (the 4th byte is ignored); +inf for identical pictures.
// Throws when the sizes differ.
double psnr(const Image& a, const Image& b);
// PSNR of luma only (BT.601 Y computed from R, G, B in double precision).
double psnrLuma(const Image& a, const Image& b);
// True when every B, G, R byte is equal.
bool sameRgb(const Image& a, const Image& b);

// One encoder instance of a built plugin (deskstream_encoder_<name>.so), created through the
// plugin's C entry point exactly as the host does.
class EncoderPlugin {
public:
    explicit EncoderPlugin(const std::string& name);
    const ds_plugin_descriptor& descriptor() const { return plugin_.descriptor(); }
    const ds_encoder_vtable& vtable() const { return plugin_.encoder(); }

    // create(); on failure returns the status and fills `error`.
    ds_status create(const std::map<std::string, std::string>& config, std::string* error);
    void destroy();
    ds_status encode(const ds_frame& frame, int quality, ds_rect rect, ds_encoded& out,
                     std::string* error);
    ~EncoderPlugin();
    EncoderPlugin(const EncoderPlugin&) = delete;
    EncoderPlugin& operator=(const EncoderPlugin&) = delete;

    ds_test::TestHost& host() { return host_; }

private:
    std::string name_;
    ds_test::LoadedPlugin plugin_;
    ds_test::TestHost host_;
    void* instance_ = nullptr;
};

}  // namespace ds_enc_test
