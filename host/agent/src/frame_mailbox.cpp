// The capture -> encoder hand-over and the way back for released frames (see frame_mailbox.hpp).
#include "frame_mailbox.hpp"

namespace deskstream::agent {

void FrameMailbox::put(CaptureJob job) {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        job_ = std::move(job);
    }
    cv_.notify_all();
}

std::optional<CaptureJob> FrameMailbox::take() {
    std::unique_lock<std::mutex> lock(mutex_);
    cv_.wait(lock, [&] { return job_.has_value() || closed_; });
    if (closed_) return std::nullopt;  // what is left is released after the threads stopped
    std::optional<CaptureJob> out;
    out.swap(job_);
    return out;
}

std::optional<CaptureJob> FrameMailbox::takeUntil(std::chrono::steady_clock::time_point deadline,
                                                  bool& closed) {
    std::unique_lock<std::mutex> lock(mutex_);
    cv_.wait_until(lock, deadline, [&] { return job_.has_value() || closed_; });
    closed = closed_;
    std::optional<CaptureJob> out;
    if (!closed_) out.swap(job_);
    return out;
}

void FrameMailbox::giveBack(CaptureJob job) {
    std::lock_guard<std::mutex> lock(mutex_);
    returns_.push_back(std::move(job));
}

void FrameMailbox::takeReturns(std::vector<CaptureJob>& out) {
    std::lock_guard<std::mutex> lock(mutex_);
    out.swap(returns_);
}

bool FrameMailbox::empty() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return !job_.has_value();
}

bool FrameMailbox::hasReturns() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return !returns_.empty();
}

void FrameMailbox::close() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        closed_ = true;
    }
    cv_.notify_all();
}

std::vector<CaptureJob> FrameMailbox::drain() {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<CaptureJob> out = std::move(returns_);
    returns_.clear();
    if (job_) out.push_back(std::move(*job_));
    job_.reset();
    return out;
}

}  // namespace deskstream::agent
