// The WebSocket upgrade (RFC 6455 4.2) done by the relay itself instead of Poco's WebSocket
// constructor, so the upgraded socket can go to an I/O loop (docs/relay.md, "Event-driven
// I/O"): check the request, send the 101, detach the socket from the HTTP server together with
// any bytes it had already read past the request.
#pragma once

#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/StreamSocket.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace deskstream::relay {

// Why the request is not a valid WebSocket upgrade; nullopt when it is. `badVersion`: the
// version is not 13 (the answer then names the supported one).
std::optional<std::string> upgradeProblem(const Poco::Net::HTTPServerRequest& request,
                                          bool& badVersion);

// Sec-WebSocket-Accept for a client's Sec-WebSocket-Key.
std::string websocketAccept(const std::string& key);

struct Upgraded {
    Poco::Net::StreamSocket socket;
    std::vector<std::uint8_t> early;  // bytes the HTTP session read past the request
};

// Sends the 101 and takes the socket over from the HTTP server. The request must have passed
// upgradeProblem(). Throws Poco::Exception when the 101 cannot be sent.
Upgraded acceptUpgrade(Poco::Net::HTTPServerRequest& request,
                       Poco::Net::HTTPServerResponse& response);

}  // namespace deskstream::relay
