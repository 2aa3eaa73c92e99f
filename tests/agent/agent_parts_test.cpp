// The agent's host-side parts without a socket: the compositor; the command executor with the
// real synthetic capture plugin; and the capture pipeline and encoder stage with the real
// synthetic capture and JPEG encoder, driven by the core session through the session hub (the
// relay's messages are fed in as text), the frames landing in a recording FrameSender. This is
// what the parts' small interfaces buy: each part runs without the others and without Poco::Net.
#include "capture_device.hpp"
#include "capture_pipeline.hpp"
#include "clock.hpp"
#include "command_executor.hpp"
#include "compositor.hpp"
#include "encoder_slot.hpp"
#include "encoder_stage.hpp"
#include "frame_mailbox.hpp"
#include "session_hub.hpp"

#include "deskstream/core/frame_header.hpp"
#include "deskstream/host/config.hpp"
#include "deskstream/host/plugin_registry.hpp"

#include <gtest/gtest.h>

#include <thread>

using namespace deskstream;
using namespace deskstream::agent;
using namespace std::chrono_literals;

namespace {

// Polls `pred` every 10 ms for at most `ms`.
template <class Pred>
bool eventually(Pred pred, int ms) {
    auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    while (std::chrono::steady_clock::now() < until) {
        if (pred()) return true;
        std::this_thread::sleep_for(10ms);
    }
    return pred();
}

class RecordingSender : public FrameSender {
public:
    bool sendFrame(const std::uint8_t* data, std::size_t size) override {
        auto d = core::decodeFrame(data, size, 0);
        std::lock_guard<std::mutex> lock(mutex_);
        if (d.ok) headers_.push_back(d.header);
        return true;
    }
    std::vector<core::FrameHeader> headers() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return headers_;
    }
    std::size_t count() const { return headers().size(); }

private:
    mutable std::mutex mutex_;
    std::vector<core::FrameHeader> headers_;
};

class RecordingSelection : public MonitorSelection {
public:
    void select(std::vector<int> monitors) override { selected = std::move(monitors); }
    std::vector<int> selected{0};
};

class RecordingLayout : public LayoutListener {
public:
    void layoutChanged(std::vector<ds_monitor_info> monitors) override {
        changes.push_back(std::move(monitors));
    }
    std::vector<std::vector<ds_monitor_info>> changes;
};

class AgentParts : public ::testing::Test {
protected:
    void SetUp() override {
        plugins.scan({DS_TEST_PLUGIN_DIR});
        config.set("capture.synthetic", "width", "640");
        config.set("capture.synthetic", "height", "360");
        config.set("capture.synthetic", "monitors", "2");
    }
    std::unique_ptr<host::CaptureInstance> synthetic() {
        return std::make_unique<host::CaptureInstance>(
            plugins.require(DS_KIND_CAPTURE, "synthetic", "test"), config.poco());
    }
    std::unique_ptr<host::EncoderInstance> jpeg() {
        return std::make_unique<host::EncoderInstance>(
            plugins.require(DS_KIND_ENCODER, "jpeg", "test"), config.poco());
    }

    host::PluginRegistry plugins;
    host::Configuration config;
    Poco::Logger& log = Poco::Logger::get("agent.test");
};

