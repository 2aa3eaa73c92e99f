// Side-by-side composition of several monitors (see compositor.hpp).
#include "compositor.hpp"

#include <algorithm>
#include <cstring>

namespace deskstream::agent {

ds_frame composeSideBySide(const std::vector<const ds_frame*>& frames,
                           std::vector<std::uint8_t>& picture, std::uint64_t captureTimeUs) {
    std::uint32_t width = 0, height = 0;
    for (const ds_frame* f : frames) {
        width += f->width;
        height = std::max(height, f->height);
    }
    const std::size_t stride = static_cast<std::size_t>(width) * 4;
    picture.assign(stride * height, 0);
    std::size_t xOffset = 0;
    for (const ds_frame* f : frames) {
        for (std::uint32_t y = 0; y < f->height; ++y)
            std::memcpy(picture.data() + y * stride + xOffset * 4,
                        f->data + static_cast<std::size_t>(y) * f->stride,
                        static_cast<std::size_t>(f->width) * 4);
        xOffset += f->width;
    }
    ds_frame out{};
    out.struct_size = sizeof(ds_frame);
    out.width = width;
    out.height = height;
    out.stride = static_cast<std::uint32_t>(stride);
    out.format = frames.empty() ? DS_PIXEL_BGRA : frames.front()->format;
    out.data = picture.data();
    out.capture_time_us = captureTimeUs;
    return out;
}

}  // namespace deskstream::agent
