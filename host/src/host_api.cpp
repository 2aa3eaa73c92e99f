#include "deskstream/host/host_api.hpp"

#include "deskstream/host/config.hpp"

#include <Poco/Logger.h>
#include <Poco/Message.h>
#include <Poco/Util/AbstractConfiguration.h>

#include <chrono>
#include <cstring>

namespace deskstream::host {

namespace {

// Plugin names are validated at load time, but a plugin may pass anything here: keep the logger
// name printable and short.
std::string loggerName(const char* pluginName) {
    std::string name = "plugin.";
    if (!pluginName || !*pluginName) return name + "unknown";
    for (size_t i = 0; pluginName[i] && i < 64; ++i) {
        char c = pluginName[i];
        name += (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ? c : '_';
    }
    return name;
}

void logFn(void*, ds_log_level level, const char* pluginName, const char* message) {
    try {
        Poco::Logger& logger = Poco::Logger::get(loggerName(pluginName));
        auto prio = static_cast<Poco::Message::Priority>(pocoPriority(level));
        if (logger.is(prio)) logger.log(Poco::Message(logger.name(), message ? message : "", prio));
    } catch (...) {
        // Logging must never throw into a plugin (no exception crosses the C ABI).
    }
}

uint64_t monotonicFn(void*) {
    using namespace std::chrono;
    return static_cast<uint64_t>(
        duration_cast<microseconds>(steady_clock::now().time_since_epoch()).count());
}

uint64_t wallFn(void*) {
    using namespace std::chrono;
    return static_cast<uint64_t>(
        duration_cast<microseconds>(system_clock::now().time_since_epoch()).count());
}

}  // namespace

int pocoPriority(ds_log_level level) {
    switch (level) {
        case DS_LOG_TRACE:
            return Poco::Message::PRIO_TRACE;
        case DS_LOG_DEBUG:
            return Poco::Message::PRIO_DEBUG;
        case DS_LOG_INFO:
            return Poco::Message::PRIO_INFORMATION;
        case DS_LOG_WARNING:
            return Poco::Message::PRIO_WARNING;
        case DS_LOG_ERROR:
            return Poco::Message::PRIO_ERROR;
    }
    return Poco::Message::PRIO_ERROR;  // an out-of-range level is shown rather than lost
}

const ds_host_api* hostApi() {
    static const ds_host_api api = [] {
        ds_host_api a{};
        a.struct_size = sizeof(ds_host_api);
        a.abi_major = DS_ABI_MAJOR;
        a.abi_minor = DS_ABI_MINOR;
        a.ctx = nullptr;
        a.log = &logFn;
        a.monotonic_us = &monotonicFn;
        a.wall_us = &wallFn;
        return a;
    }();
    return &api;
}

ConfigView::ConfigView(const Poco::Util::AbstractConfiguration& config, std::string section)
    : config_(config), section_(std::move(section)) {
    view_.struct_size = sizeof(ds_config);
    view_.ctx = this;
    view_.section = section_.c_str();
    view_.get = &ConfigView::lookup;
}

int32_t ConfigView::lookup(void* ctx, const char* key, char* out, size_t outSize) {
    try {
        auto* self = static_cast<ConfigView*>(ctx);
        if (!self || !key) return -1;
        std::string value;
        if (std::strcmp(key, kHostStateDirKey) == 0) {
            // Host-provided: the absolute state folder, so a plugin can place relative files.
            value = resolveFolder(self->config_.getRawString("host.state_dir", "var"));
        } else {
            std::string full = self->section_ + "." + key;
            if (!self->config_.hasProperty(full)) return -1;
            value = self->config_.getRawString(full);
        }
        if (out && outSize > 0) {
            size_t n = std::min(outSize - 1, value.size());
            std::memcpy(out, value.data(), n);
            out[n] = '\0';
        }
        return static_cast<int32_t>(std::min<size_t>(value.size(), INT32_MAX));
    } catch (...) {
        return -1;
    }
}

}  // namespace deskstream::host
