// Frames as sets of rects through a real relay (issue 11, relay side): a scripted raw agent draws
// a picture and sends it as multi-rect partial frames of raw BGRA (codec 5), and a key frame
// (the whole picture, in strips) only when the relay sends it request_keyframe. Test viewers
// rebuild the picture from the rects they receive, exactly as the browser does (a frame is
// applied when its last rect arrived), and compare it with what the agent drew for that frame.
#include "relay_fixture.hpp"

#include "deskstream/core/frame_header.hpp"

#include <atomic>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <string_view>
#include <thread>

using namespace ds_itest;
namespace core = deskstream::core;
using Clock = std::chrono::steady_clock;

namespace {

struct Rect {
    uint32_t x = 0, y = 0, w = 0, h = 0;
};

size_t pictureHash(const std::vector<uint8_t>& bgra) {
    return std::hash<std::string_view>()(
        std::string_view(reinterpret_cast<const char*>(bgra.data()), bgra.size()));
}

// The scripted agent: its own thread answers pings, records acks and key frame requests, and
// sends a partial frame every periodMs (rectsPerFrame rects of rectW x rectH at places and in
// colours that change every frame, so a viewer that missed one shows a different picture).
class ScriptedAgent {
public:
    struct Options {
        uint32_t width = 320, height = 240;
        int rectsPerFrame = 3;
        uint32_t rectW = 32, rectH = 32;
        int periodMs = 20;
        int keyStrips = 4;
        int maxFrames = -1;  // stop sending after this many frames (-1: until stopped)
    };

    ScriptedAgent(std::unique_ptr<WsClient> ws, Options o)
        : ws_(std::move(ws)), o_(o), picture_(size_t{o.width} * o.height * 4, 0) {
        thread_ = std::thread([this] { run(); });
    }
    ~ScriptedAgent() { stop(); }
    void stop() {
        stop_ = true;
        if (thread_.joinable()) thread_.join();
    }

    // A hash of the picture after frame n (nullopt when no such frame was sent).
    std::optional<size_t> pictureAfter(uint64_t n) const {
        std::lock_guard<std::mutex> lock(mutex_);
        auto it = pictures_.find(n);
        if (it == pictures_.end()) return std::nullopt;
        return it->second;
    }
    int keyRequests() const { return keyRequests_.load(); }
    uint64_t framesSent() const { return framesSent_.load(); }
    // frameNumber -> how many frame_acks named it.
    std::map<uint64_t, int> acks() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return acks_;
    }
    std::map<uint64_t, int> ackViewers() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return ackViewers_;
    }
    bool streaming() const { return streaming_.load(); }

