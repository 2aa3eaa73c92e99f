// ds_loadgen: load generator for the relay's frame fan-out (bench/relay/README.md).
//
//   ds_loadgen --url ws://127.0.0.1:8080 --desktop bench-pc --viewers 200 --seconds 10
//              [--source replay --frame f.jpg --fps 30 [--max-in-flight 10]]
//              [--ack-delay-ms 0] [--token T] [--relay-pid PID] [--warmup-seconds 2] [--json] [--json-out F]
//   ds_loadgen --raw --url ws://127.0.0.1:9000 --viewers 50 --seconds 10 --relay-pid PID
//
// N viewer connections (one thread each) handshake as viewers, subscribe to --desktop and ack
// every binary frame like the browser does. With --source replay this process is also the agent:
// it replays one recorded frame with increasing frame numbers, paced at --fps (0: as fast as the
// relay's frame_acks open the window). Latency is then relay-added latency: viewer receive time
// minus the time the source was about to send that frame (one process, steady clock).
// Without --source the frames come from a real agent and latency is receive wall time minus the
// header's captureTimeUs. --raw skips the protocol (no handshake, no acks) and only counts what
// arrives: the client half of the bare-Poco ceiling (ds_fanout_ceiling).
//
// Only the measurement window (after the warm-up) counts. The run always ends by itself: a
// watchdog exits with code 3 if a socket call hangs past the run's budget.
#include "deskstream/core/frame_header.hpp"
#include "deskstream/core/protocol.hpp"

#include <Poco/Buffer.h>
#include <Poco/Exception.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/WebSocket.h>
#include <Poco/URI.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <iterator>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

namespace core = deskstream::core;
using Poco::Net::WebSocket;
using Clock = std::chrono::steady_clock;

namespace {

// ------------------------------------------------------------------ options

struct Options {
    std::string url = "ws://127.0.0.1:8080";
    std::string desktop = "bench-pc";
    int viewers = 10;
    double seconds = 10;
    double warmupSeconds = 2;
    int ackDelayMs = 0;
    std::string token;
    long relayPid = 0;
    bool raw = false;
    bool idle = false;     // viewers only handshake and answer pings (no subscription, no frames)
    bool rawAcks = false;  // --raw-acks: raw receivers ack every frame as viewers do
    std::string rawPath = "/ws/viewer";
    std::string source;  // "" or "replay"
    std::string frameFile;
    double fps = 30;
    int maxInFlight = 10;
    int connectTimeoutS = 30;
    bool json = false;
    std::string jsonOut;
};

[[noreturn]] void usage(const std::string& error) {
    if (!error.empty()) std::fprintf(stderr, "ds_loadgen: %s\n\n", error.c_str());
    std::fprintf(stderr,
                 "usage: ds_loadgen --url ws://127.0.0.1:PORT [--desktop ID] [--viewers N]\n"
                 "         [--seconds S] [--warmup-seconds W] [--ack-delay-ms D] [--token T]\n"
                 "         [--relay-pid PID] [--connect-timeout S] [--json] [--json-out FILE]\n"
                 "         [--source replay --frame FILE.jpg [--fps F (0 = window-limited)]\n"
                 "          [--max-in-flight W]]\n"
                 "         [--raw [--path /ws/viewer]]  (bare receivers: no protocol, no acks)\n"
                 "         [--idle]  (viewers handshake and answer pings only: run_idle.sh)\n"
                 "         [--raw-acks]  (bare receivers that send a frame_ack per frame, for\n"
                 "                        ds_fanout_ceiling --parse-acks 1)\n");
    std::exit(2);
}

double toNumber(const std::string& flag, const std::string& v, double lo, double hi) {
    char* end = nullptr;
    double d = std::strtod(v.c_str(), &end);
    if (v.empty() || *end != '\0' || d < lo || d > hi) {
        std::ostringstream os;
        os << flag << ": '" << v << "' is not a number in [" << lo << ", " << hi << "]";
        usage(os.str());
    }
    return d;
}

Options parseArgs(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) usage(a + " needs a value");
            return argv[++i];
        };
        if (a == "--url")
            o.url = value();
        else if (a == "--desktop")
            o.desktop = value();
        else if (a == "--viewers")
            o.viewers = static_cast<int>(toNumber(a, value(), 1, 5000));
        else if (a == "--seconds")
            o.seconds = toNumber(a, value(), 0.1, 3600);
        else if (a == "--warmup-seconds")
            o.warmupSeconds = toNumber(a, value(), 0, 600);
        else if (a == "--ack-delay-ms")
            o.ackDelayMs = static_cast<int>(toNumber(a, value(), 0, 60000));
        else if (a == "--token")
            o.token = value();
        else if (a == "--relay-pid")
            o.relayPid = static_cast<long>(toNumber(a, value(), 1, 1e9));
        else if (a == "--raw")
            o.raw = true;
        else if (a == "--idle")
            o.idle = true;
        else if (a == "--raw-acks")
            o.raw = o.rawAcks = true;
        else if (a == "--path")
            o.rawPath = value();
        else if (a == "--source")
            o.source = value();
        else if (a == "--frame")
            o.frameFile = value();
        else if (a == "--fps")
            o.fps = toNumber(a, value(), 0, 10000);
        else if (a == "--max-in-flight")
            o.maxInFlight = static_cast<int>(toNumber(a, value(), 1, 1000));
        else if (a == "--connect-timeout")
            o.connectTimeoutS = static_cast<int>(toNumber(a, value(), 1, 600));
        else if (a == "--json")
            o.json = true;
        else if (a == "--json-out")
            o.jsonOut = value();
        else if (a == "--help" || a == "-h")
            usage("");
        else
            usage("unknown option " + a);
    }
    if (!o.source.empty() && o.source != "replay") usage("--source: only 'replay' is supported");
    if (o.source == "replay" && o.frameFile.empty()) usage("--source replay needs --frame FILE");
    if (o.raw && !o.source.empty()) usage("--raw and --source exclude each other");
    if (o.idle && (o.raw || !o.source.empty())) usage("--idle excludes --raw and --source");
    if (o.desktop.empty() || !core::isValidId(o.desktop)) usage("--desktop: not a valid client id");
    return o;
}

