// Heartbeat and handshake timer with a fake clock: the edges exactly.
#include "deskstream/core/heartbeat.hpp"

#include <gtest/gtest.h>

#include <random>

using namespace deskstream::core;
using namespace std::chrono_literals;
using Kind = HeartbeatAction::Kind;

namespace {
const TimePoint t0 = TimePoint(1000000000);  // arbitrary origin
}

TEST(Heartbeat, PingsEveryIntervalAndClosesExactlyAtTheLimit) {
    Heartbeat hb(5s, 3);
    EXPECT_EQ(hb.onTick(t0).kind, Kind::SendPing);
    EXPECT_EQ(hb.onTick(t0 + 1s).kind, Kind::None);
    EXPECT_EQ(hb.nextDeadline(), t0 + 5s);
    EXPECT_EQ(hb.onTick(t0 + 5s - 1us).kind, Kind::None);
    EXPECT_EQ(hb.onTick(t0 + 5s).kind, Kind::SendPing);
    EXPECT_EQ(hb.onTick(t0 + 10s).kind, Kind::SendPing);
    EXPECT_EQ(hb.onTick(t0 + 15s).kind, Kind::SendPing);
    EXPECT_EQ(hb.missed(), 4);
    EXPECT_EQ(hb.nextDeadline(), t0 + 20s);
    // One microsecond before interval x (missedLimit + 1): still alive.
    EXPECT_EQ(hb.onTick(t0 + 20s - 1us).kind, Kind::None);
    // Exactly at the limit: closed with 4008.
    HeartbeatAction a = hb.onTick(t0 + 20s);
    EXPECT_EQ(a, HeartbeatAction::close(4008, "heartbeat timeout"));
    EXPECT_TRUE(hb.closed());
    // One tick later: nothing more (the close is issued once).
    EXPECT_EQ(hb.onTick(t0 + 20s + 1us).kind, Kind::None);
    EXPECT_EQ(hb.onTick(t0 + 25s).kind, Kind::None);
    EXPECT_EQ(hb.nextDeadline(), TimePoint::max());
}

TEST(Heartbeat, ALateTickStillCloses) {
    Heartbeat hb(5s, 3);
    hb.start(t0);
    for (int i = 0; i < 4; ++i) hb.onTick(t0 + i * 5s);
    // The host missed the exact deadline: the next tick, one microsecond later, closes.
    EXPECT_EQ(hb.onTick(t0 + 20s + 1us).kind, Kind::Close);
}

TEST(Heartbeat, RandomScheduleKeepsTheInvariant) {
    // Random life signs and ticks: Close happens exactly when the silence reached
    // interval x (missedLimit + 1), never earlier, never later than the first tick after it.
    std::mt19937 rng(99);
    for (int round = 0; round < 200; ++round) {
        const Duration interval = std::chrono::milliseconds(100 + rng() % 5000);
        const int limit = 1 + static_cast<int>(rng() % 5);
        const Duration deadAfter = interval * (limit + 1);
        Heartbeat hb(interval, limit);
        TimePoint now = t0;
        hb.start(now);
        TimePoint lastLife = now;
        for (int step = 0; step < 200 && !hb.closed(); ++step) {
            now += Duration(rng() % static_cast<std::uint64_t>(interval.count() * 2));
            if (rng() % 4 == 0) {
                HeartbeatAction a = hb.onTick(now);
                const bool shouldClose = now - lastLife >= deadAfter;
                ASSERT_EQ(a.kind == Kind::Close, shouldClose)
                    << "round " << round << " step " << step;
            }
            if (rng() % 3 == 0 && now - lastLife < deadAfter) {
                hb.onMessage(now);
                lastLife = now;
            }
        }
    }
}

TEST(Heartbeat, APongJustBeforeTheLimitKeepsThePeer) {
    Heartbeat hb(5s, 3);
    hb.start(t0);
    for (int i = 0; i < 4; ++i) EXPECT_EQ(hb.onTick(t0 + i * 5s).kind, Kind::SendPing);
    hb.onPong(t0 + 20s - 1us);
    EXPECT_EQ(hb.missed(), 0);
    EXPECT_EQ(hb.onTick(t0 + 20s).kind, Kind::SendPing);  // alive, the schedule goes on
    EXPECT_FALSE(hb.closed());
    // The new limit runs from the pong.
    EXPECT_EQ(hb.deathDeadline(), t0 + 40s - 1us);
    EXPECT_NE(hb.onTick(t0 + 40s - 2us).kind, Kind::Close);
    EXPECT_EQ(hb.onTick(t0 + 40s - 1us).kind, Kind::Close);
}

