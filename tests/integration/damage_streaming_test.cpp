// Damage-driven streaming end to end (issue 11, docs/agent.md "Damage-driven streaming"): a real
// relay (in this process), the deskstream executable as the agent in its own process (so its
// CPU time is its own, read from /proc/<pid>/stat), the synthetic capture's scenarios, and a test
// viewer over a real WebSocket that rebuilds the picture from the rects it receives (decoding
// JPEG and WebP) and acks each frame after its last rect.
#include "relay_fixture.hpp"

#include "deskstream/core/frame_header.hpp"
#include "ds_test/frame_canvas.hpp"

#include <Poco/Net/WebSocket.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <csignal>
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

using namespace std::chrono_literals;
using Poco::Net::WebSocket;

namespace {

std::uint64_t wallUsNow() {
    return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                          std::chrono::system_clock::now().time_since_epoch())
                                          .count());
}

// CPU seconds (user + system) the process has used so far.
double cpuSeconds(pid_t pid) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
    std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    const auto close = text.rfind(')');
    if (close == std::string::npos) return -1;
    std::istringstream rest(text.substr(close + 2));
    std::string field;
    double utime = 0, stime = 0;
    for (int i = 3; rest >> field; ++i) {  // field 3 is the state
        if (i == 14) utime = std::stod(field);
        if (i == 15) {
            stime = std::stod(field);
            break;
        }
    }
    return (utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// The viewer: receives, rebuilds, acks each frame once after its last rect.
class RebuildingViewer {
public:
    struct Rect {
        std::uint64_t frame;
        std::uint8_t flags;
        int codec;
        int quality;
        std::uint32_t x, y, width, height;
        std::size_t bytes;
        std::uint64_t receivedUs, captureUs;
    };

    RebuildingViewer(std::uint16_t port, const std::string& desktop) : desktop_(desktop) {
        ws_ = std::make_unique<ds_itest::WsClient>(port, "/ws/viewer", true);
        ws_->send(ds_itest::viewerHandshake());
        if (!ws_->waitFor("handshake_ack", 3000))
            throw std::runtime_error("viewer: no handshake_ack");
        ws_->send("{\"type\":\"subscribe\",\"desktopClientId\":\"" + desktop + "\"}");
        if (!ws_->waitFor("subscribed", 3000)) throw std::runtime_error("viewer: not subscribed");
        thread_ = std::thread([this] { run(); });
    }
    ~RebuildingViewer() {
        stop_ = true;
        if (thread_.joinable()) thread_.join();
    }
    std::vector<Rect> rects() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return rects_;
    }
    std::size_t count() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return rects_.size();
    }
    ds_test::Canvas canvas() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return canvas_;
    }
    std::vector<std::string> errors() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return errors_;
    }
    void command(const std::string& commandJson) {
        std::lock_guard<std::mutex> lock(sendMutex_);
        ws_->send("{\"type\":\"command\",\"desktopClientId\":\"" + desktop_ +
                  "\",\"command\":" + commandJson + "}");
    }
    // Waits until no rect arrived for `quiet` (at most `limit`); true when it went quiet.
    bool waitQuiet(std::chrono::milliseconds quiet, std::chrono::milliseconds limit) {
        const auto end = std::chrono::steady_clock::now() + limit;
        std::size_t seen = count();
        auto lastChange = std::chrono::steady_clock::now();
        while (std::chrono::steady_clock::now() < end) {
            std::this_thread::sleep_for(20ms);
            const std::size_t now = count();
            if (now != seen) {
                seen = now;
                lastChange = std::chrono::steady_clock::now();
            } else if (std::chrono::steady_clock::now() - lastChange >= quiet) {
                return true;
            }
        }
        return false;
    }

