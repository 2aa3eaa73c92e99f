// Streaming path, end to end over real sockets: the agent runtime with the synthetic capture
// plugin and the real JPEG encoder plugin, a real relay with the SQLite store, and WebSocket
// viewers that ack like the browser does (issue 5 acceptance).
#include "deskstream/agent/agent.hpp"
#include "deskstream/core/auth.hpp"
#include "deskstream/core/frame_header.hpp"
#include "deskstream/host/config.hpp"
#include "deskstream/host/plugin_registry.hpp"
#include "agent_fixture.hpp"
#include "relay_fixture.hpp"

#include <Poco/Logger.h>

#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/ServerSocket.h>

#include <gtest/gtest.h>

#include <atomic>
#include <deque>
#include <fstream>
#include <mutex>
#include <thread>

using namespace std::chrono_literals;
using deskstream::agent::AgentOptions;
using deskstream::agent::AgentRuntime;
using Poco::Net::WebSocket;

namespace {

long rssKb() {
    std::ifstream f("/proc/self/status");
    std::string line;
    while (std::getline(f, line))
        if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
    return 0;
}

// A viewer on its own thread: receives frames, acks each one (optionally after a delay),
// can stop reading altogether (a stalled browser tab).
class Viewer {
public:
    struct Seen {
        uint16_t monitor;
        uint32_t screenWidth, screenHeight;
    };
    Viewer(uint16_t port, const std::string& desktop) : desktop_(desktop) {
        ws_ = ds_itest::subscribedViewer(port, desktop);
        thread_ = std::thread([this] { run(); });
    }
    ~Viewer() {
        stop_ = true;
        if (thread_.joinable()) thread_.join();
    }
    void setAckDelay(std::chrono::milliseconds d) { ackDelayMs_ = d.count(); }
    void stopReading() { reading_ = false; }
    uint64_t frames() const { return frames_; }
    std::vector<Seen> seen() const {
        std::lock_guard<std::mutex> lock(seenMutex_);
        return seen_;
    }

private:
    void run() {
        std::deque<std::pair<std::chrono::steady_clock::time_point, uint64_t>> pendingAcks;
        while (!stop_) {
            auto now = std::chrono::steady_clock::now();
            while (!pendingAcks.empty() && pendingAcks.front().first <= now) {
                sendAck(pendingAcks.front().second);
                pendingAcks.pop_front();
            }
            if (!reading_) {
                std::this_thread::sleep_for(20ms);
                continue;
            }
            auto f = ws_->receive(20);
            if (f.closed) break;
            if (f.timeout) continue;
            if (f.opcode == WebSocket::FRAME_OP_TEXT) {
                try {
                    ws_->answerIfPing(ds_itest::parseJson(f.data));  // the relay's heartbeat
                } catch (const std::exception&) {
                    break;  // the relay closed us: the test's assertions say whether it should have
                }
                continue;
            }
            if (f.opcode != WebSocket::FRAME_OP_BINARY) continue;
            auto d = deskstream::core::decodeFrame(reinterpret_cast<const uint8_t*>(f.data.data()),
                                                   f.data.size(), 0);
            if (!d.ok) continue;
            ++frames_;
            {
                std::lock_guard<std::mutex> lock(seenMutex_);
                if (seen_.size() < 1000)
                    seen_.push_back(
                        {d.header.monitor, d.header.screenWidth, d.header.screenHeight});
            }
            if (ackDelayMs_ > 0)
                pendingAcks.emplace_back(now + std::chrono::milliseconds(ackDelayMs_.load()),
                                         d.header.frameNumber);
            else
                sendAck(d.header.frameNumber);
        }
    }
    void sendAck(uint64_t n) {
        try {
            ws_->send("{\"type\":\"frame_ack\",\"desktopClientId\":\"" + desktop_ +
                      "\",\"frameNumber\":" + std::to_string(n) + ",\"latency\":5}");
        } catch (...) {}
    }

