#include "deskstream/agent/plugin_handles.hpp"

#include <memory>
#include <stdexcept>

namespace deskstream::agent {

namespace {
constexpr std::size_t kErrSize = 512;
}

CaptureHandle::CaptureHandle(std::string pluginName, const ds_capture_vtable& vt, void* instance)
    : name_(std::move(pluginName)), vt_(vt), instance_(instance) {}

CaptureHandle::~CaptureHandle() {
    if (instance_ && vt_.destroy) vt_.destroy(instance_);
}

std::unique_ptr<CaptureHandle> CaptureHandle::create(const std::string& pluginName,
                                                     const ds_capture_vtable& vt,
                                                     const ds_host_api* host,
                                                     const ds_config* config) {
    char err[kErrSize] = {0};
    void* instance = nullptr;
    ds_status s = vt.create(host, config, &instance, err, sizeof err);
    if (s != DS_OK || !instance) {
        throw std::runtime_error("capture plugin '" + pluginName + "' failed to start (status " +
                                 std::to_string(s) + "): " + (err[0] ? err : "no reason given"));
    }
    return std::make_unique<CaptureHandle>(pluginName, vt, instance);
}

std::vector<ds_monitor_info> CaptureHandle::monitors() {
    char err[kErrSize] = {0};
    uint32_t count = 0;
    std::vector<ds_monitor_info> out(8);
    for (int attempt = 0; attempt < 3; ++attempt) {
        for (auto& m : out) m.struct_size = sizeof(ds_monitor_info);
        ds_status s = vt_.list_monitors(instance_, out.data(), static_cast<uint32_t>(out.size()),
                                        &count, err, sizeof err);
        if (s != DS_OK)
            throw std::runtime_error("capture plugin '" + name_ + "' cannot list monitors: " + err);
        if (count <= out.size()) {
            out.resize(count);
            return out;
        }
        out.resize(count);
    }
    throw std::runtime_error("capture plugin '" + name_ + "': monitor count keeps changing");
}

ds_status CaptureHandle::grab(uint32_t monitor, uint32_t timeoutMs, ds_frame& frame,
                              std::string& error) {
    char err[kErrSize] = {0};
    frame = ds_frame{};
    frame.struct_size = sizeof(ds_frame);
    ds_status s = vt_.grab_frame(instance_, monitor, timeoutMs, &frame, err, sizeof err);
    if (s < 0) error = err[0] ? err : "grab_frame failed without a message";
    return s;
}

void CaptureHandle::release(ds_frame& frame) {
    if (vt_.release_frame) vt_.release_frame(instance_, &frame);
}

ds_status CaptureHandle::inject(const ds_input_event& event, std::string& error) {
    if (!vt_.inject_input) {
        error = "capture plugin '" + name_ + "' cannot inject input";
        return DS_ERR_UNSUPPORTED;
    }
    char err[kErrSize] = {0};
    ds_status s = vt_.inject_input(instance_, &event, err, sizeof err);
    if (s < 0) error = err[0] ? err : "inject_input failed without a message";
    return s;
}

EncoderHandle::EncoderHandle(std::string pluginName, const ds_encoder_vtable& vt, void* instance)
    : name_(std::move(pluginName)), vt_(vt), instance_(instance) {}

EncoderHandle::~EncoderHandle() {
    if (instance_ && vt_.destroy) vt_.destroy(instance_);
}

std::unique_ptr<EncoderHandle> EncoderHandle::create(const std::string& pluginName,
                                                     const ds_encoder_vtable& vt,
                                                     const ds_host_api* host,
                                                     const ds_config* config) {
    char err[kErrSize] = {0};
    void* instance = nullptr;
    ds_status s = vt.create(host, config, &instance, err, sizeof err);
    if (s != DS_OK || !instance) {
        throw std::runtime_error("encoder plugin '" + pluginName + "' failed to start (status " +
                                 std::to_string(s) + "): " + (err[0] ? err : "no reason given"));
    }
    return std::make_unique<EncoderHandle>(pluginName, vt, instance);
}

ds_status EncoderHandle::encode(const ds_frame& frame, const ds_encode_params& params,
                                ds_encoded& out, std::string& error) {
    char err[kErrSize] = {0};
    out = ds_encoded{};
    out.struct_size = sizeof(ds_encoded);
    ds_status s = vt_.encode(instance_, &frame, &params, &out, err, sizeof err);
    if (s < 0) error = err[0] ? err : "encode failed without a message";
    return s;
}

}  // namespace deskstream::agent
