// Input validation shared by the in-tree encoder plugins (jpeg, webp, avif).
//
// Header-only and SDK-only on purpose: each plugin stays a self-contained shared library that
// links nothing but the SDK and its own codec library. Everything here throws
// deskstream::Error, which the SDK adapter turns into a status code plus message.
#pragma once

#include "deskstream/plugin.hpp"

#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <string>

namespace ds_enc {

// The part of a frame an encoder reads: a pointer into the caller's frame plus its stride, so a
// rectangle is encoded in place (pointer offset + stride) without copying the frame first.
struct Region {
    const uint8_t* data;  // first pixel of the rectangle
    uint32_t width;
    uint32_t height;
    uint32_t stride;  // bytes per row of the SOURCE frame
    ds_pixel_format format;
};

inline const char* pixelFormatName(ds_pixel_format f) {
    switch (f) {
        case DS_PIXEL_BGRA:
            return "BGRA";
        case DS_PIXEL_BGRX:
            return "BGRX";
        case DS_PIXEL_RGBA:
            return "RGBA";
        case DS_PIXEL_RGBX:
            return "RGBX";
    }
    return "unknown";
}

// Validates frame + params as plugin.h requires and returns the rectangle to encode.
// All arithmetic is done in 64 bits so huge coordinates cannot wrap around.
inline Region checkedRegion(const ds_frame& frame, const ds_encode_params& params) {
    using deskstream::Error;
    if (!frame.data) throw Error(DS_ERR_INVALID_ARGUMENT, "frame has no pixel data (NULL)");
    if (frame.width == 0 || frame.height == 0)
        throw Error(DS_ERR_INVALID_ARGUMENT, "frame is empty (" + std::to_string(frame.width) +
                                                 "x" + std::to_string(frame.height) + ")");
    if (static_cast<uint64_t>(frame.stride) < static_cast<uint64_t>(frame.width) * 4)
        throw Error(DS_ERR_INVALID_ARGUMENT,
                    "frame stride " + std::to_string(frame.stride) +
                        " is smaller than width x 4 (" +
                        std::to_string(static_cast<uint64_t>(frame.width) * 4) + ")");
    // The format comes from C code and may hold any number: read it as an integer so that an
    // out-of-range value is rejected instead of being undefined behaviour as an enum load.
    static_assert(sizeof(ds_pixel_format) == sizeof(int32_t), "ds_pixel_format is 32-bit");
    int32_t format = 0;
    std::memcpy(&format, &frame.format, sizeof format);
    switch (format) {
        case DS_PIXEL_BGRA:
        case DS_PIXEL_BGRX:
        case DS_PIXEL_RGBA:
        case DS_PIXEL_RGBX:
            break;
        default:
            throw Error(DS_ERR_INVALID_ARGUMENT,
                        "unsupported pixel format " + std::to_string(format));
    }
    if (params.quality < 0 || params.quality > 100)
        throw Error(DS_ERR_INVALID_ARGUMENT,
                    "quality " + std::to_string(params.quality) + " is outside 0..100");

    ds_rect r = params.rect;
    if (r.width == 0 || r.height == 0) r = ds_rect{0, 0, frame.width, frame.height};
    if (static_cast<uint64_t>(r.x) + r.width > frame.width ||
        static_cast<uint64_t>(r.y) + r.height > frame.height)
        throw Error(DS_ERR_INVALID_ARGUMENT, "rectangle " + std::to_string(r.width) + "x" +
                                                 std::to_string(r.height) + "+" +
                                                 std::to_string(r.x) + "+" + std::to_string(r.y) +
                                                 " is outside the " + std::to_string(frame.width) +
                                                 "x" + std::to_string(frame.height) + " frame");
    Region out;
    out.data = frame.data + static_cast<size_t>(r.y) * frame.stride + static_cast<size_t>(r.x) * 4;
    out.width = r.width;
    out.height = r.height;
    out.stride = frame.stride;
    out.format = static_cast<ds_pixel_format>(format);
    return out;
}

// A string option restricted to a set of choices; error names section, key and value.
inline std::string getChoice(const deskstream::Config& config, const std::string& key,
                             const std::string& def, std::initializer_list<const char*> choices) {
    std::string v = config.getString(key, def);
    if (v.empty()) return def;
    std::string list;
    for (const char* c : choices) {
        if (v == c) return v;
        list += list.empty() ? c : std::string("|") + c;
    }
    throw deskstream::Error(DS_ERR_CONFIG, "[" + config.section() + "] " + key + " = '" + v +
                                               "' is not one of " + list);
}

}  // namespace ds_enc
