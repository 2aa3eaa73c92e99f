// Streams: the fan-out of each agent connection's frames to its viewers (one core::FanOut per
// agent connection, each with its own mutex), and which agents each viewer receives from.
// Reaches connections only through Peers (wakes viewers' I/O loops, sends acks to agents).
// Reports drops (lagging viewers, agent window), delivery latency from acks to RelayMetrics.
// Asks an agent for a key frame when its FanOut says a viewer waits for one (a new subscriber,
// a viewer that lost a frame): a relay-originated request_keyframe command, not stored (a lost
// one is retried by the FanOut); its command_result is recognised here and consumed.
#pragma once

#include "deskstream/core/fanout.hpp"
#include "deskstream/core/frame_header.hpp"
#include "parts.hpp"
#include "relay_metrics.hpp"
#include "ws_connection.hpp"

#include <atomic>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace deskstream::relay {

class Streams {
public:
    Streams(core::FanOutConfig config, Peers& peers, Counters& counters, RelayMetrics& metrics)
        : config_(config),
          keyRequestPrefix_(newKeyRequestPrefix()),
          peers_(peers),
          counters_(counters),
          metrics_(metrics) {}

    // (Re)subscribes the viewer; it starts on the next key frame, which is asked for here.
    void attach(core::ConnId agent, core::ConnId viewer, std::optional<int> monitor,
                core::TimePoint now);
    void detach(core::ConnId agent, core::ConnId viewer);
    // A validated frame from agent `agent` (streamId already rewritten): queued by reference
    // for each subscribed viewer, whose I/O loop is woken; acks that became due go to the agent.
    void onAgentFrame(core::ConnId agent, Bytes bytes, const core::FrameHeader& header,
                      core::TimePoint now);
    // The viewer's I/O loop pulls its next frame (null when none).
    Bytes pullFrame(core::ConnId viewer, core::TimePoint now);
    void onViewerAck(core::ConnId agent, core::ConnId viewer, const core::ViewerFrameAck& ack,
                     core::TimePoint now);
    // Skips viewers that stopped acknowledging, repeats an unanswered key frame request; due
    // at deadline(agent).
    void tick(core::ConnId agent, core::TimePoint now);
    core::TimePoint deadline(core::ConnId agent);
    void onAgentStats(core::ConnId agent, const core::AgentStats& stats);
    // True (once) when `commandId` is a key frame request this relay sent to `agent`: its
    // command_result is ours, not a stored command's.
    bool consumeKeyframeResult(core::ConnId agent, const std::string& commandId);

    struct Snapshot {
        core::FanOutStats fanout;
        std::vector<std::pair<core::ConnId, core::ViewerStats>> viewers;
        std::optional<core::AgentStats> agent;
    };
    std::optional<Snapshot> snapshot(core::ConnId agent, core::TimePoint now);
    void dropAgent(core::ConnId agent);
    void dropViewer(core::ConnId viewer);

private:
    static std::string newKeyRequestPrefix();
    struct AgentStream {
        explicit AgentStream(core::FanOutConfig c) : fanout(c) {}
        std::mutex mutex;  // guards fanout; never held with mapMutex_ or across I/O
        core::FanOut fanout;
        std::optional<core::AgentStats> agentStats;  // the latest agent_stats
        std::deque<std::string> keyRequestIds;       // the last ones sent, awaiting results
    };
    std::shared_ptr<AgentStream> stream(core::ConnId agent, bool create);
    void sendAcks(core::ConnId agent, const std::vector<core::AgentFrameAck>& acks);
    // Sends request_keyframe to the agent (its stream's mutex NOT held).
    void requestKeyframe(core::ConnId agent, AgentStream& s);

    const core::FanOutConfig config_;
    const std::string keyRequestPrefix_;  // random per relay run: ids never repeat
    std::atomic<std::uint64_t> keyRequestSeq_{0};
    Peers& peers_;
    Counters& counters_;
    RelayMetrics& metrics_;
    std::mutex mapMutex_;                                                     // guards the two maps
    std::unordered_map<core::ConnId, std::shared_ptr<AgentStream>> streams_;  // by agent conn
    std::unordered_map<core::ConnId, std::vector<core::ConnId>> viewerStreams_;  // viewer -> agents
};

}  // namespace deskstream::relay
