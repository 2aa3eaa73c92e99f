#include "relay_impl.hpp"

#include "http_handlers.hpp"
#include "session.hpp"

#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/SocketAddress.h>

#include <algorithm>
#include <stdexcept>

namespace deskstream::relay {

namespace {

ClientRecord fromCore(const core::ClientRecord &r) {
    ClientRecord c;
    c.client_id = r.clientId;
    c.name = r.name;
    c.hostname = r.hostname;
    c.instance_id = r.instanceId;
    c.monitors_json = r.monitorsJson.empty() ? "[]" : r.monitorsJson;
    c.capabilities_json = r.capabilitiesJson.empty() ? "{}" : r.capabilitiesJson;
    c.connected_at_ms = r.connectedAtMs;
    c.last_ping_ms = r.lastPingMs;
    return c;
}

CommandRecord fromCore(const core::CommandRecord &r) {
    CommandRecord c;
    c.id = r.id;
    c.client_id = r.clientId;
    c.command_type = r.commandType;
    c.command_data_json = r.commandDataJson;
    c.target_instance_id = r.targetInstanceId;
    c.status = r.status;
    c.result_json = r.resultJson;
    c.origin = r.origin;
    c.created_at_ms = r.createdAtMs;
    c.delivered_at_ms = r.deliveredAtMs;
    c.completed_at_ms = r.completedAtMs;
    c.claimed_until_ms = r.claimedUntilMs;
    c.attempts = r.attempts;
    return c;
}

core::CommandRecord toCore(const CommandRecord &c) {
    core::CommandRecord r;
    r.id = c.id;
    r.clientId = c.client_id;
    r.commandType = c.command_type;
    r.commandDataJson = c.command_data_json;
    r.targetInstanceId = c.target_instance_id;
    r.status = c.status;
    r.resultJson = c.result_json;
    r.origin = c.origin;
    r.createdAtMs = c.created_at_ms;
    r.deliveredAtMs = c.delivered_at_ms;
    r.completedAtMs = c.completed_at_ms;
    r.claimedUntilMs = c.claimed_until_ms;
    r.attempts = c.attempts;
    return r;
}

int64_t touchInterval(const RelayOptions &o) {
    if (o.touch_interval_ms > 0) return o.touch_interval_ms;
    return std::max(o.heartbeat_interval_ms, o.registration_ttl_ms / 4);
}

core::RegistryConfig registryConfig(RelayOptions &o) {
    if (o.instance_id.empty()) o.instance_id = core::newUuid();
    core::RegistryConfig c;
    c.instanceId = o.instance_id;
    c.heartbeatIntervalMs = o.heartbeat_interval_ms;
    return c;
}

core::CommandPolicy commandPolicy(const RelayOptions &o) {
    core::CommandPolicy p;
    p.ttlMs = o.command_ttl_ms;
    p.leaseMs = o.command_lease_ms;
    return p;
}

} // namespace

const char *counterName(Counter c) {
    switch (c) {
    case Counter::ConnectionsOpened: return "connections_opened";
    case Counter::ConnectionsClosed: return "connections_closed";
    case Counter::Registrations: return "registrations";
    case Counter::RegistrationFailures: return "registration_failures";
    case Counter::Replaced: return "replaced";
    case Counter::Unregistrations: return "unregistrations";
    case Counter::HandshakeTimeouts: return "handshake_timeouts";
    case Counter::HeartbeatTimeouts: return "heartbeat_timeouts";
    case Counter::AuthFailures: return "auth_failures";
    case Counter::BadMessages: return "bad_messages";
    case Counter::BadJson: return "bad_json";
    case Counter::UnknownTypes: return "unknown_types";
    case Counter::BadFrames: return "bad_frames";
    case Counter::TooLarge: return "too_large";
    case Counter::BinaryBeforeHandshake: return "binary_before_handshake";
    case Counter::ProtocolErrors: return "protocol_errors";
    case Counter::AbuseCloses: return "abuse_closes";
    case Counter::FramesReceived: return "frames_received";
    case Counter::FramesForwarded: return "frames_forwarded";
    case Counter::FramesDropped: return "frames_dropped";
    case Counter::CommandsQueued: return "commands_queued";
    case Counter::CommandsDelivered: return "commands_delivered";
    case Counter::CommandResults: return "command_results";
    case Counter::CommandsExpired: return "commands_expired";
    case Counter::RowsReaped: return "rows_reaped";
    case Counter::StoreErrors: return "store_errors";
    case Counter::HttpRequests: return "http_requests";
    case Counter::HttpErrors: return "http_errors";
    case Counter::kCount: break;
    }
    return "?";
}

RelayImpl::RelayImpl(RelayOptions options, StoreClient store, Poco::Logger &logger)
    : options_(std::move(options)), store_(store), logger_(logger),
      registry_(registryConfig(options_)), router_(commandPolicy(options_)),
      throttle_(core::fromMs(touchInterval(options_))) {}

RelayImpl::~RelayImpl() { stop(); }

int64_t RelayImpl::wallNowMs() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

core::TimePoint RelayImpl::monoNow() { return core::fromSteady(std::chrono::steady_clock::now()); }

void RelayImpl::start() {
    if (running_) return;
    if (!store_.valid()) throw std::runtime_error("relay: no store (store plugin instance missing)");
    const RelayOptions &o = options_;
    if (o.max_message_bytes < 1024 || o.max_message_bytes > (1LL << 30))
        throw std::runtime_error("relay: max_message_bytes must be within 1024..1073741824");
    if (o.heartbeat_interval_ms <= 0 || o.missed_limit < 1 || o.handshake_timeout_ms <= 0)
        throw std::runtime_error("relay: heartbeat interval_ms, missed_limit and handshake_timeout_ms must be positive");

    Poco::Net::SocketAddress address;
    try {
        address = Poco::Net::SocketAddress(o.listen);
    } catch (const Poco::Exception &e) {
        throw std::runtime_error("relay: listen = \"" + o.listen + "\" is not host:port (" + e.displayText() + ")");
    }
    if (o.auth_secret.empty() && !address.host().isLoopback()) {
        throw std::runtime_error("relay: [auth] secret is empty, so the relay refuses to listen on " +
                                 o.listen + ": without authentication it only listens on a loopback "
                                 "address (127.0.0.1 / ::1). Set [auth] secret or listen on 127.0.0.1.");
    }

    // Start-up clean-up: rows a previous run of this instance id left behind.
    uint32_t removed = 0;
    StoreStatus s = store_.unregisterInstanceClients(o.instance_id, removed);
    if (!s.ok()) throw std::runtime_error("relay: store refused the start-up clean-up: " + s.describe());
    if (removed) logger_.information("relay: removed %u stale registrations of instance %s", removed, o.instance_id);

    Poco::Net::ServerSocket socket;
    try {
        // SO_REUSEADDR for quick restarts, but not SO_REUSEPORT (which Poco 1.11's
        // bind(address, true) also sets): a second process must not share the port silently.
        socket.bind(address, true, false);
        socket.listen(std::max(64, o.http_max_queued));
    } catch (const Poco::Exception &e) {
        throw std::runtime_error("relay: cannot listen on " + o.listen + ": " + e.displayText());
    }
    port_ = socket.address().port();
    if (options_.public_url.empty())
        options_.public_url = "http://" + address.host().toString() + ":" + std::to_string(port_);

    startedAtMs_ = wallNowMs();
    s = store_.upsertInstance(InstanceRecord{o.instance_id, options_.public_url, startedAtMs_, startedAtMs_});
    if (!s.ok()) throw std::runtime_error("relay: store refused the instance row: " + s.describe());

    auto *params = new Poco::Net::HTTPServerParams; // owned by the server (ref-counted)
    params->setMaxThreads(o.http_max_threads);
    params->setMaxQueued(o.http_max_queued);
    params->setTimeout(Poco::Timespan(o.http_timeout_ms * 1000));
    params->setKeepAlive(true);
    params->setKeepAliveTimeout(Poco::Timespan(2, 0)); // idle HTTP connections must not delay stop
    params->setServerName("deskstream");
    pool_ = std::make_unique<Poco::ThreadPool>(2, std::max(4, o.http_max_threads), 60);
    server_ = std::make_unique<Poco::Net::HTTPServer>(makeHandlerFactory(*this), *pool_, socket, params);
    {
        std::lock_guard<std::mutex> lock(stopMutex_);
        stopping_ = false;
    }
    accepting_ = true;
    running_ = true;
    server_->start();
    maintenance_ = std::thread([this] { maintenanceLoop(); });
    if (store_.hasNotifications()) notifications_ = std::thread([this] { notificationLoop(); });
    logger_.information("relay: listening on %s (instance %s, auth %s)",
                        address.host().toString() + ":" + std::to_string(port_), o.instance_id,
                        std::string(o.auth_secret.empty() ? "off (loopback only)" : "HS256"));
}

void RelayImpl::stop() {
    if (!running_.exchange(false)) return;
    accepting_ = false;
    {
        std::lock_guard<std::mutex> lock(stopMutex_);
        stopping_ = true;
    }
    stopCv_.notify_all();
    if (maintenance_.joinable()) maintenance_.join();
    if (notifications_.joinable()) notifications_.join();

    // Poco 1.11 stop is slow and racy (#3796, #2634): stop accepting, close our connections
    // ourselves, wait for their threads, and only then stop the server.
    server_->stop();
    std::vector<std::shared_ptr<Session>> all;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        for (auto &kv : sessions_) all.push_back(kv.second);
    }
    for (auto &s : all) s->closeNow(1001, "relay shutting down");
    all.clear();
    const auto deadline = std::chrono::steady_clock::now() +
                          std::chrono::milliseconds(options_.close_grace_ms + 2000);
    for (;;) {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            if (sessions_.empty()) break;
        }
        if (std::chrono::steady_clock::now() > deadline) {
            logger_.warning("relay: some connections did not close in time; aborting them");
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    server_->stopAll(true); // shuts down idle keep-alive connections too
    pool_->joinAll();
    server_.reset();
    pool_.reset();
    logger_.information("relay: stopped");
}

std::map<std::string, uint64_t> RelayImpl::counters() const {
    std::map<std::string, uint64_t> out;
    for (size_t i = 0; i < static_cast<size_t>(Counter::kCount); ++i)
        out[counterName(static_cast<Counter>(i))] = counters_[i].load();
    return out;
}

size_t RelayImpl::agentCount() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return registry_.agentCount();
}