    std::string desktop_;
    std::unique_ptr<ds_itest::WsClient> ws_;
    std::thread thread_;
    std::atomic<bool> stop_{false}, reading_{true};
    std::atomic<int64_t> ackDelayMs_{0};
    std::atomic<uint64_t> frames_{0};
    mutable std::mutex seenMutex_;
    std::vector<Seen> seen_;
};

class StreamingTest : public ds_itest::RelayTest {
protected:
    void SetUp() override {
        RelayTest::SetUp();
        auto o = testOptions();
        o.maxMessageBytes = 16 * 1024 * 1024;  // 1080p JPEG frames are ~300 KB
        startRelay(o);
        // The agent gets its plugins exactly as the host gives them: loaded and validated by
        // the host's registry, configured from a host Configuration.
        plugins.scan({DS_TEST_PLUGIN_DIR});
    }

    AgentOptions agentOptions(double fps, uint16_t relayPort) {
        AgentOptions o = ds_itest::reconnectingAgentOptions(
            "ws://127.0.0.1:" + std::to_string(relayPort) + "/ws/agent", "stream-pc");
        o.name = "Streaming test";
        o.flow.fps = fps;
        return o;
    }

    std::unique_ptr<AgentRuntime> startAgent(AgentOptions o, int width = 1920, int height = 1080,
                                             int monitors = 1) {
        config.set("capture.synthetic", "width", std::to_string(width));
        config.set("capture.synthetic", "height", std::to_string(height));
        config.set("capture.synthetic", "monitors", std::to_string(monitors));
        return ds_itest::startAgentRuntime(std::move(o), plugins, config, "synthetic");
    }

    deskstream::host::PluginRegistry plugins;
    deskstream::host::Configuration config;
};

// A relay stand-in that registers the agent, starts the stream and never acknowledges a frame.
class SilentRelay {
public:
    SilentRelay() : socket_(Poco::Net::SocketAddress("127.0.0.1", 0)) {
        auto* params = new Poco::Net::HTTPServerParams;
        params->setMaxThreads(4);
        server_ = std::make_unique<Poco::Net::HTTPServer>(new Factory(*this), socket_, params);
        server_->start();
    }
    ~SilentRelay() {
        stop_ = true;
        server_->stopAll(true);
    }
    uint16_t port() const { return socket_.address().port(); }
    uint64_t frames() const { return frames_; }

private:
    struct Handler : Poco::Net::HTTPRequestHandler {
        explicit Handler(SilentRelay& r) : relay(r) {}
        void handleRequest(Poco::Net::HTTPServerRequest& req,
                           Poco::Net::HTTPServerResponse& resp) override {
            try {
                WebSocket ws(req, resp);
                Poco::Buffer<char> buf(0);
                bool acked = false;
                for (int op; (op = ds_itest::nextAgentFrame(ws, buf, relay.stop_)) >= 0;) {
                    if (op == WebSocket::FRAME_OP_BINARY) {
                        ++relay.frames_;
                    } else if (op == WebSocket::FRAME_OP_TEXT && !acked) {
                        std::string ack =
                            "{\"type\":\"handshake_ack\",\"clientId\":\"stream-pc\","
                            "\"dbRegistered\":true,"
                            "\"instanceId\":\"silent\",\"streamId\":1,\"heartbeatIntervalMs\":"
                            "60000,\"maxInFlight\":10}";
                        ws.sendFrame(ack.data(), static_cast<int>(ack.size()));
                        std::string start = "{\"type\":\"start_stream\"}";
                        ws.sendFrame(start.data(), static_cast<int>(start.size()));
                        acked = true;
                    }
                }
            } catch (...) {}
        }
        SilentRelay& relay;
    };
    using Factory = ds_itest::HandlerFactoryOf<Handler, SilentRelay>;
    Poco::Net::ServerSocket socket_;
    std::unique_ptr<Poco::Net::HTTPServer> server_;
    std::atomic<bool> stop_{false};
    std::atomic<uint64_t> frames_{0};
};

}  // namespace

TEST_F(StreamingTest, WithoutAcksTheWindowBoundsFramesInFlightAndDropsAreCounted) {
    SilentRelay silent;
    auto o = agentOptions(60, silent.port());
    o.flow.maxInFlight = 4;
    auto agent = startAgent(o, 640, 360);
    ASSERT_TRUE(
        ds_itest::eventually([&] { return agent->stats().framesDroppedWindow >= 20; }, 8000))
        << "dropped " << agent->stats().framesDroppedWindow;
    auto s = agent->stats();
    EXPECT_LE(s.inFlight, 4);
    EXPECT_LE(s.framesSent, 4u);
    EXPECT_LE(silent.frames(), 4u);
    EXPECT_EQ(s.framesAcked, 0u);
}

