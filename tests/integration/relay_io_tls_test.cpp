// The relay's I/O loop over TLS (issue 13, point 6): Poco's HTTPServer on a SecureServerSocket
// (as the relay's TLS listener runs it), the relay's own upgrade (ws_upgrade), and the upgraded
// Poco::Net::SecureStreamSocket served by an IoLoop, non-blocking. Checked: several frames in
// one TLS record are all read (OpenSSL holds the decrypted rest, epoll would not wake for it);
// a 3 MiB answer to a client that reads late goes out whole (WANT_WRITE / partial writes
// resumed); a 1 MiB message arrives in many records; the close handshake. The pair is made by
// the openssl command line at test time.
#include "io_loop.hpp"
#include "ws_connection.hpp"
#include "ws_upgrade.hpp"

#include <Poco/Net/Context.h>
#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/SSLManager.h>
#include <Poco/Net/SecureServerSocket.h>
#include <Poco/Net/SecureStreamSocket.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <thread>

using namespace deskstream::relay;
using Poco::Net::Context;

namespace {

struct Pair {
    std::string cert, key;
};

Pair makePair(const std::string& dir) {
    Pair p{dir + "/cert.pem", dir + "/key.pem"};
    const std::string cmd =
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -sha256 -nodes "
        "-days 2 -subj /CN=127.0.0.1 -keyout " +
        p.key + " -out " + p.cert + " >" + dir + "/openssl.log 2>&1";
    const int rc = std::system(cmd.c_str());
    EXPECT_EQ(rc, 0) << "openssl (installed by scripts/bootstrap.sh) failed: " << cmd;
    return p;
}

// Echoes text as "echo:<text>", answers "big" with 3 MiB, a binary message with its size.
class EchoHandler : public WsHandler {
public:
    std::shared_ptr<WsConnection> conn;
    std::atomic<int> closedWith{0};

    void onText(std::string&& m) override {
        if (m == "big")
            conn->sendText(std::string(3 << 20, 'z'));
        else
            conn->sendText("echo:" + m);
    }
    void onBinary(std::vector<std::uint8_t>&& m) override {
        conn->sendText("bin:" + std::to_string(m.size()));
    }
    void onTick(std::chrono::steady_clock::time_point) override {}
    std::chrono::steady_clock::time_point nextDeadline() const override {
        return std::chrono::steady_clock::time_point::max();
    }
    void onTransportError(int, const std::string&) override {}
    void onClosed(int code) override { closedWith = code; }
};

class UpgradeToLoop : public Poco::Net::HTTPRequestHandler {
public:
    UpgradeToLoop(IoLoop& loop, std::shared_ptr<EchoHandler>& handler)
        : loop_(loop), handler_(handler) {}
    void handleRequest(Poco::Net::HTTPServerRequest& req,
                       Poco::Net::HTTPServerResponse& resp) override {
        bool badVersion = false;
        if (upgradeProblem(req, badVersion)) {
            resp.setStatusAndReason(Poco::Net::HTTPResponse::HTTP_BAD_REQUEST);
            resp.send();
            return;
        }
        Upgraded up = acceptUpgrade(req, resp);
        auto conn =
            std::make_shared<WsConnection>(std::move(up.socket), std::move(up.early), WsLimits{});
        auto handler = std::make_shared<EchoHandler>();
        handler->conn = conn;
        handler_ = handler;
        conn->start(loop_, handler);
    }

private:
    IoLoop& loop_;
    std::shared_ptr<EchoHandler>& handler_;
};

class Factory : public Poco::Net::HTTPRequestHandlerFactory {
public:
    Factory(IoLoop& loop, std::shared_ptr<EchoHandler>& handler) : loop_(loop), handler_(handler) {}
    Poco::Net::HTTPRequestHandler* createRequestHandler(
        const Poco::Net::HTTPServerRequest&) override {
        return new UpgradeToLoop(loop_, handler_);
    }

private:
    IoLoop& loop_;
    std::shared_ptr<EchoHandler>& handler_;
};

// A blocking TLS WebSocket client on a raw SecureStreamSocket.
class TlsClient {
public:
    TlsClient(uint16_t port, Context::Ptr context)
        : socket_(Poco::Net::SocketAddress("127.0.0.1", port), context) {
        socket_.setReceiveTimeout(Poco::Timespan(10, 0));
        const std::string req =
            "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
        socket_.sendBytes(req.data(), static_cast<int>(req.size()));
        std::string head;
        while (head.find("\r\n\r\n") == std::string::npos) head.push_back(byte());
        status = head.substr(0, head.find("\r\n"));
    }
    static std::string frame(int opcode, const std::string& payload) {
        std::string f;
        f.push_back(static_cast<char>(0x80 | opcode));
        const char mask[4] = {0x0a, 0x0b, 0x0c, 0x0d};
        if (payload.size() < 126) {
            f.push_back(static_cast<char>(0x80 | payload.size()));
        } else if (payload.size() < 65536) {
            f.push_back(static_cast<char>(0x80 | 126));
            f.push_back(static_cast<char>(payload.size() >> 8));
            f.push_back(static_cast<char>(payload.size() & 0xff));
        } else {
            f.push_back(static_cast<char>(0x80 | 127));
            for (int i = 7; i >= 0; --i)
                f.push_back(
                    static_cast<char>((static_cast<uint64_t>(payload.size()) >> (8 * i)) & 0xff));
        }
        f.append(mask, 4);
        for (size_t i = 0; i < payload.size(); ++i)
            f.push_back(static_cast<char>(payload[i] ^ mask[i % 4]));
        return f;
    }
    void sendAll(const std::string& bytes) {  // one sendBytes: one TLS record per 16 KiB
        size_t at = 0;
        while (at < bytes.size()) {
            const int n = socket_.sendBytes(bytes.data() + at, static_cast<int>(bytes.size() - at));
            ASSERT_GT(n, 0);
            at += static_cast<size_t>(n);
        }
    }
    // The next server frame: opcode and payload.
    std::pair<int, std::string> next() {
        const int b0 = static_cast<unsigned char>(byte());
        uint64_t len = static_cast<unsigned char>(byte()) & 0x7f;
        if (len == 126) {
            len = (static_cast<unsigned char>(byte()) << 8);
            len |= static_cast<unsigned char>(byte());
        } else if (len == 127) {
            len = 0;
            for (int i = 0; i < 8; ++i) len = (len << 8) | static_cast<unsigned char>(byte());
        }
        std::string payload;
        payload.reserve(len);
        while (payload.size() < len) {
            if (at_ < have_.size()) {
                const size_t take = std::min<size_t>(len - payload.size(), have_.size() - at_);
                payload.append(have_, at_, take);
                at_ += take;
            } else {
                fill();
            }
        }
        return {b0 & 0x0f, payload};
    }
    std::string status;

private:
    void fill() {
        char buf[65536];
        const int n = socket_.receiveBytes(buf, sizeof buf);
        if (n <= 0) throw std::runtime_error("connection closed");
        have_.erase(0, at_);
        at_ = 0;
        have_.append(buf, static_cast<size_t>(n));
    }
    char byte() {
        if (at_ >= have_.size()) fill();
        return have_[at_++];
    }
    Poco::Net::SecureStreamSocket socket_;
    std::string have_;
    size_t at_ = 0;
};

}  // namespace