// The capture thread and the encode thread, wired as the runtime wires them, minus the link.
struct Pipeline {
    Pipeline(std::unique_ptr<host::CaptureInstance> c, std::unique_ptr<host::EncoderInstance> e,
             int window, Poco::Logger& log)
        : hub(sessionConfig(window), [] { return 0.5; }),
          device(std::move(c)),
          encoder(std::move(e)),
          capture(device, hub, mailbox, layout, metrics, {0}, false, "parts-pc", log),
          encode(encoder, hub, mailbox, sender, metrics, "parts-pc", log) {
        hub.start();
        captureThread = std::thread([this] { capture.run(); });
        encodeThread = std::thread([this] { encode.run(); });
        hub.change([](core::AgentSession& s) {
            s.onAttempt(monoNow());
            core::Handshake h;
            h.clientId = "parts-pc";
            return s.onConnected(monoNow(), h);
        });
        core::AgentHandshakeAck ack;
        ack.clientId = "parts-pc";
        ack.streamId = 7;
        ack.heartbeatIntervalMs = 60000;
        ack.maxInFlight = window;
        relay(core::serialize(ack));
    }
    ~Pipeline() {
        hub.stop();
        mailbox.close();
        encodeThread.join();
        captureThread.join();
        capture.releaseAll();
    }
    static core::AgentSessionConfig sessionConfig(int window) {
        core::AgentSessionConfig c;
        c.flow.fps = 50;
        c.flow.maxInFlight = window;
        return c;
    }
    void relay(const std::string& text) {
        hub.change([&](core::AgentSession& s) { return s.onText(text, monoNow(), wallMs()); });
    }
    template <class F>
    auto session(F&& f) {
        return hub.with(std::forward<F>(f));
    }

    SessionHub hub;
    FrameMailbox mailbox;
    RecordingSender sender;
    RecordingLayout layout;
    core::AgentMetrics metrics;
    CaptureDevice device;
    EncoderSlot encoder;
    CapturePipeline capture;
    EncoderStage encode;
    std::thread captureThread, encodeThread;
};

}  // namespace

TEST(Compositor, PutsMonitorsSideBySideTopAlignedOnBlack) {
    // Monitor A 2x2 (pixels 0x11..), monitor B 3x1 (0x22..), B's stride has padding.
    std::vector<std::uint8_t> a(2 * 2 * 4, 0x11), b(5 * 4, 0x22);
    ds_frame fa{}, fb{};
    fa.width = 2, fa.height = 2, fa.stride = 8, fa.format = DS_PIXEL_BGRX, fa.data = a.data();
    fb.width = 3, fb.height = 1, fb.stride = 20, fb.format = DS_PIXEL_BGRX, fb.data = b.data();
    std::vector<std::uint8_t> picture;
    ds_frame out = composeSideBySide({&fa, &fb}, picture, 1234);
    EXPECT_EQ(out.width, 5u);
    EXPECT_EQ(out.height, 2u);
    EXPECT_EQ(out.stride, 20u);
    EXPECT_EQ(out.format, DS_PIXEL_BGRX);
    EXPECT_EQ(out.capture_time_us, 1234u);
    auto px = [&](int x, int y) { return out.data[y * out.stride + x * 4]; };
    EXPECT_EQ(px(0, 0), 0x11);
    EXPECT_EQ(px(1, 1), 0x11);
    EXPECT_EQ(px(2, 0), 0x22);
    EXPECT_EQ(px(4, 0), 0x22);
    EXPECT_EQ(px(2, 1), 0);  // below the shorter monitor: black
    // The buffer keeps its capacity: composing again does not allocate.
    const std::uint8_t* before = picture.data();
    composeSideBySide({&fa, &fb}, picture, 1235);
    EXPECT_EQ(picture.data(), before);
}

