// The agent runtime: checks the options against the capture plugin, builds the agent's parts
// and wires them together (one-way: each part knows the session hub and the small interfaces
// of ports.hpp, never another part), runs their threads, and gathers their statistics.
//
//   RelayLink (connection thread) --text--> core::AgentSession (in the SessionHub) --actions-->
//     RelayLink: send / close / log, and AgentExecute --> CommandExecutor (CommandRunner)
//                  --> CaptureDevice (input), EncoderSlot (EncoderSwitch), CapturePipeline
//                      (MonitorSelection)
//   CapturePipeline (capture thread) --CaptureJob--> FrameMailbox --> EncoderStage (encode
//     thread) --binary frame--> RelayLink (FrameSender)
//
// See docs/architecture.md ("The agent") and docs/agent.md.
#include "deskstream/agent/agent.hpp"

#include "capture_device.hpp"
#include "capture_pipeline.hpp"
#include "command_executor.hpp"
#include "encoder_slot.hpp"
#include "encoder_stage.hpp"
#include "frame_mailbox.hpp"
#include "relay_link.hpp"
#include "session_hub.hpp"

#include "deskstream/core/agent_metrics.hpp"
#include "deskstream/core/frame_header.hpp"

#include <Poco/Logger.h>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <random>
#include <stdexcept>
#include <thread>

namespace deskstream::agent {

namespace {

core::AgentSessionConfig sessionConfig(const AgentOptions& o) {
    core::AgentSessionConfig c;
    c.flow = o.flow;
    c.reconnect = o.reconnect;
    c.heartbeatInterval = o.heartbeatInterval;
    c.missedLimit = o.missedLimit;
    c.handshakeTimeout = o.handshakeTimeout;
    // Damage encoding: a still screen sends nothing, so no periodic picture; a viewer that
    // needs one gets it through start_stream or request_keyframe (docs/agent.md).
    if (o.damageEncoding) c.pictureRefresh = core::Duration::max();
    return c;
}

// The reconnection jitter's randomness: the OS seeds it here, never in core.
std::function<double()> osUniform01() {
    auto rng = std::make_shared<std::mt19937_64>(std::random_device{}());
    return [rng] { return std::uniform_real_distribution<double>(0.0, 1.0)(*rng); };
}

}  // namespace

struct AgentRuntime::Impl : LayoutListener {
    AgentRuntime& owner;
    const AgentOptions options;
    Poco::Logger& log = Poco::Logger::get("agent");
    std::unique_ptr<CaptureInstance> captureInstance;  // until start() hands them to the parts
    std::unique_ptr<EncoderInstance> encoderInstance;
    EncoderFactory encoderFactory;

    SessionHub hub;
    core::AgentMetrics metrics;
    FrameMailbox mailbox;
    mutable std::mutex monitorsMutex;          // the capture thread changes, the link reads
    std::vector<ds_monitor_info> monitorInfo;  // as listed at start, then at each DS_REINIT
    std::unique_ptr<CaptureDevice> capture;
    std::unique_ptr<CapturePipeline> pipeline;
    std::unique_ptr<EncoderSlot> encoder;
    std::unique_ptr<EncoderStage> encoderStage;
    std::unique_ptr<CommandExecutor> executor;
    std::unique_ptr<RelayLink> link;
    std::thread connThread, captureThread, encodeThread;
    bool started = false;
    FirstFrame first;

    Impl(AgentRuntime& o, AgentOptions opts, std::unique_ptr<CaptureInstance> c,
         std::unique_ptr<EncoderInstance> e, EncoderFactory f)
        : owner(o),
          options(std::move(opts)),
          captureInstance(std::move(c)),
          encoderInstance(std::move(e)),
          encoderFactory(std::move(f)),
          hub(sessionConfig(options), osUniform01()),
          metrics(options.metrics) {}

    core::Handshake buildHandshake() const {
        core::Handshake h;
        h.role = core::Role::Desktop;
        h.clientId = options.clientId;
        h.token = options.token;
        h.name = options.name;
        h.hostname = options.hostname;
        std::lock_guard<std::mutex> lock(monitorsMutex);
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
        // The SDK's codec numbers are the protocol's codec byte (plugin.h), checked by the loader.
        h.capabilities.codecs = {core::toString(static_cast<core::FrameCodec>(encoder->codec()))};
        h.capabilities.input = capture->canInject();
        return h;
    }

    void refused(const std::string& why) {
        if (!hub.running()) return;  // stopping anyway: a normal stop keeps exit code 0
        owner.exitCode_ = 2;         // before waitFinished() can return
        hub.finish(why);
        link->interrupt();
    }

