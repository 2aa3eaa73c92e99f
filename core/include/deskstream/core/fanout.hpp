// deskstream core: relay fan-out of one agent's frames to its viewers (sans-IO).
//
// One FanOut per registered agent connection. The relay receives a binary frame, validates it
// (decodeFrame), rewrites its streamId, wraps the bytes ONCE in a FrameBuffer (shared_ptr to
// const bytes) and calls onFrame(): the same buffer is referenced by every viewer queue, never
// copied. Each viewer's writer (its own thread in the Poco host) pops its queue with pop().
//
// Per-viewer queues hold at most `viewerQueue` frames. A viewer whose queue is full is a
// laggard: its older undelivered frames are dropped (counted) and it gets the newest
// (latest-frame-wins) and is marked lagging, so it never slows the others and never grows the
// relay's memory (Invariants 2, 3).
//
// Ack aggregation: the agent gets frame_ack for frame n once every HEALTHY viewer that was
// given n acked it or was skipped for it (dropped from its queue, not subscribed to that
// monitor, lagging, gone, or silent for ackTimeout -> then marked lagging). With no viewer the
// ack is immediate (viewers = 0). A lagging viewer becomes healthy again when it acks with an
// empty queue.
//
// Start/stop of the agent's stream by subscriber count is decided by the Registry
// (start_stream on the first subscriber, stop_stream after the last one).
//
// Not thread-safe: guard each FanOut with a mutex (calls are O(viewers)); the host wakes the
// viewer writers named in FrameResult::wake after releasing it.
#pragma once

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
    std::size_t viewerQueue = 3;                    // [relay] viewer_queue (>= 1)
    Duration ackTimeout = std::chrono::seconds(2);  // a viewer silent this long is skipped
    std::size_t maxPendingAcks = 256;               // bound of the aggregation table
    std::size_t latencySamples = 512;               // ring for p50/p95
};

struct QueuedFrame {
    FrameBuffer data;
    std::uint64_t frameNumber = 0;
    std::uint16_t monitor = 0;
    bool key = false;
    TimePoint enqueuedAt{0};
};

struct FrameResult {
    std::vector<ConnId> wake;         // viewers that got the frame queued
    std::vector<AgentFrameAck> acks;  // acks to send to the agent now
    bool requestKeyframe = false;     // a laggard lost a frame and the new one is not key
    std::size_t dropped = 0;          // frames dropped from queues by this call
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

    /// Adds (or updates the monitor filter of) a viewer. monitor empty: every monitor.
    void addViewer(ConnId viewer, std::optional<int> monitor = std::nullopt);
    /// Removes a viewer: its queue is released and pending acks no longer wait for it.
    std::vector<AgentFrameAck> removeViewer(ConnId viewer);
    bool hasViewer(ConnId viewer) const { return viewers_.count(viewer) != 0; }
    std::size_t viewerCount() const { return viewers_.size(); }

    /// A validated frame from the agent.
    FrameResult onFrame(FrameBuffer data, std::uint64_t frameNumber, std::uint16_t monitor,
                        bool key, TimePoint now);
    /// Next frame for `viewer`'s writer (nullopt when its queue is empty or it is unknown).
    std::optional<QueuedFrame> pop(ConnId viewer, TimePoint now);
    /// Queued frames of `viewer`.
    std::size_t queued(ConnId viewer) const;

    /// frame_ack from a viewer. Unknown viewers/frames are ignored (empty result).
    std::vector<AgentFrameAck> onViewerAck(ConnId viewer, std::uint64_t frameNumber,
                                           std::int64_t latencyMs, TimePoint now);
    /// Skips viewers silent for ackTimeout (marked lagging) and completes their acks.
    std::vector<AgentFrameAck> onTick(TimePoint now);
    /// Earliest ack timeout (TimePoint::max() when nothing is pending).
    TimePoint nextDeadline() const;

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
    };
    void completeReady(std::vector<AgentFrameAck>& out);
    void stopWaitingFor(ConnId viewer, std::vector<AgentFrameAck>& out);

    FanOutConfig config_;
    std::map<ConnId, Viewer> viewers_;
    std::map<std::uint64_t, PendingAck> pending_;
    LatencyRing latencies_;
    std::deque<TimePoint> inEvents_, outEvents_;  // last second, for fps
    std::uint64_t framesIn_ = 0, framesOut_ = 0, drops_ = 0, acksToAgent_ = 0;
};

}  // namespace deskstream::core
