// Helpers shared by the store plugins (header-only, no library of its own): owned copies of the
// records that cross the ABI, argument checks and the command status vocabulary.
#pragma once

#include "deskstream/plugin.hpp"

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace deskstream::stores {

// Latest schema version this build knows. Both stores share the numbering so that
// docs/stores.md can describe one history.
constexpr int kSchemaVersion = 2;

// The migrations, one per schema version, in SQL that both SQLite and PostgreSQL accept (times
// as epoch ms in BIGINT: see docs/poco-pitfalls.md on DateTime). Never edit a released migration:
// append a new one and raise kSchemaVersion.
inline const char* const kMigrations[] = {
    // 1: the tables of the original system, plus claimed_until and origin.
    R"SQL(
CREATE TABLE active_desktop_clients (
    client_id    TEXT PRIMARY KEY,
    name         TEXT NOT NULL DEFAULT '',
    hostname     TEXT NOT NULL DEFAULT '',
    instance_id  TEXT NOT NULL DEFAULT '',
    monitors     TEXT NOT NULL DEFAULT '[]',
    capabilities TEXT NOT NULL DEFAULT '{}',
    connected_at BIGINT NOT NULL,
    last_ping    BIGINT NOT NULL
);
CREATE INDEX active_desktop_clients_instance ON active_desktop_clients (instance_id);
CREATE INDEX active_desktop_clients_last_ping ON active_desktop_clients (last_ping);
CREATE TABLE desktop_commands (
    id                 TEXT PRIMARY KEY,
    desktop_client_id  TEXT NOT NULL,
    command_type       TEXT NOT NULL,
    command_data       TEXT NOT NULL DEFAULT '{}',
    target_instance_id TEXT,
    status             TEXT NOT NULL DEFAULT 'pending'
                       CHECK (status IN ('pending','delivered','done','failed','expired')),
    result             TEXT,
    origin             TEXT,
    created_at         BIGINT NOT NULL,
    delivered_at       BIGINT,
    completed_at       BIGINT,
    claimed_until      BIGINT,
    attempts           INTEGER NOT NULL DEFAULT 0
);
-- Claims look up a desktop's pending rows and its delivered rows whose lease ran out; with
-- claimed_until in the key, delivered rows still under lease are never scanned.
CREATE INDEX desktop_commands_claim ON desktop_commands (desktop_client_id, status, claimed_until);
CREATE INDEX desktop_commands_created ON desktop_commands (created_at);
CREATE TABLE relay_instances (
    instance_id TEXT PRIMARY KEY,
    public_url  TEXT NOT NULL DEFAULT '',
    started_at  BIGINT NOT NULL,
    last_seen   BIGINT NOT NULL
);
)SQL",
    // 2: the per-desktop delivery order (docs/stores.md, "Command order"). seq is taken from
    // desktop_command_seqs by the enqueue's own transaction, whose row lock makes one desktop's
    // enqueues commit in seq order; claims hand commands out by seq. Existing rows are numbered
    // in the order they used to be claimed (created_at, id).
    R"SQL(
ALTER TABLE desktop_commands ADD COLUMN seq BIGINT;
UPDATE desktop_commands SET seq = (
    SELECT COUNT(*) FROM desktop_commands d2
    WHERE d2.desktop_client_id = desktop_commands.desktop_client_id
      AND (d2.created_at < desktop_commands.created_at
           OR (d2.created_at = desktop_commands.created_at AND d2.id <= desktop_commands.id)));
CREATE INDEX desktop_commands_order ON desktop_commands (desktop_client_id, seq);
CREATE TABLE desktop_command_seqs (
    desktop_client_id TEXT PRIMARY KEY,
    last_seq          BIGINT NOT NULL
);
INSERT INTO desktop_command_seqs (desktop_client_id, last_seq)
    SELECT desktop_client_id, MAX(seq) FROM desktop_commands GROUP BY desktop_client_id;
)SQL",
};
static_assert(sizeof(kMigrations) / sizeof(kMigrations[0]) == kSchemaVersion,
              "one migration per schema version");

inline std::string str(const char* s) { return s ? std::string(s) : std::string(); }

