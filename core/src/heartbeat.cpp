#include "deskstream/core/heartbeat.hpp"

#include <algorithm>

namespace deskstream::core {

Heartbeat::Heartbeat(Duration interval, int missedLimit)
    : interval_(interval.count() > 0 ? interval : Duration(1)),
      missedLimit_(std::max(1, missedLimit)) {}

void Heartbeat::ensureStarted(TimePoint now) {
    if (started_) return;
    started_ = true;
    lastLife_ = now;
    nextPing_ = now;
}

void Heartbeat::start(TimePoint now) { ensureStarted(now); }

void Heartbeat::onMessage(TimePoint now) {
    ensureStarted(now);
    if (closed_) return;
    // A message that arrives "before" the last one (host clock oddities) must not shorten life.
    lastLife_ = std::max(lastLife_, now);
    missed_ = 0;
}

void Heartbeat::onPong(TimePoint now, std::optional<std::int64_t> echoedTimestamp) {
    onMessage(now);
    if (echoedTimestamp) {
        // Our pings carry toMs(now); a pong echoing one of them gives the round trip. Anything
        // else (a peer's own clock, garbage) gives a negative or absurd value: ignored.
        const std::int64_t rttMs = toMs(now) - *echoedTimestamp;
        if (rttMs >= 0 && rttMs <= toMs(interval_ * (missedLimit_ + 1))) rtt_ = fromMs(rttMs);
    }
}

TimePoint Heartbeat::deathDeadline() const { return lastLife_ + interval_ * (missedLimit_ + 1); }

HeartbeatAction Heartbeat::onTick(TimePoint now) {
    ensureStarted(now);
    if (closed_) return HeartbeatAction::none();
    if (now >= deathDeadline()) {
        closed_ = true;
        return HeartbeatAction::close(close_code::kHeartbeatTimeout, "heartbeat timeout");
    }
    if (now >= nextPing_) {
        // Keep the cadence; after a long stall (host asleep) restart from now, no ping burst.
        nextPing_ += interval_;
        if (nextPing_ <= now) nextPing_ = now + interval_;
        ++missed_;
        return HeartbeatAction::sendPing(toMs(now));
    }
    return HeartbeatAction::none();
}

TimePoint Heartbeat::nextDeadline() const {
    if (closed_) return TimePoint::max();
    if (!started_) return TimePoint::min();  // tick now to start
    return std::min(nextPing_, deathDeadline());
}

HandshakeTimer::HandshakeTimer(Duration timeout, TimePoint connectedAt)
    : deadline_(connectedAt + timeout) {}

HeartbeatAction HandshakeTimer::onTick(TimePoint now) {
    if (done_ || fired_ || now < deadline_) return HeartbeatAction::none();
    fired_ = true;
    return HeartbeatAction::close(close_code::kPolicy, "handshake timeout");
}

TimePoint HandshakeTimer::nextDeadline() const {
    return (done_ || fired_) ? TimePoint::max() : deadline_;
}

}  // namespace deskstream::core