// ------------------------------------------------------------------ /proc readings

struct ProcSample {
    bool ok = false;
    double cpuSeconds = 0;  // utime + stime
};

ProcSample readProcCpu(long pid) {
    ProcSample s;
    std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
    std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    // The command name (field 2) may contain spaces: fields are counted after the last ')'.
    auto paren = text.rfind(')');
    if (paren == std::string::npos) return s;
    std::istringstream in(text.substr(paren + 2));
    std::string field;
    unsigned long long utime = 0, stime = 0;
    for (int n = 3; in >> field; ++n) {
        if (n == 14) utime = std::strtoull(field.c_str(), nullptr, 10);
        if (n == 15) {
            stime = std::strtoull(field.c_str(), nullptr, 10);
            s.ok = true;
            break;
        }
    }
    s.cpuSeconds = static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
    return s;
}

// Peak resident set (VmHWM) in MB; -1 when unreadable.
double readPeakRssMb(long pid) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(f, line)) {
        if (line.rfind("VmHWM:", 0) == 0) return std::strtod(line.c_str() + 6, nullptr) / 1024.0;
    }
    return -1;
}

std::string loadAverage() {
    std::ifstream f("/proc/loadavg");
    std::string a, b, c;
    f >> a >> b >> c;
    return a + " " + b + " " + c;
}

int64_t wallUs() {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}
int64_t steadyNs() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
        .count();
}

// ------------------------------------------------------------------ one WebSocket peer

// A client WebSocket with one lock around sends: Poco's WebSocket is not safe for two
// concurrent senders (docs/poco-pitfalls.md) and both a reader (pongs) and a sender use it here.
class Peer {
public:
    Peer(const Poco::URI& base, const std::string& path)
        : session_(base.getHost(), base.getPort()) {
        session_.setTimeout(Poco::Timespan(10, 0));
        Poco::Net::HTTPRequest req(Poco::Net::HTTPRequest::HTTP_GET, path,
                                   Poco::Net::HTTPMessage::HTTP_1_1);
        Poco::Net::HTTPResponse resp;
        ws_ = std::make_unique<WebSocket>(session_, req, resp);
        ws_->setNoDelay(true);
        ws_->setMaxPayloadSize(64 * 1024 * 1024);
        // Reads are only started when poll() says bytes are there; a receive timeout is then
        // mid-frame and fatal (the stream is out of sync), so it is generous.
        ws_->setReceiveTimeout(Poco::Timespan(10, 0));
        ws_->setSendTimeout(Poco::Timespan(10, 0));
    }
    ~Peer() {
        try {
            std::lock_guard<std::mutex> lock(sendMutex_);
            ws_->shutdown(WebSocket::WS_NORMAL_CLOSE);
        } catch (...) {}
        try {
            ws_->close();
        } catch (...) {}
    }

    void send(const void* data, std::size_t size, int flags) {
        std::lock_guard<std::mutex> lock(sendMutex_);
        ws_->sendFrame(data, static_cast<int>(size), flags);
    }
    void sendText(const std::string& text) {
        send(text.data(), text.size(), WebSocket::FRAME_TEXT);
    }
    void sendMessage(const core::Message& m) { sendText(core::serialize(m)); }