private:
    void run() {
        while (!stop_) {
            ds_itest::WsClient::Frame f;
            f = ws_->receive(20);
            if (f.closed) break;
            if (f.timeout) continue;
            const std::uint64_t receivedUs = wallUsNow();
            if (f.opcode == WebSocket::FRAME_OP_TEXT) {
                try {
                    std::lock_guard<std::mutex> lock(sendMutex_);
                    ws_->answerIfPing(ds_itest::parseJson(f.data));
                } catch (const std::exception&) {
                    break;
                }
                continue;
            }
            if (f.opcode != WebSocket::FRAME_OP_BINARY) continue;
            const auto* bytes = reinterpret_cast<const std::uint8_t*>(f.data.data());
            auto d = deskstream::core::decodeFrame(bytes, f.data.size(), 0);
            std::lock_guard<std::mutex> lock(mutex_);
            if (!d.ok) {
                errors_.push_back("undecodable header");
                continue;
            }
            const auto& h = d.header;
            const std::string why = ds_test::drawRect(
                canvas_, static_cast<int>(h.codec), h.screenWidth, h.screenHeight, h.rectX, h.rectY,
                h.rectWidth, h.rectHeight, bytes + h.headerLength, h.payloadLength);
            if (!why.empty()) errors_.push_back(why);
            rects_.push_back({h.frameNumber, h.flags, static_cast<int>(h.codec), h.quality, h.rectX,
                              h.rectY, h.rectWidth, h.rectHeight, f.data.size(), receivedUs,
                              h.captureTimeUs});
            const bool completes = (h.flags & deskstream::core::frame_flags::kLastRect) ||
                                   !(h.flags & deskstream::core::frame_flags::kPartial);
            if (completes) {
                std::lock_guard<std::mutex> sendLock(sendMutex_);
                try {
                    ws_->send("{\"type\":\"frame_ack\",\"desktopClientId\":\"" + desktop_ +
                              "\",\"frameNumber\":" + std::to_string(h.frameNumber) +
                              ",\"latency\":1}");
                } catch (...) {}
            }
        }
    }

    std::string desktop_;
    std::unique_ptr<ds_itest::WsClient> ws_;
    std::thread thread_;
    std::atomic<bool> stop_{false};
    mutable std::mutex mutex_, sendMutex_;
    std::vector<Rect> rects_;
    std::vector<std::string> errors_;
    ds_test::Canvas canvas_;
};

struct Window {
    std::size_t frames = 0, rects = 0, bytes = 0;
};
Window between(const std::vector<RebuildingViewer::Rect>& rects, std::uint64_t fromUs,
               std::uint64_t toUs) {
    Window w;
    std::uint64_t lastFrame = UINT64_MAX;
    for (const auto& r : rects) {
        if (r.receivedUs < fromUs || r.receivedUs >= toUs) continue;
        ++w.rects;
        w.bytes += r.bytes;
        if (r.frame != lastFrame) ++w.frames, lastFrame = r.frame;
    }
    return w;
}

class DamageStreamingTest : public ds_itest::RelayTest {
protected:
    void SetUp() override {
        RelayTest::SetUp();
        auto o = testOptions();
        o.maxMessageBytes = 16 * 1024 * 1024;
        startRelay(o);
    }
    void TearDown() override {
        stopAgent();
        RelayTest::TearDown();
    }

    // The deskstream executable as the agent (role agent) against the test's relay.
    void startAgent(const std::vector<std::string>& sets) {
        logPath_ = dir + "/agent.log";
        std::vector<std::string> args = {
            DS_DESKSTREAM_EXE,
            "--role",
            "agent",
            "--set",
            "host.plugins.path=" + std::string(DS_BUILD_PLUGIN_DIR),
            "--set",
            "host.state_dir=" + dir + "/state",
            "--set",
            "agent.relay_url=ws://127.0.0.1:" + std::to_string(port()) + "/ws/agent",
            "--set",
            "agent.client_id=" + kDesktop,
            "--set",
            "agent.capture=synthetic",
        };
        for (const auto& s : sets) {
            args.push_back("--set");
            args.push_back(s);
        }
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_addopen(&actions, 1, logPath_.c_str(),
                                         O_WRONLY | O_CREAT | O_TRUNC, 0644);
        posix_spawn_file_actions_adddup2(&actions, 1, 2);
        ASSERT_EQ(posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ), 0)
            << "cannot start " << argv[0];
        posix_spawn_file_actions_destroy(&actions);
        ASSERT_TRUE(ds_itest::eventually([&] { return hasRow(kDesktop); }, 30000))
            << "the agent did not register within 30 s; its log:\n"
            << agentLog();
    }
    void stopAgent() {
        if (pid_ <= 0) return;
        ::kill(pid_, SIGTERM);
        int status = 0;
        for (int i = 0; i < 100 && ::waitpid(pid_, &status, WNOHANG) == 0; ++i)
            std::this_thread::sleep_for(50ms);
        if (::waitpid(pid_, &status, WNOHANG) == 0) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, &status, 0);
        }
        pid_ = -1;
    }
    std::string agentLog() const {
        std::ifstream f(logPath_);
        return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    }
    // The shared test screenshot as a binary PPM (the synthetic plugin's background format).
    std::string screenshotPpm() {
        const std::string png = std::string(DS_TEST_SHARED_DATA_DIR) + "/desktop-1080p.png";
        const std::string ppm = dir + "/desktop-1080p.ppm";
        const std::string cmd = "ffmpeg -loglevel error -y -i '" + png +
                                "' -f image2 -vcodec ppm -pix_fmt rgb24 '" + ppm + "'";
        EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd << " (ffmpeg is in scripts/bootstrap.sh)";
        return ppm;
    }

    const std::string kDesktop = "damage-pc";
    pid_t pid_ = -1;
    std::string logPath_;
};

