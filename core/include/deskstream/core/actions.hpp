// deskstream core: actions returned by the relay-side state machines (Registry, ...).
//
// The core never performs I/O: it returns a list of actions, and the host performs them IN
// ORDER (the order matters: e.g. a registration_failed message comes before its close).
#pragma once

#include "deskstream/core/protocol.hpp"
#include "deskstream/core/types.hpp"

#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace deskstream::core {

/// A row of active_desktop_clients, ready for ds_store_vtable::register_client.
struct ClientRecord {
    std::string clientId;
    std::string name;
    std::string hostname;
    std::string instanceId;
    std::string monitorsJson;      // JSON array text
    std::string capabilitiesJson;  // JSON object text
    WallMs connectedAtMs = 0;
    WallMs lastPingMs = 0;
    bool operator==(const ClientRecord& o) const;
};

/// A row of relay_instances (ds_store_vtable::upsert_instance / list_instances).
struct InstanceRecord {
    std::string instanceId;
    std::string publicUrl;  // "" when the instance has none (no redirects to it)
    WallMs startedAtMs = 0;
    WallMs lastSeenMs = 0;
};

/// Send `message` (serialize() it) on connection `conn`.
struct SendAction {
    ConnId conn = 0;
    Message message;
};

/// Close connection `conn` with a WebSocket close frame (code, reason), then drop it.
/// The host calls the matching on...Closed() of the core afterwards as for any close.
struct CloseAction {
    ConnId conn = 0;
    int code = close_code::kNormal;
    std::string reason;
};

/// Write the registration durably (register_client), then report the outcome with
/// Registry::onStoreResult(conn, ok, error, now). Until then `conn` is pending: it gets no
/// handshake_ack, is invisible to viewers and its frames must be ignored.
struct StoreRegisterAction {
    ConnId conn = 0;
    ClientRecord record;
};

/// Remove the registration (unregister_client(clientId, instanceId)). Fire and forget.
struct StoreUnregisterAction {
    std::string clientId;
    std::string instanceId;
};

/// Fan-out bookkeeping: start delivering frames of agent connection `agent` to `viewer`
/// (monitor filter: empty = all monitors).
struct AttachViewerAction {
    ConnId agent = 0;
    ConnId viewer = 0;
    std::optional<int> monitor;
};

/// Stop delivering frames of agent connection `agent` to `viewer`.
struct DetachViewerAction {
    ConnId agent = 0;
    ConnId viewer = 0;
};

using Action = std::variant<SendAction, CloseAction, StoreRegisterAction, StoreUnregisterAction,
                            AttachViewerAction, DetachViewerAction>;
using Actions = std::vector<Action>;

}  // namespace deskstream::core
