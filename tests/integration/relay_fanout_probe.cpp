// relay_fanout_probe: measures the relay's fan-out on this machine (not a test).
//
//   relay_fanout_probe <viewers> <seconds> <frame_kb> <fps> <sqlite_plugin.so>
//
// The parent process runs the relay (real SQLite store plugin); a forked child process runs one
// agent sending <frame_kb> KB frames at <fps> and <viewers> viewers that read and ack every
// frame, so the relay's CPU time and RSS are measured apart from the clients'. Prints frames
// sent, frames received per viewer (min/avg), relay CPU seconds and max RSS.
#include "deskstream/core/frame_header.hpp"
#include "deskstream/relay/relay.hpp"
#include "ds_test/plugin_fixture.hpp"

#include <Poco/Logger.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/WebSocket.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <sys/resource.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

using Poco::Net::WebSocket;

namespace {

std::unique_ptr<WebSocket> connect(const std::string &path, Poco::Net::HTTPClientSession &s) {
    Poco::Net::HTTPRequest req(Poco::Net::HTTPRequest::HTTP_GET, path, Poco::Net::HTTPMessage::HTTP_1_1);
    Poco::Net::HTTPResponse resp;
    auto ws = std::make_unique<WebSocket>(s, req, resp);
    ws->setNoDelay(true);
    ws->setMaxPayloadSize(64 * 1024 * 1024);
    ws->setReceiveTimeout(Poco::Timespan(2, 0));
    return ws;
}

void sendText(WebSocket &ws, const std::string &t) {
    ws.sendFrame(t.data(), static_cast<int>(t.size()), WebSocket::FRAME_TEXT);
}

// Reads until a text message containing `needle`; answers pings.
bool waitText(WebSocket &ws, const std::string &needle) {
    for (int i = 0; i < 100; ++i) {
        Poco::Buffer<char> b(0);
        int flags = 0;
        int n = ws.receiveFrame(b, flags);
        if (n <= 0 && flags == 0) return false;
        std::string s(b.begin(), static_cast<size_t>(n));
        if (s.find(needle) != std::string::npos) return true;
    }
    return false;
}

int runClients(uint16_t port, int viewers, int seconds, int frameKb, int fps) {
    std::atomic<bool> stop{false};
    std::vector<uint64_t> received(static_cast<size_t>(viewers), 0);
    Poco::Net::HTTPClientSession as("127.0.0.1", port);
    auto agent = connect("/ws/agent", as);
    sendText(*agent, "{\"type\":\"handshake\",\"protocol\":1,\"role\":\"desktop\",\"clientId\":\"probe-pc\","
                     "\"monitors\":[{\"index\":0,\"width\":1920,\"height\":1080,\"primary\":true}]}");
    if (!waitText(*agent, "handshake_ack")) return 2;
    std::vector<std::thread> threads;
    std::atomic<int> ready{0};
    for (int v = 0; v < viewers; ++v) {
        threads.emplace_back([&, v] {
            try {
                Poco::Net::HTTPClientSession s("127.0.0.1", port);
                auto ws = connect("/ws/viewer", s);
                sendText(*ws, "{\"type\":\"handshake\",\"protocol\":1,\"role\":\"viewer\"}");
                if (!waitText(*ws, "handshake_ack")) return;
                sendText(*ws, "{\"type\":\"subscribe\",\"desktopClientId\":\"probe-pc\"}");
                if (!waitText(*ws, "subscribed")) return;
                ready.fetch_add(1);
                Poco::Buffer<char> b(0);
                while (!stop) {
                    int flags = 0;
                    b.resize(0);
                    int n = 0;
                    try {
                        n = ws->receiveFrame(b, flags);
                    } catch (const Poco::TimeoutException &) {
                        continue;
                    }
                    if (n <= 0 && flags == 0) return;
                    const int op = flags & WebSocket::FRAME_OP_BITMASK;
                    if (op == WebSocket::FRAME_OP_BINARY && n >= 64) {
                        ++received[static_cast<size_t>(v)];
                        const uint64_t fn = deskstream::core::peekFrameNumber(
                            reinterpret_cast<const uint8_t *>(b.begin()));
                        sendText(*ws, "{\"type\":\"frame_ack\",\"desktopClientId\":\"probe-pc\","
                                      "\"frameNumber\":" + std::to_string(fn) + ",\"latency\":1}");
                    } else if (op == WebSocket::FRAME_OP_TEXT) {
                        std::string t(b.begin(), static_cast<size_t>(n));
                        if (t.find("\"ping\"") != std::string::npos) {
                            auto p = t.find("\"timestamp\":");
                            std::string ts = p == std::string::npos ? "0" : t.substr(p + 12, t.find_first_of(",}", p) - p - 12);
                            sendText(*ws, "{\"type\":\"pong\",\"timestamp\":" + ts + ",\"serverTime\":0}");
                        }
                    }
                }
            } catch (const std::exception &e) {
                std::fprintf(stderr, "viewer %d: %s\n", v, e.what());
            }
        });
    }
    while (ready.load() < viewers) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    // The agent: frames at a fixed rate; its own reader drains acks and pings.
    std::thread agentReader([&] {
        Poco::Buffer<char> b(0);
        while (!stop) {
            int flags = 0;
            b.resize(0);
            try {
                int n = agent->receiveFrame(b, flags);
                if (n <= 0 && flags == 0) return;
                std::string t(b.begin(), static_cast<size_t>(n));
                if (t.find("\"ping\"") != std::string::npos) {
                    auto p = t.find("\"timestamp\":");
                    std::string ts = t.substr(p + 12, t.find_first_of(",}", p) - p - 12);
                    sendText(*agent, "{\"type\":\"pong\",\"timestamp\":" + ts + ",\"serverTime\":0}");
                }
            } catch (...) {
            }
        }
    });
    deskstream::core::FrameHeader h;
    h.flags = deskstream::core::frame_flags::kKey;
    h.screenWidth = 1920;
    h.screenHeight = 1080;
    h.rectWidth = 1920;
    h.rectHeight = 1080;
    std::vector<uint8_t> payload(static_cast<size_t>(frameKb) * 1024, 0x5a);
    const auto start = std::chrono::steady_clock::now();
    const auto period = std::chrono::microseconds(1000000 / fps);
    uint64_t sent = 0;
    while (std::chrono::steady_clock::now() - start < std::chrono::seconds(seconds)) {
        h.frameNumber = ++sent;
        auto frame = deskstream::core::buildFrame(h, payload.data(), payload.size());
        agent->sendFrame(frame.data(), static_cast<int>(frame.size()), WebSocket::FRAME_BINARY);
        std::this_thread::sleep_until(start + period * static_cast<int64_t>(sent));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    stop = true;
    for (auto &t : threads) t.join();
    agentReader.join();
    uint64_t min = UINT64_MAX, sum = 0;
    for (auto r : received) {
        min = std::min(min, r);
        sum += r;
    }
    std::printf("frames sent %llu; per viewer received min %llu avg %.1f (%.1f%% of sent)\n",
                static_cast<unsigned long long>(sent), static_cast<unsigned long long>(min),
                static_cast<double>(sum) / viewers, 100.0 * static_cast<double>(sum) / viewers / static_cast<double>(sent));
    return 0;
}

} // namespace

int main(int argc, char **argv) {
    if (argc != 6) {
        std::fprintf(stderr, "usage: %s <viewers> <seconds> <frame_kb> <fps> <sqlite_plugin.so>\n", argv[0]);
        return 64;
    }
    const int viewers = std::atoi(argv[1]), seconds = std::atoi(argv[2]);
    const int frameKb = std::atoi(argv[3]), fps = std::atoi(argv[4]);
    int pipefd[2];
    if (pipe(pipefd) != 0) return 1;
    pid_t child = fork();
    if (child == 0) { // clients: wait for the port, then run
        close(pipefd[1]);
        uint16_t port = 0;
        if (read(pipefd[0], &port, sizeof port) != sizeof port) return 1;
        return runClients(port, viewers, seconds, frameKb, fps);
    }
    close(pipefd[0]);
    Poco::Logger::root().setLevel("error");
    const std::string dir = std::filesystem::temp_directory_path() / ("ds-probe-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir);
    ds_test::TestHost host;
    ds_test::LoadedPlugin plugin(argv[5]);
    ds_test::TestConfig config("store.sqlite", {{"path", dir + "/probe.db"}});
    void *instance = nullptr;
    char err[512] = {0};
    if (plugin.store().create(host.api(), config.get(), &instance, err, sizeof err) != DS_OK) {
        std::fprintf(stderr, "store: %s\n", err);
        return 1;
    }
    rusage before{}, after{};
    {
        deskstream::relay::RelayOptions o;
        o.listen = "127.0.0.1:0";
        o.http_max_threads = std::max(64, viewers + 16);
        o.max_viewers = viewers + 1;
        deskstream::relay::Relay relay(o, &plugin.store(), instance, Poco::Logger::get("probe"));
        relay.start();
        uint16_t port = relay.port();
        getrusage(RUSAGE_SELF, &before);
        if (write(pipefd[1], &port, sizeof port) != sizeof port) return 1;
        int status = 0;
        waitpid(child, &status, 0);
        getrusage(RUSAGE_SELF, &after);
        auto c = relay.counters();
        std::printf("relay: frames_received %llu frames_forwarded %llu frames_dropped %llu\n",
                    static_cast<unsigned long long>(c["frames_received"]),
                    static_cast<unsigned long long>(c["frames_forwarded"]),
                    static_cast<unsigned long long>(c["frames_dropped"]));
        relay.stop();
    }
    auto secs = [](const timeval &t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
    const double cpu = secs(after.ru_utime) - secs(before.ru_utime) + secs(after.ru_stime) - secs(before.ru_stime);
    std::printf("relay process: %.2f CPU s over ~%d s (%.2f cores), max RSS %.1f MB\n", cpu,
                seconds, cpu / (seconds + 0.5), after.ru_maxrss / 1024.0);
    plugin.store().destroy(instance);
    std::filesystem::remove_all(dir);
    return 0;
}
