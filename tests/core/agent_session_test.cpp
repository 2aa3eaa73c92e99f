// The agent's rules, unit-tested on core::AgentSession with a fake clock and no sockets: the
// handshake and its timeout, registration_failed, the heartbeat, the frame window, adaptive
// quality, idle when unwatched, commands executed once, reconnection and the circuit breaker,
// protocol violations. No test sleeps: time is a number the test moves.
#include "deskstream/core/agent_session.hpp"

#include <gtest/gtest.h>

#include <string>

using namespace deskstream::core;
using namespace std::chrono_literals;

namespace {

const TimePoint t0{1'000'000'000};  // an arbitrary monotonic origin
constexpr WallMs kWall = 1'700'000'000'000;

template <class T>
std::vector<T> all(const AgentActions& actions) {
    std::vector<T> out;
    for (const auto& a : actions)
        if (auto* x = std::get_if<T>(&a)) out.push_back(*x);
    return out;
}

template <class T>
std::vector<T> sentOf(const AgentActions& actions) {
    std::vector<T> out;
    for (const auto& s : all<AgentSend>(actions))
        if (auto* m = std::get_if<T>(&s.message)) out.push_back(*m);
    return out;
}

Handshake handshake() {
    Handshake h;
    h.clientId = "office-pc";
    h.capabilities.codecs = {"jpeg"};
    return h;
}

std::string ackText(int maxInFlight = 10, std::int64_t heartbeatMs = 1000,
                    std::uint32_t streamId = 7) {
    AgentHandshakeAck a;
    a.clientId = "office-pc";
    a.instanceId = "relay-1";
    a.streamId = streamId;
    a.heartbeatIntervalMs = heartbeatMs;
    a.maxInFlight = maxInFlight;
    return serialize(a);
}

std::string commandText(const std::string& id, const std::string& commandJson) {
    return R"({"type":"command","commandId":")" + id + R"(","command":)" + commandJson + "}";
}

AgentSessionConfig config() {
    AgentSessionConfig c;
    c.flow.fps = 10;  // a capture slot every 100 ms
    c.flow.maxInFlight = 10;
    c.handshakeTimeout = 2s;
    c.statsInterval = 2s;
    return c;
}

// A session connected and registered at t0.
struct Registered {
    explicit Registered(AgentSessionConfig c = config(), int relayWindow = 10,
                        std::int64_t heartbeatMs = 1000)
        : s(c, [] { return 0.5; }) {
        s.onAttempt(t0);
        s.onConnected(t0, handshake());
        actions = s.onText(ackText(relayWindow, heartbeatMs), t0, kWall);
    }
    void watch(TimePoint now) { s.onText(serialize(StartStream{}), now, kWall); }
    AgentSession s;
    AgentActions actions;
};

}  // namespace

// ------------------------------------------------------------------ handshake and registration

TEST(AgentSession, TheHandshakeIsTheFirstMessageAndRegistrationFollowsTheAck) {
    AgentSession s(config(), [] { return 0.5; });
    EXPECT_TRUE(s.attemptDue(t0));  // the first attempt is due at once
    s.onAttempt(t0);
    auto out = s.onConnected(t0, handshake());
    ASSERT_EQ(out.size(), 1u);
    auto hs = sentOf<Handshake>(out);
    ASSERT_EQ(hs.size(), 1u);
    EXPECT_EQ(hs[0].role, Role::Desktop);
    EXPECT_EQ(hs[0].clientId, "office-pc");
    EXPECT_EQ(s.state(), AgentSessionState::AwaitingAck);
    EXPECT_FALSE(s.registered());

    out = s.onText(ackText(10, 1000, 42), t0 + 5ms, kWall);
    EXPECT_EQ(all<AgentRegistered>(out).size(), 1u);
    EXPECT_TRUE(s.registered());
    EXPECT_EQ(s.streamId(), 42u);
    EXPECT_EQ(s.heartbeatInterval(), 1s);  // the relay's interval wins
    EXPECT_EQ(s.counters().registrations, 1u);
}

TEST(AgentSession, NoHandshakeAckWithinTheTimeoutClosesAtExactlyTheDeadline) {
    AgentSession s(config(), [] { return 0.5; });
    s.onAttempt(t0);
    s.onConnected(t0, handshake());
    EXPECT_EQ(s.nextDeadline(), t0 + 2s);
    EXPECT_TRUE(s.onTick(t0 + 2s - 1us).empty());
    auto out = s.onTick(t0 + 2s);
    auto closes = all<AgentClose>(out);
    ASSERT_EQ(closes.size(), 1u);
    EXPECT_EQ(closes[0].code, close_code::kPolicy);
    EXPECT_EQ(s.state(), AgentSessionState::Closing);
    // The late ack is ignored; the host reports the connection gone and a retry is planned.
    EXPECT_TRUE(s.onText(ackText(), t0 + 3s, kWall).empty());
    auto retry = all<AgentRetry>(s.onDisconnected(t0 + 3s, "closed"));
    ASSERT_EQ(retry.size(), 1u);
    EXPECT_FALSE(retry[0].wasRegistered);
}

TEST(AgentSession, RegistrationFailedIsFinal) {
    AgentSession s(config(), [] { return 0.5; });
    s.onAttempt(t0);
    s.onConnected(t0, handshake());
    RegistrationFailed f;
    f.clientId = "office-pc";
    f.code = ErrorCode::Unauthorized;
    f.error = "bad token";
    auto out = s.onText(serialize(f), t0 + 1ms, kWall);
    auto refused = all<AgentRefused>(out);
    ASSERT_EQ(refused.size(), 1u);
    EXPECT_EQ(refused[0].failure.code, ErrorCode::Unauthorized);
    EXPECT_EQ(s.state(), AgentSessionState::Refused);
    EXPECT_TRUE(s.onDisconnected(t0 + 2ms, "closed 1008").empty());  // no retry
    EXPECT_FALSE(s.attemptDue(t0 + 24h));
    EXPECT_EQ(s.nextDeadline(), TimePoint::max());
}

// ------------------------------------------------------------------ heartbeat

TEST(AgentSession, HeartbeatClosesAtExactlyIntervalTimesMissedPlusOne) {
    struct Row {
        std::int64_t intervalMs;
        int missedLimit;
    };
    for (Row row : {Row{1000, 3}, Row{200, 1}, Row{5000, 3}, Row{50, 5}}) {
        SCOPED_TRACE("interval " + std::to_string(row.intervalMs) + " ms, missed " +
                     std::to_string(row.missedLimit));
        AgentSessionConfig c = config();
        c.missedLimit = row.missedLimit;
        c.statsInterval = 1h;  // keep the ticks to the heartbeat's
        Registered r(c, 10, row.intervalMs);
        const TimePoint death = t0 + fromMs(row.intervalMs) * (row.missedLimit + 1);
        int pings = 0;
        // Tick at every deadline the session asks for, up to just before death.
        for (TimePoint now = t0; now < death; now = r.s.nextDeadline()) {
            auto out = r.s.onTick(now);
            pings += static_cast<int>(sentOf<Ping>(out).size());
            ASSERT_TRUE(all<AgentClose>(out).empty())
                << "closed early at +" << toMs(now - t0) << " ms";
        }
        EXPECT_EQ(pings, row.missedLimit + 1);  // one at start and one per interval
        EXPECT_TRUE(all<AgentClose>(r.s.onTick(death - 1us)).empty());
        auto out = r.s.onTick(death);
        auto closes = all<AgentClose>(out);
        ASSERT_EQ(closes.size(), 1u);
        EXPECT_EQ(closes[0].code, close_code::kHeartbeatTimeout);
        EXPECT_EQ(r.s.state(), AgentSessionState::Closing);
    }
}

TEST(AgentSession, AnyTrafficFromTheRelayKeepsTheConnectionAlive) {
    AgentSessionConfig c = config();
    c.statsInterval = 1h;
    Registered r(c, 10, 1000);  // dies 4 s after the last life sign
    r.s.onTick(t0);
    r.s.onFrameReceived(t0 + 3500ms);  // e.g. a WebSocket ping frame
    EXPECT_TRUE(all<AgentClose>(r.s.onTick(t0 + 4s)).empty());
    r.s.onText(serialize(Pong{0, kWall, std::nullopt}), t0 + 7s, kWall);
    EXPECT_TRUE(all<AgentClose>(r.s.onTick(t0 + 7500ms)).empty());
    EXPECT_EQ(all<AgentClose>(r.s.onTick(t0 + 11s)).size(), 1u);
}

TEST(AgentSession, PingsAreAnsweredWithTheTimestampEchoedAndTheWallClock) {
    Registered r;
    auto pongs = sentOf<Pong>(r.s.onText(R"({"type":"ping","timestamp":1234})", t0 + 1ms, kWall));
    ASSERT_EQ(pongs.size(), 1u);
    EXPECT_EQ(pongs[0].timestamp, 1234);
    EXPECT_EQ(pongs[0].serverTime, kWall);
}

TEST(AgentSession, StatsGoOutAtTheFirstTickAndThenEveryInterval) {
    Registered r;
    EXPECT_EQ(sentOf<AgentStats>(r.s.onTick(t0)).size(), 1u);
    EXPECT_EQ(sentOf<AgentStats>(r.s.onTick(t0 + 1999ms)).size(), 0u);
    auto stats = sentOf<AgentStats>(r.s.onTick(t0 + 2s));
    ASSERT_EQ(stats.size(), 1u);
    EXPECT_EQ(stats[0].fps, 10);
    EXPECT_EQ(stats[0].quality, 75);
}

// ------------------------------------------------------------------ window

TEST(AgentSession, TheWindowIsTheSmallerOfOursAndTheRelaysAndFullSlotsAreDroppedBeforeCapture) {
    struct Row {
        int ours, relays, expected;
    };
    for (Row row : {Row{10, 10, 10}, Row{4, 10, 4}, Row{10, 3, 3}, Row{1, 50, 1}}) {
        SCOPED_TRACE("ours " + std::to_string(row.ours) + ", relay's " +
                     std::to_string(row.relays));
        AgentSessionConfig c = config();
        c.flow.maxInFlight = row.ours;
        Registered r(c, row.relays);
        r.watch(t0);
        int captured = 0, skipped = 0;
        TimePoint now = t0;
        for (int i = 0; i < 30; ++i, now += 100ms) {  // one slot per 100 ms, no acks
            CaptureSlot slot = r.s.takeCaptureSlot(now);
            ASSERT_NE(slot, CaptureSlot::Wait) << "slot " << i;
            if (slot == CaptureSlot::Skip) {
                ++skipped;
                continue;
            }
            ++captured;
            ASSERT_TRUE(r.s.admitFrame(now).has_value());
        }
        EXPECT_EQ(captured, row.expected);
        EXPECT_EQ(skipped, 30 - row.expected);
        EXPECT_EQ(r.s.flow().inFlight(), static_cast<std::size_t>(row.expected));
        EXPECT_EQ(r.s.flow().dropped(), static_cast<std::uint64_t>(30 - row.expected));
        EXPECT_EQ(r.s.flow().sent(), static_cast<std::uint64_t>(row.expected));
    }
}

TEST(AgentSession, AnAckReopensTheWindowAndAnUnackedFrameLeavesItAsLostAfterTenSeconds) {
    AgentSessionConfig c = config();
    c.flow.maxInFlight = 2;
    Registered r(c, 10, 60000);  // a heartbeat that stays out of the way for 10 s
    r.watch(t0);
    auto first = r.s.admitFrame(t0);
    auto second = r.s.admitFrame(t0 + 1ms);
    ASSERT_TRUE(first && second);
    EXPECT_EQ(second->frameNumber, first->frameNumber + 1);
    EXPECT_EQ(first->streamId, 7u);
    EXPECT_FALSE(r.s.admitFrame(t0 + 2ms));  // window full: dropped
    r.s.onText(R"({"type":"frame_ack","frameNumber":)" + std::to_string(first->frameNumber) +
                   R"(,"latency":5,"viewers":1})",
               t0 + 50ms, kWall);
    EXPECT_EQ(r.s.flow().inFlight(), 1u);
    EXPECT_TRUE(r.s.admitFrame(t0 + 60ms));
    EXPECT_EQ(r.s.lastAckLatency(), Duration(50ms));
    // Nothing acked any more: both leave the window as lost 10 s after they were sent.
    EXPECT_LE(r.s.nextDeadline(), t0 + 10s + 60ms);
    r.s.onTick(t0 + 10s + 60ms);
    EXPECT_EQ(r.s.flow().inFlight(), 0u);
    EXPECT_EQ(r.s.flow().lost(), 2u);
}

// ------------------------------------------------------------------ adaptive quality

TEST(AgentSession, AckLatencyDrivesQualityWithinItsRange) {
    struct Row {
        const char* what;
        int startQuality;
        std::chrono::milliseconds latency;
        int alsoInFlight;  // frames still in flight after the acked one
        int expected;
    };
    const Row rows[] = {
        {"slow: step down 5", 75, 600ms, 0, 70},
        {"slow at the minimum: stays", 30, 900ms, 0, 30},
        {"fast with an empty pipe: step up 2", 75, 50ms, 0, 77},
        {"fast at the maximum: stays", 90, 50ms, 0, 90},
        {"fast but 3 still in flight: unchanged", 75, 50ms, 3, 75},
        {"in between: unchanged", 75, 300ms, 0, 75},
        {"exactly the high threshold: unchanged", 75, 500ms, 0, 75},
    };
    for (const Row& row : rows) {
        SCOPED_TRACE(row.what);
        AgentSessionConfig c = config();
        c.flow.quality = row.startQuality;
        Registered r(c);
        auto frame = r.s.admitFrame(t0);
        ASSERT_TRUE(frame);
        for (int i = 0; i < row.alsoInFlight; ++i)
            ASSERT_TRUE(r.s.admitFrame(t0 + row.latency / 2));
        r.s.onText(R"({"type":"frame_ack","frameNumber":)" + std::to_string(frame->frameNumber) +
                       R"(,"latency":5,"viewers":1})",
                   t0 + row.latency, kWall);
        EXPECT_EQ(r.s.quality(), row.expected);
    }
}

TEST(AgentSession, SlowAcksDriveQualityToTheMinimumAndFastOnesBackUp) {
    Registered r;
    TimePoint now = t0;
    for (int i = 0; i < 20; ++i, now += 1s) {
        auto f = r.s.admitFrame(now);
        ASSERT_TRUE(f);
        r.s.onText(R"({"type":"frame_ack","frameNumber":)" + std::to_string(f->frameNumber) +
                       R"(,"latency":5,"viewers":1})",
                   now + 800ms, kWall);
    }
    EXPECT_EQ(r.s.quality(), 30);
    for (int i = 0; i < 40; ++i, now += 1s) {
        auto f = r.s.admitFrame(now);
        ASSERT_TRUE(f);
        r.s.onText(R"({"type":"frame_ack","frameNumber":)" + std::to_string(f->frameNumber) +
                       R"(,"latency":5,"viewers":1})",
                   now + 10ms, kWall);
    }
    EXPECT_EQ(r.s.quality(), 90);
}

// ------------------------------------------------------------------ idle when unwatched

TEST(AgentSession, UnwatchedTheAgentCapturesNothingUntilStartStreamAndStopsAtStopStream) {
    Registered r;
    EXPECT_FALSE(r.s.wantsFrames());
    EXPECT_EQ(r.s.nextCaptureAt(), TimePoint::max());  // the capture thread sleeps, no polling
    for (TimePoint now = t0; now < t0 + 10s; now += 100ms)
        ASSERT_EQ(r.s.takeCaptureSlot(now), CaptureSlot::Wait);

    auto out = r.s.onText(serialize(StartStream{}), t0 + 10s, kWall);
    ASSERT_EQ(all<AgentStreamingChanged>(out).size(), 1u);
    EXPECT_TRUE(all<AgentStreamingChanged>(out)[0].streaming);
    EXPECT_LE(r.s.nextCaptureAt(), t0 + 10s);  // the first capture at once
    EXPECT_EQ(r.s.takeCaptureSlot(t0 + 10s), CaptureSlot::Capture);
    EXPECT_EQ(r.s.takeCaptureSlot(t0 + 10s + 50ms), CaptureSlot::Wait);  // paced at 10 fps
    EXPECT_EQ(r.s.nextCaptureAt(), t0 + 10s + 100ms);
    EXPECT_EQ(r.s.takeCaptureSlot(t0 + 10s + 100ms), CaptureSlot::Capture);

    out = r.s.onText(serialize(StopStream{}), t0 + 11s, kWall);
    ASSERT_EQ(all<AgentStreamingChanged>(out).size(), 1u);
    EXPECT_EQ(r.s.takeCaptureSlot(t0 + 12s), CaptureSlot::Wait);
    EXPECT_EQ(r.s.nextCaptureAt(), TimePoint::max());
}

TEST(AgentSession, LosingTheConnectionStopsTheStreamUntilTheRelaySaysStartAgain) {
    Registered r;
    r.watch(t0);
    EXPECT_TRUE(r.s.wantsFrames());
    r.s.onDisconnected(t0 + 1s, "reset");
    EXPECT_FALSE(r.s.wantsFrames());
    EXPECT_FALSE(r.s.admitFrame(t0 + 1s));  // an encoded frame after the loss is not sent
    r.s.onAttempt(t0 + 2s);
    r.s.onConnected(t0 + 2s, handshake());
    r.s.onText(ackText(), t0 + 2s, kWall);
    EXPECT_FALSE(r.s.wantsFrames());
    r.watch(t0 + 3s);
    EXPECT_TRUE(r.s.wantsFrames());
}

// ------------------------------------------------------------------ commands

TEST(AgentSession, EachCommandIsExecutedOnceAndARedeliveryIsConfirmedAndCounted) {
    struct Row {
        const char* command;
        bool hostExecutes;  // else the session applies it itself
    };
    const Row rows[] = {
        {R"({"type":"set_config","fps":5})", true},
        {R"({"type":"input","event":"key_down","key":"a"})", true},
        {R"({"type":"request_keyframe"})", true},
        {R"({"type":"start_stream"})", false},
        {R"({"type":"stop_stream"})", false},
    };
    for (const Row& row : rows) {
        SCOPED_TRACE(row.command);
        Registered r;
        const std::string text = commandText("cmd-1", row.command);
        auto out = r.s.onText(text, t0 + 1ms, kWall);
        auto exec = all<AgentExecute>(out);
        if (row.hostExecutes) {
            ASSERT_EQ(exec.size(), 1u);
            EXPECT_EQ(exec[0].commandId, "cmd-1");
            EXPECT_TRUE(sentOf<CommandResult>(out).empty());  // the result follows the work
            out = r.s.onCommandDone("cmd-1", exec[0].command, "");
        } else {
            EXPECT_TRUE(exec.empty());
        }
        auto results = sentOf<CommandResult>(out);
        ASSERT_EQ(results.size(), 1u);
        EXPECT_EQ(results[0].status, CommandStatus::Done);
        EXPECT_EQ(r.s.counters().commandsExecuted, 1u);

        // Redelivered (lease expired, reconnection): confirmed, not executed again.
        for (int again = 1; again <= 2; ++again) {
            out = r.s.onText(text, t0 + 2ms, kWall);
            EXPECT_TRUE(all<AgentExecute>(out).empty());
            results = sentOf<CommandResult>(out);
            ASSERT_EQ(results.size(), 1u);
            EXPECT_EQ(results[0].commandId, "cmd-1");
            EXPECT_EQ(results[0].status, CommandStatus::Done);
            EXPECT_EQ(r.s.counters().commandsExecuted, 1u);
            EXPECT_EQ(r.s.counters().commandsDuplicate, static_cast<std::uint64_t>(again));
        }
    }
}

TEST(AgentSession, ACommandRedeliveredAfterAReconnectionIsNotExecutedAgain) {
    Registered r;
    auto exec = all<AgentExecute>(
        r.s.onText(commandText("c-7", R"({"type":"request_keyframe"})"), t0, kWall));
    ASSERT_EQ(exec.size(), 1u);
    r.s.onDisconnected(t0 + 1s, "lost before the result went out");
    EXPECT_TRUE(sentOf<CommandResult>(r.s.onCommandDone("c-7", exec[0].command, "")).empty());
    r.s.onAttempt(t0 + 2s);
    r.s.onConnected(t0 + 2s, handshake());
    r.s.onText(ackText(), t0 + 2s, kWall);
    auto out = r.s.onText(commandText("c-7", R"({"type":"request_keyframe"})"), t0 + 3s, kWall);
    EXPECT_TRUE(all<AgentExecute>(out).empty());
    EXPECT_EQ(sentOf<CommandResult>(out).size(), 1u);
    EXPECT_EQ(r.s.counters().commandsDuplicate, 1u);
}

TEST(AgentSession, SetConfigChangesFpsAndQualityOnlyWhenTheHostSucceeded) {
    Registered r;
    const Command cmd =
        *parseCommand(R"({"type":"set_config","fps":25,"quality":99,"encoder":"webp"})");
    auto out = r.s.onCommandDone("a", cmd, "set_config: no encoder plugin 'webp'");
    auto results = sentOf<CommandResult>(out);
    ASSERT_EQ(results.size(), 1u);
    EXPECT_EQ(results[0].status, CommandStatus::Failed);
    EXPECT_EQ(results[0].error, "set_config: no encoder plugin 'webp'");
    EXPECT_EQ(r.s.flow().fps(), 10);
    EXPECT_EQ(r.s.quality(), 75);

    r.s.onCommandDone("b", cmd, "");
    EXPECT_EQ(r.s.flow().fps(), 25);
    EXPECT_EQ(r.s.quality(), 90);  // clamped to quality.max
}

// ------------------------------------------------------------------ reconnection

TEST(AgentSession, ReconnectionBacksOffWithJitterAndTheBreakerOpensAndCloses) {
    AgentSessionConfig c = config();
    c.reconnect.baseDelay = 100ms;
    c.reconnect.maxDelay = 1000ms;
    c.reconnect.failureThreshold = 4;
    c.reconnect.openDuration = 30s;
    AgentSession s(c, [] { return 0.999999; });  // the top of the jitter range shows the ceiling
    struct Row {
        std::chrono::milliseconds delay;
        std::optional<BreakerState> change;
    };
    const Row rows[] = {{99ms, std::nullopt},
                        {199ms, std::nullopt},
                        {399ms, std::nullopt},
                        {30000ms, BreakerState::Open}};
    TimePoint now = t0;
    for (const Row& row : rows) {
        ASSERT_TRUE(s.attemptDue(now));
        auto out = s.onAttempt(now);
        out = s.onDisconnected(now, "connection refused");
        auto retry = all<AgentRetry>(out);
        ASSERT_EQ(retry.size(), 1u);
        EXPECT_EQ(retry[0].delay, row.delay);
        auto changes = all<AgentBreakerChanged>(out);
        EXPECT_EQ(changes.empty(), !row.change);
        if (row.change) {
            EXPECT_EQ(changes.at(0).state, *row.change);
        }
        EXPECT_FALSE(s.attemptDue(now + row.delay - 1ms));
        EXPECT_EQ(s.nextDeadline(), now + row.delay);
        now += row.delay;
    }
    // Open: the next attempt is a half-open probe; its success closes the breaker.
    auto out = s.onAttempt(now);
    ASSERT_EQ(all<AgentBreakerChanged>(out).size(), 1u);
    EXPECT_EQ(all<AgentBreakerChanged>(out)[0].state, BreakerState::HalfOpen);
    s.onConnected(now, handshake());
    out = s.onText(ackText(), now, kWall);
    ASSERT_EQ(all<AgentBreakerChanged>(out).size(), 1u);
    EXPECT_EQ(all<AgentBreakerChanged>(out)[0].state, BreakerState::Closed);
    // Lost after registration: a fresh sequence, the first retry is quick.
    auto retry = all<AgentRetry>(s.onDisconnected(now + 5s, "reset"));
    ASSERT_EQ(retry.size(), 1u);
    EXPECT_TRUE(retry[0].wasRegistered);
    EXPECT_EQ(retry[0].delay, 99ms);
}

TEST(AgentSession, AFailedHalfOpenProbeOpensTheBreakerAgain) {
    AgentSessionConfig c = config();
    c.reconnect.failureThreshold = 1;
    c.reconnect.openDuration = 60s;
    AgentSession s(c, [] { return 0.0; });
    s.onAttempt(t0);
    s.onDisconnected(t0, "refused");
    EXPECT_EQ(s.breaker(), BreakerState::Open);
    s.onAttempt(t0 + 60s);
    EXPECT_EQ(s.breaker(), BreakerState::HalfOpen);
    auto retry = all<AgentRetry>(s.onDisconnected(t0 + 60s, "refused"));
    ASSERT_EQ(retry.size(), 1u);
    EXPECT_EQ(retry[0].delay, 60s);
    EXPECT_EQ(s.breaker(), BreakerState::Open);
}

// ------------------------------------------------------------------ bad input and violations

TEST(AgentSession, ProtocolViolationsCloseWith1008AndEnterTheErrorState) {
    struct Row {
        const char* what;
        bool registerFirst;
        std::string text;
    };
    const Row rows[] = {
        {"frame_ack before handshake_ack", false,
         R"({"type":"frame_ack","frameNumber":1,"latency":5,"viewers":1})"},
        {"a second handshake_ack", true, ackText()},
        {"registration_failed after registration", true,
         R"({"type":"registration_failed","code":"store_unavailable","error":"x"})"},
    };
    for (const Row& row : rows) {
        SCOPED_TRACE(row.what);
        AgentSession s(config(), [] { return 0.5; });
        s.onAttempt(t0);
        s.onConnected(t0, handshake());
        if (row.registerFirst) s.onText(ackText(), t0, kWall);
        auto out = s.onText(row.text, t0 + 1ms, kWall);
        auto closes = all<AgentClose>(out);
        ASSERT_EQ(closes.size(), 1u);
        EXPECT_EQ(closes[0].code, close_code::kPolicy);
        EXPECT_EQ(s.state(), AgentSessionState::Error);
        EXPECT_EQ(s.counters().protocolErrors, 1u);
        // In the error state input is ignored and no timer fires; only a reconnection follows.
        EXPECT_TRUE(s.onText(R"({"type":"ping","timestamp":1})", t0 + 2ms, kWall).empty());
        EXPECT_EQ(s.nextDeadline(), TimePoint::max());
        EXPECT_FALSE(s.wantsFrames());
        EXPECT_EQ(all<AgentRetry>(s.onDisconnected(t0 + 3ms, "closed")).size(), 1u);
        EXPECT_EQ(s.state(), AgentSessionState::Disconnected);
    }
}

TEST(AgentSession, TextThatDoesNotParseIsIgnoredAndCounted) {
    const char* bad[] = {"not json", "{}", R"({"type":"subscribe","desktopClientId":"x"})",
                         R"({"type":"frame_ack","frameNumber":"one"})"};
    Registered r;
    std::uint64_t n = 0;
    for (const char* text : bad) {
        SCOPED_TRACE(text);
        auto out = r.s.onText(text, t0 + 1ms, kWall);
        EXPECT_EQ(all<AgentNotice>(out).size(), 1u);
        EXPECT_TRUE(all<AgentClose>(out).empty());
        EXPECT_EQ(r.s.counters().badMessages, ++n);
        EXPECT_TRUE(r.s.registered());
    }
}

TEST(AgentSession, CommandsAndStartStreamBeforeTheAckAreAccepted) {
    // The relay's registry counts the agent in before its handshake_ack is written, so a
    // command or start_stream may overtake the ack.
    AgentSession s(config(), [] { return 0.5; });
    s.onAttempt(t0);
    s.onConnected(t0, handshake());
    auto out = s.onText(commandText("early", R"({"type":"request_keyframe"})"), t0, kWall);
    EXPECT_EQ(all<AgentExecute>(out).size(), 1u);
    s.onText(serialize(StartStream{}), t0, kWall);
    EXPECT_FALSE(s.wantsFrames());  // not before the registration
    s.onText(ackText(), t0 + 1ms, kWall);
    EXPECT_TRUE(s.wantsFrames());
    EXPECT_EQ(s.state(), AgentSessionState::Registered);
}

// ------------------------------------------------------------------ a picture for every viewer

TEST(AgentSession, StartStreamOwesEveryStillMonitorItsLastPictureOnce) {
    Registered r;
    EXPECT_FALSE(r.s.takePictureRepeat(t0)) << "unwatched: nothing is owed";
    r.watch(t0);
    EXPECT_TRUE(r.s.takePictureRepeat(t0)) << "start_stream: the next slot re-sends";
    EXPECT_FALSE(r.s.takePictureRepeat(t0 + 100ms)) << "the debt was paid";
    EXPECT_FALSE(r.s.takePictureRepeat(t0 + 999ms));
}

TEST(AgentSession, AStillScreenIsSentAgainEveryPictureRefresh) {
    auto c = config();
    c.pictureRefresh = 1s;
    Registered r(c);
    r.watch(t0);
    ASSERT_TRUE(r.s.takePictureRepeat(t0));
    EXPECT_FALSE(r.s.takePictureRepeat(t0 + 999ms));
    EXPECT_TRUE(r.s.takePictureRepeat(t0 + 1s)) << "a subscriber the agent is not told about";
    EXPECT_FALSE(r.s.takePictureRepeat(t0 + 1500ms));
    EXPECT_TRUE(r.s.takePictureRepeat(t0 + 2s));
}

TEST(AgentSession, ADoneRequestKeyframeOwesThePictureAtTheNextSlot) {
    Registered r;
    r.watch(t0);
    ASSERT_TRUE(r.s.takePictureRepeat(t0));
    auto exec = all<AgentExecute>(
        r.s.onText(commandText("k-1", R"({"type":"request_keyframe"})"), t0 + 10ms, kWall));
    ASSERT_EQ(exec.size(), 1u);
    EXPECT_FALSE(r.s.takePictureRepeat(t0 + 20ms)) << "not before the host ran it";
    r.s.onCommandDone("k-1", exec[0].command, "");
    EXPECT_TRUE(r.s.takePictureRepeat(t0 + 30ms));
    EXPECT_FALSE(r.s.takePictureRepeat(t0 + 40ms));
    // A failed one owes nothing.
    exec = all<AgentExecute>(
        r.s.onText(commandText("k-2", R"({"type":"request_keyframe"})"), t0 + 50ms, kWall));
    ASSERT_EQ(exec.size(), 1u);
    r.s.onCommandDone("k-2", exec[0].command, "boom");
    EXPECT_FALSE(r.s.takePictureRepeat(t0 + 60ms));
}

TEST(AgentSession, AReconnectionOwesThePictureAgain) {
    Registered r;
    r.watch(t0);
    ASSERT_TRUE(r.s.takePictureRepeat(t0));
    r.s.onDisconnected(t0 + 100ms, "gone");
    EXPECT_FALSE(r.s.takePictureRepeat(t0 + 200ms)) << "not registered: nothing is wanted";
    ASSERT_TRUE(r.s.attemptDue(t0 + 60s));
    r.s.onAttempt(t0 + 60s);
    r.s.onConnected(t0 + 60s, handshake());
    r.s.onText(ackText(), t0 + 60s, kWall);
    r.watch(t0 + 60s);
    EXPECT_TRUE(r.s.takePictureRepeat(t0 + 60s + 1ms));
}
