#include "deskstream/agent/agent.hpp"

#include "deskstream/core/commands.hpp"
#include "deskstream/core/frame_header.hpp"
#include "deskstream/core/heartbeat.hpp"
#include "deskstream/core/protocol.hpp"

#include <Poco/Buffer.h>
#include <Poco/Exception.h>
#include <Poco/Logger.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/WebSocket.h>
#include <Poco/URI.h>

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <optional>
#include <random>
#include <stdexcept>
#include <thread>

namespace deskstream::agent {

using core::TimePoint;
using Clock = std::chrono::steady_clock;
using Poco::Net::WebSocket;

namespace {

TimePoint monoNow() { return core::fromSteady(Clock::now()); }

std::int64_t wallMs() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::uint64_t wallUs() {
    return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                          std::chrono::system_clock::now().time_since_epoch())
                                          .count());
}

// What to tell the operator after registration_failed, by code.
std::string registrationAdvice(core::ErrorCode code) {
    switch (code) {
        case core::ErrorCode::StoreUnavailable:
            return "check that the relay's store is reachable and that its database user may "
                   "write active_desktop_clients";
        case core::ErrorCode::Unauthorized:
            return "check [agent] token: it must be a desktop token signed with the relay's "
                   "[auth] secret and not expired (deskstream token --role desktop)";
        case core::ErrorCode::ProtocolMismatch:
            return "the relay speaks another protocol version: upgrade the agent or the relay";
        default: return "check the agent's handshake (client_id, monitors) against the relay log";
    }
}

}  // namespace

// A captured set of frames for one tick: one per selected monitor (or the composite).
struct CaptureJob {
    struct Item {
        CaptureInstance::Frame held;  // the plugin's frame, released when destroyed
        ds_frame composite{};         // the combined picture (then `held` is empty)
        std::uint16_t monitor = 0;
        const ds_frame& frame() const { return held ? *held : composite; }
    };
    std::vector<Item> items;
    std::uint64_t captureTimeUs = 0;
};

struct AgentRuntime::Impl {
    AgentRuntime& owner;
    AgentOptions options;
    std::unique_ptr<CaptureInstance> capture;
    std::unique_ptr<EncoderInstance> encoder;
    EncoderFactory encoderFactory;
    Poco::Logger& log = Poco::Logger::get("agent");

    std::vector<ds_monitor_info> monitorInfo;  // as listed at start

    // ---- shared state
    mutable std::mutex mutex;  // flow, selection, session, stats below
    std::condition_variable wake;
    core::AgentFlow flow;
    std::vector<int> selected;  // monitor indices to stream
    bool running = false;
    bool finished = false;
    bool streaming = false;
    bool registered = false;
    bool connected = false;
    std::uint32_t streamId = 0;
    std::uint64_t frameNumber = 0;
    std::string fatal;

    std::mutex captureMutex;  // every call on the capture instance
    mutable std::mutex encoderMutex;  // every call on the encoder instance, and swapping it
    std::mutex sendMutex;     // one writer at a time on the socket (Poco is not thread-safe)
    std::shared_ptr<WebSocket> socket;  // guarded by `mutex`

    // ---- pipeline hand-over: capture -> encode (one job in hand, one in the mailbox)
    std::optional<CaptureJob> mailbox;           // guarded by `mutex`
    // Frames the encoder is done with (`mutex`): destroyed, i.e. released, by the capture
    // thread under captureMutex, so only that thread ever calls into the capture instance.
    std::vector<CaptureJob> toRelease;
    // Capture-thread only: released jobs kept for reuse (their vectors keep their capacity),
    // the swap partner of toRelease, and the monitor list of the current tick.
    std::vector<CaptureJob> spareJobs, releasing;
    std::vector<int> tickMonitors;
    // Combined layout pictures, double-buffered: the encoder may still read picture N while
    // the capture thread composes N+1 (never more: it waits for the mailbox to empty).
    std::vector<std::uint8_t> composite[2];
    int compositeIndex = 0;
    std::vector<std::uint8_t> message;           // header + payload being sent (encode thread)

    // ---- counters
    std::atomic<std::uint64_t> captured{0}, encoded{0}, bytesSent{0}, connections{0},
        commandsExecuted{0}, commandsDuplicate{0}, captureErrors{0}, encodeErrors{0};
    std::atomic<std::int64_t> lastLatencyMs{-1};
    core::CommandDedup dedup{4096};
    std::string breakerState = "closed";  // guarded by `mutex`
    std::string encoderLabel;             // guarded by `mutex` (the encoder may be swapped)

    std::thread connThread, captureThread, encodeThread;

