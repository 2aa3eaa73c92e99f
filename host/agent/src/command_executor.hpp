// Runs the commands that need the agent's plugins: set_config (monitors, encoder; fps and
// quality are the core session's), input (the capture plugin's inject_input) and
// request_keyframe. Whether a command runs at all (at most once per commandId) is the core
// session's decision, not this class's.
#pragma once

#include "capture_device.hpp"
#include "ports.hpp"

#include "deskstream/agent/agent.hpp"

#include <Poco/Logger.h>

#include <mutex>
#include <string>
#include <vector>

namespace deskstream::agent {

class CommandExecutor : public CommandRunner {
public:
    CommandExecutor(std::vector<ds_monitor_info> monitors, CaptureDevice& capture,
                    EncoderSwitch& encoder, MonitorSelection& selection, EncoderFactory factory,
                    std::string clientId, Poco::Logger& log);

    std::string run(const core::Command& command) override;
    /// The monitor layout changed (DS_REINIT): set_config monitors are checked against these.
    void setMonitors(std::vector<ds_monitor_info> monitors);

private:
    std::string applyConfig(const core::SetConfig& config);
    std::string applyInput(const core::InputCommand& input);

    std::mutex monitorsMutex_;
    std::vector<ds_monitor_info> monitors_;
    CaptureDevice& capture_;
    EncoderSwitch& encoder_;
    MonitorSelection& selection_;
    EncoderFactory factory_;
    const std::string clientId_;
    Poco::Logger& log_;
};

}  // namespace deskstream::agent
