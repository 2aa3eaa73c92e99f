// CommandDelivery: store-first command routing between viewers/HTTP and agents (see the header).
#include "command_delivery.hpp"

#include <functional>

namespace deskstream::relay {

CommandDelivery::CommandDelivery(Settings settings, core::IdSource ids, const StoreBridge& store,
                                 const AgentDirectory& agents, Peers& peers, Counters& counters,
                                 RelayMetrics& metrics, Poco::Logger& logger)
    : settings_(std::move(settings)),
      store_(store),
      agents_(agents),
      peers_(peers),
      counters_(counters),
      metrics_(metrics),
      logger_(logger),
      router_(settings_.policy, std::move(ids)) {}

core::Result<core::CommandRecord> CommandDelivery::prepare(const core::CommandMessage& m,
                                                           const std::string& origin,
                                                           core::WallMs nowMs) const {
    const bool here = agents_.agentConn(m.desktopClientId).has_value();
    std::lock_guard<std::mutex> lock(mutex_);
    return router_.prepare(m.desktopClientId, m.commandId, m.command, origin, nowMs,
                           here ? settings_.instanceId : std::string());
}

core::Result<core::CommandRecord> CommandDelivery::prepareHttp(const std::string& clientId,
                                                               const std::string& body,
                                                               core::WallMs nowMs) const {
    const bool here = agents_.agentConn(clientId).has_value();
    std::lock_guard<std::mutex> lock(mutex_);
    return router_.prepareHttp(clientId, body, nowMs, here ? settings_.instanceId : std::string());
}

core::Result<core::CommandQueued> CommandDelivery::queue(
    const core::Result<core::CommandRecord>& prepared, core::ConnId originViewer,
    core::WallMs nowMs) {
    if (!prepared.ok()) return prepared.error();
    core::CommandRecord record = prepared.value();
    if (record.targetInstanceId.empty()) record.targetInstanceId = store_.holderOf(record.clientId);
    bool created = false;
    StoreStatus st = store_.client().enqueueCommand(record, created);
    if (!st.ok()) {
        store_.error("enqueue_command", st);
        return core::makeError(core::ErrorCode::Internal, "",
                               "the command could not be stored (" + st.describe() + ")");
    }
    if (!created) {
        // The id exists: an exact retry is idempotent, a different command under it is refused
        // (conflict), and the result stays with the origin stored with the first one.
        std::optional<CommandRecord> existing;
        st = store_.client().getCommand(record.id, existing);
        if (!st.ok() || !existing) {
            store_.error("get_command", st);
            return core::makeError(core::ErrorCode::Internal, "",
                                   "the command could not be stored (" + st.describe() + ")");
        }
        if (auto conflict = core::CommandRouter::conflictWith(record, *existing)) return *conflict;
        if (existing->origin != record.origin) originViewer = 0;
    }
    core::CommandQueued queued;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        queued = router_.onStored(record, originViewer, nowMs);
    }
    counters_.count(Counter::CommandsQueued);
    // Stored before acknowledged; delivered now when the agent is connected here. Otherwise
    // its instance is woken by the store's notification, or it waits for the next registration.
    if (agents_.agentConn(record.clientId)) deliverPending(record.clientId, nowMs);
    return queued;
}

void CommandDelivery::deliverPending(const std::string& clientId, core::WallMs now) {
    if (!agents_.agentConn(clientId)) return;
    std::lock_guard<std::mutex> order(
        deliveryLocks_[std::hash<std::string>{}(clientId) % deliveryLocks_.size()]);
    // Looked up again under the lock: the agent may have gone (or been replaced) meanwhile.
    const auto agent = agents_.agentConn(clientId);
    if (!agent) return;
    std::vector<CommandRecord> claimed;
    StoreStatus st =
        store_.client().claimCommands(clientId, now, settings_.policy.leaseMs, 64, claimed);
    if (!st.ok()) {
        store_.error("claim_commands", st);
        return;
    }
    for (const auto& r : claimed) {
        bool expire;
        core::Result<core::CommandMessage> msg = core::makeError(core::ErrorCode::Internal, "", "");
        {
            std::lock_guard<std::mutex> lock(mutex_);
            expire = router_.shouldExpire(r, now);
            if (!expire) msg = router_.deliveryMessage(r);
        }
        if (expire) {
            std::string reason;
            {
                std::lock_guard<std::mutex> lock(mutex_);
                reason = router_.expiryResultJson(r, now);
            }
            store_.client().completeCommand(r.id, "failed", reason, now);
            counters_.count(Counter::CommandsExpired);
            metrics_.commandFinished(r.commandType, "expired");
            continue;
        }
        if (!msg.ok()) {
            logger_.error("relay: stored command %s is unreadable: %s", r.id, msg.error().message);
            store_.client().completeCommand(
                r.id, "failed", "{\"status\":\"failed\",\"error\":\"unreadable command\"}", now);
            metrics_.commandFinished(r.commandType, "failed");
            continue;
        }
        // If this send is lost the lease expires and the command is claimed again.
        if (peers_.send(*agent, msg.value())) counters_.count(Counter::CommandsDelivered);
    }
}