    Impl(AgentRuntime& o, AgentOptions opts, std::unique_ptr<CaptureInstance> c,
         std::unique_ptr<EncoderInstance> e, EncoderFactory f)
        : owner(o), options(std::move(opts)), capture(std::move(c)), encoder(std::move(e)),
          encoderFactory(std::move(f)), flow(options.flow) {}

    bool isRunning() {
        std::lock_guard<std::mutex> lock(mutex);
        return running;
    }

    void finish(int code, const std::string& why) {
        {
            std::lock_guard<std::mutex> lock(mutex);
            if (!fatal.empty() || !running) return;
            fatal = why;
            running = false;
            finished = true;
        }
        owner.exitCode_ = code;
        wake.notify_all();
        closeSocket();
    }

    void closeSocket() {
        std::shared_ptr<WebSocket> ws;
        {
            std::lock_guard<std::mutex> lock(mutex);
            ws = socket;
        }
        if (ws) {
            try {
                ws->shutdown();
            } catch (...) {
            }
        }
    }

    // ------------------------------------------------------------------ sending
    bool sendRaw(const void* data, std::size_t size, int flags) {
        std::shared_ptr<WebSocket> ws;
        {
            std::lock_guard<std::mutex> lock(mutex);
            ws = socket;
        }
        if (!ws) return false;
        try {
            std::lock_guard<std::mutex> lock(sendMutex);
            ws->sendFrame(data, static_cast<int>(size), flags);
            return true;
        } catch (const Poco::Exception& e) {
            log.warning("agent %s: send failed: %s", options.clientId, e.displayText());
        } catch (const std::exception& e) {
            log.warning("agent %s: send failed: %s", options.clientId, std::string(e.what()));
        }
        closeSocket();  // the connection thread notices and reconnects
        return false;
    }

    bool sendMessage(const core::Message& m) {
        std::string text = core::serialize(m);
        return sendRaw(text.data(), text.size(), WebSocket::FRAME_TEXT);
    }

    // ------------------------------------------------------------------ connection thread
    void connectionLoop() {
        std::mt19937_64 rng{std::random_device{}()};
        std::uniform_real_distribution<double> uniform(0.0, 1.0);
        core::ReconnectPolicy policy(options.reconnect, [&] { return uniform(rng); });
        while (isRunning()) {
            policy.onAttempt();
            logBreakerChange(policy);
            bool registeredThisTime = false;
            std::string why;
            try {
                registeredThisTime = runSession(policy);
            } catch (const Poco::Exception& e) {
                why = e.displayText();
            } catch (const std::exception& e) {
                why = e.what();
            }
            markDisconnected();
            if (!isRunning()) break;
            std::chrono::milliseconds delay{0};
            if (registeredThisTime) {
                // We were registered: a fresh failure sequence starts (first retry is quick).
                delay = policy.onFailure();
                log.warning("agent %s: connection to %s lost%s; reconnecting", options.clientId,
                            options.relayUrl, why.empty() ? std::string() : ": " + why);
            } else {
                delay = policy.onFailure();
                if (policy.consecutiveFailures() == 1)
                    log.warning("agent %s: cannot connect to %s: %s (retrying with backoff)",
                                options.clientId, options.relayUrl,
                                why.empty() ? std::string("connection closed") : why);
            }
            logBreakerChange(policy);
            std::unique_lock<std::mutex> lock(mutex);
            wake.wait_for(lock, delay, [&] { return !running; });
        }
    }

    void logBreakerChange(core::ReconnectPolicy& policy) {
        if (auto change = policy.takeStateChange()) {
            {
                std::lock_guard<std::mutex> lock(mutex);
                breakerState = core::toString(*change);
            }
            if (*change == core::BreakerState::Open)
                log.error("agent %s: circuit breaker open after %d failed attempts to reach %s; "
                          "next attempt in %d s",
                          options.clientId, policy.consecutiveFailures(), options.relayUrl,
                          static_cast<int>(options.reconnect.openDuration.count() / 1000));
            else if (*change == core::BreakerState::HalfOpen)
                log.information("agent %s: circuit breaker half-open: probing %s",
                                options.clientId, options.relayUrl);
            else
                log.information("agent %s: circuit breaker closed", options.clientId);
        }
    }

    void markDisconnected() {
        {
            std::lock_guard<std::mutex> lock(mutex);
            socket.reset();
            connected = false;
            registered = false;
            streaming = false;
            flow.reset();
        }
        wake.notify_all();
    }

