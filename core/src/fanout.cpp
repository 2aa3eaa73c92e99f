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

RectInfo rectInfo(const FrameHeader& h) {
    RectInfo r;
    r.frameNumber = h.frameNumber;
    r.monitor = h.monitor;
    r.key = (h.flags & frame_flags::kKey) != 0;
    // A message that is not partial is a whole picture: its frame has no other rect.
    r.last = (h.flags & frame_flags::kLastRect) != 0 || (h.flags & frame_flags::kPartial) == 0;
    return r;
}

void FanOut::addViewer(ConnId viewer, std::optional<int> monitor) {
    Viewer& v = viewers_[viewer];
    v.monitor = monitor;
    v.synced.clear();
    if (v.taking && open_) {
        // Subscribed again mid-frame: the rest of that frame is not for it any more.
        v.taking = false;
        while (!v.queue.empty() && v.queue.back().frameNumber == open_->frameNumber)
            v.queue.pop_back();
        auto pit = pending_.find(open_->frameNumber);
        if (pit != pending_.end()) pit->second.waiting.erase(viewer);
    }
    // Its complete queued frames stay: it draws them, then waits for the key frame asked for.
    keyWanted_.insert(monitor ? *monitor : kAnyMonitor);
}

bool FanOut::addViewer(ConnId viewer, std::optional<int> monitor, TimePoint now) {
    addViewer(viewer, monitor);
    return claimKeyRequest(now);
}

std::vector<AgentFrameAck> FanOut::removeViewer(ConnId viewer) {
    std::vector<AgentFrameAck> out;
    if (viewers_.erase(viewer) == 0) return out;
    if (viewers_.empty()) {
        keyWanted_.clear();  // nobody waits for a picture any more
        keyRequestAt_.reset();
    }
    stopWaitingFor(viewer, out);
    return out;
}

std::size_t FanOut::framesIn(const std::deque<QueuedFrame>& queue) {
    std::size_t n = 0;
    const QueuedFrame* prev = nullptr;
    for (const QueuedFrame& q : queue) {
        if (!prev || prev->frameNumber != q.frameNumber) ++n;
        prev = &q;
    }
    return n;
}

void FanOut::dropQueue(ConnId id, Viewer& v, FrameResult& r) {
    // Whole frames go; a frame whose first rects were already sent is lost too.
    for (const QueuedFrame& old : v.queue) {
        auto pit = pending_.find(old.frameNumber);
        if (pit != pending_.end()) pit->second.waiting.erase(id);
        v.synced.erase(old.monitor);  // it will miss this frame's change: not whole any more
        keyWanted_.insert(old.monitor);
    }
    const std::size_t n = framesIn(v.queue);
    v.queue.clear();
    v.stats.dropped += n;
    drops_ += n;
    r.dropped += n;
    v.lagging = true;
}

void FanOut::abandonOpenFrame(FrameResult& r) {
    // The agent started another frame before this one's last rect: whoever got a part of it
    // holds a torn picture and waits for a key frame; its remaining rects are not sent.
    const OpenFrame f = *open_;
    open_.reset();
    lastEnded_ = f.frameNumber;
    for (auto& [id, v] : viewers_) {
        (void)id;
        if (!v.taking) continue;
        v.taking = false;
        while (!v.queue.empty() && v.queue.back().frameNumber == f.frameNumber) v.queue.pop_back();
        v.synced.erase(f.monitor);
        keyWanted_.insert(f.monitor);
    }
    auto pit = pending_.find(f.frameNumber);
    if (pit != pending_.end()) {
        pit->second.ended = true;
        pit->second.waiting.clear();
    }
    completeReady(r.acks);
}

void FanOut::startFrame(FrameBuffer data, const RectInfo& rect, TimePoint now, FrameResult& r) {
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

    open_ = OpenFrame{rect.frameNumber, rect.monitor};
    PendingAck p;
    p.since = now;
    for (auto& [id, v] : viewers_) {
        v.taking = false;
        if (!takesMonitor(v, rect.monitor)) continue;  // skipped
        if (v.synced.count(rect.monitor) != 0 && framesIn(v.queue) >= config_.viewerQueue)
            dropQueue(id, v, r);  // latest wins: everything undelivered goes
        if (v.synced.count(rect.monitor) == 0) {
            if (!rect.key) {
                keyWanted_.insert(rect.monitor);  // a partial frame would tear its picture
                continue;
            }
            // A key frame needs nothing before it: whatever is queued may go first.
            if (framesIn(v.queue) >= config_.viewerQueue) dropQueue(id, v, r);
            v.synced.insert(rect.monitor);
        }
        v.taking = true;
        QueuedFrame q;
        q.data = data;  // shared, never copied
        q.frameNumber = rect.frameNumber;
        q.monitor = rect.monitor;
        q.key = rect.key;
        q.last = rect.last;
        q.enqueuedAt = now;
        v.queue.push_back(std::move(q));
        if (!v.lagging) p.waiting.insert(id);
        r.wake.push_back(id);
    }
    if (rect.key) {
        // Every viewer of this monitor is whole again (or takes this frame whole).
        keyWanted_.erase(rect.monitor);
        keyWanted_.erase(kAnyMonitor);
    }
    pending_[rect.frameNumber] = std::move(p);
}

