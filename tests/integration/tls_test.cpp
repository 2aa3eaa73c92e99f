// TLS end to end (issue 14, docs/security-tls.md): a relay with a self-signed certificate made
// by openssl at test time, the real agent runtime (synthetic capture, JPEG encoder) over wss://,
// a viewer over wss://, /healthz over https, a TLS 1.1 client refused, certificate problems
// fatal for the agent, and start-up refusing bad certificate/key files with the file's name.
#include "deskstream/agent/agent.hpp"
#include "deskstream/core/frame_header.hpp"
#include "deskstream/host/config.hpp"
#include "deskstream/host/plugin_registry.hpp"
#include "agent_fixture.hpp"
#include "relay_fixture.hpp"

#include <Poco/AutoPtr.h>
#include <Poco/Channel.h>
#include <Poco/Logger.h>
#include <Poco/Message.h>
#include <Poco/Net/Context.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPSClientSession.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerRequestImpl.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/SecureServerSocket.h>
#include <Poco/Net/SSLException.h>
#include <Poco/Net/WebSocket.h>
#include <Poco/StreamCopier.h>
#include <Poco/ThreadPool.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>

#include <sys/socket.h>
#include <fstream>
#include <mutex>

using namespace std::chrono_literals;
using deskstream::agent::AgentOptions;
using deskstream::agent::AgentRuntime;
using Poco::Net::Context;
using Poco::Net::WebSocket;

