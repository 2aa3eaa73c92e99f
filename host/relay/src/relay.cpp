// RelayImpl: the relay's composition root: start-up and shutdown, the Registry's actions, and
// the Relay facade (see relay_impl.hpp for how the parts are wired).
#include "relay_impl.hpp"

#include "http_handlers.hpp"
#include "random_ids.hpp"
#include "tls_listener.hpp"

#include "deskstream/core/log_context.hpp"

#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/SecureServerSocket.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/SocketAddress.h>

#include <algorithm>
#include <optional>
#include <stdexcept>
#include <thread>

namespace deskstream::relay {

namespace {

constexpr int kHealthThreads = 2;  // [relay] health_listen's pool: probes are tiny requests

int64_t touchInterval(const RelayOptions& o) {
    if (o.touchIntervalMs > 0) return o.touchIntervalMs;
    return std::max(o.heartbeatIntervalMs, o.registrationTtlMs / 4);
}

// The store bridge's calls are timed into `metrics` (constructed after the bridge, but the
// observer runs only on store calls, which start with RelayImpl::start()).
StoreClient observed(StoreClient store, RelayMetrics& metrics) {
    store.setObserver([m = &metrics](const char* op, double s, bool timed, const StoreStatus& st) {
        m->storeCall(op, s, timed, st);
    });
    return store;
}

RelayOptions withInstanceId(RelayOptions o) {
    if (o.instanceId.empty()) o.instanceId = randomUuid();
    return o;
}

core::RegistryConfig registryConfig(const RelayOptions& o) {
    core::RegistryConfig c;
    c.instanceId = o.instanceId;
    c.heartbeatIntervalMs = o.heartbeatIntervalMs;
    return c;
}

core::FanOutConfig fanOutConfig(const RelayOptions& o) {
    core::FanOutConfig c;
    c.viewerQueue = static_cast<size_t>(std::max(1, o.viewerQueue));
    c.ackTimeout = core::fromMs(o.viewerAckTimeoutMs);
    return c;
}

CommandDelivery::Settings commandSettings(const RelayOptions& o) {
    CommandDelivery::Settings s;
    s.instanceId = o.instanceId;
    s.policy.ttlMs = o.commandTtlMs;
    s.policy.leaseMs = o.commandLeaseMs;
    return s;
}

core::PeerLimits peerLimits(const RelayOptions& o) {
    core::PeerLimits l;
    l.maxConnections = o.maxConnectionsPerIp;
    l.authFailures = o.authFailuresPerMinute;
    l.authWindow = std::chrono::minutes(1);
    l.backoffBase = core::fromMs(std::max<int64_t>(1, o.authBackoffMs));
    l.backoffMax = core::fromMs(std::max(o.authBackoffMs, o.authBackoffMaxMs));
    return l;
}

}  // namespace

RelayImpl::RelayImpl(RelayOptions options, StoreClient store, Poco::Logger& logger)
    : options_(withInstanceId(std::move(options))),
      logger_(logger),
      store_(observed(store, metrics_), counters_, logger),
      registry_(registryConfig(options_)),
      throttle_(core::fromMs(touchInterval(options_))),
      peers_(peerLimits(options_)),
      httpCommands_(options_.httpCommandsPerMinute, std::chrono::minutes(1)),
      tickets_(core::fromMs(std::max<int64_t>(1, options_.ticketTtlMs))),
      sessions_(options_.maxViewers),
      streams_(fanOutConfig(options_), sessions_, counters_, metrics_),
      commands_(commandSettings(options_), randomUuid, store_, *this, sessions_, counters_,
                metrics_, logger),
      jobs_(store_, *this, commands_, counters_, metrics_, logger) {
    metrics_.expose(RelayMetrics::RelayState{[this] { return counters(); },
                                             [this] { return agentCount(); },
                                             [this] { return viewerCount(); }});
}

RelayImpl::~RelayImpl() { stop(); }

int64_t RelayImpl::wallNowMs() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

core::TimePoint RelayImpl::monoNow() { return core::fromSteady(std::chrono::steady_clock::now()); }

void RelayImpl::start() {
    if (running_) return;
    if (!store_.client().valid())
        throw std::runtime_error("relay: no store (store plugin instance missing)");
    const RelayOptions& o = options_;
    if (o.maxMessageBytes < 1024 || o.maxMessageBytes > (1LL << 30))
        throw std::runtime_error("relay: max_message_bytes must be within 1024..1073741824");
    if (o.heartbeatIntervalMs <= 0 || o.missedLimit < 1 || o.handshakeTimeoutMs <= 0)
        throw std::runtime_error(
            "relay: heartbeat interval_ms, missed_limit and handshake_timeout_ms must be positive");
    if (o.httpIdleTimeoutMs <= 0)
        throw std::runtime_error("relay: [relay] http_idle_timeout_ms must be positive");

    Poco::Net::SocketAddress address;
    try {
        address = Poco::Net::SocketAddress(o.listen);
    } catch (const Poco::Exception& e) {
        throw std::runtime_error("relay: listen = \"" + o.listen + "\" is not host:port (" +
                                 e.displayText() + ")");
    }
    if (o.authSecret.empty() && !address.host().isLoopback()) {
        throw std::runtime_error(
            "relay: [auth] secret is empty, so the relay refuses to listen on " + o.listen +
            ": without authentication it only listens on a loopback "
            "address (127.0.0.1 / ::1). Set [auth] secret or listen on 127.0.0.1.");
    }

    const bool tls = !o.tlsCert.empty() || !o.tlsKey.empty();
    Poco::Net::Context::Ptr tlsContext;
    if (tls) {
        if (o.tlsCert.empty() || o.tlsKey.empty())
            throw std::runtime_error(std::string("relay: [relay] ") +
                                     (o.tlsCert.empty() ? "tls.key" : "tls.cert") + " is set but " +
                                     (o.tlsCert.empty() ? "tls.cert" : "tls.key") +
                                     " is not: TLS needs both (docs/security-tls.md)");
        tlsContext = makeServerTlsContext(o.tlsCert, o.tlsKey);  // before any store write
    }

    // Start-up clean-up: rows a previous run of this instance id left behind.
    uint32_t removed = 0;
    StoreStatus s = store_.client().unregisterInstanceClients(o.instanceId, removed);
    if (!s.ok())
        throw std::runtime_error("relay: store refused the start-up clean-up: " + s.describe());
    if (removed)
        logger_.information("relay: removed %u stale registrations of instance %s", removed,
                            o.instanceId);

    // With TLS every accepted connection is a SecureStreamSocket: the handshake runs lazily on
    // the connection's own thread at its first read, never on the acceptor.
    Poco::Net::ServerSocket socket =
        tls ? Poco::Net::SecureServerSocket(tlsContext) : Poco::Net::ServerSocket();
    try {
        // SO_REUSEADDR for quick restarts, but not SO_REUSEPORT (which Poco 1.11's
        // bind(address, true) also sets): a second process must not share the port silently.
        socket.bind(address, true, false);
        socket.listen(std::max(64, o.httpMaxQueued));
    } catch (const Poco::Exception& e) {
        throw std::runtime_error("relay: cannot listen on " + o.listen + ": " + e.displayText());
    }
    port_ = socket.address().port();

    // [relay] health_listen: plain HTTP, its own socket, pool and short timeouts.
    std::optional<Poco::Net::ServerSocket> healthSocket;
    if (!o.healthListen.empty()) {
        try {
            healthSocket.emplace();
            healthSocket->bind(Poco::Net::SocketAddress(o.healthListen), true, false);
            healthSocket->listen(64);
        } catch (const Poco::Exception& e) {
            throw std::runtime_error("relay: cannot listen on health_listen = \"" + o.healthListen +
                                     "\": " + e.displayText());
        }
        healthPort_ = healthSocket->address().port();
    }
    if (options_.publicUrl.empty())
        options_.publicUrl = std::string(tls ? "https://" : "http://") + address.host().toString() +
                             ":" + std::to_string(port_);

    const int64_t startedAtMs = wallNowMs();
    startedAtMs_ = startedAtMs;
    core::logctx::setProcess("instance_id", o.instanceId);
    s = store_.client().upsertInstance(
        InstanceRecord{o.instanceId, options_.publicUrl, startedAtMs, startedAtMs});
    if (!s.ok()) throw std::runtime_error("relay: store refused the instance row: " + s.describe());

    loops_ = std::make_unique<IoLoops>(
        o.ioThreads > 0 ? o.ioThreads
                        : static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
    loops_->start();
    auto* params = new Poco::Net::HTTPServerParams;  // owned by the server (ref-counted)
    params->setMaxThreads(o.httpMaxThreads);
    params->setMaxQueued(o.httpMaxQueued);
    params->setTimeout(Poco::Timespan(o.httpTimeoutMs * 1000));
    params->setKeepAlive(true);
    params->setKeepAliveTimeout(Poco::Timespan(2, 0));  // idle HTTP connections must not delay stop
    params->setServerName("deskstream");
    // Poco 1.11's dispatcher can miss the wake-up at stop and leave a thread waiting out its
    // idle time (10 s by default) before the pool can be joined: keep that wait short.
    params->setThreadIdleTime(Poco::Timespan(1, 0));
    pool_ = std::make_unique<Poco::ThreadPool>(2, std::max(4, o.httpMaxThreads), 60);
    server_ = std::make_unique<HttpListener>(makeHandlerFactory(*this), *pool_, socket, params,
                                             std::chrono::milliseconds(o.httpIdleTimeoutMs));
    if (healthSocket) {
        auto* probe = new Poco::Net::HTTPServerParams;  // owned by the server (ref-counted)
        probe->setMaxThreads(kHealthThreads);
        probe->setMaxQueued(64);
        probe->setTimeout(Poco::Timespan(2, 0));
        probe->setKeepAlive(false);  // a probe is one request; no thread waits for a second
        probe->setServerName("deskstream");
        probe->setThreadIdleTime(Poco::Timespan(1, 0));
        healthPool_ = std::make_unique<Poco::ThreadPool>(kHealthThreads, kHealthThreads, 60);
        healthServer_ = std::make_unique<HttpListener>(
            makeProbeHandlerFactory(*this), *healthPool_, *healthSocket, probe,
            std::chrono::milliseconds(std::min<int64_t>(o.httpIdleTimeoutMs, 1000)));
    }
    accepting_ = true;
    running_ = true;
    server_->start();
    if (healthServer_) {
        healthServer_->start();
        logger_.information("relay: probes (/healthz, /readyz, /metrics) on %s",
                            healthSocket->address().toString());
    }
    MaintenanceJobs::Settings jobs;
    jobs.instanceId = o.instanceId;
    jobs.publicUrl = options_.publicUrl;
    jobs.startedAtMs = startedAtMs;
    jobs.reaperIntervalMs = o.reaperIntervalMs;
    jobs.registrationTtlMs = o.registrationTtlMs;
    jobs.commandTtlMs = o.commandTtlMs;
    jobs.commandRetentionMs = o.commandRetentionMs;
    jobs_.start(jobs);
    logger_.information("relay: listening on %s (instance %s, auth %s, %s)",
                        address.host().toString() + ":" + std::to_string(port_), o.instanceId,
                        std::string(o.authSecret.empty() ? "off (loopback only)" : "HS256"),
                        std::string(tls ? "TLS 1.2+ (https, wss)" : "no TLS (http, ws)"));
}

void RelayImpl::stop() {
    if (!running_.exchange(false)) return;
    accepting_ = false;
    jobs_.stop();

    // Poco 1.11 stop is slow and racy (#3796, #2634): stop accepting, close our connections
    // ourselves, wait for their threads, and only then stop the server.
    server_->stop();
    std::vector<std::shared_ptr<PeerConnection>> all = sessions_.all();
    for (auto& s : all) s->closeNow(1001, "relay shutting down");
    all.clear();
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(options_.closeGraceMs + 2000);
    for (;;) {
        if (sessions_.empty()) break;
        if (std::chrono::steady_clock::now() > deadline) {
            logger_.warning("relay: some connections did not close in time; aborting them");
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    loops_->stop();      // connections still open end now (1006)
    server_->stopAll();  // shuts down idle keep-alive connections too
    pool_->joinAll();
    server_.reset();
    pool_.reset();
    if (healthServer_) {  // last: the probes answer (503 from /readyz) while the rest stops
        healthServer_->stopAll();
        healthPool_->joinAll();
        healthServer_.reset();
        healthPool_.reset();
    }
    logger_.information("relay: stopped");
}

size_t RelayImpl::agentCount() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return registry_.agentCount();
}

size_t RelayImpl::viewerCount() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return registry_.viewerCount();
}

void RelayImpl::authFailed(const std::string& address) {
    bool started = false;
    {
        std::lock_guard<std::mutex> lock(limitsMutex_);
        started = peers_.onAuthFailure(address, monoNow());
    }
    if (!started) return;
    count(Counter::AuthBackoffs);
    logger_.warning(
        "relay: %d failed authentications from %s within a minute: refusing it for a "
        "while (growing back-off)",
        options_.authFailuresPerMinute, address);
}

std::string RelayImpl::issueTicket(const core::TokenClaims& claims) {
    const std::string id = randomUuid();
    std::lock_guard<std::mutex> lock(limitsMutex_);
    return tickets_.issue(id, claims, wallNowMs()) ? id : std::string();
}

void RelayImpl::sendToViewers(const std::string& text, const std::string& clientId) {
    std::vector<core::ConnId> viewers = sessions_.ids();
    {
        std::lock_guard<std::mutex> lock(mutex_);
        viewers.erase(
            std::remove_if(viewers.begin(), viewers.end(),
                           [&](core::ConnId c) { return !registry_.maySee(c, clientId); }),
            viewers.end());
    }
    sessions_.sendToEach(viewers, text);  // after the lock: sends only enqueue anyway
}

std::optional<core::ConnId> RelayImpl::agentConn(const std::string& clientId) const {
    std::lock_guard<std::mutex> lock(mutex_);
    auto info = registry_.findAgent(clientId);
    if (!info) return std::nullopt;
    return info->conn;
}

std::vector<std::string> RelayImpl::localAgents() const {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<std::string> out;
    for (const auto& a : registry_.agents()) out.push_back(a.clientId);
    return out;
}

void RelayImpl::perform(core::Actions actions) {
    for (auto& action : actions) {
        if (auto* send = std::get_if<core::SendAction>(&action)) {
            sessions_.send(send->conn, send->message);
        } else if (auto* close = std::get_if<core::CloseAction>(&action)) {
            if (close->code == core::close_code::kReplaced) count(Counter::Replaced);
            sessions_.close(close->conn, close->code, close->reason);
        } else if (auto* reg = std::get_if<core::StoreRegisterAction>(&action)) {
            // Invariant 1 (docs/architecture.md): the ack (from onStoreResult) only after this write returned OK.
            StoreStatus st = store_.client().registerClient(reg->record);
            std::string why;
            if (!st.ok()) {
                store_.error("register_client", st);
                why = "the relay could not store the registration (" + st.describe() +
                      "); check that the relay's store is reachable and writable (GET /readyz)";
            }
            core::Actions next;
            {
                std::lock_guard<std::mutex> lock(mutex_);
                next = registry_.onStoreResult(reg->conn, st.ok(), why, wallNowMs());
            }
            perform(std::move(next));
        } else if (auto* unreg = std::get_if<core::StoreUnregisterAction>(&action)) {
            logger_.debug("relay: unregistering %s", unreg->clientId);
            StoreStatus st = store_.client().unregisterClient(unreg->clientId, unreg->instanceId);
            if (!st.ok()) store_.error("unregister_client", st);
        } else if (auto* attach = std::get_if<core::AttachViewerAction>(&action)) {
            streams_.attach(attach->agent, attach->viewer, attach->monitor, monoNow());
        } else if (auto* detach = std::get_if<core::DetachViewerAction>(&action)) {
            streams_.detach(detach->agent, detach->viewer);
        }
    }
}

void RelayImpl::onViewerAck(core::ConnId viewer, const core::ViewerFrameAck& ack) {
    const auto agent = agentConn(ack.desktopClientId);
    if (!agent) return;  // the desktop left meanwhile: nothing to acknowledge
    streams_.onViewerAck(*agent, viewer, ack, monoNow());
}

std::optional<RelayImpl::StreamSnapshot> RelayImpl::streamSnapshot(core::ConnId agent) {
    auto s = streams_.snapshot(agent, monoNow());
    if (!s) return std::nullopt;
    StreamSnapshot snap;
    snap.fanout = s->fanout;
    snap.agent = s->agent;
    // Viewer ids as the protocol names them (registry lock taken after the stream's is released).
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& v : s->viewers)
        snap.viewers.emplace_back(registry_.viewerId(v.first).value_or(std::to_string(v.first)),
                                  v.second);
    return snap;
}

void RelayImpl::onAgentAlive(const std::string& clientId, core::ConnId conn) {
    if (clientId.empty()) return;
    bool refresh;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        refresh = throttle_.shouldRefresh(clientId, monoNow());
    }
    if (!refresh) return;
    StoreStatus st = store_.client().touchClient(clientId, options_.instanceId, wallNowMs());
    if (st.code == DS_ERR_NOT_FOUND) {
        // The row was reaped or taken by another instance: this connection no longer owns the
        // registration. Taken: the same clientId registered elsewhere, which protocol.md calls
        // `replaced` (4000); reaped: `registration lost`. The agent registers again either way.
        const std::string holder = store_.holderOf(clientId);
        const bool replaced = !holder.empty() && holder != options_.instanceId;
        logger_.warning("relay: registration of %s is %s; closing its connection", clientId,
                        replaced ? "held by instance " + holder + " now" : "gone from the store");
        sessions_.close(conn, core::close_code::kReplaced,
                        replaced ? "replaced" : "registration lost");
    } else if (!st.ok()) {
        store_.error("touch_client", st);
    }
}

