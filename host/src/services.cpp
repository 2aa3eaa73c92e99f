#include "deskstream/host/services.hpp"

#include "deskstream/host/host.hpp"

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

AgentBootstrapService::AgentBootstrapService(const Configuration &config, const PluginRegistry &plugins)
    : config_(config), plugins_(plugins) {}

AgentBootstrapService::~AgentBootstrapService() { stop(); }

void AgentBootstrapService::start() {
    Poco::Logger &log = Poco::Logger::get("host.agent");
    AgentConfig agent = config_.agent();
    std::string why;
    const PluginInfo &capturePlugin = selectCapture(plugins_, config_, why);
    log.information(why);
    const PluginInfo &encoderPlugin = plugins_.require(DS_KIND_ENCODER, agent.encoder, "[agent] encoder");
    capture_ = std::make_unique<CaptureInstance>(capturePlugin, config_.poco());
    encoder_ = std::make_unique<EncoderInstance>(encoderPlugin, config_.poco());

    // One frame through both plugins proves the pair works before we claim to be running.
    std::vector<ds_monitor_info> monitors = capture_->monitors();
    if (monitors.empty()) throw std::runtime_error("capture plugin '" + capturePlugin.name + "' reports no monitor");
    for (uint32_t m : agent.monitors)
        if (m >= monitors.size())
            throw std::runtime_error("[agent] monitors names monitor " + std::to_string(m) + " but capture '" +
                                     capturePlugin.name + "' has " + std::to_string(monitors.size()));
    CaptureInstance::Frame frame;
    ds_status s = capture_->grab(agent.monitors.empty() ? 0 : agent.monitors.front(), 1000, frame);
    if (s == DS_OK) {
        ds_encode_params params{};
        params.struct_size = sizeof params;
        params.quality = agent.quality;
        params.keyframe = 1;
        ds_encoded out = encoder_->encode(*frame, params);
        log.information("agent ready: capture '" + capturePlugin.name + "' (" + std::to_string(monitors.size()) +
                        " monitor(s), " + std::to_string(frame->width) + "x" + std::to_string(frame->height) +
                        "), encoder '" + encoderPlugin.name + "' (first frame " + std::to_string(out.size) +
                        " bytes); streaming is not implemented yet");
    } else {
        log.warning("agent ready, but the first grab returned status " + std::to_string(s));
    }
}

void AgentBootstrapService::stop() noexcept {
    encoder_.reset();
    capture_.reset();
}

} // namespace deskstream::host
