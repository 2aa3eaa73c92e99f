// deskstream core: per-connection checks of an agent's frame sequence (sans-IO).
//
// A well-formed header (frame_header.hpp) can still lie about its place in the stream. The relay
// refuses as a bad frame, never forwarding it (docs/protocol.md "Frames"):
//   * a monitor index the agent did not advertise in its handshake (0, the combined picture,
//     is always allowed; an agent that advertised no monitors may use any index);
//   * a frameNumber lower than the previous accepted one (rects of one frame share a number);
//   * a rect of a frame that already ended (its last rect, or a message that is not partial,
//     came before), or whose monitor or screen size differ from its frame's first rect;
//   * a rect that would make its frame larger than maxFrameBytes in all (the memory bound of a
//     queued frame stays that of one message, Invariant 2).
//   * a frameNumber above 2^53-1: viewers acknowledge it as a JSON number, which a browser only
//     represents exactly up to 2^53-1 (so a jump to 2^64-1 is refused).
#pragma once

#include "deskstream/core/frame_header.hpp"
#include "deskstream/core/types.hpp"

#include <cstdint>
#include <optional>
#include <set>
#include <vector>

namespace deskstream::core {

class FrameOrderCheck {
public:
    static constexpr std::uint64_t kMaxFrameNumber = (std::uint64_t{1} << 53) - 1;

    FrameOrderCheck() = default;
    /// The monitor indices of the agent's handshake; maxFrameBytes bounds the sum of one
    /// frame's messages (the relay passes its max_message_bytes).
    explicit FrameOrderCheck(const std::vector<int>& advertisedMonitors,
                             std::uint64_t maxFrameBytes = kDefaultMaxMessageBytes);

    /// nullopt: the frame may be forwarded (and becomes the latest); otherwise bad_request
    /// naming the header field, and the state is unchanged.
    std::optional<Error> onFrame(const FrameHeader& header);

    std::uint64_t lastFrameNumber() const { return last_; }

private:
    std::set<int> monitors_;
    std::uint64_t maxFrameBytes_ = kDefaultMaxMessageBytes;
    std::uint64_t last_ = 0;
    bool started_ = false;       // a frame was accepted
    bool ended_ = false;         // the frame `last_` has ended
    std::uint16_t monitor_ = 0;  // of frame `last_`
    std::uint32_t screenWidth_ = 0, screenHeight_ = 0;
    std::uint64_t bytes_ = 0;  // of frame `last_` so far
};

}  // namespace deskstream::core
