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
namespace deskstream::core::metrics {
class Registry;
}

namespace deskstream::host {

class MetricsEndpoint;

// The relay ([relay], [heartbeat], [auth]): opens the configured store plugin and runs the
// relay (host/relay) on [relay] listen, serving the viewer page and dashboard from
// [relay] web_root.
class RelayService : public Service {
public:
    // `metrics`: the registry /metrics serves (role all shares it with the agent); null: its own.
    RelayService(const Configuration& config, const PluginRegistry& plugins,
                 std::shared_ptr<core::metrics::Registry> metrics = nullptr);
    ~RelayService() override;
    std::string name() const override { return "relay"; }
    void start() override;
    void stop() noexcept override;
    uint16_t port() const { return port_; }  // the bound port (useful with listen port 0)
    relay::Relay* relay() const { return relay_.get(); }

private:
    const Configuration& config_;
    const PluginRegistry& plugins_;
    std::unique_ptr<StoreInstance> store_;
    std::unique_ptr<relay::Relay> relay_;
    std::shared_ptr<core::metrics::Registry> metrics_;
    uint16_t port_ = 0;
};

// The streaming agent ([agent] section): creates the configured capture and encoder plugins,
// proves the pair with one frame, then runs the agent runtime (host/agent) against
// [agent] relay_url until stopped. fatalError() is set when the relay refused the registration.
class AgentService : public Service {
public:
    // `metrics`: the relay's registry in role all (the agent's series join its /metrics); null:
    // the agent alone, serving its own on [agent] metrics_listen when that is set.
    AgentService(const Configuration& config, const PluginRegistry& plugins,
                 std::shared_ptr<core::metrics::Registry> metrics = nullptr);
    ~AgentService() override;
    std::string name() const override { return "agent"; }
    void start() override;
    void stop() noexcept override;
    std::string fatalError() const override;
    // The running agent (for statistics and embedding); null before start().
    agent::AgentRuntime* runtime() const { return runtime_.get(); }
    // The port of [agent] metrics_listen's server; 0 when it is off.
    uint16_t metricsPort() const;

private:
    std::shared_ptr<EncoderInstance> losslessEncoder(const std::string& name) const;

    const Configuration& config_;
    const PluginRegistry& plugins_;
    std::shared_ptr<core::metrics::Registry> metrics_;
    std::unique_ptr<MetricsEndpoint> metricsEndpoint_;  // [agent] metrics_listen; null: off
    std::unique_ptr<agent::AgentRuntime> runtime_;
    std::string fatal_;  // kept after stop()
};

}  // namespace deskstream::host
