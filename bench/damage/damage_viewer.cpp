// ds_damage_viewer: one viewer that measures what damage-driven streaming costs on the wire
// (bench/damage/run.sh, docs/performance.md "Damage-driven streaming").
//
//   ds_damage_viewer --url ws://127.0.0.1:8080 --desktop bench-pc --warmup-seconds 3 --seconds 10
//
// Handshakes as a viewer, subscribes to --desktop, acks each frame once after its last rect (as
// the browser does), and after the warm-up counts for --seconds: frames (distinct frame
// numbers), rect messages, bytes (whole messages), and the latency from the header's
// captureTimeUs to the receipt (wall clock; same machine). Prints one JSON line.
#include "deskstream/core/frame_header.hpp"

#include <Poco/Buffer.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/WebSocket.h>
#include <Poco/URI.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

using Poco::Net::WebSocket;

namespace {

std::int64_t wallUs() {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

void sendText(WebSocket& ws, const std::string& text) {
    ws.sendFrame(text.data(), static_cast<int>(text.size()), WebSocket::FRAME_TEXT);
}

// The value of "key":<number> in a flat JSON text (the relay's ping); -1 when absent.
long long jsonNumber(const std::string& text, const std::string& key) {
    const auto at = text.find("\"" + key + "\":");
    if (at == std::string::npos) return -1;
    return std::atoll(text.c_str() + at + key.size() + 3);
}

}  // namespace

int main(int argc, char** argv) {
    std::string url = "ws://127.0.0.1:8080", desktop = "bench-pc";
    double warmup = 3, seconds = 10;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string k = argv[i], v = argv[i + 1];
        if (k == "--url")
            url = v;
        else if (k == "--desktop")
            desktop = v;
        else if (k == "--warmup-seconds")
            warmup = std::atof(v.c_str());
        else if (k == "--seconds")
            seconds = std::atof(v.c_str());
        else {
            std::fprintf(stderr, "ds_damage_viewer: unknown option %s\n", k.c_str());
            return 2;
        }
    }
    try {
        Poco::URI uri(url);
        Poco::Net::HTTPClientSession session(uri.getHost(), uri.getPort());
        Poco::Net::HTTPRequest request(Poco::Net::HTTPRequest::HTTP_GET, "/ws/viewer",
                                       Poco::Net::HTTPMessage::HTTP_1_1);
        Poco::Net::HTTPResponse response;
        WebSocket ws(session, request, response);
        ws.setReceiveTimeout(Poco::Timespan(0, 100 * 1000));
        sendText(ws, "{\"type\":\"handshake\",\"protocol\":1,\"role\":\"viewer\",\"token\":\"\"}");
        sendText(ws, "{\"type\":\"subscribe\",\"desktopClientId\":\"" + desktop + "\"}");

        const auto start = std::chrono::steady_clock::now();
        const auto measureFrom = start + std::chrono::microseconds(std::int64_t(warmup * 1e6));
        const auto measureTo = measureFrom + std::chrono::microseconds(std::int64_t(seconds * 1e6));
        std::uint64_t frames = 0, rects = 0, bytes = 0, lastFrame = 0, keys = 0;
        std::vector<double> latencyMs;
        Poco::Buffer<char> buf(0);
        while (std::chrono::steady_clock::now() < measureTo) {
            int flags = 0;
            buf.resize(0);
            int n = 0;
            try {
                n = ws.receiveFrame(buf, flags);
            } catch (const Poco::TimeoutException&) {
                continue;
            }
            if (n == 0 && (flags & WebSocket::FRAME_OP_BITMASK) == WebSocket::FRAME_OP_CLOSE) {
                std::fprintf(stderr, "ds_damage_viewer: the relay closed the connection\n");
                return 1;
            }
            const int op = flags & WebSocket::FRAME_OP_BITMASK;
            if (op == WebSocket::FRAME_OP_TEXT) {
                const std::string text(buf.begin(), buf.size());
                if (text.find("\"type\":\"ping\"") != std::string::npos)
                    sendText(ws, "{\"type\":\"pong\",\"timestamp\":" +
                                     std::to_string(jsonNumber(text, "timestamp")) +
                                     ",\"serverTime\":0}");
                continue;
            }
            if (op != WebSocket::FRAME_OP_BINARY) continue;
            const auto* data = reinterpret_cast<const std::uint8_t*>(buf.begin());
            const auto d = deskstream::core::decodeFrame(data, buf.size(), 0);
            if (!d.ok) continue;
            const auto& h = d.header;
            const auto now = std::chrono::steady_clock::now();
            if (now >= measureFrom) {
                ++rects;
                bytes += buf.size();
                if (h.frameNumber != lastFrame) ++frames;
                if (h.flags & deskstream::core::frame_flags::kKey) ++keys;
                latencyMs.push_back(double(wallUs() - std::int64_t(h.captureTimeUs)) / 1000.0);
            }
            lastFrame = h.frameNumber;
            const bool completes = (h.flags & deskstream::core::frame_flags::kLastRect) ||
                                   !(h.flags & deskstream::core::frame_flags::kPartial);
            if (completes)
                sendText(ws, "{\"type\":\"frame_ack\",\"desktopClientId\":\"" + desktop +
                                 "\",\"frameNumber\":" + std::to_string(h.frameNumber) +
                                 ",\"latency\":1}");
        }
        std::sort(latencyMs.begin(), latencyMs.end());
        const double p50 = latencyMs.empty() ? -1 : latencyMs[latencyMs.size() / 2];
        std::printf(
            "{\"seconds\":%.3f,\"frames\":%llu,\"rects\":%llu,\"keys\":%llu,\"bytes\":%llu,"
            "\"bytesPerSecond\":%.1f,\"framesPerSecond\":%.2f,\"latencyP50Ms\":%.2f}\n",
            seconds, static_cast<unsigned long long>(frames),
            static_cast<unsigned long long>(rects), static_cast<unsigned long long>(keys),
            static_cast<unsigned long long>(bytes), double(bytes) / seconds,
            double(frames) / seconds, p50);
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "ds_damage_viewer: %s\n", e.what());
        return 1;
    }
}
