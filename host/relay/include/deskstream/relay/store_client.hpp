// StoreClient: the relay's bridge to a store plugin instance (ds_store_vtable + instance).
// Turns status codes and caller-owned error buffers into StoreStatus values and converts
// between core's records and the plugin ABI's C structs (in both directions, only here). It does not own the instance: whoever
// created it (the host's plugin loader, or a test) destroys it after the relay stopped.
#pragma once

#include "deskstream/core/actions.hpp"
#include "deskstream/core/commands.hpp"
#include "deskstream/plugin.h"

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace deskstream::relay {

struct StoreStatus {
    ds_status code = DS_OK;
    std::string message;  // the plugin's message (or ours when a function is missing)
    bool ok() const { return code == DS_OK; }
    explicit operator bool() const { return ok(); }
    std::string describe() const;  // "store_unavailable: <message>"
};

// One record type per concept: the relay stores core's records; the plugin ABI's C structs
// (ds_client_record, ...) appear only inside store_client.cpp, the bridge to the plugin.
using ClientRecord = core::ClientRecord;
using CommandRecord = core::CommandRecord;
using InstanceRecord = core::InstanceRecord;

// Name of a status code as text ("store_unavailable", "not_found", ...).
const char* statusName(ds_status code);

class StoreClient {
public:
    // `vtable` is copied (min(struct_size, sizeof)) so a plugin built against an older minor
    // reads as NULL for the functions it does not have.
    StoreClient(const ds_store_vtable* vtable, void* instance);

    bool valid() const { return instance_ != nullptr && vt_.register_client != nullptr; }
    bool hasNotifications() const { return vt_.poll_notifications != nullptr; }

    // Told of every call: operation ("register_client", ...), its duration, whether the
    // duration means anything (false for poll_notifications, a long poll) and its status.
    // Set before the client is shared between threads (the relay's metrics use it).
    using Observer = std::function<void(const char* operation, double seconds, bool timed,
                                        const StoreStatus& status)>;
    void setObserver(Observer observer) { observer_ = std::move(observer); }

    StoreStatus check() const;
    StoreStatus registerClient(const ClientRecord& record) const;
    StoreStatus touchClient(const std::string& clientId, const std::string& instanceId,
                            int64_t nowMs) const;
    // instanceId empty: whoever holds the row.
    StoreStatus unregisterClient(const std::string& clientId, const std::string& instanceId) const;
    StoreStatus listClients(std::vector<ClientRecord>& out) const;
    StoreStatus reapClients(int64_t olderThanMs, const std::string& instanceId,
                            uint32_t& removed) const;
    StoreStatus unregisterInstanceClients(const std::string& instanceId, uint32_t& removed) const;
    StoreStatus upsertInstance(const InstanceRecord& record) const;
    StoreStatus listInstances(std::vector<InstanceRecord>& out) const;
    StoreStatus enqueueCommand(const CommandRecord& record, bool& created) const;
    StoreStatus claimCommands(const std::string& clientId, int64_t nowMs, int64_t leaseMs,
                              uint32_t maxCount, std::vector<CommandRecord>& out) const;
    StoreStatus completeCommand(const std::string& commandId, const std::string& status,
                                const std::string& resultJson, int64_t nowMs) const;
    StoreStatus getCommand(const std::string& commandId, std::optional<CommandRecord>& out) const;
    StoreStatus expireCommands(int64_t olderThanMs, int64_t nowMs, uint32_t& expired) const;
    // ABI 1.1: deletes finished commands completed before olderThanMs. DS_ERR_UNSUPPORTED (with
    // a message naming the store's ABI) when the plugin's vtable does not reach purge_commands.
    bool canPurge() const { return vt_.purge_commands != nullptr; }
    StoreStatus purgeCommands(int64_t olderThanMs, uint32_t& purged) const;
    // DS_TIMEOUT (not an error) when nothing arrived; clientIds gets one entry per notification.
    StoreStatus pollNotifications(uint32_t timeoutMs, std::vector<std::string>& clientIds) const;

private:
    ds_store_vtable vt_{};
    void* instance_ = nullptr;
    Observer observer_;
};

}  // namespace deskstream::relay
