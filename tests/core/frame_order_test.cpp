// FrameOrderCheck: advertised monitors, frame numbers in order and within 2^53-1 (issue 18.10).
#include "deskstream/core/frame_order.hpp"

#include <gtest/gtest.h>

using namespace deskstream::core;

namespace {
FrameHeader header(std::uint16_t monitor, std::uint64_t number) {
    FrameHeader h;
    h.monitor = monitor;
    h.frameNumber = number;
    return h;
}
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
    EXPECT_FALSE(check.onFrame(header(0, 5)));
    EXPECT_FALSE(check.onFrame(header(0, 5)));  // rects of one frame share its number
    EXPECT_FALSE(check.onFrame(header(0, 9)));  // gaps: frames the agent dropped
    auto back = check.onFrame(header(0, 8));
    ASSERT_TRUE(back);
    EXPECT_EQ(back->field, "frameNumber");
    EXPECT_TRUE(check.onFrame(header(0, UINT64_MAX)));
    EXPECT_TRUE(check.onFrame(header(0, FrameOrderCheck::kMaxFrameNumber + 1)));
    EXPECT_FALSE(check.onFrame(header(0, FrameOrderCheck::kMaxFrameNumber)));
    EXPECT_EQ(check.lastFrameNumber(), FrameOrderCheck::kMaxFrameNumber);
}