inline std::optional<std::string> opt(const char* s) {
    if (!s) return std::nullopt;
    return std::string(s);
}

// Ids are caller-chosen text; refuse the ones that would make rows unreachable.
inline void requireId(const char* value, const char* what) {
    if (!value || !*value)
        throw Error(DS_ERR_INVALID_ARGUMENT, std::string(what) + " is missing (NULL or empty)");
    if (std::char_traits<char>::length(value) > 255)
        throw Error(DS_ERR_INVALID_ARGUMENT, std::string(what) + " is longer than 255 bytes");
}

inline bool isFinalStatus(const char* s) {
    return s && (std::string(s) == "done" || std::string(s) == "failed");
}

// complete_command accepts only the final statuses.
inline void requireFinalStatus(const char* status) {
    if (!isFinalStatus(status))
        throw Error(DS_ERR_INVALID_ARGUMENT,
                    "complete status must be done or failed, not '" + str(status) + "'");
}

// A client row owned by the plugin while its ds_client_record view is handed to a callback.
struct ClientRow {
    std::string clientId, name, hostname, instanceId, monitors, capabilities;
    int64_t connectedAt = 0, lastPing = 0;
    ds_client_record record() const {
        ds_client_record r{};
        r.struct_size = sizeof(r);
        r.client_id = clientId.c_str();
        r.name = name.c_str();
        r.hostname = hostname.c_str();
        r.instance_id = instanceId.c_str();
        r.monitors_json = monitors.c_str();
        r.capabilities_json = capabilities.c_str();
        r.connected_at_ms = connectedAt;
        r.last_ping_ms = lastPing;
        return r;
    }
};

struct CommandRow {
    std::string id, clientId, type, data, status;
    std::optional<std::string> target, result, origin;
    int64_t createdAt = 0, deliveredAt = 0, completedAt = 0, claimedUntil = 0;
    int32_t attempts = 0;
    int64_t seq = 0;  // per-desktop delivery order (not part of the ABI record)
    ds_command_record record() const {
        ds_command_record r{};
        r.struct_size = sizeof(r);
        r.id = id.c_str();
        r.client_id = clientId.c_str();
        r.command_type = type.c_str();
        r.command_data_json = data.c_str();
        r.target_instance_id = target ? target->c_str() : nullptr;
        r.status = status.c_str();
        r.result_json = result ? result->c_str() : nullptr;
        r.origin = origin ? origin->c_str() : nullptr;
        r.created_at_ms = createdAt;
        r.delivered_at_ms = deliveredAt;
        r.completed_at_ms = completedAt;
        r.claimed_until_ms = claimedUntil;
        r.attempts = attempts;
        return r;
    }
};

// Claimed commands are handed out in the desktop's seq order (docs/stores.md, "Command order"),
// whatever order the SQL's RETURNING gave.
inline void sortInDeliveryOrder(std::vector<CommandRow>& rows) {
    std::sort(rows.begin(), rows.end(), [](const CommandRow& a, const CommandRow& b) {
        return a.seq != b.seq ? a.seq < b.seq : a.id < b.id;
    });
}

struct InstanceRow {
    std::string instanceId, publicUrl;
    int64_t startedAt = 0, lastSeen = 0;
    ds_instance_record record() const {
        ds_instance_record r{};
        r.struct_size = sizeof(r);
        r.instance_id = instanceId.c_str();
        r.public_url = publicUrl.c_str();
        r.started_at_ms = startedAt;
        r.last_seen_ms = lastSeen;
        return r;
    }
};

inline void validateClient(const ds_client_record& r) { requireId(r.client_id, "client_id"); }

inline void validateCommand(const ds_command_record& r) {
    requireId(r.id, "command id");
    requireId(r.client_id, "command client_id");
    if (!r.command_type || !*r.command_type)
        throw Error(DS_ERR_INVALID_ARGUMENT, "command_type is missing");
}

inline void validateLease(int64_t leaseMs, uint32_t maxCount) {
    if (leaseMs <= 0) throw Error(DS_ERR_INVALID_ARGUMENT, "lease_ms must be > 0");
    if (maxCount == 0) throw Error(DS_ERR_INVALID_ARGUMENT, "max_count must be > 0");
}

}  // namespace deskstream::stores