namespace {

struct Pair {
    std::string cert, key;
};

// A self-signed pair made by the openssl command line, as docs/security-tls.md tells users to.
// `san` is the subjectAltName (the names the agent checks the URL's host against).
Pair makePair(const std::string& dir, const std::string& name, const std::string& san) {
    Pair p{dir + "/" + name + "-cert.pem", dir + "/" + name + "-key.pem"};
    const std::string log = dir + "/" + name + "-openssl.log";
    const std::string cmd =
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -sha256 -nodes "
        "-days 2 -subj /CN=deskstream-test -addext subjectAltName=" +
        san + " -keyout " + p.key + " -out " + p.cert + " >" + log + " 2>&1";
    const int rc = std::system(cmd.c_str());
    if (rc != 0) {
        std::ifstream in(log);
        std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        ADD_FAILURE() << "openssl (scripts/bootstrap.sh installs it) failed, status " << rc << ": "
                      << cmd << "\n"
                      << text;
    }
    return p;
}

Context::Ptr clientContext(const std::string& ca) {
    Context::Params params;
    params.caLocation = ca;
    params.verificationMode = Context::VERIFY_STRICT;
    Context::Ptr c = new Context(Context::TLS_CLIENT_USE, params);
    c->requireMinimumProtocol(Context::PROTO_TLSV1_2);
    return c;
}

// GET over https; throws what the TLS client throws.
ds_itest::HttpResult httpsGet(uint16_t port, const std::string& path, Context::Ptr context) {
    Poco::Net::HTTPSClientSession session("127.0.0.1", port, context);
    session.setTimeout(Poco::Timespan(5, 0));
    Poco::Net::HTTPRequest request(Poco::Net::HTTPRequest::HTTP_GET, path,
                                   Poco::Net::HTTPMessage::HTTP_1_1);
    session.sendRequest(request);
    Poco::Net::HTTPResponse response;
    std::istream& body = session.receiveResponse(response);
    ds_itest::HttpResult r;
    r.status = response.getStatus();
    Poco::StreamCopier::copyToString(body, r.body);
    return r;
}

// A browser-like viewer over wss://: handshake, subscribe, answer pings, ack frames.
class TlsViewer {
public:
    TlsViewer(uint16_t port, Context::Ptr context) : session_("127.0.0.1", port, context) {
        session_.setTimeout(Poco::Timespan(5, 0));
        Poco::Net::HTTPRequest request(Poco::Net::HTTPRequest::HTTP_GET, "/ws/viewer",
                                       Poco::Net::HTTPMessage::HTTP_1_1);
        Poco::Net::HTTPResponse response;
        ws_ = std::make_unique<WebSocket>(session_, request, response);
        ws_->setReceiveTimeout(Poco::Timespan(0, 200 * 1000));
    }
    void send(const std::string& text) {
        ws_->sendFrame(text.data(), static_cast<int>(text.size()), WebSocket::FRAME_TEXT);
    }
    // The next message of `type` (pings answered on the way); null after `timeoutMs`.
    ds_itest::Json waitFor(const std::string& type, int timeoutMs) {
        const auto deadline =
            std::chrono::steady_clock::now() + std::chrono::milliseconds(timeoutMs);
        while (std::chrono::steady_clock::now() < deadline) {
            std::string text;
            if (receive(text) != WebSocket::FRAME_OP_TEXT) continue;
            auto j = ds_itest::parseJson(text);
            if (answerIfPing(j)) continue;
            if (j && ds_itest::str(j, "type") == type) return j;
        }
        return nullptr;
    }
    // The next binary frame, decoded and acknowledged; ok = false after `timeoutMs`.
    deskstream::core::DecodedFrame waitFrame(const std::string& desktop, int timeoutMs) {
        const auto deadline =
            std::chrono::steady_clock::now() + std::chrono::milliseconds(timeoutMs);
        while (std::chrono::steady_clock::now() < deadline) {
            std::string data;
            const int op = receive(data);
            if (op == WebSocket::FRAME_OP_TEXT) answerIfPing(ds_itest::parseJson(data));
            if (op != WebSocket::FRAME_OP_BINARY) continue;
            auto d = deskstream::core::decodeFrame(reinterpret_cast<const uint8_t*>(data.data()),
                                                   data.size(), 0);
            if (!d.ok) continue;
            send("{\"type\":\"frame_ack\",\"desktopClientId\":\"" + desktop +
                 "\",\"frameNumber\":" + std::to_string(d.header.frameNumber) + ",\"latency\":5}");
            return d;
        }
        return {};
    }

private:
    int receive(std::string& out) {
        Poco::Buffer<char> buffer(0);
        int flags = 0;
        try {
            ws_->receiveFrame(buffer, flags);
        } catch (const Poco::TimeoutException&) {
            return 0;
        }
        out.assign(buffer.begin(), buffer.size());
        return flags & WebSocket::FRAME_OP_BITMASK;
    }
    bool answerIfPing(const ds_itest::Json& j) {
        if (!j || ds_itest::str(j, "type") != "ping") return false;
        send("{\"type\":\"pong\",\"timestamp\":" +
             std::to_string(j->getValue<int64_t>("timestamp")) + ",\"serverTime\":0}");
        return true;
    }

