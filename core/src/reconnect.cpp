#include "deskstream/core/reconnect.hpp"

#include <algorithm>
#include <cmath>

namespace deskstream::core {

const char* toString(BreakerState s) {
    switch (s) {
        case BreakerState::Closed:
            return "closed";
        case BreakerState::Open:
            return "open";
        case BreakerState::HalfOpen:
            return "half-open";
    }
    return "?";
}

ReconnectPolicy::ReconnectPolicy(ReconnectOptions options, std::function<double()> uniform01)
    : options_(options), uniform01_(std::move(uniform01)) {
    options_.failureThreshold = std::max(1, options_.failureThreshold);
}

void ReconnectPolicy::setState(BreakerState s) {
    if (s != state_) {
        state_ = s;
        changed_ = s;
    }
}

std::optional<BreakerState> ReconnectPolicy::takeStateChange() {
    auto c = changed_;
    changed_.reset();
    return c;
}

std::chrono::milliseconds ReconnectPolicy::onFailure() {
    ++failures_;
    if (state_ == BreakerState::HalfOpen || failures_ >= options_.failureThreshold) {
        setState(BreakerState::Open);
        return options_.openDuration;
    }
    // Full jitter: uniform in [0, min(cap, base * 2^(failures-1))].
    double cap = static_cast<double>(options_.maxDelay.count());
    double exp = static_cast<double>(options_.baseDelay.count()) * std::pow(2.0, failures_ - 1);
    double ceiling = std::min(cap, exp);
    double r = uniform01_ ? uniform01_() : 0.5;
    if (!(r >= 0.0 && r <= 1.0)) r = 0.5;  // garbage randomness (NaN, out of range): the midpoint
    return std::chrono::milliseconds(static_cast<std::int64_t>(r * ceiling));
}

void ReconnectPolicy::onSuccess() {
    failures_ = 0;
    setState(BreakerState::Closed);
}

void ReconnectPolicy::onAttempt() {
    if (state_ == BreakerState::Open) setState(BreakerState::HalfOpen);
}

}  // namespace deskstream::core
