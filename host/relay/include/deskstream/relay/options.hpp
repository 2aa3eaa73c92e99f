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
} // namespace Poco::Net

namespace deskstream::core::metrics {
class Registry;
} // namespace deskstream::core::metrics

namespace deskstream::relay {

// Serves a request the relay has no route for (e.g. the viewer page and static files from
// [relay] web_root, which the host owns). Returns true when it answered; false -> 404 JSON.
// Runs on an HTTPServer thread, concurrently with other requests.
using HttpFallback =
    std::function<bool(Poco::Net::HTTPServerRequest &, Poco::Net::HTTPServerResponse &)>;

struct RelayOptions {
    // [relay]
    std::string listen = "127.0.0.1:8080"; // host:port; port 0 picks a free port (tests)
    std::string public_url;                // advertised to viewers in redirects; empty: derived
    std::string instance_id;               // empty: a random UUID is chosen at construction
    int64_t max_message_bytes = 16 * 1024 * 1024; // largest WebSocket message accepted
    int viewer_queue = 3;                  // frames held per viewer before latest-frame-wins
    int64_t viewer_ack_timeout_ms = 2000;  // a viewer silent this long is skipped for acks
    int64_t reaper_interval_ms = 30000;    // stale-registration reaper + instance heartbeat
    int64_t registration_ttl_ms = 60000;   // rows with an older last_ping are reaped
    int64_t command_ttl_ms = 300000;       // pending/delivered commands older are expired
    int64_t command_retention_ms = 604800000; // finished commands completed longer ago are purged
    int64_t command_lease_ms = 30000;      // a delivered, unanswered command is re-delivered after
    int64_t touch_interval_ms = 0;         // last_ping refresh rate; 0: max(interval, ttl / 4)

    // [heartbeat]
    int64_t heartbeat_interval_ms = 5000;
    int missed_limit = 3;
    int64_t handshake_timeout_ms = 5000;

    // [auth]
    std::string auth_secret;                  // HS256 key; empty: no auth, loopback only
    std::vector<std::string> allowed_origins; // empty: any Origin header accepted

    // Socket behaviour.
    int64_t send_timeout_ms = 10000;    // a peer that does not drain its socket this long is dropped
    int64_t receive_timeout_ms = 10000; // a frame started but not completed within this is fatal
    int64_t close_grace_ms = 1000;      // wait for the peer's CLOSE after ours
    int control_queue_limit = 1024;     // queued control messages per connection before it is dropped
    int bad_message_limit = 10;         // bad messages tolerated per connection and window (1008 beyond)
    int64_t bad_message_window_ms = 60000; // the window of bad_message_limit

    int max_viewers = 200; // [relay] max_viewers: viewer connections at once (beyond: HTTP 503)

    // Poco::Net::HTTPServer pool ([relay] max_threads, max_queued): one thread per WebSocket
    // for its whole life.
    int http_max_threads = 512;
    int http_max_queued = 256;
    int64_t http_timeout_ms = 10000; // plain HTTP request read/write timeout
    HttpFallback http_fallback;      // optional: GET /, /dashboard, static files

    // Where the relay's metrics live (served on GET /metrics); null: the relay keeps its own.
    // Role all passes one registry to the agent and the relay (docs/operations.md).
    std::shared_ptr<core::metrics::Registry> metrics;
};

} // namespace deskstream::relay