    Poco::Net::HTTPSClientSession session_;
    std::unique_ptr<WebSocket> ws_;
};

// Keeps the agent logger's lines (the insecure switch must warn on each connect).
class RecordingChannel : public Poco::Channel {
public:
    void log(const Poco::Message& msg) override {
        std::lock_guard<std::mutex> lock(mutex_);
        lines_.push_back(msg.getText());
    }
    size_t count(const std::string& part) const {
        std::lock_guard<std::mutex> lock(mutex_);
        size_t n = 0;
        for (const auto& l : lines_) n += l.find(part) != std::string::npos;
        return n;
    }

private:
    mutable std::mutex mutex_;
    std::vector<std::string> lines_;
};

// A relay stand-in over TLS that writes handshake_ack and start_stream as ONE write, so both
// WebSocket frames arrive in one TLS record, then stays silent (heartbeat 60 s) and counts the
// frames the agent streams. An agent that polls the socket before reading never sees
// start_stream: OpenSSL already holds it, and the kernel has nothing more to report.
class CoalescingTlsRelay {
public:
    // `abortAfterFrames` > 0: after that many frames the connection is reset (SO_LINGER 0),
    // as when the relay's host vanishes, while the agent is still sending.
    explicit CoalescingTlsRelay(const Pair& pair, uint64_t abortAfterFrames = 0)
        : abortAfter_(abortAfterFrames),
          socket_(Poco::Net::SocketAddress("127.0.0.1", 0), 64, serverContext(pair)) {
        auto* httpParams = new Poco::Net::HTTPServerParams;
        httpParams->setMaxThreads(4);
        server_ =
            std::make_unique<Poco::Net::HTTPServer>(new Factory(*this), pool_, socket_, httpParams);
        server_->start();
    }
    ~CoalescingTlsRelay() {
        stop_ = true;
        server_->stopAll(true);
        pool_.joinAll();  // the handler ends within its 100 ms read; its TLS state goes with it
    }
    uint16_t port() const { return socket_.address().port(); }
    uint64_t frames() const { return frames_; }
    uint64_t connections() const { return connections_; }

private:
    static Context::Ptr serverContext(const Pair& pair) {
        Context::Params params;
        params.certificateFile = pair.cert;
        params.privateKeyFile = pair.key;
        params.verificationMode = Context::VERIFY_NONE;
        return new Context(Context::TLS_SERVER_USE, params);
    }
    static std::string textFrame(const std::string& payload) {  // server frames are unmasked
        std::string f = "\x81";
        if (payload.size() < 126) {
            f += static_cast<char>(payload.size());
        } else {
            f += static_cast<char>(126);
            f += static_cast<char>(payload.size() >> 8);
            f += static_cast<char>(payload.size() & 0xff);
        }
        return f + payload;
    }
    struct Handler : Poco::Net::HTTPRequestHandler {
        explicit Handler(CoalescingTlsRelay& r) : relay(r) {}
        void handleRequest(Poco::Net::HTTPServerRequest& req,
                           Poco::Net::HTTPServerResponse& resp) override {
            try {
                Poco::Net::StreamSocket tls =
                    static_cast<Poco::Net::HTTPServerRequestImpl&>(req).socket();
                WebSocket ws(req, resp);
                ++relay.connections_;
                uint64_t mine = 0;
                Poco::Buffer<char> buf(0);
                bool acked = false;
                for (int op; (op = ds_itest::nextAgentFrame(ws, buf, relay.stop_)) >= 0;) {
                    if (op == WebSocket::FRAME_OP_BINARY) {
                        ++relay.frames_;
                        if (relay.abortAfter_ && ++mine >= relay.abortAfter_) {
                            struct linger reset {
                                1, 0
                            };
                            ::setsockopt(tls.impl()->sockfd(), SOL_SOCKET, SO_LINGER, &reset,
                                         sizeof reset);
                            break;  // Poco closes the socket: RST, the agent mid-send
                        }
                    }
                    if (op != WebSocket::FRAME_OP_TEXT || acked) continue;
                    const std::string both =
                        textFrame(
                            "{\"type\":\"handshake_ack\",\"clientId\":\"tls-pc\","
                            "\"dbRegistered\":true,\"instanceId\":\"coalescing\",\"streamId\":1,"
                            "\"heartbeatIntervalMs\":60000,\"maxInFlight\":10}") +
                        textFrame("{\"type\":\"start_stream\"}");
                    tls.sendBytes(both.data(), static_cast<int>(both.size()));  // one record
                    acked = true;
                }
            } catch (...) {}
        }
        CoalescingTlsRelay& relay;
    };
    using Factory = ds_itest::HandlerFactoryOf<Handler, CoalescingTlsRelay>;
    const uint64_t abortAfter_;
    Poco::Net::SecureServerSocket socket_;
    Poco::ThreadPool pool_{1, 4};
    std::unique_ptr<Poco::Net::HTTPServer> server_;
    std::atomic<bool> stop_{false};
    std::atomic<uint64_t> frames_{0};
    std::atomic<uint64_t> connections_{0};
};

class TlsTest : public ds_itest::RelayTest {
protected:
    void SetUp() override {
        RelayTest::SetUp();
        pair = makePair(dir, "relay", "IP:127.0.0.1");
        startTlsRelay(pair);
        plugins.scan({DS_TEST_PLUGIN_DIR});
        config.set("capture.synthetic", "width", "320");
        config.set("capture.synthetic", "height", "200");
    }

