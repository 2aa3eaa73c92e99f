// deskstream agent runtime (library deskstream_agent): capture plugin -> encoder plugin ->
// binary frames over WebSocket to the relay. Every protocol rule (handshake, heartbeat, the
// frame window, adaptive quality, idle when unwatched, commands executed once, reconnection
// behind a circuit breaker) is core::AgentSession's (core/agent_session.hpp); this runtime is
// the I/O and the plugins around it (docs/agent.md, docs/architecture.md "The agent").
//
// Threads (all owned by AgentRuntime, joined by stop()):
//   connection  the relay link: connects, feeds the core session, performs its actions
//               (send, close, run a command), sleeps until its next deadline, reconnects when
//               it says so;
//   capture     takes the capture slots the session hands out (paced at fps), grabs frames from
//               the capture plugin and hands them to the encoder thread; it alone calls
//               grab/release on the capture instance (input injection takes the same lock);
//   encode      encodes the previous frame while the next one is captured (a two-stage
//               pipeline: throughput is bounded by the slower stage, not the sum) and sends it.
// An idle desktop (no start_stream from the relay) captures and encodes nothing.
#pragma once

#include "deskstream/core/damage.hpp"
#include "deskstream/core/flow.hpp"
#include "deskstream/core/metrics.hpp"
#include "deskstream/core/reconnect.hpp"
#include "deskstream/host/instances.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace deskstream::agent {

struct AgentOptions {
    std::string relayUrl = "ws://127.0.0.1:8080/ws/agent";
    std::string clientId;  // required ([agent] client_id; the app defaults it to the host name)
    std::string name;
    std::string hostname;
    std::string token;
    core::FlowConfig flow;
    bool allMonitors = true;
    std::vector<int> monitors;  // when !allMonitors
    bool combined = false;      // layout = combined: one side-by-side picture ("dual screen")
    std::chrono::milliseconds heartbeatInterval{5000};  // until the relay's handshake_ack says
    int missedLimit = 3;
    std::chrono::milliseconds connectTimeout{5000};
    std::chrono::milliseconds handshakeTimeout{10000};
    std::chrono::milliseconds sendTimeout{10000};
    std::size_t maxMessageBytes = 16u * 1024u * 1024u;
    // wss:// relay URLs ([agent] tls.ca, tls.insecure; docs/security-tls.md): the relay's
    // certificate is checked against tlsCa (PEM), or the system CA store when empty. A
    // certificate that fails verification ends the runtime (exitCode 2), as a refused
    // registration does. tlsInsecure skips the check: tests only.
    std::string tlsCa;
    bool tlsInsecure = false;
    core::ReconnectOptions reconnect;
    // Where the agent's metrics live (docs/operations.md, "Agent metrics"); null: its own
    // registry. Role all passes the relay's, so one /metrics shows both.
    std::shared_ptr<core::metrics::Registry> metrics;
    // Damage-driven streaming ([agent] encoding = damage; docs/agent.md): only changed regions
    // are sent, and the periodic picture refresh is off (a still screen sends nothing). Off
    // (the default for embedders): every frame is the whole picture, as before.
    bool damageEncoding = false;
    core::damage::TrackerConfig damage;
    // The encoder for text and UI regions (a WebP instance with lossless = true); null: the
    // main encoder at quality 100. Used by the encode thread only.
    std::shared_ptr<host::EncoderInstance> losslessEncoder;
};

struct AgentStats {
    bool connected = false;
    bool registered = false;
    bool streaming = false;
    std::uint64_t connections = 0;  // successful registrations
    std::uint64_t framesCaptured = 0;
    std::uint64_t framesEncoded = 0;
    std::uint64_t framesSent = 0;
    std::uint64_t framesDroppedWindow = 0;
    std::uint64_t framesAcked = 0;
    std::uint64_t framesLost = 0;
    std::uint64_t bytesSent = 0;
    std::uint64_t commandsExecuted = 0;
    std::uint64_t commandsDuplicate = 0;
    std::uint64_t captureErrors = 0;
    std::uint64_t encodeErrors = 0;
    int inFlight = 0;
    int quality = 0;
    double fps = 0;
    std::int64_t lastAckLatencyMs = -1;
    std::string encoder;
    std::string breaker;  // closed | open | half-open
};

/// The picture start() grabbed and encoded to prove the plugin pair works; it is kept as the
/// first monitor's last frame (a still screen has no other to show a new viewer).
struct FirstFrame {
    bool captured = false;  // false: the plugin had no picture within a second
    std::uint32_t width = 0, height = 0;
    std::size_t bytes = 0;  // encoded payload
};

using host::CaptureInstance;
using host::EncoderInstance;

/// Creates an encoder instance by plugin name (set_config encoder); throws with the reason.
using EncoderFactory = std::function<std::unique_ptr<EncoderInstance>(const std::string& name)>;

class AgentRuntime {
public:
    AgentRuntime(AgentOptions options, std::unique_ptr<CaptureInstance> capture,
                 std::unique_ptr<EncoderInstance> encoder, EncoderFactory encoderFactory = {});
    ~AgentRuntime();
    AgentRuntime(const AgentRuntime&) = delete;
    AgentRuntime& operator=(const AgentRuntime&) = delete;

    /// Validates the options against the capture plugin (monitors) and starts the threads.
    /// Throws std::runtime_error with the reason when it cannot start.
    void start();
    /// Stops and joins every thread. Idempotent.
    void stop();
    /// Blocks until the runtime ended by itself (fatal error, registration refused) or
    /// `timeout` passed; returns true when it ended.
    bool waitFinished(std::chrono::milliseconds timeout);
    /// 0 while running or after a normal stop; 2 after registration_failed or a fatal error.
    int exitCode() const { return exitCode_.load(); }
    std::string fatalReason() const;

    AgentStats stats() const;
    FirstFrame firstFrame() const;
    /// The registry holding the agent's metrics (AgentOptions::metrics, or its own).
    std::shared_ptr<core::metrics::Registry> metricsRegistry() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
    std::atomic<int> exitCode_{0};
};

}  // namespace deskstream::agent