    std::shared_ptr<WebSocket> openSocket() {
        Poco::URI uri(options.relayUrl);
        if (uri.getScheme() != "ws")
            throw std::runtime_error("relay_url must be ws://host:port/ws/agent (got scheme '" +
                                     uri.getScheme() + "')");
        Poco::Net::HTTPClientSession session(uri.getHost(), uri.getPort());
        session.setTimeout(Poco::Timespan(options.connectTimeout.count() * 1000));
        Poco::Net::HTTPRequest request(Poco::Net::HTTPRequest::HTTP_GET,
                                       uri.getPathEtc().empty() ? "/ws/agent" : uri.getPathEtc(),
                                       Poco::Net::HTTPMessage::HTTP_1_1);
        Poco::Net::HTTPResponse response;
        auto ws = std::make_shared<WebSocket>(session, request, response);
        ws->setNoDelay(true);  // small control messages must not wait behind Nagle
        ws->setMaxPayloadSize(static_cast<int>(options.maxMessageBytes));
        ws->setSendTimeout(Poco::Timespan(options.sendTimeout.count() * 1000));
        // Reads only start after poll() said data is there; a long timeout then only guards
        // against a peer that stalls mid-frame (fatal for the connection, see POCO-PITFALLS).
        ws->setReceiveTimeout(Poco::Timespan(30, 0));
        return ws;
    }

    core::Handshake buildHandshake() const {
        core::Handshake h;
        h.role = core::Role::Desktop;
        h.clientId = options.clientId;
        h.token = options.token;
        h.name = options.name;
        h.hostname = options.hostname;
        for (const auto& m : monitorInfo) {
            core::MonitorInfo mi;
            mi.index = static_cast<int>(m.index);
            mi.name = std::string(m.name, strnlen(m.name, sizeof m.name));
            mi.x = m.x;
            mi.y = m.y;
            mi.width = static_cast<int>(m.width);
            mi.height = static_cast<int>(m.height);
            mi.primary = m.primary != 0;
            h.monitors.push_back(mi);
        }
        {
            std::lock_guard<std::mutex> lock(encoderMutex);
            // The SDK's codec numbers are the protocol's codec byte (plugin.h), checked by the loader.
            h.capabilities.codecs = {core::toString(static_cast<core::FrameCodec>(encoder->codec()))};
        }
        h.capabilities.input = capture->canInject();
        return h;
    }

    // Returns true when the session got registered (then lost).
    bool runSession(core::ReconnectPolicy& policy) {
        auto ws = openSocket();
        {
            std::lock_guard<std::mutex> lock(mutex);
            if (!running) return false;
            socket = ws;
            connected = true;
        }
        if (!sendMessage(buildHandshake())) return false;

        core::Heartbeat heartbeat(options.heartbeatInterval, options.missedLimit);
        const TimePoint handshakeDeadline = monoNow() + options.handshakeTimeout;
        bool registeredHere = false;
        TimePoint nextStats{0};
        Poco::Buffer<char> buffer(0);

        while (isRunning()) {
            TimePoint now = monoNow();
            if (registeredHere) {
                auto action = heartbeat.onTick(now);
                if (action.kind == core::HeartbeatAction::Kind::SendPing) {
                    sendMessage(core::Ping{wallMs()});
                } else if (action.kind == core::HeartbeatAction::Kind::Close) {
                    log.warning("agent %s: relay silent for %d ms: closing (heartbeat timeout)",
                                options.clientId,
                                static_cast<int>(core::toMs(heartbeat.interval()) *
                                                 (heartbeat.missedLimit() + 1)));
                    closeQuietly(*ws, core::close_code::kHeartbeatTimeout, "heartbeat timeout");
                    return true;
                }
                {
                    std::lock_guard<std::mutex> lock(mutex);
                    flow.onTick(now);
                }
                if (now >= nextStats) {  // the figures only the agent knows, for /api/desktops
                    sendMessage(statsMessage());
                    nextStats = now + kStatsInterval;
                }
            } else if (now >= handshakeDeadline) {
                throw std::runtime_error("no handshake_ack within " +
                                         std::to_string(options.handshakeTimeout.count()) + " ms");
            }

            TimePoint next = registeredHere ? std::min(heartbeat.nextDeadline(), nextStats) : handshakeDeadline;
            auto waitUs = std::clamp<std::int64_t>((next - now).count(), 1000, 50000);
            if (!ws->poll(Poco::Timespan(waitUs), Poco::Net::Socket::SELECT_READ)) continue;

            int flags = 0;
            buffer.resize(0);
            int n = ws->receiveFrame(buffer, flags);
            int opcode = flags & WebSocket::FRAME_OP_BITMASK;
            if (n == 0 && flags == 0) return registeredHere;  // peer closed the TCP connection
            heartbeat.onMessage(monoNow());
            if (opcode == WebSocket::FRAME_OP_CLOSE) {
                std::string reason = closeReason(buffer);
                log.warning("agent %s: relay closed the connection%s", options.clientId,
                            reason.empty() ? std::string() : " (" + reason + ")");
                return registeredHere;
            }
            if (opcode == WebSocket::FRAME_OP_PING) {
                std::lock_guard<std::mutex> lock(sendMutex);
                ws->sendFrame(buffer.begin(), static_cast<int>(buffer.size()),
                              WebSocket::FRAME_FLAG_FIN | WebSocket::FRAME_OP_PONG);
                continue;
            }
            if (opcode != WebSocket::FRAME_OP_TEXT) continue;  // binary/pong: nothing for us

            std::string text(buffer.begin(), buffer.size());
            auto parsed = core::parseMessage(text, core::Channel::RelayToAgent);
            if (!parsed) {
                log.warning("agent %s: ignoring a bad message from the relay: %s",
                            options.clientId, parsed.error().message);
                continue;
            }
            const core::Message& m = parsed.value();
            if (auto* ack = std::get_if<core::AgentHandshakeAck>(&m)) {
                onRegistered(*ack, heartbeat);
                registeredHere = true;
                policy.onSuccess();
                logBreakerChange(policy);
            } else if (auto* failed = std::get_if<core::RegistrationFailed>(&m)) {
                std::string msg = "registration refused by the relay: code " +
                                  std::string(core::toString(failed->code)) + ", reason: " +
                                  failed->error + " — " + registrationAdvice(failed->code);
                log.error("agent %s: %s", options.clientId, msg);
                finish(2, msg);
                return false;
            } else {
                handleMessage(m, heartbeat);
            }
        }
        closeQuietly(*ws, core::close_code::kNormal, "agent stopping");
        return registeredHere;
    }

