// deskstream core: relay fan-out of one agent's frames to its viewers (sans-IO).
//
// One FanOut per registered agent connection. The relay receives a binary message (one rect of
// a frame), validates it (decodeFrame, FrameOrderCheck), rewrites its streamId, wraps the bytes
// ONCE in a FrameBuffer (shared_ptr to const bytes) and calls onRect(): the same buffer is
// referenced by every viewer queue, never copied. Each viewer's writer (its own thread in the
// Poco host) pops one message at a time with pop().
//
// A FRAME is the set of rect messages sharing one frameNumber; it ends with the rect flagged
// "last rect" (or with a message that is not partial: a whole picture in one message). Key
// frames (flag bit0) are full pictures that need nothing before them (docs/protocol.md
// "Frames"). Every rule below counts whole frames, never rect messages:
//
// Per-viewer queues hold at most `viewerQueue` frames. A viewer whose queue is full when a new
// frame starts is a laggard: its undelivered frames are dropped whole (counted) and it is
// marked lagging, so it never slows the others and never grows the relay's memory
// (Invariants 2, 3).
//
// No torn picture: a viewer is "synced" on a monitor once it was given a key frame of it, and
// takes partial frames of that monitor only while synced. Losing any rect of a frame (a
// latest-wins drop, a frame the agent never finished) or subscribing unsyncs it: it is skipped
// until the next key frame of that monitor, which it then gets whole. While a viewer waits for
// a key frame the FanOut asks for one (FrameResult::requestKeyframe, keyframeRequestDue): at
// most one request outstanding per agent, retried every `keyRequestRetry` until the key frame
// came, at most `keyRequestRetries` times in a row: a monitor the agent no longer streams (no
// frame comes for it any more) must not cost a full picture every second for ever; the next
// frame of that monitor asks again.
//
// Ack aggregation: the agent gets frame_ack for frame n once every HEALTHY viewer that was
// given n acked it or was skipped for it (dropped from its queue, not subscribed to that
// monitor, waiting for a key frame, lagging, gone, or silent for ackTimeout -> then marked
// lagging), and not before the frame's last rect arrived. With no viewer the ack is immediate
// (viewers = 0). A lagging viewer becomes healthy again when it acks with an empty queue.
//
// Start/stop of the agent's stream by subscriber count is decided by the Registry
// (start_stream on the first subscriber, stop_stream after the last one).
//
// Not thread-safe: guard each FanOut with a mutex (calls are O(viewers)); the host wakes the
// viewer writers named in FrameResult::wake after releasing it.
#pragma once

#include "deskstream/core/frame_header.hpp"
#include "deskstream/core/protocol.hpp"
#include "deskstream/core/types.hpp"

#include <algorithm>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <unordered_map>
#include <vector>

namespace deskstream::core {

using FrameBuffer = std::shared_ptr<const std::vector<std::uint8_t>>;
using FrameBytes = FrameBuffer;  // alias used by the relay's network layer

struct FanOutConfig {
    std::size_t viewerQueue = 3;                         // [relay] viewer_queue (>= 1)
    Duration ackTimeout = std::chrono::seconds(2);       // a viewer silent this long is skipped
    std::size_t maxPendingAcks = 256;                    // bound of the aggregation table
    std::size_t latencySamples = 512;                    // ring for p50/p95
    Duration keyRequestRetry = std::chrono::seconds(1);  // a key frame request not answered
                                                         // this long is sent again
    int keyRequestRetries = 5;  // then it gives up until the next frame of a waited-for monitor
};

/// Where a rect message sits in its frame (from its header).
struct RectInfo {
    std::uint64_t frameNumber = 0;
    std::uint16_t monitor = 0;
    bool key = false;   // header flag bit0: the frame is a full picture
    bool last = false;  // it completes its frame (flag "last rect", or not partial)
};
/// The RectInfo of a validated header.
RectInfo rectInfo(const FrameHeader& header);

/// One queued rect message (a frame is one or more of them, in order).
struct QueuedFrame {
    FrameBuffer data;
    std::uint64_t frameNumber = 0;
    std::uint16_t monitor = 0;
    bool key = false;
    bool last = false;  // completes its frame
    TimePoint enqueuedAt{0};
};

struct FrameResult {
    std::vector<ConnId> wake;         // viewers that got the rect queued
    std::vector<AgentFrameAck> acks;  // acks to send to the agent now
    bool requestKeyframe = false;     // ask the agent for a key frame now (coalesced)
    std::size_t dropped = 0;          // whole frames dropped from queues by this call
};

struct FanOutStats {
    double fpsIn = 0;   // frames received per second (last second)
    double fpsOut = 0;  // frames handed to viewer writers per second
    std::optional<std::int64_t> latencyP50Ms, latencyP95Ms;  // viewer-reported latencies
    std::uint64_t framesIn = 0, framesOut = 0, drops = 0, acksToAgent = 0;
    std::size_t viewers = 0, laggingViewers = 0;
};

struct ViewerStats {
    std::uint64_t delivered = 0, dropped = 0, acked = 0;
    std::size_t queued = 0;
    bool lagging = false;
    double fpsOut = 0;  // frames handed to its writer (last second)
    std::optional<std::int64_t> latencyP50Ms, latencyP95Ms;  // its reported latencies (last 64)
};

/// The last `capacity` latency samples and their percentiles.
class LatencyRing {
public:
    explicit LatencyRing(std::size_t capacity) : capacity_(std::max<std::size_t>(1, capacity)) {}
    void add(std::int64_t ms);
    /// q in [0, 1]; nullopt without samples.
    std::optional<std::int64_t> percentile(double q) const;

private:
    std::size_t capacity_;
    std::vector<std::int64_t> samples_;
    std::size_t next_ = 0;
};

class FanOut {
public:
    explicit FanOut(FanOutConfig config = {});

