#include "deskstream/core/frame_order.hpp"

#include <string>

namespace deskstream::core {

FrameOrderCheck::FrameOrderCheck(const std::vector<int>& advertisedMonitors,
                                 std::uint64_t maxFrameBytes)
    : monitors_(advertisedMonitors.begin(), advertisedMonitors.end()),
      maxFrameBytes_(maxFrameBytes) {}

std::optional<Error> FrameOrderCheck::onFrame(const FrameHeader& header) {
    if (!monitors_.empty() && header.monitor != 0 && monitors_.count(header.monitor) == 0)
        return makeError(ErrorCode::BadRequest, "monitor",
                         "frame for monitor " + std::to_string(header.monitor) +
                             ", which the handshake did not advertise");
    if (header.frameNumber > kMaxFrameNumber)
        return makeError(ErrorCode::BadRequest, "frameNumber",
                         "frameNumber " + std::to_string(header.frameNumber) + " is above 2^53-1");
    if (header.frameNumber < last_)
        return makeError(ErrorCode::BadRequest, "frameNumber",
                         "frameNumber " + std::to_string(header.frameNumber) +
                             " goes backwards (last " + std::to_string(last_) + ")");
    const std::uint64_t size = std::uint64_t{header.headerLength} + header.payloadLength;
    const std::string frame = "frame " + std::to_string(header.frameNumber);
    if (started_ && header.frameNumber == last_) {
        // Another rect of the current frame.
        if (ended_)
            return makeError(ErrorCode::BadRequest, "frameNumber",
                             frame + " already ended (its last rect came before)");
        if (header.monitor != monitor_)
            return makeError(ErrorCode::BadRequest, "monitor",
                             frame + " mixes monitors " + std::to_string(monitor_) + " and " +
                                 std::to_string(header.monitor));
        if (header.screenWidth != screenWidth_ || header.screenHeight != screenHeight_)
            return makeError(ErrorCode::BadRequest, "screenWidth",
                             frame + " changes its screen size between rects");
        if (bytes_ + size > maxFrameBytes_)
            return makeError(
                ErrorCode::BadRequest, "payloadLength",
                frame + " exceeds " + std::to_string(maxFrameBytes_) + " bytes in all its rects");
        bytes_ += size;
    } else {
        started_ = true;
        last_ = header.frameNumber;
        monitor_ = header.monitor;
        screenWidth_ = header.screenWidth;
        screenHeight_ = header.screenHeight;
        bytes_ = size;
    }
    ended_ =
        (header.flags & frame_flags::kLastRect) != 0 || (header.flags & frame_flags::kPartial) == 0;
    return std::nullopt;
}

}  // namespace deskstream::core