size_t RelayImpl::viewerCount() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return registry_.viewerCount();
}

bool RelayImpl::reserveViewer() {
    if (viewerSlots_.fetch_add(1) >= options_.max_viewers) {
        viewerSlots_.fetch_sub(1);
        return false;
    }
    return true;
}

core::ConnId RelayImpl::addSession(const std::shared_ptr<Session> &session) {
    const core::ConnId id = nextConn_.fetch_add(1);
    std::lock_guard<std::mutex> lock(mutex_);
    sessions_[id] = session;
    return id;
}

void RelayImpl::removeSession(core::ConnId id) {
    std::shared_ptr<Session> keep; // destroyed outside the lock (joins its writer)
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = sessions_.find(id);
    if (it != sessions_.end()) {
        keep = std::move(it->second);
        sessions_.erase(it);
    }
}

std::shared_ptr<Session> RelayImpl::session(core::ConnId id) const {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = sessions_.find(id);
    return it == sessions_.end() ? nullptr : it->second;
}

void RelayImpl::storeError(const std::string &what, const StoreStatus &s) {
    count(Counter::StoreErrors);
    // A store outage would otherwise log once per message: at most one line per second.
    const int64_t now = wallNowMs();
    int64_t last = lastStoreErrorLogMs_.load();
    if (now - last >= 1000 && lastStoreErrorLogMs_.compare_exchange_strong(last, now))
        logger_.error("relay: store %s failed: %s", what, s.describe());
}

