// FrameOrderCheck: advertised monitors, frame numbers in order and within 2^53-1 (issue 18.10).
#include "deskstream/core/frame_order.hpp"

#include <gtest/gtest.h>

using namespace deskstream::core;

namespace {
FrameHeader header(std::uint16_t monitor, std::uint64_t number, std::uint8_t flags = 0) {
    FrameHeader h;
    h.monitor = monitor;
    h.frameNumber = number;
    h.flags = flags;
    h.screenWidth = 1920;
    h.screenHeight = 1080;
    h.payloadLength = 1000;
    return h;
}
constexpr std::uint8_t kPartial = frame_flags::kPartial;
constexpr std::uint8_t kLast = frame_flags::kPartial | frame_flags::kLastRect;
}  // namespace

TEST(FrameOrderCheck, OnlyAdvertisedMonitorsAndTheCombinedPicture) {
    FrameOrderCheck check({0, 1});
    EXPECT_FALSE(check.onFrame(header(0, 1)));
    EXPECT_FALSE(check.onFrame(header(1, 2)));
    auto e = check.onFrame(header(999, 3));
    ASSERT_TRUE(e);
    EXPECT_EQ(e->field, "monitor");
    EXPECT_EQ(check.lastFrameNumber(), 2u);  // a refused frame changes nothing
    FrameOrderCheck unlisted({2, 3});
    EXPECT_FALSE(unlisted.onFrame(header(0, 1)));  // 0: the combined picture
    EXPECT_TRUE(unlisted.onFrame(header(4, 2)));
    FrameOrderCheck none(std::vector<int>{});
    EXPECT_FALSE(none.onFrame(header(7, 1)));
}

TEST(FrameOrderCheck, NumbersNeverGoBackAndStayBelowTwoToThe53) {
    FrameOrderCheck check({0});
    EXPECT_FALSE(check.onFrame(header(0, 5, kPartial)));
    EXPECT_FALSE(check.onFrame(header(0, 5, kLast)));  // rects of one frame share its number
    EXPECT_FALSE(check.onFrame(header(0, 9)));         // gaps: frames the agent dropped
    auto back = check.onFrame(header(0, 8));
    ASSERT_TRUE(back);
    EXPECT_EQ(back->field, "frameNumber");
    EXPECT_TRUE(check.onFrame(header(0, UINT64_MAX)));
    EXPECT_TRUE(check.onFrame(header(0, FrameOrderCheck::kMaxFrameNumber + 1)));
    EXPECT_FALSE(check.onFrame(header(0, FrameOrderCheck::kMaxFrameNumber)));
    EXPECT_EQ(check.lastFrameNumber(), FrameOrderCheck::kMaxFrameNumber);
}

// A frame is a set of rects (docs/protocol.md "Frames"): once it ended, its number is spent; its
// rects share a monitor and a screen size; all of them together fit in one message's limit.
TEST(FrameOrderCheck, RectsOfOneFrameShareItsMonitorAndScreenAndEndWithTheLastRect) {
    FrameOrderCheck check({0, 1, 2});
    EXPECT_FALSE(check.onFrame(header(1, 5, kPartial)));
    EXPECT_FALSE(check.onFrame(header(1, 5, kPartial)));
    auto otherMonitor = check.onFrame(header(2, 5, kPartial));
    ASSERT_TRUE(otherMonitor);
    EXPECT_EQ(otherMonitor->field, "monitor");
    FrameHeader resized = header(1, 5, kPartial);
    resized.screenWidth = 1280;
    auto r = check.onFrame(resized);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->field, "screenWidth");
    EXPECT_FALSE(check.onFrame(header(1, 5, kLast)));
    auto afterLast = check.onFrame(header(1, 5, kPartial));
    ASSERT_TRUE(afterLast);
    EXPECT_EQ(afterLast->field, "frameNumber");
    EXPECT_NE(afterLast->message.find("already ended"), std::string::npos);
    // A message that is not partial is a whole frame by itself.
    EXPECT_FALSE(check.onFrame(header(0, 6)));
    EXPECT_TRUE(check.onFrame(header(0, 6)));
    // A frame left open by the agent may be followed by the next one (the relay drops it).
    EXPECT_FALSE(check.onFrame(header(0, 7, kPartial)));
    EXPECT_FALSE(check.onFrame(header(0, 8, kPartial)));
    EXPECT_EQ(check.lastFrameNumber(), 8u);
}

TEST(FrameOrderCheck, AFrameFitsInOneMessagesLimitInAll) {
    FrameOrderCheck check({0}, 3 * (64 + 1000));  // three rects of 1000 bytes fit, not four
    EXPECT_FALSE(check.onFrame(header(0, 1, kPartial)));
    EXPECT_FALSE(check.onFrame(header(0, 1, kPartial)));
    EXPECT_FALSE(check.onFrame(header(0, 1, kPartial)));
    auto e = check.onFrame(header(0, 1, kLast));
    ASSERT_TRUE(e);
    EXPECT_EQ(e->field, "payloadLength");
    // The next frame starts from zero.
    for (int i = 0; i < 3; ++i)
        EXPECT_FALSE(check.onFrame(header(0, 2, i == 2 ? kLast : kPartial)));
}
