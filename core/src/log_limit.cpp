#include "deskstream/core/log_limit.hpp"

#include <algorithm>

namespace deskstream::core {

LogRepeatLimiter::LogRepeatLimiter(Duration window, std::size_t maxKeys)
    : window_(window), maxKeys_(std::max<std::size_t>(1, maxKeys)) {}

std::optional<std::uint64_t> LogRepeatLimiter::onEvent(const std::string& key, TimePoint now) {
    auto it = entries_.find(key);
    if (it != entries_.end()) {
        Entry& e = it->second;
        if (now - e.lastLogged < window_) {
            ++e.suppressed;
            return std::nullopt;
        }
        const std::uint64_t suppressed = e.suppressed;
        e.suppressed = 0;
        e.lastLogged = now;
        order_.splice(order_.end(), order_, e.order);
        return suppressed;
    }
    while (entries_.size() >= maxKeys_ && !order_.empty()) {
        entries_.erase(order_.front());
        order_.pop_front();
    }
    order_.push_back(key);
    entries_.emplace(key, Entry{now, 0, std::prev(order_.end())});
    return 0;
}

}  // namespace deskstream::core
