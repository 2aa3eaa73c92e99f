// deskstream relay network layer: HTTP + WebSocket server on Poco::Net::HTTPServer.
//
//   deskstream::relay::RelayOptions options;            // from [relay] [heartbeat] [auth]
//   options.listen = "127.0.0.1:8080";
//   deskstream::relay::Relay relay(options, storeVtable, storeInstance, logger);
//   relay.start();   // throws std::runtime_error with the reason (bad listen, no secret on a
//                    // non-loopback address, store refusing the instance row...)
//   ...
//   relay.stop();    // closes every connection (1001), stops the server; also done by ~Relay
//
// The relay does not own the store instance: destroy it after stop(). See docs/relay.md.
#pragma once

#include "deskstream/plugin.h"
#include "deskstream/relay/options.hpp"
#include "deskstream/relay/store_client.hpp"

#include <cstdint>
#include <map>
#include <memory>
#include <string>

namespace Poco {
class Logger;
}

namespace deskstream::relay {

class RelayImpl;

class Relay {
public:
    // `logger` must outlive the relay. The store instance must be thread-safe (plugin.h).
    Relay(RelayOptions options, const ds_store_vtable* storeVtable, void* storeInstance,
          Poco::Logger& logger);
    Relay(RelayOptions options, StoreClient store, Poco::Logger& logger);
    ~Relay();
    Relay(const Relay&) = delete;
    Relay& operator=(const Relay&) = delete;

    void start();
    void stop();
    bool running() const;

    // The bound port (useful with listen port 0) and this instance's id.
    uint16_t port() const;
    // The bound port of [relay] health_listen; 0 when it is off.
    uint16_t healthPort() const;
    const std::string& instanceId() const;
    const RelayOptions& options() const;

    // Snapshot of the per-relay counters (name -> value), e.g. "bad_json", "heartbeat_timeouts".
    std::map<std::string, uint64_t> counters() const;
    // Connections currently open by role.
    size_t agentCount() const;
    size_t viewerCount() const;

private:
    std::unique_ptr<RelayImpl> impl_;
};

}  // namespace deskstream::relay
