// HTTP routes of the relay: WebSocket upgrades (handed to a Session) and the JSON API.
#include "http_handlers.hpp"

#include "relay_impl.hpp"
#include "session.hpp"

#include "deskstream/core/auth.hpp"
#include "deskstream/core/log_limit.hpp"

#include <Poco/Base64Encoder.h>
#include <Poco/Buffer.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerRequestImpl.h>
#include <Poco/Net/HTTPServerSession.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/WebSocket.h>
#include <Poco/SHA1Engine.h>
#include <Poco/String.h>
#include <Poco/URI.h>

#include <algorithm>
#include <cctype>
#include <sstream>

namespace deskstream::relay {

namespace {

using Poco::Net::HTTPResponse;
using Poco::Net::HTTPServerRequest;
using Poco::Net::HTTPServerResponse;

constexpr std::streamsize kDiscardLimit = 4 * 1024 * 1024;

void sendJson(HTTPServerResponse& resp, HTTPResponse::HTTPStatus status, const std::string& body) {
    resp.setStatusAndReason(status);  // setStatus alone leaves the reason "OK" ("404 OK")
    resp.setContentType("application/json");
    resp.set("Cache-Control", "no-store");
    resp.setContentLength(static_cast<std::streamsize>(body.size()));
    resp.send() << body;
}

void sendError(RelayImpl& relay, HTTPServerResponse& resp, HTTPResponse::HTTPStatus status,
               core::ErrorCode code, const std::string& message) {
    relay.count(Counter::HttpErrors);
    sendJson(resp, status, core::serializeError(core::makeError(code, "", message)));
}

Poco::Dynamic::Var parseOr(const std::string& json, Poco::Dynamic::Var fallback) {
    try {
        Poco::JSON::Parser parser;
        return parser.parse(json);
    } catch (...) {
        return fallback;
    }
}

// The request's path without its query string: a query may carry a token, so it is never logged.
std::string pathOf(const std::string& uri) {
    const auto q = uri.find('?');
    return q == std::string::npos ? uri : uri.substr(0, q);
}

// Error lines of the HTTP routes, identical ones rate-limited (one line with a count).
class HttpLog {
public:
    explicit HttpLog(RelayImpl& relay) : relay_(relay) {}
    enum class Level { Warning, Error };
    // `key` groups identical events; `line` must not contain a query string.
    void log(Level level, const std::string& key, const std::string& line) {
        std::optional<uint64_t> suppressed;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            suppressed = limiter_.onEvent(key, RelayImpl::monoNow());
        }
        if (!suppressed) return;
        const std::string text =
            *suppressed ? line + " (and " + std::to_string(*suppressed) + " more like it)" : line;
        if (level == Level::Error)
            relay_.log().error(text);
        else
            relay_.log().warning(text);
    }

private:
    RelayImpl& relay_;
    std::mutex mutex_;
    core::LogRepeatLimiter limiter_{std::chrono::seconds(10)};
};

// A request whose URI does not decode (e.g. "/%zz"): 400, one rate-limited line, no URI echoed.
class BadUriRoute : public Poco::Net::HTTPRequestHandler {
public:
    BadUriRoute(RelayImpl& relay, HttpLog& log) : relay_(relay), log_(log) {}
    void handleRequest(HTTPServerRequest& req, HTTPServerResponse& resp) override {
        log_.log(HttpLog::Level::Warning, "malformed-uri",
                 "relay: HTTP " + req.getMethod() + " with a malformed URI from " +
                     req.clientAddress().host().toString() + " refused (400)");
        sendError(relay_, resp, HTTPResponse::HTTP_BAD_REQUEST, core::ErrorCode::BadRequest,
                  "malformed URI");
    }

private:
    RelayImpl& relay_;
    HttpLog& log_;
};

// The opening handshake (RFC 6455 4.2.1), checked before anything is answered: Poco 1.11 checks
// only Upgrade, Connection, Version and that a key is present (docs/poco-pitfalls.md).
struct UpgradeCheck {
    bool ok = false;
    bool wrongVersion = false;  // answered with Sec-WebSocket-Version: 13
    std::string problem;        // the 400 answer's message
    std::string key;
};

// A Sec-WebSocket-Key is base64 of 16 bytes: 22 base64 digits and "==".
bool isWebSocketKey(const std::string& key) {
    if (key.size() != 24 || key[22] != '=' || key[23] != '=') return false;
    return std::all_of(key.begin(), key.begin() + 22, [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '/';
    });
}

UpgradeCheck checkUpgrade(const HTTPServerRequest& req) {
    UpgradeCheck c;
    if (!req.hasToken("Connection", "upgrade") ||
        Poco::icompare(req.get("Upgrade", ""), "websocket") != 0) {
        c.problem = "WebSocket upgrade required: No WebSocket handshake";
    } else if (req.getMethod() != Poco::Net::HTTPRequest::HTTP_GET) {
        c.problem = "WebSocket upgrade must use GET";
    } else if (req.getVersion() != Poco::Net::HTTPMessage::HTTP_1_1) {
        c.problem = "WebSocket upgrade needs HTTP/1.1";
    } else if (req.get("Sec-WebSocket-Version", "") != Poco::Net::WebSocket::WEBSOCKET_VERSION) {
        c.wrongVersion = true;
        c.problem = "WebSocket upgrade: unsupported or missing Sec-WebSocket-Version (13 expected)";
    } else {
        c.key = Poco::trim(req.get("Sec-WebSocket-Key", ""));
        if (!isWebSocketKey(c.key)) {
            c.problem = "WebSocket upgrade: Sec-WebSocket-Key must be base64 of 16 bytes";
        } else {
            c.ok = true;
        }
    }
    return c;
}

// Answers 101 and takes the socket from the HTTP server: the relay speaks WebSocket itself
// (ws_connection.hpp). `early` receives the bytes the HTTP layer already read past the request.
Poco::Net::StreamSocket acceptUpgrade(HTTPServerRequest& req, HTTPServerResponse& resp,
                                      const std::string& key, std::vector<std::uint8_t>& early) {
    Poco::SHA1Engine sha1;
    sha1.update(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11");  // RFC 6455 4.2.2
    const Poco::DigestEngine::Digest& digest = sha1.digest();
    std::ostringstream accept;
    {
        Poco::Base64Encoder encoder(accept);
        encoder.write(reinterpret_cast<const char*>(digest.data()),
                      static_cast<std::streamsize>(digest.size()));
        encoder.close();
    }
    resp.setStatusAndReason(HTTPResponse::HTTP_SWITCHING_PROTOCOLS);
    resp.set("Upgrade", "websocket");
    resp.set("Connection", "Upgrade");
    resp.set("Sec-WebSocket-Accept", accept.str());
    resp.setContentLength(HTTPResponse::UNKNOWN_CONTENT_LENGTH);
    resp.send().flush();
    auto& impl = static_cast<Poco::Net::HTTPServerRequestImpl&>(req);
    Poco::Net::StreamSocket socket = impl.detachSocket();
    Poco::Buffer<char> buffered(0);
    impl.session().drainBuffer(buffered);
    early.assign(buffered.begin(), buffered.end());
    return socket;
}

class WebSocketRoute : public Poco::Net::HTTPRequestHandler {
public:
    WebSocketRoute(RelayImpl& relay, Session::Kind kind) : relay_(relay), kind_(kind) {}

    void handleRequest(HTTPServerRequest& req, HTTPServerResponse& resp) override {
        const auto role =
            kind_ == Session::Kind::Agent ? RelayMetrics::Role::Agent : RelayMetrics::Role::Viewer;
        if (!relay_.accepting()) {
            relay_.metrics().connectionOpened(role, RelayMetrics::Opened::ShuttingDown);
            sendError(relay_, resp, HTTPResponse::HTTP_SERVICE_UNAVAILABLE,
                      core::ErrorCode::Internal, "relay is shutting down");
            return;
        }
        const auto& allowed = relay_.options().allowedOrigins;
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
            sendError(
                relay_, resp, HTTPResponse::HTTP_SERVICE_UNAVAILABLE, core::ErrorCode::RateLimited,
                "too many viewers (max_viewers = " + std::to_string(relay_.options().maxViewers) +
                    ")");
            return;
        }
        // The slot is released however this handler ends.
        struct Release {
            RelayImpl* relay;
            ~Release() {
                if (relay) relay->releaseViewer();
            }
        } release{viewer ? &relay_ : nullptr};
        const UpgradeCheck check = checkUpgrade(req);
        if (!check.ok) {
            if (check.wrongVersion)
                resp.set("Sec-WebSocket-Version", Poco::Net::WebSocket::WEBSOCKET_VERSION);
            relay_.metrics().connectionOpened(role, RelayMetrics::Opened::BadUpgrade);
            sendError(relay_, resp, HTTPResponse::HTTP_BAD_REQUEST, core::ErrorCode::BadRequest,
                      check.problem);
            return;
        }
        std::vector<std::uint8_t> early;
        Poco::Net::StreamSocket socket = acceptUpgrade(req, resp, check.key, early);
        relay_.metrics().connectionOpened(role, RelayMetrics::Opened::Accepted);
        auto session =
            std::make_shared<Session>(relay_, kind_, std::move(socket), std::move(early));
        session->run();
    }

private:
    RelayImpl& relay_;
    Session::Kind kind_;
};

class JsonRoute : public Poco::Net::HTTPRequestHandler {
public:
    JsonRoute(RelayImpl& relay, HttpLog& log) : relay_(relay), log_(log) {}

