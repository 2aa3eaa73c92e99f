// deskstream core: reconnect delays with exponential backoff and jitter (sans-IO).
//
// Agents (and, in JavaScript, the viewer page) reconnect after a lost connection with
//   delay(n) = min(max, initial * factor^n) * (1 + jitter * (2r - 1)),   r uniform in [0, 1)
// capped at max again; n counts failures since the last success (reset()). The randomness is a
// parameter so the rule is testable; the jitter spreads a crowd of agents that lost the same
// relay so they do not all come back in the same millisecond.
#pragma once

#include "deskstream/core/types.hpp"

namespace deskstream::core {

struct BackoffConfig {
    Duration initial = std::chrono::milliseconds(500);
    Duration max = std::chrono::seconds(30);
    double factor = 2.0;   // >= 1
    double jitter = 0.2;   // 0..1, fraction of the delay
};

class ReconnectBackoff {
public:
    explicit ReconnectBackoff(BackoffConfig config = {});
    /// The delay before the next attempt; `random01` uniform in [0, 1). Counts one failure.
    Duration next(double random01);
    /// A connection succeeded (registered): the next failure starts from `initial` again.
    void reset() { attempts_ = 0; }
    int attempts() const { return attempts_; }

private:
    BackoffConfig config_;
    int attempts_ = 0;
};

}  // namespace deskstream::core