    static constexpr core::Duration kStatsInterval = std::chrono::seconds(2);

    core::AgentStats statsMessage() {
        std::lock_guard<std::mutex> lock(mutex);
        core::AgentStats s;
        s.quality = flow.quality();
        s.fps = static_cast<int>(std::lround(flow.fps()));
        s.inFlight = static_cast<int>(flow.inFlight());
        s.framesEncoded = encoded;
        s.framesSent = flow.sent();
        s.framesDroppedWindow = flow.dropped();
        if (lastLatencyMs >= 0) s.latencyMs = lastLatencyMs.load();
        return s;
    }

    static std::string closeReason(const Poco::Buffer<char>& b) {
        if (b.size() < 2) return {};
        int code = (static_cast<unsigned char>(b[0]) << 8) | static_cast<unsigned char>(b[1]);
        std::string text(b.begin() + 2, b.size() - 2);
        return text.empty() ? std::to_string(code) : std::to_string(code) + " " + text;
    }

    void closeQuietly(WebSocket& ws, int code, const std::string& reason) {
        try {
            std::lock_guard<std::mutex> lock(sendMutex);
            ws.shutdown(static_cast<Poco::UInt16>(code), reason);
        } catch (...) {
        }
    }

    void onRegistered(const core::AgentHandshakeAck& ack, core::Heartbeat& heartbeat) {
        heartbeat = core::Heartbeat(core::fromMs(std::max<std::int64_t>(1, ack.heartbeatIntervalMs)),
                                    options.missedLimit);
        heartbeat.start(monoNow());
        {
            std::lock_guard<std::mutex> lock(mutex);
            registered = true;
            streamId = ack.streamId;
            flow.reset();
            flow.setRelayWindow(ack.maxInFlight);
        }
        ++connections;
        log.information("agent %s: registered with relay %s (instance %s, stream %u)",
                        options.clientId, options.relayUrl, ack.instanceId,
                        static_cast<unsigned>(ack.streamId));
    }

    void setStreaming(bool on) {
        bool changed;
        {
            std::lock_guard<std::mutex> lock(mutex);
            changed = streaming != on;
            streaming = on;
            if (on) flow.onCaptured(monoNow() - flow.period());  // capture at once
        }
        if (changed) {
            log.information("agent %s: %s", options.clientId,
                            std::string(on ? "streaming started (a viewer is watching)"
                                           : "streaming stopped (no viewer): idle, encoding nothing"));
            wake.notify_all();
        }
    }

