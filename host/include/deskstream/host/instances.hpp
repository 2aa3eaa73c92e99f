// Host-side RAII wrappers for plugin instances. Each owns one instance created through the
// plugin's vtable and destroys it in its destructor; every status + error buffer pair is turned
// into a PluginError carrying the status and the plugin's message.
#pragma once

#include "deskstream/host/plugin_registry.hpp"
#include "deskstream/plugin.h"

#include <stdexcept>
#include <string>
#include <vector>

namespace Poco::Util {
class AbstractConfiguration;
}

namespace deskstream::host {

class PluginError : public std::runtime_error {
public:
    PluginError(ds_status status, const std::string& message)
        : std::runtime_error(message), status_(status) {}
    ds_status status() const noexcept { return status_; }

private:
    ds_status status_;
};

const char* statusName(ds_status status);  // "DS_ERR_CONFIG", ...

// Runs a probe; returns "" when the backend can work here, else the plugin's reason.
std::string probeCapture(const PluginInfo& plugin, const Poco::Util::AbstractConfiguration& config);

class CaptureInstance {
public:
    // Creates an instance with the plugin's section "capture.<name>" of `config`.
    CaptureInstance(const PluginInfo& plugin, const Poco::Util::AbstractConfiguration& config);
    ~CaptureInstance();
    CaptureInstance(const CaptureInstance&) = delete;
    CaptureInstance& operator=(const CaptureInstance&) = delete;

    std::vector<ds_monitor_info> monitors();

    // A grabbed frame; released through the plugin when destroyed.
    class Frame {
    public:
        Frame() = default;
        Frame(Frame&& other) noexcept;
        Frame& operator=(Frame&& other) noexcept;
        ~Frame();
        explicit operator bool() const { return owner_ != nullptr; }
        const ds_frame& operator*() const { return frame_; }
        const ds_frame* operator->() const { return &frame_; }

    private:
        friend class CaptureInstance;
        void reset();
        CaptureInstance* owner_ = nullptr;
        ds_frame frame_{};
    };

    // DS_OK: `out` holds the frame; DS_TIMEOUT / DS_REINIT returned as such; errors throw.
    ds_status grab(uint32_t monitor, uint32_t timeoutMs, Frame& out);
    // Input injection (mouse, keyboard); only when canInject(). Errors throw PluginError.
    bool canInject() const { return plugin_.capture.inject_input != nullptr; }
    void inject(const ds_input_event& event);
    const PluginInfo& plugin() const { return plugin_; }

private:
    const PluginInfo& plugin_;
    void* instance_ = nullptr;
};

class EncoderInstance {
public:
    EncoderInstance(const PluginInfo& plugin, const Poco::Util::AbstractConfiguration& config);
    ~EncoderInstance();
    EncoderInstance(const EncoderInstance&) = delete;
    EncoderInstance& operator=(const EncoderInstance&) = delete;

    // The output stays valid until the next encode() or the destruction of this object.
    ds_encoded encode(const ds_frame& frame, const ds_encode_params& params);
    ds_codec codec() const { return plugin_.encoder.codec; }
    const PluginInfo& plugin() const { return plugin_; }

private:
    const PluginInfo& plugin_;
    void* instance_ = nullptr;
};

class StoreInstance {
public:
    StoreInstance(const PluginInfo& plugin, const Poco::Util::AbstractConfiguration& config);
    ~StoreInstance();
    StoreInstance(const StoreInstance&) = delete;
    StoreInstance& operator=(const StoreInstance&) = delete;

    void check();
    // The raw vtable and instance for the relay, which calls the store functions itself.
    const ds_store_vtable& vtable() const { return plugin_.store; }
    void* handle() const { return instance_; }
    const PluginInfo& plugin() const { return plugin_; }

private:
    const PluginInfo& plugin_;
    void* instance_ = nullptr;
};

// Throws PluginError("<kind> '<name>': <what> failed (<STATUS>): <message>") when status < 0.
void throwIfError(const PluginInfo& plugin, const char* what, ds_status status, const char* err);

}  // namespace deskstream::host