    // One whole WebSocket frame into `buf`. Returns false on timeout (nothing read); throws on a
    // closed or broken connection. PING frames are answered here.
    bool receive(Poco::Buffer<char>& buf, int& opcode, int timeoutMs) {
        for (;;) {
            if (!ws_->poll(Poco::Timespan(static_cast<long>(timeoutMs) * 1000),
                           Poco::Net::Socket::SELECT_READ))
                return false;
            buf.resize(0);
            int flags = 0;
            int n = ws_->receiveFrame(buf, flags);
            opcode = flags & WebSocket::FRAME_OP_BITMASK;
            if (n == 0 && flags == 0)
                throw Poco::Net::ConnectionResetException("connection closed by peer");
            if (opcode == WebSocket::FRAME_OP_CLOSE) {
                int code = buf.size() >= 2 ? (static_cast<unsigned char>(buf[0]) << 8) |
                                                 static_cast<unsigned char>(buf[1])
                                           : 1005;
                throw Poco::Net::ConnectionResetException(
                    "peer closed the WebSocket with code " + std::to_string(code) +
                    (buf.size() > 2 ? " \"" + std::string(buf.begin() + 2, buf.size() - 2) + "\""
                                    : ""));
            }
            if (opcode == WebSocket::FRAME_OP_PING) {
                send(buf.begin(), buf.size(), WebSocket::FRAME_FLAG_FIN | WebSocket::FRAME_OP_PONG);
                continue;
            }
            if (opcode == WebSocket::FRAME_OP_PONG) continue;
            return true;
        }
    }

private:
    Poco::Net::HTTPClientSession session_;  // must outlive ws_ (Poco keeps a reference)
    std::unique_ptr<WebSocket> ws_;
    std::mutex sendMutex_;
};

// Answers a JSON ping; true when `m` was one.
bool answerPing(Peer& peer, const core::Message& m) {
    if (const auto* p = std::get_if<core::Ping>(&m)) {
        core::Pong pong;
        pong.timestamp = p->timestamp;
        pong.serverTime = wallUs() / 1000;
        peer.sendMessage(pong);
        return true;
    }
    return false;
}

// Reads text messages until `accept` returns true for one (pings are answered); throws with a
// clear message on an error/registration_failed/timeout.
template <class Accept>
core::Message waitFor(Peer& peer, core::Channel channel, const char* what, Accept accept) {
    Poco::Buffer<char> buf(0);
    const auto deadline = Clock::now() + std::chrono::seconds(10);
    while (Clock::now() < deadline) {
        int opcode = 0;
        if (!peer.receive(buf, opcode, 100)) continue;
        if (opcode != WebSocket::FRAME_OP_TEXT) continue;
        std::string text(buf.begin(), buf.size());
        auto parsed = core::parseMessage(text, channel);
        if (!parsed)
            throw std::runtime_error(std::string("unparsable message while waiting for ") + what +
                                     ": " + parsed.error().message + ": " + text);
        if (answerPing(peer, parsed.value())) continue;
        if (accept(parsed.value())) return parsed.value();
        if (std::holds_alternative<core::ErrorMessage>(parsed.value()) ||
            std::holds_alternative<core::RegistrationFailed>(parsed.value()) ||
            std::holds_alternative<core::Redirect>(parsed.value()))
            throw std::runtime_error(std::string("relay refused (waiting for ") + what +
                                     "): " + text);
    }
    throw std::runtime_error(std::string("no ") + what + " within 10 s");
}

// ------------------------------------------------------------------ the shared run state

struct SentRing {
    // Frame number -> steady time its sendFrame returned. Written by the source, read by viewers.
    static constexpr std::size_t kSize = 1u << 16;
    struct Slot {
        std::atomic<uint64_t> frame{0};
        std::atomic<int64_t> sentNs{0};
    };
    std::unique_ptr<Slot[]> slots{new Slot[kSize]};
    void publish(uint64_t frame, int64_t ns) {
        Slot& s = slots[frame % kSize];
        s.sentNs.store(ns, std::memory_order_relaxed);
        s.frame.store(frame, std::memory_order_release);
    }
    // Send-completion time of `frame`. The viewer can get a frame before the source thread has
    // recorded it (the source was preempted right after sendFrame returned, which happens on a
    // busy machine): wait for it up to 200 ms, then give up (-1, counted as unmatched).
    int64_t lookup(uint64_t frame) const {
        const Slot& s = slots[frame % kSize];
        const auto deadline = Clock::now() + std::chrono::milliseconds(200);
        do {
            if (s.frame.load(std::memory_order_acquire) == frame)
                return s.sentNs.load(std::memory_order_relaxed);
            std::this_thread::yield();
        } while (Clock::now() < deadline);
        return -1;
    }
};

struct Run {
    Options opt;
    Poco::URI base;
    std::atomic<bool> stop{false};
    std::atomic<bool> measuring{false};
    std::atomic<int> ready{0};
    std::atomic<int> failed{0};
    SentRing sent;
    std::mutex errorMutex;
    std::vector<std::string> errors;  // first few connection errors, for the report
    void error(const std::string& e) {
        std::lock_guard<std::mutex> lock(errorMutex);
        if (errors.size() < 5) errors.push_back(e);
    }
};

