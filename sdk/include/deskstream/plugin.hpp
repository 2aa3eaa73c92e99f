// deskstream plugin SDK — header-only C++ adapters over the C ABI in plugin.h.
//
// A plugin author writes an ordinary C++ class derived from deskstream::Capture,
// deskstream::Encoder or deskstream::Store and one line:
//
//     class MyEncoder : public deskstream::Encoder {
//     public:
//         static constexpr ds_codec kCodec = DS_CODEC_JPEG;            // encoders: required
//         static constexpr ds_config_key kConfigKeys[] = {...};        // optional
//         static constexpr int32_t kRank = 10;                         // optional
//         static constexpr const char *kLicense = "MIT";               // optional
//         static constexpr const char *kVendor = "ACME";               // optional
//         MyEncoder(const deskstream::Host &host, const deskstream::Config &config);
//         void encode(const ds_frame &, const ds_encode_params &, ds_encoded &out) override;
//     };
//     DESKSTREAM_PLUGIN(MyEncoder, "my_encoder", "1.0.0", "What it does")
//
// Errors are reported by throwing deskstream::Error(status, message) (or any std::exception);
// the adapters catch everything at the C boundary and turn it into a status code plus the
// message in the caller's error buffer. No exception ever crosses the ABI.
//
// Optional members are detected at compile time: a Capture that declares
// `void injectInput(const ds_input_event &)` gets DS_CAPTURE_CAP_INPUT and an inject_input
// entry; a Capture with `static void probe(const Host &, const Config &)` gets a probe entry;
// a Store with `bool pollNotifications(uint32_t, const NotifyFn &)` gets poll_notifications;
// a Store with `uint32_t purgeCommands(int64_t olderThanMs)` gets purge_commands (ABI 1.1).
//
// Threading and ownership are those of plugin.h: one instance of a Capture or Encoder is never
// called from two threads at once; a Store instance is called concurrently and must lock.
#ifndef DESKSTREAM_PLUGIN_HPP
#define DESKSTREAM_PLUGIN_HPP

#include "deskstream/plugin.h"

#include <cstdlib>
#include <functional>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace deskstream {

// Throw from plugin code to return a specific status with a message.
class Error : public std::runtime_error {
public:
    Error(ds_status status, const std::string& message)
        : std::runtime_error(message), status_(status) {}
    ds_status status() const noexcept { return status_; }

private:
    ds_status status_;
};

// The host's services: logging and clocks. Cheap to copy; valid while the plugin is loaded.
class Host {
public:
    Host(const ds_host_api* api, const char* pluginName) : api_(api), name_(pluginName) {}
    void log(ds_log_level level, const std::string& message) const {
        if (api_ && api_->log) api_->log(api_->ctx, level, name_, message.c_str());
    }
    void debug(const std::string& m) const { log(DS_LOG_DEBUG, m); }
    void info(const std::string& m) const { log(DS_LOG_INFO, m); }
    void warning(const std::string& m) const { log(DS_LOG_WARNING, m); }
    void error(const std::string& m) const { log(DS_LOG_ERROR, m); }
    uint64_t monotonicUs() const {
        return api_ && api_->monotonic_us ? api_->monotonic_us(api_->ctx) : 0;
    }
    uint64_t wallUs() const { return api_ && api_->wall_us ? api_->wall_us(api_->ctx) : 0; }
    const ds_host_api* api() const { return api_; }
    const char* pluginName() const { return name_; }

private:
    const ds_host_api* api_;
    const char* name_;
};

// The plugin's own INI section, valid during the constructor only: copy what you need.
// Typed getters throw Error(DS_ERR_CONFIG) naming section, key and value when a value is bad.
class Config {
public:
    explicit Config(const ds_config* config) : config_(config) {}

    std::optional<std::string> get(const std::string& key) const {
        if (!config_ || !config_->get) return std::nullopt;
        std::vector<char> buf(256);
        int32_t n = config_->get(config_->ctx, key.c_str(), buf.data(), buf.size());
        if (n < 0) return std::nullopt;
        if (static_cast<size_t>(n) >= buf.size()) {
            buf.resize(static_cast<size_t>(n) + 1);
            n = config_->get(config_->ctx, key.c_str(), buf.data(), buf.size());
            if (n < 0) return std::nullopt;
        }
        return std::string(buf.data(), static_cast<size_t>(n));
    }

