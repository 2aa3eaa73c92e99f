// deskstream core: per-connection checks of an agent's frame sequence (sans-IO).
//
// A well-formed header (frame_header.hpp) can still lie about its place in the stream. The relay
// refuses as a bad frame, never forwarding it (docs/protocol.md "Frames"):
//   * a monitor index the agent did not advertise in its handshake (0, the combined picture,
//     is always allowed; an agent that advertised no monitors may use any index);
//   * a frameNumber lower than the previous accepted one (rects of one frame share a number);
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
    /// The monitor indices of the agent's handshake.
    explicit FrameOrderCheck(const std::vector<int>& advertisedMonitors);

    /// nullopt: the frame may be forwarded (and becomes the latest); otherwise bad_request
    /// naming the header field, and the state is unchanged.
    std::optional<Error> onFrame(const FrameHeader& header);

    std::uint64_t lastFrameNumber() const { return last_; }

private:
    std::set<int> monitors_;
    std::uint64_t last_ = 0;
};

}  // namespace deskstream::core
