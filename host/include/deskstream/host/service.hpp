// A long-running part of the host (HTTP server, agent, relay). The Host starts services in the
// order they were added and stops them in reverse order.
#pragma once

#include <string>

namespace deskstream::host {

class Service {
public:
    virtual ~Service() = default;
    virtual std::string name() const = 0;
    // Throws (std::exception) when the service cannot start; start-up stops with the message.
    virtual void start() = 0;
    // Must be safe to call after a failed or partial start(), and must not throw.
    virtual void stop() noexcept = 0;
    // Non-empty when the service ended by itself and the process should exit (e.g. the agent
    // after registration_failed); the host then stops and exits with a non-zero status.
    virtual std::string fatalError() const { return {}; }
};

}  // namespace deskstream::host
