// Damage-driven streaming end to end (issue 11, docs/agent.md "Damage-driven streaming"): a real
// relay (in this process), the deskstream executable as the agent in its own process (so its
// CPU time is its own, read from /proc/<pid>/stat), the synthetic capture's scenarios, and a test
// viewer over a real WebSocket that rebuilds the picture from the rects it receives (decoding
// JPEG and WebP) and acks each frame after its last rect.
#include "damage_fixture.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <thread>

using namespace std::chrono_literals;
using namespace ds_itest_damage;

namespace {

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
    const auto [w, cpu, seconds] = measureStill(viewer, 3500ms);
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
    const Traffic w = between(rects, fromUs, toUs);
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

}  // namespace