    // One grab per selected monitor through both plugins proves the pair works, and each picture
    // becomes that monitor's last frame: a damage-driven plugin gives a still screen's whole
    // picture only once, and a viewer that arrives later must still get it (docs/agent.md).
    // Before the threads start; a combined layout of several monitors starts with none.
    void primeLastFrames(const std::vector<int>& selected) {
        if (options.combined && selected.size() > 1) return;
        for (int idx : selected) {
            capture->locked([&](host::CaptureInstance& c) {
                host::CaptureInstance::Frame frame;
                ds_status s = c.grab(static_cast<uint32_t>(idx), 1000, frame);
                if (s == DS_REINIT) {  // changed since listed: nothing is announced yet, re-list
                    std::vector<ds_monitor_info> now = c.monitors();
                    std::lock_guard<std::mutex> lock(monitorsMutex);
                    monitorInfo = std::move(now);
                    s = c.grab(static_cast<uint32_t>(idx), 1000, frame);
                }
                if (s != DS_OK) return;
                const std::size_t bytes = encoderStage->prime(static_cast<std::uint16_t>(idx),
                                                              *frame, frame->capture_time_us);
                if (first.captured) return;
                first.captured = true;
                first.width = frame->width;
                first.height = frame->height;
                first.bytes = bytes;
            });
        }
    }

    // DS_REINIT (capture thread): the relay must learn the new layout, and frames of the new
    // size must not go out under the old one. The protocol has no message for a changed layout,
    // so the agent re-registers: it closes the connection (1000) and the next handshake carries
    // the new monitors (docs/agent.md, "Monitor layout changes").
    void layoutChanged(std::vector<ds_monitor_info> now) override {
        std::vector<int> selected;
        std::size_t before = 0;
        {
            std::lock_guard<std::mutex> lock(monitorsMutex);
            before = monitorInfo.size();
            monitorInfo = now;
        }
        for (const auto& m : now) {
            const int idx = static_cast<int>(m.index);
            if (options.allMonitors || std::find(options.monitors.begin(), options.monitors.end(),
                                                 idx) != options.monitors.end())
                selected.push_back(idx);
        }
        if (selected.empty()) {  // every configured monitor is gone: show what there is
            for (const auto& m : now) selected.push_back(static_cast<int>(m.index));
            log.warning(
                "agent %s: none of [agent] monitors exists after the layout change; streaming all "
                "%z",
                options.clientId, now.size());
        }
        log.warning(
            "agent %s: monitor layout changed (%z -> %z monitors); re-registering with the new "
            "layout",
            options.clientId, before, now.size());
        executor->setMonitors(now);
        encoderStage->forgetLastFrames();  // their size is the old layout's
        pipeline->select(std::move(selected));
        link->reregister("monitor layout changed");
    }

