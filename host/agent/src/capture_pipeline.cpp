// The capture thread: capture slots from the core session -> grabs -> mailbox (see
// capture_pipeline.hpp).
#include "capture_pipeline.hpp"

#include "clock.hpp"
#include "compositor.hpp"

#include <algorithm>
#include <chrono>

namespace deskstream::agent {

CapturePipeline::CapturePipeline(CaptureDevice& device, SessionHub& hub, FrameMailbox& mailbox,
                                 LayoutListener& layout, core::AgentMetrics& metrics,
                                 std::vector<int> selected, bool combined, std::string clientId,
                                 Poco::Logger& log)
    : device_(device),
      hub_(hub),
      mailbox_(mailbox),
      layout_(layout),
      metrics_(metrics),
      combined_(combined),
      clientId_(std::move(clientId)),
      log_(log),
      selected_(std::move(selected)) {}

void CapturePipeline::select(std::vector<int> monitors) {
    std::lock_guard<std::mutex> lock(selectionMutex_);
    selected_ = std::move(monitors);
}

// Sleeps until a capture slot is due (the session's nextCaptureAt(): no polling; unwatched, it
// sleeps until the session says frames are wanted), the encoder returned frames, or stop.
CapturePipeline::Next CapturePipeline::waitForSlot() {
    auto lock = hub_.lock();
    core::AgentSession& session = hub_.locked();
    while (true) {
        if (!hub_.runningLocked()) return Next::Stop;
        if (mailbox_.hasReturns()) return Next::Release;
        if (!mailbox_.empty()) {  // the encoder has not taken the previous job yet
            hub_.waitUntil(lock, core::TimePoint::max());
            continue;
        }
        switch (session.takeCaptureSlot(monoNow())) {
            case core::CaptureSlot::Capture:
                repeat_ = session.takePictureRepeat(monoNow());
                return Next::Capture;
            case core::CaptureSlot::Skip:  // window full: dropped and counted
                metrics_.windowDrop();
                continue;
            case core::CaptureSlot::Wait:
                hub_.waitUntil(lock, session.nextCaptureAt());
                break;
        }
    }
}

void CapturePipeline::releaseReturned() {
    mailbox_.takeReturns(returned_);
    if (returned_.empty()) return;
    device_.locked([&](host::CaptureInstance&) {
        for (auto& job : returned_) {
            job.items.clear();  // releases the frames; the vector keeps its capacity
            spareJobs_.push_back(std::move(job));
        }
    });
    returned_.clear();
}

void CapturePipeline::run() {
    while (true) {
        releaseReturned();
        Next next = waitForSlot();
        if (next == Next::Stop) break;
        if (next == Next::Release) continue;
        {
            std::lock_guard<std::mutex> lock(selectionMutex_);
            tickMonitors_.assign(selected_.begin(), selected_.end());
        }
        CaptureJob job;
        if (!spareJobs_.empty()) {
            job = std::move(spareJobs_.back());
            spareJobs_.pop_back();
        }
        job.captureTimeUs = wallUs();
        const bool grabbed = grabAll(tickMonitors_, repeat_, job);
        if (newLayout_) {
            // Outside the capture lock: the listener re-selects and reconnects.
            layout_.layoutChanged(std::move(*newLayout_));
            newLayout_.reset();
        }
        if (!grabbed) {
            spareJobs_.push_back(std::move(job));
            // Only "no new picture" (DS_TIMEOUT after the plugin waited): the next slot may grab
            // at once, so a change is sent as soon as the plugin sees it (damage-driven capture).
            if (onlyTimeouts_) continue;
            // Nothing grabbed (errors): back off a little, interruptibly.
            auto lock = hub_.lock();
            if (hub_.runningLocked())
                hub_.waitUntil(lock, monoNow() + std::chrono::milliseconds(100));
            continue;
        }
        for (const auto& item : job.items) captured_ += item.repeat ? 0 : 1;
        mailbox_.put(std::move(job));
    }
}

bool CapturePipeline::grabAll(const std::vector<int>& monitors, bool repeat, CaptureJob& job) {
    onlyTimeouts_ = !monitors.empty();
    return device_.locked([&](host::CaptureInstance& capture) {
        for (int idx : monitors) {
            CaptureJob::Item item;
            item.monitor = static_cast<std::uint16_t>(idx);
            std::string error;
            ds_status s = DS_OK;  // grab throws PluginError for errors
            const auto grabStart = std::chrono::steady_clock::now();
            try {
                s = capture.grab(static_cast<uint32_t>(idx), 200, item.held);
                item.grabSeconds =
                    std::chrono::duration<double>(std::chrono::steady_clock::now() - grabStart)
                        .count();
            } catch (const std::exception& e) {
                s = DS_ERR_INTERNAL;
                error = e.what();
            }
            if (s == DS_OK) {
                item.key = repeat;  // a viewer needs a whole picture (damage encoding)
                job.items.push_back(std::move(item));
                continue;
            }
            if (s != DS_TIMEOUT) onlyTimeouts_ = false;
            if (s == DS_TIMEOUT) {  // no new picture on that monitor
                if (repeat) {       // a viewer needs one anyway: the encoder re-sends the last
                    item.repeat = true;
                    job.items.push_back(std::move(item));
                }
                continue;
            }
            if (s == DS_REINIT) {
                // The layout changed: what was grabbed this slot may be of the old one. The new
                // list goes to the listener; the next slot grabs the new monitors.
                try {
                    newLayout_ = capture.monitors();
                } catch (const std::exception& e) {
                    ++errors_;
                    log_.error("agent %s: monitor layout changed, but listing it failed: %s",
                               clientId_, std::string(e.what()));
                }
                job.items.clear();
                return false;
            }
            ++errors_;
            if (error != lastError_) {  // one line per distinct problem, not per frame
                log_.error("agent %s: capture of monitor %d failed: %s", clientId_, idx, error);
                lastError_ = error;
            }
        }
        if (job.items.empty()) return false;
        lastError_.clear();
        const bool anyFresh = std::any_of(job.items.begin(), job.items.end(),
                                          [](const CaptureJob::Item& it) { return !it.repeat; });
        if (combined_ && !anyFresh) {
            // The combined picture is monitor 0's: its last frame goes again.
            job.items.resize(1);
            job.items[0].monitor = 0;
        } else if (combined_ && job.items.size() > 1) {
            // One side-by-side picture; the monitors' frames are released here, under the lock.
            toCompose_.clear();
            for (const auto& it : job.items)
                if (!it.repeat) toCompose_.push_back(&it.frame());
            std::vector<std::uint8_t>& picture = composite_[compositeIndex_];
            compositeIndex_ ^= 1;
            CaptureJob::Item c;
            c.monitor = 0;
            for (const auto& it : job.items) c.grabSeconds += it.grabSeconds;
            c.composite = composeSideBySide(toCompose_, picture, job.captureTimeUs);
            job.items.clear();
            job.items.push_back(std::move(c));
        }
        return true;
    });
}

void CapturePipeline::releaseAll() {
    std::vector<CaptureJob> left = mailbox_.drain();
    device_.locked([&](host::CaptureInstance&) {
        left.clear();
        spareJobs_.clear();
        returned_.clear();
    });
}

}  // namespace deskstream::agent
