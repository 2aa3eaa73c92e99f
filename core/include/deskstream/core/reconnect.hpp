// deskstream core: reconnection policy — exponential backoff with full jitter behind a circuit
// breaker (sans-IO: time and randomness are passed in, so tests need no sleeps).
//
//   closed     every failure waits random(0, min(maxDelay, baseDelay * 2^attempt)) (full jitter,
//              so a relay restart is not met by every agent at the same instant);
//   open       after `failureThreshold` consecutive failures: wait `openDuration` before trying
//              again (a relay that is down for long is not hammered);
//   half-open  one probe attempt; success closes the breaker, failure opens it again.
// The policy reports state CHANGES so the agent logs once per change, not once per attempt.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

namespace deskstream::core {

struct ReconnectOptions {
    std::chrono::milliseconds baseDelay{500};
    std::chrono::milliseconds maxDelay{30000};
    int failureThreshold = 5;
    std::chrono::milliseconds openDuration{60000};
};

enum class BreakerState { Closed, Open, HalfOpen };
const char* toString(BreakerState s);

class ReconnectPolicy {
public:
    /// `uniform01` returns a uniformly distributed number in [0, 1).
    ReconnectPolicy(ReconnectOptions options, std::function<double()> uniform01);

    /// A connection attempt failed (connect error, handshake refused, connection lost before
    /// registration). Returns how long to wait before the next attempt.
    std::chrono::milliseconds onFailure();
    /// The connection succeeded (registered): the breaker closes, the backoff resets.
    void onSuccess();
    /// The next attempt is about to start (moves an open breaker to half-open).
    void onAttempt();

    BreakerState state() const { return state_; }
    int consecutiveFailures() const { return failures_; }
    /// Set when the last call changed the state; cleared by takeStateChange().
    std::optional<BreakerState> takeStateChange();

private:
    void setState(BreakerState s);

    ReconnectOptions options_;
    std::function<double()> uniform01_;
    BreakerState state_ = BreakerState::Closed;
    int failures_ = 0;
    std::optional<BreakerState> changed_;
};

}  // namespace deskstream::core