struct ViewerStats {
    uint64_t frames = 0;  // binary frames received in the window
    uint64_t bytes = 0;
    uint64_t gaps = 0;       // frame numbers skipped (relay dropped them for this viewer)
    uint64_t badFrames = 0;  // binary messages whose header did not decode
    uint64_t unmatched = 0;  // replay: frames whose send time was not found
    std::vector<uint32_t> latencyUs;
    bool connected = false;
    bool diedEarly = false;
};

// ------------------------------------------------------------------ a viewer

// Sends acks after --ack-delay-ms from its own thread, so reception never waits.
class AckQueue {
public:
    AckQueue(Peer& peer, int delayMs) : peer_(peer), delay_(delayMs) {
        thread_ = std::thread([this] { loop(); });
    }
    ~AckQueue() {
        {
            std::lock_guard<std::mutex> lock(m_);
            done_ = true;
        }
        cv_.notify_one();
        thread_.join();
    }
    void push(core::ViewerFrameAck ack) {
        {
            std::lock_guard<std::mutex> lock(m_);
            q_.push_back({Clock::now() + delay_, std::move(ack)});
        }
        cv_.notify_one();
    }

private:
    void loop() {
        std::unique_lock<std::mutex> lock(m_);
        while (!done_) {
            if (q_.empty()) {
                cv_.wait(lock);
                continue;
            }
            auto due = q_.front().first;
            if (Clock::now() < due) {
                cv_.wait_until(lock, due);
                continue;
            }
            core::ViewerFrameAck ack = std::move(q_.front().second);
            q_.pop_front();
            lock.unlock();
            try {
                peer_.sendMessage(ack);
            } catch (...) {
                // The reader sees the broken connection and reports it.
            }
            lock.lock();
        }
    }
    Peer& peer_;
    std::chrono::milliseconds delay_;
    std::mutex m_;
    std::condition_variable cv_;
    std::deque<std::pair<Clock::time_point, core::ViewerFrameAck>> q_;
    bool done_ = false;
    std::thread thread_;
};

void runViewer(Run& run, int index, ViewerStats& st) {
    const Options& o = run.opt;
    std::unique_ptr<Peer> peer;
    try {
        peer = std::make_unique<Peer>(run.base, o.raw ? o.rawPath : "/ws/viewer");
        if (!o.raw) {
            core::Handshake hs;
            hs.role = core::Role::Viewer;
            hs.token = o.token;
            peer->sendMessage(hs);
            waitFor(*peer, core::Channel::RelayToViewer, "handshake_ack",
                    [](const core::Message& m) {
                        return std::holds_alternative<core::ViewerHandshakeAck>(m);
                    });
        }
        if (!o.raw && !o.idle) {
            core::Subscribe sub;
            sub.desktopClientId = o.desktop;
            peer->sendMessage(sub);
            waitFor(*peer, core::Channel::RelayToViewer, "subscribed", [](const core::Message& m) {
                return std::holds_alternative<core::Subscribed>(m);
            });
        }
    } catch (const std::exception& e) {
        run.error("viewer " + std::to_string(index) + ": " + e.what());
        run.failed.fetch_add(1);
        return;
    }
    st.connected = true;
    run.ready.fetch_add(1);
    std::unique_ptr<AckQueue> acks;
    if (!o.raw && o.ackDelayMs > 0) acks = std::make_unique<AckQueue>(*peer, o.ackDelayMs);
    const bool replay = o.source == "replay";
    uint64_t lastFrame = 0;
    Poco::Buffer<char> buf(0);
    try {
        while (!run.stop.load(std::memory_order_relaxed)) {
            int opcode = 0;
            if (!peer->receive(buf, opcode, 100)) continue;
            if (opcode == WebSocket::FRAME_OP_BINARY) {
                const int64_t nowNs = steadyNs();
                const int64_t nowWallUs = wallUs();
                const auto* data = reinterpret_cast<const uint8_t*>(buf.begin());
                core::DecodedFrame f = core::decodeFrame(data, buf.size(), 0);
                if (!f.ok) {
                    ++st.badFrames;
                    continue;
                }
                const uint64_t fn = f.header.frameNumber;
                int64_t latencyUs = -1;
                if (replay) {
                    int64_t sentNs = run.sent.lookup(fn);
                    if (sentNs >= 0) latencyUs = std::max<int64_t>(0, (nowNs - sentNs) / 1000);
                } else if (!o.raw || f.header.captureTimeUs != 0) {
                    // A real agent, or a paced ceiling that stamps its send ticks.
                    latencyUs = std::max<int64_t>(
                        0, nowWallUs - static_cast<int64_t>(f.header.captureTimeUs));
                }
                if (run.measuring.load(std::memory_order_relaxed)) {
                    ++st.frames;
                    st.bytes += buf.size();
                    if (lastFrame != 0 && fn > lastFrame + 1) st.gaps += fn - lastFrame - 1;
                    if (latencyUs >= 0)
                        st.latencyUs.push_back(
                            static_cast<uint32_t>(std::min<int64_t>(latencyUs, UINT32_MAX)));
                    else if (!o.raw)
                        ++st.unmatched;
                }
                lastFrame = fn;
                if (o.raw && !o.rawAcks) continue;
                core::ViewerFrameAck ack;
                ack.desktopClientId = o.desktop;
                ack.frameNumber = fn;
                ack.latency = std::max<int64_t>(0, latencyUs) / 1000;
                if (acks)
                    acks->push(std::move(ack));
                else
                    peer->sendMessage(ack);
            } else if (opcode == WebSocket::FRAME_OP_TEXT && !o.raw) {
                auto parsed = core::parseMessage(std::string(buf.begin(), buf.size()),
                                                 core::Channel::RelayToViewer);
                if (parsed) answerPing(*peer, parsed.value());
            }
        }
    } catch (const std::exception& e) {
        if (!run.stop.load()) {
            st.diedEarly = true;
            run.error("viewer " + std::to_string(index) + " lost its connection: " + e.what());
        }
    }
    acks.reset();
}