private:
    void run() {
        auto nextFrame = Clock::now();
        while (!stop_) {
            while (Json j = ws_->next(2)) handle(j);
            if (ws_->closed()) return;
            const bool more = o_.maxFrames < 0 || framesSent_ < static_cast<uint64_t>(o_.maxFrames);
            if (more && Clock::now() >= nextFrame) {
                sendPartialFrame();
                nextFrame = Clock::now() + std::chrono::milliseconds(o_.periodMs);
            }
        }
    }

    void handle(const Json& j) {
        const std::string type = str(j, "type");
        if (type == "frame_ack") {
            std::lock_guard<std::mutex> lock(mutex_);
            const auto n = j->getValue<uint64_t>("frameNumber");
            ++acks_[n];
            ackViewers_[n] = j->getValue<int>("viewers");
        } else if (type == "start_stream" || type == "stop_stream") {
            streaming_ = type == "start_stream";
        } else if (type == "command") {
            const std::string id = str(j, "commandId");
            if (str(j->getObject("command"), "type") == "request_keyframe") {
                ++keyRequests_;
                sendKeyFrame();
            }
            ws_->send("{\"type\":\"command_result\",\"commandId\":\"" + id +
                      "\",\"status\":\"done\"}");
        }
    }

    // Fills `r` of the picture with colours derived from (frame, salt) and returns its bytes.
    std::vector<uint8_t> paint(const Rect& r, uint64_t frame, uint32_t salt) {
        std::vector<uint8_t> bytes(size_t{r.w} * r.h * 4);
        uint32_t s = static_cast<uint32_t>(frame * 2654435761u) ^ (salt * 40503u);
        for (uint32_t y = 0; y < r.h; ++y)
            for (uint32_t x = 0; x < r.w; ++x) {
                s = s * 1664525u + 1013904223u;
                uint8_t* px = &bytes[(size_t{y} * r.w + x) * 4];
                px[0] = static_cast<uint8_t>(s >> 24);
                px[1] = static_cast<uint8_t>(s >> 16);
                px[2] = static_cast<uint8_t>(s >> 8);
                px[3] = 255;
                std::memcpy(&picture_[((size_t{r.y} + y) * o_.width + r.x + x) * 4], px, 4);
            }
        return bytes;
    }

    void sendRect(uint64_t n, const Rect& r, const std::vector<uint8_t>& bytes, uint8_t flags) {
        core::FrameHeader h;
        h.codec = core::FrameCodec::RawBgra;
        h.flags = flags;
        h.frameNumber = n;
        h.captureTimeUs = 1;
        h.quality = 100;
        h.screenWidth = o_.width;
        h.screenHeight = o_.height;
        h.rectX = r.x;
        h.rectY = r.y;
        h.rectWidth = r.w;
        h.rectHeight = r.h;
        ws_->sendBinary(core::buildFrame(h, bytes.data(), bytes.size()));
    }

    void keep(uint64_t n) {
        std::lock_guard<std::mutex> lock(mutex_);
        pictures_[n] = pictureHash(picture_);
        ++framesSent_;
    }

    void sendPartialFrame() {
        const uint64_t n = ++number_;
        std::vector<std::pair<Rect, std::vector<uint8_t>>> rects;
        for (int i = 0; i < o_.rectsPerFrame; ++i) {
            Rect r{0, 0, o_.rectW, o_.rectH};
            r.x = static_cast<uint32_t>((n * 37 + static_cast<uint64_t>(i) * 101) %
                                        (o_.width - o_.rectW + 1));
            r.y = static_cast<uint32_t>((n * 53 + static_cast<uint64_t>(i) * 67) %
                                        (o_.height - o_.rectH + 1));
            rects.emplace_back(r, paint(r, n, static_cast<uint32_t>(i)));
        }
        keep(n);  // before the first rect leaves: a fast viewer may compare at once
        for (size_t i = 0; i < rects.size(); ++i) {
            uint8_t flags = core::frame_flags::kPartial;
            if (i + 1 == rects.size()) flags |= core::frame_flags::kLastRect;
            sendRect(n, rects[i].first, rects[i].second, flags);
        }
    }

    // The whole picture (unchanged) as horizontal strips, every rect flagged key.
    void sendKeyFrame() {
        const uint64_t n = ++number_;
        keep(n);
        const uint32_t strip = (o_.height + o_.keyStrips - 1) / o_.keyStrips;
        for (uint32_t y = 0; y < o_.height; y += strip) {
            Rect r{0, y, o_.width, std::min(strip, o_.height - y)};
            std::vector<uint8_t> bytes(size_t{r.w} * r.h * 4);
            for (uint32_t row = 0; row < r.h; ++row)
                std::memcpy(&bytes[size_t{row} * r.w * 4],
                            &picture_[(size_t{r.y} + row) * o_.width * 4], size_t{r.w} * 4);
            uint8_t flags = core::frame_flags::kKey | core::frame_flags::kPartial;
            if (y + strip >= o_.height) flags |= core::frame_flags::kLastRect;
            sendRect(n, r, bytes, flags);
        }
    }

    std::unique_ptr<WsClient> ws_;
    const Options o_;
    std::vector<uint8_t> picture_;  // agent thread only
    uint64_t number_ = 0;
    mutable std::mutex mutex_;
    std::map<uint64_t, size_t> pictures_;  // hashes: whole pictures would take GBs
    std::map<uint64_t, int> acks_, ackViewers_;
    std::atomic<int> keyRequests_{0};
    std::atomic<uint64_t> framesSent_{0};
    std::atomic<bool> streaming_{false};
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

