#include "deskstream/host/services.hpp"

#include "deskstream/host/host.hpp"
#include "deskstream/agent/agent.hpp"

#include <Poco/Environment.h>

#include <Poco/Logger.h>
#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/SocketAddress.h>

#include <vector>

namespace deskstream::host {

namespace {

class JsonHandler : public Poco::Net::HTTPRequestHandler {
public:
    JsonHandler(Poco::Net::HTTPResponse::HTTPStatus status, std::string body)
        : status_(status), body_(std::move(body)) {}
    void handleRequest(Poco::Net::HTTPServerRequest &, Poco::Net::HTTPServerResponse &response) override {
        response.setStatus(status_);
        response.setContentType("application/json");
        response.setContentLength(static_cast<std::streamsize>(body_.size()));
        response.set("Cache-Control", "no-store");
        response.send() << body_;
    }

private:
    Poco::Net::HTTPResponse::HTTPStatus status_;
    std::string body_;
};

class Factory : public Poco::Net::HTTPRequestHandlerFactory {
public:
    Poco::Net::HTTPRequestHandler *createRequestHandler(const Poco::Net::HTTPServerRequest &request) override {
        using S = Poco::Net::HTTPResponse;
        std::string path = request.getURI().substr(0, request.getURI().find('?'));
        if (path == "/healthz") {
            if (request.getMethod() != "GET" && request.getMethod() != "HEAD")
                return new JsonHandler(S::HTTP_METHOD_NOT_ALLOWED, "{\"error\":\"method not allowed\"}");
            return new JsonHandler(S::HTTP_OK, "{\"status\":\"ok\"}");
        }
        return new JsonHandler(S::HTTP_NOT_FOUND, "{\"error\":\"not found\"}");
    }
};

} // namespace

HealthService::HealthService(const Configuration &config, const PluginRegistry &plugins)
    : config_(config), plugins_(plugins) {}

HealthService::~HealthService() { stop(); }

void HealthService::start() {
    RelayConfig relay = config_.relay();
    const PluginInfo &store = plugins_.require(DS_KIND_STORE, relay.store, "[relay] store");
    store_ = std::make_unique<StoreInstance>(store, config_.poco());
    store_->check();

    Poco::Net::ServerSocket socket;
    try {
        // SO_REUSEADDR for quick restarts, but not SO_REUSEPORT: a second process must not share
        // the port silently.
        socket.bind(Poco::Net::SocketAddress(relay.listenHost, relay.listenPort), true, false);
        socket.listen(64);
    } catch (const Poco::Exception &e) {
        throw std::runtime_error("[relay] listen = " + relay.listenHost + ":" + std::to_string(relay.listenPort) +
                                 ": cannot listen: " + e.displayText());
    }
    port_ = socket.address().port();
    auto *params = new Poco::Net::HTTPServerParams;
    params->setMaxThreads(relay.maxThreads);
    params->setMaxQueued(relay.maxQueued);
    server_ = std::make_unique<Poco::Net::HTTPServer>(new Factory, socket, params);
    server_->start();
    Poco::Logger::get("host.http").information("listening on " + relay.listenHost + ":" + std::to_string(port_) +
                                               " (instance " + relay.instanceId + ", store " + store.name + ")");
}

void HealthService::stop() noexcept {
    try {
        if (server_) {
            // Stop accepting, then close the open connections ourselves (POCO-PITFALLS.md).
            server_->stopAll(true);
            server_.reset();
        }
    } catch (...) {
    }
    store_.reset();
}

AgentService::AgentService(const Configuration &config, const PluginRegistry &plugins)
    : config_(config), plugins_(plugins) {}

AgentService::~AgentService() { stop(); }

namespace {
agent::AgentOptions agentOptions(const AgentConfig &a, const HeartbeatConfig &hb) {
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
    return o;
}
} // namespace

void AgentService::start() {
    Poco::Logger &log = Poco::Logger::get("host.agent");
    AgentConfig agentConfig = config_.agent();
    std::string why;
    const PluginInfo &capturePlugin = selectCapture(plugins_, config_, why);
    log.information(why);
    const PluginInfo &encoderPlugin = plugins_.require(DS_KIND_ENCODER, agentConfig.encoder, "[agent] encoder");
    auto capture = std::make_unique<CaptureInstance>(capturePlugin, config_.poco());
    auto encoder = std::make_unique<EncoderInstance>(encoderPlugin, config_.poco());

    // One frame through both plugins proves the pair works before we claim to be running.
    std::vector<ds_monitor_info> monitors = capture->monitors();
    if (monitors.empty()) throw std::runtime_error("capture plugin '" + capturePlugin.name + "' reports no monitor");
    {
        CaptureInstance::Frame frame;
        uint32_t first = agentConfig.monitors.empty() ? monitors.front().index : agentConfig.monitors.front();
        if (capture->grab(first, 1000, frame) == DS_OK) {
            ds_encode_params params{};
            params.struct_size = sizeof params;
            params.quality = agentConfig.quality;
            params.keyframe = 1;
            ds_encoded out = encoder->encode(*frame, params);
            log.information("agent ready: capture '" + capturePlugin.name + "' (" + std::to_string(monitors.size()) +
                            " monitor(s), " + std::to_string(frame->width) + "x" + std::to_string(frame->height) +
                            "), encoder '" + encoderPlugin.name + "' (first frame " + std::to_string(out.size) +
                            " bytes)");
        }
    }
    const PluginRegistry &plugins = plugins_;
    const Configuration &config = config_;
    agent::EncoderFactory factory = [&plugins, &config](const std::string &name) {
        const PluginInfo &p = plugins.require(DS_KIND_ENCODER, name, "set_config encoder");
        return std::make_unique<EncoderInstance>(p, config.poco());
    };
    runtime_ = std::make_unique<agent::AgentRuntime>(agentOptions(agentConfig, config_.heartbeat()),
                                                     std::move(capture), std::move(encoder), factory);
    runtime_->start();
}

void AgentService::stop() noexcept {
    try {
        if (runtime_) {
            runtime_->stop();
            if (runtime_->exitCode() != 0) fatal_ = runtime_->fatalReason();
        }
        runtime_.reset();  // destroys the capture and encoder instances
    } catch (...) {
    }
}

std::string AgentService::fatalError() const {
    if (runtime_ && runtime_->exitCode() != 0) return runtime_->fatalReason();
    return fatal_;
}

} // namespace deskstream::host