TEST(Heartbeat, AnyMessageProvesLife) {
    Heartbeat hb(5s, 3);
    hb.start(t0);
    hb.onTick(t0);
    for (int s = 1; s <= 60; ++s) {
        hb.onMessage(t0 + std::chrono::seconds(s));
        EXPECT_NE(hb.onTick(t0 + std::chrono::seconds(s)).kind, Kind::Close);
    }
}

TEST(Heartbeat, DeadPeerDetectedWithinTheBoundForOtherSettings) {
    for (int limit : {1, 2, 5}) {
        Heartbeat hb(1s, limit);
        hb.start(t0);
        TimePoint now = t0;
        // Host ticks exactly at nextDeadline(), as it should.
        int guard = 0;
        while (hb.onTick(now).kind != Kind::Close && ++guard < 100) now = hb.nextDeadline();
        EXPECT_EQ(now - t0, std::chrono::seconds(limit + 1)) << "limit " << limit;
        EXPECT_EQ(hb.missed(), limit + 1);
    }
}

TEST(Heartbeat, RoundTripFromEchoedTimestamp) {
    Heartbeat hb(5s, 3);
    HeartbeatAction ping = hb.onTick(t0);
    ASSERT_EQ(ping.kind, Kind::SendPing);
    hb.onPong(t0 + 42ms, ping.timestamp);
    ASSERT_TRUE(hb.lastRtt());
    EXPECT_EQ(*hb.lastRtt(), 42ms);
    hb.onPong(t0 + 50ms, -123456);  // garbage echo: ignored
    EXPECT_EQ(*hb.lastRtt(), 42ms);
}

TEST(Heartbeat, LongStallDoesNotBurstPings) {
    Heartbeat hb(5s, 3);
    hb.start(t0);
    hb.onTick(t0);
    hb.onMessage(t0 + 13s);
    EXPECT_EQ(hb.onTick(t0 + 13s).kind, Kind::SendPing);
    EXPECT_EQ(hb.onTick(t0 + 13s).kind, Kind::None);
    EXPECT_EQ(hb.nextDeadline(), t0 + 18s);
}

TEST(HandshakeTimer, ClosesWith1008AtTheDeadline) {
    HandshakeTimer t(5s, t0);
    EXPECT_EQ(t.nextDeadline(), t0 + 5s);
    EXPECT_EQ(t.onTick(t0 + 5s - 1us).kind, Kind::None);
    EXPECT_EQ(t.onTick(t0 + 5s), HeartbeatAction::close(1008, "handshake timeout"));
    EXPECT_TRUE(t.expired());
    EXPECT_EQ(t.onTick(t0 + 6s).kind, Kind::None);
}

TEST(HandshakeTimer, DisarmedByTheHandshake) {
    HandshakeTimer t(5s, t0);
    t.onHandshake();
    EXPECT_EQ(t.onTick(t0 + 60s).kind, Kind::None);
    EXPECT_EQ(t.nextDeadline(), TimePoint::max());
}

// ---------------------------------------------------------------- AbuseGuard (same header family)
#include "deskstream/core/abuse.hpp"

TEST(AbuseGuard, ClosesAfterTooManyBadMessagesInTheWindow) {
    AbuseGuard g(3, 10s);
    const Error bad = makeError(ErrorCode::BadRequest, "type", "unknown type");
    for (int i = 0; i < 3; ++i) EXPECT_EQ(g.onBadInput(bad, t0 + i * 1s).kind, Kind::None);
    EXPECT_EQ(g.onBadInput(bad, t0 + 3s), HeartbeatAction::close(1008, "too many bad messages"));
    EXPECT_EQ(g.onBadInput(bad, t0 + 4s).kind, Kind::None);  // once
}

TEST(AbuseGuard, OldStrikesAgeOut) {
    AbuseGuard g(2, 10s);
    const Error bad = makeError(ErrorCode::BadRequest, "x", "x");
    for (int i = 0; i < 20; ++i) EXPECT_EQ(g.onBadInput(bad, t0 + i * 5s).kind, Kind::None);
    EXPECT_EQ(g.strikes(), 2);
}

TEST(AbuseGuard, RepeatedTooLargeCloses1009) {
    AbuseGuard g(10, 10s);
    const Error big = makeError(ErrorCode::TooLarge, "size", "too large");
    EXPECT_EQ(g.onBadInput(big, t0).kind, Kind::None);
    EXPECT_EQ(g.onBadInput(big, t0 + 10s).kind, Kind::None);  // the first one aged out
    EXPECT_EQ(g.onBadInput(big, t0 + 11s), HeartbeatAction::close(1009, "message too large"));
}
