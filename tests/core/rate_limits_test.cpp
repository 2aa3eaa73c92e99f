// Rate, KeyedRate, PeerGuard and TicketBook with a fake clock: the relay's limits (docs/security.md).
#include "deskstream/core/rate_limits.hpp"
#include "deskstream/core/tickets.hpp"

#include <gtest/gtest.h>

using namespace deskstream::core;
using namespace std::chrono_literals;

namespace {
const TimePoint kT0{10'000'000};
}

TEST(Rate, AllowsTheBudgetThenRefusesUntilItRefills) {
    Rate r(5, 1s);
    for (int i = 0; i < 5; ++i) EXPECT_TRUE(r.allow(kT0)) << i;
    EXPECT_FALSE(r.allow(kT0));
    EXPECT_FALSE(r.allow(kT0 + 199ms));  // one event costs 200 ms of budget
    EXPECT_TRUE(r.allow(kT0 + 200ms));
    EXPECT_FALSE(r.allow(kT0 + 200ms));
    EXPECT_TRUE(r.idle(kT0 + 2s));
    for (int i = 0; i < 5; ++i) EXPECT_TRUE(r.allow(kT0 + 2s)) << i;
}

TEST(Rate, ASteadyRateAtTheLimitIsNeverRefused) {
    Rate r(100, 1s);
    for (int i = 0; i < 1000; ++i) EXPECT_TRUE(r.allow(kT0 + i * 10ms)) << i;
    Rate unlimited(0, 1s);
    for (int i = 0; i < 1000; ++i) EXPECT_TRUE(unlimited.allow(kT0));
}

TEST(KeyedRate, EachKeyHasItsOwnBudgetAndMemoryIsBounded) {
    KeyedRate k(2, 1min, 3);
    EXPECT_TRUE(k.allow("10.0.0.1", kT0));
    EXPECT_TRUE(k.allow("10.0.0.1", kT0));
    EXPECT_FALSE(k.allow("10.0.0.1", kT0));
    EXPECT_TRUE(k.allow("10.0.0.2", kT0));
    EXPECT_TRUE(k.allow("10.0.0.3", kT0));
    // Full: a fourth key is refused until some budget is whole again (then it is forgotten).
    EXPECT_FALSE(k.allow("10.0.0.4", kT0));
    EXPECT_TRUE(k.allow("10.0.0.4", kT0 + 2min));
    EXPECT_LE(k.keys(), 3u);
}

TEST(PeerGuard, ConnectionsPerAddress) {
    PeerLimits l;
    l.maxConnections = 2;
    PeerGuard g(l);
    EXPECT_EQ(g.admit("127.0.0.1", kT0).verdict, PeerGuard::Verdict::Ok);
    EXPECT_EQ(g.admit("127.0.0.1", kT0).verdict, PeerGuard::Verdict::Ok);
    EXPECT_EQ(g.admit("127.0.0.1", kT0).verdict, PeerGuard::Verdict::TooManyConnections);
    EXPECT_EQ(g.admit("127.0.0.2", kT0).verdict, PeerGuard::Verdict::Ok);
    g.release("127.0.0.1");
    EXPECT_EQ(g.connections("127.0.0.1"), 1);
    EXPECT_EQ(g.admit("127.0.0.1", kT0).verdict, PeerGuard::Verdict::Ok);
}

TEST(PeerGuard, FailedAuthenticationsStartAGrowingBackOffForThatAddressOnly) {
    PeerLimits l;
    l.authFailures = 20;
    l.authWindow = 60s;
    l.backoffBase = 30s;
    l.backoffMax = 100s;
    PeerGuard g(l);
    for (int i = 0; i < 19; ++i) EXPECT_FALSE(g.onAuthFailure("127.0.0.1", kT0 + i * 1s)) << i;
    EXPECT_EQ(g.admit("127.0.0.1", kT0 + 19s).verdict, PeerGuard::Verdict::Ok);
    g.release("127.0.0.1");
    EXPECT_TRUE(g.onAuthFailure("127.0.0.1", kT0 + 19s));  // the 20th within the minute
    const auto a = g.admit("127.0.0.1", kT0 + 20s);
    EXPECT_EQ(a.verdict, PeerGuard::Verdict::BackingOff);
    EXPECT_EQ(a.retryAfter, 29s);
    EXPECT_EQ(g.admit("127.0.0.2", kT0 + 20s).verdict, PeerGuard::Verdict::Ok);  // unaffected
    EXPECT_EQ(g.admit("127.0.0.1", kT0 + 49s).verdict, PeerGuard::Verdict::Ok);
    g.release("127.0.0.1");
    // The limit hit again: twice as long; then capped at backoffMax.
    for (int i = 0; i < 19; ++i) EXPECT_FALSE(g.onAuthFailure("127.0.0.1", kT0 + 50s));
    EXPECT_TRUE(g.onAuthFailure("127.0.0.1", kT0 + 50s));
    EXPECT_EQ(g.check("127.0.0.1", kT0 + 50s).retryAfter, 60s);
    for (int i = 0; i < 20; ++i) g.onAuthFailure("127.0.0.1", kT0 + 111s);
    EXPECT_EQ(g.check("127.0.0.1", kT0 + 111s).retryAfter, 100s);
    // A whole window without failures after the back-off: back to the base.
    const TimePoint later = kT0 + 111s + 100s + 61s;
    EXPECT_EQ(g.check("127.0.0.1", later).verdict, PeerGuard::Verdict::Ok);
    for (int i = 0; i < 20; ++i) g.onAuthFailure("127.0.0.1", later);
    EXPECT_EQ(g.check("127.0.0.1", later).retryAfter, 30s);
}

TEST(PeerGuard, FailuresOutsideTheWindowDoNotAddUp) {
    PeerGuard g(PeerLimits{});
    for (int i = 0; i < 100; ++i) EXPECT_FALSE(g.onAuthFailure("10.1.1.1", kT0 + i * 4s)) << i;
    EXPECT_EQ(g.check("10.1.1.1", kT0 + 400s).verdict, PeerGuard::Verdict::Ok);
}

TEST(TicketBook, OneUseAndExpiry) {
    TicketBook book(30s);
    TokenClaims claims;
    claims.sub = "alice";
    claims.scope.allDesktops = false;
    claims.scope.desktops = {"pc1"};
    const WallMs now = 1'700'000'000'000;
    ASSERT_TRUE(book.issue("t1", claims, now));
    EXPECT_FALSE(book.issue("t1", claims, now));  // ids are unique
    auto r = book.redeem("t1", now + 29'999);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r.value().sub, "alice");
    EXPECT_EQ(r.value().scope, claims.scope);
    EXPECT_FALSE(book.redeem("t1", now + 1).ok());  // used once
    ASSERT_TRUE(book.issue("t2", claims, now));
    auto late = book.redeem("t2", now + 30'000);
    ASSERT_FALSE(late.ok());
    EXPECT_EQ(late.error().code, ErrorCode::Unauthorized);
    EXPECT_EQ(book.outstanding(), 0u);
    EXPECT_FALSE(book.redeem("never-issued", now).ok());
}

TEST(TicketBook, CapacityDropsExpiredTicketsFirst) {
    TicketBook book(30s, 2);
    const WallMs now = 1'700'000'000'000;
    EXPECT_TRUE(book.issue("a", TokenClaims{}, now));
    EXPECT_TRUE(book.issue("b", TokenClaims{}, now));
    EXPECT_FALSE(book.issue("c", TokenClaims{}, now + 1000));
    EXPECT_TRUE(book.issue("c", TokenClaims{}, now + 30'000));
}