    std::vector<int> selectMonitors() const {
        std::vector<int> selected;
        if (options.allMonitors) {
            for (const auto& m : monitorInfo) selected.push_back(static_cast<int>(m.index));
            return selected;
        }
        for (int idx : options.monitors) {
            bool known = std::any_of(
                monitorInfo.begin(), monitorInfo.end(),
                [&](const ds_monitor_info& m) { return static_cast<int>(m.index) == idx; });
            if (!known)
                throw std::runtime_error("[agent] monitors: monitor " + std::to_string(idx) +
                                         " does not exist (the capture plugin has " +
                                         std::to_string(monitorInfo.size()) + ")");
            selected.push_back(idx);
        }
        return selected;
    }
};

AgentRuntime::AgentRuntime(AgentOptions options, std::unique_ptr<CaptureInstance> capture,
                           std::unique_ptr<EncoderInstance> encoder, EncoderFactory encoderFactory)
    : impl_(std::make_unique<Impl>(*this, std::move(options), std::move(capture),
                                   std::move(encoder), std::move(encoderFactory))) {}

AgentRuntime::~AgentRuntime() { stop(); }

void AgentRuntime::start() {
    Impl& d = *impl_;
    if (d.started) return;
    if (!d.captureInstance || !d.encoderInstance)
        throw std::runtime_error("agent needs a capture and an encoder plugin");
    if (!core::isValidId(d.options.clientId))
        throw std::runtime_error("[agent] client_id '" + d.options.clientId +
                                 "' is invalid: use 1-128 of A-Z a-z 0-9 . _ -");
    d.monitorInfo = d.captureInstance->monitors();
    if (d.monitorInfo.empty())
        throw std::runtime_error("capture plugin '" + d.captureInstance->plugin().name +
                                 "' reports no monitor");
    std::vector<int> selected = d.selectMonitors();

    const std::string& id = d.options.clientId;
    d.log.information(
        "agent %s: starting: relay %s, capture %s (%z monitors), encoder %s, %.1f fps, quality "
        "%d, %s encoding",
        id, d.options.relayUrl, d.captureInstance->plugin().name, selected.size(),
        d.encoderInstance->plugin().name, d.options.flow.fps, d.options.flow.quality,
        std::string(d.options.damageEncoding ? "damage" : "full"));
    d.capture = std::make_unique<CaptureDevice>(std::move(d.captureInstance));
    d.pipeline = std::make_unique<CapturePipeline>(*d.capture, d.hub, d.mailbox, d, d.metrics,
                                                   selected, d.options.combined, id, d.log);
    d.encoder = std::make_unique<EncoderSlot>(std::move(d.encoderInstance));
    d.executor = std::make_unique<CommandExecutor>(d.monitorInfo, *d.capture, *d.encoder,
                                                   *d.pipeline, d.encoderFactory, id, d.log);
    LinkOptions lo;
    lo.relayUrl = d.options.relayUrl;
    lo.clientId = id;
    lo.connectTimeout = d.options.connectTimeout;
    lo.sendTimeout = d.options.sendTimeout;
    lo.maxMessageBytes = d.options.maxMessageBytes;
    lo.tlsCa = d.options.tlsCa;
    lo.tlsInsecure = d.options.tlsInsecure;
    // Half a heartbeat interval: a dead link is then still seen within interval x (missed + 1)
    // plus this wait (docs/agent.md).
    lo.controlSendWait = std::clamp(d.options.heartbeatInterval / 2, std::chrono::milliseconds(50),
                                    std::chrono::milliseconds(2000));
    d.link = std::make_unique<RelayLink>(
        lo, d.hub, *d.executor, d.metrics, [&d] { return d.buildHandshake(); },
        [&d](const std::string& why) { d.refused(why); }, d.log);
    std::optional<core::damage::TrackerConfig> damage;
    if (d.options.damageEncoding) damage = d.options.damage;
    d.encoderStage =
        std::make_unique<EncoderStage>(*d.encoder, d.hub, d.mailbox, *d.link, d.metrics, id, d.log,
                                       damage, d.options.losslessEncoder);
    d.primeLastFrames(selected);

    d.started = true;
    d.hub.start();
    d.connThread = std::thread([&d] { d.link->run(); });
    d.captureThread = std::thread([&d] { d.pipeline->run(); });
    d.encodeThread = std::thread([&d] { d.encoderStage->run(); });
}

void AgentRuntime::stop() {
    Impl& d = *impl_;
    if (!d.started) return;
    d.hub.stop();
    d.mailbox.close();
    d.link->interrupt();
    if (d.encodeThread.joinable()) d.encodeThread.join();
    if (d.captureThread.joinable()) d.captureThread.join();
    if (d.connThread.joinable()) d.connThread.join();
    d.pipeline->releaseAll();  // every thread is gone: frames still held go back to the plugin
}

bool AgentRuntime::waitFinished(std::chrono::milliseconds timeout) {
    return impl_->hub.waitFinished(timeout);
}

std::string AgentRuntime::fatalReason() const { return impl_->hub.fatalReason(); }

FirstFrame AgentRuntime::firstFrame() const { return impl_->first; }

std::shared_ptr<core::metrics::Registry> AgentRuntime::metricsRegistry() const {
    return impl_->metrics.registry();
}

AgentStats AgentRuntime::stats() const {
    const Impl& d = *impl_;
    AgentStats s;
    d.hub.with([&](const core::AgentSession& session) {
        const core::AgentFlow& flow = session.flow();
        s.connected = session.connected();
        s.registered = session.registered();
        s.streaming = session.streaming();
        s.connections = session.counters().registrations;
        s.framesEncoded = session.counters().framesEncoded;
        s.commandsExecuted = session.counters().commandsExecuted;
        s.commandsDuplicate = session.counters().commandsDuplicate;
        s.framesSent = flow.sent();
        s.framesDroppedWindow = flow.dropped();
        s.framesAcked = flow.acked();
        s.framesLost = flow.lost();
        s.inFlight = static_cast<int>(flow.inFlight());
        s.quality = flow.quality();
        s.fps = flow.fps();
        auto latency = session.lastAckLatency();
        s.lastAckLatencyMs = latency ? core::toMs(*latency) : -1;
        s.breaker = core::toString(session.breaker());
    });
    if (d.pipeline) {
        s.framesCaptured = d.pipeline->captured();
        s.captureErrors = d.pipeline->errors();
    }
    if (d.encoderStage) s.encodeErrors = d.encoderStage->errors();
    if (d.encoder) {
        s.encoder = d.encoder->name();
    } else if (d.encoderInstance) {
        s.encoder = d.encoderInstance->plugin().name;
    }
    if (d.link) s.bytesSent = d.link->bytesSent();
    return s;
}

}  // namespace deskstream::agent
