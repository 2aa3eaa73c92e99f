// deskstream core: request-rate and per-address limits (see rate_limits.hpp).
#include "deskstream/core/rate_limits.hpp"

#include <algorithm>

namespace deskstream::core {

Rate::Rate(int count, Duration period)
    : count_(count),
      interval_(count > 0 ? period / count : Duration{0}),
      tolerance_(count > 0 ? period - period / count : Duration{0}) {}

bool Rate::allow(TimePoint now) {
    if (count_ <= 0) return true;
    const TimePoint tat = std::max(tat_, now);
    if (tat - now > tolerance_) return false;
    tat_ = tat + interval_;
    return true;
}

KeyedRate::KeyedRate(int count, Duration period, std::size_t maxKeys)
    : count_(count), period_(period), maxKeys_(std::max<std::size_t>(1, maxKeys)) {}

bool KeyedRate::allow(const std::string& key, TimePoint now) {
    if (count_ <= 0) return true;
    auto it = rates_.find(key);
    if (it == rates_.end()) {
        if (rates_.size() >= maxKeys_) {
            // Forget keys whose budget is full again: they behave exactly like new ones.
            for (auto i = rates_.begin(); i != rates_.end();)
                i = i->second.idle(now) ? rates_.erase(i) : std::next(i);
            if (rates_.size() >= maxKeys_) return false;  // a flood of distinct keys: refuse
        }
        it = rates_.emplace(key, Rate(count_, period_)).first;
    }
    return it->second.allow(now);
}

PeerGuard::PeerGuard(PeerLimits limits) : limits_(limits) {}

void PeerGuard::prune(Peer& p, TimePoint now) const {
    while (!p.failures.empty() && now - p.failures.front() >= limits_.authWindow)
        p.failures.pop_front();
    // A whole window without failures after the back-off: the next one starts at the base.
    if (p.backoffLevel > 0 && now >= p.backoffUntil && p.lastFailure != TimePoint::min() &&
        now - std::max(p.lastFailure, p.backoffUntil) >= limits_.authWindow)
        p.backoffLevel = 0;
}

void PeerGuard::forgetIdle(TimePoint now) {
    if (peers_.size() < limits_.maxAddresses) return;
    for (auto it = peers_.begin(); it != peers_.end();) {
        Peer& p = it->second;
        prune(p, now);
        const bool idle = p.connections == 0 && p.failures.empty() && now >= p.backoffUntil &&
                          p.backoffLevel == 0;
        it = idle ? peers_.erase(it) : std::next(it);
    }
}

PeerGuard::Admission PeerGuard::check(const std::string& address, TimePoint now) {
    auto it = peers_.find(address);
    if (it == peers_.end()) return {};
    Peer& p = it->second;
    prune(p, now);
    if (now < p.backoffUntil) return {Verdict::BackingOff, p.backoffUntil - now};
    return {};
}

PeerGuard::Admission PeerGuard::admit(const std::string& address, TimePoint now) {
    const Admission backoff = check(address, now);
    if (backoff.verdict != Verdict::Ok) return backoff;
    forgetIdle(now);
    Peer& p = peers_[address];
    if (limits_.maxConnections > 0 && p.connections >= limits_.maxConnections)
        return {Verdict::TooManyConnections, Duration{0}};
    ++p.connections;
    return {};
}

void PeerGuard::release(const std::string& address) {
    auto it = peers_.find(address);
    if (it == peers_.end() || it->second.connections == 0) return;
    --it->second.connections;
}

bool PeerGuard::onAuthFailure(const std::string& address, TimePoint now) {
    if (limits_.authFailures <= 0) return false;
    forgetIdle(now);
    Peer& p = peers_[address];
    prune(p, now);
    p.failures.push_back(now);
    p.lastFailure = now;
    if (static_cast<int>(p.failures.size()) < limits_.authFailures || now < p.backoffUntil)
        return false;
    Duration length = limits_.backoffBase;
    for (int i = 0; i < p.backoffLevel && length < limits_.backoffMax; ++i) length *= 2;
    length = std::min(length, limits_.backoffMax);
    p.backoffUntil = now + length;
    p.backoffLevel = std::min(p.backoffLevel + 1, 30);
    p.failures.clear();  // the next back-off needs a full count of new failures
    return true;
}

int PeerGuard::connections(const std::string& address) const {
    auto it = peers_.find(address);
    return it == peers_.end() ? 0 : it->second.connections;
}

}  // namespace deskstream::core