FrameResult FanOut::onRect(FrameBuffer data, const RectInfo& rect, TimePoint now) {
    FrameResult r;
    if (open_ && open_->frameNumber != rect.frameNumber) abandonOpenFrame(r);
    if (!open_) {
        // A rect of a frame that already ended (FrameOrderCheck refuses it): ignored.
        if (lastEnded_ && rect.frameNumber <= *lastEnded_) return r;
        startFrame(std::move(data), rect, now, r);
    } else {
        for (auto& [id, v] : viewers_) {
            if (!v.taking) continue;
            QueuedFrame q;
            q.data = data;
            q.frameNumber = rect.frameNumber;
            q.monitor = rect.monitor;
            q.key = rect.key;
            q.last = rect.last;
            q.enqueuedAt = now;
            v.queue.push_back(std::move(q));
            r.wake.push_back(id);
        }
    }
    if (rect.last) {
        open_.reset();
        lastEnded_ = rect.frameNumber;
        for (auto& [id, v] : viewers_) {
            (void)id;
            v.taking = false;
        }
        auto pit = pending_.find(rect.frameNumber);
        if (pit != pending_.end()) pit->second.ended = true;
    }
    completeReady(r.acks);          // the frame's end, or dropped frames, may have completed some
    if (rect.key) keyRetries_ = 0;  // the agent answers
    if (!keyWanted_.empty() && !viewers_.empty()) {
        r.requestKeyframe = claimKeyRequest(now);
    } else if (keyWanted_.empty()) {
        keyRequestAt_.reset();  // answered: the next loss asks at once
        keyRetries_ = 0;
    }
    return r;
}

bool FanOut::claimKeyRequest(TimePoint now) {
    if (keyWanted_.empty() || viewers_.empty()) return false;
    if (keyRequestAt_ && now - *keyRequestAt_ < config_.keyRequestRetry) return false;
    if (keyRequestAt_ && ++keyRetries_ > config_.keyRequestRetries) {
        // No key frame came for what is waited for (e.g. a monitor the agent stopped streaming):
        // give up; a frame of a waited-for monitor puts it back and asks at once.
        keyWanted_.clear();
        keyRequestAt_.reset();
        keyRetries_ = 0;
        return false;
    }
    keyRequestAt_ = now;
    ++keyRequests_;
    return true;
}

bool FanOut::keyframeRequestDue(TimePoint now) { return claimKeyRequest(now); }

std::optional<QueuedFrame> FanOut::pop(ConnId viewer, TimePoint now) {
    auto it = viewers_.find(viewer);
    if (it == viewers_.end() || it->second.queue.empty()) return std::nullopt;
    QueuedFrame f = std::move(it->second.queue.front());
    it->second.queue.pop_front();
    if (f.last) {
        // A frame is handed over when its last rect is.
        ++it->second.stats.delivered;
        prune(it->second.outEvents, now);
        it->second.outEvents.push_back(now);
        ++framesOut_;
        prune(outEvents_, now);
        outEvents_.push_back(now);
    }
    return f;
}

std::size_t FanOut::queued(ConnId viewer) const {
    auto it = viewers_.find(viewer);
    return it == viewers_.end() ? 0 : framesIn(it->second.queue);
}

std::size_t FanOut::queuedRects(ConnId viewer) const {
    auto it = viewers_.find(viewer);
    return it == viewers_.end() ? 0 : it->second.queue.size();
}

bool FanOut::synced(ConnId viewer, std::uint16_t monitor) const {
    auto it = viewers_.find(viewer);
    return it != viewers_.end() && it->second.synced.count(monitor) != 0;
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
    if (keyRequestAt_ && !keyWanted_.empty())
        t = std::min(t, *keyRequestAt_ + config_.keyRequestRetry);
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
    s.queued = framesIn(it->second.queue);
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
        if (it->second.waiting.empty() && it->second.ended) {
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