// ------------------------------------------------------------------ the replay source (agent)

struct SourceStats {
    std::atomic<uint64_t> sent{0};         // frames sent in the window
    std::atomic<uint64_t> windowDrops{0};  // paced frames skipped because the window was full
    std::atomic<uint64_t> acks{0};         // frame_acks received (whole run)
    std::atomic<uint64_t> highestAcked{0};
    std::atomic<bool> started{false};  // start_stream received
    std::atomic<bool> paused{false};   // stop_stream received (and no start_stream since)
    std::atomic<bool> died{false};
};

class Source {
public:
    Source(Run& run, std::vector<uint8_t> payload) : run_(run), payload_(std::move(payload)) {}

    // Connects and registers; throws with the reason.
    void connect() {
        peer_ = std::make_unique<Peer>(run_.base, "/ws/agent");
        core::Handshake hs;
        hs.role = core::Role::Desktop;
        hs.clientId = run_.opt.desktop;
        hs.token = run_.opt.token;
        hs.name = "ds_loadgen replay source";
        hs.hostname = "loadgen";
        core::MonitorInfo mon;
        mon.name = "replay";
        mon.width = 1920;
        mon.height = 1080;
        mon.primary = true;
        hs.monitors.push_back(mon);
        hs.capabilities.codecs = {"jpeg"};
        peer_->sendMessage(hs);
        auto ack = waitFor(*peer_, core::Channel::RelayToAgent, "handshake_ack",
                           [](const core::Message& m) {
                               return std::holds_alternative<core::AgentHandshakeAck>(m) ||
                                      std::holds_alternative<core::StartStream>(m);
                           });
        if (std::holds_alternative<core::StartStream>(ack)) stats.started = true;
        reader_ = std::thread([this] { readLoop(); });
    }

    void startSending() {
        sender_ = std::thread([this] { sendLoop(); });
    }

    void join() {
        if (sender_.joinable()) sender_.join();
        if (reader_.joinable()) reader_.join();
        peer_.reset();
    }

    SourceStats stats;

private:
    void readLoop() {
        Poco::Buffer<char> buf(0);
        try {
            while (!run_.stop.load()) {
                int opcode = 0;
                if (!peer_->receive(buf, opcode, 100)) continue;
                if (opcode != WebSocket::FRAME_OP_TEXT) continue;
                auto parsed = core::parseMessage(std::string(buf.begin(), buf.size()),
                                                 core::Channel::RelayToAgent);
                if (!parsed) continue;
                const core::Message& m = parsed.value();
                if (answerPing(*peer_, m)) continue;
                if (const auto* a = std::get_if<core::AgentFrameAck>(&m)) {
                    stats.acks.fetch_add(1);
                    uint64_t prev = stats.highestAcked.load();
                    while (a->frameNumber > prev &&
                           !stats.highestAcked.compare_exchange_weak(prev, a->frameNumber)) {}
                    windowCv_.notify_one();
                } else if (std::holds_alternative<core::StartStream>(m)) {
                    stats.started = true;
                    stats.paused = false;
                } else if (std::holds_alternative<core::StopStream>(m)) {
                    stats.paused = true;  // an idle desktop sends nothing (docs/protocol.md)
                }
            }
        } catch (const std::exception& e) {
            if (!run_.stop.load()) {
                stats.died = true;
                run_.error(std::string("source (agent) lost its connection: ") + e.what());
            }
        }
        windowCv_.notify_one();
    }