    void handleRequest(HTTPServerRequest& req, HTTPServerResponse& resp) override {
        try {
            route(req, resp);
        } catch (const std::exception& e) {
            const std::string what = req.getMethod() + " " + pathOf(req.getURI());
            log_.log(HttpLog::Level::Error, what + e.what(),
                     "relay: HTTP " + what + " failed: " + e.what());
            if (!resp.sent())
                sendError(relay_, resp, HTTPResponse::HTTP_INTERNAL_SERVER_ERROR,
                          core::ErrorCode::Internal, "internal error");
        }
    }

private:
    void route(HTTPServerRequest& req, HTTPServerResponse& resp) {
        std::string path = req.getURI();
        const auto q = path.find('?');
        if (q != std::string::npos) path.resize(q);
        const std::string& method = req.getMethod();
        const bool get = method == "GET" || method == "HEAD";

        if (path == "/healthz") {
            if (!get) return methodNotAllowed(resp);
            return sendJson(resp, HTTPResponse::HTTP_OK, "{\"status\":\"ok\"}");
        }
        if (path == "/readyz") {
            if (!get) return methodNotAllowed(resp);
            StoreStatus st = relay_.store().check();
            Poco::JSON::Object o;
            o.set("startedAt", relay_.startedAtMs());  // the dashboard's relay uptime
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
        if (path == "/api" || path.rfind("/api/", 0) == 0) {
            if (!authorized(req, resp)) return;
            return api(path, method, req, resp);
        }
        if (relay_.options().httpFallback && relay_.options().httpFallback(req, resp)) return;
        sendError(relay_, resp, HTTPResponse::HTTP_NOT_FOUND, core::ErrorCode::NotFound,
                  "no route for " + method + " " + path);
    }

    // /api/*: the token was checked already.
    void api(const std::string& path, const std::string& method, HTTPServerRequest& req,
             HTTPServerResponse& resp) {
        const bool get = method == "GET" || method == "HEAD";
        if (path == "/api/desktops") {
            if (!get) return methodNotAllowed(resp);
            return desktops(resp);
        }
        // /api/desktops/{id}/commands and /api/desktops/{id}/commands/{commandId}
        const std::string prefix = "/api/desktops/";
        const std::string middle = "/commands";
        if (path.rfind(prefix, 0) == 0) {
            const std::string rest = path.substr(prefix.size());
            const auto slash = rest.find('/');
            if (slash != std::string::npos && slash > 0 &&
                rest.compare(slash, middle.size(), middle) == 0) {
                const std::string clientId = rest.substr(0, slash);
                const std::string tail = rest.substr(slash + middle.size());
                if (tail.empty()) {
                    if (method != "POST") return methodNotAllowed(resp);
                    if (!postAllowed(req, resp)) return;
                    return postCommand(clientId, req, resp);
                }
                if (tail.size() > 1 && tail[0] == '/' && tail.find('/', 1) == std::string::npos) {
                    if (!get) return methodNotAllowed(resp);
                    return getCommand(clientId, tail.substr(1), resp);
                }
            }
        }
        sendError(relay_, resp, HTTPResponse::HTTP_NOT_FOUND, core::ErrorCode::NotFound,
                  "no route for " + method + " " + path);
    }

    // With [auth] secret set, every /api request carries "Authorization: Bearer <viewer token>"
    // (docs/relay.md "HTTP API"). A token in the query string is not accepted here.
    bool authorized(HTTPServerRequest& req, HTTPServerResponse& resp) {
        const std::string& secret = relay_.options().authSecret;
        if (secret.empty()) return true;
        const std::string header = req.get("Authorization", "");
        const std::string scheme = "Bearer ";
        std::string message;
        if (header.size() <= scheme.size() ||
            Poco::icompare(header.substr(0, scheme.size()), scheme) != 0) {
            message = "an Authorization: Bearer <token> header is required";
        } else {
            auto claims = core::verifyToken(header.substr(scheme.size()), secret,
                                            core::Role::Viewer, RelayImpl::wallNowMs());
            if (claims.ok()) return true;
            message = claims.error().message;
        }
        relay_.count(Counter::AuthFailures);
        resp.set("WWW-Authenticate", "Bearer");
        sendError(relay_, resp, HTTPResponse::HTTP_UNAUTHORIZED, core::ErrorCode::Unauthorized,
                  message);
        return false;
    }

    // A POST changes state, so a browser must not be tricked into it from another site (CSRF):
    // an Origin, when sent, is one of [auth] allowed_origins, or (list empty) this relay's own
    // origin; the body is declared application/json, which no cross-site form or "simple"
    // request can send without a CORS preflight (which this relay never grants).
    bool postAllowed(HTTPServerRequest& req, HTTPServerResponse& resp) {
        if (req.has("Origin")) {
            const std::string origin = req.get("Origin");
            const auto& allowed = relay_.options().allowedOrigins;
            const std::string host = req.getHost();
            const bool ok =
                allowed.empty()
                    ? (!host.empty() && (origin == "http://" + host || origin == "https://" + host))
                    : std::find(allowed.begin(), allowed.end(), origin) != allowed.end();
            if (!ok) {
                relay_.count(Counter::AuthFailures);
                sendError(relay_, resp, HTTPResponse::HTTP_FORBIDDEN, core::ErrorCode::Unauthorized,
                          "origin not allowed");
                return false;
            }
        }
        std::string type = req.getContentType();
        type = Poco::toLower(Poco::trim(type.substr(0, type.find(';'))));
        if (type != "application/json") {
            sendError(relay_, resp, HTTPResponse::HTTP_UNSUPPORTED_MEDIA_TYPE,
                      core::ErrorCode::BadRequest, "Content-Type must be application/json");
            return false;
        }
        return true;
    }

    // GET /api/desktops/{id}/commands/{commandId}: the stored row (docs/relay.md).
    void getCommand(const std::string& clientId, const std::string& commandId,
                    HTTPServerResponse& resp) {
        if (!core::isValidId(clientId) || !core::isValidId(commandId))
            return sendError(relay_, resp, HTTPResponse::HTTP_BAD_REQUEST,
                             core::ErrorCode::BadRequest,
                             "desktop and command ids must match [A-Za-z0-9._-]{1,128}");
        std::optional<CommandRecord> rec;
        StoreStatus st = relay_.store().getCommand(commandId, rec);
        if (!st.ok() && st.code != DS_ERR_NOT_FOUND)
            return sendError(relay_, resp, HTTPResponse::HTTP_SERVICE_UNAVAILABLE,
                             core::ErrorCode::Internal, "store unavailable: " + st.describe());
        if (!rec || rec->clientId != clientId)  // another desktop's command is not shown here
            return sendError(relay_, resp, HTTPResponse::HTTP_NOT_FOUND, core::ErrorCode::NotFound,
                             "no command " + commandId + " for desktop " + clientId);
        auto optionalMs = [](Poco::JSON::Object& o, const char* key, int64_t ms) {
            if (ms > 0)
                o.set(key, ms);
            else
                o.set(key, Poco::Dynamic::Var());
        };
        Poco::JSON::Object o(Poco::JSON_PRESERVE_KEY_ORDER);
        o.set("commandId", rec->id);
        o.set("desktopClientId", rec->clientId);
        o.set("status", rec->status);
        o.set("attempts", static_cast<int64_t>(rec->attempts));
        o.set("command", parseOr(rec->commandDataJson, Poco::Dynamic::Var()));
        optionalMs(o, "createdAt", rec->createdAtMs);
        optionalMs(o, "deliveredAt", rec->deliveredAtMs);
        optionalMs(o, "completedAt", rec->completedAtMs);
        o.set("result", rec->resultJson.empty() ? Poco::Dynamic::Var()
                                                : parseOr(rec->resultJson, Poco::Dynamic::Var()));
        sendJson(resp, HTTPResponse::HTTP_OK, stringify(o));
    }

    static std::string stringify(const Poco::JSON::Object& o) {
        std::ostringstream out;
        o.stringify(out);
        return out.str();
    }

    // Prometheus text format 0.0.4: every family of the relay's registry (docs/operations.md).
    void metrics(HTTPServerResponse& resp) {
        const std::string body = relay_.metrics().render();
        resp.setStatusAndReason(HTTPResponse::HTTP_OK);
        resp.setContentType(core::metrics::Registry::kContentType);
        resp.setContentLength(static_cast<std::streamsize>(body.size()));
        resp.send() << body;
    }

    void methodNotAllowed(HTTPServerResponse& resp) {
        sendError(relay_, resp, HTTPResponse::HTTP_METHOD_NOT_ALLOWED, core::ErrorCode::BadRequest,
                  "method not allowed");
    }

    void desktops(HTTPServerResponse& resp) {
        std::vector<ClientRecord> rows;
        StoreStatus st = relay_.store().listClients(rows);
        if (!st.ok()) {
            return sendError(relay_, resp, HTTPResponse::HTTP_SERVICE_UNAVAILABLE,
                             core::ErrorCode::Internal, "store unavailable: " + st.describe());
        }
        // Local viewer counts; desktops held by other instances show 0 here.
        auto local = relay_.locked([](const core::Registry& r) { return r.agents(); });
        Poco::JSON::Array::Ptr list = new Poco::JSON::Array;
        for (const auto& row : rows) {
            Poco::JSON::Object::Ptr d = new Poco::JSON::Object;
            d->set("clientId", row.clientId);
            d->set("name", row.name);
            d->set("hostname", row.hostname);
            d->set("instanceId", row.instanceId);
            d->set("monitors",
                   parseOr(row.monitorsJson, Poco::JSON::Array::Ptr(new Poco::JSON::Array)));
            d->set("capabilities",
                   parseOr(row.capabilitiesJson, Poco::JSON::Object::Ptr(new Poco::JSON::Object)));
            d->set("connectedAt", row.connectedAtMs);
            d->set("lastPing", row.lastPingMs);
            int viewers = 0;
            bool here = false;
            for (const auto& a : local) {
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
    static void addStats(Poco::JSON::Object& d, const RelayImpl::StreamSnapshot& snap) {
        auto optional = [](Poco::JSON::Object& o, const char* key,
                           const std::optional<int64_t>& v) {
            if (v)
                o.set(key, *v);
            else
                o.set(key, Poco::Dynamic::Var());
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
        for (const auto& [id, v] : snap.viewers) {
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

    void postCommand(const std::string& clientId, HTTPServerRequest& req,
                     HTTPServerResponse& resp) {
        const std::streamsize limit =
            static_cast<std::streamsize>(core::limits::kMaxControlMessageBytes);
        std::string body;
        std::istream& in = req.stream();
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
            const core::Error& e = queued.error();
            const auto status =
                e.code == core::ErrorCode::Internal   ? HTTPResponse::HTTP_SERVICE_UNAVAILABLE
                : e.code == core::ErrorCode::TooLarge ? HTTPResponse::HTTP_REQUEST_ENTITY_TOO_LARGE
                : e.code == core::ErrorCode::NotFound ? HTTPResponse::HTTP_NOT_FOUND
                : e.code == core::ErrorCode::Conflict ? HTTPResponse::HTTP_CONFLICT
                                                      : HTTPResponse::HTTP_BAD_REQUEST;
            relay_.count(Counter::HttpErrors);
            return sendJson(resp, status, core::serializeError(e));
        }
        sendJson(resp, HTTPResponse::HTTP_ACCEPTED, core::serialize(core::Message{queued.value()}));
    }

    RelayImpl& relay_;
    HttpLog& log_;
};

class Factory : public Poco::Net::HTTPRequestHandlerFactory {
public:
    explicit Factory(RelayImpl& relay) : relay_(relay), log_(relay) {}
    Poco::Net::HTTPRequestHandler* createRequestHandler(const HTTPServerRequest& req) override {
        relay_.count(Counter::HttpRequests);
        try {
            Poco::URI uri(req.getURI());  // decodes the path: "%zz" or a lone "%" throws
        } catch (const Poco::Exception&) {
            return new BadUriRoute(relay_, log_);
        }
        const std::string path = pathOf(req.getURI());
        if (path == "/ws/agent") return new WebSocketRoute(relay_, Session::Kind::Agent);
        if (path == "/ws/viewer") return new WebSocketRoute(relay_, Session::Kind::Viewer);
        return new JsonRoute(relay_, log_);
    }

private:
    RelayImpl& relay_;
    HttpLog log_;  // outlives every handler: the HTTPServer owns the factory
};

}  // namespace

Poco::Net::HTTPRequestHandlerFactory::Ptr makeHandlerFactory(RelayImpl& relay) {
    return new Factory(relay);
}

}  // namespace deskstream::relay