TEST_F(StreamingTest, IdleDesktopEncodesNothingUntilAViewerSubscribes) {
    auto agent = startAgent(agentOptions(30, port()), 640, 360);
    ASSERT_TRUE(ds_itest::eventually([&] { return agent->stats().registered; }, 5000));
    std::this_thread::sleep_for(1s);
    EXPECT_EQ(agent->stats().framesEncoded, 0u);
    EXPECT_FALSE(agent->stats().streaming);
    {
        Viewer v(port(), "stream-pc");
        ASSERT_TRUE(ds_itest::eventually([&] { return v.frames() >= 5; }, 5000));
        EXPECT_GT(agent->stats().framesEncoded, 0u);
        // /api/desktops carries the stream's statistics: the relay's and the agent's own.
        Poco::JSON::Object::Ptr stats, viewer;
        ASSERT_TRUE(ds_itest::eventually(
            [&] {
                auto r = ds_itest::httpRequest(port(), "GET", "/api/desktops");
                auto o = ds_itest::parseJson(r.body);
                if (!o) return false;
                auto d = o->getArray("desktops")->getObject(0);
                stats = d->getObject("stats");
                auto vs = d->getArray("viewerStats");
                viewer = vs && vs->size() == 1 ? vs->getObject(0) : nullptr;
                return stats && viewer && stats->has("quality") &&
                       stats->getValue<double>("fpsIn") > 0 &&
                       viewer->getValue<double>("fpsOut") > 0;
            },
            8000))
            << ds_itest::httpRequest(port(), "GET", "/api/desktops").body;
        EXPECT_GE(stats->getValue<int>("quality"), 30);
        EXPECT_LE(stats->getValue<int>("quality"), 90);
        EXPECT_GE(stats->getValue<int>("inFlight"), 0);
        EXPECT_EQ(stats->getValue<int>("dropsWindow"), 0);
        EXPECT_EQ(stats->getValue<int>("dropsLagging"), 0);
        EXPECT_FALSE(viewer->getValue<bool>("lagging"));
        EXPECT_FALSE(viewer->isNull("latencyP50Ms"));
    }
    // The last viewer left: stop_stream, and the counter stands still again.
    ASSERT_TRUE(ds_itest::eventually([&] { return !agent->stats().streaming; }, 5000));
    std::this_thread::sleep_for(300ms);
    auto before = agent->stats().framesEncoded;
    std::this_thread::sleep_for(1s);
    EXPECT_EQ(agent->stats().framesEncoded, before);
}

TEST_F(StreamingTest, StalledViewerDoesNotSlowTheOtherAndMemoryStaysBounded) {
    auto agent = startAgent(agentOptions(30, port()));
    ASSERT_TRUE(ds_itest::eventually([&] { return agent->stats().registered; }, 5000));
    Viewer healthy(port(), "stream-pc");
    Viewer stalled(port(), "stream-pc");
    ASSERT_TRUE(ds_itest::eventually(
        [&] { return healthy.frames() >= 30 && stalled.frames() >= 5; }, 10000));

    // Reference rate with both viewers reading.
    auto f0 = healthy.frames();
    std::this_thread::sleep_for(3s);
    double reference = (healthy.frames() - f0) / 3.0;

    stalled.stopReading();
    std::this_thread::sleep_for(2s);  // let its socket buffers fill up
    long rssBefore = rssKb();
    auto f1 = healthy.frames();
    auto sent1 = agent->stats().framesSent;
    std::this_thread::sleep_for(20s);
    double withStall = (healthy.frames() - f1) / 20.0;
    double agentRate = (agent->stats().framesSent - sent1) / 20.0;
    long rssGrowthMb = (rssKb() - rssBefore) / 1024;

    RecordProperty("reference_fps", std::to_string(reference));
    RecordProperty("with_stalled_viewer_fps", std::to_string(withStall));
    std::printf(
        "healthy viewer: %.1f fps before, %.1f fps with a stalled viewer (agent sent %.1f fps); "
        "RSS growth %ld MB\n",
        reference, withStall, agentRate, rssGrowthMb);
    // The healthy viewer gets at least 90% of what the agent sends while the other one is
    // stalled. Compared with the agent's own rate in the same window, so a machine busy with
    // other work (which slows capture and encoding for everyone) does not decide the result.
    EXPECT_GE(withStall, 0.9 * agentRate);
    EXPECT_GE(agentRate, 0.5 * 30) << "the agent itself was starved: the measurement means little";
    EXPECT_LT(rssGrowthMb, 64);
}

