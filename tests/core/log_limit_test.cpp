// LogRepeatLimiter: identical lines within the window are counted, not logged (fake clock).
#include "deskstream/core/log_limit.hpp"

#include <gtest/gtest.h>

using namespace deskstream::core;
using std::chrono::milliseconds;

TEST(LogRepeatLimiter, FirstLineLoggedRepeatsCountedUntilTheWindowEnds) {
    LogRepeatLimiter lim(milliseconds(1000));
    const TimePoint t0{milliseconds(5000)};
    ASSERT_EQ(lim.onEvent("GET 500", t0), std::optional<std::uint64_t>(0));
    for (int i = 1; i < 3000; ++i) EXPECT_FALSE(lim.onEvent("GET 500", t0 + milliseconds(i % 999)));
    // Exactly at the window's end the next one is logged with the count of the suppressed ones.
    EXPECT_FALSE(lim.onEvent("GET 500", t0 + milliseconds(999)));
    auto again = lim.onEvent("GET 500", t0 + milliseconds(1000));
    ASSERT_TRUE(again);
    EXPECT_EQ(*again, 3000u);
    // The count restarts.
    EXPECT_FALSE(lim.onEvent("GET 500", t0 + milliseconds(1001)));
    EXPECT_EQ(lim.onEvent("GET 500", t0 + milliseconds(2000)), std::optional<std::uint64_t>(1));
}

TEST(LogRepeatLimiter, DifferentKeysAreIndependentAndBounded) {
    LogRepeatLimiter lim(milliseconds(1000), 2);
    const TimePoint t0{milliseconds(1)};
    EXPECT_TRUE(lim.onEvent("a", t0));
    EXPECT_TRUE(lim.onEvent("b", t0));
    EXPECT_FALSE(lim.onEvent("a", t0));
    EXPECT_TRUE(lim.onEvent("c", t0));  // evicts "a", the least recently logged
    EXPECT_EQ(lim.keys(), 2u);
    EXPECT_TRUE(lim.onEvent("a", t0));  // forgotten, so logged again
}