// A viewer that rebuilds the picture from raw BGRA rects on its own thread, applies a frame
// when its last rect arrived (as web/js/display.js does), acks once per frame, and checks each
// applied frame against the agent's picture. pause() stops reading (a stalled viewer).
class PictureViewer {
public:
    PictureViewer(std::unique_ptr<WsClient> ws, const ScriptedAgent& agent, std::string desktop)
        : ws_(std::move(ws)), agent_(agent), desktop_(std::move(desktop)) {
        ws_->send("{\"type\":\"subscribe\",\"desktopClientId\":\"" + desktop_ + "\"}");
        thread_ = std::thread([this] { run(); });
    }
    ~PictureViewer() {
        stop_ = true;
        if (thread_.joinable()) thread_.join();
    }
    void pause(bool on) { paused_ = on; }

    struct Tally {
        int framesApplied = 0;
        int keyFrames = 0;
        int mismatches = 0;        // an applied frame that differs from the agent's picture
        int tornStarts = 0;        // a partial frame on a picture missing something
        int abandoned = 0;         // frames whose last rect never came (skipped, not drawn)
        uint64_t lastApplied = 0;  // its frameNumber
        Clock::time_point subscribedAt{}, firstPictureAt{}, lastKeyAt{};
    };
    Tally tally() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return t_;
    }

private:
    struct Pending {
        uint64_t number = 0;
        bool key = false;
        std::vector<std::pair<core::FrameHeader, std::string>> rects;
    };

    void run() {
        while (!stop_) {
            if (paused_) {
                std::this_thread::sleep_for(std::chrono::milliseconds(5));
                continue;
            }
            WsClient::Frame f = ws_->receive(100);
            if (f.closed) return;
            if (f.timeout) continue;
            if (f.opcode == Poco::Net::WebSocket::FRAME_OP_TEXT) {
                Json j = parseJson(f.data);
                if (ws_->answerIfPing(j)) continue;
                if (j && str(j, "type") == "subscribed") {
                    std::lock_guard<std::mutex> lock(mutex_);
                    t_.subscribedAt = Clock::now();
                }
            } else if (f.opcode == Poco::Net::WebSocket::FRAME_OP_BINARY) {
                onRect(f.data);
            }
        }
    }

    void onRect(const std::string& data) {
        auto d = core::decodeFrame(reinterpret_cast<const uint8_t*>(data.data()), data.size(), 0);
        std::lock_guard<std::mutex> lock(mutex_);
        if (!d.ok || d.header.codec != core::FrameCodec::RawBgra) {
            ++t_.mismatches;
            return;
        }
        const core::FrameHeader& h = d.header;
        if (pending_ && pending_->number != h.frameNumber) {
            ++t_.abandoned;  // its last rect never came: never drawn, the picture needs a key
            pending_.reset();
            mustBeKey_ = true;
        }
        if (!pending_) {
            pending_ = Pending{h.frameNumber, (h.flags & core::frame_flags::kKey) != 0, {}};
            const bool gap = !haveCanvas_ || h.frameNumber != t_.lastApplied + 1;
            if (!pending_->key && (mustBeKey_ || gap)) ++t_.tornStarts;
        }
        pending_->rects.emplace_back(h, data.substr(h.headerLength));
        const bool last = (h.flags & core::frame_flags::kLastRect) != 0 ||
                          (h.flags & core::frame_flags::kPartial) == 0;
        if (!last) return;
        if (canvas_.size() != size_t{h.screenWidth} * h.screenHeight * 4)
            canvas_.assign(size_t{h.screenWidth} * h.screenHeight * 4, 0);
        for (const auto& [rh, payload] : pending_->rects)
            for (uint32_t row = 0; row < rh.rectHeight; ++row)
                std::memcpy(&canvas_[((size_t{rh.rectY} + row) * h.screenWidth + rh.rectX) * 4],
                            &payload[size_t{row} * rh.rectWidth * 4], size_t{rh.rectWidth} * 4);
        const auto now = Clock::now();
        if (pending_->key) {
            ++t_.keyFrames;
            t_.lastKeyAt = now;
        }
        if (t_.framesApplied == 0) t_.firstPictureAt = now;
        ++t_.framesApplied;
        t_.lastApplied = h.frameNumber;
        if (agent_.pictureAfter(h.frameNumber) != pictureHash(canvas_)) ++t_.mismatches;
        haveCanvas_ = true;
        mustBeKey_ = false;
        pending_.reset();
        ws_->send("{\"type\":\"frame_ack\",\"desktopClientId\":\"" + desktop_ +
                  "\",\"frameNumber\":" + std::to_string(h.frameNumber) + ",\"latency\":1}");
    }

    std::unique_ptr<WsClient> ws_;
    const ScriptedAgent& agent_;
    const std::string desktop_;
    std::vector<uint8_t> canvas_;
    std::optional<Pending> pending_;
    bool haveCanvas_ = false;
    bool mustBeKey_ = false;
    mutable std::mutex mutex_;
    Tally t_;
    std::atomic<bool> paused_{false};
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