    uint64_t inFlight() const { return frame_ - stats.highestAcked.load(); }

    void sendLoop() {
        const Options& o = run_.opt;
        std::vector<uint8_t> msg(core::kFrameHeaderSize + payload_.size());
        std::memcpy(msg.data() + core::kFrameHeaderSize, payload_.data(), payload_.size());
        core::FrameHeader h;
        h.codec = core::FrameCodec::Jpeg;
        h.flags = core::frame_flags::kKey;
        h.quality = 75;
        h.screenWidth = h.rectWidth = 1920;
        h.screenHeight = h.rectHeight = 1080;
        h.payloadLength = static_cast<uint32_t>(payload_.size());
        const auto start = Clock::now();
        const auto period = o.fps > 0 ? std::chrono::nanoseconds(static_cast<int64_t>(1e9 / o.fps))
                                      : std::chrono::nanoseconds(0);
        uint64_t tick = 0;
        try {
            while (!run_.stop.load()) {
                if (o.fps > 0) {
                    std::this_thread::sleep_until(start + period * static_cast<int64_t>(++tick));
                    if (run_.stop.load()) break;
                    if (inFlight() >= static_cast<uint64_t>(o.maxInFlight)) {
                        // Like the real agent: a full window drops the new frame.
                        if (run_.measuring.load()) stats.windowDrops.fetch_add(1);
                        continue;
                    }
                } else {
                    std::unique_lock<std::mutex> lock(windowMutex_);
                    windowCv_.wait_for(lock, std::chrono::milliseconds(100), [&] {
                        return run_.stop.load() || stats.died.load() ||
                               inFlight() < static_cast<uint64_t>(o.maxInFlight);
                    });
                    if (inFlight() >= static_cast<uint64_t>(o.maxInFlight)) continue;
                }
                if (stats.died.load()) break;
                if (stats.paused.load()) {
                    // Paced mode already slept; unpaced mode must not spin while paused.
                    if (o.fps <= 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
                    continue;
                }
                h.frameNumber = frame_ + 1;
                // The latency clock starts here, before the send, the same point as the floor's
                // (ds_fanout_ceiling --fps stamps its tick before its sendFrame): the agent ->
                // relay transfer is part of the relay's figure, as the floor's own send is of its.
                const int64_t readyNs = steadyNs();
                h.captureTimeUs = static_cast<uint64_t>(wallUs());
                core::encodeFrameHeader(h, msg.data());
                run_.sent.publish(h.frameNumber,
                                  readyNs);  // before the send: a fast viewer may look it up
                peer_->send(msg.data(), msg.size(), WebSocket::FRAME_BINARY);
                ++frame_;
                if (run_.measuring.load()) stats.sent.fetch_add(1);
            }
        } catch (const std::exception& e) {
            if (!run_.stop.load()) {
                stats.died = true;
                run_.error(std::string("source (agent) could not send: ") + e.what());
            }
        }
    }

    Run& run_;
    std::vector<uint8_t> payload_;
    std::unique_ptr<Peer> peer_;
    std::thread reader_, sender_;
    std::atomic<uint64_t> frame_{0};
    std::mutex windowMutex_;
    std::condition_variable windowCv_;
};

// ------------------------------------------------------------------ report

double percentile(std::vector<uint32_t>& v, double p) {
    if (v.empty()) return -1;
    auto k = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
    return v[k] / 1000.0;
}

std::string fmt(double v, int decimals = 1) {
    if (v < 0) return "n/a";
    char b[64];
    std::snprintf(b, sizeof b, "%.*f", decimals, v);
    return b;
}
std::string jnum(double v, int decimals = 3) { return v < 0 ? "null" : fmt(v, decimals); }
std::string jstr(const std::string& s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') out += '\\';
        if (static_cast<unsigned char>(c) < 0x20) continue;
        out += c;
    }
    return out + "\"";
}

}  // namespace