TEST_F(StreamingTest, SlowAcksDriveQualityToMinimumAndItRecovers) {
    auto o = agentOptions(10, port());
    o.flow.quality = 75;
    o.flow.qualityMin = 30;
    o.flow.qualityMax = 90;
    auto agent = startAgent(o, 640, 360);
    ASSERT_TRUE(ds_itest::eventually([&] { return agent->stats().registered; }, 5000));
    Viewer v(port(), "stream-pc");
    v.setAckDelay(700ms);
    ASSERT_TRUE(ds_itest::eventually([&] { return agent->stats().quality == 30; }, 20000))
        << "quality stayed at " << agent->stats().quality << " (acked "
        << agent->stats().framesAcked << ", last latency " << agent->stats().lastAckLatencyMs
        << " ms, sent " << agent->stats().framesSent << ", viewer frames " << v.frames()
        << ", streaming " << agent->stats().streaming << ", captured "
        << agent->stats().framesCaptured << ", encoded " << agent->stats().framesEncoded
        << ", window drops " << agent->stats().framesDroppedWindow << ", in flight "
        << agent->stats().inFlight << ", capture errors " << agent->stats().captureErrors << ")";
    v.setAckDelay(0ms);
    ASSERT_TRUE(ds_itest::eventually([&] { return agent->stats().quality >= 40; }, 20000))
        << "quality did not climb back: " << agent->stats().quality;
}

// "Registration lost": the agent's row disappears while it is connected (reaped or taken over
// elsewhere). The relay's next last_ping refresh finds it gone and closes with 4000; the real
// agent reconnects and registers again, and its row is back.
TEST_F(StreamingTest, RealAgentWhoseRegistrationIsLostIsClosedAndRegistersAgain) {
    auto o = testOptions();
    o.maxMessageBytes = 16 * 1024 * 1024;
    o.touchIntervalMs = 100;
    startRelay(o);
    auto agent = startAgent(agentOptions(5, port()), 320, 200);
    ASSERT_TRUE(ds_itest::eventually([&] { return agent->stats().registered; }, 5000));
    ASSERT_EQ(agent->stats().connections, 1u);
    ASSERT_TRUE(hasRow("stream-pc"));
    ASSERT_TRUE(store->unregisterClient("stream-pc", "").ok());
    // Bound: the next refresh (agent pings every 200 ms, touch interval 100 ms), the close, the
    // agent's reconnect delay (50-300 ms) and a new registration: well under 5 s even under ASan.
    // Without the rule the agent is never closed and connections stays 1.
    ASSERT_TRUE(ds_itest::eventually(
        [&] { return agent->stats().connections >= 2 && agent->stats().registered; }, 5000))
        << "connections " << agent->stats().connections;
    EXPECT_TRUE(ds_itest::eventually([&] { return hasRow("stream-pc"); }, 2000));
    EXPECT_EQ(rows().at(0).instanceId, relay->instanceId());
}

TEST_F(StreamingTest, AgentReconnectsAfterTheRelayRestarts) {
    auto agent = startAgent(agentOptions(15, port()), 640, 360);
    ASSERT_TRUE(ds_itest::eventually([&] { return agent->stats().registered; }, 5000));
    const uint16_t relayPort = port();
    relay->stop();
    ASSERT_TRUE(ds_itest::eventually([&] { return !agent->stats().registered; }, 5000));
    auto o = testOptions();
    o.listen = "127.0.0.1:" + std::to_string(relayPort);
    relay = std::make_unique<deskstream::relay::Relay>(o, *store, Poco::Logger::get("relay"));
    relay->start();
    ASSERT_TRUE(ds_itest::eventually([&] { return agent->stats().registered; }, 10000));
    EXPECT_GE(agent->stats().connections, 2u);
    Viewer v(relay->port(), "stream-pc");
    EXPECT_TRUE(ds_itest::eventually([&] { return v.frames() >= 5; }, 10000));
}

