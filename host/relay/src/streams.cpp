// Streams: per-agent fan-out to viewers (see streams.hpp).
#include "streams.hpp"

#include <algorithm>
#include <cstdio>
#include <random>

namespace deskstream::relay {

std::shared_ptr<Streams::AgentStream> Streams::stream(core::ConnId agent, bool create) {
    std::lock_guard<std::mutex> lock(mapMutex_);
    auto it = streams_.find(agent);
    if (it != streams_.end()) return it->second;
    if (!create) return nullptr;
    auto s = std::make_shared<AgentStream>(config_);
    streams_[agent] = s;
    return s;
}

namespace {
constexpr std::size_t kKeyRequestIdsKept = 16;  // results of older requests are not expected
}  // namespace

std::string Streams::newKeyRequestPrefix() {
    // The agent remembers executed command ids across reconnections (docs/protocol.md
    // "Commands"): ids from an earlier relay run must not come back, so each run has its own.
    std::random_device rd;
    const std::uint64_t r = (std::uint64_t{rd()} << 32) ^ rd();
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(r));
    return std::string("keyframe-") + hex + "-";
}

void Streams::attach(core::ConnId agent, core::ConnId viewer, std::optional<int> monitor,
                     core::TimePoint now) {
    auto s = stream(agent, true);
    {
        std::lock_guard<std::mutex> lock(mapMutex_);
        auto& list = viewerStreams_[viewer];
        if (std::find(list.begin(), list.end(), agent) == list.end()) list.push_back(agent);
    }
    bool request;
    {
        std::lock_guard<std::mutex> lock(s->mutex);
        request = s->fanout.addViewer(viewer, monitor, now);
    }
    // No new viewer waits for the next change: the agent sends a full picture now.
    if (request) requestKeyframe(agent, *s);
    // The retry deadline is the agent connection's: its reader must ask for it again.
    peers_.wake(agent);
}

void Streams::requestKeyframe(core::ConnId agent, AgentStream& s) {
    core::CommandMessage m;
    m.commandId = keyRequestPrefix_ + std::to_string(++keyRequestSeq_);
    m.command.type = core::CommandType::RequestKeyframe;
    {
        std::lock_guard<std::mutex> lock(s.mutex);
        s.keyRequestIds.push_back(m.commandId);
        while (s.keyRequestIds.size() > kKeyRequestIdsKept) s.keyRequestIds.pop_front();
    }
    peers_.send(agent, m);
}

bool Streams::consumeKeyframeResult(core::ConnId agent, const std::string& commandId) {
    if (commandId.compare(0, keyRequestPrefix_.size(), keyRequestPrefix_) != 0) return false;
    auto s = stream(agent, false);
    if (!s) return false;
    std::lock_guard<std::mutex> lock(s->mutex);
    auto it = std::find(s->keyRequestIds.begin(), s->keyRequestIds.end(), commandId);
    if (it == s->keyRequestIds.end()) return false;
    s->keyRequestIds.erase(it);
    return true;
}

void Streams::detach(core::ConnId agent, core::ConnId viewer) {
    {
        std::lock_guard<std::mutex> lock(mapMutex_);
        auto it = viewerStreams_.find(viewer);
        if (it != viewerStreams_.end()) {
            auto& list = it->second;
            list.erase(std::remove(list.begin(), list.end(), agent), list.end());
            if (list.empty()) viewerStreams_.erase(it);
        }
    }
    auto s = stream(agent, false);
    if (!s) return;
    std::vector<core::AgentFrameAck> acks;
    {
        std::lock_guard<std::mutex> lock(s->mutex);
        acks = s->fanout.removeViewer(viewer);
    }
    sendAcks(agent, acks);
}

void Streams::sendAcks(core::ConnId agent, const std::vector<core::AgentFrameAck>& acks) {
    for (const auto& ack : acks) peers_.send(agent, ack);
}

