// The agent's metric definitions; see agent_metrics.hpp.
#include "deskstream/core/agent_metrics.hpp"

namespace deskstream::core {

namespace {

constexpr FrameCodec kCodecs[] = {FrameCodec::Jpeg, FrameCodec::Webp, FrameCodec::Avif,
                                  FrameCodec::Png, FrameCodec::RawBgra};
constexpr BreakerState kStates[] = {BreakerState::Closed, BreakerState::Open,
                                    BreakerState::HalfOpen};

}  // namespace

AgentMetrics::AgentMetrics(std::shared_ptr<metrics::Registry> registry)
    : registry_(registry ? std::move(registry) : std::make_shared<metrics::Registry>()) {
    auto& r = *registry_;
    // Seconds, 0.5 ms .. 1 s: a 1080p capture takes a few ms, a JPEG encode 3-10 ms, AVIF ~100 ms.
    const auto seconds = metrics::exponentialBuckets(0.0005, 2, 12);
    // Bytes, 1 KiB .. 16 MiB.
    const auto bytes = metrics::exponentialBuckets(1024, 4, 8);
    auto& capture = r.histogram("deskstream_agent_capture_duration_seconds",
                                "Time to capture one picture, by the codec it is encoded with.",
                                seconds, {"codec"});
    auto& encode = r.histogram("deskstream_agent_encode_duration_seconds",
                               "Time to encode one frame, by codec.", seconds, {"codec"});
    auto& size = r.histogram("deskstream_agent_encoded_frame_bytes",
                             "Size of encoded frames (payload), by codec.", bytes, {"codec"});
    for (FrameCodec c : kCodecs) {
        codec_[index(c)] = {&capture.labels({toString(c)}), &encode.labels({toString(c)}),
                            &size.labels({toString(c)})};
    }
    quality_ = &r.gauge("deskstream_agent_quality",
                        "Current encoder quality (0-100) chosen by flow control.")
                    .get();
    inFlight_ =
        &r.gauge("deskstream_agent_frames_in_flight", "Frames sent and not yet acknowledged.")
             .get();
    windowDrops_ = &r.counter("deskstream_agent_window_drops_total",
                              "Captures skipped because the in-flight window was full.")
                        .get();
    reconnects_ = &r.counter("deskstream_agent_reconnects_total",
                             "Connection attempts to the relay after the first.")
                       .get();
    auto& breaker = r.gauge(
        "deskstream_agent_circuit_breaker",
        "1 for the reconnect circuit breaker's current state, 0 for the others.", {"state"});
    for (BreakerState s : kStates)
        breaker_[static_cast<std::size_t>(s)] = &breaker.labels({toString(s)});
    this->breaker(BreakerState::Closed);
}

std::size_t AgentMetrics::index(FrameCodec c) {
    const auto i = static_cast<std::size_t>(c);
    return i >= 1 && i <= 5 ? i - 1 : 0;
}

void AgentMetrics::encoded(FrameCodec codec, double seconds, std::size_t size) {
    const PerCodec& p = codec_[index(codec)];
    p.encode->observe(seconds);
    p.bytes->observe(static_cast<double>(size));
}

void AgentMetrics::breaker(BreakerState s) {
    for (BreakerState each : kStates)
        breaker_[static_cast<std::size_t>(each)]->set(each == s ? 1 : 0);
}

}  // namespace deskstream::core
