// deskstream agent: owning handles over created capture and encoder plugin instances.
// The agent talks to plugins only through the SDK's C vtables; these handles call destroy()
// exactly once and turn status codes + caller-owned error buffers into C++ results.
#pragma once

#include "deskstream/plugin.h"

#include <memory>
#include <string>
#include <vector>

namespace deskstream::agent {

/// Thrown when a plugin call fails; carries the SDK status and the plugin's message.
struct PluginCallError {
    ds_status status = DS_OK;
    std::string message;
};

class CaptureHandle {
public:
    /// Takes ownership of `instance` (created by vt.create).
    CaptureHandle(std::string pluginName, const ds_capture_vtable& vt, void* instance);
    ~CaptureHandle();
    CaptureHandle(const CaptureHandle&) = delete;
    CaptureHandle& operator=(const CaptureHandle&) = delete;

    /// Creates an instance through the vtable; throws std::runtime_error naming plugin and reason.
    static std::unique_ptr<CaptureHandle> create(const std::string& pluginName,
                                                 const ds_capture_vtable& vt,
                                                 const ds_host_api* host, const ds_config* config);

    const std::string& name() const { return name_; }
    bool canInject() const { return vt_.inject_input != nullptr; }
    /// Throws std::runtime_error on failure.
    std::vector<ds_monitor_info> monitors();
    /// DS_OK (frame filled), DS_TIMEOUT, DS_REINIT, or an error with `error` set.
    ds_status grab(uint32_t monitor, uint32_t timeoutMs, ds_frame& frame, std::string& error);
    void release(ds_frame& frame);
    ds_status inject(const ds_input_event& event, std::string& error);

private:
    std::string name_;
    ds_capture_vtable vt_;
    void* instance_;
};

class EncoderHandle {
public:
    EncoderHandle(std::string pluginName, const ds_encoder_vtable& vt, void* instance);
    ~EncoderHandle();
    EncoderHandle(const EncoderHandle&) = delete;
    EncoderHandle& operator=(const EncoderHandle&) = delete;

    static std::unique_ptr<EncoderHandle> create(const std::string& pluginName,
                                                 const ds_encoder_vtable& vt,
                                                 const ds_host_api* host, const ds_config* config);

    const std::string& name() const { return name_; }
    ds_codec codec() const { return vt_.codec; }
    /// On DS_OK `out` points into the encoder's buffer (valid until the next encode).
    ds_status encode(const ds_frame& frame, const ds_encode_params& params, ds_encoded& out,
                     std::string& error);

private:
    std::string name_;
    ds_encoder_vtable vt_;
    void* instance_;
};

}  // namespace deskstream::agent
