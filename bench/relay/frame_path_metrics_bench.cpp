// The cost of the relay's metrics on its frame path (issue 15): the per-frame work of the relay
// (header validation, stream id rewrite, FanOut enqueue, one pop and one frame_ack per viewer)
// with and without the metric updates the relay makes on that path (frames received, frames
// forwarded per viewer, delivery latency histogram per ack), in the same run. The updates use
// core's real registry with the relay's families and buckets. Sockets are left out; the
// received message is copied into a fresh buffer of its size, as the WebSocket receive does
// (payload 0: only the 64-byte header, the bare bookkeeping path, the harshest ratio).
// Each round runs a batch of frames with metrics off and one with metrics on (in alternating
// order) and compares their thread CPU time, so load from other processes on the machine hits
// both sides of a pair alike; the result is the median of the per-round ratios.
// Usage: ds_bench_frame_path_metrics [payload_bytes=0] [rounds=41] [frames_per_batch=20000]
// Results and the command: docs/performance.md.
#include "deskstream/core/fanout.hpp"
#include "deskstream/core/frame_header.hpp"
#include "deskstream/core/metrics.hpp"

#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <vector>

namespace {

using namespace deskstream::core;

constexpr int kViewers = 3;

struct RelayFramePathMetrics {
    metrics::Registry registry;
    metrics::Counter& received =
        registry.counter("deskstream_relay_frames_received_total", "Frames received.").get();
    metrics::Counter& forwarded =
        registry.counter("deskstream_relay_frames_forwarded_total", "Frames forwarded.").get();
    metrics::Counter& lagging =
        registry.counter("deskstream_relay_frames_dropped_total", "Drops.", {"reason"})
            .labels({"lagging_viewer"});
    metrics::Histogram& latency =
        registry
            .histogram("deskstream_relay_frame_delivery_latency_seconds", "Latency.",
                       {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10})
            .get();
};

double threadCpuNs() {
    timespec t{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return static_cast<double>(t.tv_sec) * 1e9 + static_cast<double>(t.tv_nsec);
}

// One relay-side frame path: what Session::onBinary, RelayImpl::onAgentFrame, pullFrame and
// onViewerAck do for one agent frame and kViewers viewers.
class FramePath {
public:
    FramePath(RelayFramePathMetrics* metrics, size_t payloadBytes) : m_(metrics) {
        for (ConnId v = 1; v <= kViewers; ++v) fanout_.addViewer(v);
        FrameHeader h;
        h.screenWidth = h.rectWidth = 1920;
        h.screenHeight = h.rectHeight = 1080;
        h.quality = 75;
        std::vector<uint8_t> payload(payloadBytes, 0x5a);
        frame_ = buildFrame(h, payload.data(), payload.size());
    }
    uint64_t run(int frames) {
        uint64_t sink = 0;
        for (int i = 0; i < frames; ++i) {
            auto bytes = std::make_shared<std::vector<uint8_t>>(frame_.begin(), frame_.end());
            if (m_) m_->received.inc();
            auto header = decodeFrameChecked(frame_.data(), frame_.size());
            if (!header.ok()) std::abort();
            rewriteStreamId(bytes->data(), bytes->size(), 7);
            now_ += std::chrono::milliseconds(16);
            FrameResult r = fanout_.onFrame(std::move(bytes), ++n_, 0, true, now_);
            if (m_ && r.dropped) m_->lagging.inc(r.dropped);
            for (ConnId v = 1; v <= kViewers; ++v) {
                auto f = fanout_.pop(v, now_);
                if (m_ && f) m_->forwarded.inc();
                sink += f ? f->frameNumber : 0;
                if (m_) m_->latency.observe(5 / 1000.0);
                sink += fanout_.onViewerAck(v, n_, 5, now_).size();
            }
        }
        return sink;
    }

private:
    RelayFramePathMetrics* m_;
    FanOut fanout_;
    std::vector<uint8_t> frame_;
    uint64_t n_ = 0;
    TimePoint now_{};
};

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
    const size_t payload = argc > 1 ? static_cast<size_t>(std::atol(argv[1])) : 0;
    const int rounds = argc > 2 ? std::max(3, std::atoi(argv[2])) : 41;
    const int frames = argc > 3 ? std::max(100, std::atoi(argv[3])) : 20000;
    RelayFramePathMetrics metrics;
    FramePath off(nullptr, payload), on(&metrics, payload);
    volatile uint64_t sink = off.run(frames) + on.run(frames);  // warm-up
    std::vector<double> ratios, offNs, onNs;
    for (int r = 0; r < rounds; ++r) {
        double tOff = 0, tOn = 0;
        for (int k = 0; k < 2; ++k) {
            const bool metricsFirst = (r + k) % 2 == 0;
            FramePath& p = metricsFirst ? on : off;
            const double t0 = threadCpuNs();
            sink = sink + p.run(frames);
            (metricsFirst ? tOn : tOff) = threadCpuNs() - t0;
        }
        ratios.push_back(tOn / tOff);
        offNs.push_back(tOff / frames);
        onNs.push_back(tOn / frames);
    }
    (void)sink;
    const double ratio = median(ratios);
    std::printf(
        "frame path, payload %zu bytes, %d viewers, %d rounds of %d frames per side "
        "(thread CPU time)\n",
        payload, kViewers, rounds, frames);
    std::printf("metrics off: median %.1f ns/frame\n", median(offNs));
    std::printf("metrics on:  median %.1f ns/frame\n", median(onNs));
    std::printf("on / off: median of per-round ratios %.4f (cost %+.2f %%), min %.4f, max %.4f\n",
                ratio, (ratio - 1) * 100, *std::min_element(ratios.begin(), ratios.end()),
                *std::max_element(ratios.begin(), ratios.end()));
    std::printf("frames counted: received %llu, forwarded %llu, latency observations %llu\n",
                static_cast<unsigned long long>(metrics.received.value()),
                static_cast<unsigned long long>(metrics.forwarded.value()),
                static_cast<unsigned long long>(metrics.latency.snapshot().count));
    return 0;
}