void RelayImpl::forgetAgent(const std::string& clientId) {
    std::lock_guard<std::mutex> lock(mutex_);
    throttle_.forget(clientId);
}

// ------------------------------------------------------------------ facade

Relay::Relay(RelayOptions options, const ds_store_vtable* storeVtable, void* storeInstance,
             Poco::Logger& logger)
    : Relay(std::move(options), StoreClient(storeVtable, storeInstance), logger) {}

Relay::Relay(RelayOptions options, StoreClient store, Poco::Logger& logger)
    : impl_(std::make_unique<RelayImpl>(std::move(options), store, logger)) {}

Relay::~Relay() { stop(); }
void Relay::start() { impl_->start(); }
void Relay::stop() { impl_->stop(); }
bool Relay::running() const { return impl_->running(); }
uint16_t Relay::port() const { return impl_->port(); }
uint16_t Relay::healthPort() const { return impl_->healthPort(); }
const std::string& Relay::instanceId() const { return impl_->instanceId(); }
const RelayOptions& Relay::options() const { return impl_->options(); }
std::map<std::string, uint64_t> Relay::counters() const { return impl_->counters(); }
size_t Relay::agentCount() const { return impl_->agentCount(); }
size_t Relay::viewerCount() const { return impl_->viewerCount(); }

}  // namespace deskstream::relay