void RelayImpl::perform(core::Actions actions) {
    for (auto &action : actions) {
        if (auto *send = std::get_if<core::SendAction>(&action)) {
            if (auto s = session(send->conn)) s->sendMessage(send->message);
        } else if (auto *close = std::get_if<core::CloseAction>(&action)) {
            if (close->code == core::close_code::kReplaced) count(Counter::Replaced);
            if (auto s = session(close->conn)) s->close(close->code, close->reason);
        } else if (auto *reg = std::get_if<core::StoreRegisterAction>(&action)) {
            // Invariant 1: the ack (from onStoreResult) only after this write returned OK.
            StoreStatus st = store_.registerClient(fromCore(reg->record));
            std::string why;
            if (!st.ok()) {
                storeError("register_client", st);
                why = "the relay could not store the registration (" + st.describe() +
                      "); check that the relay's store is reachable and writable (GET /readyz)";
            }
            core::Actions next;
            {
                std::lock_guard<std::mutex> lock(mutex_);
                next = registry_.onStoreResult(reg->conn, st.ok(), why, wallNowMs());
            }
            perform(std::move(next));
        } else if (auto *unreg = std::get_if<core::StoreUnregisterAction>(&action)) {
            logger_.debug("relay: unregistering %s", unreg->clientId);
            StoreStatus st = store_.unregisterClient(unreg->clientId, unreg->instanceId);
            if (!st.ok()) storeError("unregister_client", st);
        }
        else if (auto *attach = std::get_if<core::AttachViewerAction>(&action)) {
            attachViewer(attach->agent, attach->viewer, attach->monitor);
        } else if (auto *detach = std::get_if<core::DetachViewerAction>(&action)) {
            detachViewer(detach->agent, detach->viewer);
        }
    }
}

