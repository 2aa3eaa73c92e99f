// MaintenanceJobs: the reaper and the notification listener (see maintenance.hpp).
#include "maintenance.hpp"

#include <chrono>

namespace deskstream::relay {

namespace {
int64_t wallNowMs() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}
}  // namespace

void MaintenanceJobs::start(Settings settings) {
    stop();
    settings_ = std::move(settings);
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stopping_ = false;
    }
    reaper_ = std::thread([this] { reaperLoop(); });
    if (store_.client().hasNotifications())
        notifications_ = std::thread([this] { notificationLoop(); });
}

void MaintenanceJobs::stop() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stopping_ = true;
    }
    cv_.notify_all();
    if (reaper_.joinable()) reaper_.join();
    if (notifications_.joinable()) notifications_.join();
}

void MaintenanceJobs::reap() {
    metrics_.reaperRun();
    const int64_t now = wallNowMs();
    const StoreClient& store = store_.client();
    StoreStatus st = store.upsertInstance(
        InstanceRecord{settings_.instanceId, settings_.publicUrl, settings_.startedAtMs, now});
    if (!st.ok()) store_.error("upsert_instance", st);
    uint32_t n = 0;
    st = store.reapClients(now - settings_.registrationTtlMs, "", n);
    if (!st.ok())
        store_.error("reap_clients", st);
    else if (n) {
        counters_.count(Counter::RowsReaped, n);
        logger_.information("relay: reaped %u registrations older than %?d ms", n,
                            settings_.registrationTtlMs);
    }
    n = 0;
    st = store.expireCommands(now - settings_.commandTtlMs, now, n);
    if (!st.ok())
        store_.error("expire_commands", st);
    else if (n)
        counters_.count(Counter::CommandsExpired, n);
    if (st.ok() && n)
        metrics_.commandFinished("", "expired", n);  // the store does not say which types
    purgeFinishedCommands(now);
    commands_.onTick(now);
    // Redelivery of claims whose lease ran out (lost sends, crashed peers).
    for (const auto& id : agents_.localAgents()) commands_.deliverPending(id, wallNowMs());
}

// Finished commands older than [relay] command.retention_ms are deleted (store ABI 1.1). A 1.0
// store cannot purge: that is said once, and its rows are kept.
void MaintenanceJobs::purgeFinishedCommands(int64_t now) {
    uint32_t n = 0;
    StoreStatus st = store_.client().purgeCommands(now - settings_.commandRetentionMs, n);
    if (st.code == DS_ERR_UNSUPPORTED) {
        if (!purgeSkipLogged_)
            logger_.information("relay: purging finished commands skipped: %s", st.message);
        purgeSkipLogged_ = true;
    } else if (!st.ok()) {
        store_.error("purge_commands", st);
    } else if (n) {
        logger_.information("relay: purged %u finished commands older than %?d ms", n,
                            settings_.commandRetentionMs);
    }
}

void MaintenanceJobs::reaperLoop() {
    // Sleeps a whole interval (no polling); stop() wakes it.
    std::unique_lock<std::mutex> lock(mutex_);
    while (!stopping_) {
        cv_.wait_for(lock, std::chrono::milliseconds(settings_.reaperIntervalMs),
                     [&] { return stopping_; });
        if (stopping_) break;
        lock.unlock();
        try {
            reap();
        } catch (const std::exception& e) {
            logger_.error("relay: maintenance failed: %s", std::string(e.what()));
        }
        lock.lock();
    }
}

void MaintenanceJobs::notificationLoop() {
    for (;;) {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            if (stopping_) return;
        }
        std::vector<std::string> ids;
        StoreStatus st = store_.client().pollNotifications(250, ids);
        if (st.code < 0) {
            store_.error("poll_notifications", st);
            std::unique_lock<std::mutex> lock(mutex_);
            cv_.wait_for(lock, std::chrono::seconds(1), [&] { return stopping_; });
            continue;
        }
        // No-op for desktops not connected here.
        for (const auto& id : ids) commands_.deliverPending(id, wallNowMs());
    }
}

}  // namespace deskstream::relay
