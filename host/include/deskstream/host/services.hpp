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
namespace deskstream::relay {
class Relay;
}


namespace deskstream::host {

// The relay ([relay], [heartbeat], [auth]): opens the configured store plugin and runs the
// relay (host/relay) on [relay] listen, serving the viewer page and dashboard from
// [relay] web_root.
class RelayService : public Service {
public:
    RelayService(const Configuration &config, const PluginRegistry &plugins);
    ~RelayService() override;
    std::string name() const override { return "relay"; }
    void start() override;
    void stop() noexcept override;
    uint16_t port() const { return port_; } // the bound port (useful with listen port 0)
    relay::Relay *relay() const { return relay_.get(); }

private:
    const Configuration &config_;
    const PluginRegistry &plugins_;
    std::unique_ptr<StoreInstance> store_;
    std::unique_ptr<relay::Relay> relay_;
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
