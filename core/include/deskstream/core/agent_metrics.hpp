// deskstream core: the agent's Prometheus metric set (names, help, labels, buckets) over a
// metrics::Registry, with the children its pipeline updates resolved once (one atomic update
// each). Served on [agent] metrics_listen when the agent runs alone, or on the relay's /metrics
// in role all (both given the same registry). Meanings: docs/operations.md, "Agent metrics".
#pragma once

#include "deskstream/core/frame_header.hpp"
#include "deskstream/core/metrics.hpp"
#include "deskstream/core/reconnect.hpp"

#include <array>
#include <memory>

namespace deskstream::core {

class AgentMetrics {
public:
    // `registry` null: the agent keeps its own.
    explicit AgentMetrics(std::shared_ptr<metrics::Registry> registry = nullptr);

    // One captured picture (the capture plugin's call), by the codec it is encoded with.
    void captured(FrameCodec codec, double seconds) {
        codec_[index(codec)].capture->observe(seconds);
    }
    // One encoded frame: the encoder's time and the payload size.
    void encoded(FrameCodec codec, double seconds, std::size_t bytes);
    void quality(int q) { quality_->set(q); }
    void inFlight(int frames) { inFlight_->set(frames); }
    // A capture skipped because the in-flight window was full.
    void windowDrop() { windowDrops_->inc(); }
    // A connection attempt after the first (each try of the reconnect loop).
    void reconnect() { reconnects_->inc(); }
    void breaker(BreakerState s);

    const std::shared_ptr<metrics::Registry>& registry() const { return registry_; }
    std::string render() const { return registry_->render(); }

private:
    static std::size_t index(FrameCodec c);
    struct PerCodec {
        metrics::Histogram* capture = nullptr;
        metrics::Histogram* encode = nullptr;
        metrics::Histogram* bytes = nullptr;
    };
    std::shared_ptr<metrics::Registry> registry_;
    std::array<PerCodec, 5> codec_{};
    metrics::Gauge* quality_ = nullptr;
    metrics::Gauge* inFlight_ = nullptr;
    metrics::Counter* windowDrops_ = nullptr;
    metrics::Counter* reconnects_ = nullptr;
    std::array<metrics::Gauge*, 3> breaker_{};
};

}  // namespace deskstream::core