double msBetween(Clock::time_point a, Clock::time_point b) {
    return std::chrono::duration<double, std::milli>(b - a).count();
}

}  // namespace

// A viewer that joins a running stream of partial frames gets a complete picture at once: the
// relay asks the agent for a key frame (the scripted agent never sends one otherwise, so without
// the request the viewer would wait forever) and starts the viewer on it, never on a partial.
// Bound: 2 s under ASan on 2 busy cores (the path is one round trip plus a 300 KB key frame;
// measured below ~50 ms); without the relay's request no picture ever comes.
TEST_F(RelayTest, AViewerThatJoinsLateGetsAWholePictureWithinOneRoundTrip) {
    RelayOptions o = testOptions();
    o.maxMessageBytes = 4 << 20;
    startRelay(o);
    ScriptedAgent agent(connectAgent("late-pc"), {});
    PictureViewer first(connectViewer(), agent, "late-pc");
    ASSERT_TRUE(eventually([&] { return first.tally().framesApplied >= 10; }, 5000));
    EXPECT_EQ(agent.keyRequests(), 1);  // the first viewer's subscription

    PictureViewer late(connectViewer(), agent, "late-pc");
    ASSERT_TRUE(eventually([&] { return late.tally().framesApplied >= 10; }, 5000));
    const auto t = late.tally();
    ASSERT_GE(t.keyFrames, 1);
    const double waitMs = msBetween(t.subscribedAt, t.firstPictureAt);
    std::printf("late viewer: subscribed -> whole picture in %.1f ms\n", waitMs);
    EXPECT_LT(waitMs, 2000.0);
    EXPECT_EQ(t.tornStarts, 0);
    EXPECT_EQ(t.mismatches, 0);  // every applied frame equals the agent's picture, byte for byte
    EXPECT_EQ(agent.keyRequests(), 2);  // one per subscription: answered, so never repeated
    const auto f = first.tally();
    EXPECT_EQ(f.mismatches, 0);
    EXPECT_EQ(f.tornStarts, 0);
}

