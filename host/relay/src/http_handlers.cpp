// HTTP routes of the relay: WebSocket upgrades (handed to a Session) and the JSON API.
#include "http_handlers.hpp"

#include "relay_impl.hpp"
#include "session.hpp"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/WebSocket.h>

#include <sstream>

namespace deskstream::relay {

namespace {

using Poco::Net::HTTPResponse;
using Poco::Net::HTTPServerRequest;
using Poco::Net::HTTPServerResponse;

constexpr std::streamsize kDiscardLimit = 4 * 1024 * 1024;

void sendJson(HTTPServerResponse &resp, HTTPResponse::HTTPStatus status, const std::string &body) {
    resp.setStatus(status);
    resp.setContentType("application/json");
    resp.set("Cache-Control", "no-store");
    resp.setContentLength(static_cast<std::streamsize>(body.size()));
    resp.send() << body;
}

void sendError(RelayImpl &relay, HTTPServerResponse &resp, HTTPResponse::HTTPStatus status,
               core::ErrorCode code, const std::string &message) {
    relay.count(Counter::HttpErrors);
    sendJson(resp, status, core::serializeError(core::makeError(code, "", message)));
}

Poco::Dynamic::Var parseOr(const std::string &json, Poco::Dynamic::Var fallback) {
    try {
        Poco::JSON::Parser parser;
        return parser.parse(json);
    } catch (...) {
        return fallback;
    }
}

class WebSocketRoute : public Poco::Net::HTTPRequestHandler {
public:
    WebSocketRoute(RelayImpl &relay, Session::Kind kind) : relay_(relay), kind_(kind) {}

    void handleRequest(HTTPServerRequest &req, HTTPServerResponse &resp) override {
        const auto role = kind_ == Session::Kind::Agent ? RelayMetrics::Role::Agent
                                                        : RelayMetrics::Role::Viewer;
        if (!relay_.accepting()) {
            relay_.metrics().connectionOpened(role, RelayMetrics::Opened::ShuttingDown);
            sendError(relay_, resp, HTTPResponse::HTTP_SERVICE_UNAVAILABLE, core::ErrorCode::Internal,
                      "relay is shutting down");
            return;
        }
        const auto &allowed = relay_.options().allowed_origins;
        if (!allowed.empty() && req.has("Origin")) {
            // Poco checks only Upgrade/Version/Key: Origin is ours to check (browsers send it).
            const std::string origin = req.get("Origin");
            if (std::find(allowed.begin(), allowed.end(), origin) == allowed.end()) {
                relay_.count(Counter::AuthFailures);
                relay_.metrics().connectionOpened(role, RelayMetrics::Opened::ForbiddenOrigin);
                sendError(relay_, resp, HTTPResponse::HTTP_FORBIDDEN, core::ErrorCode::Unauthorized,
                          "origin not allowed");
                return;
            }
        }
        const bool viewer = kind_ == Session::Kind::Viewer;
        if (viewer && !relay_.reserveViewer()) {
            relay_.metrics().connectionOpened(role, RelayMetrics::Opened::OverCapacity);
            sendError(relay_, resp, HTTPResponse::HTTP_SERVICE_UNAVAILABLE,
                      core::ErrorCode::RateLimited,
                      "too many viewers (max_viewers = " +
                          std::to_string(relay_.options().max_viewers) + ")");
            return;
        }
        // The slot is released however this handler ends.
        struct Release {
            RelayImpl *relay;
            ~Release() {
                if (relay) relay->releaseViewer();
            }
        } release{viewer ? &relay_ : nullptr};
        std::unique_ptr<Poco::Net::WebSocket> ws;
        try {
            ws = std::make_unique<Poco::Net::WebSocket>(req, resp);
        } catch (const Poco::Net::WebSocketException &e) {
            if (e.code() == Poco::Net::WebSocket::WS_ERR_HANDSHAKE_UNSUPPORTED_VERSION)
                resp.set("Sec-WebSocket-Version", Poco::Net::WebSocket::WEBSOCKET_VERSION);
            relay_.metrics().connectionOpened(role, RelayMetrics::Opened::BadUpgrade);
            sendError(relay_, resp, HTTPResponse::HTTP_BAD_REQUEST, core::ErrorCode::BadRequest,
                      "WebSocket upgrade required: " + e.message());
            return;
        }
        relay_.metrics().connectionOpened(role, RelayMetrics::Opened::Accepted);
        auto session = std::make_shared<Session>(relay_, kind_, std::move(ws));
        session->run();
    }

private:
    RelayImpl &relay_;
    Session::Kind kind_;
};

class JsonRoute : public Poco::Net::HTTPRequestHandler {
public:
    explicit JsonRoute(RelayImpl &relay) : relay_(relay) {}

