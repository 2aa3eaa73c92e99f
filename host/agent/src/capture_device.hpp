// The capture plugin instance behind one lock: every call into it (grab, release of a frame,
// input injection, monitor list) is serialized here, so the plugin is never called from two
// threads at once (docs/plugins.md, threading).
#pragma once

#include "deskstream/host/instances.hpp"

#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace deskstream::agent {

class CaptureDevice {
public:
    explicit CaptureDevice(std::unique_ptr<host::CaptureInstance> capture)
        : capture_(std::move(capture)) {}

    /// Runs `f(instance)` under the lock (grabs, and destroying frames, which releases them).
    template <class F>
    auto locked(F&& f) {
        std::lock_guard<std::mutex> lock(mutex_);
        return f(*capture_);
    }

    std::vector<ds_monitor_info> monitors() {
        return locked([](host::CaptureInstance& c) { return c.monitors(); });
    }
    /// Throws PluginError with the plugin's message.
    void inject(const ds_input_event& event) {
        locked([&](host::CaptureInstance& c) { c.inject(event); });
    }
    bool canInject() const { return capture_->canInject(); }
    const std::string& name() const { return capture_->plugin().name; }

private:
    std::unique_ptr<host::CaptureInstance> capture_;
    std::mutex mutex_;
};

}  // namespace deskstream::agent
