// deskstream core: the "repeated abuse closes that one connection" rule (sans-IO).
//
// Every bad message gets an `error` reply from the host; the guard decides when to give up on
// the connection: more than `maxStrikes` bad messages within `window` -> close 1008
// ("too many bad messages"); a second too_large message within `window` -> close 1009
// ("message too large"), since a peer that keeps sending oversized data wastes bandwidth and
// memory on every attempt. Good messages do not reset the count (the window does).
#pragma once

#include "deskstream/core/heartbeat.hpp"
#include "deskstream/core/types.hpp"

#include <deque>

namespace deskstream::core {

class AbuseGuard {
public:
    explicit AbuseGuard(int maxStrikes = 10, Duration window = std::chrono::seconds(60));
    /// Records one bad message. None: answer with an error and go on. Close: close with the
    /// returned code/reason (returned once; afterwards None).
    HeartbeatAction onBadInput(const Error& error, TimePoint now);
    int strikes() const { return static_cast<int>(strikes_.size()); }
    bool closed() const { return closed_; }

private:
    int maxStrikes_;
    Duration window_;
    std::deque<TimePoint> strikes_;
    std::deque<TimePoint> tooLarge_;
    bool closed_ = false;
};

}  // namespace deskstream::core
