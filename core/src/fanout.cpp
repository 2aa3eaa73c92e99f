#include "deskstream/core/fanout.hpp"

#include <algorithm>

namespace deskstream::core {
namespace {
constexpr Duration kRateWindow = std::chrono::seconds(1);

void prune(std::deque<TimePoint>& events, TimePoint now) {
    while (!events.empty() && now - events.front() >= kRateWindow) events.pop_front();
}

double rate(const std::deque<TimePoint>& events, TimePoint now) {
    std::size_t n = 0;
    for (TimePoint t : events)
        if (now - t < kRateWindow) ++n;
    return static_cast<double>(n);
}
}  // namespace

void LatencyRing::add(std::int64_t ms) {
    if (samples_.size() < capacity_) {
        samples_.push_back(ms);
    } else {
        samples_[next_] = ms;
        next_ = (next_ + 1) % samples_.size();
    }
}

std::optional<std::int64_t> LatencyRing::percentile(double q) const {
    if (samples_.empty()) return std::nullopt;
    std::vector<std::int64_t> sorted = samples_;
    std::sort(sorted.begin(), sorted.end());
    q = std::clamp(q, 0.0, 1.0);
    std::size_t idx = static_cast<std::size_t>(q * static_cast<double>(sorted.size() - 1) + 0.5);
    return sorted[std::min(idx, sorted.size() - 1)];
}

FanOut::FanOut(FanOutConfig config)
    : config_(config), latencies_(std::max<std::size_t>(1, config.latencySamples)) {
    config_.viewerQueue = std::max<std::size_t>(1, config_.viewerQueue);
    config_.maxPendingAcks = std::max<std::size_t>(1, config_.maxPendingAcks);
    config_.latencySamples = std::max<std::size_t>(1, config_.latencySamples);
}

void FanOut::addViewer(ConnId viewer, std::optional<int> monitor) {
    viewers_[viewer].monitor = monitor;
}

std::vector<AgentFrameAck> FanOut::removeViewer(ConnId viewer) {
    std::vector<AgentFrameAck> out;
    if (viewers_.erase(viewer) == 0) return out;
    stopWaitingFor(viewer, out);
    return out;
}

FrameResult FanOut::onFrame(FrameBuffer data, std::uint64_t frameNumber, std::uint16_t monitor,
                            bool key, TimePoint now) {
    FrameResult r;
    ++framesIn_;
    prune(inEvents_, now);
    inEvents_.push_back(now);

    // Bounded aggregation table whatever the agent sends: release the oldest pending frame
    // (acked with what it has) to make room.
    while (pending_.size() >= config_.maxPendingAcks) {
        auto oldest = pending_.begin();
        r.acks.push_back(
            AgentFrameAck{oldest->first, oldest->second.maxLatencyMs, oldest->second.acked});
        ++acksToAgent_;
        pending_.erase(oldest);
    }

    PendingAck p;
    p.since = now;
    for (auto& [id, v] : viewers_) {
        if (v.monitor && *v.monitor != static_cast<int>(monitor)) continue;  // skipped
        if (v.queue.size() >= config_.viewerQueue) {
            // Latest frame wins: everything undelivered goes, the viewer gets the newest.
            for (const QueuedFrame& old : v.queue) {
                auto pit = pending_.find(old.frameNumber);
                if (pit != pending_.end()) pit->second.waiting.erase(id);
            }
            const std::size_t n = v.queue.size();
            v.queue.clear();
            v.stats.dropped += n;
            drops_ += n;
            r.dropped += n;
            v.lagging = true;
            if (!key) r.requestKeyframe = true;
        }
        QueuedFrame q;
        q.data = data;  // shared, never copied
        q.frameNumber = frameNumber;
        q.monitor = monitor;
        q.key = key;
        q.enqueuedAt = now;
        v.queue.push_back(std::move(q));
        if (!v.lagging) p.waiting.insert(id);
        r.wake.push_back(id);
    }
    if (p.waiting.empty()) {
        r.acks.push_back(AgentFrameAck{frameNumber, 0, 0});
        ++acksToAgent_;
    } else {
        pending_[frameNumber] = std::move(p);
    }
    completeReady(r.acks);  // dropping old frames may have completed some
    return r;
}

std::optional<QueuedFrame> FanOut::pop(ConnId viewer, TimePoint now) {
    auto it = viewers_.find(viewer);
    if (it == viewers_.end() || it->second.queue.empty()) return std::nullopt;
    QueuedFrame f = std::move(it->second.queue.front());
    it->second.queue.pop_front();
    ++it->second.stats.delivered;
    prune(it->second.outEvents, now);
    it->second.outEvents.push_back(now);
    ++framesOut_;
    prune(outEvents_, now);
    outEvents_.push_back(now);
    return f;
}

std::size_t FanOut::queued(ConnId viewer) const {
    auto it = viewers_.find(viewer);
    return it == viewers_.end() ? 0 : it->second.queue.size();
}

std::vector<AgentFrameAck> FanOut::onViewerAck(ConnId viewer, std::uint64_t frameNumber,
                                               std::int64_t latencyMs, TimePoint) {
    std::vector<AgentFrameAck> out;
    auto vit = viewers_.find(viewer);
    if (vit == viewers_.end()) return out;
    Viewer& v = vit->second;
    latencyMs = std::max<std::int64_t>(0, latencyMs);
    ++v.stats.acked;
    v.latencies.add(latencyMs);
    latencies_.add(latencyMs);
    // Caught up: it acknowledges with nothing left queued.
    if (v.lagging && v.queue.empty()) v.lagging = false;

    auto pit = pending_.find(frameNumber);
    if (pit != pending_.end() && pit->second.waiting.erase(viewer) != 0) {
        ++pit->second.acked;
        pit->second.maxLatencyMs = std::max(pit->second.maxLatencyMs, latencyMs);
    }
    // The viewer draws in order: older frames it still owes are settled too.
    for (auto it = pending_.begin(); it != pending_.end() && it->first < frameNumber; ++it)
        it->second.waiting.erase(viewer);
    completeReady(out);
    return out;
}

std::vector<AgentFrameAck> FanOut::onTick(TimePoint now) {
    std::vector<AgentFrameAck> out;
    std::set<ConnId> overdue;
    for (const auto& [n, p] : pending_) {
        (void)n;
        if (now - p.since < config_.ackTimeout) continue;
        overdue.insert(p.waiting.begin(), p.waiting.end());
    }
    for (ConnId id : overdue) {
        auto v = viewers_.find(id);
        if (v != viewers_.end()) v->second.lagging = true;
        for (auto& [n, p] : pending_) {
            (void)n;
            p.waiting.erase(id);
        }
    }
    completeReady(out);
    return out;
}

TimePoint FanOut::nextDeadline() const {
    TimePoint t = TimePoint::max();
    for (const auto& [n, p] : pending_) {
        (void)n;
        t = std::min(t, p.since + config_.ackTimeout);
    }
    return t;
}

bool FanOut::lagging(ConnId viewer) const {
    auto it = viewers_.find(viewer);
    return it != viewers_.end() && it->second.lagging;
}

std::optional<ViewerStats> FanOut::viewerStats(ConnId viewer, TimePoint now) const {
    auto it = viewers_.find(viewer);
    if (it == viewers_.end()) return std::nullopt;
    ViewerStats s = it->second.stats;
    s.queued = it->second.queue.size();
    s.lagging = it->second.lagging;
    s.fpsOut = rate(it->second.outEvents, now);
    s.latencyP50Ms = it->second.latencies.percentile(0.50);
    s.latencyP95Ms = it->second.latencies.percentile(0.95);
    return s;
}

std::vector<ConnId> FanOut::viewerIds() const {
    std::vector<ConnId> ids;
    for (const auto& [id, v] : viewers_) {
        (void)v;
        ids.push_back(id);
    }
    return ids;
}

FanOutStats FanOut::stats(TimePoint now) const {
    FanOutStats s;
    s.fpsIn = rate(inEvents_, now);
    s.fpsOut = rate(outEvents_, now);
    s.latencyP50Ms = latencies_.percentile(0.50);
    s.latencyP95Ms = latencies_.percentile(0.95);
    s.framesIn = framesIn_;
    s.framesOut = framesOut_;
    s.drops = drops_;
    s.acksToAgent = acksToAgent_;
    s.viewers = viewers_.size();
    for (const auto& [id, v] : viewers_) {
        (void)id;
        if (v.lagging) ++s.laggingViewers;
    }
    return s;
}

void FanOut::completeReady(std::vector<AgentFrameAck>& out) {
    for (auto it = pending_.begin(); it != pending_.end();) {
        if (it->second.waiting.empty()) {
            out.push_back(AgentFrameAck{it->first, it->second.maxLatencyMs, it->second.acked});
            ++acksToAgent_;
            it = pending_.erase(it);
        } else {
            ++it;
        }
    }
}

void FanOut::stopWaitingFor(ConnId viewer, std::vector<AgentFrameAck>& out) {
    for (auto& [n, p] : pending_) {
        (void)n;
        p.waiting.erase(viewer);
    }
    completeReady(out);
}

}  // namespace deskstream::core
