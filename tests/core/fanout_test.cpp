// Relay fan-out with a fake clock: shared buffers, bounded queues, latest-frame-wins, ack
// aggregation, a slow viewer never holding the others back; frames as sets of rects, no torn
// picture, key frame requests (issue 11).
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
    EXPECT_TRUE(r.wake.empty());  // frame 2 alone would tear the picture: not queued
    FrameResult k = f.onFrame(buf(), 3, 0, true, t0 + 2ms);
    EXPECT_EQ(k.dropped, 0u);
    EXPECT_FALSE(k.requestKeyframe);  // the new frame is a key frame itself
    EXPECT_EQ(k.wake, std::vector<ConnId>{1});
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

namespace {
// Sends frame `n` of monitor `m` as `rects` messages (the last one flagged), returns the
// results of each; every rect gets its own buffer so tests can tell them apart.
std::vector<FrameResult> sendFrame(FanOut& f, std::uint64_t n, std::uint16_t m, bool key, int rects,
                                   TimePoint now) {
    std::vector<FrameResult> out;
    for (int i = 0; i < rects; ++i)
        out.push_back(f.onRect(buf(100 + static_cast<std::size_t>(i)),
                               RectInfo{n, m, key, i == rects - 1}, now));
    return out;
}
std::size_t droppedBy(const std::vector<FrameResult>& rs) {
    std::size_t n = 0;
    for (auto& r : rs) n += r.dropped;
    return n;
}
bool requested(const std::vector<FrameResult>& rs) {
    for (auto& r : rs)
        if (r.requestKeyframe) return true;
    return false;
}
std::vector<AgentFrameAck> acksOf(const std::vector<FrameResult>& rs) {
    std::vector<AgentFrameAck> out;
    for (auto& r : rs) out.insert(out.end(), r.acks.begin(), r.acks.end());
    return out;
}
// Pops everything queued for `v`: (frameNumber, rect size) in order.
std::vector<std::pair<std::uint64_t, std::size_t>> drain(FanOut& f, ConnId v, TimePoint now) {
    std::vector<std::pair<std::uint64_t, std::size_t>> out;
    while (auto q = f.pop(v, now)) out.emplace_back(q->frameNumber, q->data->size());
    return out;
}
}  // namespace

TEST(FanOut, RectInfoComesFromTheHeaderFlags) {
    FrameHeader h;
    h.frameNumber = 9;
    h.monitor = 2;
    h.flags = frame_flags::kPartial;
    EXPECT_EQ(rectInfo(h).last, false);
    h.flags = frame_flags::kPartial | frame_flags::kLastRect | frame_flags::kKey;
    EXPECT_TRUE(rectInfo(h).last);
    EXPECT_TRUE(rectInfo(h).key);
    h.flags = 0;  // a whole picture in one message
    EXPECT_TRUE(rectInfo(h).last);
    EXPECT_FALSE(rectInfo(h).key);
    EXPECT_EQ(rectInfo(h).frameNumber, 9u);
    EXPECT_EQ(rectInfo(h).monitor, 2);
}

// The queue bound counts whole frames: three frames of four rects fit in a queue of 3; the
// fourth frame drops all three whole, and since it is partial the viewer takes none of it.
TEST(FanOut, TheQueueCountsWholeFramesAndDropsThemWhole) {
    FanOutConfig c;
    c.viewerQueue = 3;
    FanOut f(c);
    f.addViewer(1);
    sendFrame(f, 1, 0, true, 4, t0);
    sendFrame(f, 2, 0, false, 4, t0 + 1ms);
    sendFrame(f, 3, 0, false, 4, t0 + 2ms);
    EXPECT_EQ(f.queued(1), 3u);
    EXPECT_EQ(f.queuedRects(1), 12u);
    EXPECT_FALSE(f.lagging(1));
    auto fourth = sendFrame(f, 4, 0, false, 4, t0 + 3ms);
    EXPECT_EQ(droppedBy(fourth), 3u);  // frames, not rects
    EXPECT_TRUE(f.lagging(1));
    EXPECT_EQ(f.queuedRects(1), 0u);  // no rect of frame 4: it would tear the picture
    EXPECT_FALSE(f.synced(1, 0));
    EXPECT_TRUE(requested(fourth));
    auto st = f.viewerStats(1, t0 + 3ms);
    ASSERT_TRUE(st);
    EXPECT_EQ(st->dropped, 3u);
    // The next key frame reaches it whole, its rects in order.
    sendFrame(f, 5, 0, false, 2, t0 + 4ms);
    EXPECT_EQ(f.queuedRects(1), 0u);
    sendFrame(f, 6, 0, true, 3, t0 + 5ms);
    EXPECT_TRUE(f.synced(1, 0));
    auto got = drain(f, 1, t0 + 6ms);
    ASSERT_EQ(got.size(), 3u);
    for (std::size_t i = 0; i < 3; ++i)
        EXPECT_EQ(got[i], std::make_pair(std::uint64_t{6}, 100 + i));
    EXPECT_EQ(f.viewerStats(1, t0 + 6ms)->delivered, 1u);  // one frame handed over, 3 rects
}

