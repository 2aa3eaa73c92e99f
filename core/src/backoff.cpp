#include "deskstream/core/backoff.hpp"

#include <algorithm>
#include <cmath>

namespace deskstream::core {

ReconnectBackoff::ReconnectBackoff(BackoffConfig config) : config_(config) {
    config_.initial = std::max(config_.initial, Duration(1));
    config_.max = std::max(config_.max, config_.initial);
    config_.factor = std::max(1.0, config_.factor);
    config_.jitter = std::clamp(config_.jitter, 0.0, 1.0);
}

Duration ReconnectBackoff::next(double random01) {
    const double r = std::isfinite(random01) ? std::clamp(random01, 0.0, 1.0) : 0.5;
    // In double: factor^n overflows to inf long before int64, and min() takes care of it.
    const double base = std::min(static_cast<double>(config_.max.count()),
                                 static_cast<double>(config_.initial.count()) *
                                     std::pow(config_.factor, attempts_));
    if (attempts_ < 1000) ++attempts_;
    const double jittered = base * (1.0 + config_.jitter * (2.0 * r - 1.0));
    const double capped = std::clamp(jittered, 1.0, static_cast<double>(config_.max.count()));
    return Duration(static_cast<Duration::rep>(capped));
}

}  // namespace deskstream::core
