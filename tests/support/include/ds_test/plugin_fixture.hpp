// Test helper: loads one plugin shared library through deskstream_plugin_entry and creates
// instances with an in-memory configuration section. Keeps tests on the public SDK only.
#pragma once

#include "deskstream/plugin.h"

#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace ds_test {

// A host_api whose log lines are kept (tests assert on them) and echoed to stderr.
class TestHost {
public:
    TestHost();
    const ds_host_api* api() const { return &api_; }
    std::vector<std::string> logLines() const;
    bool logContains(const std::string& needle) const;

private:
    static void log(void* ctx, ds_log_level level, const char* plugin, const char* message);
    static uint64_t monotonicUs(void* ctx);
    static uint64_t wallUs(void* ctx);
    ds_host_api api_{};
    mutable std::mutex mutex_;
    std::vector<std::string> lines_;
};

// The values of one INI section, e.g. [encoder.jpeg].
class TestConfig {
public:
    explicit TestConfig(std::string section, std::map<std::string, std::string> values = {});
    const ds_config* get() const { return &config_; }
    void set(const std::string& key, const std::string& value) { values_[key] = value; }

private:
    static int32_t lookup(void* ctx, const char* key, char* out, size_t outSize);
    std::string section_;
    std::map<std::string, std::string> values_;
    ds_config config_{};
};

// A loaded plugin library. Throws std::runtime_error with the reason when it cannot load.
class LoadedPlugin {
public:
    // `file` is a path, or a bare file name looked up in DS_TEST_PLUGIN_DIR.
    explicit LoadedPlugin(const std::string& file);
    ~LoadedPlugin();  // the library stays loaded (as in the host); only the handle is dropped
    LoadedPlugin(const LoadedPlugin&) = delete;
    LoadedPlugin& operator=(const LoadedPlugin&) = delete;

    const ds_plugin_descriptor& descriptor() const { return *descriptor_; }
    const ds_capture_vtable& capture() const;
    const ds_encoder_vtable& encoder() const;
    const ds_store_vtable& store() const;

private:
    void* handle_ = nullptr;
    const ds_plugin_descriptor* descriptor_ = nullptr;
};

// Path of a plugin built by this tree: DS_TEST_PLUGIN_DIR/deskstream_<kind>_<name>.so
std::string pluginPath(const std::string& kind, const std::string& name);
// Path of a file in ../shared/data (next to the checkout).
std::string sharedDataPath(const std::string& name);

}  // namespace ds_test
