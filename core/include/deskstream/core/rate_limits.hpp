// deskstream core: request-rate and per-address limits of the relay (sans-IO, fake-clock tested).
//
//   Rate        one sliding budget: at most `count` events per `period`, bursts included
//               (GCRA: O(1) state, one instant). Input events per second per viewer, commands
//               per minute per viewer.
//   KeyedRate   a Rate per key (e.g. per IP for REST commands), bounded in memory: keys whose
//               budget is full again are forgotten.
//   PeerGuard   per source address: connections open at once, and failed authentications
//               within a window; at `authFailures` failures the address is refused for a back-off
//               that doubles each time the limit is hit again (up to backoffMax), and goes back to
//               the base after a whole window without failures.
// None of these is thread-safe: the relay holds one lock around each (docs/security.md).
#pragma once

#include "deskstream/core/types.hpp"

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <string>

namespace deskstream::core {

class Rate {
public:
    /// count <= 0: unlimited.
    Rate(int count, Duration period);
    /// True when the event fits the budget (and spends it); false: over the limit (nothing spent).
    bool allow(TimePoint now);
    /// The budget is full again at `now` (the state equals a fresh Rate's).
    bool idle(TimePoint now) const { return tat_ <= now; }
    int count() const { return count_; }

private:
    int count_;
    Duration interval_;                // period / count: the cost of one event
    Duration tolerance_;               // period - interval: how far ahead the budget may be spent
    TimePoint tat_{TimePoint::min()};  // theoretical arrival time of the next event
};

class KeyedRate {
public:
    KeyedRate(int count, Duration period, std::size_t maxKeys = 65536);
    bool allow(const std::string& key, TimePoint now);
    std::size_t keys() const { return rates_.size(); }

private:
    int count_;
    Duration period_;
    std::size_t maxKeys_;
    std::map<std::string, Rate> rates_;
};

struct PeerLimits {
    int maxConnections = 256;  // WebSocket connections per address at once (<= 0: unlimited)
    int authFailures = 20;     // failed authentications per window before the back-off
    Duration authWindow = std::chrono::seconds(60);
    Duration backoffBase = std::chrono::seconds(30);
    Duration backoffMax = std::chrono::minutes(15);
    std::size_t maxAddresses = 65536;  // addresses remembered (oldest idle forgotten beyond)
};

class PeerGuard {
public:
    explicit PeerGuard(PeerLimits limits = {});

    enum class Verdict { Ok, TooManyConnections, BackingOff };
    struct Admission {
        Verdict verdict = Verdict::Ok;
        Duration retryAfter{0};  // BackingOff: until the back-off ends
    };
    /// A new connection from `address`: Ok counts it (release it with release()).
    Admission admit(const std::string& address, TimePoint now);
    void release(const std::string& address);
    /// Whether `address` is in a back-off (HTTP requests with credentials are refused then).
    Admission check(const std::string& address, TimePoint now);
    /// One failed authentication. True when it started a back-off (log it once).
    bool onAuthFailure(const std::string& address, TimePoint now);

    int connections(const std::string& address) const;
    std::size_t addresses() const { return peers_.size(); }
    const PeerLimits& limits() const { return limits_; }

private:
    struct Peer {
        int connections = 0;
        std::deque<TimePoint> failures;  // within authWindow
        TimePoint backoffUntil{TimePoint::min()};
        int backoffLevel = 0;  // the next back-off lasts base * 2^level
        TimePoint lastFailure{TimePoint::min()};
    };
    void prune(Peer& p, TimePoint now) const;
    void forgetIdle(TimePoint now);

    PeerLimits limits_;
    std::map<std::string, Peer> peers_;
};

}  // namespace deskstream::core