// A viewer that stops reading until its queue overflows, then reads again, never applies a
// partial frame of a picture it lost: it gets a whole key frame and then whole frames, each
// equal to the agent's picture. Another viewer is not held back meanwhile. Frames are 150 KB
// every 8 ms, so the stalled viewer's socket and queue overflow within a few seconds.
TEST_F(RelayTest, AStalledViewerResumesOnAWholeKeyFrameNeverATornOne) {
    RelayOptions o = testOptions();
    o.maxMessageBytes = 4 << 20;
    o.heartbeatIntervalMs = 5000;  // the stalled viewer sends nothing, not even pongs
    o.sendTimeoutMs = 20000;       // and its writer may block that long before it is dropped
    startRelay(o);
    ScriptedAgent::Options ao;
    ao.rectsPerFrame = 3;
    ao.rectW = 128;
    ao.rectH = 96;
    ao.periodMs = 8;
    ScriptedAgent agent(connectAgent("stall-pc"), ao);
    PictureViewer healthy(connectViewer(), agent, "stall-pc");
    PictureViewer stalled(connectViewer(), agent, "stall-pc");
    ASSERT_TRUE(eventually([&] { return stalled.tally().framesApplied >= 5; }, 5000));

    const int requestsBefore = agent.keyRequests();
    stalled.pause(true);
    const uint64_t droppedBefore = counter("frames_dropped");
    const int healthyBefore = healthy.tally().framesApplied;
    ASSERT_TRUE(eventually([&] { return counter("frames_dropped") > droppedBefore; }, 15000))
        << "the stalled viewer's queue never overflowed";
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    const int requestsAfterDrop = agent.keyRequests();
    // The healthy viewer kept receiving whole frames.
    EXPECT_GT(healthy.tally().framesApplied, healthyBefore + 10);

    const auto resumedAt = Clock::now();
    const int keysBefore = stalled.tally().keyFrames;
    stalled.pause(false);
    ASSERT_TRUE(eventually(
        [&] {
            auto t = stalled.tally();
            return t.keyFrames > keysBefore && t.lastKeyAt > resumedAt && t.framesApplied > 0 &&
                   agent.framesSent() > 0;
        },
        10000))
        << "no key frame after the stall";
    const auto keyAt = stalled.tally().lastKeyAt;
    const int appliedAtKey = stalled.tally().framesApplied;
    ASSERT_TRUE(
        eventually([&] { return stalled.tally().framesApplied >= appliedAtKey + 10; }, 5000));
    const auto t = stalled.tally();
    std::printf(
        "stalled viewer: resumed -> whole key frame applied in %.1f ms; %d frames "
        "abandoned (never drawn), %d key requests\n",
        msBetween(resumedAt, keyAt), t.abandoned, agent.keyRequests());
    EXPECT_GT(requestsAfterDrop, requestsBefore);  // the loss asked for a key frame
    EXPECT_EQ(t.tornStarts, 0);                    // no partial frame on a picture it lost
    EXPECT_EQ(t.mismatches, 0);                    // every applied frame equals the agent's picture
    EXPECT_EQ(healthy.tally().mismatches, 0);
    EXPECT_EQ(healthy.tally().tornStarts, 0);
    EXPECT_FALSE(healthy.tally().framesApplied == 0);
}

// The agent's window counts frames: it receives exactly one frame_ack per frame, never one per
// rect (frames of 4 rects here), and the viewer is counted in the acks of the frames it got.
TEST_F(RelayTest, TheAgentGetsOneFrameAckPerFrameNotPerRect) {
    RelayOptions o = testOptions();
    o.maxMessageBytes = 4 << 20;
    startRelay(o);
    ScriptedAgent::Options ao;
    ao.rectsPerFrame = 4;
    ao.periodMs = 10;
    ao.maxFrames = 60;
    ScriptedAgent agent(connectAgent("ack-pc"), ao);
    PictureViewer viewer(connectViewer(), agent, "ack-pc");
    ASSERT_TRUE(eventually([&] { return agent.framesSent() >= 60; }, 10000));
    const uint64_t sent = agent.framesSent();
    ASSERT_TRUE(eventually([&] { return agent.acks().size() >= sent; }, 5000))
        << "acked " << agent.acks().size() << " of " << sent << " frames";
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // a duplicate would come now
    const auto acks = agent.acks();
    const auto viewers = agent.ackViewers();
    EXPECT_EQ(acks.size(), sent);
    int withViewer = 0;
    for (const auto& [n, count] : acks) {
        EXPECT_EQ(count, 1) << "frame " << n << " was acked " << count << " times";
        EXPECT_LE(n, sent);
        withViewer += viewers.at(n) == 1;
    }
    // Every frame from the viewer's key frame on was drawn and acked by it.
    EXPECT_GE(withViewer, viewer.tally().framesApplied);
    EXPECT_GT(viewer.tally().framesApplied, 20);
    EXPECT_EQ(viewer.tally().mismatches, 0);
}
