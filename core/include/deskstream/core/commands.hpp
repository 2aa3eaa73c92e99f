// deskstream core: command routing (relay side) and executed-command dedup (agent side).
//
// Relay flow for one command (viewer message or POST /api/desktops/{id}/commands):
//   1. prepare()/prepareHttp(): validate, assign a uuid when commandId is absent, build the
//      CommandRecord (status pending) for ds_store_vtable::enqueue_command.
//   2. host stores it; on success onStored() remembers the originating viewer and returns the
//      command_queued answer (the command is acknowledged only AFTER it is stored).
//   3. decideDelivery(): agent connected here -> claim_commands(lease) and send
//      deliveryMessage(record) to it; connected to another instance -> that instance is woken
//      (NOTIFY); nowhere -> it waits in the store for the agent's next registration.
//      On every agent registration the host claims and delivers its pending commands too.
//   4. agent's command_result: the host stores it (complete_command with resultJson()) and
//      onResult() says which viewer (if any, on this instance) gets the command_result.
// Delivery is at least once; the agent executes at most once thanks to CommandDedup.
#pragma once

#include "deskstream/core/protocol.hpp"
#include "deskstream/core/types.hpp"

#include <cstdint>
#include <list>
#include <optional>
#include <string>
#include <unordered_map>

namespace deskstream::core {

/// A row of desktop_commands, ready for the store (mirrors ds_command_record).
struct CommandRecord {
    std::string id;
    std::string clientId;
    std::string commandType;      // "set_config", ...
    std::string commandDataJson;  // canonical JSON of the command object
    std::string targetInstanceId;
    std::string status = "pending";  // pending | delivered | done | failed | expired
    std::string resultJson;
    std::string origin;  // viewerId or "http"
    WallMs createdAtMs = 0;
    WallMs deliveredAtMs = 0;
    WallMs completedAtMs = 0;
    WallMs claimedUntilMs = 0;
    int attempts = 0;
};

struct CommandPolicy {
    std::int64_t ttlMs = 300000;   // pending/delivered commands older than this expire
    std::int64_t leaseMs = 30000;  // claim lease: redelivered after this without a result
    int maxAttempts = 5;           // a command is delivered at most this many times
    std::size_t maxRoutes = 4096;  // remembered origin viewers awaiting a result (bounded)
};

enum class Delivery { DeliverHere, NotifyInstance, WaitForAgent };

class CommandRouter {
public:
    /// `ids` gives the id of a command that arrives without one (the host injects random
    /// UUIDs; without a source such a command is refused with `internal`).
    explicit CommandRouter(CommandPolicy policy = {}, IdSource ids = {});

    /// Validates ids and builds the pending record. commandId empty -> a fresh id from `ids`.
    /// Errors: bad_request naming the field (desktopClientId, commandId).
    Result<CommandRecord> prepare(const std::string& desktopClientId, const std::string& commandId,
                                  const Command& command, const std::string& origin, WallMs nowMs,
                                  const std::string& targetInstanceId = {}) const;

    /// Same from the HTTP body {"command":{...},"commandId":"<optional>"}; origin "http".
    Result<CommandRecord> prepareHttp(const std::string& desktopClientId, const std::string& body,
                                      WallMs nowMs, const std::string& targetInstanceId = {}) const;

    /// The store already held a command with `wanted.id`: a `conflict` error when it is not the
    /// same command (another desktop, type or data), nullopt for an exact (idempotent) retry.
    static std::optional<Error> conflictWith(const CommandRecord& wanted,
                                             const CommandRecord& stored);

    /// The record is stored: remember `originViewer` (0: none, e.g. HTTP) so the result goes
    /// back to it; returns the command_queued answer.
    CommandQueued onStored(const CommandRecord& record, ConnId originViewer, WallMs nowMs);

    /// Where the command should go. holderInstanceId: the instance holding the agent's
    /// registration according to the store ("" when unknown / not registered).
    Delivery decideDelivery(bool agentConnectedHere, const std::string& holderInstanceId,
                            const std::string& myInstanceId) const;

    /// The message to send to the agent for a claimed record (parses commandDataJson again,
    /// so a corrupt row gives an error instead of a bad message).
    Result<CommandMessage> deliveryMessage(const CommandRecord& record) const;

    /// JSON text stored as the result column ({"status":..,"error":..}).
    static std::string resultJson(const CommandResult& result);

    struct ResultRoute {
        ConnId viewer = 0;
        CommandResult message;  // desktopClientId filled in
    };
    /// The agent reported a result. Returns the viewer to inform when it is still waiting
    /// (route forgotten afterwards), nullopt otherwise.
    std::optional<ResultRoute> onResult(const CommandResult& result,
                                        const std::string& desktopClientId);

    /// The viewer closed: its pending routes are dropped.
    void forgetViewer(ConnId viewer);

    /// Drops routes older than the TTL; returns how many. Call now and then (e.g. reaper).
    std::size_t onTick(WallMs nowMs);

    /// Cut-off for ds_store_vtable::expire_commands(older_than_ms = expiryCutoff(now)).
    WallMs expiryCutoff(WallMs nowMs) const { return nowMs - policy_.ttlMs; }
    /// True when the record must not be delivered (again): too old or too many attempts.
    bool shouldExpire(const CommandRecord& record, WallMs nowMs) const;
    /// The result stored for a record shouldExpire() refused: names the rule that ended it
    /// ("not completed within the command TTL" or "no result after N deliveries").
    std::string expiryResultJson(const CommandRecord& record, WallMs nowMs) const;

    std::size_t routeCount() const { return routes_.size(); }
    const CommandPolicy& policy() const { return policy_; }

private:
    struct Route {
        ConnId viewer;
        WallMs since;
    };
    CommandPolicy policy_;
    IdSource ids_;
    std::unordered_map<std::string, Route> routes_;
    std::list<std::string> routeOrder_;  // oldest first, for the bound
};

/// Agent side: remembers the last `capacity` executed commandIds (LRU) so a redelivered
/// command is not executed twice. Memory is bounded by capacity.
class CommandDedup {
public:
    explicit CommandDedup(std::size_t capacity = 1024);
    /// True the first time `commandId` is seen (it is remembered); false for a duplicate
    /// (it becomes the most recent again).
    bool markExecuted(const std::string& commandId);
    bool seen(const std::string& commandId) const { return index_.count(commandId) != 0; }
    std::size_t size() const { return index_.size(); }
    std::size_t capacity() const { return capacity_; }

private:
    std::size_t capacity_;
    std::list<std::string> order_;  // most recent first
    std::unordered_map<std::string, std::list<std::string>::iterator> index_;
};

}  // namespace deskstream::core
