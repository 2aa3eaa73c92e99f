// The one place the agent's threads meet: the core session (core::AgentSession, every protocol
// rule) behind one mutex, the condition the capture and connection threads sleep on, and the
// runtime's running / finished state. It holds no socket and no plugin.
#pragma once

#include "deskstream/core/agent_session.hpp"

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>

namespace deskstream::agent {

class SessionHub {
public:
    SessionHub(core::AgentSessionConfig config, std::function<double()> uniform01);

    /// Runs `f(session)` under the lock (reads, and changes nobody waits on).
    template <class F>
    auto with(F&& f) {
        std::lock_guard<std::mutex> lock(mutex_);
        return f(session_);
    }
    template <class F>
    auto with(F&& f) const {
        std::lock_guard<std::mutex> lock(mutex_);
        return f(static_cast<const core::AgentSession&>(session_));
    }
    /// Runs `f(session)` under the lock and wakes the sleepers when what the capture thread
    /// waits on (frames wanted, the next capture slot) changed.
    template <class F>
    auto change(F&& f) {
        std::unique_lock<std::mutex> lock(mutex_);
        const bool wanted = session_.wantsFrames();
        const core::TimePoint next = session_.nextCaptureAt();
        auto result = f(session_);
        const bool wake = wanted != session_.wantsFrames() || next != session_.nextCaptureAt();
        lock.unlock();
        if (wake) cv_.notify_all();
        return result;
    }

    // ---- waiting (the caller holds `lock()`)
    std::unique_lock<std::mutex> lock() { return std::unique_lock<std::mutex>(mutex_); }
    core::AgentSession& locked() { return session_; }
    bool runningLocked() const { return running_; }
    /// Sleeps until `deadline` (core time; TimePoint::max(): until woken) or a wake().
    void waitUntil(std::unique_lock<std::mutex>& lock, core::TimePoint deadline);
    /// Wakes every sleeper (after a change made under another part's own lock).
    void wake();

    // ---- lifecycle
    void start();
    void stop();
    bool running() const;
    /// The runtime ends by itself (registration refused): the first reason wins. False when it
    /// had already ended or was stopped.
    bool finish(const std::string& why);
    bool waitFinished(std::chrono::milliseconds timeout);
    std::string fatalReason() const;

private:
    mutable std::mutex mutex_;
    std::condition_variable cv_;
    core::AgentSession session_;
    bool running_ = false;
    bool finished_ = false;
    std::string fatal_;
};

}  // namespace deskstream::agent
