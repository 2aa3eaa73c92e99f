// The agent's own metrics endpoint ([agent] metrics_listen, when the agent runs without the
// relay): a small HTTP server that answers GET /metrics with one registry's text exposition and
// 404 for anything else (docs/operations.md, "Agent metrics").
#pragma once

#include "deskstream/core/metrics.hpp"

#include <Poco/Net/HTTPServer.h>

#include <cstdint>
#include <memory>
#include <string>

namespace deskstream::host {

class MetricsEndpoint {
public:
    /// Binds `listen` (host:port; port 0: any free port) at once; throws with the reason.
    MetricsEndpoint(const std::string& listen, std::shared_ptr<core::metrics::Registry> registry);
    ~MetricsEndpoint();
    MetricsEndpoint(const MetricsEndpoint&) = delete;
    MetricsEndpoint& operator=(const MetricsEndpoint&) = delete;

    uint16_t port() const { return port_; }

private:
    std::unique_ptr<Poco::Net::HTTPServer> server_;
    uint16_t port_ = 0;
};

}  // namespace deskstream::host
