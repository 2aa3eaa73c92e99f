// The services the host ships today.
#pragma once

#include "deskstream/host/config.hpp"
#include "deskstream/host/instances.hpp"
#include "deskstream/host/service.hpp"

#include <memory>
#include <string>

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

// Creates the configured capture and encoder instances at start (so a misconfiguration stops
// start-up), grabs and encodes one frame as a smoke test, and holds them. The streaming agent
// itself is a later piece of work.
class AgentBootstrapService : public Service {
public:
    AgentBootstrapService(const Configuration &config, const PluginRegistry &plugins);
    ~AgentBootstrapService() override;
    std::string name() const override { return "agent"; }
    void start() override;
    void stop() noexcept override;
    CaptureInstance *capture() const { return capture_.get(); }
    EncoderInstance *encoder() const { return encoder_.get(); }

private:
    const Configuration &config_;
    const PluginRegistry &plugins_;
    std::unique_ptr<CaptureInstance> capture_;
    std::unique_ptr<EncoderInstance> encoder_;
};

} // namespace deskstream::host
