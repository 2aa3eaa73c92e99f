// A viewer's picture rebuilt from the frames it receives, as the browser viewer composes them
// (docs/viewer.md): each message's payload (JPEG, WebP, raw BGRA) is decoded and drawn at its
// rect; a new screen size starts a new canvas. Decodes with libturbojpeg and libwebp.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ds_test {

struct Canvas {
    std::uint32_t width = 0, height = 0;
    std::vector<std::uint8_t> bgra;  // stride width * 4; alpha 255
};

/// Draws the payload of one frame message (header already decoded by the caller) at its rect.
/// Returns "" or why it could not (unknown codec, corrupt payload, size mismatch).
std::string drawRect(Canvas& canvas, int codec, std::uint32_t screenWidth,
                     std::uint32_t screenHeight, std::uint32_t x, std::uint32_t y,
                     std::uint32_t width, std::uint32_t height, const std::uint8_t* payload,
                     std::size_t size);

/// PSNR over the R, G and B samples of two same-sized BGRA pictures (infinity when equal).
double psnrRgb(const std::vector<std::uint8_t>& a, const std::vector<std::uint8_t>& b);

/// Reads a binary PPM (P6, maxval 255) into BGRA; empty on failure.
Canvas readPpm(const std::string& path);

}  // namespace ds_test
