#include "deskstream/core/frame_header.hpp"

#include <cstring>
#include <string>

namespace deskstream::core {
namespace {

// Explicit little-endian access: independent of host byte order and alignment.
void put16(std::uint8_t* p, std::uint16_t v) {
    p[0] = static_cast<std::uint8_t>(v);
    p[1] = static_cast<std::uint8_t>(v >> 8);
}
void put32(std::uint8_t* p, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) p[i] = static_cast<std::uint8_t>(v >> (8 * i));
}
void put64(std::uint8_t* p, std::uint64_t v) {
    for (int i = 0; i < 8; ++i) p[i] = static_cast<std::uint8_t>(v >> (8 * i));
}
std::uint16_t get16(const std::uint8_t* p) {
    return static_cast<std::uint16_t>(p[0] | (p[1] << 8));
}
std::uint32_t get32(const std::uint8_t* p) {
    std::uint32_t v = 0;
    for (int i = 3; i >= 0; --i) v = (v << 8) | p[i];
    return v;
}
std::uint64_t get64(const std::uint8_t* p) {
    std::uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
    return v;
}

constexpr std::uint8_t kMagic[4] = {'D', 'S', 'F', '1'};

DecodedFrame fail(FrameError e, const FrameHeader& h = {}) {
    DecodedFrame d;
    d.header = h;
    d.error = e;
    d.ok = false;
    return d;
}

}  // namespace

const char* toString(FrameCodec c) {
    switch (c) {
        case FrameCodec::Jpeg:
            return "jpeg";
        case FrameCodec::Webp:
            return "webp";
        case FrameCodec::Avif:
            return "avif";
        case FrameCodec::Png:
            return "png";
        case FrameCodec::RawBgra:
            return "raw";
    }
    return "unknown";
}

const char* toString(FrameError e) {
    switch (e) {
        case FrameError::TooShort:
            return "frame shorter than the 64-byte header";
        case FrameError::BadMagic:
            return "bad magic (expected DSF1)";
        case FrameError::BadHeaderLength:
            return "headerLength below 64 or beyond the message";
        case FrameError::UnknownCodec:
            return "unknown codec (expected 1..5)";
        case FrameError::BadQuality:
            return "quality above 100";
        case FrameError::PayloadMismatch:
            return "payloadLength disagrees with the message size";
        case FrameError::RectOutsideScreen:
            return "rect empty or outside the screen";
        case FrameError::TooLarge:
            return "frame larger than the maximum message size";
    }
    return "bad frame";
}

bool FrameHeader::operator==(const FrameHeader& o) const {
    return headerLength == o.headerLength && codec == o.codec && flags == o.flags &&
           frameNumber == o.frameNumber && captureTimeUs == o.captureTimeUs &&
           streamId == o.streamId && monitor == o.monitor && quality == o.quality &&
           screenWidth == o.screenWidth && screenHeight == o.screenHeight && rectX == o.rectX &&
           rectY == o.rectY && rectWidth == o.rectWidth && rectHeight == o.rectHeight &&
           payloadLength == o.payloadLength;
}

void encodeFrameHeader(const FrameHeader& h, std::uint8_t* out) {
    std::memset(out, 0, kFrameHeaderSize);
    std::memcpy(out, kMagic, 4);
    put16(out + 4, h.headerLength < kFrameHeaderSize ? static_cast<std::uint16_t>(kFrameHeaderSize)
                                                     : h.headerLength);
    out[6] = static_cast<std::uint8_t>(h.codec);
    out[7] = h.flags;
    put64(out + 8, h.frameNumber);
    put64(out + 16, h.captureTimeUs);
    put32(out + 24, h.streamId);
    put16(out + 28, h.monitor);
    out[30] = h.quality;
    out[31] = 0;
    put32(out + 32, h.screenWidth);
    put32(out + 36, h.screenHeight);
    put32(out + 40, h.rectX);
    put32(out + 44, h.rectY);
    put32(out + 48, h.rectWidth);
    put32(out + 52, h.rectHeight);
    put32(out + 56, h.payloadLength);
    put32(out + 60, 0);
}

