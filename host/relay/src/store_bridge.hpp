// StoreBridge: the relay's side of the store: the StoreClient (the only place the plugin
// ABI's C structs appear), error counting with a rate-limited log line, and the lookups that
// go to the shared store (which instance holds a desktop, where that instance is).
#pragma once

#include "deskstream/relay/store_client.hpp"
#include "parts.hpp"

#include <Poco/Logger.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <string>

namespace deskstream::relay {

class StoreBridge {
public:
    StoreBridge(StoreClient client, Counters& counters, Poco::Logger& logger)
        : client_(client), counters_(counters), logger_(logger) {}

    const StoreClient& client() const { return client_; }
    // A failed store call: counted; logged at most once per second (an outage would otherwise
    // log once per message).
    void error(const std::string& what, const StoreStatus& status) const;
    // Instance (from the store) holding `clientId`, "" when none.
    std::string holderOf(const std::string& clientId) const;
    // The same for a viewer's subscribe: looked up by key in an index of the store's rows
    // rebuilt at most every kHolderIndexMs, so subscribes (e.g. a viewer probing unknown ids,
    // issue 18.11) cost one store scan per interval, not one each. A desktop registered at
    // another instance within that interval may be missed once (the viewer gets not_found and
    // subscribes again on its next poll or desktop list).
    std::string indexedHolderOf(const std::string& clientId) const;
    static constexpr int64_t kHolderIndexMs = 250;
    // ws URL of the instance `instanceId` for redirects, "" when unknown.
    std::string viewerUrlOf(const std::string& instanceId) const;

private:
    StoreClient client_;
    Counters& counters_;
    Poco::Logger& logger_;
    mutable std::atomic<int64_t> lastErrorLogMs_{0};
    mutable std::mutex holdersMutex_;
    mutable std::map<std::string, std::string> holders_;  // clientId -> instanceId
    mutable std::chrono::steady_clock::time_point holdersAt_{};
    mutable bool holdersValid_ = false;
};

}  // namespace deskstream::relay
