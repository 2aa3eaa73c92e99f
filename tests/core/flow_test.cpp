// Agent flow control with a fake clock: window, drops, cumulative acks, quality rule, pacing.
#include "deskstream/core/flow.hpp"

#include <gtest/gtest.h>

#include <cmath>

using namespace deskstream::core;
using namespace std::chrono_literals;

namespace {
const TimePoint t0{10000000};
}

TEST(AgentFlow, FullWindowDropsTheNewFrameAndCountsIt) {
    FlowConfig c;
    c.maxInFlight = 3;
    AgentFlow f(c);
    EXPECT_TRUE(f.onFrameReady(1, t0));
    EXPECT_TRUE(f.onFrameReady(2, t0));
    EXPECT_TRUE(f.onFrameReady(3, t0));
    EXPECT_TRUE(f.windowFull());
    EXPECT_FALSE(f.onFrameReady(4, t0 + 1ms));
    EXPECT_FALSE(f.onFrameReady(5, t0 + 2ms));
    EXPECT_EQ(f.dropped(), 2u);
    EXPECT_EQ(f.inFlight(), 3u);  // never queued beyond the window
    EXPECT_EQ(f.sent(), 3u);
    f.onAck(1, t0 + 10ms);
    EXPECT_TRUE(f.onFrameReady(6, t0 + 11ms));
}

TEST(AgentFlow, AcksAreCumulative) {
    AgentFlow f;
    for (std::uint64_t n = 1; n <= 5; ++n) f.onFrameReady(n, t0);
    AckOutcome a = f.onAck(3, t0 + 50ms);
    EXPECT_TRUE(a.known);
    EXPECT_EQ(a.retired, 3u);
    EXPECT_EQ(a.latency, 50ms);
    EXPECT_EQ(f.inFlight(), 2u);
    AckOutcome late = f.onAck(2, t0 + 60ms);  // already retired
    EXPECT_FALSE(late.known);
    EXPECT_EQ(late.retired, 0u);
    EXPECT_EQ(f.acked(), 3u);
}

TEST(AgentFlow, QualityRule) {
    FlowConfig c;  // defaults: >500 ms -5, <100 ms with <3 in flight +2, [30, 90]
    c.quality = 75;
    AgentFlow f(c);
    f.onFrameReady(1, t0);
    AckOutcome slow = f.onAck(1, t0 + 501ms);
    EXPECT_EQ(slow.qualityChange, -5);
    EXPECT_EQ(f.quality(), 70);
    f.onFrameReady(2, t0);
    EXPECT_EQ(f.onAck(2, t0 + 500ms).qualityChange, 0);  // exactly 500: no change
    f.onFrameReady(3, t0);
    EXPECT_EQ(f.onAck(3, t0 + 99ms).qualityChange, +2);
    EXPECT_EQ(f.quality(), 72);
    f.onFrameReady(4, t0);
    EXPECT_EQ(f.onAck(4, t0 + 100ms).qualityChange, 0);  // exactly 100: no change
    // Fast, but 3 still in flight: no increase.
    for (std::uint64_t n = 5; n <= 8; ++n) f.onFrameReady(n, t0);
    EXPECT_EQ(f.onAck(5, t0 + 10ms).qualityChange, 0);
    EXPECT_EQ(f.inFlight(), 3u);
}

TEST(AgentFlow, QualityIsClamped) {
    FlowConfig c;
    c.quality = 32;
    c.qualityMin = 30;
    c.qualityMax = 33;
    AgentFlow f(c);
    f.onFrameReady(1, t0);
    EXPECT_EQ(f.onAck(1, t0 + 900ms).quality, 30);
    std::uint64_t n = 2;
    for (int i = 0; i < 5; ++i) {
        f.onFrameReady(n, t0);
        f.onAck(n++, t0 + 1ms);
    }
    EXPECT_EQ(f.quality(), 33);
    f.setQuality(100);
    EXPECT_EQ(f.quality(), 33);
    f.setQuality(0);
    EXPECT_EQ(f.quality(), 30);
}

TEST(AgentFlow, LostAcksDoNotJamTheWindow) {
    FlowConfig c;
    c.maxInFlight = 2;
    c.inFlightTimeout = 10s;
    AgentFlow f(c);
    f.onFrameReady(1, t0);
    f.onFrameReady(2, t0 + 1s);
    EXPECT_FALSE(f.onFrameReady(3, t0 + 9s));
    EXPECT_EQ(f.nextExpiry(), t0 + 10s);
    EXPECT_TRUE(f.onFrameReady(4, t0 + 10s));  // frame 1 expired exactly now
    EXPECT_EQ(f.lost(), 1u);
    EXPECT_EQ(f.onTick(t0 + 11s), 1u);
    EXPECT_EQ(f.lost(), 2u);
    f.reset();
    EXPECT_EQ(f.inFlight(), 0u);
    EXPECT_EQ(f.nextExpiry(), TimePoint::max());
}

TEST(AgentFlow, RelayWindowCanOnlyShrinkIt) {
    FlowConfig c;
    c.maxInFlight = 10;
    AgentFlow f(c);
    f.setRelayWindow(4);
    EXPECT_EQ(f.window(), 4);
    f.setRelayWindow(50);
    EXPECT_EQ(f.window(), 10);
}

TEST(AgentFlow, PacingAtFps) {
    FlowConfig c;
    c.fps = 10;
    AgentFlow f(c);
    EXPECT_TRUE(f.captureDue(t0));
    f.onCaptured(t0);
    EXPECT_EQ(f.nextCaptureAt(), t0 + 100ms);
    EXPECT_FALSE(f.captureDue(t0 + 99ms));
    EXPECT_TRUE(f.captureDue(t0 + 100ms));
    f.onCaptured(t0 + 130ms);  // a little late: the cadence is kept
    EXPECT_EQ(f.nextCaptureAt(), t0 + 200ms);
    f.onCaptured(t0 + 1000ms);  // far behind: restart from now, no burst
    EXPECT_EQ(f.nextCaptureAt(), t0 + 1100ms);
    f.setFps(5000);
    EXPECT_EQ(f.fps(), 1000);
    f.setFps(0);
    EXPECT_DOUBLE_EQ(f.fps(), 0.1);
    EXPECT_EQ(f.period(), 10s);
}
