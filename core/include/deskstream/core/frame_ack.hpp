// deskstream core: the cheap paths for a viewer's frame_ack, the relay's most frequent message
// (one per frame per viewer; docs/protocol.md, "frame_ack" and "Binary frame_ack").
//
// parseFrameAckFast reads the usual JSON form of a viewer's frame_ack without building a JSON
// object: a flat object whose keys are type, desktopClientId, frameNumber, latency and
// optionally monitor, in any order, string values without escapes, integers without sign,
// fraction or exponent, and every value in range. Anything else (an unusual but maybe valid
// form, or an invalid one) returns nullopt and parseMessage's full decoder decides, so the
// answer is always the full decoder's: when the fast path returns an ack, the full decoder
// returns the same ack.
//
// The binary ack is the compact form a viewer may send instead (a binary WebSocket message):
//   0   1  magic 0xAC
//   1   8  frameNumber, unsigned, big-endian
//   9   4  latency in ms, unsigned, big-endian, 0..3600000
//  13   2  monitor, big-endian; 0xFFFF: not given
//  15   1  n, length of desktopClientId, 1..128
//  16   n  desktopClientId ([A-Za-z0-9._-])
#pragma once

#include "deskstream/core/protocol.hpp"
#include "deskstream/core/types.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace deskstream::core {

std::optional<ViewerFrameAck> parseFrameAckFast(const std::string& text);

constexpr std::uint8_t kBinaryAckMagic = 0xAC;
constexpr std::size_t kBinaryAckFixedBytes = 16;
constexpr std::uint16_t kBinaryAckNoMonitor = 0xFFFF;

// A binary message that claims to be an ack (its first byte is the magic).
inline bool isBinaryAck(const std::uint8_t* data, std::size_t size) {
    return size >= 1 && data[0] == kBinaryAckMagic;
}
// bad_request naming the field when the layout or a value is wrong.
Result<ViewerFrameAck> decodeBinaryAck(const std::uint8_t* data, std::size_t size);
std::vector<std::uint8_t> encodeBinaryAck(const ViewerFrameAck& ack);

}  // namespace deskstream::core
