// deskstream core: rate-limiting of repeated identical log lines (sans-IO).
//
// A flood of identical errors (e.g. thousands of malformed HTTP requests) must not flood the
// log. The first occurrence of a key is logged at once; identical ones within `window` are only
// counted; the first occurrence after the window is logged with the number suppressed in
// between ("... (and 2999 more like it)"). Keys are bounded: past `maxKeys` the oldest key is
// forgotten (its suppressed count is reported by the caller's next line for it, or lost).
#pragma once

#include "deskstream/core/types.hpp"

#include <cstdint>
#include <list>
#include <optional>
#include <string>
#include <unordered_map>

namespace deskstream::core {

class LogRepeatLimiter {
public:
    explicit LogRepeatLimiter(Duration window = std::chrono::seconds(10),
                              std::size_t maxKeys = 256);

    /// One occurrence of `key` at `now`. nullopt: do not log it (counted). A value: log it now,
    /// mentioning the returned number of identical lines suppressed since the last one logged.
    std::optional<std::uint64_t> onEvent(const std::string& key, TimePoint now);

    std::size_t keys() const { return entries_.size(); }

private:
    struct Entry {
        TimePoint lastLogged;
        std::uint64_t suppressed = 0;
        std::list<std::string>::iterator order;
    };
    Duration window_;
    std::size_t maxKeys_;
    std::unordered_map<std::string, Entry> entries_;
    std::list<std::string> order_;  // least recently logged first
};

}  // namespace deskstream::core
