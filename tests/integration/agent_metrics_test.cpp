// The agent's Prometheus metrics (issue 15, agent part), end to end: AgentService (synthetic
// capture, JPEG encoder) against a real relay with the SQLite store and a WebSocket viewer that
// acks. Alone ([agent] metrics_listen) the agent serves its own /metrics; in role all the relay
// and the agent share one registry, so the relay's /metrics shows both. Scraped while frames
// flow: promtool accepts it with no lint finding, and the agent series move.
#include "deskstream/agent/agent.hpp"
#include "deskstream/core/frame_header.hpp"
#include "deskstream/core/metrics.hpp"
#include "deskstream/host/config.hpp"
#include "deskstream/host/plugin_registry.hpp"
#include "deskstream/host/services.hpp"
#include "relay_fixture.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <string>

namespace {

class AgentMetricsTest : public ds_itest::RelayTest {
protected:
    void SetUp() override {
        RelayTest::SetUp();
        plugins.scan({DS_TEST_PLUGIN_DIR});
        config.set("agent", "client_id", "metrics-pc");
        config.set("agent", "capture", "synthetic");
        config.set("agent", "encoder", "jpeg");
        config.set("agent", "fps", "20");
        // One whole JPEG picture per frame, so the per-codec counts below count frames (damage
        // encoding splits a frame into JPEG and WebP rects; its figures: damage_streaming_test).
        config.set("agent", "encoding", "full");
        config.set("capture.synthetic", "width", "320");
        config.set("capture.synthetic", "height", "200");
    }
    void start(std::shared_ptr<deskstream::core::metrics::Registry> shared) {
        auto o = testOptions();
        o.metrics = shared;
        startRelay(o);
        config.set("agent", "relay_url", "ws://127.0.0.1:" + std::to_string(port()) + "/ws/agent");
        agent = std::make_unique<deskstream::host::AgentService>(config, plugins, shared);
        agent->start();
        ASSERT_TRUE(
            ds_itest::eventually([&] { return agent->runtime()->stats().registered; }, 5000));
    }
    // A viewer that acks every frame for `frames` frames (bound: 10 s for them all).
    void watch(int frames) {
        ds_itest::WsClient viewer(port(), "/ws/viewer", true);
        viewer.send(ds_itest::viewerHandshake());
        ASSERT_TRUE(viewer.waitFor("handshake_ack", 3000));
        viewer.send(R"({"type":"subscribe","desktopClientId":"metrics-pc"})");
        ASSERT_TRUE(viewer.waitFor("subscribed", 3000));
        int got = 0;
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (got < frames && std::chrono::steady_clock::now() < deadline) {
            std::string m = viewer.waitBinary(500);
            if (m.size() < 64) continue;
            auto f = deskstream::core::decodeFrame(reinterpret_cast<const uint8_t*>(m.data()),
                                                   m.size(), 0);
            if (!f.ok) continue;
            viewer.send(R"({"type":"frame_ack","desktopClientId":"metrics-pc","frameNumber":)" +
                        std::to_string(f.header.frameNumber) + R"(,"latency":5})");
            ++got;
        }
        EXPECT_EQ(got, frames) << "frames flowed to the viewer";
    }
    void expectPromtoolClean(const std::string& text) {
        std::string out;
        EXPECT_EQ(ds_itest::promtoolCheckMetrics(text, out), 0) << out;
        EXPECT_EQ(out, "") << "promtool lint findings:\n" << out;
    }

    deskstream::host::PluginRegistry plugins;
    deskstream::host::Configuration config;
    std::unique_ptr<deskstream::host::AgentService> agent;
};

const std::string kEncodes = "deskstream_agent_encode_duration_seconds_count{codec=\"jpeg\"}";
const std::string kCaptures = "deskstream_agent_capture_duration_seconds_count{codec=\"jpeg\"}";
const std::string kBytes = "deskstream_agent_encoded_frame_bytes_count{codec=\"jpeg\"}";

}  // namespace

TEST_F(AgentMetricsTest, AloneTheAgentServesItsOwnMetricsWhichPassPromtoolAndMove) {
    config.set("agent", "metrics_listen", "127.0.0.1:0");
    start(nullptr);
    ASSERT_NE(agent->metricsPort(), 0);
    auto scrape = [&] { return ds_itest::httpRequest(agent->metricsPort(), "GET", "/metrics"); };

    watch(5);
    auto first = scrape();
    ASSERT_EQ(first.status, 200);
    const double encodes1 = ds_itest::metricValue(first.body, kEncodes);
    EXPECT_GE(encodes1, 5);
    EXPECT_GE(ds_itest::metricValue(first.body, kCaptures), 5);
    EXPECT_EQ(ds_itest::metricValue(first.body, kBytes), encodes1) << "one size per encoded frame";
    EXPECT_GT(ds_itest::metricValue(first.body,
                                    "deskstream_agent_encoded_frame_bytes_sum{codec=\"jpeg\"}"),
              0);
    EXPECT_GT(ds_itest::metricValue(first.body, "deskstream_agent_quality"), 0);
    EXPECT_EQ(
        ds_itest::metricValue(first.body, "deskstream_agent_circuit_breaker{state=\"closed\"}"), 1);
    EXPECT_EQ(ds_itest::metricValue(first.body, "deskstream_agent_reconnects_total"), 0);
    EXPECT_GE(ds_itest::metricValue(first.body, "deskstream_agent_window_drops_total"), 0);
    EXPECT_GE(ds_itest::metricValue(first.body, "deskstream_agent_frames_in_flight"), 0);
    EXPECT_GT(ds_itest::metricValue(first.body, "process_resident_memory_bytes"), 0) << first.body;
    EXPECT_EQ(first.body.find("deskstream_relay_"), std::string::npos)
        << "the agent's registry alone";
    expectPromtoolClean(first.body);

    watch(5);
    auto second = scrape();
    EXPECT_GT(ds_itest::metricValue(second.body, kEncodes), encodes1)
        << "the series move with the frames";
    expectPromtoolClean(second.body);
    EXPECT_EQ(ds_itest::httpRequest(agent->metricsPort(), "GET", "/other").status, 404);

    // The relay goes away: the agent reconnects, and the counter says so.
    relay->stop();
    ASSERT_TRUE(ds_itest::eventually(
        [&] {
            return ds_itest::metricValue(scrape().body, "deskstream_agent_reconnects_total") >= 1;
        },
        10000));
    agent->stop();
}

TEST_F(AgentMetricsTest, InRoleAllTheRelaysMetricsShowTheAgentsSeriesToo) {
    config.set("agent", "metrics_listen", "127.0.0.1:0");  // not used: the relay serves both
    start(std::make_shared<deskstream::core::metrics::Registry>());
    EXPECT_EQ(agent->metricsPort(), 0);
    watch(5);
    auto text = ds_itest::httpRequest(port(), "GET", "/metrics").body;
    EXPECT_GE(ds_itest::metricValue(text, kEncodes), 5) << text;
    EXPECT_GE(ds_itest::metricValue(text, "deskstream_relay_frames_received_total"), 5);
    expectPromtoolClean(text);
    agent->stop();
}
