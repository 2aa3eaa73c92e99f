// The relay's own WebSocket upgrade (see ws_upgrade.hpp).
#include "ws_upgrade.hpp"

#include <Poco/Base64Encoder.h>
#include <Poco/Buffer.h>
#include <Poco/Net/HTTPServerRequestImpl.h>
#include <Poco/Net/HTTPServerSession.h>
#include <Poco/SHA1Engine.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/String.h>

#include <algorithm>
#include <cctype>
#include <sstream>

namespace deskstream::relay {

namespace {

bool hasToken(const std::string& header, const std::string& token) {
    std::istringstream in(header);
    std::string part;
    while (std::getline(in, part, ',')) {
        if (Poco::icompare(Poco::trim(part), token) == 0) return true;
    }
    return false;
}

// A Sec-WebSocket-Key is base64 of 16 bytes: 22 base64 digits and "==".
bool isWebSocketKey(const std::string& key) {
    if (key.size() != 24 || key[22] != '=' || key[23] != '=') return false;
    return std::all_of(key.begin(), key.begin() + 22, [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '/';
    });
}

}  // namespace

std::optional<std::string> upgradeProblem(const Poco::Net::HTTPServerRequest& request,
                                          bool& badVersion) {
    badVersion = false;
    if (!hasToken(request.get("Connection", ""), "upgrade") ||
        Poco::icompare(request.get("Upgrade", ""), "websocket") != 0)
        return std::string("WebSocket upgrade required: No WebSocket handshake");
    if (request.getMethod() != Poco::Net::HTTPRequest::HTTP_GET)
        return std::string("WebSocket upgrade must use GET");
    if (request.getVersion() != Poco::Net::HTTPMessage::HTTP_1_1)
        return std::string("WebSocket upgrade needs HTTP/1.1");
    if (request.get("Sec-WebSocket-Version", "") != "13") {
        badVersion = true;
        return std::string(
            "WebSocket upgrade: unsupported or missing Sec-WebSocket-Version (13 expected)");
    }
    if (!isWebSocketKey(Poco::trim(request.get("Sec-WebSocket-Key", ""))))
        return std::string("WebSocket upgrade: Sec-WebSocket-Key must be base64 of 16 bytes");
    return std::nullopt;
}

std::string websocketAccept(const std::string& key) {
    Poco::SHA1Engine sha1;
    sha1.update(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    const Poco::DigestEngine::Digest& digest = sha1.digest();
    std::ostringstream out;
    Poco::Base64Encoder encoder(out);
    encoder.write(reinterpret_cast<const char*>(digest.data()),
                  static_cast<std::streamsize>(digest.size()));
    encoder.close();
    return out.str();
}

Upgraded acceptUpgrade(Poco::Net::HTTPServerRequest& request,
                       Poco::Net::HTTPServerResponse& response) {
    response.setStatusAndReason(Poco::Net::HTTPResponse::HTTP_SWITCHING_PROTOCOLS);
    response.set("Upgrade", "websocket");
    response.set("Connection", "Upgrade");
    response.set("Sec-WebSocket-Accept",
                 websocketAccept(Poco::trim(request.get("Sec-WebSocket-Key", ""))));
    response.setContentLength(Poco::Net::HTTPResponse::UNKNOWN_CONTENT_LENGTH);
    response.send().flush();
    // As Poco's own WebSocket constructor does: HTTPServer always hands an HTTPServerRequestImpl.
    auto& impl = static_cast<Poco::Net::HTTPServerRequestImpl&>(request);
    Upgraded up;
    up.socket = impl.detachSocket();
    Poco::Buffer<char> buffered(0);
    impl.session().drainBuffer(buffered);
    up.early.assign(buffered.begin(), buffered.end());
    return up;
}

}  // namespace deskstream::relay
