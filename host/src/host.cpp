#include "deskstream/host/host.hpp"

#include "deskstream/host/instances.hpp"
#include "deskstream/host/services.hpp"
#include "deskstream/core/metrics.hpp"

#include <Poco/Logger.h>

#include <filesystem>

namespace deskstream::host {

Host::Host(const Configuration& config) : config_(config) {}

Host::~Host() { stop(); }

void Host::loadPlugins() { plugins_.scan(config_.host().pluginsPath); }

void Host::addDefaultServices() {
    HostConfig h = config_.host();
    // The relay first: in role all the agent connects to it as soon as it starts. Both then
    // share one metrics registry, so the relay's /metrics shows the agent's series too.
    std::shared_ptr<core::metrics::Registry> shared;
    if (h.runsRelay() && h.runsAgent()) shared = std::make_shared<core::metrics::Registry>();
    if (h.runsRelay()) addService(std::make_unique<RelayService>(config_, plugins_, shared));
    if (h.runsAgent()) addService(std::make_unique<AgentService>(config_, plugins_, shared));
}

void Host::addService(std::unique_ptr<Service> service) { services_.push_back(std::move(service)); }

Service* Host::service(const std::string& name) const {
    for (const auto& s : services_)
        if (s->name() == name) return s.get();
    return nullptr;
}

std::string Host::fatalError() const {
    for (const auto& s : services_) {
        std::string why = s->fatalError();
        if (!why.empty()) return s->name() + ": " + why;
    }
    return {};
}

void Host::start() {
    Poco::Logger& log = Poco::Logger::get("host");
    std::error_code ec;
    std::string stateDir = config_.host().stateDir;
    std::filesystem::create_directories(stateDir, ec);
    if (ec)
        throw std::runtime_error("[host] state_dir '" + stateDir +
                                 "' cannot be created: " + ec.message());
    for (; started_ < services_.size(); ++started_) {
        Service& s = *services_[started_];
        try {
            s.start();
        } catch (...) {
            s.stop();  // a partly started service releases what it holds
            stop();
            throw;
        }
        log.information("service '" + s.name() + "' started");
    }
}

void Host::stop() noexcept {
    while (started_ > 0) {
        Service& s = *services_[--started_];
        s.stop();
        try {
            Poco::Logger::get("host").information("service '" + s.name() + "' stopped");
        } catch (...) {}
    }
}

const PluginInfo& selectCapture(const PluginRegistry& plugins, const Configuration& config,
                                std::string& why) {
    std::string wanted = config.agent().capture;
    if (wanted != "auto") {
        const PluginInfo& p = plugins.require(DS_KIND_CAPTURE, wanted, "[agent] capture");
        std::string reason = probeCapture(p, config.poco());
        if (!reason.empty())
            throw std::runtime_error("[agent] capture = " + wanted +
                                     ": the plugin says it cannot work here: " + reason);
        why = "capture '" + p.name + "' chosen by [agent] capture";
        return p;
    }
    // One log line per plugin passed over, with its probe's reason (docs/capture.md).
    Poco::Logger& log = Poco::Logger::get("host.agent");
    std::string rejected, skipped;
    for (const PluginInfo* p : plugins.ofKind(DS_KIND_CAPTURE)) {
        std::string reason = probeCapture(*p, config.poco());
        if (reason.empty()) {
            why = "capture auto: chose '" + p->name + "' (rank " + std::to_string(p->rank) +
                  (p->capture.probe ? ", probe succeeded" : ", has no probe") + ")" +
                  (skipped.empty() ? "" : "; skipped " + skipped);
            return *p;
        }
        log.information("capture auto: skipped '" + p->name + "' (rank " + std::to_string(p->rank) +
                        "): " + reason);
        skipped += (skipped.empty() ? "" : ", ") + p->name;
        rejected += (rejected.empty() ? "" : "; ") + p->name + " (rank " + std::to_string(p->rank) +
                    "): " + reason;
    }
    std::string folders;
    for (const auto& f : plugins.folders()) folders += (folders.empty() ? "" : ", ") + f;
    throw std::runtime_error("[agent] capture = auto: no capture plugin can work here" +
                             (rejected.empty()
                                  ? std::string(" (none is loaded; searched ") + folders + ")"
                                  : ": " + rejected));
}

}  // namespace deskstream::host
