// The services the host ships today.
#pragma once

#include "deskstream/host/config.hpp"
#include "deskstream/host/instances.hpp"
#include "deskstream/host/service.hpp"

#include <memory>
#include <string>

namespace deskstream::agent {
class AgentRuntime;
}

namespace Poco::Net {
class HTTPServer;
}

namespace deskstream::host {

// A small HTTP server on [relay] listen answering GET /healthz with {"status":"ok"}; it also
// opens the configured store so a bad [relay] store stops start-up. A placeholder for the
// relay (host/relay), which replaces it.
class HealthService : public Service {
public:
    HealthService(const Configuration &config, const PluginRegistry &plugins);
    ~HealthService() override;
    std::string name() const override { return "http"; }
    void start() override;
    void stop() noexcept override;
    uint16_t port() const { return port_; } // the bound port (useful with listen port 0)

private:
    const Configuration &config_;
    const PluginRegistry &plugins_;
    std::unique_ptr<StoreInstance> store_;
    std::unique_ptr<Poco::Net::HTTPServer> server_;
    uint16_t port_ = 0;
};

// The streaming agent ([agent] section): creates the configured capture and encoder plugins,
// proves the pair with one frame, then runs the agent runtime (host/agent) against
// [agent] relay_url until stopped. fatalError() is set when the relay refused the registration.
class AgentService : public Service {
public:
    AgentService(const Configuration &config, const PluginRegistry &plugins);
    ~AgentService() override;
    std::string name() const override { return "agent"; }
    void start() override;
    void stop() noexcept override;
    std::string fatalError() const override;
    // The running agent (for statistics and embedding); null before start().
    agent::AgentRuntime *runtime() const { return runtime_.get(); }

private:
    const Configuration &config_;
    const PluginRegistry &plugins_;
    std::unique_ptr<agent::AgentRuntime> runtime_;
    std::string fatal_;  // kept after stop()
};

} // namespace deskstream::host
