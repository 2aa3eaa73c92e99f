#include "deskstream/host/services.hpp"

#include "deskstream/host/host.hpp"
#include "deskstream/agent/agent.hpp"
#include "deskstream/core/types.hpp"
#include "deskstream/relay/process_metrics.hpp"
#include "deskstream/relay/relay.hpp"
#include "deskstream/host/version.hpp"
#include "metrics_endpoint.hpp"

#include <Poco/Environment.h>

#include <Poco/Logger.h>
#include <Poco/Util/LayeredConfiguration.h>
#include <Poco/Util/MapConfiguration.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/URI.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

namespace deskstream::host {

namespace fs = std::filesystem;

namespace {

const char* contentType(const std::string& path) {
    static const std::pair<const char*, const char*> types[] = {
        {".html", "text/html; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".json", "application/json"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".ico", "image/x-icon"}};
    for (const auto& t : types)
        if (path.size() >= std::strlen(t.first) &&
            path.compare(path.size() - std::strlen(t.first), std::string::npos, t.first) == 0)
            return t.second;
    return "application/octet-stream";
}

// Serves GET/HEAD of the viewer page (/), the dashboard (/dashboard) and files of web_root.
// Paths are resolved inside web_root only: ".." or links leading outside are not served.
relay::HttpFallback staticFiles(const std::string& webRoot) {
    return [webRoot](Poco::Net::HTTPServerRequest& req,
                     Poco::Net::HTTPServerResponse& resp) -> bool {
        if (req.getMethod() != "GET" && req.getMethod() != "HEAD") return false;
        std::string path = Poco::URI(req.getURI()).getPath();
        if (path == "/")
            path = "/index.html";
        else if (path == "/dashboard")
            path = "/dashboard.html";
        std::error_code ec;
        fs::path root = fs::weakly_canonical(webRoot, ec);
        fs::path file = fs::weakly_canonical(root / fs::path(path).relative_path(), ec);
        if (ec || file.string().rfind(root.string() + "/", 0) != 0 || !fs::is_regular_file(file)) {
            if (path != "/index.html") return false;  // 404 JSON from the relay
            std::string body =
                "<!doctype html><title>deskstream</title><p>The viewer files were not found in "
                "[relay] web_root = " +
                webRoot + ".</p>";
            resp.setStatusAndReason(Poco::Net::HTTPResponse::HTTP_NOT_FOUND);
            resp.setContentType("text/html; charset=utf-8");
            resp.sendBuffer(body.data(), body.size());
            return true;
        }
        std::ifstream in(file, std::ios::binary);
        std::string body((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        resp.setStatus(Poco::Net::HTTPResponse::HTTP_OK);
        resp.setContentType(contentType(file.string()));
        resp.set("Cache-Control", "no-cache");
        resp.set("X-Content-Type-Options", "nosniff");
        if (req.getMethod() == "HEAD") {
            resp.setContentLength(static_cast<std::streamsize>(body.size()));
            resp.send();
        } else {
            resp.sendBuffer(body.data(), body.size());
        }
        return true;
    };
}

std::vector<std::string> splitList(const std::vector<std::string>& items) {
    std::vector<std::string> out;
    for (const auto& item : items) {
        std::stringstream ss(item);
        std::string part;
        while (std::getline(ss, part, ',')) {
            part.erase(0, part.find_first_not_of(" \t"));
            part.erase(part.find_last_not_of(" \t") + 1);
            if (!part.empty()) out.push_back(part);
        }
    }
    return out;
}

// The relay's instance id when [relay] instance_id is not set: kept in the state folder, so a
// restarted relay recognises (and removes at start-up) the registrations its previous run left
// behind. Two relays on one machine need distinct state folders or explicit ids.
std::string persistentInstanceId(const std::string& stateDir, const std::string& fresh) {
    Poco::Logger& log = Poco::Logger::get("host.relay");
    const fs::path file = fs::path(stateDir) / "relay-instance-id";
    std::ifstream in(file);
    std::string id;
    if (in && std::getline(in, id) && core::isValidId(id)) return id;
    std::ofstream out(file, std::ios::trunc);
    out << fresh << "\n";
    if (!out)
        log.warning(
            "cannot keep the relay instance id in " + file.string() +
            ": a restart will not recognise this run's registrations (the reaper removes them)");
    return fresh;
}

relay::RelayOptions relayOptions(const RelayConfig& r, const HeartbeatConfig& hb,
                                 const AuthConfig& auth) {
    relay::RelayOptions o;
    o.listen = r.listenHost + ":" + std::to_string(r.listenPort);
    o.publicUrl = r.publicUrl;
    o.instanceId = r.instanceId;
    o.maxMessageBytes = r.maxMessageBytes;
    o.viewerQueue = r.viewerQueue;
    o.reaperIntervalMs = r.reaperIntervalMs;
    o.registrationTtlMs = r.registrationTtlMs;
    o.maxViewers = r.maxViewers;
    o.commandTtlMs = r.commandTtlMs;
    o.commandRetentionMs = r.commandRetentionMs;
    o.commandLeaseMs = r.commandLeaseMs;
    o.viewerAckTimeoutMs = r.viewerAckTimeoutMs;
    o.tlsCert = r.tlsCert;
    o.tlsKey = r.tlsKey;
    o.receiveTimeoutMs = r.frameTimeoutMs;
    o.httpMaxThreads = r.maxThreads;
    o.ioThreads = r.ioThreads;
    o.httpMaxQueued = r.maxQueued;
    o.httpIdleTimeoutMs = r.httpIdleTimeoutMs;
    o.healthListen = r.healthListen;
    o.heartbeatIntervalMs = hb.intervalMs;
    o.missedLimit = hb.missedLimit;
    o.handshakeTimeoutMs = hb.handshakeTimeoutMs;
    o.authSecret = auth.secret;
    o.allowedOrigins = splitList(auth.allowedOrigins);
    o.maxConnectionsPerIp = auth.maxConnectionsPerIp;
    o.authFailuresPerMinute = auth.authFailuresPerMinute;
    o.authBackoffMs = auth.authBackoffMs;
    o.authBackoffMaxMs = auth.authBackoffMaxMs;
    o.inputPerSecond = auth.inputPerSecond;
    o.commandsPerMinute = auth.commandsPerMinute;
    o.httpCommandsPerMinute = auth.httpCommandsPerMinute;
    o.httpFallback = staticFiles(r.webRoot);
    return o;
}

}  // namespace

RelayService::RelayService(const Configuration& config, const PluginRegistry& plugins,
                           std::shared_ptr<core::metrics::Registry> metrics)
    : config_(config), plugins_(plugins), metrics_(std::move(metrics)) {}

RelayService::~RelayService() { stop(); }

void RelayService::start() {
    RelayConfig r = config_.relay();
    if (config_.get("relay", "instance_id").value_or("").empty())
        r.instanceId = persistentInstanceId(config_.host().stateDir, r.instanceId);
    const PluginInfo& storePlugin = plugins_.require(DS_KIND_STORE, r.store, "[relay] store");
    store_ = std::make_unique<StoreInstance>(storePlugin, config_.poco());
    store_->check();
    relay::RelayOptions options = relayOptions(r, config_.heartbeat(), config_.auth());
    // With TLS and no public_url of the user's, the default (http://) would advertise the wrong
    // scheme: the relay derives https://host:port instead.
    const std::vector<std::string> relayKeys = config_.userKeys("relay");
    if (!r.tlsCert.empty() &&
        std::find(relayKeys.begin(), relayKeys.end(), "public_url") == relayKeys.end())
        options.publicUrl.clear();
    options.metrics = metrics_;
    relay_ = std::make_unique<relay::Relay>(std::move(options), &store_->vtable(), store_->handle(),
                                            Poco::Logger::get("relay"));
    relay_->start();
    port_ = relay_->port();
}

void RelayService::stop() noexcept {
    try {
        if (relay_) relay_->stop();  // closes every connection, then the server
        relay_.reset();
    } catch (...) {}
    store_.reset();  // after the relay: it does not own the store instance
}

AgentService::AgentService(const Configuration& config, const PluginRegistry& plugins,
                           std::shared_ptr<core::metrics::Registry> metrics)
    : config_(config), plugins_(plugins), metrics_(std::move(metrics)) {}

uint16_t AgentService::metricsPort() const {
    return metricsEndpoint_ ? metricsEndpoint_->port() : 0;
}

AgentService::~AgentService() { stop(); }

namespace {
agent::AgentOptions agentOptions(const AgentConfig& a, const HeartbeatConfig& hb) {
    agent::AgentOptions o;
    o.relayUrl = a.relayUrl;
    o.clientId = a.clientId;
    o.name = a.name;
    o.hostname = Poco::Environment::nodeName();
    o.token = a.token;
    o.flow.fps = a.fps;
    o.flow.quality = a.quality;
    o.flow.qualityMin = a.qualityMin;
    o.flow.qualityMax = a.qualityMax;
    o.flow.maxInFlight = a.maxInFlight;
    o.flow.highLatencyMs = a.adaptHighLatencyMs;
    o.flow.lowLatencyMs = a.adaptLowLatencyMs;
    o.flow.stepDown = a.adaptStepDown;
    o.flow.stepUp = a.adaptStepUp;
    o.allMonitors = a.monitors.empty();
    for (uint32_t m : a.monitors) o.monitors.push_back(static_cast<int>(m));
    o.combined = a.layout == Layout::Combined;
    o.heartbeatInterval = std::chrono::milliseconds(hb.intervalMs);
    o.missedLimit = hb.missedLimit;
    o.tlsCa = a.tlsCa;
    o.tlsInsecure = a.tlsInsecure;
    o.damageEncoding = a.damageEncoding;
    o.damage.tile = static_cast<std::uint32_t>(a.damageTile);
    o.damage.maxRects = static_cast<std::size_t>(a.damageMaxRects);
    o.damage.classifier.maxColours = static_cast<std::size_t>(a.damageMaxColours);
    o.damage.videoFrames = a.damageVideoFrames;
    o.damage.refine = a.damageRefineMs > 0;
    o.damage.refineAfter = std::chrono::milliseconds(a.damageRefineMs);
    return o;
}
}  // namespace

// The encoder for damage encoding's text and UI regions: the plugin's own section with
// lossless = true on top (the webp plugin's key; a plugin without it ignores it).
std::shared_ptr<EncoderInstance> AgentService::losslessEncoder(const std::string& name) const {
    const PluginInfo& p =
        plugins_.require(DS_KIND_ENCODER, name, "[agent] damage.lossless_encoder");
    Poco::AutoPtr<Poco::Util::MapConfiguration> forced(new Poco::Util::MapConfiguration);
    forced->setString("encoder." + name + ".lossless", "true");
    Poco::AutoPtr<Poco::Util::LayeredConfiguration> layered(new Poco::Util::LayeredConfiguration);
    layered->add(forced, -1);  // first: wins over the file
    layered->add(Poco::AutoPtr<Poco::Util::AbstractConfiguration>(
                     const_cast<Poco::Util::AbstractConfiguration*>(&config_.poco()), true),
                 0);
    return std::make_shared<EncoderInstance>(p, *layered);
}

void AgentService::start() {
    Poco::Logger& log = Poco::Logger::get("host.agent");
    AgentConfig agentConfig = config_.agent();
    std::string why;
    const PluginInfo& capturePlugin = selectCapture(plugins_, config_, why);
    log.information(why);
    const PluginInfo& encoderPlugin =
        plugins_.require(DS_KIND_ENCODER, agentConfig.encoder, "[agent] encoder");
    auto capture = std::make_unique<CaptureInstance>(capturePlugin, config_.poco());
    auto encoder = std::make_unique<EncoderInstance>(encoderPlugin, config_.poco());

    std::vector<ds_monitor_info> monitors = capture->monitors();
    if (monitors.empty())
        throw std::runtime_error("capture plugin '" + capturePlugin.name + "' reports no monitor");
    const PluginRegistry& plugins = plugins_;
    const Configuration& config = config_;
    agent::EncoderFactory factory = [&plugins, &config](const std::string& name) {
        const PluginInfo& p = plugins.require(DS_KIND_ENCODER, name, "set_config encoder");
        return std::make_unique<EncoderInstance>(p, config.poco());
    };
    agent::AgentOptions options = agentOptions(agentConfig, config_.heartbeat());
    // Role all: the relay's registry, so its /metrics shows the agent too. Alone: its own, with
    // the process figures, served on [agent] metrics_listen (docs/operations.md).
    std::shared_ptr<core::metrics::Registry> registry = metrics_;
    if (!registry && !agentConfig.metricsListen.empty()) {
        registry = std::make_shared<core::metrics::Registry>();
        relay::exposeProcessMetrics(*registry, version());
    } else if (registry && !agentConfig.metricsListen.empty()) {
        log.information(
            "[agent] metrics_listen is not used in role all: the agent's metrics are on the "
            "relay's "
            "/metrics");
    }
    options.metrics = registry;
    if (agentConfig.damageEncoding && !agentConfig.damageLosslessEncoder.empty()) {
        // A missing plugin costs sharpness, not the stream: the main encoder takes over.
        if (plugins_.find(DS_KIND_ENCODER, agentConfig.damageLosslessEncoder))
            options.losslessEncoder = losslessEncoder(agentConfig.damageLosslessEncoder);
        else
            log.warning("[agent] damage.lossless_encoder: no encoder plugin named '" +
                        agentConfig.damageLosslessEncoder +
                        "' is loaded; text and UI regions go "
                        "through '" +
                        encoderPlugin.name + "' at quality 100 (not exact)");
    }
    runtime_ = std::make_unique<agent::AgentRuntime>(std::move(options), std::move(capture),
                                                     std::move(encoder), factory);
    // Bound before the runtime starts: a taken port fails start-up with nothing left running.
    if (!metrics_ && !agentConfig.metricsListen.empty()) {
        metricsEndpoint_ = std::make_unique<MetricsEndpoint>(agentConfig.metricsListen, registry);
        log.information("agent metrics on http://" +
                        agentConfig.metricsListen.substr(0, agentConfig.metricsListen.rfind(':')) +
                        ":" + std::to_string(metricsEndpoint_->port()) + "/metrics");
    }
    // start() pushes one frame through both plugins (the pair works) and keeps it as the
    // monitor's last frame, so it is not lost to a probe here (docs/agent.md).
    runtime_->start();
    const agent::FirstFrame first = runtime_->firstFrame();
    if (first.captured)
        log.information("agent ready: capture '" + capturePlugin.name + "' (" +
                        std::to_string(monitors.size()) + " monitor(s), " +
                        std::to_string(first.width) + "x" + std::to_string(first.height) +
                        "), encoder '" + encoderPlugin.name + "' (first frame " +
                        std::to_string(first.bytes) + " bytes)");
}

void AgentService::stop() noexcept {
    try {
        if (runtime_) {
            runtime_->stop();
            if (runtime_->exitCode() != 0) fatal_ = runtime_->fatalReason();
        }
        metricsEndpoint_.reset();
        runtime_.reset();  // destroys the capture and encoder instances
    } catch (...) {}
}

std::string AgentService::fatalError() const {
    if (runtime_ && runtime_->exitCode() != 0) return runtime_->fatalReason();
    return fatal_;
}

}  // namespace deskstream::host