    std::string getString(const std::string& key, const std::string& def) const {
        auto v = get(key);
        return v ? *v : def;
    }

    long long getInt(const std::string& key, long long def, long long min, long long max) const {
        auto v = get(key);
        if (!v || v->empty()) return def;
        char* end = nullptr;
        long long n = std::strtoll(v->c_str(), &end, 10);
        if (end == v->c_str() || *end != '\0')
            throw Error(DS_ERR_CONFIG, where(key) + " = '" + *v + "' is not an integer");
        if (n < min || n > max)
            throw Error(DS_ERR_CONFIG, where(key) + " = " + *v + " is out of range [" +
                                           std::to_string(min) + ", " + std::to_string(max) + "]");
        return n;
    }

    double getDouble(const std::string& key, double def) const {
        auto v = get(key);
        if (!v || v->empty()) return def;
        char* end = nullptr;
        double d = std::strtod(v->c_str(), &end);
        if (end == v->c_str() || *end != '\0')
            throw Error(DS_ERR_CONFIG, where(key) + " = '" + *v + "' is not a number");
        return d;
    }

    bool getBool(const std::string& key, bool def) const {
        auto v = get(key);
        if (!v || v->empty()) return def;
        const std::string& s = *v;
        if (s == "true" || s == "yes" || s == "on" || s == "1") return true;
        if (s == "false" || s == "no" || s == "off" || s == "0") return false;
        throw Error(DS_ERR_CONFIG, where(key) + " = '" + s + "' is not a boolean (true|false)");
    }

    std::string section() const { return config_ && config_->section ? config_->section : ""; }

private:
    std::string where(const std::string& key) const { return "[" + section() + "] " + key; }
    const ds_config* config_;
};

// Base classes. Constructors of derived classes take (const Host &, const Config &).
class Capture {
public:
    virtual ~Capture() = default;
    virtual std::vector<ds_monitor_info> monitors() = 0;
    // Returns DS_OK with `out` filled, DS_TIMEOUT or DS_REINIT; throws Error on failure.
    virtual ds_status grab(uint32_t monitor, uint32_t timeoutMs, ds_frame& out) = 0;
    virtual void release(ds_frame&) {}
};

class Encoder {
public:
    virtual ~Encoder() = default;
    // Fills `out`; its data must stay valid until the next encode()/releaseOutput()/destructor.
    virtual void encode(const ds_frame& frame, const ds_encode_params& params, ds_encoded& out) = 0;
    virtual void releaseOutput(ds_encoded&) {}
};

class Store {
public:
    using ClientFn = std::function<void(const ds_client_record&)>;
    using CommandFn = std::function<void(const ds_command_record&)>;
    using InstanceFn = std::function<void(const ds_instance_record&)>;
    using NotifyFn = std::function<void(const char* clientId)>;

    virtual ~Store() = default;
    virtual void check() = 0;
    virtual void registerClient(const ds_client_record& record) = 0;
    virtual void touchClient(const char* clientId, const char* instanceId, int64_t nowMs) = 0;
    virtual void unregisterClient(const char* clientId, const char* instanceId) = 0;
    virtual void listClients(const ClientFn& fn) = 0;
    virtual uint32_t reapClients(int64_t olderThanMs, const char* instanceId) = 0;
    virtual uint32_t unregisterInstanceClients(const char* instanceId) = 0;
    virtual void upsertInstance(const ds_instance_record& record) = 0;
    virtual void listInstances(const InstanceFn& fn) = 0;
    virtual bool enqueueCommand(const ds_command_record& record) = 0;  // false: id existed
    virtual void claimCommands(const char* clientId, int64_t nowMs, int64_t leaseMs,
                               uint32_t maxCount, const CommandFn& fn) = 0;
    virtual void completeCommand(const char* commandId, const char* status, const char* resultJson,
                                 int64_t nowMs) = 0;
    virtual void getCommand(const char* commandId, const CommandFn& fn) = 0;  // throws NOT_FOUND
    virtual uint32_t expireCommands(int64_t olderThanMs, int64_t nowMs) = 0;
};