void Streams::onAgentFrame(core::ConnId agent, Bytes bytes, const core::FrameHeader& header,
                           core::TimePoint now) {
    auto s = stream(agent, true);
    core::FrameResult r;
    {
        std::lock_guard<std::mutex> lock(s->mutex);
        r = s->fanout.onRect(std::move(bytes), core::rectInfo(header), now);
    }
    if (r.requestKeyframe) requestKeyframe(agent, *s);
    if (r.dropped) counters_.count(Counter::FramesDropped, r.dropped);
    if (r.dropped) metrics_.framesDropped(RelayMetrics::Drop::LaggingViewer, r.dropped);
    for (core::ConnId v : r.wake) peers_.notifyFrames(v);
    sendAcks(agent, r.acks);
}

Bytes Streams::pullFrame(core::ConnId viewer, core::TimePoint now) {
    std::vector<std::shared_ptr<AgentStream>> sources;
    {
        std::lock_guard<std::mutex> lock(mapMutex_);
        auto it = viewerStreams_.find(viewer);
        if (it == viewerStreams_.end()) return nullptr;
        for (core::ConnId a : it->second) {
            auto s = streams_.find(a);
            if (s != streams_.end()) sources.push_back(s->second);
        }
    }
    for (auto& s : sources) {
        std::optional<core::QueuedFrame> f;
        {
            std::lock_guard<std::mutex> lock(s->mutex);
            f = s->fanout.pop(viewer, now);
        }
        if (f) {
            counters_.count(Counter::FramesForwarded);
            return f->data;
        }
    }
    return nullptr;
}

void Streams::onAgentStats(core::ConnId agent, const core::AgentStats& stats) {
    auto s = stream(agent, true);
    std::lock_guard<std::mutex> lock(s->mutex);
    metrics_.agentStats(s->agentStats, stats);
    s->agentStats = stats;
}

std::optional<Streams::Snapshot> Streams::snapshot(core::ConnId agent, core::TimePoint now) {
    auto s = stream(agent, false);
    if (!s) return std::nullopt;
    Snapshot snap;
    std::lock_guard<std::mutex> lock(s->mutex);
    snap.fanout = s->fanout.stats(now);
    snap.agent = s->agentStats;
    for (core::ConnId v : s->fanout.viewerIds())
        if (auto vs = s->fanout.viewerStats(v, now)) snap.viewers.emplace_back(v, *vs);
    return snap;
}

void Streams::onViewerAck(core::ConnId agent, core::ConnId viewer, const core::ViewerFrameAck& ack,
                          core::TimePoint now) {
    auto s = stream(agent, false);
    if (!s) return;
    metrics_.deliveryLatencyMs(ack.latency);
    std::vector<core::AgentFrameAck> acks;
    {
        std::lock_guard<std::mutex> lock(s->mutex);
        acks = s->fanout.onViewerAck(viewer, ack.frameNumber, ack.latency, now);
    }
    sendAcks(agent, acks);
}

void Streams::tick(core::ConnId agent, core::TimePoint now) {
    auto s = stream(agent, false);
    if (!s) return;
    std::vector<core::AgentFrameAck> acks;
    bool request;
    {
        std::lock_guard<std::mutex> lock(s->mutex);
        if (s->fanout.nextDeadline() > now) return;
        acks = s->fanout.onTick(now);
        request = s->fanout.keyframeRequestDue(now);
    }
    sendAcks(agent, acks);
    if (request) requestKeyframe(agent, *s);
}

core::TimePoint Streams::deadline(core::ConnId agent) {
    auto s = stream(agent, false);
    if (!s) return core::TimePoint::max();
    std::lock_guard<std::mutex> lock(s->mutex);
    return s->fanout.nextDeadline();
}

void Streams::dropAgent(core::ConnId agent) {
    std::lock_guard<std::mutex> lock(mapMutex_);
    streams_.erase(agent);
    for (auto it = viewerStreams_.begin(); it != viewerStreams_.end();) {
        auto& list = it->second;
        list.erase(std::remove(list.begin(), list.end(), agent), list.end());
        it = list.empty() ? viewerStreams_.erase(it) : std::next(it);
    }
}

void Streams::dropViewer(core::ConnId viewer) {
    std::lock_guard<std::mutex> lock(mapMutex_);
    viewerStreams_.erase(viewer);
}

}  // namespace deskstream::relay
