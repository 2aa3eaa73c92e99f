#include "deskstream/host/instances.hpp"

#include "deskstream/host/host_api.hpp"

#include <Poco/Util/AbstractConfiguration.h>

#include <utility>

namespace deskstream::host {

namespace {
constexpr size_t kErrSize = 1024;

std::string sectionOf(const PluginInfo& p) { return std::string(kindName(p.kind)) + "." + p.name; }
}  // namespace

const char* statusName(ds_status status) {
    switch (status) {
        case DS_OK:
            return "DS_OK";
        case DS_TIMEOUT:
            return "DS_TIMEOUT";
        case DS_REINIT:
            return "DS_REINIT";
        case DS_ERR_INVALID_ARGUMENT:
            return "DS_ERR_INVALID_ARGUMENT";
        case DS_ERR_UNSUPPORTED:
            return "DS_ERR_UNSUPPORTED";
        case DS_ERR_NO_MEMORY:
            return "DS_ERR_NO_MEMORY";
        case DS_ERR_IO:
            return "DS_ERR_IO";
        case DS_ERR_STORE_UNAVAILABLE:
            return "DS_ERR_STORE_UNAVAILABLE";
        case DS_ERR_PERMISSION:
            return "DS_ERR_PERMISSION";
        case DS_ERR_NOT_FOUND:
            return "DS_ERR_NOT_FOUND";
        case DS_ERR_SCHEMA:
            return "DS_ERR_SCHEMA";
        case DS_ERR_AUTH:
            return "DS_ERR_AUTH";
        case DS_ERR_CONFIG:
            return "DS_ERR_CONFIG";
        case DS_ERR_INTERNAL:
            return "DS_ERR_INTERNAL";
    }
    return status < 0 ? "error" : "outcome";
}

void throwIfError(const PluginInfo& plugin, const char* what, ds_status status, const char* err) {
    if (status >= 0) return;
    std::string message = err && *err ? err : "(the plugin gave no message)";
    throw PluginError(status, std::string(kindName(plugin.kind)) + " plugin '" + plugin.name +
                                  "': " + what + " failed (" + statusName(status) +
                                  "): " + message);
}

std::string probeCapture(const PluginInfo& plugin,
                         const Poco::Util::AbstractConfiguration& config) {
    if (!plugin.capture.probe) return "";
    ConfigView view(config, sectionOf(plugin));
    char err[kErrSize] = "";
    ds_status s = plugin.capture.probe(hostApi(), view.get(), err, sizeof err);
    if (s == DS_OK) return "";
    return std::string(statusName(s)) + ": " + (*err ? err : "(no message)");
}

// ---------------------------------------------------------------- capture
CaptureInstance::CaptureInstance(const PluginInfo& plugin,
                                 const Poco::Util::AbstractConfiguration& config)
    : plugin_(plugin) {
    ConfigView view(config, sectionOf(plugin));
    char err[kErrSize] = "";
    void* instance = nullptr;
    ds_status s = plugin.capture.create(hostApi(), view.get(), &instance, err, sizeof err);
    if (s >= 0 && !instance) {
        s = DS_ERR_INTERNAL;
        ds_set_error(err, sizeof err, "create returned success without an instance");
    }
    throwIfError(plugin, "create", s, err);
    instance_ = instance;
}

CaptureInstance::~CaptureInstance() {
    if (instance_) plugin_.capture.destroy(instance_);
}

std::vector<ds_monitor_info> CaptureInstance::monitors() {
    char err[kErrSize] = "";
    uint32_t count = 0;
    std::vector<ds_monitor_info> out(4);
    for (int attempt = 0; attempt < 3; ++attempt) {
        for (auto& m : out) m = ds_monitor_info{}, m.struct_size = sizeof(ds_monitor_info);
        ds_status s = plugin_.capture.list_monitors(
            instance_, out.data(), static_cast<uint32_t>(out.size()), &count, err, sizeof err);
        throwIfError(plugin_, "list_monitors", s, err);
        if (count <= out.size()) {
            out.resize(count);
            for (auto& m : out) m.name[DS_MONITOR_NAME_MAX - 1] = '\0';
            return out;
        }
        out.resize(count);  // the monitor set grew: ask again with room for all
    }
    throw PluginError(DS_ERR_INTERNAL,
                      "capture plugin '" + plugin_.name + "': monitor count keeps changing");
}

ds_status CaptureInstance::grab(uint32_t monitor, uint32_t timeoutMs, Frame& out) {
    out.reset();
    char err[kErrSize] = "";
    ds_frame f{};
    f.struct_size = sizeof(ds_frame);
    ds_status s = plugin_.capture.grab_frame(instance_, monitor, timeoutMs, &f, err, sizeof err);
    throwIfError(plugin_, "grab_frame", s, err);
    if (s != DS_OK) return s;
    out.owner_ = this;
    out.frame_ = f;
    return DS_OK;
}

void CaptureInstance::inject(const ds_input_event& event) {
    if (!canInject())
        throw PluginError(DS_ERR_UNSUPPORTED,
                          "capture plugin '" + plugin_.name + "' cannot inject input");
    char err[kErrSize] = "";
    throwIfError(plugin_, "inject_input",
                 plugin_.capture.inject_input(instance_, &event, err, sizeof err), err);
}

CaptureInstance::Frame::Frame(Frame&& other) noexcept : owner_(other.owner_), frame_(other.frame_) {
    other.owner_ = nullptr;
}

CaptureInstance::Frame& CaptureInstance::Frame::operator=(Frame&& other) noexcept {
    if (this != &other) {
        reset();
        owner_ = std::exchange(other.owner_, nullptr);
        frame_ = other.frame_;
    }
    return *this;
}

CaptureInstance::Frame::~Frame() { reset(); }

void CaptureInstance::Frame::reset() {
    if (owner_) owner_->plugin_.capture.release_frame(owner_->instance_, &frame_);
    owner_ = nullptr;
    frame_ = ds_frame{};
}

// ---------------------------------------------------------------- encoder
EncoderInstance::EncoderInstance(const PluginInfo& plugin,
                                 const Poco::Util::AbstractConfiguration& config)
    : plugin_(plugin) {
    ConfigView view(config, sectionOf(plugin));
    char err[kErrSize] = "";
    void* instance = nullptr;
    ds_status s = plugin.encoder.create(hostApi(), view.get(), &instance, err, sizeof err);
    if (s >= 0 && !instance) {
        s = DS_ERR_INTERNAL;
        ds_set_error(err, sizeof err, "create returned success without an instance");
    }
    throwIfError(plugin, "create", s, err);
    instance_ = instance;
}

EncoderInstance::~EncoderInstance() {
    if (instance_) plugin_.encoder.destroy(instance_);
}

ds_encoded EncoderInstance::encode(const ds_frame& frame, const ds_encode_params& params) {
    char err[kErrSize] = "";
    ds_encoded out{};
    out.struct_size = sizeof(ds_encoded);
    ds_status s = plugin_.encoder.encode(instance_, &frame, &params, &out, err, sizeof err);
    throwIfError(plugin_, "encode", s, err);
    return out;
}

// ---------------------------------------------------------------- store
StoreInstance::StoreInstance(const PluginInfo& plugin,
                             const Poco::Util::AbstractConfiguration& config)
    : plugin_(plugin) {
    ConfigView view(config, sectionOf(plugin));
    char err[kErrSize] = "";
    void* instance = nullptr;
    ds_status s = plugin.store.create(hostApi(), view.get(), &instance, err, sizeof err);
    if (s >= 0 && !instance) {
        s = DS_ERR_INTERNAL;
        ds_set_error(err, sizeof err, "create returned success without an instance");
    }
    throwIfError(plugin, "create", s, err);
    instance_ = instance;
}

StoreInstance::~StoreInstance() {
    if (instance_) plugin_.store.destroy(instance_);
}

void StoreInstance::check() {
    char err[kErrSize] = "";
    throwIfError(plugin_, "check", plugin_.store.check(instance_, err, sizeof err), err);
}

}  // namespace deskstream::host
