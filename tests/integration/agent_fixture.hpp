// The host's agent runtime inside an integration test process (streaming, TLS and x11 streaming
// tests): the options of an agent that reconnects at once, an agent built from the build's
// capture plugin and the JPEG encoder, and the request handler factory of the relay stand-ins.
#pragma once

#include "deskstream/agent/agent.hpp"
#include "deskstream/host/config.hpp"
#include "deskstream/host/plugin_registry.hpp"

#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Buffer.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/WebSocket.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <utility>

namespace ds_itest {

// An agent the test may cut off: heartbeats every 200 ms, reconnects within 50-300 ms and never
// gives up, so a test sees it come back well inside its bounds.
inline deskstream::agent::AgentOptions reconnectingAgentOptions(const std::string& relayUrl,
                                                                const std::string& clientId) {
    deskstream::agent::AgentOptions o;
    o.relayUrl = relayUrl;
    o.clientId = clientId;
    o.hostname = "test";
    o.heartbeatInterval = std::chrono::milliseconds(200);
    o.reconnect.baseDelay = std::chrono::milliseconds(50);
    o.reconnect.maxDelay = std::chrono::milliseconds(300);
    o.reconnect.failureThreshold = 1000;
    return o;
}

// A started agent runtime with the capture plugin `capture` and the JPEG encoder, both configured
// from `config` (scan the plugin folder into `plugins` first).
inline std::unique_ptr<deskstream::agent::AgentRuntime> startAgentRuntime(
    deskstream::agent::AgentOptions o, deskstream::host::PluginRegistry& plugins,
    deskstream::host::Configuration& config, const std::string& capture) {
    auto agent = std::make_unique<deskstream::agent::AgentRuntime>(
        std::move(o),
        std::make_unique<deskstream::host::CaptureInstance>(
            plugins.require(DS_KIND_CAPTURE, capture, "test"), config.poco()),
        std::make_unique<deskstream::host::EncoderInstance>(
            plugins.require(DS_KIND_ENCODER, "jpeg", "test"), config.poco()));
    agent->start();
    return agent;
}

// A relay stand-in's read of the agent's next frame into `buf`, in 100 ms waits while `stop` is
// unset: the frame's opcode, or -1 once the agent closed or `stop` was set.
inline int nextAgentFrame(Poco::Net::WebSocket& ws, Poco::Buffer<char>& buf,
                          const std::atomic<bool>& stop) {
    ws.setReceiveTimeout(Poco::Timespan(0, 100000));
    while (!stop) {
        buf.resize(0);
        int flags = 0;
        try {
            if (ws.receiveFrame(buf, flags) == 0 && flags == 0) return -1;
        } catch (const Poco::TimeoutException&) {
            continue;
        }
        const int op = flags & Poco::Net::WebSocket::FRAME_OP_BITMASK;
        return op == Poco::Net::WebSocket::FRAME_OP_CLOSE ? -1 : op;
    }
    return -1;
}

// Gives each request a new Handler(owner): the relay stand-ins' one connection handler.
template <class Handler, class Owner>
struct HandlerFactoryOf : Poco::Net::HTTPRequestHandlerFactory {
    explicit HandlerFactoryOf(Owner& o) : owner(o) {}
    Poco::Net::HTTPRequestHandler* createRequestHandler(
        const Poco::Net::HTTPServerRequest&) override {
        return new Handler(owner);
    }
    Owner& owner;
};

}  // namespace ds_itest