// still: after the first picture (and its refinement) nothing reaches the viewer and the agent
// uses almost no CPU; the rebuilt picture is the screenshot, exactly; request_keyframe gives a
// whole key picture.
TEST_F(DamageStreamingTest, StillScreenCostsNothingAndEndsExact) {
    const std::string ppm = screenshotPpm();
    const ds_test::Canvas source = ds_test::readPpm(ppm);
    ASSERT_EQ(source.width, 1920u);
    startAgent({"capture.synthetic.scenario=still", "capture.synthetic.background=" + ppm,
                "agent.encoding=damage", "agent.damage.refine_ms=500"});
    RebuildingViewer viewer(port(), kDesktop);
    ASSERT_TRUE(ds_itest::eventually([&] { return viewer.count() > 0; }, 10000)) << agentLog();
    // The key picture, then (a screenshot has many colours: lossy) its lossless refinement
    // 0.5 s later; then silence. Generous limit for ASan on a busy machine.
    ASSERT_TRUE(viewer.waitQuiet(1500ms, 20s)) << "frames kept coming";
    const auto first = viewer.rects();
    EXPECT_TRUE(first.front().flags & deskstream::core::frame_flags::kKey);
    EXPECT_TRUE(viewer.errors().empty()) << viewer.errors().front();

    // The measured window: >= 3 s, nothing at all, and the agent's CPU below 2% of a core. The
    // agent is an ASan build; still, a still screen costs it five 200 ms grab timeouts and a
    // heartbeat per second, far below the bound (measured in docs/performance.md); a broken
    // rule (a picture re-sent every second, a busy loop) exceeds it.
    const std::uint64_t fromUs = wallUsNow();
    const double cpu0 = cpuSeconds(pid_);
    const auto t0 = std::chrono::steady_clock::now();
    std::this_thread::sleep_for(3500ms);
    const double cpu = cpuSeconds(pid_) - cpu0;
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const Window w = between(viewer.rects(), fromUs, wallUsNow());
    EXPECT_EQ(w.frames, 0u);
    EXPECT_EQ(w.bytes, 0u);
    EXPECT_LT(cpu / seconds, 0.02) << "agent CPU " << cpu << " s in " << seconds << " s";
    std::cout << "[ still ] agent CPU " << 100.0 * cpu / seconds << "% of a core over " << seconds
              << " s; 0 frames, 0 bytes\n";

    // Rebuilt from rects: exactly the source after refinement (PSNR >= 35 dB asked; lossless).
    const ds_test::Canvas rebuilt = viewer.canvas();
    ASSERT_EQ(rebuilt.width, source.width);
    const double psnr = ds_test::psnrRgb(rebuilt.bgra, source.bgra);
    EXPECT_GE(psnr, 35.0);
    EXPECT_TRUE(std::isinf(psnr)) << "PSNR " << psnr << " dB: not exact after refinement";
    std::cout << "[ still ] rebuilt picture PSNR R,G,B: " << psnr << " dB\n";

    // request_keyframe: a whole key picture arrives, and the rebuilt picture is still the source.
    const std::size_t before = viewer.count();
    viewer.command("{\"type\":\"request_keyframe\"}");
    ASSERT_TRUE(ds_itest::eventually([&] { return viewer.count() > before; }, 5000));
    const auto after = viewer.rects();
    const auto& key = after[before];
    EXPECT_TRUE(key.flags & deskstream::core::frame_flags::kKey);
    EXPECT_EQ(key.width, 1920u);
    EXPECT_EQ(key.height, 1080u);
}

// typing at 1080p: small lossless rects, well under 50 KB/s, change-to-viewer latency p50 under
// 50 ms (capture time, stamped by the plugin when the glyph appears, to the viewer's receipt).
TEST_F(DamageStreamingTest, TypingIsSmallFastAndLossless) {
    startAgent({"capture.synthetic.scenario=typing", "agent.encoding=damage"});
    RebuildingViewer viewer(port(), kDesktop);
    ASSERT_TRUE(ds_itest::eventually([&] { return viewer.count() > 0; }, 10000)) << agentLog();
    std::this_thread::sleep_for(1500ms);  // past the key picture and its refinement
    const std::uint64_t fromUs = wallUsNow();
    std::this_thread::sleep_for(4000ms);
    const std::uint64_t toUs = wallUsNow();
    const auto rects = viewer.rects();
    const Window w = between(rects, fromUs, toUs);
    const double seconds = double(toUs - fromUs) / 1e6;
    std::vector<double> latencies;
    std::size_t lossless = 0, typed = 0;
    for (const auto& r : rects) {
        if (r.receivedUs < fromUs || r.receivedUs >= toUs) continue;
        if (r.receivedUs >= r.captureUs)
            latencies.push_back(double(r.receivedUs - r.captureUs) / 1e3);
        if (r.width * r.height <= 64u * 64u) {
            ++typed;
            if (r.codec == 2 && r.quality == 100) ++lossless;  // WebP lossless
        }
    }
    ASSERT_FALSE(latencies.empty());
    std::sort(latencies.begin(), latencies.end());
    const double p50 = latencies[latencies.size() / 2];
    std::cout << "[ typing ] " << w.frames / seconds << " frames/s, " << w.bytes / seconds / 1024
              << " KB/s, latency p50 " << p50 << " ms, " << typed << " small rects (" << lossless
              << " WebP lossless)\n";
    // ~10 glyphs a second: each one a frame (some grabs may see two glyphs).
    EXPECT_GE(w.frames / seconds, 5.0);
    EXPECT_LT(w.bytes / seconds, 50.0 * 1024);
    // 50 ms is the bound; the path has no timer in it (the plugin wakes at the glyph,
    // the agent grabs, diffs, encodes a few hundred pixels and sends), so a miss means a wait
    // crept in (a back-off, a pacing slot, a batching delay).
    EXPECT_LT(p50, 50.0);
    EXPECT_GT(typed, 0u);
    EXPECT_EQ(lossless, typed) << "typed glyphs go lossless";
    EXPECT_TRUE(viewer.errors().empty()) << viewer.errors().front();
}

