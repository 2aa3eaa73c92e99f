// Relay fan-out with a fake clock: shared buffers, bounded queues, latest-frame-wins, ack
// aggregation, a slow viewer never holding the others back.
#include "deskstream/core/fanout.hpp"

#include <gtest/gtest.h>

using namespace deskstream::core;
using namespace std::chrono_literals;

namespace {
const TimePoint t0{50000000};

FrameBuffer buf(std::size_t n = 1000) {
    return std::make_shared<const std::vector<std::uint8_t>>(n, 0x5A);
}
}  // namespace

TEST(FanOut, NoViewerAcksAtOnce) {
    FanOut f;
    FrameResult r = f.onFrame(buf(), 1, 0, true, t0);
    EXPECT_TRUE(r.wake.empty());
    ASSERT_EQ(r.acks.size(), 1u);
    EXPECT_EQ(r.acks[0], (AgentFrameAck{1, 0, 0}));
    EXPECT_EQ(f.pendingAcks(), 0u);
}

TEST(FanOut, FramesAreSharedNotCopied) {
    FanOut f;
    for (ConnId v = 1; v <= 100; ++v) f.addViewer(v);
    FrameBuffer b = buf(300000);
    FrameResult r = f.onFrame(b, 1, 0, true, t0);
    EXPECT_EQ(r.wake.size(), 100u);
    EXPECT_EQ(b.use_count(), 101);  // one buffer, 100 references
    auto q = f.pop(7, t0);
    ASSERT_TRUE(q);
    EXPECT_EQ(q->data.get(), b.get());
    EXPECT_EQ(q->frameNumber, 1u);
}

TEST(FanOut, AckAggregationWaitsForEveryHealthyViewer) {
    FanOut f;
    f.addViewer(1);
    f.addViewer(2);
    EXPECT_TRUE(f.onFrame(buf(), 10, 0, true, t0).acks.empty());
    f.pop(1, t0);
    f.pop(2, t0);
    EXPECT_TRUE(f.onViewerAck(1, 10, 30, t0 + 30ms).empty());
    auto acks = f.onViewerAck(2, 10, 45, t0 + 45ms);
    ASSERT_EQ(acks.size(), 1u);
    EXPECT_EQ(acks[0], (AgentFrameAck{10, 45, 2}));            // worst latency, 2 viewers
    EXPECT_TRUE(f.onViewerAck(2, 10, 45, t0 + 46ms).empty());  // duplicate: nothing
}

TEST(FanOut, MonitorFilterSkipsViewers) {
    FanOut f;
    f.addViewer(1, 0);
    f.addViewer(2, 1);
    FrameResult r = f.onFrame(buf(), 1, 1, true, t0);
    EXPECT_EQ(r.wake, std::vector<ConnId>{2});
    EXPECT_EQ(f.queued(1), 0u);
    auto acks = f.onViewerAck(2, 1, 5, t0);
    ASSERT_EQ(acks.size(), 1u);
    EXPECT_EQ(acks[0].viewers, 1);
}

TEST(FanOut, LaggardDropsItsWholeQueueForTheNewestFrameAndNeverBlocksTheOthers) {
    FanOutConfig c;
    c.viewerQueue = 3;
    FanOut f(c);
    f.addViewer(1);  // fast
    f.addViewer(2);  // never reads
    std::vector<AgentFrameAck> acksToAgent;
    for (std::uint64_t n = 1; n <= 10; ++n) {
        FrameResult r = f.onFrame(buf(), n, 0, true, t0 + n * 33ms);
        for (auto& a : r.acks) acksToAgent.push_back(a);
        auto q = f.pop(1, t0 + n * 33ms);
        ASSERT_TRUE(q);
        for (auto& a : f.onViewerAck(1, n, 10, t0 + n * 33ms + 10ms)) acksToAgent.push_back(a);
        EXPECT_LE(f.queued(2), 3u);  // bounded whatever happens
    }
    EXPECT_TRUE(f.lagging(2));
    EXPECT_FALSE(f.lagging(1));
    // Every frame was acked to the agent: the laggard did not hold anything back.
    ASSERT_EQ(acksToAgent.size(), 10u);
    for (std::uint64_t n = 1; n <= 10; ++n) EXPECT_EQ(acksToAgent[n - 1].frameNumber, n);
    // Drop-all (docs/protocol.md, docs/relay.md): a full queue loses ALL its undelivered frames
    // and holds only the newest. Queue 3: [1,2,3] -> 4 drops 3 -> [4,5,6] -> 7 drops 3 ->
    // [7,8,9] -> 10 drops 3 -> [10]. Drop-oldest would leave [8,9,10] with 7 dropped.
    auto q = f.pop(2, t0 + 1s);
    ASSERT_TRUE(q);
    EXPECT_EQ(q->frameNumber, 10u);
    EXPECT_FALSE(f.pop(2, t0 + 1s));
    auto st = f.viewerStats(2, t0 + 1s);
    ASSERT_TRUE(st);
    EXPECT_EQ(st->dropped, 9u);
    FanOutStats s = f.stats(t0 + 340ms);
    EXPECT_EQ(s.drops, st->dropped);
    EXPECT_EQ(s.laggingViewers, 1u);
    EXPECT_EQ(s.framesIn, 10u);
}