    void handleMessage(const core::Message& m, core::Heartbeat& heartbeat) {
        if (auto* ping = std::get_if<core::Ping>(&m)) {
            sendMessage(core::Pong{ping->timestamp, wallMs(), std::nullopt});
        } else if (auto* pong = std::get_if<core::Pong>(&m)) {
            heartbeat.onPong(monoNow(), pong->timestamp);
        } else if (auto* ack = std::get_if<core::AgentFrameAck>(&m)) {
            core::AckOutcome out;
            {
                std::lock_guard<std::mutex> lock(mutex);
                out = flow.onAck(ack->frameNumber, monoNow());
            }
            if (out.known) {
                lastLatencyMs = core::toMs(out.latency);
                if (out.qualityChange != 0)
                    log.debug("agent %s: latency %d ms -> quality %d", options.clientId,
                              static_cast<int>(core::toMs(out.latency)), out.quality);
                wake.notify_all();
            }
        } else if (std::holds_alternative<core::StartStream>(m)) {
            setStreaming(true);
        } else if (std::holds_alternative<core::StopStream>(m)) {
            setStreaming(false);
        } else if (auto* cmd = std::get_if<core::CommandMessage>(&m)) {
            executeCommand(*cmd);
        } else if (auto* err = std::get_if<core::ErrorMessage>(&m)) {
            log.warning("agent %s: relay reported an error: %s %s", options.clientId,
                        std::string(core::toString(err->code)), err->message);
        }
    }

    // ------------------------------------------------------------------ commands
    void executeCommand(const core::CommandMessage& msg) {
        bool duplicate;
        {
            std::lock_guard<std::mutex> lock(mutex);
            duplicate = !dedup.markExecuted(msg.commandId);
        }
        if (duplicate) {
            ++commandsDuplicate;
            // At-least-once delivery: confirm again, never execute twice. Sent after `mutex` is
            // released: sendRaw takes it (holding it here deadlocked the connection thread).
            sendMessage(core::CommandResult{msg.commandId, core::CommandStatus::Done, "", ""});
            return;
        }
        std::string error;
        try {
            error = apply(msg.command);
        } catch (const std::exception& e) {
            error = e.what();
        }
        ++commandsExecuted;
        core::CommandResult result;
        result.commandId = msg.commandId;
        result.status = error.empty() ? core::CommandStatus::Done : core::CommandStatus::Failed;
        result.error = error.substr(0, 1000);
        if (!error.empty())
            log.warning("agent %s: command %s (%s) failed: %s", options.clientId, msg.commandId,
                        std::string(core::toString(msg.command.type)), error);
        sendMessage(result);
    }

    // Returns an error text, empty on success.
    std::string apply(const core::Command& c) {
        switch (c.type) {
            case core::CommandType::StartStream: setStreaming(true); return {};
            case core::CommandType::StopStream: setStreaming(false); return {};
            case core::CommandType::RequestKeyframe:
                return {};  // every frame our encoders produce is a key frame
            case core::CommandType::SetConfig: return applyConfig(c.config);
            case core::CommandType::Input: return applyInput(c.input);
        }
        return "unknown command";
    }

    std::string applyConfig(const core::SetConfig& cfg) {
        if (cfg.monitors) {
            for (int idx : *cfg.monitors) {
                bool known = std::any_of(monitorInfo.begin(), monitorInfo.end(),
                                         [&](const ds_monitor_info& m) { return static_cast<int>(m.index) == idx; });
                if (!known) return "set_config: monitor " + std::to_string(idx) + " does not exist";
            }
        }
        if (cfg.encoder && *cfg.encoder != encoderName()) {
            if (!encoderFactory) return "set_config: this agent cannot switch encoders";
            std::unique_ptr<EncoderInstance> next = encoderFactory(*cfg.encoder);  // throws
            std::lock_guard<std::mutex> lock(encoderMutex);
            encoder.swap(next);
            {
                std::lock_guard<std::mutex> stateLock(mutex);
                encoderLabel = *cfg.encoder;
            }
            log.information("agent %s: encoder switched to %s", options.clientId, *cfg.encoder);
        }
        std::lock_guard<std::mutex> lock(mutex);
        if (cfg.fps) flow.setFps(*cfg.fps);
        if (cfg.quality) flow.setQuality(*cfg.quality);
        if (cfg.monitors) selected = *cfg.monitors;
        wake.notify_all();
        return {};
    }

    std::string encoderName() {
        std::lock_guard<std::mutex> lock(encoderMutex);
        return encoder->plugin().name;
    }

