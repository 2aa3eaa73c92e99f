// StoreClient: the bridge between core's records and a store plugin's C ABI (see store_client.hpp).
#include "deskstream/relay/store_client.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>

namespace deskstream::relay {
namespace {

constexpr size_t kErrSize = 512;

std::string str(const char* s) { return s ? std::string(s) : std::string(); }
const char* cstrOrNull(const std::string& s) { return s.empty() ? nullptr : s.c_str(); }

StoreStatus result(ds_status code, const char* err) {
    StoreStatus s;
    s.code = code;
    // DS_TIMEOUT and other positive outcomes carry no message.
    if (code < 0) s.message = (err && err[0]) ? err : "store call failed without a message";
    return s;
}

// Times one store call and tells the observer (if any) its outcome: `return obs(result(...))`.
class Observed {
public:
    Observed(const StoreClient::Observer& observer, const char* operation, bool timed = true)
        : observer_(observer),
          operation_(operation),
          timed_(timed),
          start_(std::chrono::steady_clock::now()) {}
    StoreStatus operator()(StoreStatus s) const {
        if (observer_) {
            const std::chrono::duration<double> d = std::chrono::steady_clock::now() - start_;
            observer_(operation_, d.count(), timed_, s);
        }
        return s;
    }

private:
    const StoreClient::Observer& observer_;
    const char* operation_;
    bool timed_;
    std::chrono::steady_clock::time_point start_;
};

StoreStatus missing(const char* fn) {
    return StoreStatus{DS_ERR_UNSUPPORTED, std::string("the store plugin has no ") + fn};
}

ClientRecord copyClient(const ds_client_record* r) {
    ClientRecord c;
    c.clientId = str(r->client_id);
    c.name = str(r->name);
    c.hostname = str(r->hostname);
    c.instanceId = str(r->instance_id);
    c.monitorsJson = r->monitors_json ? r->monitors_json : "[]";
    c.capabilitiesJson = r->capabilities_json ? r->capabilities_json : "{}";
    c.connectedAtMs = r->connected_at_ms;
    c.lastPingMs = r->last_ping_ms;
    return c;
}

CommandRecord copyCommand(const ds_command_record* r) {
    CommandRecord c;
    c.id = str(r->id);
    c.clientId = str(r->client_id);
    c.commandType = str(r->command_type);
    c.commandDataJson = str(r->command_data_json);
    c.targetInstanceId = str(r->target_instance_id);
    c.status = str(r->status);
    c.resultJson = str(r->result_json);
    c.origin = str(r->origin);
    c.createdAtMs = r->created_at_ms;
    c.deliveredAtMs = r->delivered_at_ms;
    c.completedAtMs = r->completed_at_ms;
    c.claimedUntilMs = r->claimed_until_ms;
    c.attempts = r->attempts;
    return c;
}

// Callbacks are called from inside C code: nothing may throw through them.
template <class Rec, class Out, class Copy>
struct Collector {
    static void call(void* user, const Rec* record) {
        try {
            if (record) static_cast<std::vector<Out>*>(user)->push_back(Copy{}(record));
        } catch (...) {}
    }
};
struct CopyClientFn {
    ClientRecord operator()(const ds_client_record* r) const { return copyClient(r); }
};
struct CopyCommandFn {
    CommandRecord operator()(const ds_command_record* r) const { return copyCommand(r); }
};
struct CopyInstanceFn {
    InstanceRecord operator()(const ds_instance_record* r) const {
        return InstanceRecord{str(r->instance_id), str(r->public_url), r->started_at_ms,
                              r->last_seen_ms};
    }
};

}  // namespace

const char* statusName(ds_status code) {
    switch (code) {
        case DS_OK:
            return "ok";
        case DS_TIMEOUT:
            return "timeout";
        case DS_REINIT:
            return "reinit";
        case DS_ERR_INVALID_ARGUMENT:
            return "invalid_argument";
        case DS_ERR_UNSUPPORTED:
            return "unsupported";
        case DS_ERR_NO_MEMORY:
            return "no_memory";
        case DS_ERR_IO:
            return "io_error";
        case DS_ERR_STORE_UNAVAILABLE:
            return "store_unavailable";
        case DS_ERR_PERMISSION:
            return "permission_denied";
        case DS_ERR_NOT_FOUND:
            return "not_found";
        case DS_ERR_SCHEMA:
            return "schema_error";
        case DS_ERR_AUTH:
            return "auth_failed";
        case DS_ERR_CONFIG:
            return "config_error";
        case DS_ERR_INTERNAL:
            return "internal_error";
        default:
            return "unknown_status";
    }
}

std::string StoreStatus::describe() const {
    std::string s = statusName(code);
    if (!message.empty()) s += ": " + message;
    return s;
}

StoreClient::StoreClient(const ds_store_vtable* vtable, void* instance) : instance_(instance) {
    if (vtable) {
        size_t n = std::min<size_t>(vtable->struct_size, sizeof(ds_store_vtable));
        std::memcpy(&vt_, vtable, n);
    }
}

StoreStatus StoreClient::check() const {
    Observed obs(observer_, "check");
    if (!vt_.check) return missing("check");
    char err[kErrSize] = {0};
    return obs(result(vt_.check(instance_, err, sizeof err), err));
}

StoreStatus StoreClient::registerClient(const ClientRecord& c) const {
    Observed obs(observer_, "register_client");
    if (!vt_.register_client) return missing("register_client");
    ds_client_record r{};
    r.struct_size = sizeof r;
    r.client_id = c.clientId.c_str();
    r.name = c.name.c_str();
    r.hostname = c.hostname.c_str();
    r.instance_id = c.instanceId.c_str();
    // Core leaves the JSON columns empty when there is nothing to say; the store wants JSON.
    const std::string monitors = c.monitorsJson.empty() ? "[]" : c.monitorsJson;
    const std::string capabilities = c.capabilitiesJson.empty() ? "{}" : c.capabilitiesJson;
    r.monitors_json = monitors.c_str();
    r.capabilities_json = capabilities.c_str();
    r.connected_at_ms = c.connectedAtMs;
    r.last_ping_ms = c.lastPingMs;
    char err[kErrSize] = {0};
    return obs(result(vt_.register_client(instance_, &r, err, sizeof err), err));
}

StoreStatus StoreClient::touchClient(const std::string& clientId, const std::string& instanceId,
                                     int64_t nowMs) const {
    Observed obs(observer_, "touch_client");
    if (!vt_.touch_client) return missing("touch_client");
    char err[kErrSize] = {0};
    return obs(result(
        vt_.touch_client(instance_, clientId.c_str(), instanceId.c_str(), nowMs, err, sizeof err),
        err));
}

StoreStatus StoreClient::unregisterClient(const std::string& clientId,
                                          const std::string& instanceId) const {
    Observed obs(observer_, "unregister_client");
    if (!vt_.unregister_client) return missing("unregister_client");
    char err[kErrSize] = {0};
    return obs(result(
        vt_.unregister_client(instance_, clientId.c_str(), cstrOrNull(instanceId), err, sizeof err),
        err));
}

StoreStatus StoreClient::listClients(std::vector<ClientRecord>& out) const {
    Observed obs(observer_, "list_clients");
    if (!vt_.list_clients) return missing("list_clients");
    char err[kErrSize] = {0};
    out.clear();
    return obs(result(
        vt_.list_clients(instance_, &Collector<ds_client_record, ClientRecord, CopyClientFn>::call,
                         &out, err, sizeof err),
        err));
}

StoreStatus StoreClient::reapClients(int64_t olderThanMs, const std::string& instanceId,
                                     uint32_t& removed) const {
    Observed obs(observer_, "reap_clients");
    if (!vt_.reap_clients) return missing("reap_clients");
    char err[kErrSize] = {0};
    removed = 0;
    return obs(result(
        vt_.reap_clients(instance_, olderThanMs, cstrOrNull(instanceId), &removed, err, sizeof err),
        err));
}

StoreStatus StoreClient::unregisterInstanceClients(const std::string& instanceId,
                                                   uint32_t& removed) const {
    Observed obs(observer_, "unregister_instance_clients");
    if (!vt_.unregister_instance_clients) return missing("unregister_instance_clients");
    char err[kErrSize] = {0};
    removed = 0;
    return obs(result(
        vt_.unregister_instance_clients(instance_, instanceId.c_str(), &removed, err, sizeof err),
        err));
}

StoreStatus StoreClient::upsertInstance(const InstanceRecord& i) const {
    Observed obs(observer_, "upsert_instance");
    if (!vt_.upsert_instance) return missing("upsert_instance");
    ds_instance_record r{};
    r.struct_size = sizeof r;
    r.instance_id = i.instanceId.c_str();
    r.public_url = i.publicUrl.c_str();
    r.started_at_ms = i.startedAtMs;
    r.last_seen_ms = i.lastSeenMs;
    char err[kErrSize] = {0};
    return obs(result(vt_.upsert_instance(instance_, &r, err, sizeof err), err));
}

StoreStatus StoreClient::listInstances(std::vector<InstanceRecord>& out) const {
    Observed obs(observer_, "list_instances");
    if (!vt_.list_instances) return missing("list_instances");
    char err[kErrSize] = {0};
    out.clear();
    return obs(result(
        vt_.list_instances(instance_,
                           &Collector<ds_instance_record, InstanceRecord, CopyInstanceFn>::call,
                           &out, err, sizeof err),
        err));
}

StoreStatus StoreClient::enqueueCommand(const CommandRecord& c, bool& created) const {
    Observed obs(observer_, "enqueue_command");
    if (!vt_.enqueue_command) return missing("enqueue_command");
    ds_command_record r{};
    r.struct_size = sizeof r;
    r.id = c.id.c_str();
    r.client_id = c.clientId.c_str();
    r.command_type = c.commandType.c_str();
    r.command_data_json = c.commandDataJson.c_str();
    r.target_instance_id = cstrOrNull(c.targetInstanceId);
    r.status = c.status.c_str();
    r.result_json = cstrOrNull(c.resultJson);
    r.origin = cstrOrNull(c.origin);
    r.created_at_ms = c.createdAtMs;
    r.attempts = c.attempts;
    int32_t wasCreated = 0;
    char err[kErrSize] = {0};
    StoreStatus s =
        obs(result(vt_.enqueue_command(instance_, &r, &wasCreated, err, sizeof err), err));
    created = wasCreated != 0;
    return s;
}

StoreStatus StoreClient::claimCommands(const std::string& clientId, int64_t nowMs, int64_t leaseMs,
                                       uint32_t maxCount, std::vector<CommandRecord>& out) const {
    Observed obs(observer_, "claim_commands");
    if (!vt_.claim_commands) return missing("claim_commands");
    char err[kErrSize] = {0};
    out.clear();
    return obs(
        result(vt_.claim_commands(instance_, clientId.c_str(), nowMs, leaseMs, maxCount,
                                  &Collector<ds_command_record, CommandRecord, CopyCommandFn>::call,
                                  &out, err, sizeof err),
               err));
}

StoreStatus StoreClient::completeCommand(const std::string& commandId, const std::string& status,
                                         const std::string& resultJson, int64_t nowMs) const {
    Observed obs(observer_, "complete_command");
    if (!vt_.complete_command) return missing("complete_command");
    char err[kErrSize] = {0};
    return obs(result(vt_.complete_command(instance_, commandId.c_str(), status.c_str(),
                                           cstrOrNull(resultJson), nowMs, err, sizeof err),
                      err));
}

StoreStatus StoreClient::getCommand(const std::string& commandId,
                                    std::optional<CommandRecord>& out) const {
    Observed obs(observer_, "get_command");
    if (!vt_.get_command) return missing("get_command");
    std::vector<CommandRecord> found;
    char err[kErrSize] = {0};
    StoreStatus s = obs(
        result(vt_.get_command(instance_, commandId.c_str(),
                               &Collector<ds_command_record, CommandRecord, CopyCommandFn>::call,
                               &found, err, sizeof err),
               err));
    out.reset();
    if (s.ok() && !found.empty()) out = std::move(found.front());
    return s;
}

StoreStatus StoreClient::expireCommands(int64_t olderThanMs, int64_t nowMs,
                                        uint32_t& expired) const {
    Observed obs(observer_, "expire_commands");
    if (!vt_.expire_commands) return missing("expire_commands");
    char err[kErrSize] = {0};
    expired = 0;
    return obs(
        result(vt_.expire_commands(instance_, olderThanMs, nowMs, &expired, err, sizeof err), err));
}

StoreStatus StoreClient::purgeCommands(int64_t olderThanMs, uint32_t& purged) const {
    purged = 0;
    // The constructor copied only struct_size bytes, so a store built against ABI 1.0 reads
    // NULL here and is never called past the end of its vtable.
    if (!vt_.purge_commands)
        return StoreStatus{DS_ERR_UNSUPPORTED,
                           "the store plugin's vtable (" + std::to_string(vt_.struct_size) +
                               " bytes) has no purge_commands (added in plugin ABI 1.1)"};
    Observed obs(observer_, "purge_commands");  // only calls that reach the store are timed
    char err[kErrSize] = {0};
    return obs(result(vt_.purge_commands(instance_, olderThanMs, &purged, err, sizeof err), err));
}

namespace {
void collectNotify(void* user, const char* clientId) {
    try {
        if (clientId) static_cast<std::vector<std::string>*>(user)->emplace_back(clientId);
    } catch (...) {}
}
}  // namespace

StoreStatus StoreClient::pollNotifications(uint32_t timeoutMs,
                                           std::vector<std::string>& clientIds) const {
    Observed obs(observer_, "poll_notifications", false);
    if (!vt_.poll_notifications) return missing("poll_notifications");
    char err[kErrSize] = {0};
    clientIds.clear();
    return obs(result(
        vt_.poll_notifications(instance_, timeoutMs, &collectNotify, &clientIds, err, sizeof err),
        err));
}

}  // namespace deskstream::relay