TEST_F(StreamingTest, SeparateLayoutStreamsEachMonitorWithItsIndex) {
    auto agent = startAgent(agentOptions(15, port()), 320, 200, 2);
    ASSERT_TRUE(ds_itest::eventually([&] { return agent->stats().registered; }, 5000));
    Viewer v(port(), "stream-pc");
    ASSERT_TRUE(ds_itest::eventually([&] { return v.frames() >= 10; }, 5000));
    bool m0 = false, m1 = false;
    for (const auto& f : v.seen()) {
        EXPECT_EQ(f.screenWidth, 320u);
        EXPECT_EQ(f.screenHeight, 200u);
        m0 |= f.monitor == 0;
        m1 |= f.monitor == 1;
    }
    EXPECT_TRUE(m0 && m1) << "frames of both monitors arrive, each with its index";
}

TEST_F(StreamingTest, CombinedLayoutSendsOneSideBySidePicture) {
    auto o = agentOptions(15, port());
    o.combined = true;
    auto agent = startAgent(o, 320, 200, 2);
    ASSERT_TRUE(ds_itest::eventually([&] { return agent->stats().registered; }, 5000));
    Viewer v(port(), "stream-pc");
    ASSERT_TRUE(ds_itest::eventually([&] { return v.frames() >= 5; }, 5000));
    for (const auto& f : v.seen()) {
        EXPECT_EQ(f.monitor, 0u);
        EXPECT_EQ(f.screenWidth, 640u) << "two 320-pixel monitors side by side";
        EXPECT_EQ(f.screenHeight, 200u);
    }
}

TEST_F(StreamingTest, AgentExecutesCommandsOnceAndReportsResults) {
    auto agent = startAgent(agentOptions(10, port()), 320, 200);
    ASSERT_TRUE(ds_itest::eventually([&] { return agent->stats().registered; }, 5000));
    auto post = [&](const std::string& body) {
        return ds_itest::httpRequest(port(), "POST", "/api/desktops/stream-pc/commands", body);
    };
    auto r = post(R"({"commandId":"cfg-1","command":{"type":"set_config","fps":5,"quality":50}})");
    ASSERT_EQ(r.status, 202) << r.body;
    ASSERT_TRUE(ds_itest::eventually(
        [&] { return agent->stats().quality == 50 && agent->stats().fps == 5; }, 5000));
    ASSERT_TRUE(ds_itest::eventually([&] { return agent->stats().commandsExecuted == 1; }, 5000));
    // The same commandId again over REST: the relay's store already holds it, so it is
    // acknowledged and never delivered again (the agent sees no duplicate; its own dedup is
    // tested by RealAgentGivenACommandTwiceExecutesItOnceAndCountsTheDuplicate).
    r = post(R"({"commandId":"cfg-1","command":{"type":"set_config","fps":5,"quality":50}})");
    EXPECT_EQ(r.status, 202) << r.body;
    // Input for a monitor the capture plugin does not have: the result says failed, with the reason.
    r = post(
        R"({"commandId":"in-1","command":{"type":"input","event":"mouse_move","x":10,"y":20,"monitor":5}})");
    ASSERT_EQ(r.status, 202) << r.body;
    // A monitor that does not exist is refused by the agent.
    r = post(R"({"commandId":"cfg-2","command":{"type":"set_config","monitors":[7]}})");
    ASSERT_EQ(r.status, 202) << r.body;
    ASSERT_TRUE(ds_itest::eventually([&] { return agent->stats().commandsExecuted == 3; }, 5000))
        << "executed " << agent->stats().commandsExecuted;
    EXPECT_EQ(agent->stats().quality, 50);
    // Results are stored: done, failed with the reason, failed with the reason.
    auto result = [&](const std::string& id) {
        std::optional<deskstream::relay::CommandRecord> rec;
        store->getCommand(id, rec);
        return rec;
    };
    ASSERT_TRUE(ds_itest::eventually(
        [&] {
            auto a = result("cfg-1"), b = result("in-1"), c = result("cfg-2");
            return a && b && c && a->status == "done" && b->status == "failed" &&
                   c->status == "failed";
        },
        5000));
    EXPECT_NE(result("in-1")->resultJson.find("input for monitor 5, which does not exist"),
              std::string::npos)
        << result("in-1")->resultJson;
    EXPECT_NE(result("cfg-2")->resultJson.find("monitor 7 does not exist"), std::string::npos)
        << result("cfg-2")->resultJson;
}