    std::string applyInput(const core::InputCommand& in) {
        if (!capture->canInject())
            return "input: the capture plugin '" + capture->plugin().name + "' cannot inject input";
        ds_input_event ev{};
        ev.struct_size = sizeof ev;
        switch (in.event) {
            case core::InputEvent::MouseMove: ev.type = DS_INPUT_MOUSE_MOVE; break;
            case core::InputEvent::MouseDown: ev.type = DS_INPUT_MOUSE_DOWN; break;
            case core::InputEvent::MouseUp: ev.type = DS_INPUT_MOUSE_UP; break;
            case core::InputEvent::Wheel: ev.type = DS_INPUT_WHEEL; break;
            case core::InputEvent::KeyDown: ev.type = DS_INPUT_KEY_DOWN; break;
            case core::InputEvent::KeyUp: ev.type = DS_INPUT_KEY_UP; break;
        }
        ev.monitor = static_cast<uint32_t>(in.monitor.value_or(0));
        ev.x = in.x.value_or(0);
        ev.y = in.y.value_or(0);
        ev.button = in.button.value_or(0);
        ev.delta_x = in.deltaX.value_or(0);
        ev.delta_y = in.deltaY.value_or(0);
        std::string key = in.key.value_or("");
        ev.key = in.key ? key.c_str() : nullptr;
        std::lock_guard<std::mutex> lock(captureMutex);
        capture->inject(ev);  // throws PluginError with the plugin's message
        return {};
    }

    // ------------------------------------------------------------------ capture thread
    void releaseDone() {
        {
            std::lock_guard<std::mutex> lock(mutex);
            releasing.swap(toRelease);  // both keep their capacity: no allocation per frame
        }
        if (releasing.empty()) return;
        std::lock_guard<std::mutex> lock(captureMutex);
        for (auto& job : releasing) {
            job.items.clear();  // releases the frames; the vector keeps its capacity
            spareJobs.push_back(std::move(job));
        }
        releasing.clear();
    }

    void captureLoop() {
        std::string lastError;
        while (true) {
            releaseDone();
            {
                std::unique_lock<std::mutex> lock(mutex);
                // Wait until streaming, registered, the pacing slot has come and the mailbox
                // is free (the encoder took the previous job).
                while (running) {
                    TimePoint now = monoNow();
                    bool ready = streaming && registered && !mailbox && toRelease.empty();
                    if (ready && flow.captureDue(now)) break;
                    if (!toRelease.empty()) break;
                    if (ready) {
                        wake.wait_for(lock, flow.nextCaptureAt() - now);
                    } else {
                        wake.wait_for(lock, std::chrono::milliseconds(200));
                    }
                }
                if (!running) break;
                if (!toRelease.empty()) continue;
                TimePoint now = monoNow();
                flow.onCaptured(now);
                if (flow.windowFull()) {
                    // Window full: this frame is dropped (counted) before it costs anything.
                    flow.onFrameReady(++frameNumber, now);
                    continue;
                }
                tickMonitors.assign(selected.begin(), selected.end());
            }

            CaptureJob job;
            if (!spareJobs.empty()) {
                job = std::move(spareJobs.back());
                spareJobs.pop_back();
            }
            job.captureTimeUs = wallUs();
            bool ok = grabAll(tickMonitors, job, lastError);
            if (!ok) {
                spareJobs.push_back(std::move(job));
                std::unique_lock<std::mutex> lock(mutex);
                wake.wait_for(lock, std::chrono::milliseconds(100));
                continue;
            }
            captured += job.items.size();
            {
                std::lock_guard<std::mutex> lock(mutex);
                mailbox = std::move(job);
            }
            wake.notify_all();
        }
        // Give back whatever is still held.
        std::optional<CaptureJob> left;
        {
            std::lock_guard<std::mutex> lock(mutex);
            left.swap(mailbox);
        }
        releaseDone();
        std::lock_guard<std::mutex> lock(captureMutex);
        left.reset();
        spareJobs.clear();
    }

    bool grabAll(const std::vector<int>& monitors, CaptureJob& job, std::string& lastError) {
        std::lock_guard<std::mutex> lock(captureMutex);
        for (int idx : monitors) {
            CaptureJob::Item item;
            item.monitor = static_cast<std::uint16_t>(idx);
            std::string error;
            ds_status s = DS_OK;  // grab throws PluginError for errors
            try {
                s = capture->grab(static_cast<uint32_t>(idx), 200, item.held);
            } catch (const std::exception& e) {
                s = DS_ERR_INTERNAL;
                error = e.what();
            }
            if (s == DS_OK) {
                job.items.push_back(std::move(item));
                continue;
            }
            if (s == DS_TIMEOUT) continue;  // no new picture on that monitor
            if (s == DS_REINIT) {
                log.warning("agent %s: monitor layout changed; keeping the announced layout",
                            options.clientId);
                continue;
            }
            ++captureErrors;
            if (error != lastError) {  // one line per distinct problem, not per frame
                log.error("agent %s: capture of monitor %d failed: %s", options.clientId, idx, error);
                lastError = error;
            }
        }
        if (job.items.empty()) return false;
        lastError.clear();
        if (options.combined && job.items.size() > 1) compose(job);  // captureMutex held
        return true;
    }

