// ds_fanout_ceiling: the bare-Poco fan-out ceiling (bench/relay/README.md).
//
//   ds_fanout_ceiling --frame f.jpg [--port 0] [--fps 0] [--max-seconds 60] [--max-connections 1000]
//
// A Poco::Net::HTTPServer on 127.0.0.1 that upgrades every /ws/viewer request to a WebSocket
// and, on that connection's server thread, sends one shared recorded frame (64-byte deskstream
// header + the file's bytes, built with core's header codec) as fast as sendFrame returns. No
// JSON, no acks, no queues: the same Poco calls the relay's writers make, minus the relay.
// With --fps F every connection sends at the same ticks (start + k/F) a frame numbered k whose
// captureTimeUs is the tick's wall time, so the receivers measure what a bare fan-out of one
// frame to N sockets costs in latency on this machine (the floor of the relay's latency).
// Receivers: `ds_loadgen --raw --url ws://127.0.0.1:PORT --viewers N --relay-pid <this pid>`.
//
// Prints "PORT <n>" on stdout once listening. Stops on SIGINT/SIGTERM or after --max-seconds,
// then prints the bytes it sent.
#include "deskstream/core/frame_header.hpp"
#include "deskstream/core/protocol.hpp"

#include <Poco/Buffer.h>
#include <Poco/Exception.h>

#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/WebSocket.h>
#include <Poco/ThreadPool.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <thread>
#include <vector>

using Poco::Net::WebSocket;

namespace {

std::atomic<bool> gStop{false};
std::atomic<uint64_t> gBytes{0};
std::atomic<uint64_t> gFrames{0};
std::atomic<int> gOpen{0};
std::shared_ptr<const std::vector<uint8_t>> gFrame;  // the one shared buffer
double gFps = 0;                                     // 0: as fast as sendFrame returns
bool gParseAcks = false;                             // --parse-acks: read and parse frame_acks
std::atomic<uint64_t> gAcks{0};                      // frame_acks parsed (with --parse-acks)
std::chrono::steady_clock::time_point gStart;        // tick origin shared by all connections

deskstream::core::FrameHeader gHeader;  // header of gFrame (paced mode varies number and time)

void onSignal(int) { gStop = true; }

class SenderHandler : public Poco::Net::HTTPRequestHandler {
public:
    void handleRequest(Poco::Net::HTTPServerRequest& req,
                       Poco::Net::HTTPServerResponse& resp) override {
        if (req.getURI() != "/ws/viewer") {
            resp.setStatus(Poco::Net::HTTPResponse::HTTP_NOT_FOUND);
            resp.send() << "only /ws/viewer\n";
            return;
        }
        std::shared_ptr<const std::vector<uint8_t>> frame = gFrame;
        try {
            WebSocket ws(req, resp);
            ws.setNoDelay(true);
            ws.setSendTimeout(Poco::Timespan(10, 0));
            gOpen.fetch_add(1);
            // --parse-acks: the receivers ack every frame as the relay's viewers do, and this
            // connection reads and parses each ack with the relay's parser on a thread of its
            // own (the relay's per-connection reader), so both servers pay for the acks.
            std::thread reader;
            std::atomic<bool> readerDone{false};
            if (gParseAcks) {
                ws.setReceiveTimeout(Poco::Timespan(0, 200000));  // to see gStop
                reader = std::thread([&ws, &readerDone] {
                    Poco::Buffer<char> buf(0);
                    try {
                        while (!gStop.load(std::memory_order_relaxed)) {
                            int flags = 0;
                            buf.resize(0);
                            try {
                                if (ws.receiveFrame(buf, flags) <= 0 && flags == 0) break;
                            } catch (const Poco::TimeoutException&) {
                                continue;
                            }
                            if ((flags & WebSocket::FRAME_OP_BITMASK) == WebSocket::FRAME_OP_CLOSE)
                                break;
                            if ((flags & WebSocket::FRAME_OP_BITMASK) != WebSocket::FRAME_OP_TEXT)
                                continue;
                            auto m = deskstream::core::parseMessage(
                                std::string(buf.begin(), buf.size()),
                                deskstream::core::Channel::ViewerToRelay);
                            if (m.ok()) gAcks.fetch_add(1, std::memory_order_relaxed);
                        }
                    } catch (const std::exception&) {}
                    readerDone = true;
                });
            }
            struct JoinReader {
                std::thread& t;
                ~JoinReader() {
                    if (t.joinable()) t.join();
                }
            } joinReader{reader};
            const int size = static_cast<int>(frame->size());
            uint64_t frames = 0;
            // Paced mode rewrites the header per frame: this connection's own copy.
            std::vector<uint8_t> own;
            const auto period =
                std::chrono::nanoseconds(gFps > 0 ? static_cast<int64_t>(1e9 / gFps) : 0);
            uint64_t tick =
                gFps > 0
                    ? static_cast<uint64_t>((std::chrono::steady_clock::now() - gStart) / period)
                    : 0;
            if (gFps > 0) own = *frame;
            while (!gStop.load(std::memory_order_relaxed) &&
                   !readerDone.load(std::memory_order_relaxed)) {
                const uint8_t* data = frame->data();
                if (gFps > 0) {
                    ++tick;
                    std::this_thread::sleep_until(gStart + period * static_cast<int64_t>(tick));
                    deskstream::core::FrameHeader h = gHeader;
                    h.frameNumber = tick;
                    h.captureTimeUs = static_cast<uint64_t>(
                        std::chrono::duration_cast<std::chrono::microseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count());
                    deskstream::core::encodeFrameHeader(h, own.data());
                    data = own.data();
                }
                ws.sendFrame(data, size, WebSocket::FRAME_BINARY);
                ++frames;
                // Batched: one atomic add per 16 frames keeps counters off the hot path.
                if ((frames & 15) == 0) {
                    gFrames.fetch_add(16, std::memory_order_relaxed);
                    gBytes.fetch_add(16ull * static_cast<uint64_t>(size),
                                     std::memory_order_relaxed);
                }
            }
            ws.shutdown();
        } catch (const std::exception&) {
            // The receiver went away (end of its run): normal for this tool.
        }
        gOpen.fetch_sub(1);
    }
};

class Factory : public Poco::Net::HTTPRequestHandlerFactory {
public:
    Poco::Net::HTTPRequestHandler* createRequestHandler(
        const Poco::Net::HTTPServerRequest&) override {
        return new SenderHandler;
    }
};

[[noreturn]] void usage(const std::string& error) {
    if (!error.empty()) std::fprintf(stderr, "ds_fanout_ceiling: %s\n\n", error.c_str());
    std::fprintf(stderr,
                 "usage: ds_fanout_ceiling --frame FILE [--port 0] [--fps 0 (unpaced)] "
                 "[--max-seconds 60] [--max-connections 1000] [--parse-acks 1]\n");
    std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
    std::string file;
    int port = 0, maxSeconds = 60, maxConnections = 1000;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (i + 1 >= argc) usage(a == "--help" ? "" : a + " needs a value");
        std::string v = argv[++i];
        char* end = nullptr;
        long n = std::strtol(v.c_str(), &end, 10);
        const bool isNumber = !v.empty() && *end == '\0';
        if (a == "--frame")
            file = v;
        else if (a == "--port" && isNumber && n >= 0 && n < 65536)
            port = static_cast<int>(n);
        else if (a == "--max-seconds" && isNumber && n > 0)
            maxSeconds = static_cast<int>(n);
        else if (a == "--fps" && isNumber && n >= 0 && n <= 1000)
            gFps = static_cast<double>(n);
        else if (a == "--max-connections" && isNumber && n > 0 && n <= 10000)
            maxConnections = static_cast<int>(n);
        else if (a == "--parse-acks" && isNumber)
            gParseAcks = n != 0;
        else
            usage("bad option or value: " + a + " " + v);
    }
    if (file.empty()) usage("--frame is required");
    std::ifstream f(file, std::ios::binary);
    std::vector<uint8_t> payload((std::istreambuf_iterator<char>(f)),
                                 std::istreambuf_iterator<char>());
    if (payload.empty()) usage("--frame: " + file + " is missing or empty");