TEST_F(AgentParts, ExecutorRefusesUnknownMonitorsAndAFailedSetConfigChangesNothing) {
    CaptureDevice device(synthetic());
    EncoderSlot encoder(jpeg());
    RecordingSelection selection;
    std::vector<ds_monitor_info> monitors = device.monitors();
    ASSERT_EQ(monitors.size(), 2u);

    CommandExecutor noFactory(monitors, device, encoder, selection, {}, "parts-pc", log);
    auto cmd = [](const std::string& json) { return *core::parseCommand(json); };
    EXPECT_EQ(noFactory.run(cmd(R"({"type":"set_config","monitors":[0,5]})")),
              "set_config: monitor 5 does not exist");
    EXPECT_EQ(selection.selected, std::vector<int>{0});
    EXPECT_EQ(noFactory.run(cmd(R"({"type":"set_config","monitors":[1],"encoder":"webp"})")),
              "set_config: this agent cannot switch encoders");
    EXPECT_EQ(selection.selected, std::vector<int>{0});  // nothing applied
    EXPECT_EQ(noFactory.run(cmd(R"({"type":"set_config","monitors":[1,0]})")), "");
    EXPECT_EQ(selection.selected, (std::vector<int>{1, 0}));
    EXPECT_EQ(noFactory.run(cmd(R"({"type":"request_keyframe"})")), "");

    EncoderFactory failing = [](const std::string& name) -> std::unique_ptr<host::EncoderInstance> {
        throw std::runtime_error("no encoder plugin '" + name + "'");
    };
    CommandExecutor withFactory(monitors, device, encoder, selection, failing, "parts-pc", log);
    EXPECT_THROW(withFactory.run(cmd(R"({"type":"set_config","monitors":[0],"encoder":"webp"})")),
                 std::runtime_error);
    EXPECT_EQ(selection.selected, (std::vector<int>{1, 0}));
    EXPECT_EQ(encoder.name(), "jpeg");

    EncoderFactory jpegAgain = [this](const std::string&) { return jpeg(); };
    CommandExecutor switching(monitors, device, encoder, selection, jpegAgain, "parts-pc", log);
    EXPECT_EQ(switching.run(cmd(R"({"type":"set_config","encoder":"jpeg"})")), "");  // same: kept
}

// Timing bounds (2 busy cores, ASan): 640x360 JPEG at 50 fps; a frame needs a few ms, so 5 s
// for the first frames is generous, and the window bound does not depend on time at all: with
// no ack, a 4th frame is never sent however long we wait.
TEST_F(AgentParts, PipelineIsIdleUntilStartStreamAndTheWindowBoundsFramesWithoutAcks) {
    Pipeline p(synthetic(), jpeg(), 3, log);
    std::this_thread::sleep_for(300ms);
    EXPECT_EQ(p.sender.count(), 0u);
    EXPECT_EQ(p.capture.captured(), 0u);  // unwatched: not even a capture

    p.relay(core::serialize(core::StartStream{}));
    ASSERT_TRUE(eventually([&] { return p.sender.count() >= 3; }, 5000));
    std::this_thread::sleep_for(500ms);  // 25 more slots at 50 fps
    auto headers = p.sender.headers();
    ASSERT_EQ(headers.size(), 3u);
    EXPECT_GT(p.session([](core::AgentSession& s) { return s.flow().dropped(); }), 5u);
    for (std::size_t i = 0; i < headers.size(); ++i) {
        EXPECT_EQ(headers[i].streamId, 7u);
        EXPECT_EQ(headers[i].codec, core::FrameCodec::Jpeg);
        EXPECT_EQ(headers[i].screenWidth, 640u);
        EXPECT_EQ(headers[i].monitor, 0);
        if (i > 0) {
            EXPECT_GT(headers[i].frameNumber, headers[i - 1].frameNumber);
        }
    }

    // A cumulative ack for the last one reopens the whole window.
    p.relay(R"({"type":"frame_ack","frameNumber":)" + std::to_string(headers.back().frameNumber) +
            R"(,"latency":5,"viewers":1})");
    ASSERT_TRUE(eventually([&] { return p.sender.count() >= 6; }, 5000));

    // stop_stream: whatever was already captured drains, then nothing more.
    p.relay(core::serialize(core::StopStream{}));
    std::this_thread::sleep_for(300ms);
    const auto captured = p.capture.captured();
    std::this_thread::sleep_for(500ms);
    EXPECT_EQ(p.capture.captured(), captured);
}

TEST_F(AgentParts, SetConfigMonitorsReachesTheNextCapture) {
    Pipeline p(synthetic(), jpeg(), 100, log);
    p.relay(core::serialize(core::StartStream{}));
    ASSERT_TRUE(eventually([&] { return p.sender.count() >= 1; }, 5000));
    p.capture.select({1});
    const std::size_t before = p.sender.count();
    ASSERT_TRUE(eventually(
        [&] {
            auto h = p.sender.headers();
            return h.size() > before + 2 && h.back().monitor == 1;
        },
        5000));
}
