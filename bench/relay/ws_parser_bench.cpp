// The cost of the relay's WebSocket parsing (core::ws::Parser) against the floor of any receive
// path: copying the received bytes into the message buffer. Both sides take the same masked
// client frame in 64 KiB reads (what the relay's reader gets from one recv); the baseline copies
// each read into a vector reserved at the frame's size, the parser unmasks, checks, (for text)
// validates UTF-8 and hands the message over. Each round times a batch of each, in alternating
// order, by thread CPU time, so load from other processes hits both sides of a pair alike; the
// result is the median of the per-round ratios.
// Usage: ds_bench_ws_parser [payload_bytes=300000] [text=0|1] [rounds=41] [frames_per_batch=200]
// Results and the command: docs/performance.md, "WebSocket parsing".
#include "deskstream/ws_codec.hpp"

#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace {

using namespace deskstream::core::ws;

constexpr std::size_t kRead = 64 * 1024;

double threadCpuNs() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
}

std::vector<std::uint8_t> maskedFrame(std::size_t size, bool text) {
    std::vector<std::uint8_t> payload(size);
    for (std::size_t i = 0; i < size; ++i)
        payload[i] =
            text ? static_cast<std::uint8_t>('a' + i % 26) : static_cast<std::uint8_t>(i * 31);
    std::uint8_t header[10];
    const std::size_t h = writeHeader(header, text ? Opcode::Text : Opcode::Binary, size);
    std::vector<std::uint8_t> f(header, header + h);
    f[1] |= 0x80;
    const std::uint8_t mask[4] = {0x11, 0x22, 0x33, 0x44};
    f.insert(f.end(), mask, mask + 4);
    for (std::size_t i = 0; i < size; ++i) f.push_back(payload[i] ^ mask[i % 4]);
    return f;
}

volatile std::size_t sink = 0;

double copyBatch(const std::vector<std::uint8_t>& frame, int frames) {
    const double t0 = threadCpuNs();
    for (int n = 0; n < frames; ++n) {
        std::vector<std::uint8_t> message;
        message.reserve(frame.size());
        for (std::size_t at = 0; at < frame.size(); at += kRead) {
            const std::size_t len = std::min(kRead, frame.size() - at);
            message.insert(message.end(), frame.begin() + static_cast<long>(at),
                           frame.begin() + static_cast<long>(at + len));
        }
        sink = sink + message.size();
    }
    return threadCpuNs() - t0;
}

double parseBatch(const std::vector<std::uint8_t>& frame, int frames, Limits limits) {
    Parser parser(limits);
    std::vector<Message> out;
    const double t0 = threadCpuNs();
    for (int n = 0; n < frames; ++n) {
        for (std::size_t at = 0; at < frame.size(); at += kRead) {
            const std::size_t len = std::min(kRead, frame.size() - at);
            if (parser.feed(frame.data() + at, len, out)) std::abort();
        }
        sink = sink + out.back().payloadSize();
        out.clear();
    }
    return threadCpuNs() - t0;
}

}  // namespace

int main(int argc, char** argv) {
    const std::size_t payload = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 300000;
    const bool text = argc > 2 && std::atoi(argv[2]) != 0;
    const int rounds = argc > 3 ? std::atoi(argv[3]) : 41;
    const int frames = argc > 4 ? std::atoi(argv[4]) : 200;
    Limits limits;
    limits.maxMessageBytes = 1u << 30;
    limits.maxTextBytes = 1u << 30;
    const std::vector<std::uint8_t> frame = maskedFrame(payload, text);

    copyBatch(frame, frames);  // warm-up
    parseBatch(frame, frames, limits);
    std::vector<double> ratios, copyNs, parseNs;
    for (int r = 0; r < rounds; ++r) {
        double c = 0, p = 0;
        if (r % 2 == 0) {
            c = copyBatch(frame, frames);
            p = parseBatch(frame, frames, limits);
        } else {
            p = parseBatch(frame, frames, limits);
            c = copyBatch(frame, frames);
        }
        copyNs.push_back(c / frames);
        parseNs.push_back(p / frames);
        ratios.push_back(p / c);
    }
    auto median = [](std::vector<double> v) {
        std::sort(v.begin(), v.end());
        return v[v.size() / 2];
    };
    const double c = median(copyNs), p = median(parseNs);
    std::printf("payload %zu bytes (%s), %d rounds x %d frames, 64 KiB reads\n", payload,
                text ? "text" : "binary", rounds, frames);
    std::printf("copy floor: %.0f ns/frame (%.2f GB/s)\n", c, static_cast<double>(payload) / c);
    std::printf("parser:     %.0f ns/frame (%.2f GB/s)\n", p, static_cast<double>(payload) / p);
    std::printf("parser / copy (median of %d pairs): %.3f\n", rounds, median(ratios));
    return 0;
}