    /// Adds a viewer, or subscribes it again (new monitor filter; it may have reset its
    /// picture): it starts unsynced, on the next key frame. monitor empty: every monitor.
    /// True when the host should ask the agent for a key frame now (coalesced).
    bool addViewer(ConnId viewer, std::optional<int> monitor, TimePoint now);
    /// The same without a clock: the key frame request is then claimed by the next onRect.
    void addViewer(ConnId viewer, std::optional<int> monitor = std::nullopt);
    /// Removes a viewer: its queue is released and pending acks no longer wait for it.
    std::vector<AgentFrameAck> removeViewer(ConnId viewer);
    bool hasViewer(ConnId viewer) const { return viewers_.count(viewer) != 0; }
    std::size_t viewerCount() const { return viewers_.size(); }

    /// A validated rect message from the agent.
    FrameResult onRect(FrameBuffer data, const RectInfo& rect, TimePoint now);
    /// A frame in one message (not partial: it completes itself).
    FrameResult onFrame(FrameBuffer data, std::uint64_t frameNumber, std::uint16_t monitor,
                        bool key, TimePoint now) {
        return onRect(std::move(data), RectInfo{frameNumber, monitor, key, true}, now);
    }
    /// Next rect message for `viewer`'s writer (nullopt when its queue is empty or unknown).
    std::optional<QueuedFrame> pop(ConnId viewer, TimePoint now);
    /// Queued frames of `viewer` (a frame whose first rects were popped counts while any of
    /// its rects wait).
    std::size_t queued(ConnId viewer) const;
    /// Queued rect messages of `viewer`.
    std::size_t queuedRects(ConnId viewer) const;
    /// False while `viewer` waits for a key frame of `monitor` (it takes no partial frame).
    bool synced(ConnId viewer, std::uint16_t monitor) const;

    /// frame_ack from a viewer. Unknown viewers/frames are ignored (empty result).
    std::vector<AgentFrameAck> onViewerAck(ConnId viewer, std::uint64_t frameNumber,
                                           std::int64_t latencyMs, TimePoint now);
    /// Skips viewers silent for ackTimeout (marked lagging) and completes their acks.
    std::vector<AgentFrameAck> onTick(TimePoint now);
    /// Earliest ack timeout or key frame request retry (TimePoint::max(): nothing pending).
    TimePoint nextDeadline() const;
    /// True when the host should ask the agent for a key frame now: a viewer waits for one
    /// and no request is outstanding (or the last one is keyRequestRetry old). Call at
    /// nextDeadline(); onRect and addViewer report the same through their results.
    bool keyframeRequestDue(TimePoint now);
    /// Key frame requests claimed so far (each one request_keyframe sent by the host).
    std::uint64_t keyframeRequests() const { return keyRequests_; }

    bool lagging(ConnId viewer) const;
    std::optional<ViewerStats> viewerStats(ConnId viewer, TimePoint now) const;
    /// The subscribed viewers, in id order.
    std::vector<ConnId> viewerIds() const;
    FanOutStats stats(TimePoint now) const;
    std::size_t pendingAcks() const { return pending_.size(); }
    const FanOutConfig& config() const { return config_; }

private:
    struct Viewer {
        std::optional<int> monitor;
        std::deque<QueuedFrame> queue;
        std::set<std::uint16_t> synced;  // monitors it holds a whole picture of
        bool taking = false;             // it receives the frame now arriving (open_)
        bool lagging = false;
        ViewerStats stats;
        std::deque<TimePoint> outEvents;  // last second, for its fps
        LatencyRing latencies{64};
    };
    struct PendingAck {
        std::set<ConnId> waiting;
        int acked = 0;
        std::int64_t maxLatencyMs = 0;
        TimePoint since{0};
        bool ended = false;  // its last rect arrived (or it was abandoned)
    };
    struct OpenFrame {
        std::uint64_t frameNumber = 0;
        std::uint16_t monitor = 0;
    };
    static constexpr int kAnyMonitor = -1;  // keyWanted_: a viewer of every monitor is new
    bool takesMonitor(const Viewer& v, std::uint16_t monitor) const {
        return !v.monitor || *v.monitor == static_cast<int>(monitor);
    }
    void startFrame(FrameBuffer data, const RectInfo& rect, TimePoint now, FrameResult& r);
    void abandonOpenFrame(FrameResult& r);
    void dropQueue(ConnId id, Viewer& v, FrameResult& r);
    static std::size_t framesIn(const std::deque<QueuedFrame>& queue);
    bool claimKeyRequest(TimePoint now);
    void completeReady(std::vector<AgentFrameAck>& out);
    void stopWaitingFor(ConnId viewer, std::vector<AgentFrameAck>& out);

    FanOutConfig config_;
    std::map<ConnId, Viewer> viewers_;
    std::map<std::uint64_t, PendingAck> pending_;
    LatencyRing latencies_;
    std::deque<TimePoint> inEvents_, outEvents_;  // last second, for fps
    std::uint64_t framesIn_ = 0, framesOut_ = 0, drops_ = 0, acksToAgent_ = 0;
    std::optional<OpenFrame> open_;           // the frame whose rects are arriving
    std::optional<std::uint64_t> lastEnded_;  // the last frame that ended
    std::set<int> keyWanted_;                 // monitors a viewer waits for a key frame of
    std::optional<TimePoint> keyRequestAt_;   // the outstanding key frame request
    int keyRetries_ = 0;                      // repeats of it without a key frame
    std::uint64_t keyRequests_ = 0;
};

}  // namespace deskstream::core