// /metrics scraped during a live stream (issue 15): promtool accepts it with no lint finding, the
// frame counters move as frames flow, and the delivery latency histogram counts the viewer's
// acks (each reports 5 ms, so every observation lands in the le="0.005" bucket).
TEST_F(StreamingTest, MetricsScrapedDuringAStreamPassPromtoolAndMoveWithFramesAndAcks) {
    auto agent = startAgent(agentOptions(30, port()), 640, 360);
    ASSERT_TRUE(ds_itest::eventually([&] { return agent->stats().registered; }, 5000));
    Viewer v(port(), "stream-pc");
    ASSERT_TRUE(ds_itest::eventually([&] { return v.frames() >= 5; }, 8000));
    const std::string count = "deskstream_relay_frame_delivery_latency_seconds_count";
    auto scrape = [&] { return ds_itest::httpRequest(port(), "GET", "/metrics").body; };
    std::string first;
    ASSERT_TRUE(ds_itest::eventually(
        [&] {
            first = scrape();
            return ds_itest::metricValue(first, count) >= 3;
        },
        8000))
        << first;
    const double received1 = ds_itest::metricValue(first, "deskstream_relay_frames_received_total");
    const double forwarded1 =
        ds_itest::metricValue(first, "deskstream_relay_frames_forwarded_total");
    const double acks1 = ds_itest::metricValue(first, count);
    EXPECT_GE(received1, forwarded1 > 0 ? 1 : 0);
    const uint64_t seen = v.frames();
    ASSERT_TRUE(ds_itest::eventually([&] { return v.frames() >= seen + 10; }, 8000));
    std::string second;
    ASSERT_TRUE(ds_itest::eventually(
        [&] {
            second = scrape();
            return ds_itest::metricValue(second, count) > acks1;
        },
        8000));
    EXPECT_GT(ds_itest::metricValue(second, "deskstream_relay_frames_received_total"), received1);
    EXPECT_GT(ds_itest::metricValue(second, "deskstream_relay_frames_forwarded_total"), forwarded1);
    const double acks2 = ds_itest::metricValue(second, count);
    EXPECT_EQ(ds_itest::metricValue(
                  second, "deskstream_relay_frame_delivery_latency_seconds_bucket{le=\"0.005\"}"),
              acks2);
    EXPECT_EQ(ds_itest::metricValue(
                  second, "deskstream_relay_frame_delivery_latency_seconds_bucket{le=\"0.0025\"}"),
              0);
    EXPECT_NEAR(
        ds_itest::metricValue(second, "deskstream_relay_frame_delivery_latency_seconds_sum"),
        acks2 * 0.005, 1e-6);
    EXPECT_EQ(ds_itest::metricValue(second, "deskstream_relay_connections{role=\"viewer\"}"), 1);
    std::string out;
    EXPECT_EQ(ds_itest::promtoolCheckMetrics(second, out), 0) << out;
    EXPECT_EQ(out, "") << "promtool lint findings:\n" << out;
}

