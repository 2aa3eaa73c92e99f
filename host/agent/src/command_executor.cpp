// The agent's command executor: set_config, input, request_keyframe (see command_executor.hpp).
#include "command_executor.hpp"

#include <algorithm>

namespace deskstream::agent {

CommandExecutor::CommandExecutor(std::vector<ds_monitor_info> monitors, CaptureDevice& capture,
                                 EncoderSwitch& encoder, MonitorSelection& selection,
                                 EncoderFactory factory, std::string clientId, Poco::Logger& log)
    : monitors_(std::move(monitors)),
      capture_(capture),
      encoder_(encoder),
      selection_(selection),
      factory_(std::move(factory)),
      clientId_(std::move(clientId)),
      log_(log) {}

std::string CommandExecutor::run(const core::Command& c) {
    switch (c.type) {
        case core::CommandType::SetConfig:
            return applyConfig(c.config);
        case core::CommandType::Input:
            return applyInput(c.input);
        case core::CommandType::RequestKeyframe:
            return {};  // every frame the in-tree encoders produce is a key frame
        case core::CommandType::StartStream:
        case core::CommandType::StopStream:
            return {};  // the core session's own
    }
    return "unknown command";
}

void CommandExecutor::setMonitors(std::vector<ds_monitor_info> monitors) {
    std::lock_guard<std::mutex> lock(monitorsMutex_);
    monitors_ = std::move(monitors);
}

// Checks everything first, so a failed set_config changes nothing. The core session applies
// fps and quality once this returned "" (done).
std::string CommandExecutor::applyConfig(const core::SetConfig& cfg) {
    if (cfg.monitors) {
        std::lock_guard<std::mutex> lock(monitorsMutex_);
        for (int idx : *cfg.monitors) {
            bool known = std::any_of(
                monitors_.begin(), monitors_.end(),
                [&](const ds_monitor_info& m) { return static_cast<int>(m.index) == idx; });
            if (!known) return "set_config: monitor " + std::to_string(idx) + " does not exist";
        }
    }
    if (cfg.encoder && *cfg.encoder != encoder_.name()) {
        if (!factory_) return "set_config: this agent cannot switch encoders";
        encoder_.replace(factory_(*cfg.encoder));  // throws with the reason
        log_.information("agent %s: encoder switched to %s", clientId_, *cfg.encoder);
    }
    if (cfg.monitors) selection_.select(*cfg.monitors);
    return {};
}

std::string CommandExecutor::applyInput(const core::InputCommand& in) {
    if (!capture_.canInject())
        return "input: the capture plugin '" + capture_.name() + "' cannot inject input";
    ds_input_event ev{};
    ev.struct_size = sizeof ev;
    switch (in.event) {
        case core::InputEvent::MouseMove:
            ev.type = DS_INPUT_MOUSE_MOVE;
            break;
        case core::InputEvent::MouseDown:
            ev.type = DS_INPUT_MOUSE_DOWN;
            break;
        case core::InputEvent::MouseUp:
            ev.type = DS_INPUT_MOUSE_UP;
            break;
        case core::InputEvent::Wheel:
            ev.type = DS_INPUT_WHEEL;
            break;
        case core::InputEvent::KeyDown:
            ev.type = DS_INPUT_KEY_DOWN;
            break;
        case core::InputEvent::KeyUp:
            ev.type = DS_INPUT_KEY_UP;
            break;
    }
    ev.monitor = static_cast<uint32_t>(in.monitor.value_or(0));
    ev.x = in.x.value_or(0);
    ev.y = in.y.value_or(0);
    ev.button = in.button.value_or(0);
    ev.delta_x = in.deltaX.value_or(0);
    ev.delta_y = in.deltaY.value_or(0);
    std::string key = in.key.value_or("");
    ev.key = in.key ? key.c_str() : nullptr;
    capture_.inject(ev);  // throws PluginError with the plugin's message
    return {};
}

}  // namespace deskstream::agent