int main(int argc, char** argv) {
    Run run;
    run.opt = parseArgs(argc, argv);
    const Options& o = run.opt;
    try {
        run.base = Poco::URI(o.url);
    } catch (const Poco::Exception& e) {
        usage("--url: " + e.displayText());
    }
    if (run.base.getScheme() != "ws") usage("--url: only ws:// is supported (loopback benchmark)");

    // Watchdog: a hung socket call must not keep the benchmark running forever.
    const double budget = o.connectTimeoutS + o.warmupSeconds + o.seconds + 30;
    std::thread([budget] {
        std::this_thread::sleep_for(std::chrono::duration<double>(budget));
        std::fprintf(stderr, "ds_loadgen: still running after %.0f s: giving up\n", budget);
        std::fflush(stderr);
        _exit(3);
    }).detach();

    const std::string loadBefore = loadAverage();
    std::unique_ptr<Source> source;
    if (o.source == "replay") {
        std::ifstream f(o.frameFile, std::ios::binary);
        std::vector<uint8_t> payload((std::istreambuf_iterator<char>(f)),
                                     std::istreambuf_iterator<char>());
        if (!f.good() && !f.eof()) usage("--frame: cannot read " + o.frameFile);
        if (payload.empty()) usage("--frame: " + o.frameFile + " is missing or empty");
        source = std::make_unique<Source>(run, std::move(payload));
        try {
            source->connect();
        } catch (const std::exception& e) {
            std::fprintf(
                stderr,
                "ds_loadgen: the replay source could not register as agent '%s' at %s: %s\n",
                o.desktop.c_str(), o.url.c_str(), e.what());
            return 1;
        }
    }

    std::vector<ViewerStats> stats(static_cast<std::size_t>(o.viewers));
    std::vector<std::thread> threads;
    threads.reserve(stats.size());
    for (int i = 0; i < o.viewers; ++i)
        threads.emplace_back(
            [&run, &stats, i] { runViewer(run, i, stats[static_cast<std::size_t>(i)]); });
    const auto connectDeadline = Clock::now() + std::chrono::seconds(o.connectTimeoutS);
    while (run.ready.load() + run.failed.load() < o.viewers && Clock::now() < connectDeadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    const int connected = run.ready.load();
    if (connected < o.viewers) {
        run.stop = true;
        for (auto& t : threads) t.join();
        if (source) source->join();
        std::fprintf(stderr,
                     "ds_loadgen: only %d of %d viewers connected and subscribed to '%s' at %s\n",
                     connected, o.viewers, o.desktop.c_str(), o.url.c_str());
        for (const auto& e : run.errors) std::fprintf(stderr, "  %s\n", e.c_str());
        return 1;
    }
    if (source) {
        // The relay asks for frames on the first subscriber; wait for it briefly.
        const auto until = Clock::now() + std::chrono::seconds(5);
        while (!source->stats.started.load() && Clock::now() < until)
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        if (!source->stats.started.load())
            std::fprintf(stderr,
                         "ds_loadgen: warning: no start_stream from the relay; sending anyway\n");
        source->startSending();
    }

    std::this_thread::sleep_for(std::chrono::duration<double>(o.warmupSeconds));
    const ProcSample cpu0 = o.relayPid ? readProcCpu(o.relayPid) : ProcSample{};
    const ProcSample self0 = readProcCpu(getpid());
    const auto t0 = Clock::now();
    run.measuring = true;
    std::this_thread::sleep_for(std::chrono::duration<double>(o.seconds));
    run.measuring = false;
    const double elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
    const ProcSample cpu1 = o.relayPid ? readProcCpu(o.relayPid) : ProcSample{};
    const ProcSample self1 = readProcCpu(getpid());
    const double peakRss = o.relayPid ? readPeakRssMb(o.relayPid) : -1;
    run.stop = true;
    for (auto& t : threads) t.join();
    if (source) source->join();

    // ---- aggregate
    std::vector<double> fps;
    std::vector<uint32_t> lat;
    uint64_t frames = 0, bytes = 0, gaps = 0, bad = 0, unmatched = 0;
    int died = 0;
    for (auto& s : stats) {
        fps.push_back(static_cast<double>(s.frames) / elapsed);
        frames += s.frames;
        bytes += s.bytes;
        gaps += s.gaps;
        bad += s.badFrames;
        unmatched += s.unmatched;
        died += s.diedEarly ? 1 : 0;
        lat.insert(lat.end(), s.latencyUs.begin(), s.latencyUs.end());
    }
    std::sort(fps.begin(), fps.end());
    const double fpsMin = fps.front(), fpsMax = fps.back(), fpsMedian = fps[fps.size() / 2];
    const double p50 = percentile(lat, 0.50), p99 = percentile(lat, 0.99);
    const double pMax = lat.empty() ? -1 : *std::max_element(lat.begin(), lat.end()) / 1000.0;
    const double relayCores =
        (cpu0.ok && cpu1.ok) ? (cpu1.cpuSeconds - cpu0.cpuSeconds) / elapsed : -1;
    const double selfCores =
        (self0.ok && self1.ok) ? (self1.cpuSeconds - self0.cpuSeconds) / elapsed : -1;
    const double framesPerS = static_cast<double>(frames) / elapsed;
    const double gbPerS = static_cast<double>(bytes) / elapsed / 1e9;
    const double sourceFps = source ? static_cast<double>(source->stats.sent.load()) / elapsed : -1;
    const char* latencyKind =
        source ? "relay-added"
               : (o.raw ? (lat.empty() ? "none" : "since-send-tick") : "end-to-end");
    const std::string loadAfter = loadAverage();

    // One JSON object: on stdout with --json, into a file with --json-out (next to the table).
    std::string json;
    {
        char head[4096];
        std::snprintf(
            head, sizeof head,
            "{\"mode\":%s,\"viewers\":%d,\"seconds\":%.3f,\"fpsTarget\":%s,"
            "\"viewerFps\":{\"min\":%.2f,\"median\":%.2f,\"max\":%.2f},"
            "\"latencyKind\":%s,\"latencyMs\":{\"p50\":%s,\"p99\":%s,\"max\":%s,\"samples\":%zu},"
            "\"framesPerSecond\":%.1f,\"gbPerSecond\":%.4f,\"gaps\":%llu,\"badFrames\":%llu,"
            "\"unmatched\":%llu,\"viewersDied\":%d,"
            "\"source\":{\"fps\":%s,\"windowDrops\":%llu,\"acks\":%llu},"
            "\"relayCpuCores\":%s,\"relayPeakRssMb\":%s,\"loadgenCpuCores\":%s,"
            "\"loadAvgBefore\":%s,\"loadAvgAfter\":%s,\"errors\":[",
            jstr(o.raw ? "raw" : (source ? "replay" : "external")).c_str(), o.viewers, elapsed,
            source ? jnum(o.fps, 1).c_str() : "null", fpsMin, fpsMedian, fpsMax,
            jstr(latencyKind).c_str(), jnum(p50).c_str(), jnum(p99).c_str(), jnum(pMax).c_str(),
            lat.size(), framesPerS, gbPerS, static_cast<unsigned long long>(gaps),
            static_cast<unsigned long long>(bad), static_cast<unsigned long long>(unmatched), died,
            jnum(sourceFps, 2).c_str(),
            static_cast<unsigned long long>(source ? source->stats.windowDrops.load() : 0),
            static_cast<unsigned long long>(source ? source->stats.acks.load() : 0),
            jnum(relayCores).c_str(), jnum(peakRss, 1).c_str(), jnum(selfCores).c_str(),
            jstr(loadBefore).c_str(), jstr(loadAfter).c_str());
        json = head;
        for (std::size_t i = 0; i < run.errors.size(); ++i)
            json += (i ? "," : "") + jstr(run.errors[i]);
        json += "]}\n";
    }
    if (!o.jsonOut.empty()) {
        std::ofstream out(o.jsonOut);
        out << json;
        if (!out) std::fprintf(stderr, "ds_loadgen: cannot write %s\n", o.jsonOut.c_str());
    }
    if (o.json) {
        std::fputs(json.c_str(), stdout);
    } else {
        std::printf("ds_loadgen: %s, %d viewers, %.2f s measured after %.1f s warm-up, %s\n",
                    o.raw ? "raw receivers" : (source ? "replay source" : "external agent"),
                    o.viewers, elapsed, o.warmupSeconds, o.url.c_str());
        if (source)
            std::printf(
                "  source          %s fps sent (target %s, window %d), %llu window drops, %llu "
                "acks\n",
                fmt(sourceFps).c_str(), o.fps > 0 ? fmt(o.fps).c_str() : "uncapped", o.maxInFlight,
                static_cast<unsigned long long>(source->stats.windowDrops.load()),
                static_cast<unsigned long long>(source->stats.acks.load()));
        std::printf("  viewer fps      min %s  median %s  max %s\n", fmt(fpsMin).c_str(),
                    fmt(fpsMedian).c_str(), fmt(fpsMax).c_str());
        std::printf("  latency (%s) p50 %s ms  p99 %s ms  max %s ms  (%zu samples)\n", latencyKind,
                    fmt(p50, 2).c_str(), fmt(p99, 2).c_str(), fmt(pMax, 2).c_str(), lat.size());
        std::printf("  delivered       %.0f frames/s, %.3f GB/s\n", framesPerS, gbPerS);
        std::printf(
            "  skipped frames  %llu (gaps in frame numbers), bad %llu, unmatched %llu, viewers "
            "lost %d\n",
            static_cast<unsigned long long>(gaps), static_cast<unsigned long long>(bad),
            static_cast<unsigned long long>(unmatched), died);
        std::printf("  relay process   %s cores, peak RSS %s MB (pid %ld)\n",
                    fmt(relayCores, 2).c_str(), fmt(peakRss).c_str(), o.relayPid);
        std::printf("  loadgen         %s cores; load average before %s, after %s\n",
                    fmt(selfCores, 2).c_str(), loadBefore.c_str(), loadAfter.c_str());
        for (const auto& e : run.errors) std::printf("  error: %s\n", e.c_str());
    }
    std::fflush(stdout);
    if (frames == 0 && !o.idle) {
        std::fprintf(stderr, "ds_loadgen: no frame arrived in the measurement window%s\n",
                     source ? " (does the relay forward frames to viewers yet?)" : "");
        return 4;
    }
    return died > 0 || (source && source->stats.died.load()) ? 1 : 0;
}
