#include "deskstream/core/abuse.hpp"

#include <algorithm>

namespace deskstream::core {

AbuseGuard::AbuseGuard(int maxStrikes, Duration window)
    : maxStrikes_(std::max(0, maxStrikes)), window_(window) {}

HeartbeatAction AbuseGuard::onBadInput(const Error& error, TimePoint now) {
    if (closed_) return HeartbeatAction::none();
    auto prune = [&](std::deque<TimePoint>& q) {
        while (!q.empty() && now - q.front() >= window_) q.pop_front();
    };
    prune(strikes_);
    prune(tooLarge_);
    strikes_.push_back(now);
    if (error.code == ErrorCode::TooLarge) {
        tooLarge_.push_back(now);
        if (tooLarge_.size() >= 2) {
            closed_ = true;
            return HeartbeatAction::close(close_code::kTooLarge, "message too large");
        }
    }
    if (static_cast<int>(strikes_.size()) > maxStrikes_) {
        closed_ = true;
        return HeartbeatAction::close(close_code::kPolicy, "too many bad messages");
    }
    return HeartbeatAction::none();
}

}  // namespace deskstream::core