    void startTlsRelay(const Pair& p) {
        auto o = testOptions();
        o.maxMessageBytes = 4 * 1024 * 1024;
        o.tlsCert = p.cert;
        o.tlsKey = p.key;
        startRelay(o);
    }

    std::string wssUrl() const { return "wss://127.0.0.1:" + std::to_string(port()) + "/ws/agent"; }

    AgentOptions agentOptions() {
        AgentOptions o = ds_itest::reconnectingAgentOptions(wssUrl(), "tls-pc");
        o.flow.fps = 10;
        return o;
    }

    std::unique_ptr<AgentRuntime> startAgent(AgentOptions o) {
        return ds_itest::startAgentRuntime(std::move(o), plugins, config, "synthetic");
    }

    Pair pair;
    deskstream::host::PluginRegistry plugins;
    deskstream::host::Configuration config;
};

TEST_F(TlsTest, HealthzAnswersOverHttpsAndPlainHttpGetsNoAnswer) {
    auto r = httpsGet(port(), "/healthz", clientContext(pair.cert));
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "{\"status\":\"ok\"}");
    // A plain HTTP request to the TLS port is not served (the handshake fails).
    int plainStatus = 0;
    try {
        plainStatus = ds_itest::httpRequest(port(), "GET", "/healthz").status;
    } catch (const Poco::Exception&) {
        plainStatus = -1;  // reset by the relay
    }
    EXPECT_NE(plainStatus, 200);
    // The relay still serves TLS clients afterwards.
    EXPECT_EQ(httpsGet(port(), "/healthz", clientContext(pair.cert)).status, 200);
}

// The agent trusts the self-signed certificate through tls.ca, registers over wss://, and a
// viewer that also connects over TLS receives its frames.
TEST_F(TlsTest, AgentStreamsOverWssWithTlsCaToAViewerOverTls) {
    auto o = agentOptions();
    o.tlsCa = pair.cert;
    auto agent = startAgent(o);
    ASSERT_TRUE(ds_itest::eventually([&] { return agent->stats().registered; }, 10000))
        << "fatal: " << agent->fatalReason();

    TlsViewer viewer(port(), clientContext(pair.cert));
    viewer.send(ds_itest::viewerHandshake());
    ASSERT_TRUE(viewer.waitFor("handshake_ack", 5000));
    viewer.send("{\"type\":\"subscribe\",\"desktopClientId\":\"tls-pc\"}");
    ASSERT_TRUE(viewer.waitFor("subscribed", 5000));
    // Several frames, each acknowledged: the agent's window keeps moving over TLS both ways.
    for (int i = 0; i < 5; ++i) {
        auto frame = viewer.waitFrame("tls-pc", 10000);
        ASSERT_TRUE(frame.ok) << "frame " << i;
        EXPECT_EQ(frame.header.screenWidth, 320u);
        EXPECT_EQ(frame.header.screenHeight, 200u);
    }
    EXPECT_TRUE(ds_itest::eventually([&] { return agent->stats().framesAcked >= 3; }, 5000))
        << "acked " << agent->stats().framesAcked;
    EXPECT_EQ(agent->exitCode(), 0);
}