// ------------------------------------------------------------------ fan-out

std::shared_ptr<RelayImpl::AgentStream> RelayImpl::stream(core::ConnId agent, bool create) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = streams_.find(agent);
    if (it != streams_.end()) return it->second;
    if (!create) return nullptr;
    core::FanOutConfig c;
    c.viewerQueue = static_cast<size_t>(std::max(1, options_.viewer_queue));
    c.ackTimeout = core::fromMs(options_.viewer_ack_timeout_ms);
    auto s = std::make_shared<AgentStream>(c);
    streams_[agent] = s;
    return s;
}

void RelayImpl::attachViewer(core::ConnId agent, core::ConnId viewer, std::optional<int> monitor) {
    auto s = stream(agent, true);
    {
        std::lock_guard<std::mutex> lock(mutex_);
        auto &list = viewerStreams_[viewer];
        if (std::find(list.begin(), list.end(), agent) == list.end()) list.push_back(agent);
    }
    std::lock_guard<std::mutex> lock(s->mutex);
    s->fanout.addViewer(viewer, monitor);
}

void RelayImpl::detachViewer(core::ConnId agent, core::ConnId viewer) {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        auto it = viewerStreams_.find(viewer);
        if (it != viewerStreams_.end()) {
            auto &list = it->second;
            list.erase(std::remove(list.begin(), list.end(), agent), list.end());
            if (list.empty()) viewerStreams_.erase(it);
        }
    }
    auto s = stream(agent, false);
    if (!s) return;
    std::vector<core::AgentFrameAck> acks;
    {
        std::lock_guard<std::mutex> lock(s->mutex);
        acks = s->fanout.removeViewer(viewer);
    }
    sendAcks(agent, acks);
}

void RelayImpl::sendAcks(core::ConnId agent, const std::vector<core::AgentFrameAck> &acks) {
    if (acks.empty()) return;
    auto a = session(agent);
    if (!a) return;
    for (const auto &ack : acks) a->sendMessage(ack);
}

void RelayImpl::onAgentFrame(core::ConnId agent, Bytes bytes, const core::FrameHeader &header) {
    auto s = stream(agent, true);
    core::FrameResult r;
    {
        std::lock_guard<std::mutex> lock(s->mutex);
        r = s->fanout.onFrame(std::move(bytes), header.frameNumber, header.monitor,
                              (header.flags & core::frame_flags::kKey) != 0, monoNow());
    }
    if (r.dropped) count(Counter::FramesDropped, r.dropped);
    for (core::ConnId v : r.wake) {
        if (auto viewer = session(v)) viewer->notifyFrames();
    }
    sendAcks(agent, r.acks);
}

Bytes RelayImpl::pullFrame(core::ConnId viewer) {
    std::vector<std::shared_ptr<AgentStream>> sources;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        auto it = viewerStreams_.find(viewer);
        if (it == viewerStreams_.end()) return nullptr;
        for (core::ConnId a : it->second) {
            auto s = streams_.find(a);
            if (s != streams_.end()) sources.push_back(s->second);
        }
    }
    const core::TimePoint now = monoNow();
    for (auto &s : sources) {
        std::optional<core::QueuedFrame> f;
        {
            std::lock_guard<std::mutex> lock(s->mutex);
            f = s->fanout.pop(viewer, now);
        }
        if (f) {
            count(Counter::FramesForwarded);
            return f->data;
        }
    }
    return nullptr;
}

void RelayImpl::onAgentStats(core::ConnId agent, const core::AgentStats &stats) {
    auto s = stream(agent, true);
    std::lock_guard<std::mutex> lock(s->mutex);
    s->agentStats = stats;
}