// A frame that had begun to go out when the queue overflowed is lost too: its remaining
// rects are not sent, and the viewer waits for a key frame.
TEST(FanOut, AFramePartlySentWhenTheQueueOverflowsIsLostWhole) {
    FanOutConfig c;
    c.viewerQueue = 1;
    FanOut f(c);
    f.addViewer(1);
    sendFrame(f, 1, 0, true, 3, t0);
    ASSERT_TRUE(f.pop(1, t0));  // the writer sent the first rect of frame 1
    auto r = sendFrame(f, 2, 0, false, 2, t0 + 1ms);
    EXPECT_EQ(droppedBy(r), 1u);
    EXPECT_FALSE(f.pop(1, t0 + 1ms));
    EXPECT_TRUE(requested(r));
}

// The ack window counts frames: the agent gets one frame_ack per frame, after the viewer acked
// it (the viewer acks after its last rect), never one per rect.
TEST(FanOut, OneAckPerFrameAfterItsLastRect) {
    FanOut f;
    f.addViewer(1);
    auto rs = sendFrame(f, 1, 0, true, 5, t0);
    EXPECT_TRUE(acksOf(rs).empty());
    drain(f, 1, t0);
    auto acks = f.onViewerAck(1, 1, 12, t0 + 12ms);
    ASSERT_EQ(acks.size(), 1u);
    EXPECT_EQ(acks[0], (AgentFrameAck{1, 12, 1}));
    // Without viewers: acked at once, but only when the frame ended.
    FanOut idle;
    auto first = idle.onRect(buf(), RectInfo{7, 0, false, false}, t0);
    EXPECT_TRUE(first.acks.empty());
    auto middle = idle.onRect(buf(), RectInfo{7, 0, false, false}, t0);
    EXPECT_TRUE(middle.acks.empty());
    auto last = idle.onRect(buf(), RectInfo{7, 0, false, true}, t0);
    ASSERT_EQ(last.acks.size(), 1u);
    EXPECT_EQ(last.acks[0], (AgentFrameAck{7, 0, 0}));
    EXPECT_EQ(idle.stats(t0).framesIn, 1u);
}

// A new viewer never starts on a partial frame: it is unsynced until the next key frame, which
// the FanOut asks for at once; one request is outstanding per agent, retried after the timeout.
TEST(FanOut, ANewViewerStartsOnAKeyFrameRequestedOnceAndRetried) {
    FanOutConfig c;
    c.keyRequestRetry = 1s;
    FanOut f(c);
    EXPECT_TRUE(f.addViewer(1, std::nullopt, t0));  // the first viewer asks too
    EXPECT_EQ(f.keyframeRequests(), 1u);
    sendFrame(f, 1, 0, true, 2, t0 + 10ms);
    drain(f, 1, t0 + 10ms);
    f.onViewerAck(1, 1, 5, t0 + 15ms);
    // The stream goes on with partial frames; viewer 2 joins.
    sendFrame(f, 2, 0, false, 3, t0 + 20ms);
    EXPECT_TRUE(f.addViewer(2, std::nullopt, t0 + 30ms));
    EXPECT_FALSE(f.addViewer(3, 0, t0 + 40ms));  // coalesced with the outstanding request
    auto partial = sendFrame(f, 3, 0, false, 3, t0 + 50ms);
    EXPECT_FALSE(requested(partial));  // still outstanding
    EXPECT_EQ(f.queuedRects(2), 0u);
    EXPECT_EQ(f.queuedRects(3), 0u);
    EXPECT_EQ(f.queuedRects(1), 6u);  // frames 2 and 3 for the synced viewer
    // Frame 3's ack does not wait for viewers that were not given it.
    drain(f, 1, t0 + 50ms);
    auto acks = f.onViewerAck(1, 3, 5, t0 + 55ms);
    ASSERT_EQ(acks.size(), 2u);
    EXPECT_EQ(acks.back(), (AgentFrameAck{3, 5, 1}));
    // Not answered within the retry time: asked again, once.
    EXPECT_EQ(f.nextDeadline(), t0 + 30ms + 1s);
    EXPECT_FALSE(f.keyframeRequestDue(t0 + 30ms + 999ms));
    EXPECT_TRUE(f.keyframeRequestDue(t0 + 30ms + 1s));
    EXPECT_FALSE(f.keyframeRequestDue(t0 + 30ms + 1s));
    EXPECT_EQ(f.keyframeRequests(), 3u);
    // The key frame: both new viewers get all of its rects; nothing more is asked for.
    auto key = sendFrame(f, 4, 0, true, 3, t0 + 1100ms);
    EXPECT_FALSE(requested(key));
    EXPECT_EQ(f.queuedRects(2), 3u);
    EXPECT_EQ(f.queuedRects(3), 3u);
    EXPECT_TRUE(f.synced(2, 0));
    EXPECT_EQ(f.nextDeadline(), t0 + 1100ms + c.ackTimeout);  // only the ack timeout is left
    EXPECT_FALSE(f.keyframeRequestDue(t0 + 5s));
    // Answered: the next loss asks at once, not a retry period later.
    f.addViewer(4, std::nullopt, t0 + 1200ms);
    EXPECT_EQ(f.keyframeRequests(), 4u);
}

