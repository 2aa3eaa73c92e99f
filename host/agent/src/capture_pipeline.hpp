// The capture thread: takes the capture slots the core session hands out (paced at fps, none
// while unwatched, dropped before any work when the window is full), grabs every selected
// monitor, composes the combined layout, and leaves the job in the mailbox for the encoder. It
// alone grabs and releases frames, so a capture instance holds at most two frames per monitor.
// On DS_REINIT it re-reads the monitors and tells the LayoutListener (docs/agent.md).
#pragma once

#include "capture_device.hpp"
#include "frame_mailbox.hpp"
#include "ports.hpp"
#include "session_hub.hpp"

#include "deskstream/core/agent_metrics.hpp"

#include <Poco/Logger.h>

#include <atomic>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace deskstream::agent {

class CapturePipeline : public MonitorSelection {
public:
    CapturePipeline(CaptureDevice& device, SessionHub& hub, FrameMailbox& mailbox,
                    LayoutListener& layout, core::AgentMetrics& metrics, std::vector<int> selected,
                    bool combined, std::string clientId, Poco::Logger& log);

    /// The capture thread's body; returns when the hub stops.
    void run();
    /// After every thread is joined: releases the frames still held anywhere.
    void releaseAll();

    void select(std::vector<int> monitors) override;

    std::uint64_t captured() const { return captured_; }
    std::uint64_t errors() const { return errors_; }

private:
    enum class Next { Capture, Release, Stop };
    Next waitForSlot();
    void releaseReturned();
    bool grabAll(const std::vector<int>& monitors, bool repeat, CaptureJob& job);

    CaptureDevice& device_;
    SessionHub& hub_;
    FrameMailbox& mailbox_;
    LayoutListener& layout_;
    core::AgentMetrics& metrics_;
    const bool combined_;
    const std::string clientId_;
    Poco::Logger& log_;

    mutable std::mutex selectionMutex_;
    std::vector<int> selected_;

    // Capture thread only: jobs kept for reuse (their vectors keep their capacity), the swap
    // partner of the mailbox's returns, and the combined pictures, double-buffered: the encoder
    // may still read picture N while N+1 is composed (never more: the mailbox holds one job).
    std::vector<CaptureJob> spareJobs_, returned_;
    std::vector<int> tickMonitors_;
    std::vector<const ds_frame*> toCompose_;
    std::vector<std::uint8_t> composite_[2];
    int compositeIndex_ = 0;
    std::string lastError_;
    bool repeat_ = false;
    bool onlyTimeouts_ = false;  // the last grabAll got DS_TIMEOUT from every monitor
    std::optional<std::vector<ds_monitor_info>>
        newLayout_;  // DS_REINIT seen, not yet told  // the slot taken also owes the still monitors their last frame

    std::atomic<std::uint64_t> captured_{0}, errors_{0};
};

}  // namespace deskstream::agent
