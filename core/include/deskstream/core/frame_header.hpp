// deskstream core: the 64-byte little-endian binary frame header (docs/protocol.md, "Frames").
//
//  off size field                off size field
//   0   4  magic "DSF1"          30   1  quality 0..100
//   4   2  headerLength >= 64    31   1  reserved (0)
//   6   1  codec 1..5            32   4  screenWidth
//   7   1  flags                 36   4  screenHeight
//   8   8  frameNumber           40  16  rect x, y, width, height
//  16   8  captureTimeUs         56   4  payloadLength
//  24   4  streamId              60   4  reserved (0)
//  28   2  monitor
//
// Decoding validates everything the relay relies on before forwarding; the relay then
// overwrites streamId with its own value (rewriteStreamId) and forwards the bytes unchanged.
#pragma once

#include "deskstream/core/types.hpp"

#include <cstddef>
#include <cstdint>
#include <vector>

namespace deskstream::core {

constexpr std::size_t kFrameHeaderSize = 64;
constexpr std::size_t kFrameStreamIdOffset = 24;
constexpr std::size_t kDefaultMaxMessageBytes = 16u * 1024u * 1024u;  // [relay] max_message_bytes

enum class FrameCodec : std::uint8_t { Jpeg = 1, Webp = 2, Avif = 3, Png = 4, RawBgra = 5 };
const char* toString(FrameCodec c);  // "jpeg", "webp", "avif", "png", "raw"

namespace frame_flags {
constexpr std::uint8_t kKey = 1u << 0;       // full picture (decodable alone)
constexpr std::uint8_t kPartial = 1u << 1;   // payload covers only `rect`
constexpr std::uint8_t kLastRect = 1u << 2;  // last rect of this frameNumber
}  // namespace frame_flags

struct FrameHeader {
    std::uint16_t headerLength = kFrameHeaderSize;
    FrameCodec codec = FrameCodec::Jpeg;
    std::uint8_t flags = 0;
    std::uint64_t frameNumber = 0;
    std::uint64_t captureTimeUs = 0;
    std::uint32_t streamId = 0;
    std::uint16_t monitor = 0;
    std::uint8_t quality = 0;
    std::uint32_t screenWidth = 0;
    std::uint32_t screenHeight = 0;
    std::uint32_t rectX = 0, rectY = 0, rectWidth = 0, rectHeight = 0;
    std::uint32_t payloadLength = 0;
    bool operator==(const FrameHeader& o) const;
};

/// Why a binary message was rejected.
enum class FrameError {
    TooShort,           // fewer than 64 bytes
    BadMagic,           // not "DSF1"
    BadHeaderLength,    // headerLength < 64 or > message size
    UnknownCodec,       // codec not 1..5
    BadQuality,         // quality > 100
    PayloadMismatch,    // payloadLength != size - headerLength
    RectOutsideScreen,  // rect empty or not inside screenWidth x screenHeight, or empty screen
    TooLarge,           // message over maxBytes (protocol code too_large, close 1009)
};
const char* toString(FrameError e);

/// Writes the 64 header bytes (headerLength forced to at least 64; bytes 64..headerLength-1,
/// if any, are the caller's). `out` must have room for 64 bytes.
void encodeFrameHeader(const FrameHeader& h, std::uint8_t* out);

/// Builds a complete message: header (headerLength = 64, payloadLength = payload size) + payload.
std::vector<std::uint8_t> buildFrame(FrameHeader h, const std::uint8_t* payload,
                                     std::size_t payloadSize);

struct DecodedFrame {
    FrameHeader header;
    FrameError error = FrameError::TooShort;  // meaningful when !ok
    bool ok = false;
};

/// Decodes and validates a whole binary message (header + payload). Never reads past `size`.
/// maxBytes = 0 disables the size limit.
DecodedFrame decodeFrame(const std::uint8_t* data, std::size_t size,
                         std::size_t maxBytes = kDefaultMaxMessageBytes);

/// Same as decodeFrame but as a Result with the protocol error code (too_large for TooLarge,
/// bad_request otherwise) and a message naming the field.
Result<FrameHeader> decodeFrameChecked(const std::uint8_t* data, std::size_t size,
                                       std::size_t maxBytes = kDefaultMaxMessageBytes);

/// Overwrites streamId in place (4 bytes at offset 24). False (nothing written) when size < 64.
bool rewriteStreamId(std::uint8_t* data, std::size_t size, std::uint32_t streamId);

/// Reads streamId / frameNumber / monitor without full validation (size must be >= 64).
std::uint32_t peekStreamId(const std::uint8_t* data);
std::uint64_t peekFrameNumber(const std::uint8_t* data);
std::uint16_t peekMonitor(const std::uint8_t* data);

}  // namespace deskstream::core