TEST(RelayIoTls, TheLoopServesASecureStreamSocketNonBlocking) {
    Poco::Net::initializeSSL();
    std::random_device rd;
    const std::string dir = (std::filesystem::temp_directory_path() /
                             ("ds-relay-io-tls-" + std::to_string(rd()) + std::to_string(rd())))
                                .string();
    std::filesystem::create_directories(dir);
    const Pair pair = makePair(dir);
    {
        Context::Params serverParams;
        serverParams.certificateFile = pair.cert;
        serverParams.privateKeyFile = pair.key;
        serverParams.verificationMode = Context::VERIFY_NONE;
        Context::Ptr serverContext = new Context(Context::TLS_SERVER_USE, serverParams);
        Context::Params clientParams;
        clientParams.caLocation = pair.cert;
        clientParams.verificationMode = Context::VERIFY_RELAXED;
        Context::Ptr clientContext = new Context(Context::TLS_CLIENT_USE, clientParams);

        IoLoop loop(0);
        loop.start();
        std::shared_ptr<EchoHandler> handler;
        Poco::Net::SecureServerSocket listener(Poco::Net::SocketAddress("127.0.0.1", 0), 16,
                                               serverContext);
        auto* params = new Poco::Net::HTTPServerParams;
        params->setMaxThreads(2);
        Poco::Net::HTTPServer server(new Factory(loop, handler), listener, params);
        server.start();
        {
            TlsClient client(listener.address().port(), clientContext);
            ASSERT_EQ(client.status.rfind("HTTP/1.1 101", 0), 0u) << client.status;

            // Three frames in one TLS record: all three are answered.
            client.sendAll(TlsClient::frame(1, "a") + TlsClient::frame(1, "b") +
                           TlsClient::frame(1, "c"));
            EXPECT_EQ(client.next().second, "echo:a");
            EXPECT_EQ(client.next().second, "echo:b");
            EXPECT_EQ(client.next().second, "echo:c");

            // 3 MiB to a client that starts reading late: the server's writes would block
            // (WANT_WRITE) and are resumed; every byte arrives in order.
            client.sendAll(TlsClient::frame(1, "big"));
            std::this_thread::sleep_for(std::chrono::milliseconds(300));
            auto big = client.next();
            EXPECT_EQ(big.first, 1);
            EXPECT_EQ(big.second.size(), 3u << 20);
            EXPECT_EQ(big.second.find_first_not_of('z'), std::string::npos);

            // 1 MiB in many records.
            client.sendAll(TlsClient::frame(2, std::string(1 << 20, 'q')));
            EXPECT_EQ(client.next().second, "bin:1048576");

            // The close handshake: our CLOSE is echoed with its code.
            client.sendAll(TlsClient::frame(8, std::string("\x03\xe8", 2)));
            auto close = client.next();
            EXPECT_EQ(close.first, 8);
            ASSERT_GE(close.second.size(), 2u);
            EXPECT_EQ((static_cast<unsigned char>(close.second[0]) << 8) |
                          static_cast<unsigned char>(close.second[1]),
                      1000);
        }
        ASSERT_TRUE(handler);
        const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        while (handler->closedWith == 0 && std::chrono::steady_clock::now() < until)
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        EXPECT_EQ(handler->closedWith, 1000);
        server.stopAll(true);
        loop.stop();
    }
    Poco::Net::uninitializeSSL();
    std::filesystem::remove_all(dir);
}
