// The agent's only reads of the clocks: the monotonic instant the core session runs on, the
// wall clock for values that leave the process, and the conversion back for waiting on it.
#pragma once

#include "deskstream/core/types.hpp"

#include <chrono>
#include <cstdint>

namespace deskstream::agent {

inline core::TimePoint monoNow() { return core::fromSteady(std::chrono::steady_clock::now()); }

inline core::WallMs wallMs() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

inline std::uint64_t wallUs() {
    return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                          std::chrono::system_clock::now().time_since_epoch())
                                          .count());
}

/// A core TimePoint as a steady_clock instant, for condition_variable::wait_until.
inline std::chrono::steady_clock::time_point toSteady(core::TimePoint t) {
    return std::chrono::steady_clock::time_point(
        std::chrono::duration_cast<std::chrono::steady_clock::duration>(t));
}

}  // namespace deskstream::agent