std::optional<RelayImpl::StreamSnapshot> RelayImpl::streamSnapshot(core::ConnId agent) {
    auto s = stream(agent, false);
    if (!s) return std::nullopt;
    StreamSnapshot snap;
    std::vector<core::ConnId> ids;
    const core::TimePoint now = monoNow();
    {
        std::lock_guard<std::mutex> lock(s->mutex);
        snap.fanout = s->fanout.stats(now);
        snap.agent = s->agentStats;
        for (core::ConnId v : s->fanout.viewerIds())
            if (auto vs = s->fanout.viewerStats(v, now)) snap.viewers.emplace_back(std::to_string(v), *vs);
    }
    // Viewer ids as the protocol names them (registry lock taken after the stream lock is released).
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto &v : snap.viewers)
        if (auto id = registry_.viewerId(static_cast<core::ConnId>(std::stoull(v.first)))) v.first = *id;
    return snap;
}

void RelayImpl::onViewerAck(core::ConnId viewer, const core::ViewerFrameAck &ack) {
    std::optional<core::AgentInfo> agent;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        agent = registry_.findAgent(ack.desktopClientId);
    }
    if (!agent) return; // the desktop left meanwhile: nothing to acknowledge
    auto s = stream(agent->conn, false);
    if (!s) return;
    std::vector<core::AgentFrameAck> acks;
    {
        std::lock_guard<std::mutex> lock(s->mutex);
        acks = s->fanout.onViewerAck(viewer, ack.frameNumber, ack.latency, monoNow());
    }
    sendAcks(agent->conn, acks);
}

void RelayImpl::tickStream(core::ConnId agent) {
    auto s = stream(agent, false);
    if (!s) return;
    std::vector<core::AgentFrameAck> acks;
    {
        std::lock_guard<std::mutex> lock(s->mutex);
        if (s->fanout.nextDeadline() > monoNow()) return;
        acks = s->fanout.onTick(monoNow());
    }
    sendAcks(agent, acks);
}

void RelayImpl::dropStream(core::ConnId agent) {
    std::lock_guard<std::mutex> lock(mutex_);
    streams_.erase(agent);
    for (auto it = viewerStreams_.begin(); it != viewerStreams_.end();) {
        auto &list = it->second;
        list.erase(std::remove(list.begin(), list.end(), agent), list.end());
        it = list.empty() ? viewerStreams_.erase(it) : std::next(it);
    }
}

void RelayImpl::dropViewerStreams(core::ConnId viewer) {
    std::lock_guard<std::mutex> lock(mutex_);
    viewerStreams_.erase(viewer);
}

void RelayImpl::onAgentAlive(const std::string &clientId, core::ConnId conn) {
    if (clientId.empty()) return;
    bool refresh;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        refresh = throttle_.shouldRefresh(clientId, monoNow());
    }
    if (!refresh) return;
    StoreStatus st = store_.touchClient(clientId, options_.instance_id, wallNowMs());
    if (st.code == DS_ERR_NOT_FOUND) {
        // The row was reaped or taken by another instance: this connection no longer owns the
        // registration. The agent reconnects and registers again.
        logger_.warning("relay: registration of %s is gone from the store; closing its connection", clientId);
        if (auto s = session(conn)) s->close(core::close_code::kReplaced, "registration lost");
    } else if (!st.ok()) {
        storeError("touch_client", st);
    }
}

void RelayImpl::forgetAgent(const std::string &clientId) {
    std::lock_guard<std::mutex> lock(mutex_);
    throttle_.forget(clientId);
}

void RelayImpl::forgetViewer(core::ConnId viewer) {
    std::lock_guard<std::mutex> lock(mutex_);
    router_.forgetViewer(viewer);
}

std::string RelayImpl::holderOf(const std::string &clientId) const {
    std::vector<ClientRecord> rows;
    if (!store_.listClients(rows).ok()) return {};
    for (const auto &r : rows)
        if (r.client_id == clientId) return r.instance_id;
    return {};
}

std::string RelayImpl::viewerUrlOf(const std::string &instanceId) const {
    std::vector<InstanceRecord> rows;
    if (!store_.listInstances(rows).ok()) return {};
    for (const auto &r : rows) {
        if (r.instance_id != instanceId || r.public_url.empty()) continue;
        std::string url = r.public_url;
        if (url.rfind("https://", 0) == 0) url = "wss://" + url.substr(8);
        else if (url.rfind("http://", 0) == 0) url = "ws://" + url.substr(7);
        while (!url.empty() && url.back() == '/') url.pop_back();
        return url + "/ws/viewer";
    }
    return {};
}

