// The small interfaces through which the agent's parts talk, so that each part depends only on
// these and on the session hub, never on another part (no include cycle; see
// docs/architecture.md, "The agent").
#pragma once

#include "deskstream/core/protocol.hpp"
#include "deskstream/host/instances.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace deskstream::agent {

/// Where the encoder stage hands a finished binary frame (header + payload): the relay link.
class FrameSender {
public:
    virtual ~FrameSender() = default;
    /// False when it could not be sent (no connection, send failed).
    virtual bool sendFrame(const std::uint8_t* data, std::size_t size) = 0;
};

/// Runs a command the core session handed out (set_config, input, request_keyframe).
class CommandRunner {
public:
    virtual ~CommandRunner() = default;
    /// Returns "" when done, else the reason it failed. May throw (treated as failed).
    virtual std::string run(const core::Command& command) = 0;
};

/// The monitors the capture pipeline grabs (set_config monitors).
class MonitorSelection {
public:
    virtual ~MonitorSelection() = default;
    virtual void select(std::vector<int> monitors) = 0;
};

/// Told when the capture plugin said DS_REINIT: the monitor layout changed, these are the new
/// monitors (the runtime re-selects, forgets the last frames and re-registers).
class LayoutListener {
public:
    virtual ~LayoutListener() = default;
    virtual void layoutChanged(std::vector<ds_monitor_info> monitors) = 0;
};

/// The encoder in use (set_config encoder, the handshake's codec).
class EncoderSwitch {
public:
    virtual ~EncoderSwitch() = default;
    virtual std::string name() const = 0;
    virtual ds_codec codec() const = 0;
    virtual void replace(std::unique_ptr<host::EncoderInstance> next) = 0;
};

}  // namespace deskstream::agent