TEST(FanOut, PartialStreamDropAsksForAKeyframe) {
    FanOutConfig c;
    c.viewerQueue = 1;
    FanOut f(c);
    f.addViewer(1);
    EXPECT_FALSE(f.onFrame(buf(), 1, 0, true, t0).requestKeyframe);
    FrameResult r = f.onFrame(buf(), 2, 0, false, t0 + 1ms);
    EXPECT_EQ(r.dropped, 1u);
    EXPECT_TRUE(r.requestKeyframe);
    FrameResult k = f.onFrame(buf(), 3, 0, true, t0 + 2ms);
    EXPECT_EQ(k.dropped, 1u);
    EXPECT_FALSE(k.requestKeyframe);  // the new frame is a key frame itself
}

TEST(FanOut, SilentViewerIsSkippedAfterTheAckTimeout) {
    FanOutConfig c;
    c.ackTimeout = 2s;
    FanOut f(c);
    f.addViewer(1);
    f.addViewer(2);
    f.onFrame(buf(), 1, 0, true, t0);
    f.pop(1, t0);
    f.pop(2, t0);
    EXPECT_TRUE(f.onViewerAck(1, 1, 5, t0 + 5ms).empty());
    EXPECT_EQ(f.nextDeadline(), t0 + 2s);
    EXPECT_TRUE(f.onTick(t0 + 2s - 1us).empty());
    auto acks = f.onTick(t0 + 2s);
    ASSERT_EQ(acks.size(), 1u);
    EXPECT_EQ(acks[0], (AgentFrameAck{1, 5, 1}));
    EXPECT_TRUE(f.lagging(2));
    // Lagging viewers are not waited for...
    f.onFrame(buf(), 2, 0, true, t0 + 3s);
    f.pop(1, t0 + 3s);
    EXPECT_EQ(f.onViewerAck(1, 2, 5, t0 + 3s).size(), 1u);
    // ...until they catch up (ack with an empty queue).
    f.pop(2, t0 + 3s);
    f.onViewerAck(2, 2, 900, t0 + 3s);
    EXPECT_FALSE(f.lagging(2));
    EXPECT_EQ(f.nextDeadline(), TimePoint::max());
}

TEST(FanOut, RemovingAViewerCompletesItsAcks) {
    FanOut f;
    f.addViewer(1);
    f.addViewer(2);
    f.onFrame(buf(), 1, 0, true, t0);
    f.onViewerAck(1, 1, 5, t0);
    auto acks = f.removeViewer(2);
    ASSERT_EQ(acks.size(), 1u);
    EXPECT_EQ(acks[0].viewers, 1);
    EXPECT_TRUE(f.removeViewer(2).empty());
    EXPECT_FALSE(f.pop(2, t0));
}

TEST(FanOut, AckTableIsBounded) {
    FanOutConfig c;
    c.maxPendingAcks = 4;
    c.viewerQueue = 100;
    FanOut f(c);
    f.addViewer(1);
    std::size_t acks = 0;
    for (std::uint64_t n = 1; n <= 50; ++n) acks += f.onFrame(buf(), n, 0, true, t0).acks.size();
    EXPECT_LE(f.pendingAcks(), 4u);
    EXPECT_EQ(acks, 46u);
}

TEST(FanOut, Statistics) {
    FanOut f;
    f.addViewer(1);
    for (int i = 0; i < 30; ++i) {
        f.onFrame(buf(), static_cast<std::uint64_t>(i + 1), 0, true, t0 + i * 33ms);
        f.pop(1, t0 + i * 33ms);
        f.onViewerAck(1, static_cast<std::uint64_t>(i + 1), i < 20 ? 10 : 100, t0 + i * 33ms);
    }
    FanOutStats s = f.stats(t0 + 990ms);
    EXPECT_EQ(s.fpsIn, 30);
    EXPECT_EQ(s.fpsOut, 30);
    ASSERT_TRUE(s.latencyP50Ms);
    EXPECT_EQ(*s.latencyP50Ms, 10);
    EXPECT_EQ(*s.latencyP95Ms, 100);
    EXPECT_EQ(f.stats(t0 + 10s).fpsIn, 0);
    EXPECT_EQ(s.acksToAgent, 30u);
}

TEST(FanOut, PerViewerRatesAndLatencies) {
    FanOut f;
    const TimePoint t0{std::chrono::seconds(100)};
    f.addViewer(1);
    f.addViewer(2);
    EXPECT_EQ(f.viewerIds(), (std::vector<ConnId>{1, 2}));
    auto bytes =
        std::make_shared<const std::vector<std::uint8_t>>(std::vector<std::uint8_t>(10, 1));
    for (std::uint64_t n = 1; n <= 20; ++n) {
        TimePoint now = t0 + std::chrono::milliseconds(50 * n);
        f.onFrame(bytes, n, 0, true, now);
        if (f.pop(1, now)) f.onViewerAck(1, n, 10 + static_cast<std::int64_t>(n), now);
        if (n % 2 == 0 && f.pop(2, now)) f.onViewerAck(2, n, 200, now);  // reads every other frame
    }
    const TimePoint end = t0 + std::chrono::milliseconds(1050);
    auto a = f.viewerStats(1, end);
    auto b = f.viewerStats(2, end);
    ASSERT_TRUE(a && b);
    EXPECT_EQ(a->fpsOut, 19.0);  // frames 2..20 fall within the last second
    EXPECT_EQ(b->fpsOut, 10.0);
    EXPECT_EQ(a->latencyP50Ms, 21);
    EXPECT_EQ(a->latencyP95Ms, 29);
    EXPECT_EQ(b->latencyP50Ms, 200);
    EXPECT_FALSE(f.viewerStats(3, end));
    EXPECT_EQ(f.viewerStats(1, end + std::chrono::seconds(5))->fpsOut, 0.0);  // idle since
}
