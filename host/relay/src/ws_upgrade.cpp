// The relay's own WebSocket upgrade (see ws_upgrade.hpp).
#include "ws_upgrade.hpp"

#include <Poco/Base64Decoder.h>
#include <Poco/Base64Encoder.h>
#include <Poco/Buffer.h>
#include <Poco/Net/HTTPServerRequestImpl.h>
#include <Poco/Net/HTTPServerSession.h>
#include <Poco/SHA1Engine.h>
#include <Poco/String.h>

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

size_t decodedLength(const std::string& key) {
    std::istringstream in(key);
    Poco::Base64Decoder decoder(in);
    std::string out;
    try {
        char c;
        while (decoder.get(c)) {
            out.push_back(c);
            if (out.size() > 64) break;
        }
    } catch (...) {
        return 0;
    }
    return out.size();
}

}  // namespace

std::optional<std::string> upgradeProblem(const Poco::Net::HTTPServerRequest& request,
                                          bool& badVersion) {
    badVersion = false;
    if (request.getMethod() != "GET") return std::string("a WebSocket upgrade must be a GET");
    if (request.getVersion() != Poco::Net::HTTPMessage::HTTP_1_1)
        return std::string("a WebSocket upgrade needs HTTP/1.1");
    if (!hasToken(request.get("Connection", ""), "upgrade") ||
        Poco::icompare(request.get("Upgrade", ""), "websocket") != 0)
        return std::string("missing Connection: Upgrade / Upgrade: websocket");
    if (request.get("Sec-WebSocket-Version", "") != "13") {
        badVersion = true;
        return std::string("unsupported Sec-WebSocket-Version (13 is supported)");
    }
    const std::string key = Poco::trim(request.get("Sec-WebSocket-Key", ""));
    if (key.size() != 24 || decodedLength(key) != 16)
        return std::string("Sec-WebSocket-Key must be 16 bytes in base64");
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