// The agent began a frame and started the next without its last rect: whoever got part of it
// holds a torn picture, so the rest is not sent, the frame is acked, and a key frame is asked.
TEST(FanOut, AFrameTheAgentLeftOpenIsDroppedAndAKeyFrameAsked) {
    FanOut f;
    f.addViewer(1);
    sendFrame(f, 1, 0, true, 1, t0);
    drain(f, 1, t0);
    f.onViewerAck(1, 1, 1, t0);
    f.onRect(buf(), RectInfo{2, 0, false, false}, t0 + 1ms);
    f.onRect(buf(), RectInfo{2, 0, false, false}, t0 + 1ms);
    ASSERT_TRUE(f.pop(1, t0 + 1ms));  // one rect of frame 2 went out
    FrameResult next = f.onRect(buf(), RectInfo{3, 0, false, true}, t0 + 2ms);
    EXPECT_TRUE(next.requestKeyframe);
    EXPECT_FALSE(f.pop(1, t0 + 2ms));  // neither frame 2's rest nor frame 3
    EXPECT_FALSE(f.synced(1, 0));
    ASSERT_EQ(next.acks.size(), 2u);  // frame 2 (abandoned, nobody acked) and 3 (nobody given)
    EXPECT_EQ(next.acks[0], (AgentFrameAck{2, 0, 0}));
    EXPECT_EQ(next.acks[1], (AgentFrameAck{3, 0, 0}));
    EXPECT_EQ(f.pendingAcks(), 0u);
}

// Monitors are separate pictures: losing a frame of monitor 1 does not stop monitor 2's
// partial frames for a viewer of every monitor.
TEST(FanOut, EachMonitorIsSyncedOnItsOwn) {
    FanOutConfig c;
    c.viewerQueue = 1;
    FanOut f(c);
    f.addViewer(1);  // every monitor
    sendFrame(f, 1, 1, true, 1, t0);
    drain(f, 1, t0);
    sendFrame(f, 2, 2, true, 1, t0);
    drain(f, 1, t0);
    sendFrame(f, 3, 1, false, 2, t0 + 1ms);  // queued, not read
    auto lost = sendFrame(f, 4, 1, false, 2, t0 + 2ms);
    EXPECT_EQ(droppedBy(lost), 1u);
    EXPECT_TRUE(requested(lost));
    EXPECT_FALSE(f.synced(1, 1));
    EXPECT_TRUE(f.synced(1, 2));
    sendFrame(f, 5, 2, false, 2, t0 + 3ms);
    auto got = drain(f, 1, t0 + 3ms);
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[0].first, 5u);
}

// Subscribing again (the browser reset its picture, or changed monitor) restarts the viewer on a
// key frame; a frame it was in the middle of is not continued.
TEST(FanOut, SubscribingAgainWaitsForAKeyFrame) {
    FanOut f;
    f.addViewer(1, 0, t0);
    sendFrame(f, 1, 0, true, 1, t0);
    drain(f, 1, t0);
    f.onViewerAck(1, 1, 1, t0);
    f.onRect(buf(), RectInfo{2, 0, false, false}, t0 + 1ms);
    EXPECT_TRUE(f.addViewer(1, 0, t0 + 2ms));
    EXPECT_EQ(f.queuedRects(1), 0u);
    auto rest = f.onRect(buf(), RectInfo{2, 0, false, true}, t0 + 3ms);
    EXPECT_EQ(f.queuedRects(1), 0u);
    ASSERT_EQ(rest.acks.size(), 1u);  // frame 2 does not wait for it
    EXPECT_EQ(rest.acks[0].viewers, 0);
}

// A viewer waiting for a monitor no frame comes for any more (the agent stopped streaming it)
// is asked for keyRequestRetries times, then not any more; the next frame of that monitor asks
// again at once.
TEST(FanOut, KeyFrameRequestsGiveUpAfterTheRetriesUntilTheMonitorComesBack) {
    FanOutConfig c;
    c.keyRequestRetry = 1s;
    c.keyRequestRetries = 3;
    FanOut f(c);
    EXPECT_TRUE(f.addViewer(1, 2, t0));  // monitor 2: nothing arrives for it
    int asked = 1;
    for (int s = 1; s <= 10; ++s)
        if (f.keyframeRequestDue(t0 + s * 1s)) ++asked;
    EXPECT_EQ(asked, 1 + 3);
    EXPECT_EQ(f.nextDeadline(), TimePoint::max());  // nothing left to wake up for
    // Monitor 2 streams again (a partial frame): the viewer still waits, and it asks at once.
    FrameResult r = f.onRect(buf(), RectInfo{1, 2, false, true}, t0 + 20s);
    EXPECT_TRUE(r.requestKeyframe);
    EXPECT_EQ(f.queuedRects(1), 0u);
    sendFrame(f, 2, 2, true, 2, t0 + 20s + 10ms);
    EXPECT_TRUE(f.synced(1, 2));
}
