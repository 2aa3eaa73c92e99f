// HTTP routes of the relay: WebSocket upgrades (handed to a Session) and the JSON API.
#include "http_handlers.hpp"

#include "relay_impl.hpp"
#include "session.hpp"
#include "ws_upgrade.hpp"

#include "deskstream/core/auth.hpp"
#include "deskstream/core/log_limit.hpp"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/WebSocket.h>
#include <Poco/String.h>
#include <Poco/URI.h>

#include <algorithm>
#include <optional>
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

// Same-origin by default (docs/security.md): a request without Origin is a non-browser client
// (tokens decide); with one, it is this relay's own origin — the scheme, host and port the
// browser reached, i.e. http(s):// + the Host header — or one of [auth] allowed_origins.
bool originAllowed(const RelayImpl& relay, const HTTPServerRequest& req) {
    if (!req.has("Origin")) return true;
    const std::string& origin = req.get("Origin");
    const std::string host = req.getHost();
    if (!host.empty() && (origin == "http://" + host || origin == "https://" + host)) return true;
    const auto& allowed = relay.options().allowedOrigins;
    return std::find(allowed.begin(), allowed.end(), origin) != allowed.end();
}

std::string addressOf(const HTTPServerRequest& req) {
    return req.clientAddress().host().toString();
}