    // Side-by-side picture of every grabbed monitor ("dual screen"); releases the originals.
    void compose(CaptureJob& job) {
        std::uint32_t width = 0, height = 0;
        for (auto& it : job.items) {
            width += it.frame().width;
            height = std::max(height, it.frame().height);
        }
        const std::size_t stride = static_cast<std::size_t>(width) * 4;
        std::vector<std::uint8_t>& picture = composite[compositeIndex];
        compositeIndex ^= 1;
        picture.assign(stride * height, 0);  // capacity is kept: no allocation once sized
        std::size_t xOffset = 0;
        ds_pixel_format format = job.items.front().frame().format;
        for (auto& it : job.items) {
            const ds_frame& f = it.frame();
            for (std::uint32_t y = 0; y < f.height; ++y)
                std::memcpy(picture.data() + y * stride + xOffset * 4,
                            f.data + static_cast<std::size_t>(y) * f.stride,
                            static_cast<std::size_t>(f.width) * 4);
            xOffset += f.width;
        }
        CaptureJob::Item c;
        c.monitor = 0;
        c.composite.struct_size = sizeof(ds_frame);
        c.composite.width = width;
        c.composite.height = height;
        c.composite.stride = static_cast<uint32_t>(stride);
        c.composite.format = format;
        c.composite.data = picture.data();
        c.composite.capture_time_us = job.captureTimeUs;
        job.items.clear();  // releases the monitors' frames (captureMutex is held by grabAll)
        job.items.push_back(std::move(c));
    }

    // ------------------------------------------------------------------ encode thread
    void encodeLoop() {
        std::string lastError;
        while (true) {
            CaptureJob job;
            {
                std::unique_lock<std::mutex> lock(mutex);
                wake.wait(lock, [&] { return mailbox.has_value() || !running; });
                if (!running && !mailbox) break;
                if (!running) break;  // the capture thread releases what is left
                job = std::move(*mailbox);
                mailbox.reset();
            }
            wake.notify_all();  // the capture thread may grab the next frame now
            for (auto& item : job.items) encodeAndSend(item, job.captureTimeUs, lastError);
            // Hand the frames back: only the capture thread calls release_frame.
            {
                std::lock_guard<std::mutex> lock(mutex);
                toRelease.push_back(std::move(job));
            }
            wake.notify_all();
        }
    }

    void encodeAndSend(CaptureJob::Item& item, std::uint64_t captureTimeUs, std::string& lastError) {
        int quality;
        std::uint32_t stream;
        {
            std::lock_guard<std::mutex> lock(mutex);
            quality = flow.quality();
            stream = streamId;
        }
        ds_encode_params params{};
        params.struct_size = sizeof params;
        params.quality = quality;
        params.keyframe = 1;
        ds_encoded out{};
        const ds_frame& frame = item.frame();
        std::unique_lock<std::mutex> encLock(encoderMutex);
        try {
            out = encoder->encode(frame, params);
        } catch (const std::exception& e) {
            ++encodeErrors;
            if (e.what() != lastError) {  // one line per distinct problem, not per frame
                log.error("agent %s: %s", options.clientId, std::string(e.what()));
                lastError = e.what();
            }
            return;
        }
        lastError.clear();
        ++encoded;

        core::FrameHeader h;
        h.codec = static_cast<core::FrameCodec>(out.codec);
        h.flags = core::frame_flags::kKey | core::frame_flags::kLastRect;
        h.captureTimeUs = frame.capture_time_us ? frame.capture_time_us : captureTimeUs;
        h.streamId = stream;
        h.monitor = item.monitor;
        h.quality = static_cast<std::uint8_t>(std::clamp(out.quality ? out.quality : quality, 0, 100));
        h.screenWidth = frame.width;
        h.screenHeight = frame.height;
        h.rectX = 0;
        h.rectY = 0;
        h.rectWidth = frame.width;
        h.rectHeight = frame.height;
        h.payloadLength = static_cast<std::uint32_t>(out.size);
        message.resize(core::kFrameHeaderSize + out.size);  // capacity reused across frames
        std::memcpy(message.data() + core::kFrameHeaderSize, out.data, out.size);
        encLock.unlock();

        std::uint64_t number;
        {
            std::lock_guard<std::mutex> lock(mutex);
            number = ++frameNumber;
            if (!registered || !flow.onFrameReady(number, monoNow())) return;  // window full
        }
        h.frameNumber = number;
        core::encodeFrameHeader(h, message.data());
        if (sendRaw(message.data(), message.size(), WebSocket::FRAME_BINARY)) bytesSent += message.size();
    }
};