core::Result<core::CommandRecord> RelayImpl::prepareCommand(const core::CommandMessage &m,
                                                            const std::string &origin) const {
    std::lock_guard<std::mutex> lock(mutex_);
    const bool here = registry_.findAgent(m.desktopClientId).has_value();
    return router_.prepare(m.desktopClientId, m.commandId, m.command, origin, wallNowMs(),
                           here ? options_.instance_id : std::string());
}

core::Result<core::CommandRecord> RelayImpl::prepareHttpCommand(const std::string &clientId,
                                                                const std::string &body) const {
    std::lock_guard<std::mutex> lock(mutex_);
    const bool here = registry_.findAgent(clientId).has_value();
    return router_.prepareHttp(clientId, body, wallNowMs(),
                               here ? options_.instance_id : std::string());
}

core::Result<core::CommandQueued> RelayImpl::queueCommand(
    const core::Result<core::CommandRecord> &prepared, core::ConnId originViewer) {
    if (!prepared.ok()) return prepared.error();
    core::CommandRecord record = prepared.value();
    if (record.targetInstanceId.empty()) record.targetInstanceId = holderOf(record.clientId);
    bool created = false;
    StoreStatus st = store_.enqueueCommand(fromCore(record), created);
    if (!st.ok()) {
        storeError("enqueue_command", st);
        return core::makeError(core::ErrorCode::Internal, "",
                               "the command could not be stored (" + st.describe() + ")");
    }
    if (!created) {
        // The id exists: an exact retry is idempotent, a different command under it is refused,
        // and the result stays with the origin stored with the first one.
        std::optional<CommandRecord> existing;
        st = store_.getCommand(record.id, existing);
        if (!st.ok() || !existing) {
            storeError("get_command", st);
            return core::makeError(core::ErrorCode::Internal, "",
                                   "the command could not be stored (" + st.describe() + ")");
        }
        if (auto conflict = core::CommandRouter::conflictWith(record, toCore(*existing))) return *conflict;
        if (existing->origin != record.origin) originViewer = 0;
    }
    core::CommandQueued queued;
    bool here;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        queued = router_.onStored(record, originViewer, wallNowMs());
        here = registry_.findAgent(record.clientId).has_value();
    }
    count(Counter::CommandsQueued);
    // Stored before acknowledged; delivered now when the agent is connected here. Otherwise
    // its instance is woken by the store's notification, or it waits for the next registration.
    if (here) deliverPending(record.clientId);
    return queued;
}

void RelayImpl::deliverPending(const std::string &clientId) {
    std::shared_ptr<Session> agent;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        auto info = registry_.findAgent(clientId);
        if (!info) return;
        auto it = sessions_.find(info->conn);
        if (it == sessions_.end()) return;
        agent = it->second;
    }
    const int64_t now = wallNowMs();
    std::vector<CommandRecord> claimed;
    StoreStatus st = store_.claimCommands(clientId, now, options_.command_lease_ms, 64, claimed);
    if (!st.ok()) {
        storeError("claim_commands", st);
        return;
    }
    for (const auto &rec : claimed) {
        core::CommandRecord r = toCore(rec);
        if (router_.shouldExpire(r, now)) {
            store_.completeCommand(r.id, "failed", router_.expiryResultJson(r, now), now);
            count(Counter::CommandsExpired);
            continue;
        }
        auto msg = router_.deliveryMessage(r);
        if (!msg.ok()) {
            logger_.error("relay: stored command %s is unreadable: %s", r.id, msg.error().message);
            store_.completeCommand(r.id, "failed",
                                   "{\"status\":\"failed\",\"error\":\"unreadable command\"}", now);
            continue;
        }
        // If this send is lost the lease expires and the command is claimed again.
        if (agent->sendMessage(msg.value())) count(Counter::CommandsDelivered);
    }
}

