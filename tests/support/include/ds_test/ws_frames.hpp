// WebSocket frames as a client puts them on the wire (RFC 6455 section 5.2), for the codec's unit
// tests and the relay's conformance tests: one builder, so both suites feed the same bytes.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

namespace ds_test::ws_frames {

using Bytes = std::vector<std::uint8_t>;

constexpr std::uint8_t kFin = 0x80;
// Any fixed key works: the receiver unmasks with the key it reads from the frame.
constexpr std::uint8_t kMask[4] = {0x37, 0xFA, 0x21, 0x3D};

inline Bytes bytesOf(const std::string& s) { return Bytes(s.begin(), s.end()); }

// A client frame: b0 is FIN/RSV/opcode as sent; the payload is masked unless `masked` is false.
// lengthForm forces the 7-bit (0), 16-bit (126) or 64-bit (127) length encoding; -1 = shortest.
inline Bytes clientFrame(std::uint8_t b0, const Bytes& payload, bool masked = true,
                         int lengthForm = -1) {
    Bytes f{b0};
    const std::uint64_t n = payload.size();
    const int form = lengthForm >= 0 ? lengthForm : n < 126 ? 0 : n <= 0xFFFF ? 126 : 127;
    const std::uint8_t maskBit = masked ? 0x80 : 0x00;
    if (form == 0) {
        f.push_back(static_cast<std::uint8_t>(maskBit | n));
    } else if (form == 126) {
        f.push_back(maskBit | 126);
        f.push_back(static_cast<std::uint8_t>(n >> 8));
        f.push_back(static_cast<std::uint8_t>(n));
    } else {
        f.push_back(maskBit | 127);
        for (int i = 7; i >= 0; --i) f.push_back(static_cast<std::uint8_t>(n >> (8 * i)));
    }
    if (masked) f.insert(f.end(), kMask, kMask + 4);
    for (std::size_t i = 0; i < payload.size(); ++i) {
        f.push_back(masked ? static_cast<std::uint8_t>(payload[i] ^ kMask[i % 4]) : payload[i]);
    }
    return f;
}

// Just a masked header declaring `length` bytes (64-bit form), with no payload.
inline Bytes headerOnly(std::uint8_t b0, std::uint64_t length) {
    Bytes f{b0, 0x80 | 127};
    for (int i = 7; i >= 0; --i) f.push_back(static_cast<std::uint8_t>(length >> (8 * i)));
    f.insert(f.end(), kMask, kMask + 4);
    return f;
}

// A close frame's payload: the 2-byte status code, then the UTF-8 reason.
inline Bytes closePayload(std::uint16_t code, const std::string& reason = "") {
    Bytes p{static_cast<std::uint8_t>(code >> 8), static_cast<std::uint8_t>(code)};
    p.insert(p.end(), reason.begin(), reason.end());
    return p;
}

inline Bytes concat(std::initializer_list<Bytes> parts) {
    Bytes all;
    for (const auto& p : parts) all.insert(all.end(), p.begin(), p.end());
    return all;
}

}  // namespace ds_test::ws_frames