// 429 with Retry-After: an address in its back-off, or over a rate.
void tooManyRequests(RelayImpl& relay, HTTPServerResponse& resp, core::Duration retryAfter,
                     const std::string& message) {
    relay.count(Counter::PeerRefusals);
    const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(retryAfter).count() + 1;
    resp.set("Retry-After", std::to_string(seconds));
    sendError(relay, resp, HTTPResponse::HTTP_TOO_MANY_REQUESTS, core::ErrorCode::RateLimited,
              message);
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

class WebSocketRoute : public Poco::Net::HTTPRequestHandler {
public:
    WebSocketRoute(RelayImpl& relay, Session::Kind kind, HttpLog& log)
        : relay_(relay), kind_(kind), log_(log) {}

    void handleRequest(HTTPServerRequest& req, HTTPServerResponse& resp) override {
        const auto role =
            kind_ == Session::Kind::Agent ? RelayMetrics::Role::Agent : RelayMetrics::Role::Viewer;
        if (!relay_.accepting()) {
            relay_.metrics().connectionOpened(role, RelayMetrics::Opened::ShuttingDown);
            sendError(relay_, resp, HTTPResponse::HTTP_SERVICE_UNAVAILABLE,
                      core::ErrorCode::Internal, "relay is shutting down");
            return;
        }
        // Poco checks only Upgrade/Version/Key: Origin is ours to check (browsers send it; a
        // foreign one is cross-site WebSocket hijacking).
        if (!originAllowed(relay_, req)) {
            relay_.count(Counter::AuthFailures);
            relay_.metrics().connectionOpened(role, RelayMetrics::Opened::ForbiddenOrigin);
            log_.log(HttpLog::Level::Warning, "origin-ws",
                     "relay: WebSocket upgrade from " + addressOf(req) +
                         " refused: Origin not allowed (403)");
            sendError(relay_, resp, HTTPResponse::HTTP_FORBIDDEN, core::ErrorCode::Forbidden,
                      "origin not allowed");
            return;
        }
        const std::string address = addressOf(req);
        const core::PeerGuard::Admission admission = relay_.admitPeer(address);
        if (admission.verdict != core::PeerGuard::Verdict::Ok) {
            const bool backoff = admission.verdict == core::PeerGuard::Verdict::BackingOff;
            relay_.metrics().connectionOpened(role, RelayMetrics::Opened::OverCapacity);
            log_.log(HttpLog::Level::Warning,
                     std::string("peer-") + (backoff ? "b" : "c") + address,
                     "relay: WebSocket upgrade from " + address + " refused (429): " +
                         (backoff ? "back-off after failed authentications"
                                  : "too many connections from this address"));
            return tooManyRequests(
                relay_, resp, admission.retryAfter,
                backoff ? "too many failed authentications from this address: try again later"
                        : "too many connections from this address (max_connections_per_ip = " +
                              std::to_string(relay_.options().maxConnectionsPerIp) + ")");
        }
        struct ReleasePeer {
            RelayImpl* relay;
            std::string address;
            ~ReleasePeer() {
                if (relay) relay->releasePeer(address);
            }
        } releasePeer{&relay_, address};
        // A viewer may present a one-use ticket in the URL instead of a token in its handshake.
        std::optional<core::TokenClaims> preauthorized;
        if (kind_ == Session::Kind::Viewer) {
            std::string ticket;
            try {
                for (const auto& [key, value] : Poco::URI(req.getURI()).getQueryParameters())
                    if (key == "ticket") ticket = value;
            } catch (const Poco::Exception&) {}
            if (!ticket.empty()) {
                auto claims = relay_.redeemTicket(ticket, RelayImpl::wallNowMs());
                if (!claims.ok()) {
                    relay_.count(Counter::AuthFailures);
                    relay_.authFailed(address);
                    relay_.metrics().connectionOpened(role, RelayMetrics::Opened::BadUpgrade);
                    sendError(relay_, resp, HTTPResponse::HTTP_UNAUTHORIZED,
                              core::ErrorCode::Unauthorized, claims.error().message);
                    return;
                }
                preauthorized = claims.value();
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
        bool badVersion = false;
        if (auto problem = upgradeProblem(req, badVersion)) {
            if (badVersion)
                resp.set("Sec-WebSocket-Version", Poco::Net::WebSocket::WEBSOCKET_VERSION);
            relay_.metrics().connectionOpened(role, RelayMetrics::Opened::BadUpgrade);
            sendError(relay_, resp, HTTPResponse::HTTP_BAD_REQUEST, core::ErrorCode::BadRequest,
                      *problem);
            return;
        }
        Upgraded up;
        try {
            up = acceptUpgrade(req, resp);
        } catch (const Poco::Exception&) {
            return;  // the client left during the 101: nothing to serve (the slot is released)
        }
        relay_.metrics().connectionOpened(role, RelayMetrics::Opened::Accepted);
        // The session holds the viewer and per-address slots from here on and releases them
        // when it ends.
        release.relay = nullptr;
        releasePeer.relay = nullptr;
        auto session =
            std::make_shared<Session>(relay_, kind_, std::move(up.socket), std::move(up.early),
                                      viewer, address, std::move(preauthorized));
        session->start();  // returns at once: an I/O loop serves the connection
    }

private:
    RelayImpl& relay_;
    Session::Kind kind_;
    HttpLog& log_;
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
        // Every state-changing request: same-origin or an allowed Origin (CSRF), before anything
        // else is looked at.
        if (!get && !originAllowed(relay_, req)) {
            relay_.count(Counter::AuthFailures);
            log_.log(HttpLog::Level::Warning, "origin-http",
                     "relay: HTTP " + method + " " + path + " from " + addressOf(req) +
                         " refused: Origin not allowed (403)");
            return sendError(relay_, resp, HTTPResponse::HTTP_FORBIDDEN, core::ErrorCode::Forbidden,
                             "origin not allowed");
        }

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
            auto claims = authorized(req, resp);
            if (!claims) return;
            return api(path, method, *claims, req, resp);
        }
        if (relay_.options().httpFallback && relay_.options().httpFallback(req, resp)) return;
        sendError(relay_, resp, HTTPResponse::HTTP_NOT_FOUND, core::ErrorCode::NotFound,
                  "no route for " + method + " " + path);
    }

    // /api/*: the token was checked already; `token` is what it allows.
    void api(const std::string& path, const std::string& method, const core::TokenClaims& token,
             HTTPServerRequest& req, HTTPServerResponse& resp) {
        const bool get = method == "GET" || method == "HEAD";
        if (path == "/api/desktops") {
            if (!get) return methodNotAllowed(resp);
            return desktops(token.scope, resp);
        }
        if (path == "/api/tickets") {
            if (method != "POST") return methodNotAllowed(resp);
            return issueTicket(token, resp);
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
                if (!token.scope.maySee(clientId)) {
                    relay_.count(Counter::Forbidden);
                    return sendError(relay_, resp, HTTPResponse::HTTP_FORBIDDEN,
                                     core::ErrorCode::Forbidden,
                                     "desktop '" + clientId + "' is not in this token");
                }
                if (tail.empty()) {
                    if (method != "POST") return methodNotAllowed(resp);
                    if (!jsonBody(req, resp)) return;
                    return postCommand(clientId, token.scope, req, resp);
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
    // (docs/relay.md "HTTP API"); its scope limits what the request sees and does. A token in
    // the query string is not accepted here. Without a secret: everything (loopback only).
    // An address in its back-off after failed authentications gets 429 whatever it sends.
    std::optional<core::TokenClaims> authorized(HTTPServerRequest& req, HTTPServerResponse& resp) {
        const std::string& secret = relay_.options().authSecret;
        if (secret.empty()) return core::TokenClaims{};
        const std::string address = addressOf(req);
        const core::PeerGuard::Admission backoff = relay_.peerBackoff(address);
        if (backoff.verdict == core::PeerGuard::Verdict::BackingOff) {
            tooManyRequests(relay_, resp, backoff.retryAfter,
                            "too many failed authentications from this address: try again later");
            return std::nullopt;
        }
        const std::string header = req.get("Authorization", "");
        const std::string scheme = "Bearer ";
        std::string message;
        if (header.size() <= scheme.size() ||
            Poco::icompare(header.substr(0, scheme.size()), scheme) != 0) {
            message = "an Authorization: Bearer <token> header is required";
        } else {
            auto claims = core::verifyToken(header.substr(scheme.size()), secret,
                                            core::Role::Viewer, RelayImpl::wallNowMs());
            if (claims.ok()) return claims.value();
            message = claims.error().message;
        }
        relay_.count(Counter::AuthFailures);
        relay_.authFailed(address);
        resp.set("WWW-Authenticate", "Bearer");
        sendError(relay_, resp, HTTPResponse::HTTP_UNAUTHORIZED, core::ErrorCode::Unauthorized,
                  message);
        return std::nullopt;
    }

    // A POST body is declared application/json, which no cross-site form or "simple" request
    // can send without a CORS preflight (which this relay never grants); the Origin was checked
    // in route() for every state-changing request.
    bool jsonBody(HTTPServerRequest& req, HTTPServerResponse& resp) {
        std::string type = req.getContentType();
        type = Poco::toLower(Poco::trim(type.substr(0, type.find(';'))));
        if (type != "application/json") {
            sendError(relay_, resp, HTTPResponse::HTTP_UNSUPPORTED_MEDIA_TYPE,
                      core::ErrorCode::BadRequest, "Content-Type must be application/json");
            return false;
        }
        return true;
    }

    // POST /api/tickets: a one-use ticket (30 s) standing for the caller's token, so a page can
    // open /ws/viewer without a long-lived token in its URL (docs/security.md).
    void issueTicket(const core::TokenClaims& token, HTTPServerResponse& resp) {
        const std::string ticket = relay_.issueTicket(token);
        if (ticket.empty())
            return tooManyRequests(relay_, resp, std::chrono::seconds(1),
                                   "too many outstanding tickets");
        Poco::JSON::Object o(Poco::JSON_PRESERVE_KEY_ORDER);
        o.set("ticket", ticket);
        o.set("expiresInMs", relay_.options().ticketTtlMs);
        sendJson(resp, HTTPResponse::HTTP_CREATED, stringify(o));
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

    void desktops(const core::ViewerScope& scope, HTTPServerResponse& resp) {
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
            if (!scope.maySee(row.clientId)) continue;  // outside the token: not even listed
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

    void postCommand(const std::string& clientId, const core::ViewerScope& scope,
                     HTTPServerRequest& req, HTTPServerResponse& resp) {
        // Per source address (18.5: command rows are not created without bound).
        const std::string address = addressOf(req);
        if (!relay_.allowHttpCommand(address)) {
            relay_.count(Counter::RateLimited);
            log_.log(HttpLog::Level::Warning, "http-commands-" + address,
                     "relay: commands from " + address + " over " +
                         std::to_string(relay_.options().httpCommandsPerMinute) +
                         " per minute refused (429)");
            resp.setKeepAlive(false);  // the body is not read
            return tooManyRequests(relay_, resp, std::chrono::seconds(1),
                                   "too many commands per minute from this address");
        }
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
        auto prepared = relay_.prepareHttpCommand(clientId, body);
        if (prepared.ok() &&
            !scope.mayCommand(clientId, prepared.value().commandType == "input" ||
                                            prepared.value().commandType == "set_config")) {
            relay_.count(Counter::Forbidden);
            return sendError(relay_, resp, HTTPResponse::HTTP_FORBIDDEN, core::ErrorCode::Forbidden,
                             prepared.value().commandType + " needs the control right");
        }
        auto queued = relay_.queueCommand(prepared, 0);
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
        if (path == "/ws/agent") return new WebSocketRoute(relay_, Session::Kind::Agent, log_);
        if (path == "/ws/viewer") return new WebSocketRoute(relay_, Session::Kind::Viewer, log_);
        return new JsonRoute(relay_, log_);
    }

private:
    RelayImpl& relay_;
    HttpLog log_;  // outlives every handler: the HTTPServer owns the factory
};

// [relay] health_listen: the probes and /metrics only, on their own listener and pool, so
// they answer whatever holds the main port's threads (docs/relay.md).
class ProbeFactory : public Poco::Net::HTTPRequestHandlerFactory {
public:
    explicit ProbeFactory(RelayImpl& relay) : relay_(relay), log_(relay) {}
    Poco::Net::HTTPRequestHandler* createRequestHandler(const HTTPServerRequest& req) override {
        relay_.count(Counter::HttpRequests);
        const std::string path = pathOf(req.getURI());
        if (path == "/healthz" || path == "/readyz" || path == "/metrics")
            return new JsonRoute(relay_, log_);
        return new NotFoundRoute(relay_);
    }

private:
    class NotFoundRoute : public Poco::Net::HTTPRequestHandler {
    public:
        explicit NotFoundRoute(RelayImpl& relay) : relay_(relay) {}
        void handleRequest(HTTPServerRequest&, HTTPServerResponse& resp) override {
            sendError(relay_, resp, HTTPResponse::HTTP_NOT_FOUND, core::ErrorCode::NotFound,
                      "this port serves only /healthz, /readyz and /metrics");
        }

    private:
        RelayImpl& relay_;
    };

    RelayImpl& relay_;
    HttpLog log_;
};

}  // namespace

Poco::Net::HTTPRequestHandlerFactory::Ptr makeHandlerFactory(RelayImpl& relay) {
    return new Factory(relay);
}

Poco::Net::HTTPRequestHandlerFactory::Ptr makeProbeHandlerFactory(RelayImpl& relay) {
    return new ProbeFactory(relay);
}

}  // namespace deskstream::relay