namespace detail {

// Runs f, converting every exception into a status code and a message in err.
template <class F>
ds_status guard(char* err, size_t errSize, F&& f) noexcept {
    try {
        return f();
    } catch (const Error& e) {
        ds_set_error(err, errSize, e.what());
        return e.status() < 0 ? e.status() : DS_ERR_INTERNAL;
    } catch (const std::bad_alloc&) {
        ds_set_error(err, errSize, "out of memory");
        return DS_ERR_NO_MEMORY;
    } catch (const std::exception& e) {
        ds_set_error(err, errSize, e.what());
        return DS_ERR_INTERNAL;
    } catch (...) {
        ds_set_error(err, errSize, "unknown exception in plugin");
        return DS_ERR_INTERNAL;
    }
}

#define DESKSTREAM_DETECT_(trait, expr) \
    template <class T, class = void>    \
    struct trait : std::false_type {};  \
    template <class T>                  \
    struct trait<T, std::void_t<decltype(expr)>> : std::true_type {}

DESKSTREAM_DETECT_(HasConfigKeys, T::kConfigKeys);
DESKSTREAM_DETECT_(HasRank, T::kRank);
DESKSTREAM_DETECT_(HasLicense, T::kLicense);
DESKSTREAM_DETECT_(HasVendor, T::kVendor);
DESKSTREAM_DETECT_(HasCapabilities, T::kCapabilities);
DESKSTREAM_DETECT_(HasInjectInput,
                   std::declval<T&>().injectInput(std::declval<const ds_input_event&>()));
DESKSTREAM_DETECT_(HasProbe, T::probe(std::declval<const Host&>(), std::declval<const Config&>()));
DESKSTREAM_DETECT_(HasPollNotifications,
                   std::declval<T&>().pollNotifications(uint32_t{},
                                                        std::declval<const Store::NotifyFn&>()));
DESKSTREAM_DETECT_(HasPurgeCommands, std::declval<T&>().purgeCommands(int64_t{}));
#undef DESKSTREAM_DETECT_

template <class T>
struct Names {
    static inline const char* name = nullptr;  // set by DESKSTREAM_PLUGIN before first use
};

template <class T>
ds_status createInstance(const ds_host_api* host, const ds_config* config, void** out, char* err,
                         size_t errSize) noexcept {
    return guard(err, errSize, [&]() -> ds_status {
        if (!out) throw Error(DS_ERR_INVALID_ARGUMENT, "out_instance is NULL");
        *out = nullptr;
        Host h(host, Names<T>::name);
        Config c(config);
        *out = static_cast<void*>(new T(h, c));
        return DS_OK;
    });
}

template <class T>
void destroyInstance(void* instance) noexcept {
    try {
        delete static_cast<T*>(instance);
    } catch (...) {}
}

template <class T>
T& self(void* instance) {
    if (!instance) throw Error(DS_ERR_INVALID_ARGUMENT, "instance is NULL");
    return *static_cast<T*>(instance);
}

// ---- capture
template <class T>
struct CaptureAdapter {
    static ds_status probe(const ds_host_api* host, const ds_config* config, char* err,
                           size_t n) noexcept {
        return guard(err, n, [&]() -> ds_status {
            if constexpr (HasProbe<T>::value) T::probe(Host(host, Names<T>::name), Config(config));
            return DS_OK;
        });
    }
    static ds_status listMonitors(void* inst, ds_monitor_info* out, uint32_t capacity,
                                  uint32_t* count, char* err, size_t n) noexcept {
        return guard(err, n, [&]() -> ds_status {
            if (!count) throw Error(DS_ERR_INVALID_ARGUMENT, "count is NULL");
            std::vector<ds_monitor_info> m = self<T>(inst).monitors();
            *count = static_cast<uint32_t>(m.size());
            for (uint32_t i = 0; out && i < capacity && i < m.size(); ++i) {
                out[i] = m[i];
                out[i].struct_size = sizeof(ds_monitor_info);
            }
            return DS_OK;
        });
    }
    static ds_status grab(void* inst, uint32_t monitor, uint32_t timeoutMs, ds_frame* frame,
                          char* err, size_t n) noexcept {
        return guard(err, n, [&]() -> ds_status {
            if (!frame) throw Error(DS_ERR_INVALID_ARGUMENT, "frame is NULL");
            ds_frame f{};
            f.struct_size = sizeof(ds_frame);
            ds_status s = self<T>(inst).grab(monitor, timeoutMs, f);
            if (s == DS_OK) *frame = f;
            return s;
        });
    }
    static void release(void* inst, ds_frame* frame) noexcept {
        char ignored[1];
        guard(ignored, 0, [&]() -> ds_status {
            if (frame) self<T>(inst).release(*frame);
            return DS_OK;
        });
    }
    static ds_status inject(void* inst, const ds_input_event* ev, char* err, size_t n) noexcept {
        return guard(err, n, [&]() -> ds_status {
            if (!ev) throw Error(DS_ERR_INVALID_ARGUMENT, "event is NULL");
            if constexpr (HasInjectInput<T>::value) self<T>(inst).injectInput(*ev);
            return DS_OK;
        });
    }
    static const ds_capture_vtable* vtable() {
        static const ds_capture_vtable v = [] {
            ds_capture_vtable t{};
            t.struct_size = sizeof(ds_capture_vtable);
            uint32_t caps = 0;
            if constexpr (HasCapabilities<T>::value) caps = T::kCapabilities;
            if constexpr (HasInjectInput<T>::value) caps |= DS_CAPTURE_CAP_INPUT;
            t.capabilities = caps;
            t.probe = HasProbe<T>::value ? &probe : nullptr;
            t.create = &createInstance<T>;
            t.destroy = &destroyInstance<T>;
            t.list_monitors = &listMonitors;
            t.grab_frame = &grab;
            t.release_frame = &release;
            t.inject_input = HasInjectInput<T>::value ? &inject : nullptr;
            return t;
        }();
        return &v;
    }
};

// ---- encoder
template <class T>
struct EncoderAdapter {
    static ds_status encode(void* inst, const ds_frame* frame, const ds_encode_params* params,
                            ds_encoded* out, char* err, size_t n) noexcept {
        return guard(err, n, [&]() -> ds_status {
            if (!frame) throw Error(DS_ERR_INVALID_ARGUMENT, "frame is NULL");
            if (!params) throw Error(DS_ERR_INVALID_ARGUMENT, "params is NULL");
            if (!out) throw Error(DS_ERR_INVALID_ARGUMENT, "out is NULL");
            ds_encoded e{};
            e.struct_size = sizeof(ds_encoded);
            e.codec = T::kCodec;
            self<T>(inst).encode(*frame, *params, e);
            *out = e;
            return DS_OK;
        });
    }
    static void releaseOutput(void* inst, ds_encoded* out) noexcept {
        char ignored[1];
        guard(ignored, 0, [&]() -> ds_status {
            if (out) self<T>(inst).releaseOutput(*out);
            return DS_OK;
        });
    }
    static const ds_encoder_vtable* vtable() {
        static const ds_encoder_vtable v = [] {
            ds_encoder_vtable t{};
            t.struct_size = sizeof(ds_encoder_vtable);
            t.codec = T::kCodec;
            t.create = &createInstance<T>;
            t.destroy = &destroyInstance<T>;
            t.encode = &encode;
            t.release_output = &releaseOutput;
            return t;
        }();
        return &v;
    }
};

// ---- store
template <class T>
struct StoreAdapter {
    template <class Rec, class Cb>
    static std::function<void(const Rec&)> wrap(Cb cb, void* user) {
        if (!cb) throw Error(DS_ERR_INVALID_ARGUMENT, "callback is NULL");
        return [cb, user](const Rec& r) { cb(user, &r); };
    }
    static ds_status check(void* i, char* e, size_t n) noexcept {
        return guard(e, n, [&] {
            self<T>(i).check();
            return DS_OK;
        });
    }
    static ds_status reg(void* i, const ds_client_record* r, char* e, size_t n) noexcept {
        return guard(e, n, [&] {
            if (!r) throw Error(DS_ERR_INVALID_ARGUMENT, "record is NULL");
            self<T>(i).registerClient(*r);
            return DS_OK;
        });
    }
    static ds_status touch(void* i, const char* c, const char* inst, int64_t now, char* e,
                           size_t n) noexcept {
        return guard(e, n, [&] {
            self<T>(i).touchClient(c, inst, now);
            return DS_OK;
        });
    }
    static ds_status unreg(void* i, const char* c, const char* inst, char* e, size_t n) noexcept {
        return guard(e, n, [&] {
            self<T>(i).unregisterClient(c, inst);
            return DS_OK;
        });
    }
    static ds_status list(void* i, ds_client_callback cb, void* u, char* e, size_t n) noexcept {
        return guard(e, n, [&] {
            self<T>(i).listClients(wrap<ds_client_record>(cb, u));
            return DS_OK;
        });
    }
    static ds_status reap(void* i, int64_t older, const char* inst, uint32_t* removed, char* e,
                          size_t n) noexcept {
        return guard(e, n, [&] {
            uint32_t r = self<T>(i).reapClients(older, inst);
            if (removed) *removed = r;
            return DS_OK;
        });
    }
    static ds_status unregInst(void* i, const char* inst, uint32_t* removed, char* e,
                               size_t n) noexcept {
        return guard(e, n, [&] {
            uint32_t r = self<T>(i).unregisterInstanceClients(inst);
            if (removed) *removed = r;
            return DS_OK;
        });
    }
    static ds_status upsertInst(void* i, const ds_instance_record* r, char* e, size_t n) noexcept {
        return guard(e, n, [&] {
            if (!r) throw Error(DS_ERR_INVALID_ARGUMENT, "record is NULL");
            self<T>(i).upsertInstance(*r);
            return DS_OK;
        });
    }
    static ds_status listInst(void* i, ds_instance_callback cb, void* u, char* e,
                              size_t n) noexcept {
        return guard(e, n, [&] {
            self<T>(i).listInstances(wrap<ds_instance_record>(cb, u));
            return DS_OK;
        });
    }
    static ds_status enqueue(void* i, const ds_command_record* r, int32_t* created, char* e,
                             size_t n) noexcept {
        return guard(e, n, [&] {
            if (!r) throw Error(DS_ERR_INVALID_ARGUMENT, "record is NULL");
            bool c = self<T>(i).enqueueCommand(*r);
            if (created) *created = c ? 1 : 0;
            return DS_OK;
        });
    }
    static ds_status claim(void* i, const char* c, int64_t now, int64_t lease, uint32_t max,
                           ds_command_callback cb, void* u, char* e, size_t n) noexcept {
        return guard(e, n, [&] {
            self<T>(i).claimCommands(c, now, lease, max, wrap<ds_command_record>(cb, u));
            return DS_OK;
        });
    }
    static ds_status complete(void* i, const char* id, const char* st, const char* res, int64_t now,
                              char* e, size_t n) noexcept {
        return guard(e, n, [&] {
            self<T>(i).completeCommand(id, st, res, now);
            return DS_OK;
        });
    }
    static ds_status get(void* i, const char* id, ds_command_callback cb, void* u, char* e,
                         size_t n) noexcept {
        return guard(e, n, [&] {
            self<T>(i).getCommand(id, wrap<ds_command_record>(cb, u));
            return DS_OK;
        });
    }
    static ds_status expire(void* i, int64_t older, int64_t now, uint32_t* count, char* e,
                            size_t n) noexcept {
        return guard(e, n, [&] {
            uint32_t c = self<T>(i).expireCommands(older, now);
            if (count) *count = c;
            return DS_OK;
        });
    }
    static ds_status poll(void* i, uint32_t timeout, ds_notify_callback cb, void* u, char* e,
                          size_t n) noexcept {
        return guard(e, n, [&]() -> ds_status {
            if constexpr (HasPollNotifications<T>::value) {
                if (!cb) throw Error(DS_ERR_INVALID_ARGUMENT, "callback is NULL");
                bool any =
                    self<T>(i).pollNotifications(timeout, [cb, u](const char* c) { cb(u, c); });
                return any ? DS_OK : DS_TIMEOUT;
            } else {
                return DS_ERR_UNSUPPORTED;
            }
        });
    }
    static ds_status purge(void* i, int64_t older, uint32_t* count, char* e, size_t n) noexcept {
        return guard(e, n, [&]() -> ds_status {
            if constexpr (HasPurgeCommands<T>::value) {
                uint32_t c = self<T>(i).purgeCommands(older);
                if (count) *count = c;
                return DS_OK;
            } else {
                return DS_ERR_UNSUPPORTED;
            }
        });
    }
    static const ds_store_vtable* vtable() {
        static const ds_store_vtable v = [] {
            ds_store_vtable t{};
            t.struct_size = sizeof(ds_store_vtable);
            t.create = &createInstance<T>;
            t.destroy = &destroyInstance<T>;
            t.check = &check;
            t.register_client = &reg;
            t.touch_client = &touch;
            t.unregister_client = &unreg;
            t.list_clients = &list;
            t.reap_clients = &reap;
            t.unregister_instance_clients = &unregInst;
            t.upsert_instance = &upsertInst;
            t.list_instances = &listInst;
            t.enqueue_command = &enqueue;
            t.claim_commands = &claim;
            t.complete_command = &complete;
            t.get_command = &get;
            t.expire_commands = &expire;
            t.poll_notifications = HasPollNotifications<T>::value ? &poll : nullptr;
            t.purge_commands = HasPurgeCommands<T>::value ? &purge : nullptr;
            return t;
        }();
        return &v;
    }
};

template <class T>
constexpr ds_plugin_kind kindOf() {
    if constexpr (std::is_base_of_v<Capture, T>)
        return DS_KIND_CAPTURE;
    else if constexpr (std::is_base_of_v<Encoder, T>)
        return DS_KIND_ENCODER;
    else {
        static_assert(std::is_base_of_v<Store, T>,
                      "a plugin class derives from deskstream::Capture, Encoder or Store");
        return DS_KIND_STORE;
    }
}

template <class T>
ds_plugin_descriptor makeDescriptor(const char* name, const char* version,
                                    const char* description) {
    Names<T>::name = name;
    ds_plugin_descriptor d{};
    d.struct_size = sizeof(ds_plugin_descriptor);
    d.abi_major = DS_ABI_MAJOR;
    d.abi_minor = DS_ABI_MINOR;
    d.kind = kindOf<T>();
    d.name = name;
    d.version = version;
    d.description = description;
    if constexpr (HasLicense<T>::value) d.license = T::kLicense;
    if constexpr (HasVendor<T>::value) d.vendor = T::kVendor;
    if constexpr (HasRank<T>::value) d.rank = T::kRank;
    if constexpr (HasConfigKeys<T>::value) {
        d.config_keys = T::kConfigKeys;
        d.config_key_count = static_cast<uint32_t>(std::extent_v<decltype(T::kConfigKeys)>);
    }
    if constexpr (kindOf<T>() == DS_KIND_CAPTURE)
        d.vtable = CaptureAdapter<T>::vtable();
    else if constexpr (kindOf<T>() == DS_KIND_ENCODER)
        d.vtable = EncoderAdapter<T>::vtable();
    else
        d.vtable = StoreAdapter<T>::vtable();
    return d;
}

}  // namespace detail
}  // namespace deskstream

// Exports deskstream_plugin_entry for Class. Use once per shared library, at namespace scope
// with the unqualified class name. Compiled with DESKSTREAM_PLUGIN_STATIC the entry is
// deskstream_plugin_entry_<Class> instead, for linking into a program (plugin.h, DS_PLUGIN_ENTRY).
#define DESKSTREAM_PLUGIN(Class, name, version, description)                               \
    extern "C" DS_PLUGIN_EXPORT const ds_plugin_descriptor* DS_PLUGIN_ENTRY(Class)(void) { \
        static const ds_plugin_descriptor descriptor =                                     \
            ::deskstream::detail::makeDescriptor<Class>(name, version, description);       \
        return &descriptor;                                                                \
    }

#endif  // DESKSTREAM_PLUGIN_HPP
