// The agent's shared session state and the sleeping it allows (see session_hub.hpp).
#include "session_hub.hpp"

#include "clock.hpp"

namespace deskstream::agent {

SessionHub::SessionHub(core::AgentSessionConfig config, std::function<double()> uniform01)
    : session_(std::move(config), std::move(uniform01)) {}

void SessionHub::waitUntil(std::unique_lock<std::mutex>& lock, core::TimePoint deadline) {
    if (deadline == core::TimePoint::max()) {
        cv_.wait(lock);
        return;
    }
    cv_.wait_until(lock, toSteady(deadline));
}

void SessionHub::wake() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
    }  // a sleeper is either waiting or not yet checking
    cv_.notify_all();
}

void SessionHub::start() {
    std::lock_guard<std::mutex> lock(mutex_);
    running_ = true;
    finished_ = false;
}

void SessionHub::stop() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        running_ = false;
    }
    cv_.notify_all();
}

bool SessionHub::running() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return running_;
}

bool SessionHub::finish(const std::string& why) {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!fatal_.empty() || !running_) return false;
        fatal_ = why;
        running_ = false;
        finished_ = true;
    }
    cv_.notify_all();
    return true;
}

bool SessionHub::waitFinished(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mutex_);
    return cv_.wait_for(lock, timeout, [&] { return finished_; });
}

std::string SessionHub::fatalReason() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return fatal_;
}

}  // namespace deskstream::agent
