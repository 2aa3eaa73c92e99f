// Settings of the relay's network layer. The host fills this from the INI sections [relay],
// [heartbeat] and [auth] (docs/configuration.md); every field has the documented
// default so an embedder can start a relay with RelayOptions{} plus a store.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace Poco::Net {
class HTTPServerRequest;
class HTTPServerResponse;
}  // namespace Poco::Net

namespace deskstream::core::metrics {
class Registry;
}  // namespace deskstream::core::metrics

namespace deskstream::relay {

// Serves a request the relay has no route for (e.g. the viewer page and static files from
// [relay] web_root, which the host owns). Returns true when it answered; false -> 404 JSON.
// Runs on an HTTPServer thread, concurrently with other requests.
using HttpFallback =
    std::function<bool(Poco::Net::HTTPServerRequest&, Poco::Net::HTTPServerResponse&)>;

struct RelayOptions {
    // [relay]
    std::string listen = "127.0.0.1:8080";  // host:port; port 0 picks a free port (tests)
    std::string publicUrl;                  // advertised to viewers in redirects; empty: derived
    std::string instanceId;                 // empty: a random UUID is chosen at construction
    int64_t maxMessageBytes = 16 * 1024 * 1024;  // largest WebSocket message accepted
    int viewerQueue = 3;                         // frames held per viewer before latest-frame-wins
    int64_t viewerAckTimeoutMs = 2000;           // a viewer silent this long is skipped for acks
    int64_t reaperIntervalMs = 30000;            // stale-registration reaper + instance heartbeat
    int64_t registrationTtlMs = 60000;           // rows with an older last_ping are reaped
    int64_t commandTtlMs = 300000;               // pending/delivered commands older are expired
    int64_t commandRetentionMs = 604800000;  // finished commands completed longer ago are purged
    int64_t commandLeaseMs = 30000;  // a delivered, unanswered command is re-delivered after
    int64_t touchIntervalMs = 0;     // last_ping refresh rate; 0: max(interval, ttl / 4)
    // [relay] tls.cert / tls.key: PEM files; both set: HTTPS and wss:// only, TLS 1.2 or later
    // (docs/security-tls.md); both empty: plain HTTP.
    std::string tlsCert;
    std::string tlsKey;

    // [heartbeat]
    int64_t heartbeatIntervalMs = 5000;
    int missedLimit = 3;
    int64_t handshakeTimeoutMs = 5000;

    // [auth]
    std::string authSecret;  // HS256 key; empty: no auth, loopback only
    // Browser Origins allowed besides the relay's own (same-origin is always allowed; a request
    // without Origin is a non-browser client). docs/security.md.
    std::vector<std::string> allowedOrigins;
    // Limits against abuse ([auth] ..., docs/security.md); <= 0 switches one off.
    int maxConnectionsPerIp = 256;   // WebSocket connections at once per source address
    int authFailuresPerMinute = 20;  // failed authentications per address, then a back-off
    int64_t authBackoffMs = 30000;   // the first back-off; doubles each time, up to the max
    int64_t authBackoffMaxMs = 900000;
    int inputPerSecond = 200;         // viewer input commands per second per viewer
    int commandsPerMinute = 120;      // other viewer commands per minute per viewer
    int httpCommandsPerMinute = 120;  // POST .../commands per minute per source address
    int64_t ticketTtlMs = 30000;      // POST /api/tickets: a ticket works once within this

    // Socket behaviour.
    int64_t sendTimeoutMs = 10000;     // a peer that does not drain its socket this long is dropped
    int64_t receiveTimeoutMs = 10000;  // frame_timeout_ms: frame complete by first byte + this
    int64_t closeGraceMs = 1000;       // wait for the peer's CLOSE after ours
    int controlQueueLimit = 1024;  // queued control messages per connection before it is dropped
    int badMessageLimit = 10;      // bad messages tolerated per connection and window (1008 beyond)
    int64_t badMessageWindowMs = 60000;  // the window of bad_message_limit

    int maxViewers = 200;  // [relay] max_viewers: viewer connections at once (beyond: HTTP 503)

    // [relay] io_threads: the I/O loops serving every WebSocket (docs/relay.md, "Event-driven
    // I/O"); 0: one per core.
    int ioThreads = 0;

    // Poco::Net::HTTPServer pool ([relay] max_threads, max_queued): plain HTTP requests and
    // WebSocket upgrades only (an upgraded socket goes to an I/O loop at once).
    int httpMaxThreads = 16;
    int httpMaxQueued = 256;
    int64_t httpTimeoutMs = 10000;  // plain HTTP request read/write timeout
    // [relay] http_idle_timeout_ms: a connection that sends no byte this long after its accept is
    // closed, so idle connections hold a pool thread briefly (docs/relay.md).
    int64_t httpIdleTimeoutMs = 3000;
    // [relay] health_listen: host:port of a second listener serving only /healthz, /readyz and
    // /metrics on its own 2 threads, answering whatever holds the main port; empty: off.
    std::string healthListen;
    HttpFallback httpFallback;  // optional: GET /, /dashboard, static files

    // Where the relay's metrics live (served on GET /metrics); null: the relay keeps its own.
    // Role all passes one registry to the agent and the relay (docs/operations.md).
    std::shared_ptr<core::metrics::Registry> metrics;
};

}  // namespace deskstream::relay
