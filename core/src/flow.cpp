#include "deskstream/core/flow.hpp"

#include <algorithm>

namespace deskstream::core {

AgentFlow::AgentFlow(FlowConfig config) : config_(config) {
    config_.maxInFlight = std::max(1, config_.maxInFlight);
    config_.qualityMin = std::clamp(config_.qualityMin, 1, 100);
    config_.qualityMax = std::clamp(config_.qualityMax, config_.qualityMin, 100);
    config_.stepDown = std::max(0, config_.stepDown);
    config_.stepUp = std::max(0, config_.stepUp);
    config_.fps = std::clamp(config_.fps, 0.1, 1000.0);
    quality_ = clampQuality(config_.quality);
}

int AgentFlow::clampQuality(int q) const {
    return std::clamp(q, config_.qualityMin, config_.qualityMax);
}

Duration AgentFlow::period() const {
    return Duration(static_cast<Duration::rep>(1e6 / config_.fps));
}

void AgentFlow::onCaptured(TimePoint now) {
    const Duration p = period();
    nextCapture_ += p;
    // A whole period behind (slow encoder, host asleep): restart from now rather than
    // capturing a burst of frames to catch up. Smaller jitter keeps the cadence.
    if (nextCapture_ <= now) nextCapture_ = now + p;
}

void AgentFlow::setFps(double fps) { config_.fps = std::clamp(fps, 0.1, 1000.0); }

int AgentFlow::window() const {
    return relayWindow_ > 0 ? std::min(relayWindow_, config_.maxInFlight) : config_.maxInFlight;
}

void AgentFlow::setRelayWindow(int maxInFlight) { relayWindow_ = std::max(0, maxInFlight); }

bool AgentFlow::onFrameReady(std::uint64_t frameNumber, TimePoint now) {
    onTick(now);  // a lost ack must not keep the window closed
    if (windowFull() || inFlight_.count(frameNumber) != 0) {
        ++dropped_;
        return false;
    }
    inFlight_.emplace(frameNumber, now);
    ++sent_;
    return true;
}

AckOutcome AgentFlow::onAck(std::uint64_t frameNumber, TimePoint now) {
    AckOutcome r;
    r.quality = quality_;
    auto it = inFlight_.find(frameNumber);
    if (it == inFlight_.end()) {
        // Unknown (late after expiry, duplicate): still retire older frames (cumulative ack).
        auto end = inFlight_.lower_bound(frameNumber);
        r.retired = static_cast<std::size_t>(std::distance(inFlight_.begin(), end));
        acked_ += r.retired;
        inFlight_.erase(inFlight_.begin(), end);
        return r;
    }
    r.known = true;
    r.latency = now - it->second;
    if (r.latency.count() < 0) r.latency = Duration(0);
    lastLatency_ = r.latency;
    auto end = std::next(it);
    r.retired = static_cast<std::size_t>(std::distance(inFlight_.begin(), end));
    acked_ += r.retired;
    inFlight_.erase(inFlight_.begin(), end);

    // The rule as originally tuned: slow -> lower quality quickly; fast with an empty pipe ->
    // raise it slowly.
    const std::int64_t ms = toMs(r.latency);
    int q = quality_;
    if (ms > config_.highLatencyMs)
        q -= config_.stepDown;
    else if (ms < config_.lowLatencyMs &&
             static_cast<int>(inFlight_.size()) < config_.lowInFlightBelow)
        q += config_.stepUp;
    q = clampQuality(q);
    r.qualityChange = q - quality_;
    quality_ = q;
    r.quality = q;
    return r;
}

std::size_t AgentFlow::onTick(TimePoint now) {
    std::size_t n = 0;
    for (auto it = inFlight_.begin(); it != inFlight_.end();) {
        if (now - it->second >= config_.inFlightTimeout) {
            it = inFlight_.erase(it);
            ++n;
        } else {
            ++it;
        }
    }
    lost_ += n;
    return n;
}

TimePoint AgentFlow::nextExpiry() const {
    if (inFlight_.empty()) return TimePoint::max();
    TimePoint oldest = TimePoint::max();
    for (const auto& [n, t] : inFlight_) {
        (void)n;
        oldest = std::min(oldest, t);
    }
    return oldest + config_.inFlightTimeout;
}

void AgentFlow::reset() { inFlight_.clear(); }

void AgentFlow::setQuality(int q) { quality_ = clampQuality(q); }

}  // namespace deskstream::core
