// MaintenanceJobs: the relay's background work, on two threads of its own.
//   * the reaper, every reaper_interval_ms: refreshes this instance's row, removes
//     registrations older than registration_ttl_ms (any instance's), expires old commands,
//     purges finished commands older than command.retention_ms (store ABI 1.1), forgets stale
//     result routes and redelivers commands whose lease ran out;
//   * the notification listener (when the store has notifications): a command stored for an
//     agent connected here, by any instance, is delivered at once.
// The jobs receive what they work on (store bridge, agent directory, command delivery) as
// parameters; they know nothing of sessions or the registry's lock.
#pragma once

#include "command_delivery.hpp"
#include "parts.hpp"
#include "relay_metrics.hpp"
#include "store_bridge.hpp"

#include <Poco/Logger.h>

#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

namespace deskstream::relay {

class MaintenanceJobs {
public:
    struct Settings {
        std::string instanceId;
        std::string publicUrl;
        int64_t startedAtMs = 0;
        int64_t reaperIntervalMs = 30000;
        int64_t registrationTtlMs = 90000;
        int64_t commandTtlMs = 60000;
        int64_t commandRetentionMs = 604800000;
    };
    MaintenanceJobs(const StoreBridge& store, const AgentDirectory& agents,
                    CommandDelivery& commands, Counters& counters, RelayMetrics& metrics,
                    Poco::Logger& logger)
        : store_(store),
          agents_(agents),
          commands_(commands),
          counters_(counters),
          metrics_(metrics),
          logger_(logger) {}
    ~MaintenanceJobs() { stop(); }

    void start(Settings settings);
    void stop();  // joins both threads; idempotent
    // One reaper pass now (also what the reaper thread runs).
    void reap();

private:
    void reaperLoop();
    void notificationLoop();
    void purgeFinishedCommands(int64_t now);

    const StoreBridge& store_;
    const AgentDirectory& agents_;
    CommandDelivery& commands_;
    Counters& counters_;
    RelayMetrics& metrics_;
    Poco::Logger& logger_;
    Settings settings_;
    bool purgeSkipLogged_ = false;  // reaper thread only: the 1.0-store notice is logged once
    std::mutex mutex_;
    std::condition_variable cv_;
    bool stopping_ = false;
    std::thread reaper_;
    std::thread notifications_;
};

}  // namespace deskstream::relay