core::Result<bool> RelayImpl::onCommandResult(const std::string &clientId,
                                              const core::CommandResult &result) {
    std::optional<CommandRecord> rec;
    StoreStatus st = store_.getCommand(result.commandId, rec);
    if (!st.ok() && st.code != DS_ERR_NOT_FOUND) {
        storeError("get_command", st);
        return core::makeError(core::ErrorCode::Internal, "", "the result could not be stored");
    }
    if (!rec || rec->client_id != clientId)
        return core::makeError(core::ErrorCode::NotFound, "commandId",
                               "no command " + result.commandId + " for this desktop");
    st = store_.completeCommand(result.commandId,
                                result.status == core::CommandStatus::Done ? "done" : "failed",
                                core::CommandRouter::resultJson(result), wallNowMs());
    if (!st.ok()) {
        storeError("complete_command", st);
        return core::makeError(core::ErrorCode::Internal, "", "the result could not be stored");
    }
    count(Counter::CommandResults);
    std::optional<core::CommandRouter::ResultRoute> route;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        route = router_.onResult(result, clientId);
    }
    if (route) {
        if (auto viewer = session(route->viewer)) viewer->sendMessage(route->message);
    }
    return true;
}

void RelayImpl::runMaintenance(bool force) {
    const auto nowSteady = std::chrono::steady_clock::now();
    if (!force && nowSteady - lastMaintenance_ < std::chrono::milliseconds(options_.reaper_interval_ms))
        return;
    lastMaintenance_ = nowSteady;
    const int64_t now = wallNowMs();
    StoreStatus st = store_.upsertInstance(
        InstanceRecord{options_.instance_id, options_.public_url, startedAtMs_, now});
    if (!st.ok()) storeError("upsert_instance", st);
    uint32_t n = 0;
    st = store_.reapClients(now - options_.registration_ttl_ms, "", n);
    if (!st.ok()) storeError("reap_clients", st);
    else if (n) {
        count(Counter::RowsReaped, n);
        logger_.information("relay: reaped %u registrations older than %?d ms", n, options_.registration_ttl_ms);
    }
    n = 0;
    st = store_.expireCommands(now - options_.command_ttl_ms, now, n);
    if (!st.ok()) storeError("expire_commands", st);
    else if (n) count(Counter::CommandsExpired, n);
    std::vector<std::string> local;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        router_.onTick(now);
        for (const auto &a : registry_.agents()) local.push_back(a.clientId);
    }
    // Redelivery of claims whose lease ran out (lost sends, crashed peers).
    for (const auto &id : local) deliverPending(id);
}

void RelayImpl::maintenanceLoop() {
    lastMaintenance_ = std::chrono::steady_clock::now();
    std::unique_lock<std::mutex> lock(stopMutex_);
    while (!stopping_) {
        stopCv_.wait_for(lock, std::chrono::milliseconds(std::min<int64_t>(options_.reaper_interval_ms, 250)));
        if (stopping_) break;
        lock.unlock();
        try {
            runMaintenance(false);
        } catch (const std::exception &e) {
            logger_.error("relay: maintenance failed: %s", std::string(e.what()));
        }
        lock.lock();
    }
}

void RelayImpl::notificationLoop() {
    while (running_) {
        std::vector<std::string> ids;
        StoreStatus st = store_.pollNotifications(250, ids);
        if (st.code < 0) {
            storeError("poll_notifications", st);
            std::unique_lock<std::mutex> lock(stopMutex_);
            stopCv_.wait_for(lock, std::chrono::seconds(1), [&] { return stopping_; });
            continue;
        }
        for (const auto &id : ids) deliverPending(id); // no-op for desktops not connected here
    }
}

// ------------------------------------------------------------------ facade

Relay::Relay(RelayOptions options, const ds_store_vtable *storeVtable, void *storeInstance,
             Poco::Logger &logger)
    : Relay(std::move(options), StoreClient(storeVtable, storeInstance), logger) {}

Relay::Relay(RelayOptions options, StoreClient store, Poco::Logger &logger)
    : impl_(std::make_unique<RelayImpl>(std::move(options), store, logger)) {}

Relay::~Relay() { stop(); }
void Relay::start() { impl_->start(); }
void Relay::stop() { impl_->stop(); }
bool Relay::running() const { return impl_->running(); }
uint16_t Relay::port() const { return impl_->port(); }
const std::string &Relay::instanceId() const { return impl_->instanceId(); }
const RelayOptions &Relay::options() const { return impl_->options(); }
std::map<std::string, uint64_t> Relay::counters() const { return impl_->counters(); }
size_t Relay::agentCount() const { return impl_->agentCount(); }
size_t Relay::viewerCount() const { return impl_->viewerCount(); }

} // namespace deskstream::relay
