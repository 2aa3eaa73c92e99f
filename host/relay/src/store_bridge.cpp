// StoreBridge: store error reporting and the store lookups of the relay (see store_bridge.hpp).
#include "store_bridge.hpp"

#include <chrono>
#include <vector>

namespace deskstream::relay {

void StoreBridge::error(const std::string& what, const StoreStatus& s) const {
    counters_.count(Counter::StoreErrors);
    const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
    int64_t last = lastErrorLogMs_.load();
    if (now - last >= 1000 && lastErrorLogMs_.compare_exchange_strong(last, now))
        logger_.error("relay: store %s failed: %s", what, s.describe());
}

std::string StoreBridge::holderOf(const std::string& clientId) const {
    std::vector<ClientRecord> rows;
    if (!client_.listClients(rows).ok()) return {};
    for (const auto& r : rows)
        if (r.clientId == clientId) return r.instanceId;
    return {};
}

std::string StoreBridge::indexedHolderOf(const std::string& clientId) const {
    std::lock_guard<std::mutex> lock(holdersMutex_);
    const auto now = std::chrono::steady_clock::now();
    if (!holdersValid_ || now - holdersAt_ >= std::chrono::milliseconds(kHolderIndexMs)) {
        std::vector<ClientRecord> rows;
        holdersAt_ = now;
        holders_.clear();
        holdersValid_ = client_.listClients(rows).ok();
        for (const auto& r : rows) holders_[r.clientId] = r.instanceId;
    }
    auto it = holders_.find(clientId);
    return it == holders_.end() ? std::string() : it->second;
}

std::string StoreBridge::viewerUrlOf(const std::string& instanceId) const {
    std::vector<InstanceRecord> rows;
    if (!client_.listInstances(rows).ok()) return {};
    for (const auto& r : rows) {
        if (r.instanceId != instanceId || r.publicUrl.empty()) continue;
        std::string url = r.publicUrl;
        if (url.rfind("https://", 0) == 0)
            url = "wss://" + url.substr(8);
        else if (url.rfind("http://", 0) == 0)
            url = "ws://" + url.substr(7);
        while (!url.empty() && url.back() == '/') url.pop_back();
        return url + "/ws/viewer";
    }
    return {};
}

}  // namespace deskstream::relay