core::Result<bool> CommandDelivery::onResult(const std::string& clientId,
                                             const core::CommandResult& result,
                                             core::WallMs nowMs) {
    core::Result<bool> stored = storeResult(clientId, result, nowMs);
    if (!stored.ok() && stored.error().code == core::ErrorCode::Internal)
        keepForRetry(UnstoredResult{clientId, result, nowMs});
    return stored;
}

void CommandDelivery::keepForRetry(UnstoredResult u) {
    const std::string id = u.result.commandId;
    bool kept = false;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        for (const auto& k : unstored_)
            if (k.result.commandId == id) return;  // the agent confirmed it again
        if (unstored_.size() < kMaxUnstoredResults) {
            unstored_.push_back(std::move(u));
            kept = true;
        }
    }
    if (kept)
        logger_.information("relay: result of command %s kept; stored when the store is back", id);
    else
        logger_.warning("relay: result of command %s not kept for a retry (%z already waiting)", id,
                        kMaxUnstoredResults);
}

core::Result<bool> CommandDelivery::storeResult(const std::string& clientId,
                                                const core::CommandResult& result,
                                                core::WallMs nowMs) {
    std::optional<CommandRecord> rec;
    StoreStatus st = store_.client().getCommand(result.commandId, rec);
    if (!st.ok() && st.code != DS_ERR_NOT_FOUND) {
        store_.error("get_command", st);
        return core::makeError(core::ErrorCode::Internal, "", "the result could not be stored");
    }
    if (!rec || rec->clientId != clientId)
        return core::makeError(core::ErrorCode::NotFound, "commandId",
                               "no command " + result.commandId + " for this desktop");
    st = store_.client().completeCommand(
        result.commandId, result.status == core::CommandStatus::Done ? "done" : "failed",
        core::CommandRouter::resultJson(result), nowMs);
    if (!st.ok()) {
        store_.error("complete_command", st);
        return core::makeError(core::ErrorCode::Internal, "", "the result could not be stored");
    }
    counters_.count(Counter::CommandResults);
    metrics_.commandFinished(rec->commandType,
                             result.status == core::CommandStatus::Done ? "done" : "failed");
    std::optional<core::CommandRouter::ResultRoute> route;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        route = router_.onResult(result, clientId);
    }
    if (route) peers_.send(route->viewer, route->message);
    return true;
}

void CommandDelivery::forgetViewer(core::ConnId viewer) {
    std::lock_guard<std::mutex> lock(mutex_);
    router_.forgetViewer(viewer);
}

void CommandDelivery::onTick(core::WallMs nowMs) {
    std::vector<UnstoredResult> retry;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        router_.onTick(nowMs);
        retry.swap(unstored_);
    }
    for (auto& u : retry) {
        // After a lease the command is claimed again and the agent confirms it again.
        if (nowMs - u.firstAtMs > settings_.policy.leaseMs) continue;
        core::Result<bool> stored = storeResult(u.clientId, u.result, nowMs);
        if (stored.ok() || stored.error().code != core::ErrorCode::Internal) continue;
        std::lock_guard<std::mutex> lock(mutex_);  // still unstored: keep it (no new log line)
        bool known = false;
        for (const auto& k : unstored_) known = known || k.result.commandId == u.result.commandId;
        if (!known && unstored_.size() < kMaxUnstoredResults) unstored_.push_back(std::move(u));
    }
}

}  // namespace deskstream::relay