    void handleRequest(HTTPServerRequest &req, HTTPServerResponse &resp) override {
        try {
            route(req, resp);
        } catch (const std::exception &e) {
            relay_.log().error("relay: HTTP %s %s failed: %s", req.getMethod(), req.getURI(),
                               std::string(e.what()));
            if (!resp.sent())
                sendError(relay_, resp, HTTPResponse::HTTP_INTERNAL_SERVER_ERROR,
                          core::ErrorCode::Internal, "internal error");
        }
    }

private:
    void route(HTTPServerRequest &req, HTTPServerResponse &resp) {
        std::string path = req.getURI();
        const auto q = path.find('?');
        if (q != std::string::npos) path.resize(q);
        const std::string &method = req.getMethod();
        const bool get = method == "GET" || method == "HEAD";

        if (path == "/healthz") {
            if (!get) return methodNotAllowed(resp);
            return sendJson(resp, HTTPResponse::HTTP_OK, "{\"status\":\"ok\"}");
        }
        if (path == "/readyz") {
            if (!get) return methodNotAllowed(resp);
            StoreStatus st = relay_.store().check();
            Poco::JSON::Object o;
            o.set("startedAt", relay_.startedAtMs()); // the dashboard's relay uptime
            o.set("serverTime", RelayImpl::wallNowMs());
            if (st.ok() && relay_.accepting()) {
                o.set("status", "ready");
                o.set("instanceId", relay_.instanceId());
                return sendJson(resp, HTTPResponse::HTTP_OK, stringify(o));
            }
            o.set("status", "unavailable");
            o.set("reason", st.ok() ? std::string("relay is shutting down")
                                    : "store check failed: " + st.describe());
            relay_.count(Counter::HttpErrors);
            return sendJson(resp, HTTPResponse::HTTP_SERVICE_UNAVAILABLE, stringify(o));
        }
        if (path == "/metrics") {
            if (!get) return methodNotAllowed(resp);
            return metrics(resp);
        }
        if (path == "/api/desktops") {
            if (!get) return methodNotAllowed(resp);
            return desktops(resp);
        }
        const std::string prefix = "/api/desktops/";
        const std::string suffix = "/commands";
        if (path.size() > prefix.size() + suffix.size() && path.rfind(prefix, 0) == 0 &&
            path.compare(path.size() - suffix.size(), suffix.size(), suffix) == 0) {
            if (method != "POST") return methodNotAllowed(resp);
            const std::string clientId =
                path.substr(prefix.size(), path.size() - prefix.size() - suffix.size());
            return postCommand(clientId, req, resp);
        }
        if (relay_.options().http_fallback && relay_.options().http_fallback(req, resp)) return;
        sendError(relay_, resp, HTTPResponse::HTTP_NOT_FOUND, core::ErrorCode::NotFound,
                  "no route for " + method + " " + path);
    }

    static std::string stringify(const Poco::JSON::Object &o) {
        std::ostringstream out;
        o.stringify(out);
        return out.str();
    }

