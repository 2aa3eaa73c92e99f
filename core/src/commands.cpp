#include "deskstream/core/commands.hpp"

#include <Poco/Dynamic/Var.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>

#include <algorithm>
#include <sstream>

namespace deskstream::core {

CommandRouter::CommandRouter(CommandPolicy policy, IdSource ids)
    : policy_(policy), ids_(std::move(ids)) {
    policy_.maxRoutes = std::max<std::size_t>(1, policy_.maxRoutes);
}

Result<CommandRecord> CommandRouter::prepare(const std::string& desktopClientId,
                                             const std::string& commandId, const Command& command,
                                             const std::string& origin, WallMs nowMs,
                                             const std::string& targetInstanceId) const {
    if (!isValidId(desktopClientId))
        return makeError(ErrorCode::BadRequest, "desktopClientId",
                         "field 'desktopClientId' must match [A-Za-z0-9._-]{1,128}");
    if (!commandId.empty() && !isValidId(commandId))
        return makeError(ErrorCode::BadRequest, "commandId",
                         "field 'commandId' must match [A-Za-z0-9._-]{1,128}");
    // Round-trip through the strict parser: a Command built by hand with out-of-range values
    // (e.g. set_config with nothing set) is refused exactly like one from the network.
    const std::string data = serializeCommand(command);
    Result<Command> check = parseCommand(data);
    if (!check.ok()) return check.error();

    if (commandId.empty() && !ids_)
        return makeError(ErrorCode::Internal, "commandId", "no id source for a new command id");
    CommandRecord r;
    r.id = commandId.empty() ? ids_() : commandId;
    r.clientId = desktopClientId;
    r.commandType = toString(command.type);
    r.commandDataJson = data;
    r.targetInstanceId = targetInstanceId;
    r.status = "pending";
    r.origin = origin;
    r.createdAtMs = nowMs;
    return r;
}

Result<CommandRecord> CommandRouter::prepareHttp(const std::string& desktopClientId,
                                                 const std::string& body, WallMs nowMs,
                                                 const std::string& targetInstanceId) const {
    // Reuse the message parser: the body has the shape of a viewer "command" message without
    // "type" and "desktopClientId" (those come from the URL).
    if (body.size() > limits::kMaxControlMessageBytes)
        return makeError(ErrorCode::TooLarge, "", "request body too large");
    if (auto e = integerLiteralError(body)) return *e;
    Poco::JSON::Object::Ptr obj;
    try {
        Poco::JSON::Parser parser;
        parser.setDepth(16);
        Poco::Dynamic::Var v = parser.parse(body);
        if (v.type() != typeid(Poco::JSON::Object::Ptr))
            return makeError(ErrorCode::BadRequest, "", "body must be a JSON object");
        obj = v.extract<Poco::JSON::Object::Ptr>();
    } catch (const std::exception& e) {
        return makeError(ErrorCode::BadRequest, "", std::string("malformed JSON: ") + e.what());
    }
    if (!isValidId(desktopClientId))
        return makeError(ErrorCode::BadRequest, "desktopClientId",
                         "desktop id in the URL must match [A-Za-z0-9._-]{1,128}");
    for (const char* key : {"type", "desktopClientId"})
        if (obj->has(key))
            return makeError(ErrorCode::BadRequest, key,
                             std::string("field '") + key + "' does not belong in the body");
    // The body's own text goes to the strict parser (a parsed and re-written object would turn
    // 1.5e1 into 15 and let a fractional number pass as an integer).
    const std::string text = "{\"type\":\"command\",\"desktopClientId\":\"" + desktopClientId +
                             "\"" + (obj->size() ? "," : "") + body.substr(body.find('{') + 1);
    Result<Message> m = parseMessage(text, Channel::ViewerToRelay);
    if (!m.ok()) return m.error();
    if (!std::holds_alternative<CommandMessage>(m.value()))
        return makeError(ErrorCode::BadRequest, "", "body is not a command");
    const auto& cm = std::get<CommandMessage>(m.value());
    return prepare(desktopClientId, cm.commandId, cm.command, "http", nowMs, targetInstanceId);
}

std::optional<Error> CommandRouter::conflictWith(const CommandRecord& wanted,
                                                 const CommandRecord& stored) {
    if (wanted.clientId == stored.clientId && wanted.commandType == stored.commandType &&
        wanted.commandDataJson == stored.commandDataJson)
        return std::nullopt;
    return makeError(ErrorCode::Conflict, "commandId",
                     "commandId " + wanted.id + " is already used by another command");
}

CommandQueued CommandRouter::onStored(const CommandRecord& record, ConnId originViewer,
                                      WallMs nowMs) {
    if (originViewer != 0) {
        auto it = routes_.find(record.id);
        if (it == routes_.end()) {
            while (routes_.size() >= policy_.maxRoutes && !routeOrder_.empty()) {
                routes_.erase(routeOrder_.front());
                routeOrder_.pop_front();
            }
            routes_.emplace(record.id, Route{originViewer, nowMs});
            routeOrder_.push_back(record.id);
        } else {
            it->second = Route{originViewer, nowMs};  // idempotent retry of the same id
        }
    }
    return CommandQueued{record.id, "pending"};
}

Delivery CommandRouter::decideDelivery(bool agentConnectedHere, const std::string& holderInstanceId,
                                       const std::string& myInstanceId) const {
    if (agentConnectedHere) return Delivery::DeliverHere;
    if (!holderInstanceId.empty() && holderInstanceId != myInstanceId)
        return Delivery::NotifyInstance;
    return Delivery::WaitForAgent;
}

Result<CommandMessage> CommandRouter::deliveryMessage(const CommandRecord& record) const {
    if (!isValidId(record.id))
        return makeError(ErrorCode::Internal, "id", "stored command has an invalid id");
    Result<Command> c = parseCommand(record.commandDataJson);
    if (!c.ok())
        return makeError(ErrorCode::Internal, "command_data",
                         "stored command " + record.id + " is invalid: " + c.error().message);
    CommandMessage m;
    m.commandId = record.id;
    m.command = c.value();
    return m;
}

std::string CommandRouter::resultJson(const CommandResult& result) {
    Poco::JSON::Object o(Poco::JSON_PRESERVE_KEY_ORDER);
    o.set("status", std::string(result.status == CommandStatus::Done ? "done" : "failed"));
    if (!result.error.empty()) o.set("error", result.error);
    std::ostringstream out;
    o.stringify(out);
    return out.str();
}

std::optional<CommandRouter::ResultRoute> CommandRouter::onResult(
    const CommandResult& result, const std::string& desktopClientId) {
    auto it = routes_.find(result.commandId);
    if (it == routes_.end()) return std::nullopt;
    ResultRoute r;
    r.viewer = it->second.viewer;
    r.message = result;
    r.message.desktopClientId = desktopClientId;
    routes_.erase(it);
    routeOrder_.remove(result.commandId);
    return r;
}

void CommandRouter::forgetViewer(ConnId viewer) {
    for (auto it = routes_.begin(); it != routes_.end();) {
        if (it->second.viewer == viewer) {
            routeOrder_.remove(it->first);
            it = routes_.erase(it);
        } else {
            ++it;
        }
    }
}

std::size_t CommandRouter::onTick(WallMs nowMs) {
    std::size_t dropped = 0;
    // routeOrder_ is in insertion order, which is also `since` order (onStored with a new id).
    while (!routeOrder_.empty()) {
        auto it = routes_.find(routeOrder_.front());
        if (it != routes_.end() && nowMs - it->second.since < policy_.ttlMs) break;
        if (it != routes_.end()) {
            routes_.erase(it);
            ++dropped;
        }
        routeOrder_.pop_front();
    }
    return dropped;
}

bool CommandRouter::shouldExpire(const CommandRecord& record, WallMs nowMs) const {
    if (record.status == "done" || record.status == "failed" || record.status == "expired")
        return false;  // final states are never expired
    return nowMs - record.createdAtMs >= policy_.ttlMs || record.attempts > policy_.maxAttempts;
}

std::string CommandRouter::expiryResultJson(const CommandRecord& record, WallMs nowMs) const {
    CommandResult r;
    r.status = CommandStatus::Failed;
    r.error = nowMs - record.createdAtMs >= policy_.ttlMs
                  ? "not completed within the command TTL"
                  : "no result after " + std::to_string(policy_.maxAttempts) + " deliveries";
    return resultJson(r);
}

// ============================================================================ CommandDedup

CommandDedup::CommandDedup(std::size_t capacity) : capacity_(std::max<std::size_t>(1, capacity)) {}

bool CommandDedup::markExecuted(const std::string& commandId) {
    auto it = index_.find(commandId);
    if (it != index_.end()) {
        order_.splice(order_.begin(), order_, it->second);  // most recent again
        return false;
    }
    order_.push_front(commandId);
    index_.emplace(commandId, order_.begin());
    while (index_.size() > capacity_) {
        index_.erase(order_.back());
        order_.pop_back();
    }
    return true;
}

}  // namespace deskstream::core
