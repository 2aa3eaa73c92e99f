// deskstream core: agent-side flow control (sans-IO): frame window, adaptive quality, fps pacing.
//
// The agent loop, driven by the host:
//   if (flow.captureDue(now)) { capture; flow.onCaptured(now);
//       encode with flow.quality(); if (flow.onFrameReady(n, now)) send frame n; }
//   on frame_ack: flow.onAck(n, now);   periodically: flow.onTick(now);
//   sleep until min(flow.nextCaptureAt(), heartbeat.nextDeadline()).
// (A host may also test flow.windowFull() before capturing to save the encoding work; the frame
// is then counted with onWindowFullSkip().)
// A frame that finds the window full is DROPPED and counted, never queued (bounded memory, no
// growing latency). Acks are cumulative: an ack for n also retires every in-flight frame < n
// (the relay acks in order; a lost ack must not shrink the window for ever). In-flight entries
// older than inFlightTimeout are retired as lost for the same reason.
// Not thread-safe: driven by the agent's pipeline thread.
#pragma once

#include "deskstream/core/types.hpp"

#include <cstdint>
#include <map>
#include <optional>

namespace deskstream::core {

struct FlowConfig {
    int maxInFlight = 10;              // [agent] max_in_flight (the relay's value wins if smaller)
    int quality = 75;                  // initial quality
    int qualityMin = 30;               // [agent] quality.min
    int qualityMax = 90;               // [agent] quality.max
    std::int64_t highLatencyMs = 500;  // above: quality -= stepDown
    std::int64_t lowLatencyMs = 100;   // below (and inFlight < lowInFlightBelow): += stepUp
    int stepDown = 5;
    int stepUp = 2;
    int lowInFlightBelow = 3;
    double fps = 8;  // [agent] fps, clamped to 0.1..1000
    Duration inFlightTimeout = std::chrono::seconds(10);
};

struct AckOutcome {
    bool known = false;       // frameNumber was in flight
    Duration latency{0};      // now - send time (end to end: the relay acks after the viewers)
    int quality = 0;          // quality after the rule ran
    int qualityChange = 0;    // -stepDown, 0 or +stepUp (after clamping)
    std::size_t retired = 0;  // in-flight entries retired by this (cumulative) ack
};

class AgentFlow {
public:
    explicit AgentFlow(FlowConfig config = {});

    // ------------------------------------------------------------ pacing
    /// True when a capture is due (now >= nextCaptureAt()).
    bool captureDue(TimePoint now) const { return now >= nextCapture_; }
    TimePoint nextCaptureAt() const { return nextCapture_; }
    /// A capture happened at `now`: schedules the next one a period later. When more than a
    /// period late, the schedule restarts from now (no burst of catch-up captures).
    void onCaptured(TimePoint now);
    /// Changes fps (clamped to 0.1..1000); takes effect from the next onCaptured.
    void setFps(double fps);
    double fps() const { return config_.fps; }
    Duration period() const;

    // ------------------------------------------------------------ window
    bool windowFull() const { return inFlight_.size() >= static_cast<std::size_t>(window()); }
    /// An encoded frame is ready: true = send it (now in flight); false = dropped (counted).
    bool onFrameReady(std::uint64_t frameNumber, TimePoint now);
    /// The host skipped a capture because windowFull(): counted as a drop.
    void onWindowFullSkip() { ++dropped_; }
    /// A frame_ack arrived; runs the quality rule when the frame was in flight.
    AckOutcome onAck(std::uint64_t frameNumber, TimePoint now);
    /// Retires in-flight entries older than inFlightTimeout; returns how many.
    std::size_t onTick(TimePoint now);
    /// Earliest in-flight expiry (TimePoint::max() when nothing is in flight).
    TimePoint nextExpiry() const;
    /// New connection: clears the window (counters are kept).
    void reset();
    /// The relay's maxInFlight from handshake_ack; the smaller of it and the config is used.
    void setRelayWindow(int maxInFlight);
    int window() const;

    // ------------------------------------------------------------ quality
    int quality() const { return quality_; }
    /// set_config quality: clamped to [qualityMin, qualityMax].
    void setQuality(int q);

    // ------------------------------------------------------------ counters
    std::size_t inFlight() const { return inFlight_.size(); }
    std::uint64_t sent() const { return sent_; }
    std::uint64_t dropped() const { return dropped_; }
    std::uint64_t acked() const { return acked_; }
    std::uint64_t lost() const { return lost_; }
    std::optional<Duration> lastLatency() const { return lastLatency_; }
    const FlowConfig& config() const { return config_; }

private:
    int clampQuality(int q) const;

    FlowConfig config_;
    int relayWindow_ = 0;  // 0: none given
    int quality_;
    TimePoint nextCapture_{0};
    std::map<std::uint64_t, TimePoint> inFlight_;
    std::uint64_t sent_ = 0, dropped_ = 0, acked_ = 0, lost_ = 0;
    std::optional<Duration> lastLatency_;
};

}  // namespace deskstream::core
