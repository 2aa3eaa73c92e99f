// The damage-driven streaming tests' fixture (damage_streaming_test.cpp, x11_damage_test.cpp):
// the deskstream executable as the agent process against the test's relay, its CPU time from
// /proc/<pid>/stat, and a viewer over a real WebSocket that rebuilds the picture from the rects
// it receives (decoding JPEG and WebP) and acks each frame once, after its last rect.
#pragma once

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

namespace ds_itest_damage {

using namespace std::chrono_literals;
using Poco::Net::WebSocket;

inline std::uint64_t wallUsNow() {
    return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                          std::chrono::system_clock::now().time_since_epoch())
                                          .count());
}

// CPU seconds (user + system) the process has used so far.
inline double cpuSeconds(pid_t pid) {
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
        ws_ = ds_itest::subscribedViewer(port, desktop);
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

struct Traffic {
    std::size_t frames = 0, rects = 0, bytes = 0;
};
inline Traffic between(const std::vector<RebuildingViewer::Rect>& rects, std::uint64_t fromUs,
                       std::uint64_t toUs) {
    Traffic w;
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
            "agent.capture=" + capture_,
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

    // What the viewer received and the agent's CPU seconds over `span` of wall time (`seconds`,
    // as measured) while the test leaves the screen alone.
    struct StillWindow {
        Traffic traffic;
        double cpu, seconds;
    };
    StillWindow measureStill(const RebuildingViewer& viewer, std::chrono::milliseconds span) {
        const std::uint64_t fromUs = wallUsNow();
        const double cpu0 = cpuSeconds(pid_);
        const auto t0 = std::chrono::steady_clock::now();
        std::this_thread::sleep_for(span);
        StillWindow s;
        s.cpu = cpuSeconds(pid_) - cpu0;
        s.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        s.traffic = between(viewer.rects(), fromUs, wallUsNow());
        return s;
    }

    const std::string kDesktop = "damage-pc";
    std::string capture_ = "synthetic";  // the capture plugin startAgent() uses
    pid_t pid_ = -1;
    std::string logPath_;
};

}  // namespace ds_itest_damage