// Verification on and no CA given: the system store does not know the self-signed certificate.
// The agent ends by itself (exit code 2, as for a refused registration) naming the problem,
// instead of retrying (base delay 50 ms: a retry loop would never finish).
TEST_F(TlsTest, WithoutCaTheAgentExitsNamingTheCertificateProblem) {
    auto agent = startAgent(agentOptions());
    ASSERT_TRUE(agent->waitFinished(10s)) << "the agent kept retrying";
    EXPECT_EQ(agent->exitCode(), 2);
    const std::string why = agent->fatalReason();
    EXPECT_NE(why.find("the relay's TLS certificate failed verification: self-signed certificate"),
              std::string::npos)
        << why;
    EXPECT_NE(why.find("[agent] tls.ca"), std::string::npos) << why;
    EXPECT_EQ(agent->stats().connections, 0u);
    EXPECT_FALSE(hasRow("tls-pc"));
}

// A certificate the agent trusts but issued for another name: the host-name check refuses it.
TEST_F(TlsTest, ACertificateForAnotherHostNameIsFatal) {
    const Pair other = makePair(dir, "other", "DNS:relay.example.org");
    startTlsRelay(other);
    auto o = agentOptions();
    o.tlsCa = other.cert;
    auto agent = startAgent(o);
    ASSERT_TRUE(agent->waitFinished(10s)) << "the agent kept retrying";
    EXPECT_EQ(agent->exitCode(), 2);
    EXPECT_NE(agent->fatalReason().find("its names do not include '127.0.0.1'"), std::string::npos)
        << agent->fatalReason();
}

// Two WebSocket frames in one TLS record: the agent reads the second (start_stream) at once
// instead of waiting for bytes the kernel will never report (it polls only when OpenSSL holds
// nothing). The stand-in sends nothing else, so without that the agent would stream nothing.
TEST_F(TlsTest, FramesTheTlsLayerAlreadyHoldsAreReadWithoutWaitingForMoreBytes) {
    CoalescingTlsRelay coalescing(pair);
    auto o = agentOptions();
    o.relayUrl = "wss://127.0.0.1:" + std::to_string(coalescing.port()) + "/ws/agent";
    o.tlsCa = pair.cert;
    auto agent = startAgent(o);
    // 10 fps: the first frame follows start_stream within 100 ms; 5 s is slack for ASan.
    EXPECT_TRUE(ds_itest::eventually([&] { return coalescing.frames() >= 1; }, 5000))
        << "streaming " << agent->stats().streaming << ", fatal: " << agent->fatalReason();
    agent->stop();
}

// A handshake that fails for another reason than the certificate (here: a relay without TLS)
// is a network problem: retried with backoff, never fatal. The fatal path ends the agent within
// about 100 ms (the tests above), so 1.5 s without an end means it retried.
TEST_F(TlsTest, AHandshakeFailureThatIsNotTheCertificateIsRetried) {
    // Plain ws:// where the agent expects wss://: the relay reads the ClientHello as a request
    // line that never ends and cuts the connection after its HTTP timeout (short here, so the
    // agent is not left in a handshake when the test stops it).
    auto plain = testOptions();
    plain.httpTimeoutMs = 300;
    startRelay(plain);
    auto o = agentOptions();
    o.tlsCa = pair.cert;
    auto agent = startAgent(o);
    EXPECT_FALSE(agent->waitFinished(1500ms)) << agent->fatalReason();
    EXPECT_EQ(agent->exitCode(), 0);
    EXPECT_FALSE(agent->stats().registered);
}

// The relay's connection is reset while the agent sends 1080p frames at 30 fps. OpenSSL writes
// with write(), not send(MSG_NOSIGNAL): the failed writes (EPIPE, seen with strace) raise
// SIGPIPE, which must not end the process. Poco Foundation blocks SIGPIPE on the loading thread
// and every thread inherits that (docs/security-tls.md); a thread that unblocked it would die
// here. The agent reconnects as after any network error.
TEST_F(TlsTest, ARelayResetMidSendIsANetworkErrorNotADeadProcess) {
    CoalescingTlsRelay resetting(pair, /*abortAfterFrames=*/5);
    config.set("capture.synthetic", "width", "1920");
    config.set("capture.synthetic", "height", "1080");
    auto o = agentOptions();
    o.relayUrl = "wss://127.0.0.1:" + std::to_string(resetting.port()) + "/ws/agent";
    o.tlsCa = pair.cert;
    o.flow.fps = 30;
    auto agent = startAgent(o);
    // Three connections: two were reset mid-stream and the agent came back each time.
    EXPECT_TRUE(ds_itest::eventually([&] { return resetting.connections() >= 3; }, 15000))
        << "connections " << resetting.connections() << ", frames " << resetting.frames();
    EXPECT_EQ(agent->exitCode(), 0) << agent->fatalReason();
    agent->stop();
}

