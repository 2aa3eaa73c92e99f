// The small interfaces between the relay's parts, so that each part depends one way only:
// the fan-out (Streams), command delivery and the maintenance jobs reach connections through
// Peers and registered agents through AgentDirectory, never through RelayImpl or Session; the
// session map holds PeerConnections, not Sessions.
// Also Counters, the relay's counter set that every part increments.
#pragma once

#include "deskstream/core/protocol.hpp"
#include "deskstream/core/relay_connection.hpp"
#include "deskstream/core/types.hpp"

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace deskstream::relay {

// Per-relay counters: core's list (names are stable, see docs/relay.md); their spelling is
// core::counterName (found by argument-dependent lookup as counterName(c)).
using Counter = core::RelayCounter;

class Counters {
public:
    void count(Counter c, uint64_t n = 1) { values_[static_cast<size_t>(c)].fetch_add(n); }
    std::map<std::string, uint64_t> snapshot() const {
        std::map<std::string, uint64_t> out;
        for (size_t i = 0; i < values_.size(); ++i)
            out[counterName(static_cast<Counter>(i))] = values_[i].load();
        return out;
    }

private:
    std::array<std::atomic<uint64_t>, static_cast<size_t>(Counter::kCount)> values_{};
};

// What the other parts may do with one live connection (Session implements it), so the
// session map needs neither Session nor RelayImpl.
class PeerConnection {
public:
    virtual ~PeerConnection() = default;
    // Queue onto the connection (its I/O loop writes); false when it is closing or too slow.
    virtual bool sendMessage(const core::Message& message) = 0;
    // The same for text already serialized (a notice sent to many connections).
    virtual bool sendText(std::string text) = 0;
    // CLOSE after what is queued / at once (queued messages dropped).
    virtual void close(int code, const std::string& reason) = 0;
    virtual void closeNow(int code, const std::string& reason) = 0;
    // A viewer's I/O loop has frames to pull.
    virtual void notifyFrames() = 0;
    // Its reader asks for its next deadline again (another thread changed it).
    virtual void wake() = 0;
};

// Reaches a live connection by id (SessionMap). Sends only queue onto the peer's connection.
class Peers {
public:
    virtual ~Peers() = default;
    virtual bool send(core::ConnId conn, const core::Message& message) = 0;
    virtual void close(core::ConnId conn, int code, const std::string& reason) = 0;
    // A viewer's I/O loop has frames to pull.
    virtual void notifyFrames(core::ConnId viewer) = 0;
    // The connection's deadline changed (e.g. an agent's key frame retry): its reader asks again.
    virtual void wake(core::ConnId conn) = 0;
};

// Where the agents registered on this instance are (the Registry, under the relay's lock).
class AgentDirectory {
public:
    virtual ~AgentDirectory() = default;
    virtual std::optional<core::ConnId> agentConn(const std::string& clientId) const = 0;
    virtual std::vector<std::string> localAgents() const = 0;
};

}  // namespace deskstream::relay
