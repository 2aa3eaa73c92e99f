// The hand-over between the capture and encoder threads: one capture job in the mailbox (the
// encoder works on the previous one meanwhile), and the jobs the encoder is done with, which go
// back to the capture thread so that only it releases frames into the capture plugin.
#pragma once

#include "deskstream/host/instances.hpp"

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <vector>

namespace deskstream::agent {

/// The frames captured at one capture slot: one per selected monitor (or the combined picture).
struct CaptureJob {
    struct Item {
        host::CaptureInstance::Frame held;  // the plugin's frame, released when destroyed
        ds_frame composite{};               // the combined picture (then `held` is empty)
        std::uint16_t monitor = 0;
        bool repeat = false;     // no new picture: send this monitor's last frame again
        bool key = false;        // a new picture, and a viewer needs a whole one (damage mode)
        double grabSeconds = 0;  // the capture plugin's time for this picture (metrics)
        const ds_frame& frame() const { return held ? *held : composite; }
    };
    std::vector<Item> items;
    std::uint64_t captureTimeUs = 0;
};

class FrameMailbox {
public:
    /// Capture thread: leaves a job (the mailbox is empty: see empty()).
    void put(CaptureJob job);
    /// Encoder thread: waits for a job; nullopt once closed.
    std::optional<CaptureJob> take();
    /// Encoder thread: waits for a job until `deadline`; nullopt on timeout or once closed
    /// (`closed` tells which).
    std::optional<CaptureJob> takeUntil(std::chrono::steady_clock::time_point deadline,
                                        bool& closed);
    /// Encoder thread: the frames it is done with, for the capture thread to release.
    void giveBack(CaptureJob job);
    /// Capture thread: moves the given-back jobs into `out` (both keep their capacity).
    void takeReturns(std::vector<CaptureJob>& out);
    bool empty() const;
    bool hasReturns() const;
    /// Wakes the encoder for good (stop).
    void close();
    /// After the threads are joined: whatever is still here.
    std::vector<CaptureJob> drain();

private:
    mutable std::mutex mutex_;
    std::condition_variable cv_;
    std::optional<CaptureJob> job_;
    std::vector<CaptureJob> returns_;
    bool closed_ = false;
};

}  // namespace deskstream::agent
