#include "deskstream/host/plugin_registry.hpp"

#include <Poco/Exception.h>
#include <Poco/Logger.h>
#include <Poco/SharedLibrary.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <stdexcept>

namespace deskstream::host {

namespace fs = std::filesystem;

#define DS_END_OF(type, field) (offsetof(type, field) + sizeof(((type*)nullptr)->field))
const size_t kDescriptorSize_1_0 = DS_END_OF(ds_plugin_descriptor, vtable);
const size_t kCaptureVtableSize_1_0 = DS_END_OF(ds_capture_vtable, inject_input);
const size_t kEncoderVtableSize_1_0 = DS_END_OF(ds_encoder_vtable, release_output);
const size_t kStoreVtableSize_1_0 = DS_END_OF(ds_store_vtable, poll_notifications);

namespace {

Poco::Logger& log() { return Poco::Logger::get("host.plugins"); }

std::string abiText(unsigned major, unsigned minor) {
    return std::to_string(major) + "." + std::to_string(minor);
}

bool validName(const char* name) {
    size_t n = std::strlen(name);
    if (n == 0 || n > 64) return false;
    for (size_t i = 0; i < n; ++i) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
    }
    return true;
}

// Copies a plugin struct that begins with struct_size into a zeroed host struct.
// Returns "" or the reason the struct is too small.
template <class S>
std::string copyStruct(const void* src, size_t minimum, const char* what, S& dst) {
    uint32_t size = 0;
    std::memcpy(&size, src, sizeof size);
    if (size < minimum)
        return std::string(what) + " struct_size " + std::to_string(size) +
               " is smaller than ABI " + abiText(DS_ABI_MAJOR, 0) + "'s (" +
               std::to_string(minimum) + " bytes)";
    dst = S{};
    std::memcpy(&dst, src, std::min<size_t>(size, sizeof(S)));
    return "";
}

// Enums written by a plugin may hold any value; reading them as the enum type is undefined
// behaviour (UBSan says so), so they are read as the int they are in the C ABI.
template <class E>
int32_t raw(const E& e) {
    static_assert(sizeof(E) == sizeof(int32_t), "C enums are int-sized in the ABI");
    int32_t v;
    std::memcpy(&v, &e, sizeof v);
    return v;
}

std::string missing(const char* vtable, const char* function) {
    return std::string(vtable) + " vtable lacks the required function '" + function + "'";
}

#define DS_REQUIRE(vt, field, label) \
    if (!(vt).field) return missing(label, #field)

std::string validateVtable(const ds_plugin_descriptor& d, PluginInfo& out) {
    switch (raw(d.kind)) {
        case DS_KIND_CAPTURE: {
            std::string r =
                copyStruct(d.vtable, kCaptureVtableSize_1_0, "capture vtable", out.capture);
            if (!r.empty()) return r;
            const auto& v = out.capture;
            DS_REQUIRE(v, create, "capture");
            DS_REQUIRE(v, destroy, "capture");
            DS_REQUIRE(v, list_monitors, "capture");
            DS_REQUIRE(v, grab_frame, "capture");
            DS_REQUIRE(v, release_frame, "capture");
            if ((v.capabilities & DS_CAPTURE_CAP_INPUT) && !v.inject_input)
                return "capture vtable sets DS_CAPTURE_CAP_INPUT but inject_input is NULL";
            return "";
        }
        case DS_KIND_ENCODER: {
            std::string r =
                copyStruct(d.vtable, kEncoderVtableSize_1_0, "encoder vtable", out.encoder);
            if (!r.empty()) return r;
            const auto& v = out.encoder;
            if (raw(v.codec) < DS_CODEC_JPEG || raw(v.codec) > DS_CODEC_RAW_BGRA)
                return "encoder vtable has an unknown codec " + std::to_string(raw(v.codec));
            DS_REQUIRE(v, create, "encoder");
            DS_REQUIRE(v, destroy, "encoder");
            DS_REQUIRE(v, encode, "encoder");
            return "";
        }
        case DS_KIND_STORE: {
            std::string r = copyStruct(d.vtable, kStoreVtableSize_1_0, "store vtable", out.store);
            if (!r.empty()) return r;
            const auto& v = out.store;
            DS_REQUIRE(v, create, "store");
            DS_REQUIRE(v, destroy, "store");
            DS_REQUIRE(v, check, "store");
            DS_REQUIRE(v, register_client, "store");
            DS_REQUIRE(v, touch_client, "store");
            DS_REQUIRE(v, unregister_client, "store");
            DS_REQUIRE(v, list_clients, "store");
            DS_REQUIRE(v, reap_clients, "store");
            DS_REQUIRE(v, unregister_instance_clients, "store");
            DS_REQUIRE(v, upsert_instance, "store");
            DS_REQUIRE(v, list_instances, "store");
            DS_REQUIRE(v, enqueue_command, "store");
            DS_REQUIRE(v, claim_commands, "store");
            DS_REQUIRE(v, complete_command, "store");
            DS_REQUIRE(v, get_command, "store");
            DS_REQUIRE(v, expire_commands, "store");
            return "";
        }
    }
    return "unknown plugin kind";
}
#undef DS_REQUIRE

bool isLibraryName(const fs::path& p) {
#if defined(_WIN32)
    return p.extension() == ".dll";
#else
    return p.extension() == ".so";
#endif
}

}  // namespace

const char* kindName(ds_plugin_kind kind) {
    switch (raw(kind)) {
        case DS_KIND_CAPTURE:
            return "capture";
        case DS_KIND_ENCODER:
            return "encoder";
        case DS_KIND_STORE:
            return "store";
    }
    return "unknown";
}

std::optional<ds_plugin_kind> kindFromName(const std::string& name) {
    if (name == "capture") return DS_KIND_CAPTURE;
    if (name == "encoder") return DS_KIND_ENCODER;
    if (name == "store") return DS_KIND_STORE;
    return std::nullopt;
}

std::string validateDescriptor(const ds_plugin_descriptor* descriptor, PluginInfo& out) {
    if (!descriptor) return std::string(DS_PLUGIN_ENTRY_SYMBOL) + " returned NULL";
    // Only the version fields are read before the ABI major is known to match: a plugin of
    // another major may lay out the rest differently.
    uint32_t size = 0;
    std::memcpy(&size, descriptor, sizeof size);
    const size_t versionEnd = DS_END_OF(ds_plugin_descriptor, abi_minor);
    if (size < versionEnd)
        return "descriptor struct_size " + std::to_string(size) +
               " is too small to hold the ABI version";
    uint16_t major = 0, minor = 0;
    std::memcpy(
        &major,
        reinterpret_cast<const char*>(descriptor) + offsetof(ds_plugin_descriptor, abi_major), 2);
    std::memcpy(
        &minor,
        reinterpret_cast<const char*>(descriptor) + offsetof(ds_plugin_descriptor, abi_minor), 2);
    if (major != DS_ABI_MAJOR)
        return "built for plugin ABI " + abiText(major, minor) + ", this host supports ABI " +
               abiText(DS_ABI_MAJOR, DS_ABI_MINOR) + " (the major version must be equal)";
    if (minor > DS_ABI_MINOR)
        return "built for plugin ABI " + abiText(major, minor) + ", newer than this host's ABI " +
               abiText(DS_ABI_MAJOR, DS_ABI_MINOR);

    ds_plugin_descriptor d{};
    std::string r = copyStruct(descriptor, kDescriptorSize_1_0, "descriptor", d);
    if (!r.empty()) return r;
    if (raw(d.kind) != DS_KIND_CAPTURE && raw(d.kind) != DS_KIND_ENCODER &&
        raw(d.kind) != DS_KIND_STORE)
        return "unknown plugin kind " + std::to_string(raw(d.kind));
    if (!d.name || !*d.name) return "descriptor has no name";
    if (!validName(d.name))
        return "invalid plugin name '" + std::string(d.name).substr(0, 80) +
               "' (must match [a-z0-9_]+, at most 64 characters)";
    out.name = d.name;
    out.kind = d.kind;
    if (!d.version || !*d.version) return "descriptor has no version";
    if (!d.vtable) return "descriptor has no vtable";
    if (d.config_key_count > 0 && !d.config_keys)
        return "descriptor has config_key_count " + std::to_string(d.config_key_count) +
               " but config_keys is NULL";
    if (d.config_key_count > 1024)
        return "descriptor has config_key_count " + std::to_string(d.config_key_count) +
               " (at most 1024)";
    out.configKeys.clear();
    for (uint32_t i = 0; i < d.config_key_count; ++i) {
        const ds_config_key& k = d.config_keys[i];
        if (!k.key || !*k.key) return "config key #" + std::to_string(i) + " has no name";
        if (raw(k.type) < DS_CONFIG_STRING || raw(k.type) > DS_CONFIG_DOUBLE)
            return "config key '" + std::string(k.key) + "' has an unknown type " +
                   std::to_string(raw(k.type));
        out.configKeys.push_back(k);
    }
    r = validateVtable(d, out);
    if (!r.empty()) return r;
    out.version = d.version;
    out.description = d.description ? d.description : "";
    out.license = d.license ? d.license : "";
    out.vendor = d.vendor ? d.vendor : "";
    out.rank = d.rank;
    out.abiMajor = d.abi_major;
    out.abiMinor = d.abi_minor;
    return "";
}
#undef DS_END_OF

PluginRegistry::PluginRegistry() = default;
PluginRegistry::~PluginRegistry() = default;

std::vector<LoadOutcome> PluginRegistry::scan(const std::vector<std::string>& folders) {
    std::vector<LoadOutcome> outcomes;
    for (const auto& folder : folders) {
        if (std::find(folders_.begin(), folders_.end(), folder) != folders_.end()) {
            log().debug("plugin folder " + folder + " is listed twice; scanned once");
            continue;
        }
        folders_.push_back(folder);
        std::error_code ec;
        if (!fs::is_directory(folder, ec)) {
            log().debug("plugin folder " + folder + " does not exist; skipped");
            continue;
        }
        scanFolder(folder, outcomes);
    }
    return outcomes;
}

std::vector<LoadOutcome> PluginRegistry::rescan() {
    std::vector<LoadOutcome> outcomes;
    for (const auto& folder : folders_) {
        std::error_code ec;
        if (fs::is_directory(folder, ec)) scanFolder(folder, outcomes);
    }
    return outcomes;
}

void PluginRegistry::scanFolder(const std::string& folder, std::vector<LoadOutcome>& outcomes) {
    std::error_code ec;
    std::vector<fs::path> files;
    for (fs::directory_iterator it(folder, ec), end; !ec && it != end; it.increment(ec))
        if (isLibraryName(it->path()) && !it->is_directory()) files.push_back(it->path());
    if (ec) log().warning("cannot read plugin folder " + folder + ": " + ec.message());
    std::sort(files.begin(), files.end());
    for (const auto& f : files)
        if (seen_.insert(f.string()).second) outcomes.push_back(loadFile(f.string()));
}

LoadOutcome PluginRegistry::loadFile(const std::string& path) {
    LoadOutcome outcome;
    outcome.file = path;
    auto skip = [&](const std::string& reason) {
        outcome.reason = reason;
        skipped_.push_back(outcome);
        log().warning("skipped plugin file " + path + ": " + reason);
        return outcome;
    };
    // Libraries stay loaded for the life of the process (plugin.h, LIFETIME), so the
    // SharedLibrary object is deliberately never unloaded. SHLIB_LOCAL keeps one plugin's
    // symbols from resolving another's.
    Poco::SharedLibrary library;
    try {
        library.load(path, Poco::SharedLibrary::SHLIB_LOCAL);
    } catch (const Poco::Exception& e) {
        return skip("not a loadable library: " + e.message());
    }
    if (!library.hasSymbol(DS_PLUGIN_ENTRY_SYMBOL))
        return skip(std::string("no entry symbol '") + DS_PLUGIN_ENTRY_SYMBOL + "'");
    auto entry = reinterpret_cast<ds_plugin_entry_fn>(library.getSymbol(DS_PLUGIN_ENTRY_SYMBOL));
    return accept(entry(), path, fs::absolute(path).lexically_normal().string());
}

LoadOutcome PluginRegistry::addStatic(const ds_plugin_descriptor* descriptor,
                                      const std::string& origin) {
    return accept(descriptor, origin, origin);
}

// `path` names the plugin in refusals, `file` (absolute) in PluginInfo and the loaded line.
LoadOutcome PluginRegistry::accept(const ds_plugin_descriptor* descriptor, const std::string& path,
                                   const std::string& file) {
    LoadOutcome outcome;
    outcome.file = path;
    auto skip = [&](const std::string& reason) {
        outcome.reason = reason;
        skipped_.push_back(outcome);
        log().warning("skipped plugin file " + path + ": " + reason);
        return outcome;
    };
    auto info = std::make_unique<PluginInfo>();
    std::string reason = validateDescriptor(descriptor, *info);
    outcome.name = info->name;
    if (!reason.empty()) return skip(reason);
    auto key = std::make_pair(static_cast<int>(info->kind), info->name);
    auto existing = plugins_.find(key);
    if (existing != plugins_.end())
        return skip(std::string(kindName(info->kind)) + " plugin name '" + info->name +
                    "' is already taken by " + existing->second->file);
    info->file = file;
    log().information(std::string("loaded ") + kindName(info->kind) + " plugin '" + info->name +
                      "' " + info->version + " from " + info->file);
    plugins_.emplace(key, std::move(info));
    outcome.loaded = true;
    return outcome;
}

const PluginInfo* PluginRegistry::find(ds_plugin_kind kind, const std::string& name) const {
    auto it = plugins_.find(std::make_pair(static_cast<int>(kind), name));
    return it == plugins_.end() ? nullptr : it->second.get();
}

std::vector<const PluginInfo*> PluginRegistry::all() const {
    std::vector<const PluginInfo*> out;
    for (const auto& kv : plugins_) out.push_back(kv.second.get());
    return out;  // the map orders by (kind, name)
}

std::vector<const PluginInfo*> PluginRegistry::ofKind(ds_plugin_kind kind) const {
    std::vector<const PluginInfo*> out;
    for (const auto& kv : plugins_)
        if (kv.second->kind == kind) out.push_back(kv.second.get());
    std::stable_sort(out.begin(), out.end(),
                     [](const PluginInfo* a, const PluginInfo* b) { return a->rank > b->rank; });
    return out;
}

const PluginInfo& PluginRegistry::require(ds_plugin_kind kind, const std::string& name,
                                          const std::string& setting) const {
    if (const PluginInfo* p = find(kind, name)) return *p;
    std::string msg = (setting.empty() ? std::string() : setting + " = " + name + ": ") +
                      kindName(kind) + " plugin '" + name + "' ";
    std::string refused;
    const std::string stem = std::string("deskstream_") + kindName(kind) + "_" + name;
    for (const auto& s : skipped_) {
        std::string fileStem = fs::path(s.file).stem().string();
        if (s.name == name || fileStem == stem || fileStem == "lib" + stem) {
            refused = s.file + " was refused: " + s.reason;
            break;
        }
    }
    msg += refused.empty() ? "was not found" : "was not loaded: " + refused;
    std::string where;
    for (const auto& f : folders_) where += (where.empty() ? "" : ", ") + f;
    msg += " (searched " + (where.empty() ? std::string("no folder") : where) +
           "; see [host] plugins.path)";
    if (refused.empty()) {
        std::string avail;
        for (const auto& kv : plugins_)
            if (kv.second->kind == kind) avail += (avail.empty() ? "" : ", ") + kv.second->name;
        msg += "; available " + std::string(kindName(kind)) +
               " plugins: " + (avail.empty() ? "none" : avail);
    }
    throw std::runtime_error(msg);
}

}  // namespace deskstream::host