// tls.insecure connects without any CA, and warns on every connect.
TEST_F(TlsTest, InsecureSwitchSkipsTheCheckAndWarnsOnEachConnect) {
    Poco::AutoPtr<RecordingChannel> channel(new RecordingChannel);
    Poco::Logger& log = Poco::Logger::get("agent");
    Poco::AutoPtr<Poco::Channel> before(log.getChannel(), true);
    const int level = log.getLevel();
    log.setChannel(channel);
    log.setLevel(Poco::Message::PRIO_WARNING);
    auto o = agentOptions();
    o.tlsInsecure = true;
    auto agent = startAgent(o);
    const std::string warning =
        "[agent] tls.insecure = true: the relay's certificate is NOT checked";
    const bool registered = ds_itest::eventually([&] { return agent->stats().registered; }, 10000);
    const size_t firstConnect = channel->count(warning);
    // The relay goes away: the agent's next connection attempt warns again.
    relay->stop();
    const bool warnedAgain =
        ds_itest::eventually([&] { return channel->count(warning) >= 2; }, 5000);
    agent->stop();
    log.setChannel(before);
    log.setLevel(level);
    ASSERT_TRUE(registered) << agent->fatalReason();
    EXPECT_EQ(firstConnect, 1u);
    EXPECT_TRUE(warnedAgain);
    EXPECT_EQ(agent->exitCode(), 0);
}

// The relay offers TLS 1.2 and later only: a client limited to TLS 1.1 gets the server's
// protocol_version alert, while the same client allowed TLS 1.2 is served.
TEST_F(TlsTest, ATls11ClientIsRefused) {
    auto limited = [](bool allow12) {
        Context::Params params;
        params.verificationMode = Context::VERIFY_NONE;
        params.cipherList = "DEFAULT:@SECLEVEL=0";  // OpenSSL 3 disables TLS 1.1 above level 0
        Context::Ptr c = new Context(Context::TLS_CLIENT_USE, params);
        c->disableProtocols(Context::PROTO_SSLV2 | Context::PROTO_SSLV3 | Context::PROTO_TLSV1 |
                            Context::PROTO_TLSV1_3 | (allow12 ? 0 : Context::PROTO_TLSV1_2));
        return c;
    };
    std::string error;
    try {
        httpsGet(port(), "/healthz", limited(false));
    } catch (const Poco::Exception& e) {
        error = e.displayText();
    }
    EXPECT_NE(error.find("alert protocol version"), std::string::npos)
        << "expected the relay's protocol_version alert, got: " << error;
    EXPECT_EQ(httpsGet(port(), "/healthz", limited(true)).status, 200);
}