    // Prometheus text format 0.0.4: every family of the relay's registry (docs/operations.md).
    void metrics(HTTPServerResponse &resp) {
        const std::string body = relay_.metrics().render();
        resp.setStatus(HTTPResponse::HTTP_OK);
        resp.setContentType(core::metrics::Registry::kContentType);
        resp.setContentLength(static_cast<std::streamsize>(body.size()));
        resp.send() << body;
    }

    void methodNotAllowed(HTTPServerResponse &resp) {
        sendError(relay_, resp, HTTPResponse::HTTP_METHOD_NOT_ALLOWED, core::ErrorCode::BadRequest,
                  "method not allowed");
    }

    void desktops(HTTPServerResponse &resp) {
        std::vector<ClientRecord> rows;
        StoreStatus st = relay_.store().listClients(rows);
        if (!st.ok()) {
            return sendError(relay_, resp, HTTPResponse::HTTP_SERVICE_UNAVAILABLE,
                             core::ErrorCode::Internal, "store unavailable: " + st.describe());
        }
        // Local viewer counts; desktops held by other instances show 0 here.
        auto local = relay_.locked([](const core::Registry &r) { return r.agents(); });
        Poco::JSON::Array::Ptr list = new Poco::JSON::Array;
        for (const auto &row : rows) {
            Poco::JSON::Object::Ptr d = new Poco::JSON::Object;
            d->set("clientId", row.clientId);
            d->set("name", row.name);
            d->set("hostname", row.hostname);
            d->set("instanceId", row.instanceId);
            d->set("monitors", parseOr(row.monitorsJson, Poco::JSON::Array::Ptr(new Poco::JSON::Array)));
            d->set("capabilities", parseOr(row.capabilitiesJson, Poco::JSON::Object::Ptr(new Poco::JSON::Object)));
            d->set("connectedAt", row.connectedAtMs);
            d->set("lastPing", row.lastPingMs);
            int viewers = 0;
            bool here = false;
            for (const auto &a : local) {
                if (a.clientId != row.clientId) continue;
                viewers = static_cast<int>(a.viewers);
                here = true;
                if (auto snap = relay_.streamSnapshot(a.conn)) addStats(*d, *snap);
            }
            d->set("viewers", viewers);
            d->set("local", here);
            list->add(d);
        }
        Poco::JSON::Object o;
        o.set("desktops", list);
        sendJson(resp, HTTPResponse::HTTP_OK, stringify(o));
    }

    // "stats" (the desktop's stream) and "viewerStats" (each subscribed viewer) of a local desktop.
    static void addStats(Poco::JSON::Object &d, const RelayImpl::StreamSnapshot &snap) {
        auto optional = [](Poco::JSON::Object &o, const char *key, const std::optional<int64_t> &v) {
            if (v) o.set(key, *v);
            else o.set(key, Poco::Dynamic::Var());
        };
        Poco::JSON::Object::Ptr s = new Poco::JSON::Object;
        s->set("fpsIn", snap.fanout.fpsIn);
        s->set("fpsOut", snap.fanout.fpsOut);
        optional(*s, "latencyP50Ms", snap.fanout.latencyP50Ms);
        optional(*s, "latencyP95Ms", snap.fanout.latencyP95Ms);
        s->set("framesIn", snap.fanout.framesIn);
        s->set("framesOut", snap.fanout.framesOut);
        s->set("dropsLagging", snap.fanout.drops);
        s->set("laggingViewers", static_cast<uint64_t>(snap.fanout.laggingViewers));
        s->set("acksToAgent", snap.fanout.acksToAgent);
        if (snap.agent) {  // the agent's own figures (agent_stats)
            s->set("quality", snap.agent->quality);
            s->set("fps", snap.agent->fps);
            s->set("inFlight", snap.agent->inFlight);
            s->set("framesEncoded", snap.agent->framesEncoded);
            s->set("framesSent", snap.agent->framesSent);
            s->set("dropsWindow", snap.agent->framesDroppedWindow);
            optional(*s, "ackLatencyMs", snap.agent->latencyMs);
        }
        d.set("stats", s);
        Poco::JSON::Array::Ptr viewers = new Poco::JSON::Array;
        for (const auto &[id, v] : snap.viewers) {
            Poco::JSON::Object::Ptr o = new Poco::JSON::Object;
            o->set("viewerId", id);
            o->set("fpsOut", v.fpsOut);
            optional(*o, "latencyP50Ms", v.latencyP50Ms);
            optional(*o, "latencyP95Ms", v.latencyP95Ms);
            o->set("delivered", v.delivered);
            o->set("acked", v.acked);
            o->set("dropsLagging", v.dropped);
            o->set("queued", static_cast<uint64_t>(v.queued));
            o->set("lagging", v.lagging);
            viewers->add(o);
        }
        d.set("viewerStats", viewers);
    }