    deskstream::core::FrameHeader h;
    h.flags = deskstream::core::frame_flags::kKey;
    h.frameNumber = 1;
    h.quality = 75;
    h.screenWidth = h.rectWidth = 1920;
    h.screenHeight = h.rectHeight = 1080;
    h.payloadLength = static_cast<uint32_t>(payload.size());
    gHeader = h;
    gFrame = std::make_shared<const std::vector<uint8_t>>(
        deskstream::core::buildFrame(h, payload.data(), payload.size()));
    gStart = std::chrono::steady_clock::now();

    std::signal(SIGINT, onSignal);
    std::signal(SIGTERM, onSignal);
    std::signal(SIGPIPE, SIG_IGN);

    Poco::Net::ServerSocket socket;
    socket.bind(Poco::Net::SocketAddress("127.0.0.1", static_cast<Poco::UInt16>(port)), true,
                false);
    socket.listen(maxConnections);
    auto* params = new Poco::Net::HTTPServerParams;
    params->setMaxThreads(maxConnections);
    params->setMaxQueued(maxConnections);
    // One thread per connection for its whole life, as in the relay: the pool must hold them all.
    Poco::ThreadPool pool(2, maxConnections + 4);
    Poco::Net::HTTPServer server(new Factory, pool, socket, params);
    server.start();
    std::printf("PORT %u\n", static_cast<unsigned>(socket.address().port()));
    std::fflush(stdout);

    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(maxSeconds);
    while (!gStop.load() && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    gStop = true;
    // Stop accepting, let the senders see gStop and leave, then stop the server (Poco 1.11).
    for (int i = 0; i < 100 && gOpen.load() > 0; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    server.stopAll(true);
    pool.joinAll();
    std::printf(
        "ds_fanout_ceiling: sent %llu frames, %.3f GB (frame %zu bytes), parsed %llu frame_acks\n",
        static_cast<unsigned long long>(gFrames.load()), static_cast<double>(gBytes.load()) / 1e9,
        gFrame->size(), static_cast<unsigned long long>(gAcks.load()));
    return 0;
}
