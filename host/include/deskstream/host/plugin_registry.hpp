// Plugin loader: scans folders for shared libraries, validates each descriptor and keeps the
// accepted plugins by kind and name. Libraries are never unloaded (plugin.h, LIFETIME).
#pragma once

#include "deskstream/plugin.h"

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace deskstream::host {

// One accepted plugin. Descriptor and vtables are the host's own zeroed copies
// (min(struct_size, sizeof) of the plugin's), so fields the plugin did not know read as 0.
struct PluginInfo {
    std::string file;  // absolute path of the library
    ds_plugin_kind kind{};
    std::string name;
    std::string version;
    std::string description;
    std::string license;
    std::string vendor;
    int32_t rank = 0;
    uint16_t abiMajor = 0, abiMinor = 0;
    std::vector<ds_config_key> configKeys;  // pointers into the plugin's static data
    ds_capture_vtable capture{};            // valid when kind == DS_KIND_CAPTURE
    ds_encoder_vtable encoder{};
    ds_store_vtable store{};
};

// The outcome for one file of a scan.
struct LoadOutcome {
    std::string file;
    bool loaded = false;
    std::string reason;  // why it was skipped (empty when loaded)
    std::string name;    // the descriptor's name when it could be read, else ""
};

const char* kindName(ds_plugin_kind kind);  // "capture", "encoder", "store" or "unknown"
std::optional<ds_plugin_kind> kindFromName(const std::string& name);

// Validates a descriptor and fills `out`. Returns "" when acceptable, else the reason.
// Exposed for tests; loadFile() uses it.
std::string validateDescriptor(const ds_plugin_descriptor* descriptor, PluginInfo& out);

// Sizes of the ABI 1.0 structs: the smallest a plugin of this major may hand over. They stay
// fixed when a later minor appends fields.
extern const size_t kDescriptorSize_1_0, kCaptureVtableSize_1_0, kEncoderVtableSize_1_0,
    kStoreVtableSize_1_0;

class PluginRegistry {
public:
    PluginRegistry();
    ~PluginRegistry();
    PluginRegistry(const PluginRegistry&) = delete;
    PluginRegistry& operator=(const PluginRegistry&) = delete;

    // Scans each folder (already absolute) in order; files in a folder in name order. A
    // missing folder is noted (logged at debug level) and skipped. Returns one outcome per
    // candidate file (*.so; *.dll on Windows).
    std::vector<LoadOutcome> scan(const std::vector<std::string>& folders);
    // Scans the folders of earlier scan() calls again and loads the files not seen before (the
    // host does this on SIGHUP). Files seen before are not retried, loaded plugins are never
    // unloaded, and PluginInfo references stay valid. Call from one thread, not concurrently
    // with find()/all().
    std::vector<LoadOutcome> rescan();
    // Loads one library file. Logs one line when it is skipped.
    LoadOutcome loadFile(const std::string& path);
    // Registers a plugin linked into the program (built with DESKSTREAM_PLUGIN_STATIC), with
    // the same checks as a loaded file; `origin` stands in for the file name in logs and
    // --list-plugins. Use DESKSTREAM_PLUGIN_STATIC_REGISTER.
    LoadOutcome addStatic(const ds_plugin_descriptor* descriptor, const std::string& origin);

    const PluginInfo* find(ds_plugin_kind kind, const std::string& name) const;
    std::vector<const PluginInfo*> all() const;                        // sorted by kind, name
    std::vector<const PluginInfo*> ofKind(ds_plugin_kind kind) const;  // sorted by rank desc, name
    const std::vector<std::string>& folders() const { return folders_; }
    // The outcome recorded for files that were skipped, to explain a missing plugin.
    const std::vector<LoadOutcome>& skipped() const { return skipped_; }

    // Finds a configured plugin or throws std::runtime_error with a message that names the
    // plugin, the folders scanned, and the refusal reason when a file that looks like it
    // (deskstream_<kind>_<name>.*) was refused. `setting` is e.g. "[agent] encoder".
    const PluginInfo& require(ds_plugin_kind kind, const std::string& name,
                              const std::string& setting) const;

private:
    LoadOutcome accept(const ds_plugin_descriptor* descriptor, const std::string& path,
                       const std::string& file);
    void scanFolder(const std::string& folder, std::vector<LoadOutcome>& outcomes);
    std::vector<std::string> folders_;
    std::set<std::string> seen_;  // library files tried by scan()/rescan()
    std::map<std::pair<int, std::string>, std::unique_ptr<PluginInfo>> plugins_;
    std::vector<LoadOutcome> skipped_;
};

}  // namespace deskstream::host

// Static plugins (as GStreamer's GST_PLUGIN_STATIC_DECLARE / GST_PLUGIN_STATIC_REGISTER): a plugin
// source compiled with DESKSTREAM_PLUGIN_STATIC exports deskstream_plugin_entry_<id> (id: the
// class name given to DESKSTREAM_PLUGIN, or the id of a C plugin's DS_PLUGIN_ENTRY). The program
// declares it at namespace scope and registers it before Host::start():
//     DESKSTREAM_PLUGIN_STATIC_DECLARE(SkeletonCapture);
//     DESKSTREAM_PLUGIN_STATIC_REGISTER(host.plugins(), SkeletonCapture);
#define DESKSTREAM_PLUGIN_STATIC_DECLARE(id) \
    extern "C" const ds_plugin_descriptor* deskstream_plugin_entry_##id(void)
#define DESKSTREAM_PLUGIN_STATIC_REGISTER(registry, id) \
    (registry).addStatic(deskstream_plugin_entry_##id(), "static:" #id)
