// The embedding API: one deskstream host in a process. A vendor program builds a
// Configuration, creates a Host, adds services of its own if it likes, then start()/stop().
//
//     deskstream::host::Configuration config;
//     config.loadFile("deskstream.ini");
//     deskstream::host::Host host(config);
//     host.loadPlugins();            // scans [host] plugins.path
//     host.addDefaultServices();     // by [host] role
//     host.start();                  // throws std::exception with the reason
//     ...
//     host.stop();
#pragma once

#include "deskstream/host/config.hpp"
#include "deskstream/host/plugin_registry.hpp"
#include "deskstream/host/service.hpp"

#include <memory>
#include <string>
#include <vector>

namespace deskstream::host {

class Host {
public:
    // `config` is referenced, not copied: it must outlive the Host.
    explicit Host(const Configuration& config);
    ~Host();  // stops what is running
    Host(const Host&) = delete;
    Host& operator=(const Host&) = delete;

    // Scans the folders of [host] plugins.path into the registry.
    void loadPlugins();
    // Adds the services of the configured role: the HTTP service for relay|all, the agent
    // bootstrap for agent|all.
    void addDefaultServices();
    void addService(std::unique_ptr<Service> service);
    // Starts every service in order; on failure stops those already started and rethrows.
    void start();
    void stop() noexcept;

    const Configuration& config() const { return config_; }
    PluginRegistry& plugins() { return plugins_; }
    const PluginRegistry& plugins() const { return plugins_; }
    Service* service(const std::string& name) const;
    // "<service>: <reason>" of the first service that ended by itself, "" while all run.
    std::string fatalError() const;

private:
    const Configuration& config_;
    PluginRegistry plugins_;
    std::vector<std::unique_ptr<Service>> services_;
    size_t started_ = 0;
};

// Picks the capture plugin for [agent] capture: the named one, or for "auto" the highest-ranked
// plugin whose probe() succeeds. `why` receives a one-line explanation of the choice.
// Throws std::runtime_error when nothing fits (message lists each candidate and its reason).
const PluginInfo& selectCapture(const PluginRegistry& plugins, const Configuration& config,
                                std::string& why);

}  // namespace deskstream::host