    void postCommand(const std::string &clientId, HTTPServerRequest &req, HTTPServerResponse &resp) {
        const std::streamsize limit = static_cast<std::streamsize>(core::limits::kMaxControlMessageBytes);
        std::string body;
        std::istream &in = req.stream();
        char buf[4096];
        bool tooLarge = req.hasContentLength() && req.getContentLength64() > limit;
        while (!tooLarge && in) {
            in.read(buf, sizeof buf);
            body.append(buf, static_cast<size_t>(in.gcount()));
            tooLarge = static_cast<std::streamsize>(body.size()) > limit;
        }
        if (tooLarge) {
            // Read (and drop) a moderately large rest so the client sees our answer: closing
            // with unread bytes resets the connection before it reads the 413.
            std::streamsize discarded = 0;
            while (in && discarded < kDiscardLimit) {
                in.read(buf, sizeof buf);
                discarded += in.gcount();
            }
            resp.setKeepAlive(false);
            return sendError(relay_, resp, HTTPResponse::HTTP_REQUEST_ENTITY_TOO_LARGE,
                             core::ErrorCode::TooLarge,
                             "body larger than " + std::to_string(limit) + " bytes");
        }
        auto queued = relay_.queueCommand(relay_.prepareHttpCommand(clientId, body), 0);
        if (!queued.ok()) {
            const core::Error &e = queued.error();
            const auto status = e.code == core::ErrorCode::Internal
                                    ? HTTPResponse::HTTP_SERVICE_UNAVAILABLE
                                : e.code == core::ErrorCode::TooLarge
                                    ? HTTPResponse::HTTP_REQUEST_ENTITY_TOO_LARGE
                                : e.code == core::ErrorCode::NotFound ? HTTPResponse::HTTP_NOT_FOUND
                                                                      : HTTPResponse::HTTP_BAD_REQUEST;
            relay_.count(Counter::HttpErrors);
            return sendJson(resp, status, core::serializeError(e));
        }
        sendJson(resp, HTTPResponse::HTTP_ACCEPTED, core::serialize(core::Message{queued.value()}));
    }

    RelayImpl &relay_;
};

class Factory : public Poco::Net::HTTPRequestHandlerFactory {
public:
    explicit Factory(RelayImpl &relay) : relay_(relay) {}
    Poco::Net::HTTPRequestHandler *createRequestHandler(const HTTPServerRequest &req) override {
        relay_.count(Counter::HttpRequests);
        std::string path = req.getURI();
        const auto q = path.find('?');
        if (q != std::string::npos) path.resize(q);
        if (path == "/ws/agent") return new WebSocketRoute(relay_, Session::Kind::Agent);
        if (path == "/ws/viewer") return new WebSocketRoute(relay_, Session::Kind::Viewer);
        return new JsonRoute(relay_);
    }

private:
    RelayImpl &relay_;
};

} // namespace

Poco::Net::HTTPRequestHandlerFactory::Ptr makeHandlerFactory(RelayImpl &relay) {
    return new Factory(relay);
}

} // namespace deskstream::relay
