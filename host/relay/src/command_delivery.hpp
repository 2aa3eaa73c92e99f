// CommandDelivery: commands from viewers and HTTP to agents. Validates and stores a command
// before acknowledging it, delivers stored commands to an agent connected here (claim with a
// lease; redelivered when the lease runs out), stores results and routes them back to the
// viewer that asked. Rules in core::CommandRouter; registered agents come from AgentDirectory,
// connections are reached through Peers, the store through StoreBridge. Final statuses are
// counted by command type in RelayMetrics.
#pragma once

#include "deskstream/core/commands.hpp"
#include "parts.hpp"
#include "relay_metrics.hpp"
#include "store_bridge.hpp"

#include <Poco/Logger.h>

#include <array>
#include <mutex>
#include <string>
#include <vector>

namespace deskstream::relay {

class CommandDelivery {
public:
    struct Settings {
        std::string instanceId;
        core::CommandPolicy policy;
    };
    CommandDelivery(Settings settings, core::IdSource ids, const StoreBridge& store,
                    const AgentDirectory& agents, Peers& peers, Counters& counters,
                    RelayMetrics& metrics, Poco::Logger& logger);

    core::Result<core::CommandRecord> prepare(const core::CommandMessage& m,
                                              const std::string& origin, core::WallMs nowMs) const;
    core::Result<core::CommandRecord> prepareHttp(const std::string& clientId,
                                                  const std::string& body,
                                                  core::WallMs nowMs) const;
    // Stored + (when the agent is here) delivered. originViewer 0: HTTP.
    core::Result<core::CommandQueued> queue(const core::Result<core::CommandRecord>& prepared,
                                            core::ConnId originViewer, core::WallMs nowMs);
    // Claims and sends the stored commands of `clientId` when it is connected here, in the
    // store's seq order: claim and send happen under the desktop's delivery lock, so two threads
    // of this instance (HTTP post, notification, registration, maintenance) never interleave
    // one desktop's commands (docs/relay.md, "Command order").
    void deliverPending(const std::string& clientId, core::WallMs nowMs);
    // The agent `clientId` reported a result; stores it and informs the originating viewer.
    // A result the store could not take (database down) is kept and stored again by onTick
    // for up to one lease, so a command executed during an outage is not delivered a second
    // time once the database is back (docs/relay.md, "Commands").
    core::Result<bool> onResult(const std::string& clientId, const core::CommandResult& r,
                                core::WallMs nowMs);
    void forgetViewer(core::ConnId viewer);
    // Forgets result routes older than the TTL and retries unstored results (maintenance).
    void onTick(core::WallMs nowMs);

private:
    const Settings settings_;
    const StoreBridge& store_;
    const AgentDirectory& agents_;
    Peers& peers_;
    Counters& counters_;
    RelayMetrics& metrics_;
    Poco::Logger& logger_;
    struct UnstoredResult {
        std::string clientId;
        core::CommandResult result;
        core::WallMs firstAtMs;
    };
    static constexpr std::size_t kMaxUnstoredResults = 1024;
    core::Result<bool> storeResult(const std::string& clientId, const core::CommandResult& r,
                                   core::WallMs nowMs);
    void keepForRetry(UnstoredResult u);

    mutable std::mutex mutex_;  // guards router_ and unstored_ (never held across I/O)
    std::vector<UnstoredResult> unstored_;
    // Delivery locks, one stripe per hash of the clientId: held across a desktop's claim (store
    // I/O) and its sends. Bounded memory; two desktops in one stripe only wait for each other.
    std::array<std::mutex, 64> deliveryLocks_;
    core::CommandRouter router_;
};

}  // namespace deskstream::relay
