// Reconnection policy: full-jitter exponential backoff and the circuit breaker's state changes.
#include "deskstream/core/reconnect.hpp"

#include <cmath>

#include <gtest/gtest.h>

using namespace deskstream::core;
using std::chrono::milliseconds;

namespace {
ReconnectOptions opts() {
    ReconnectOptions o;
    o.baseDelay = milliseconds(100);
    o.maxDelay = milliseconds(1000);
    o.failureThreshold = 5;
    o.openDuration = milliseconds(30000);
    return o;
}
}  // namespace

TEST(ReconnectPolicy, BackoffDoublesUpToTheCapWithFullJitter) {
    double r = 0.999999;  // the top of the jitter range shows the ceiling
    ReconnectOptions o = opts();
    o.failureThreshold = 100;
    ReconnectPolicy p(o, [&] { return r; });
    EXPECT_EQ(p.onFailure(), milliseconds(99));   // ceiling 100
    EXPECT_EQ(p.onFailure(), milliseconds(199));  // 200
    EXPECT_EQ(p.onFailure(), milliseconds(399));  // 400
    EXPECT_EQ(p.onFailure(), milliseconds(799));  // 800
    EXPECT_EQ(p.onFailure(), milliseconds(999));  // capped at 1000
    EXPECT_EQ(p.onFailure(), milliseconds(999));
    r = 0.0;  // the bottom of the range: full jitter may retry at once
    EXPECT_EQ(p.onFailure(), milliseconds(0));
}

TEST(ReconnectPolicy, BreakerOpensAfterThresholdAndReportsEachChangeOnce) {
    ReconnectPolicy p(opts(), [] { return 0.5; });
    for (int i = 0; i < 4; ++i) {
        p.onAttempt();
        EXPECT_LT(p.onFailure(), milliseconds(1000));
        EXPECT_FALSE(p.takeStateChange());  // no log line per attempt
    }
    p.onAttempt();
    EXPECT_EQ(p.onFailure(), milliseconds(30000));
    EXPECT_EQ(p.state(), BreakerState::Open);
    EXPECT_EQ(p.takeStateChange(), BreakerState::Open);
    EXPECT_FALSE(p.takeStateChange());

    p.onAttempt();  // after the open period: one probe
    EXPECT_EQ(p.state(), BreakerState::HalfOpen);
    EXPECT_EQ(p.takeStateChange(), BreakerState::HalfOpen);
    EXPECT_EQ(p.onFailure(), milliseconds(30000));  // the probe failed: open again
    EXPECT_EQ(p.takeStateChange(), BreakerState::Open);

    p.onAttempt();
    p.onSuccess();
    EXPECT_EQ(p.state(), BreakerState::Closed);
    EXPECT_EQ(p.consecutiveFailures(), 0);
    EXPECT_EQ(p.takeStateChange(), BreakerState::Closed);
}

TEST(ReconnectPolicy, NeverOverflowsAndToleratesGarbageRandomness) {
    ReconnectOptions o = opts();
    o.failureThreshold = 1000000;
    ReconnectPolicy p(o, [] { return std::nan(""); });
    for (int i = 0; i < 5000; ++i) EXPECT_LE(p.onFailure(), milliseconds(1000));
    EXPECT_EQ(p.onFailure(), milliseconds(500));  // NaN -> the middle of [0, cap]
}

TEST(ReconnectPolicy, SuccessResetsTheBackoff) {
    ReconnectPolicy p(opts(), [] { return 0.999999; });
    p.onFailure();
    p.onFailure();
    p.onSuccess();
    EXPECT_EQ(p.onFailure(), milliseconds(99));
}
