// deskstream core: per-connection heartbeat and handshake timeout (sans-IO).
//
// One Heartbeat per connection, on both sides (relay pings agents and viewers; agents ping the
// relay). The host calls:
//   onMessage(now)  for every message received (text or binary): any traffic proves life;
//   onPong(now, ts) for a pong (also proves life; measures the round trip from the echoed ts);
//   onTick(now)     whenever it wakes up, at the latest at nextDeadline();
// and performs the returned action (send {"type":"ping","timestamp":ts}, or close).
//
// Semantics: pings go out every `interval`, the first one at the first onTick (or start()).
// With `lastLife` = the start or the last life sign, the peer is closed at the first onTick with
//     now >= lastLife + interval * (missedLimit + 1)
// i.e. after missedLimit pings went unanswered plus one interval of grace for the last answer.
// That is Invariant 4 (docs/architecture.md): a dead peer is detected within interval x (missedLimit + 1) (5 s x 4 =
// 20 s by default), provided the host ticks at nextDeadline().
#pragma once

#include "deskstream/core/types.hpp"

#include <optional>
#include <string>

namespace deskstream::core {

struct HeartbeatAction {
    enum class Kind { None, SendPing, Close };
    Kind kind = Kind::None;
    std::int64_t timestamp = 0;  // SendPing: value for the ping's "timestamp" (ms of TimePoint)
    int closeCode = 0;           // Close: 4008 (Heartbeat) or 1008 (HandshakeTimer)
    std::string reason;          // Close: "heartbeat timeout" / "handshake timeout"

    static HeartbeatAction none() { return {}; }
    static HeartbeatAction sendPing(std::int64_t ts) { return {Kind::SendPing, ts, 0, {}}; }
    static HeartbeatAction close(int code, std::string why) {
        return {Kind::Close, 0, code, std::move(why)};
    }
    bool operator==(const HeartbeatAction& o) const {
        return kind == o.kind && timestamp == o.timestamp && closeCode == o.closeCode &&
               reason == o.reason;
    }
};

class Heartbeat {
public:
    /// interval > 0, missedLimit >= 1 (clamped).
    Heartbeat(Duration interval, int missedLimit);

    /// Starts the schedule at `now` (first ping due at `now`). Optional: the first onTick or
    /// life sign starts it otherwise.
    void start(TimePoint now);

    /// Any received message proves life.
    void onMessage(TimePoint now);
    /// A pong; `echoedTimestamp` is the pong's "timestamp" (when it is one of ours, the round
    /// trip time becomes available through lastRtt()).
    void onPong(TimePoint now, std::optional<std::int64_t> echoedTimestamp = std::nullopt);

    /// Close (once; afterwards None forever), or SendPing when a ping is due, else None.
    HeartbeatAction onTick(TimePoint now);

    /// Earliest instant at which onTick can return something other than None.
    /// TimePoint::max() once closed.
    TimePoint nextDeadline() const;

    /// Pings sent since the last life sign.
    int missed() const { return missed_; }
    bool closed() const { return closed_; }
    std::optional<Duration> lastRtt() const { return rtt_; }
    Duration interval() const { return interval_; }
    int missedLimit() const { return missedLimit_; }
    /// The instant the peer will be declared dead if nothing arrives.
    TimePoint deathDeadline() const;

private:
    void ensureStarted(TimePoint now);

    Duration interval_;
    int missedLimit_;
    bool started_ = false;
    bool closed_ = false;
    TimePoint lastLife_{0};
    TimePoint nextPing_{0};
    int missed_ = 0;
    std::optional<Duration> rtt_;
};

/// Closes a connection (1008 "handshake timeout") that sent no handshake within `timeout`.
class HandshakeTimer {
public:
    HandshakeTimer(Duration timeout, TimePoint connectedAt);
    /// The handshake arrived: the timer is disarmed.
    void onHandshake() { done_ = true; }
    /// Close{1008} once when the deadline passed without handshake (deadline inclusive).
    HeartbeatAction onTick(TimePoint now);
    /// TimePoint::max() when disarmed or fired.
    TimePoint nextDeadline() const;
    bool expired() const { return fired_; }

private:
    TimePoint deadline_;
    bool done_ = false;
    bool fired_ = false;
};

}  // namespace deskstream::core
