// Fuzz target frame_header: one WebSocket binary message into the frame decoder (decodeFrame,
// decodeFrameChecked, rewriteStreamId, the peek* readers). Promises checked (docs/protocol.md,
// "Frames"): an accepted frame satisfies every rule the relay relies on before forwarding
// (payloadLength matches, the rect lies inside a non-empty screen); re-encoding its header
// decodes to the same header; the size limit holds; rewriting the streamId changes nothing else.
#include "targets.hpp"

#include "deskstream/core/frame_header.hpp"

#include <vector>

namespace deskstream::fuzz {

using namespace deskstream::core;

void frameHeader(const std::uint8_t* data, std::size_t size) {
    const DecodedFrame d = decodeFrame(data, size, 0);  // no size limit
    Result<FrameHeader> checked = decodeFrameChecked(data, size, 0);
    DS_FUZZ_CHECK(checked.ok() == d.ok, "decodeFrameChecked agrees with decodeFrame");
    if (!checked.ok()) DS_FUZZ_CHECK(!checked.error().message.empty(), "a rejection says why");

    // The size limit comes first and is exact (maxBytes 0 means no limit).
    if (size > 1) {
        DS_FUZZ_CHECK(decodeFrame(data, size, size - 1).error == FrameError::TooLarge,
                      "a message over maxBytes is too_large");
        DS_FUZZ_CHECK(decodeFrame(data, size, size).ok == d.ok, "maxBytes == size is allowed");
    }

    if (d.ok) {
        const FrameHeader& h = d.header;
        DS_FUZZ_CHECK(size >= kFrameHeaderSize, "accepted frames hold a whole header");
        DS_FUZZ_CHECK(h.headerLength >= kFrameHeaderSize && h.headerLength <= size,
                      "headerLength within the message");
        DS_FUZZ_CHECK(std::uint64_t{h.payloadLength} + h.headerLength == size,
                      "payloadLength matches the message size");
        DS_FUZZ_CHECK(static_cast<unsigned>(h.codec) >= 1 && static_cast<unsigned>(h.codec) <= 5,
                      "known codec");
        DS_FUZZ_CHECK(h.quality <= 100, "quality 0..100");
        DS_FUZZ_CHECK(h.rectWidth > 0 && h.rectHeight > 0, "non-empty rect");
        DS_FUZZ_CHECK(std::uint64_t{h.rectX} + h.rectWidth <= h.screenWidth &&
                          std::uint64_t{h.rectY} + h.rectHeight <= h.screenHeight,
                      "rect inside the screen");

        // Re-encode the header in front of the same extension bytes and payload.
        std::vector<std::uint8_t> copy(data, data + size);
        encodeFrameHeader(h, copy.data());
        const DecodedFrame again = decodeFrame(copy.data(), copy.size(), 0);
        DS_FUZZ_CHECK(again.ok && again.header == h, "decode(encode(header)) == header");
    }

    // The relay's in-place streamId rewrite.
    std::vector<std::uint8_t> rewritten(data, data + size);
    const bool wrote = rewriteStreamId(rewritten.data(), rewritten.size(), 0xA5C3E1F7u);
    DS_FUZZ_CHECK(wrote == (size >= kFrameHeaderSize), "rewrite only when a header is there");
    if (wrote) {
        DS_FUZZ_CHECK(peekStreamId(rewritten.data()) == 0xA5C3E1F7u, "streamId rewritten");
        DS_FUZZ_CHECK(peekFrameNumber(rewritten.data()) == peekFrameNumber(data) &&
                          peekMonitor(rewritten.data()) == peekMonitor(data),
                      "nothing else changes");
        const DecodedFrame after = decodeFrame(rewritten.data(), rewritten.size(), 0);
        DS_FUZZ_CHECK(after.ok == d.ok, "the streamId does not decide validity");
    }
}

}  // namespace deskstream::fuzz