// Delivery is at least once: a result the relay cannot store leaves the command delivered, its
// lease runs out and the relay sends it again. The real agent executes it once and counts the
// duplicate (core CommandDedup), confirming again until the result is stored.
TEST_F(StreamingTest, RealAgentGivenACommandTwiceExecutesItOnceAndCountsTheDuplicate) {
    auto o = testOptions();
    o.maxMessageBytes = 16 * 1024 * 1024;
    o.commandLeaseMs = 300;
    o.reaperIntervalMs = 50;
    o.heartbeatIntervalMs = 1000;  // heartbeats are not under test: no 4008 on a loaded machine
    ds_itest::SwitchableStore& switchable = startRelayWithSwitchableStore(o);
    auto agentOpts = agentOptions(10, port());
    agentOpts.heartbeatInterval = 1000ms;
    auto agent = startAgent(agentOpts, 320, 200);
    ASSERT_TRUE(ds_itest::eventually([&] { return agent->stats().registered; }, 5000));
    const auto before = agent->stats();

    switchable.setCompleteDown(true);  // the agent's result cannot be stored
    auto r = ds_itest::httpRequest(
        port(), "POST", "/api/desktops/stream-pc/commands",
        R"({"commandId":"twice-1","command":{"type":"set_config","quality":41}})");
    ASSERT_EQ(r.status, 202) << r.body;
    ASSERT_TRUE(ds_itest::eventually(
        [&] { return agent->stats().commandsExecuted == before.commandsExecuted + 1; }, 5000));
    EXPECT_EQ(agent->stats().quality, 41);
    // Redelivered after the 300 ms lease: the duplicate counter moves, nothing runs again.
    ASSERT_TRUE(ds_itest::eventually(
        [&] { return agent->stats().commandsDuplicate >= before.commandsDuplicate + 1; }, 5000))
        << "duplicates " << agent->stats().commandsDuplicate;
    EXPECT_EQ(agent->stats().commandsExecuted, before.commandsExecuted + 1);

    switchable.setCompleteDown(false);  // the next confirmation is stored
    std::optional<deskstream::relay::CommandRecord> rec;
    ASSERT_TRUE(ds_itest::eventually(
        [&] {
            store->getCommand("twice-1", rec);
            return rec && rec->status == "done";
        },
        5000));
    EXPECT_GE(rec->attempts, 2);
    EXPECT_EQ(agent->stats().commandsExecuted, before.commandsExecuted + 1);
}

// Issue 14: a view-only viewer's input and set_config never reach the agent. The real agent's
// synthetic capture writes every input event it is given to input_log; after the view-only
// viewer's commands (each answered forbidden) and one command of a viewer with control, the log
// holds exactly that one event (so the path works and nothing else went through).
TEST_F(StreamingTest, AViewOnlyViewersInputNeverReachesTheRealAgent) {
    const std::string secret = "streaming-security-secret-0123456789";
    auto o = testOptions();
    o.authSecret = secret;
    startRelay(o);
    const std::string inputLog = dir + "/input.log";
    config.set("capture.synthetic", "input_log", inputLog);
    const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    using deskstream::core::Role;
    auto opts = agentOptions(5, port());
    opts.token = deskstream::core::mintToken(secret, Role::Desktop, "stream-pc", 60s, now);
    auto agent = startAgent(opts, 320, 200);
    ASSERT_TRUE(ds_itest::eventually([&] { return agent->stats().registered; }, 5000));

    auto viewerToken = [&](const char* rights) {
        return deskstream::core::mintToken(
            secret, Role::Viewer, "v", 60s, now,
            deskstream::core::parseViewerScope("stream-pc", rights).value());
    };
    auto viewOnly = connectViewer(viewerToken("view"));
    const std::string key = R"("command":{"type":"input","event":"key_down","key":")";
    for (const char* k : {"a", "b", "c"}) {
        viewOnly->send(R"({"type":"command","desktopClientId":"stream-pc",)" + key + k + "\"}}");
        ds_itest::Json err = viewOnly->waitFor("error");
        ASSERT_TRUE(err) << k;
        EXPECT_EQ(ds_itest::str(err, "code"), "forbidden");
    }
    viewOnly->send(
        R"({"type":"command","desktopClientId":"stream-pc","command":{"type":"set_config","fps":1}})");
    ASSERT_TRUE(viewOnly->waitFor("error"));

    auto control = connectViewer(viewerToken("view,control"));
    control->send(R"({"type":"command","desktopClientId":"stream-pc",)" + key + "z\"}}");
    ASSERT_TRUE(control->waitFor("command_queued"));
    auto lines = [&] {
        std::ifstream in(inputLog);
        std::vector<std::string> out;
        for (std::string l; std::getline(in, l);) out.push_back(l);
        return out;
    };
    ASSERT_TRUE(ds_itest::eventually([&] { return !lines().empty(); }, 5000));
    std::this_thread::sleep_for(300ms);  // anything that slipped through would be logged by now
    const auto logged = lines();
    ASSERT_EQ(logged.size(), 1u);
    EXPECT_NE(logged[0].find("\"key\":\"z\""), std::string::npos) << logged[0];
    EXPECT_EQ(agent->stats().fps, 5) << "the view-only set_config did not apply";
}
