#include "deskstream/core/frame_order.hpp"

#include <string>

namespace deskstream::core {

FrameOrderCheck::FrameOrderCheck(const std::vector<int>& advertisedMonitors)
    : monitors_(advertisedMonitors.begin(), advertisedMonitors.end()) {}

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
    last_ = header.frameNumber;
    return std::nullopt;
}

}  // namespace deskstream::core