// ---------------------------------------------------------------------- AgentRuntime

AgentRuntime::AgentRuntime(AgentOptions options, std::unique_ptr<CaptureInstance> capture,
                           std::unique_ptr<EncoderInstance> encoder, EncoderFactory encoderFactory)
    : impl_(std::make_unique<Impl>(*this, std::move(options), std::move(capture),
                                   std::move(encoder), std::move(encoderFactory))) {}

AgentRuntime::~AgentRuntime() { stop(); }

void AgentRuntime::start() {
    Impl& d = *impl_;
    if (!d.capture || !d.encoder) throw std::runtime_error("agent needs a capture and an encoder plugin");
    if (!core::isValidId(d.options.clientId))
        throw std::runtime_error("[agent] client_id '" + d.options.clientId +
                                 "' is invalid: use 1-128 of A-Z a-z 0-9 . _ -");
    d.monitorInfo = d.capture->monitors();
    if (d.monitorInfo.empty())
        throw std::runtime_error("capture plugin '" + d.capture->plugin().name + "' reports no monitor");
    std::vector<int> selected;
    if (d.options.allMonitors) {
        for (const auto& m : d.monitorInfo) selected.push_back(static_cast<int>(m.index));
    } else {
        for (int idx : d.options.monitors) {
            bool known = std::any_of(d.monitorInfo.begin(), d.monitorInfo.end(),
                                     [&](const ds_monitor_info& m) { return static_cast<int>(m.index) == idx; });
            if (!known)
                throw std::runtime_error("[agent] monitors: monitor " + std::to_string(idx) +
                                         " does not exist (the capture plugin has " +
                                         std::to_string(d.monitorInfo.size()) + ")");
            selected.push_back(idx);
        }
    }
    {
        std::lock_guard<std::mutex> lock(d.mutex);
        if (d.running) return;
        d.selected = selected;
        d.encoderLabel = d.encoder->plugin().name;
        d.running = true;
        d.finished = false;
    }
    d.log.information("agent %s: starting: relay %s, capture %s (%z monitors), encoder %s, %.1f fps, quality %d",
                      d.options.clientId, d.options.relayUrl, d.capture->plugin().name,
                      selected.size(), d.encoder->plugin().name, d.options.flow.fps, d.options.flow.quality);
    d.connThread = std::thread([&d] { d.connectionLoop(); });
    d.captureThread = std::thread([&d] { d.captureLoop(); });
    d.encodeThread = std::thread([&d] { d.encodeLoop(); });
}

void AgentRuntime::stop() {
    Impl& d = *impl_;
    {
        std::lock_guard<std::mutex> lock(d.mutex);
        d.running = false;
    }
    d.wake.notify_all();
    d.closeSocket();
    if (d.encodeThread.joinable()) d.encodeThread.join();
    if (d.captureThread.joinable()) d.captureThread.join();
    if (d.connThread.joinable()) d.connThread.join();
}

bool AgentRuntime::waitFinished(std::chrono::milliseconds timeout) {
    Impl& d = *impl_;
    std::unique_lock<std::mutex> lock(d.mutex);
    return d.wake.wait_for(lock, timeout, [&] { return d.finished; });
}

std::string AgentRuntime::fatalReason() const {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    return impl_->fatal;
}

AgentStats AgentRuntime::stats() const {
    const Impl& d = *impl_;
    AgentStats s;
    std::lock_guard<std::mutex> lock(d.mutex);
    s.connected = d.connected;
    s.registered = d.registered;
    s.streaming = d.streaming;
    s.connections = d.connections;
    s.framesCaptured = d.captured;
    s.framesEncoded = d.encoded;
    s.framesSent = d.flow.sent();
    s.framesDroppedWindow = d.flow.dropped();
    s.framesAcked = d.flow.acked();
    s.framesLost = d.flow.lost();
    s.bytesSent = d.bytesSent;
    s.commandsExecuted = d.commandsExecuted;
    s.commandsDuplicate = d.commandsDuplicate;
    s.captureErrors = d.captureErrors;
    s.encodeErrors = d.encodeErrors;
    s.inFlight = static_cast<int>(d.flow.inFlight());
    s.quality = d.flow.quality();
    s.fps = d.flow.fps();
    s.lastAckLatencyMs = d.lastLatencyMs;
    s.encoder = d.encoderLabel;
    s.breaker = d.breakerState;
    return s;
}

}  // namespace deskstream::agent
