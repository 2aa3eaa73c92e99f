#include "ds_test/plugin_fixture.hpp"

#include <chrono>
#include <cstdio>
#include <cstring>
#include <dlfcn.h>
#include <stdexcept>

namespace ds_test {

TestHost::TestHost() {
    api_.struct_size = sizeof(ds_host_api);
    api_.abi_major = DS_ABI_MAJOR;
    api_.abi_minor = DS_ABI_MINOR;
    api_.ctx = this;
    api_.log = &TestHost::log;
    api_.monotonic_us = &TestHost::monotonicUs;
    api_.wall_us = &TestHost::wallUs;
}

void TestHost::log(void* ctx, ds_log_level level, const char* plugin, const char* message) {
    auto* self = static_cast<TestHost*>(ctx);
    std::string line = std::string(plugin ? plugin : "?") + ": " + (message ? message : "");
    std::fprintf(stderr, "[plugin log %d] %s\n", static_cast<int>(level), line.c_str());
    std::lock_guard<std::mutex> lock(self->mutex_);
    self->lines_.push_back(line);
}

uint64_t TestHost::monotonicUs(void*) {
    using namespace std::chrono;
    return duration_cast<microseconds>(steady_clock::now().time_since_epoch()).count();
}

uint64_t TestHost::wallUs(void*) {
    using namespace std::chrono;
    return duration_cast<microseconds>(system_clock::now().time_since_epoch()).count();
}

std::vector<std::string> TestHost::logLines() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return lines_;
}

bool TestHost::logContains(const std::string& needle) const {
    for (const auto& l : logLines())
        if (l.find(needle) != std::string::npos) return true;
    return false;
}

TestConfig::TestConfig(std::string section, std::map<std::string, std::string> values)
    : section_(std::move(section)), values_(std::move(values)) {
    config_.struct_size = sizeof(ds_config);
    config_.ctx = this;
    config_.section = section_.c_str();
    config_.get = &TestConfig::lookup;
}

int32_t TestConfig::lookup(void* ctx, const char* key, char* out, size_t outSize) {
    auto* self = static_cast<TestConfig*>(ctx);
    auto it = self->values_.find(key ? key : "");
    if (it == self->values_.end()) return -1;
    if (out && outSize > 0) {
        size_t n = std::min(outSize - 1, it->second.size());
        std::memcpy(out, it->second.data(), n);
        out[n] = '\0';
    }
    return static_cast<int32_t>(it->second.size());
}

std::string pluginPath(const std::string& kind, const std::string& name) {
    return std::string(DS_TEST_PLUGIN_DIR) + "/deskstream_" + kind + "_" + name + ".so";
}

std::string sharedDataPath(const std::string& name) {
    return std::string(DS_TEST_SHARED_DATA_DIR) + "/" + name;
}

LoadedPlugin::LoadedPlugin(const std::string& file) {
    std::string path =
        file.find('/') == std::string::npos ? std::string(DS_TEST_PLUGIN_DIR) + "/" + file : file;
    handle_ = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!handle_) throw std::runtime_error("cannot load " + path + ": " + dlerror());
    auto entry = reinterpret_cast<ds_plugin_entry_fn>(dlsym(handle_, DS_PLUGIN_ENTRY_SYMBOL));
    if (!entry) throw std::runtime_error(path + " has no " DS_PLUGIN_ENTRY_SYMBOL);
    descriptor_ = entry();
    if (!descriptor_ || descriptor_->abi_major != DS_ABI_MAJOR || !descriptor_->vtable)
        throw std::runtime_error(path + ": unusable descriptor");
}

LoadedPlugin::~LoadedPlugin() = default;

const ds_capture_vtable& LoadedPlugin::capture() const {
    if (descriptor_->kind != DS_KIND_CAPTURE) throw std::runtime_error("not a capture plugin");
    return *static_cast<const ds_capture_vtable*>(descriptor_->vtable);
}
const ds_encoder_vtable& LoadedPlugin::encoder() const {
    if (descriptor_->kind != DS_KIND_ENCODER) throw std::runtime_error("not an encoder plugin");
    return *static_cast<const ds_encoder_vtable*>(descriptor_->vtable);
}
const ds_store_vtable& LoadedPlugin::store() const {
    if (descriptor_->kind != DS_KIND_STORE) throw std::runtime_error("not a store plugin");
    return *static_cast<const ds_store_vtable*>(descriptor_->vtable);
}

}  // namespace ds_test
