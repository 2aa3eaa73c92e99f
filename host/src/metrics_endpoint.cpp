// The agent's own GET /metrics (see metrics_endpoint.hpp).
#include "metrics_endpoint.hpp"

#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/SocketAddress.h>

#include <stdexcept>

namespace deskstream::host {

namespace {

class MetricsHandler : public Poco::Net::HTTPRequestHandler {
public:
    explicit MetricsHandler(std::shared_ptr<core::metrics::Registry> registry)
        : registry_(std::move(registry)) {}
    void handleRequest(Poco::Net::HTTPServerRequest& req,
                       Poco::Net::HTTPServerResponse& resp) override {
        const std::string path = req.getURI().substr(0, req.getURI().find('?'));
        if (path != "/metrics" || (req.getMethod() != "GET" && req.getMethod() != "HEAD")) {
            resp.setStatus(Poco::Net::HTTPResponse::HTTP_NOT_FOUND);
            resp.setContentType("text/plain; charset=utf-8");
            resp.send() << "not found: this endpoint serves GET /metrics only\n";
            return;
        }
        const std::string body = registry_->render();
        resp.setContentType(core::metrics::Registry::kContentType);
        resp.setContentLength(static_cast<std::streamsize>(body.size()));
        auto& out = resp.send();
        if (req.getMethod() == "GET") out << body;
    }

private:
    std::shared_ptr<core::metrics::Registry> registry_;
};

class Factory : public Poco::Net::HTTPRequestHandlerFactory {
public:
    explicit Factory(std::shared_ptr<core::metrics::Registry> registry)
        : registry_(std::move(registry)) {}
    Poco::Net::HTTPRequestHandler* createRequestHandler(
        const Poco::Net::HTTPServerRequest&) override {
        return new MetricsHandler(registry_);
    }

private:
    std::shared_ptr<core::metrics::Registry> registry_;
};

}  // namespace

MetricsEndpoint::MetricsEndpoint(const std::string& listen,
                                 std::shared_ptr<core::metrics::Registry> registry) {
    Poco::Net::ServerSocket socket;
    try {
        socket.bind(Poco::Net::SocketAddress(listen), true);
        socket.listen(16);
    } catch (const Poco::Exception& e) {
        throw std::runtime_error("[agent] metrics_listen " + listen +
                                 ": cannot listen: " + e.displayText());
    }
    port_ = socket.address().port();
    auto* params = new Poco::Net::HTTPServerParams;
    params->setMaxThreads(2);  // a scraper or two; each request is answered at once
    params->setMaxQueued(16);
    params->setKeepAlive(false);
    params->setTimeout(Poco::Timespan(5, 0));
    server_ =
        std::make_unique<Poco::Net::HTTPServer>(new Factory(std::move(registry)), socket, params);
    server_->start();
}

MetricsEndpoint::~MetricsEndpoint() {
    try {
        server_->stopAll(true);  // no long-lived connections here: stop accepting and close
    } catch (...) {}
}

}  // namespace deskstream::host
