// A viewer's picture rebuilt from received rects (see ds_test/frame_canvas.hpp).
#include "ds_test/frame_canvas.hpp"

#include <turbojpeg.h>
#include <webp/decode.h>

#include <cctype>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>

namespace ds_test {

std::string drawRect(Canvas& canvas, int codec, std::uint32_t screenWidth,
                     std::uint32_t screenHeight, std::uint32_t x, std::uint32_t y,
                     std::uint32_t width, std::uint32_t height, const std::uint8_t* payload,
                     std::size_t size) {
    if (canvas.width != screenWidth || canvas.height != screenHeight) {
        canvas.width = screenWidth;
        canvas.height = screenHeight;
        canvas.bgra.assign(std::size_t{screenWidth} * screenHeight * 4, 0);
    }
    if (std::uint64_t{x} + width > screenWidth || std::uint64_t{y} + height > screenHeight)
        return "rect outside the screen";
    const std::size_t stride = std::size_t{screenWidth} * 4;
    std::uint8_t* dst = canvas.bgra.data() + y * stride + std::size_t{x} * 4;
    switch (codec) {
        case 1: {  // JPEG, straight into the canvas at the rect
            tjhandle tj = tjInitDecompress();
            int w = 0, h = 0, subsamp = 0, colorspace = 0;
            std::string error;
            if (tjDecompressHeader3(tj, payload, static_cast<unsigned long>(size), &w, &h, &subsamp,
                                    &colorspace) != 0)
                error = std::string("jpeg header: ") + tjGetErrorStr2(tj);
            else if (static_cast<std::uint32_t>(w) != width ||
                     static_cast<std::uint32_t>(h) != height)
                error = "jpeg size differs from the rect";
            else if (tjDecompress2(tj, payload, static_cast<unsigned long>(size), dst, w,
                                   static_cast<int>(stride), h, TJPF_BGRA, 0) != 0)
                error = std::string("jpeg: ") + tjGetErrorStr2(tj);
            tjDestroy(tj);
            return error;
        }
        case 2: {  // WebP
            int w = 0, h = 0;
            if (!WebPGetInfo(payload, size, &w, &h)) return "webp header";
            if (static_cast<std::uint32_t>(w) != width || static_cast<std::uint32_t>(h) != height)
                return "webp size differs from the rect";
            std::vector<std::uint8_t> tmp(std::size_t{width} * height * 4);
            if (!WebPDecodeBGRAInto(payload, size, tmp.data(), tmp.size(),
                                    static_cast<int>(width * 4)))
                return "webp decode";
            for (std::uint32_t row = 0; row < height; ++row)
                std::memcpy(dst + row * stride, &tmp[std::size_t{row} * width * 4],
                            std::size_t{width} * 4);
            return "";
        }
        case 5: {  // raw BGRA
            if (size != std::size_t{width} * height * 4) return "raw size";
            for (std::uint32_t row = 0; row < height; ++row)
                std::memcpy(dst + row * stride, payload + std::size_t{row} * width * 4,
                            std::size_t{width} * 4);
            return "";
        }
        default:
            return "codec " + std::to_string(codec) + " not decoded by the test viewer";
    }
}

double psnrRgb(const std::vector<std::uint8_t>& a, const std::vector<std::uint8_t>& b) {
    if (a.size() != b.size() || a.empty()) return -1;
    double sum = 0;
    std::size_t n = 0;
    for (std::size_t i = 0; i < a.size(); i += 4)
        for (int c = 0; c < 3; ++c, ++n) {
            const double d = double(a[i + c]) - double(b[i + c]);
            sum += d * d;
        }
    if (sum == 0) return std::numeric_limits<double>::infinity();
    return 10.0 * std::log10(255.0 * 255.0 / (sum / double(n)));
}

Canvas readPpm(const std::string& path) {
    Canvas c;
    std::ifstream in(path, std::ios::binary);
    if (!in) return c;
    auto token = [&in]() {
        std::string t;
        char ch;
        while (in.get(ch)) {
            if (ch == '#') {
                std::string skip;
                std::getline(in, skip);
            } else if (std::isspace(static_cast<unsigned char>(ch))) {
                if (!t.empty()) break;
            } else {
                t += ch;
            }
        }
        return t;
    };
    const std::string magic = token(), w = token(), h = token(), maxval = token();
    if (magic != "P6" || maxval != "255") return c;
    const std::uint32_t width = static_cast<std::uint32_t>(std::stoul(w));
    const std::uint32_t height = static_cast<std::uint32_t>(std::stoul(h));
    std::vector<char> rgb(std::size_t{width} * height * 3);
    if (!in.read(rgb.data(), static_cast<std::streamsize>(rgb.size()))) return c;
    c.width = width;
    c.height = height;
    c.bgra.resize(std::size_t{width} * height * 4);
    for (std::size_t i = 0, n = std::size_t{width} * height; i < n; ++i) {
        c.bgra[i * 4 + 0] = static_cast<std::uint8_t>(rgb[i * 3 + 2]);
        c.bgra[i * 4 + 1] = static_cast<std::uint8_t>(rgb[i * 3 + 1]);
        c.bgra[i * 4 + 2] = static_cast<std::uint8_t>(rgb[i * 3 + 0]);
        c.bgra[i * 4 + 3] = 255;
    }
    return c;
}

}  // namespace ds_test
