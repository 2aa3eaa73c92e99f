// A real screen source through the whole path: the pipewire capture plugin on a real PipeWire
// session (scripts/lib/pipewire.sh) with a GStreamer source, the agent runtime, a real relay
// with the SQLite store and a WebSocket viewer. Checks that the plugin's monitor list reaches
// the handshake (and the relay's desktop list) and that its frames reach the viewer.
#include "deskstream/agent/agent.hpp"
#include "deskstream/core/frame_header.hpp"
#include "deskstream/host/config.hpp"
#include "deskstream/host/instances.hpp"
#include "deskstream/host/plugin_registry.hpp"
#include "ds_test/gst_source.hpp"
#include "relay_fixture.hpp"

#include <Poco/JSON/Array.h>
#include <Poco/Net/WebSocket.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <thread>

using namespace std::chrono_literals;
using deskstream::agent::AgentOptions;
using deskstream::agent::AgentRuntime;
using deskstream::host::CaptureInstance;
using deskstream::host::EncoderInstance;

namespace {

class PipeWireStreamingTest : public ds_itest::RelayTest {
protected:
    void SetUp() override {
        ASSERT_NE(std::getenv("DESKSTREAM_TEST_PIPEWIRE"), nullptr)
            << "no PipeWire test session: run scripts/test.sh, or `source scripts/lib/pipewire.sh; "
               "pw_test_start` before ctest";
        RelayTest::SetUp();
        auto o = testOptions();
        o.maxMessageBytes = 16 * 1024 * 1024;
        startRelay(o);
        plugins.scan({DS_TEST_PLUGIN_DIR});
    }

    // The GStreamer node registers asynchronously: retry until the plugin finds it (10 s).
    std::unique_ptr<CaptureInstance> pipewireCapture(const std::string& node) {
        config.set("capture.pipewire", "node", node);
        auto deadline = std::chrono::steady_clock::now() + 10s;
        for (;;) {
            try {
                return std::make_unique<CaptureInstance>(
                    plugins.require(DS_KIND_CAPTURE, "pipewire", "test"), config.poco());
            } catch (const std::exception& e) {
                if (std::chrono::steady_clock::now() > deadline) throw;
                std::this_thread::sleep_for(100ms);
            }
        }
    }

    deskstream::host::PluginRegistry plugins;
    deskstream::host::Configuration config;
};

TEST_F(PipeWireStreamingTest, MonitorsReachTheHandshakeAndFramesTheViewer) {
    const std::string node = ds_test::uniqueNodeName("agent");
    ds_test::GstSource source(node, "BGRx", 320, 200, 0xff3366cc);
    ASSERT_TRUE(source.started());

    AgentOptions o;
    o.relayUrl = "ws://127.0.0.1:" + std::to_string(port()) + "/ws/agent";
    o.clientId = "pipewire-pc";
    o.name = "PipeWire test";
    o.hostname = "test";
    o.flow.fps = 15;
    o.heartbeatInterval = 200ms;
    auto agent = std::make_unique<AgentRuntime>(
        o, pipewireCapture(node),
        std::make_unique<EncoderInstance>(plugins.require(DS_KIND_ENCODER, "jpeg", "test"),
                                          config.poco()));
    agent->start();
    ASSERT_TRUE(ds_itest::eventually([&] { return agent->stats().registered; }, 5000));

    // The relay lists the desktop with the plugin's monitor: the node's name and size.
    ds_itest::HttpResult r = ds_itest::httpRequest(port(), "GET", "/api/desktops");
    ASSERT_EQ(r.status, 200) << r.body;
    ds_itest::Json body = ds_itest::parseJson(r.body);
    ASSERT_TRUE(body);
    auto desktops = body->getArray("desktops");
    ASSERT_EQ(desktops->size(), 1u);
    auto monitors = desktops->getObject(0)->getArray("monitors");
    ASSERT_EQ(monitors->size(), 1u) << r.body;
    auto m = monitors->getObject(0);
    EXPECT_EQ(ds_itest::str(m, "name"), node) << r.body;
    EXPECT_EQ(m->getValue<int>("width"), 320) << r.body;
    EXPECT_EQ(m->getValue<int>("height"), 200) << r.body;
    EXPECT_TRUE(m->getValue<bool>("primary")) << r.body;

    // A viewer receives frames of that size.
    ds_itest::WsClient viewer(port(), "/ws/viewer", true);
    viewer.send(ds_itest::viewerHandshake());
    ASSERT_TRUE(viewer.waitFor("handshake_ack", 3000));
    viewer.send(R"({"type":"subscribe","desktopClientId":"pipewire-pc"})");
    ASSERT_TRUE(viewer.waitFor("subscribed", 3000));
    int frames = 0;
    auto deadline = std::chrono::steady_clock::now() + 10s;
    while (frames < 3 && std::chrono::steady_clock::now() < deadline) {
        auto f = viewer.receive(100);
        if (f.closed) break;
        if (f.timeout) continue;
        if (f.opcode == Poco::Net::WebSocket::FRAME_OP_TEXT) {
            viewer.answerIfPing(ds_itest::parseJson(f.data));
            continue;
        }
        if (f.opcode != Poco::Net::WebSocket::FRAME_OP_BINARY) continue;
        auto d = deskstream::core::decodeFrame(reinterpret_cast<const uint8_t*>(f.data.data()),
                                               f.data.size(), 0);
        ASSERT_TRUE(d.ok);
        EXPECT_EQ(d.header.screenWidth, 320u);
        EXPECT_EQ(d.header.screenHeight, 200u);
        viewer.send(R"({"type":"frame_ack","desktopClientId":"pipewire-pc","frameNumber":)" +
                    std::to_string(d.header.frameNumber) + R"(,"latency":5})");
        ++frames;
    }
    EXPECT_EQ(frames, 3) << "frames from the PipeWire source reach the viewer";
    agent->stop();
}

}  // namespace