// Start-up refuses unusable files with a message naming the file, and never listens.
TEST_F(TlsTest, StartUpRefusesMissingMismatchedOrMalformedFilesNamingThem) {
    const Pair other = makePair(dir, "other", "IP:127.0.0.1");
    const std::string notPem = dir + "/not-a-key.pem";
    std::ofstream(notPem) << "hello\n";
    struct Case {
        std::string cert, key, expected;
    };
    const std::vector<Case> cases = {
        {pair.cert, dir + "/missing-key.pem",
         "[relay] tls.key = '" + dir + "/missing-key.pem': cannot be read: No such file"},
        {dir + "/missing-cert.pem", pair.key,
         "[relay] tls.cert = '" + dir + "/missing-cert.pem': cannot be read: No such file"},
        {pair.cert, other.key,
         "[relay] tls.key = '" + other.key +
             "': does not match the certificate in [relay] "
             "tls.cert = '" +
             pair.cert + "'"},
        {pair.cert, notPem, "[relay] tls.key = '" + notPem + "': is not an unencrypted PEM"},
        {notPem, pair.key, "[relay] tls.cert = '" + notPem + "': is not a PEM certificate"},
        {pair.cert, dir, "[relay] tls.key = '" + dir + "': cannot be read: Is a directory"},
        {pair.cert, "", "[relay] tls.cert is set but tls.key is not"},
    };
    for (const auto& c : cases) {
        auto o = testOptions();
        o.tlsCert = c.cert;
        o.tlsKey = c.key;
        deskstream::relay::Relay r(o, *store, Poco::Logger::get("relay-test"));
        std::string what;
        try {
            r.start();
        } catch (const std::runtime_error& e) {
            what = e.what();
        }
        EXPECT_NE(what.find(c.expected), std::string::npos)
            << "expected: " << c.expected << "\ngot: " << what;
        EXPECT_FALSE(r.running());
    }
}

// The relay's side of the frames-in-one-record case: a viewer (a browser may coalesce writes)
// sends its handshake and a subscribe in one TLS record and answers nothing else. The relay must
// answer both: the subscribe to an unknown desktop with not_found, within 1 s (over plain TCP it
// takes about 2 ms; the relay closes a silent viewer after 2 missed pings, about 450 ms).
// A reader that polls the socket while OpenSSL holds the subscribe never reads it (measured with
// the former poll-then-read reader: no answer); the I/O loop reads until the TLS layer would
// block (docs/relay.md, "Event-driven I/O").
TEST_F(TlsTest, RelayReadsEveryFrameOfACoalescedTlsRecord) {
    auto maskedText = [](const std::string& payload) {  // client frames: mask key 0
        std::string f = "\x81";
        f += static_cast<char>(0x80 | payload.size());
        return f + std::string(4, '\0') + payload;
    };
    const std::string handshake = ds_itest::viewerHandshake();
    const std::string subscribe = "{\"type\":\"subscribe\",\"desktopClientId\":\"nobody\"}";
    ASSERT_LT(handshake.size(), 126u);
    Poco::Net::HTTPSClientSession session("127.0.0.1", port(), clientContext(pair.cert));
    Poco::Net::StreamSocket tls = session.socket();  // the TLS layer under the WebSocket
    Poco::Net::HTTPRequest request(Poco::Net::HTTPRequest::HTTP_GET, "/ws/viewer",
                                   Poco::Net::HTTPMessage::HTTP_1_1);
    Poco::Net::HTTPResponse response;
    WebSocket ws(session, request, response);
    ws.setReceiveTimeout(Poco::Timespan(0, 50 * 1000));
    const std::string both = maskedText(handshake) + maskedText(subscribe);
    tls.sendBytes(both.data(), static_cast<int>(both.size()));  // one record
    const auto deadline = std::chrono::steady_clock::now() + 1s;
    bool acked = false, answered = false;
    while (!answered && std::chrono::steady_clock::now() < deadline) {
        Poco::Buffer<char> buffer(0);
        int flags = 0;
        try {
            if (ws.receiveFrame(buffer, flags) == 0 && flags == 0) break;
        } catch (const Poco::TimeoutException&) {
            continue;
        }
        auto j = ds_itest::parseJson(std::string(buffer.begin(), buffer.size()));
        if (!j) continue;
        acked |= ds_itest::str(j, "type") == "handshake_ack";
        answered = ds_itest::str(j, "type") == "error" && ds_itest::str(j, "code") == "not_found";
    }
    EXPECT_TRUE(acked);
    EXPECT_TRUE(answered) << "the subscribe in the same TLS record was never read";
}

}  // namespace