std::vector<std::uint8_t> buildFrame(FrameHeader h, const std::uint8_t* payload,
                                     std::size_t payloadSize) {
    h.headerLength = static_cast<std::uint16_t>(kFrameHeaderSize);
    h.payloadLength = static_cast<std::uint32_t>(payloadSize);
    std::vector<std::uint8_t> out(kFrameHeaderSize + payloadSize);
    encodeFrameHeader(h, out.data());
    if (payloadSize != 0) std::memcpy(out.data() + kFrameHeaderSize, payload, payloadSize);
    return out;
}

DecodedFrame decodeFrame(const std::uint8_t* data, std::size_t size, std::size_t maxBytes) {
    // Size limit first: the cheapest check, and the one with its own close code (1009).
    if (maxBytes != 0 && size > maxBytes) return fail(FrameError::TooLarge);
    if (data == nullptr || size < kFrameHeaderSize) return fail(FrameError::TooShort);
    if (std::memcmp(data, kMagic, 4) != 0) return fail(FrameError::BadMagic);

    FrameHeader h;
    h.headerLength = get16(data + 4);
    h.codec = static_cast<FrameCodec>(data[6]);
    h.flags = data[7];
    h.frameNumber = get64(data + 8);
    h.captureTimeUs = get64(data + 16);
    h.streamId = get32(data + 24);
    h.monitor = get16(data + 28);
    h.quality = data[30];
    h.screenWidth = get32(data + 32);
    h.screenHeight = get32(data + 36);
    h.rectX = get32(data + 40);
    h.rectY = get32(data + 44);
    h.rectWidth = get32(data + 48);
    h.rectHeight = get32(data + 52);
    h.payloadLength = get32(data + 56);

    if (h.headerLength < kFrameHeaderSize || h.headerLength > size)
        return fail(FrameError::BadHeaderLength, h);
    if (data[6] < 1 || data[6] > 5) return fail(FrameError::UnknownCodec, h);
    if (h.quality > 100) return fail(FrameError::BadQuality, h);
    if (static_cast<std::uint64_t>(h.payloadLength) != size - h.headerLength)
        return fail(FrameError::PayloadMismatch, h);
    // 64-bit sums: x + width cannot wrap.
    const std::uint64_t right = std::uint64_t{h.rectX} + h.rectWidth;
    const std::uint64_t bottom = std::uint64_t{h.rectY} + h.rectHeight;
    if (h.screenWidth == 0 || h.screenHeight == 0 || h.rectWidth == 0 || h.rectHeight == 0 ||
        right > h.screenWidth || bottom > h.screenHeight)
        return fail(FrameError::RectOutsideScreen, h);

    DecodedFrame d;
    d.header = h;
    d.ok = true;
    return d;
}

Result<FrameHeader> decodeFrameChecked(const std::uint8_t* data, std::size_t size,
                                       std::size_t maxBytes) {
    DecodedFrame d = decodeFrame(data, size, maxBytes);
    if (d.ok) return d.header;
    static const char* const fields[] = {"header",  "magic",         "headerLength", "codec",
                                         "quality", "payloadLength", "rect",         "size"};
    const auto idx = static_cast<std::size_t>(d.error);
    ErrorCode code = d.error == FrameError::TooLarge ? ErrorCode::TooLarge : ErrorCode::BadRequest;
    std::string msg = std::string("binary frame rejected: ") + toString(d.error);
    if (d.error == FrameError::TooLarge)
        msg += " (" + std::to_string(size) + " > " + std::to_string(maxBytes) + " bytes)";
    return makeError(code, idx < 8 ? fields[idx] : "header", msg);
}

bool rewriteStreamId(std::uint8_t* data, std::size_t size, std::uint32_t streamId) {
    if (data == nullptr || size < kFrameHeaderSize) return false;
    put32(data + kFrameStreamIdOffset, streamId);
    return true;
}

std::uint32_t peekStreamId(const std::uint8_t* data) { return get32(data + 24); }
std::uint64_t peekFrameNumber(const std::uint8_t* data) { return get64(data + 8); }
std::uint16_t peekMonitor(const std::uint8_t* data) { return get16(data + 28); }

}  // namespace deskstream::core
