// Fuzz target json_message: one WebSocket text message into the JSON control-message decoder
// (parseMessage on each of the four channels) and the other readers of the same JSON: the
// command object (parseCommand, the REST command body through CommandRouter::prepareHttp) and
// the stored monitors list (parseMonitorsJson). Promises checked (docs/protocol.md):
// - what is accepted serializes, and the serialization parses back to the same value;
// - a rejection has a message, and the relay's `error` reply built from it is itself a valid
//   message for the peer (so the message stays within the protocol's text limit).
#include "targets.hpp"

#include "deskstream/core/commands.hpp"
#include "deskstream/core/protocol.hpp"

#include <string>

namespace deskstream::fuzz {
namespace {

using namespace deskstream::core;

void checkRejection(const Error& e) {
    DS_FUZZ_CHECK(!e.message.empty(), "a rejection names what is wrong");
    for (Channel peer : {Channel::RelayToAgent, Channel::RelayToViewer})
        DS_FUZZ_CHECK(parseMessage(serializeError(e), peer).ok(),
                      "the error reply to the peer is a valid error message");
}

}  // namespace

void jsonMessage(const std::uint8_t* data, std::size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);

    for (Channel ch : {Channel::AgentToRelay, Channel::ViewerToRelay, Channel::RelayToAgent,
                       Channel::RelayToViewer}) {
        Result<Message> m = parseMessage(text, ch);
        if (!m.ok()) {
            checkRejection(m.error());
            continue;
        }
        Result<Message> again = parseMessage(serialize(m.value()), ch);
        DS_FUZZ_CHECK(again.ok(), "an accepted message serializes to an accepted message");
        DS_FUZZ_CHECK(again.value() == m.value(), "parse(serialize(m)) == m");
    }

    Result<Command> c = parseCommand(text);
    if (c.ok()) {
        Result<Command> again = parseCommand(serializeCommand(c.value()));
        DS_FUZZ_CHECK(again.ok() && again.value() == c.value(), "command round trip");
    } else {
        checkRejection(c.error());
    }

    Result<CommandRecord> r = CommandRouter(CommandPolicy{}, [] {
                                  return std::string("fuzz-id");
                              }).prepareHttp("pc-1", text, 0);
    if (r.ok()) {
        DS_FUZZ_CHECK(r.value().clientId == "pc-1", "the URL's desktop id is kept");
        DS_FUZZ_CHECK(parseCommand(r.value().commandDataJson).ok(), "the stored command parses");
    } else {
        checkRejection(r.error());
    }

    Result<std::vector<MonitorInfo>> monitors = parseMonitorsJson(text);
    if (monitors.ok()) {
        Result<std::vector<MonitorInfo>> again =
            parseMonitorsJson(monitorsToJson(monitors.value()));
        DS_FUZZ_CHECK(again.ok() && again.value() == monitors.value(), "monitors round trip");
    } else {
        checkRejection(monitors.error());
    }
}

}  // namespace deskstream::fuzz