// video: a large area changing every frame goes as one lossy rect per frame (JPEG).
TEST_F(DamageStreamingTest, VideoIsOneLossyRectPerFrame) {
    startAgent({"capture.synthetic.scenario=video", "agent.encoding=damage"});
    RebuildingViewer viewer(port(), kDesktop);
    ASSERT_TRUE(ds_itest::eventually([&] { return viewer.count() > 20; }, 20000)) << agentLog();
    std::this_thread::sleep_for(1000ms);
    const auto rects = viewer.rects();
    // The last frames: one rect each, JPEG, covering the 960x540 area (tile-aligned box).
    std::size_t checked = 0;
    for (std::size_t i = rects.size() - 5; i < rects.size(); ++i) {
        const auto& r = rects[i];
        if (r.flags & deskstream::core::frame_flags::kKey) continue;
        EXPECT_EQ(r.codec, 1) << "frame " << r.frame;
        EXPECT_GE(r.width, 960u);
        EXPECT_GE(r.height, 540u);
        EXPECT_TRUE(r.flags & deskstream::core::frame_flags::kLastRect);
        ++checked;
    }
    EXPECT_GT(checked, 0u);
    EXPECT_TRUE(viewer.errors().empty()) << viewer.errors().front();
}

}  // namespace

// The default moving picture changes in two places a frame (the counter and the block): frames
// of several rects sharing one frame number, partial, only the last one flagged last-rect, and
// the agent's window counts each frame once (acks per frame keep it streaming).
TEST_F(DamageStreamingTest, SeveralRectsOfAFrameShareItsNumberAndOnlyTheLastClosesIt) {
    startAgent({"capture.synthetic.scenario=moving", "agent.encoding=damage", "agent.fps=15"});
    RebuildingViewer viewer(port(), kDesktop);
    ASSERT_TRUE(ds_itest::eventually([&] { return viewer.count() > 60; }, 30000)) << agentLog();
    const auto rects = viewer.rects();
    std::size_t multi = 0;
    for (std::size_t i = 0; i < rects.size();) {
        std::size_t j = i;
        while (j < rects.size() && rects[j].frame == rects[i].frame) ++j;
        for (std::size_t k = i; k < j; ++k) {
            const bool last = k + 1 == j;
            const auto& r = rects[k];
            if (r.flags & deskstream::core::frame_flags::kKey) {
                EXPECT_EQ(j - i, 1u) << "a key picture is one whole rect";
                continue;
            }
            EXPECT_TRUE(r.flags & deskstream::core::frame_flags::kPartial) << "frame " << r.frame;
            EXPECT_EQ(bool(r.flags & deskstream::core::frame_flags::kLastRect), last)
                << "frame " << r.frame << " rect " << (k - i);
        }
        if (j - i > 1) ++multi;
        if (j < rects.size()) {
            EXPECT_GT(rects[j].frame, rects[i].frame);
        }
        i = j;
    }
    EXPECT_GT(multi, 10u) << "frames of several rects";
    // fps is a ceiling: refinements ride along in picture frames, never add frames above it.
    // (15 fps configured; 10% for the pacing's restart after a late slot and the window edges.)
    std::size_t frames = 0;
    for (std::size_t i = 0; i < rects.size(); ++i)
        if (i == 0 || rects[i].frame != rects[i - 1].frame) ++frames;
    const double span = double(rects.back().receivedUs - rects.front().receivedUs) / 1e6;
    EXPECT_LE(double(frames - 1) / span, 15 * 1.1) << frames << " frames in " << span << " s";
    EXPECT_TRUE(viewer.errors().empty()) << viewer.errors().front();
}
