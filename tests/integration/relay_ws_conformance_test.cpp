// RFC 6455 conformance of the real relay over raw sockets (docs/relay.md, "WebSocket
// conformance"): every framing rule gets its close code, pings are echoed, bad upgrades get 400,
// and the resource rules hold: a huge declared length costs nothing, unauthenticated peers
// cannot make the relay hold big fragments, and dripping peers are closed by the deadlines.
#include "relay_fixture.hpp"

#include "deskstream/core/frame_header.hpp"
#include "ds_test/ws_frames.hpp"

#include <Poco/Net/SocketAddress.h>
#include <Poco/Net/StreamSocket.h>

#include <fstream>
#include <optional>
#include <sstream>
#include <thread>

#include <poll.h>

using namespace ds_itest;
using namespace ds_test::ws_frames;

namespace {

using Clock = std::chrono::steady_clock;

const char* kUpgradeKey = "dGhlIHNhbXBsZSBub25jZQ==";  // RFC 6455's sample: accept below
const char* kUpgradeAccept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

std::string upgradeRequest(const std::string& path, const std::string& method = "GET",
                           const std::string& version = "HTTP/1.1",
                           const std::string& key = kUpgradeKey) {
    return method + " " + path + " " + version +
           "\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: " +
           key + "\r\nSec-WebSocket-Version: 13\r\n\r\n";
}

// One raw WebSocket client: our own bytes out, the relay's frames parsed back (and checked to
// be unmasked, as server frames must be).
class RawWs {
public:
    struct Frame {
        int opcode = -1;  // -1: none (timeout), -2: connection ended without a CLOSE
        std::string payload;
    };

    // Connects and sends the upgrade request followed by `early` bytes in the same write.
    explicit RawWs(std::uint16_t port, const std::string& path = "/ws/viewer",
                   const Bytes& early = {})
        : sock_(Poco::Net::SocketAddress("127.0.0.1", port)) {
        std::string req = upgradeRequest(path);
        req.append(early.begin(), early.end());
        sock_.sendBytes(req.data(), static_cast<int>(req.size()));
        const auto end = Clock::now() + std::chrono::seconds(5);
        while (buf_.find("\r\n\r\n") == std::string::npos && Clock::now() < end) {
            if (!fill(100)) break;
        }
        const auto headerEnd = buf_.find("\r\n\r\n");
        if (headerEnd == std::string::npos) return;
        response_ = buf_.substr(0, headerEnd + 4);
        buf_.erase(0, headerEnd + 4);
    }

    bool upgraded() const { return response_.rfind("HTTP/1.1 101", 0) == 0; }
    const std::string& response() const { return response_; }

    // False when the relay already closed the connection.
    bool send(const Bytes& bytes) {
        try {
            std::size_t at = 0;
            while (at < bytes.size()) {
                const int n = sock_.sendBytes(
                    bytes.data() + at,
                    static_cast<int>(std::min<std::size_t>(bytes.size() - at, 1 << 20)));
                if (n <= 0) return false;
                at += static_cast<std::size_t>(n);
            }
            return true;
        } catch (const Poco::Exception&) {
            return false;
        }
    }
    bool sendText(const std::string& text) { return send(clientFrame(kFin | 1, bytesOf(text))); }

    Frame next(int timeoutMs) {
        const auto end = Clock::now() + std::chrono::milliseconds(timeoutMs);
        for (;;) {
            if (auto f = parse()) return *f;
            if (ended_) return Frame{-2, {}};
            const auto left =
                std::chrono::duration_cast<std::chrono::milliseconds>(end - Clock::now()).count();
            if (left <= 0) return Frame{};
            fill(static_cast<int>(left));
        }
    }

    // Reads until the relay's CLOSE: its code (1005 when empty); 1006 when the connection ended
    // without one; -1 on timeout. Text messages seen on the way are kept in texts().
    int waitClose(int timeoutMs = 3000) {
        const auto end = Clock::now() + std::chrono::milliseconds(timeoutMs);
        for (;;) {
            const auto left =
                std::chrono::duration_cast<std::chrono::milliseconds>(end - Clock::now()).count();
            if (left <= 0) return -1;
            Frame f = next(static_cast<int>(left));
            if (f.opcode == -1) return -1;
            if (f.opcode == -2) return 1006;
            if (f.opcode == 1) texts_.push_back(f.payload);
            if (f.opcode == 8) {
                closeReason_ = f.payload.size() > 2 ? f.payload.substr(2) : "";
                if (f.payload.size() < 2) return 1005;
                return (static_cast<unsigned char>(f.payload[0]) << 8) |
                       static_cast<unsigned char>(f.payload[1]);
            }
        }
    }
    // Text messages until `type` arrives (JSON "type" field); false on timeout/close.
    bool waitForType(const std::string& type, int timeoutMs = 3000) {
        const auto end = Clock::now() + std::chrono::milliseconds(timeoutMs);
        while (Clock::now() < end) {
            Frame f = next(100);
            if (f.opcode == -2 || f.opcode == 8) return false;
            if (f.opcode == 1 && str(parseJson(f.payload), "type") == type) return true;
        }
        return false;
    }
    // After the relay's CLOSE: true when the TCP connection ends within timeoutMs.
    bool waitEnd(int timeoutMs) {
        const auto end = Clock::now() + std::chrono::milliseconds(timeoutMs);
        while (!ended_ && Clock::now() < end) {
            buf_.clear();
            fill(50);
        }
        return ended_;
    }
    const std::vector<std::string>& texts() const { return texts_; }
    const std::string& closeReason() const { return closeReason_; }
    int fd() const { return static_cast<int>(sock_.impl()->sockfd()); }
    bool ended() const { return ended_; }

private:
    // Waits up to timeoutMs for bytes; false when none came or the connection ended.
    bool fill(int timeoutMs) {
        pollfd p{fd(), POLLIN, 0};
        if (::poll(&p, 1, timeoutMs) <= 0) return false;
        char tmp[65536];
        try {
            const int n = sock_.receiveBytes(tmp, sizeof tmp);
            if (n <= 0) {
                ended_ = true;
                return false;
            }
            buf_.append(tmp, static_cast<std::size_t>(n));
            return true;
        } catch (const Poco::Exception&) {
            ended_ = true;
            return false;
        }
    }
    std::optional<Frame> parse() {
        if (buf_.size() < 2) return std::nullopt;
        const auto b = [&](std::size_t i) { return static_cast<std::uint8_t>(buf_[i]); };
        EXPECT_EQ(b(1) & 0x80, 0) << "server frames are never masked";
        std::uint64_t len = b(1) & 0x7F;
        std::size_t h = 2;
        if (len == 126) {
            if (buf_.size() < 4) return std::nullopt;
            len = (std::uint64_t{b(2)} << 8) | b(3);
            h = 4;
        } else if (len == 127) {
            if (buf_.size() < 10) return std::nullopt;
            len = 0;
            for (std::size_t i = 0; i < 8; ++i) len = (len << 8) | b(2 + i);
            h = 10;
        }
        if (buf_.size() < h + len) return std::nullopt;
        Frame f{b(0) & 0x0F, buf_.substr(h, static_cast<std::size_t>(len))};
        EXPECT_NE(b(0) & 0x80, 0) << "the relay does not fragment";
        buf_.erase(0, h + static_cast<std::size_t>(len));
        return f;
    }

    Poco::Net::StreamSocket sock_;
    std::string buf_;
    std::string response_;
    bool ended_ = false;
    std::vector<std::string> texts_;
    std::string closeReason_;
};

// The process's resident memory (the relay runs in this process), in bytes.
std::int64_t rssBytes() {
    std::ifstream in("/proc/self/status");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6)) * 1024;
    }
    return -1;
}

std::string statusLineOf(const std::string& response) {
    return response.substr(0, response.find("\r\n"));
}

struct FramingCase {
    const char* name;
    Bytes bytes;
    int closeCode;
};

std::vector<FramingCase> framingCases() {
    std::vector<FramingCase> c;
    c.push_back({"unmasked text", clientFrame(kFin | 1, bytesOf("{}"), false), 1002});
    c.push_back({"RSV1 set", clientFrame(kFin | 0x40 | 1, bytesOf("{}")), 1002});
    c.push_back({"RSV2 set", clientFrame(kFin | 0x20 | 2, Bytes(4, 0)), 1002});
    c.push_back({"RSV3 set", clientFrame(kFin | 0x10 | 9, {}), 1002});
    c.push_back({"unknown data opcode 3", clientFrame(kFin | 3, bytesOf("x")), 1002});
    c.push_back({"unknown control opcode 11", clientFrame(kFin | 11, bytesOf("x")), 1002});
    c.push_back({"ping over 125 bytes", clientFrame(kFin | 9, Bytes(126, 'p')), 1002});
    c.push_back({"fragmented ping", clientFrame(9, bytesOf("p")), 1002});
    c.push_back({"continuation without a message", clientFrame(kFin | 0, bytesOf("x")), 1002});
    c.push_back({"new text inside a fragmented one",
                 concat({clientFrame(1, bytesOf("{")), clientFrame(kFin | 1, bytesOf("{}"))}),
                 1002});
    c.push_back({"64-bit length with the top bit set", headerOnly(kFin | 2, 1ull << 63), 1002});
    c.push_back({"invalid UTF-8 text", clientFrame(kFin | 1, {'{', 0xFF, '}'}), 1007});
    c.push_back({"invalid UTF-8 across fragments",
                 concat({clientFrame(1, {'"', 0xE2, 0x82}), clientFrame(kFin | 0, {'"'})}), 1007});
    c.push_back({"surrogate in UTF-8 text", clientFrame(kFin | 1, {0xED, 0xA0, 0x80}), 1007});
    c.push_back({"close with a 1-byte payload", clientFrame(kFin | 8, {0x03}), 1002});
    for (std::uint16_t code : {0, 999, 1004, 1005, 1006, 1015, 5000, 65535}) {
        c.push_back({"invalid close code", clientFrame(kFin | 8, closePayload(code)), 1002});
    }
    c.push_back({"close reason with invalid UTF-8",
                 clientFrame(kFin | 8, concat({closePayload(1000), Bytes{0xC3, 0x28}})), 1007});
    return c;
}

}  // namespace

// Every framing rule, on a viewer that completed its handshake (the open state) and on a
// connection that has not (the rules hold from the first byte).
TEST_F(RelayTest, EveryFramingViolationGetsItsCloseCode) {
    for (const bool handshaken : {true, false}) {
        for (const auto& fc : framingCases()) {
            SCOPED_TRACE(std::string(fc.name) + (handshaken ? " (open)" : " (before handshake)"));
            RawWs ws(port());
            ASSERT_TRUE(ws.upgraded()) << ws.response();
            if (handshaken) {
                ASSERT_TRUE(ws.sendText(viewerHandshake()));
                ASSERT_TRUE(ws.waitForType("handshake_ack"));
            }
            ASSERT_TRUE(ws.send(fc.bytes));
            EXPECT_EQ(ws.waitClose(), fc.closeCode);
            EXPECT_FALSE(ws.closeReason().empty());  // the reason names the rule
            EXPECT_TRUE(ws.waitEnd(3000)) << "the relay ends the TCP connection after its CLOSE";
        }
    }
    EXPECT_GE(counter("protocol_errors"), 2 * framingCases().size());
}

TEST_F(RelayTest, ValidClosesAreEchoedWithTheirCode) {
    for (std::uint16_t code : {1000, 1001, 1003, 1011, 3000, 4001, 4999}) {
        RawWs ws(port());
        ASSERT_TRUE(ws.upgraded());
        ASSERT_TRUE(ws.sendText(viewerHandshake()));
        ASSERT_TRUE(ws.waitForType("handshake_ack"));
        ASSERT_TRUE(ws.send(clientFrame(kFin | 8, closePayload(code, "bye \xC3\xA9"))));
        EXPECT_EQ(ws.waitClose(), code);
    }
    RawWs empty(port());
    ASSERT_TRUE(empty.send(clientFrame(kFin | 8, {})));
    EXPECT_EQ(empty.waitClose(), 1000);  // a close without a code is answered with 1000
}

TEST_F(RelayTest, PingsAreAnsweredWithTheSamePayload) {
    RawWs ws(port());
    ASSERT_TRUE(ws.upgraded());
    Bytes binary;
    for (int i = 0; i < 125; ++i) binary.push_back(static_cast<std::uint8_t>(i * 7));
    for (const Bytes& payload : {Bytes{}, bytesOf("hello"), Bytes{0, 0xFF, 0x80}, binary}) {
        ASSERT_TRUE(ws.send(clientFrame(kFin | 9, payload)));
        RawWs::Frame f = ws.next(2000);
        EXPECT_EQ(f.opcode, 10);
        EXPECT_EQ(f.payload, std::string(payload.begin(), payload.end()));
    }
    // A ping between the fragments of a message is answered, and the message still arrives.
    const std::string hs = viewerHandshake();
    ASSERT_TRUE(ws.send(
        concat({clientFrame(1, bytesOf(hs.substr(0, 10))), clientFrame(kFin | 9, bytesOf("mid")),
                clientFrame(kFin | 0, bytesOf(hs.substr(10)))})));
    RawWs::Frame pong = ws.next(2000);
    EXPECT_EQ(pong.opcode, 10);
    EXPECT_EQ(pong.payload, "mid");
    EXPECT_TRUE(ws.waitForType("handshake_ack"));
}

TEST_F(RelayTest, FramesRightBehindTheUpgradeRequestAreRead) {
    // The HTTP layer reads them with the request; they must reach the WebSocket parser.
    RawWs ws(port(), "/ws/viewer", clientFrame(kFin | 1, bytesOf(viewerHandshake())));
    ASSERT_TRUE(ws.upgraded());
    EXPECT_TRUE(ws.waitForType("handshake_ack"));
}

TEST_F(RelayTest, UpgradeHandshakeIsChecked) {
    // A valid request gets 101 with the accept value of RFC 6455 4.2.2.
    {
        RawWs ok(port());
        ASSERT_TRUE(ok.upgraded()) << ok.response();
        EXPECT_NE(ok.response().find(std::string("Sec-WebSocket-Accept: ") + kUpgradeAccept),
                  std::string::npos)
            << ok.response();
    }
    struct Bad {
        const char* name;
        std::string request;
    };
    const Bad bad[] = {
        {"POST", upgradeRequest("/ws/viewer", "POST")},
        {"PUT on the agent path", upgradeRequest("/ws/agent", "PUT")},
        {"HTTP/1.0", upgradeRequest("/ws/viewer", "GET", "HTTP/1.0")},
        {"key of 15 bytes",
         upgradeRequest("/ws/viewer", "GET", "HTTP/1.1", "AAAAAAAAAAAAAAAAAAAA")},
        {"key of 17 bytes",
         upgradeRequest("/ws/viewer", "GET", "HTTP/1.1", "AAAAAAAAAAAAAAAAAAAAAAA=")},
        {"key not base64",
         upgradeRequest("/ws/viewer", "GET", "HTTP/1.1", "!!!!!!!!!!!!!!!!!!!!!!==")},
        {"key 'abc'", upgradeRequest("/ws/agent", "GET", "HTTP/1.1", "abc")},
        {"no key",
         "GET /ws/viewer HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: "
         "Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n"},
        {"version 8",
         "GET /ws/viewer HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: "
         "Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
         "Sec-WebSocket-Version: 8\r\n\r\n"},
        {"no Upgrade header", "GET /ws/viewer HTTP/1.1\r\nHost: x\r\n\r\n"},
    };
    for (const auto& b : bad) {
        const std::string answer = httpAnswer(port(), b.request);
        // The status line carries the request's version ("HTTP/1.0 400 ..." for HTTP/1.0).
        const std::string status = statusLineOf(answer);
        EXPECT_EQ(status.substr(status.find(' ') + 1), "400 Bad Request") << b.name << "\n"
                                                                          << answer;
    }
    const std::string v8 = httpAnswer(port(), bad[8].request);
    EXPECT_NE(v8.find("Sec-WebSocket-Version: 13"), std::string::npos) << v8;
    EXPECT_EQ(relay->counters().at("connections_opened"), 1u);  // only the valid one
}

// A header claiming 2^62 bytes is refused from the header alone: closed at once, nothing
// allocated. Bounds: 100 ms (the figure; it takes about 1 ms, and a relay that waited
// for the payload or for a deadline would take the 2 s frame timeout or more); RSS < 1 MiB
// (allocating even 1% of the claim would be far more).
TEST_F(RelayTest, AHugeDeclaredLengthIsClosedAtOnceWithoutAllocating) {
    RelayOptions o = testOptions();
    o.maxMessageBytes = 16 * 1024 * 1024;
    startRelay(o);
    {
        // Warm-up: the first close of a run initialises logging and metrics paths, which is
        // not memory the attack costs.
        RawWs warm(port());
        ASSERT_TRUE(warm.send(headerOnly(kFin | 2, 1ull << 62)));
        EXPECT_EQ(warm.waitClose(3000), 1009);
    }
    for (const bool handshaken : {false, true}) {
        SCOPED_TRACE(handshaken ? "open" : "before handshake");
        RawWs ws(port());
        ASSERT_TRUE(ws.upgraded());
        if (handshaken) {
            ASSERT_TRUE(ws.sendText(viewerHandshake()));
            ASSERT_TRUE(ws.waitForType("handshake_ack"));
        }
        const std::int64_t before = rssBytes();
        const auto t0 = Clock::now();
        ASSERT_TRUE(ws.send(headerOnly(kFin | 2, 1ull << 62)));
        const int code = ws.waitClose(3000);
        const auto ms =
            std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
        const std::int64_t grown = rssBytes() - before;
        EXPECT_EQ(code, 1009);
        EXPECT_LT(ms, 100);
        EXPECT_LT(grown, 1 << 20) << "RSS grew by " << grown << " bytes";
        bool tooLarge = false;  // the error comes before the CLOSE (after any JSON ping)
        for (const auto& t : ws.texts()) tooLarge |= str(parseJson(t), "code") == "too_large";
        EXPECT_TRUE(tooLarge);
        std::printf("[ measured ] 2^62-byte header (%s): closed 1009 in %lld ms, RSS %+lld bytes\n",
                    handshaken ? "open" : "before handshake", static_cast<long long>(ms),
                    static_cast<long long>(grown));
    }
}

// Issue 18.1: 40 unauthenticated connections each try to hold 15 MiB of unfinished fragments
// (text and binary). Before the handshake only a handshake-sized message (64 KiB) is allowed,
// so each is closed with 1009 within its first 64 KiB and the relay holds almost nothing.
// Bound: RSS grows < 64 MB (the defect reached 880 MB; 40 x 64 KiB is 2.5 MiB), and after the
// closes every connection is gone and RSS stays within that bound.
TEST_F(RelayTest, UnauthenticatedFragmentsCannotMakeTheRelayHoldMemory) {
    RelayOptions o = testOptions();
    o.maxMessageBytes = 16 * 1024 * 1024;
    o.httpMaxThreads = 96;
    o.handshakeTimeoutMs = 20000;  // the size limit, not the handshake deadline, must act
    startRelay(o);
    constexpr int kConnections = 40;
    constexpr std::size_t kFragment = 32 * 1024;
    constexpr std::size_t kTotal = 15u << 20;
    std::vector<std::unique_ptr<RawWs>> conns;
    for (int i = 0; i < kConnections; ++i) {
        conns.push_back(std::make_unique<RawWs>(port()));
        ASSERT_TRUE(conns.back()->upgraded());
    }
    const std::int64_t before = rssBytes();
    const std::uint64_t closedBefore = counter("connections_closed");
    std::int64_t peak = before;
    // Round-robin, 32 KiB fragments each, as long as the relay reads them.
    std::vector<std::size_t> sent(kConnections, 0);
    std::vector<bool> refused(kConnections, false);
    const Bytes text(kFragment, 'a');
    const Bytes binary(kFragment, 0x5A);
    for (bool progress = true; progress;) {
        progress = false;
        for (int i = 0; i < kConnections; ++i) {
            if (refused[i] || sent[i] >= kTotal) continue;
            const bool isText = i % 2 == 0;
            const std::uint8_t op = sent[i] == 0 ? (isText ? 1 : 2) : 0;
            // Stop sending once the relay has answered (its CLOSE is waiting to be read).
            pollfd p{conns[i]->fd(), POLLIN, 0};
            if (::poll(&p, 1, 0) > 0) {
                refused[i] = true;
                continue;
            }
            if (!conns[i]->send(clientFrame(op, isText ? text : binary))) {
                refused[i] = true;
                continue;
            }
            sent[i] += kFragment;
            progress = true;
        }
        peak = std::max(peak, rssBytes());
    }
    for (int i = 0; i < kConnections; ++i) {
        SCOPED_TRACE("connection " + std::to_string(i));
        EXPECT_EQ(conns[i]->waitClose(5000), 1009);
        // Refused after its first 64 KiB (plus what was in flight when the answer came), long
        // before 15 MiB.
        EXPECT_LT(sent[i], kTotal / 8);
        peak = std::max(peak, rssBytes());
    }
    conns.clear();
    EXPECT_TRUE(eventually(
        [&] { return counter("connections_closed") >= closedBefore + kConnections; }, 5000));
    const std::int64_t after = rssBytes();
    EXPECT_LT(peak - before, 64 << 20) << "peak RSS growth";
    EXPECT_LT(after - before, 64 << 20) << "RSS after the closes";
    std::size_t maxSent = 0;
    for (auto s : sent) maxSent = std::max(maxSent, s);
    std::printf(
        "[ measured ] %d x 15 MiB unfinished fragments before the handshake: all closed 1009 "
        "after at most %zu KiB each; RSS peak %+lld KiB, after close %+lld KiB\n",
        kConnections, maxSent / 1024, static_cast<long long>((peak - before) / 1024),
        static_cast<long long>((after - before) / 1024));
}

// Issue 18.2: 512 connections that start a frame and drip one byte at a time are all closed by
// the absolute handshake deadline (1 s here), whatever they are in the middle of, while /healthz
// keeps answering within 500 ms. With today's thread-per-connection relay each connection holds
// a pool thread, so the pool is sized 560 to leave /healthz a thread (at the default max_threads
// of 512 they would hold every thread until the deadline: issue 18.3, the event loop's part).
// Bounds: every dripper closed with 1008 within deadline + 1.5 s after the last one connected
// (ASan, 2 busy cores); a relay that let them escape would keep them for the whole 5 s drip.
TEST_F(RelayTest, DrippingConnectionsAreClosedByTheAbsoluteHandshakeDeadline) {
    RelayOptions o = testOptions();
    o.handshakeTimeoutMs = 1000;
    o.receiveTimeoutMs = 60000;  // the frame deadline must not be what closes them
    o.httpMaxThreads = 560;
    o.maxViewers = 1000;
    o.maxConnectionsPerIp = 0;  // every connection comes from 127.0.0.1 (no per-address cap)
    startRelay(o);
    constexpr int kDrippers = 512;
    std::vector<std::unique_ptr<RawWs>> drippers;
    // A text frame that would be a handshake, sent one byte per round.
    const Bytes frame = clientFrame(kFin | 1, bytesOf(viewerHandshake()));
    const auto start = Clock::now();
    for (int i = 0; i < kDrippers; ++i) {
        drippers.push_back(std::make_unique<RawWs>(port()));
        ASSERT_TRUE(drippers.back()->upgraded()) << i;
    }
    const auto allConnected = Clock::now();
    std::vector<int> codes(kDrippers, 0);
    std::vector<Clock::duration> closedAfter(kDrippers);
    std::size_t at = 0;
    long long worstHealthMs = 0;
    int healthFailures = 0;
    while (Clock::now() - allConnected < std::chrono::seconds(5)) {
        bool anyOpen = false;
        for (int i = 0; i < kDrippers; ++i) {
            if (codes[i] != 0) continue;
            pollfd p{drippers[i]->fd(), POLLIN, 0};
            if (::poll(&p, 1, 0) > 0) {
                codes[i] = drippers[i]->waitClose(3000);
                closedAfter[i] = Clock::now() - start;
                continue;
            }
            anyOpen = true;
            if (at < frame.size()) drippers[i]->send(Bytes{frame[at]});
        }
        ++at;
        const auto h0 = Clock::now();
        const HttpResult health = httpRequest(port(), "GET", "/healthz");
        const auto hms =
            std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - h0).count();
        worstHealthMs = std::max<long long>(worstHealthMs, hms);
        if (health.status != 200) ++healthFailures;
        if (!anyOpen) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    long long latestMs = 0;
    for (int i = 0; i < kDrippers; ++i) {
        SCOPED_TRACE("dripper " + std::to_string(i));
        EXPECT_EQ(codes[i], 1008);
        latestMs = std::max<long long>(
            latestMs,
            std::chrono::duration_cast<std::chrono::milliseconds>(closedAfter[i]).count());
    }
    const long long connectMs =
        std::chrono::duration_cast<std::chrono::milliseconds>(allConnected - start).count();
    EXPECT_LT(latestMs, connectMs + 1000 + 1500);
    EXPECT_EQ(healthFailures, 0);
    EXPECT_LE(worstHealthMs, 500);
    EXPECT_GE(counter("handshake_timeouts"), static_cast<std::uint64_t>(kDrippers));
    std::printf(
        "[ measured ] %d dripping connections (connected in %lld ms): all closed 1008 by "
        "%lld ms (deadline 1000 ms); worst /healthz %lld ms\n",
        kDrippers, connectMs, latestMs, worstHealthMs);
}

// Issue 18.2: after the handshake, a frame must complete within receive_timeout_ms of its first
// byte, however slowly the bytes come. Bound: closed 1008 within 1 s + 1.5 s; a relay that
// restarted the clock with each byte would keep the connection for the whole 5 s drip.
TEST_F(RelayTest, AFrameDrippedAfterTheHandshakeIsClosedByTheFrameDeadline) {
    RelayOptions o = testOptions();
    o.receiveTimeoutMs = 1000;
    o.heartbeatIntervalMs = 10000;  // the heartbeat must not be what closes it
    startRelay(o);
    RawWs ws(port());
    ASSERT_TRUE(ws.upgraded());
    ASSERT_TRUE(ws.sendText(viewerHandshake()));
    ASSERT_TRUE(ws.waitForType("handshake_ack"));
    const Bytes frame = clientFrame(kFin | 1, bytesOf("{\"type\":\"ping\",\"timestamp\":1}"));
    std::string closeReason;
    const auto t0 = Clock::now();
    int code = -1;
    // One byte per 200 ms (the frame would take 7 s); JSON pings on the way are skipped.
    for (std::size_t i = 0; i < frame.size() && code < 0; ++i) {
        ws.send(Bytes{frame[i]});
        const auto byteDue = Clock::now() + std::chrono::milliseconds(200);
        while (code < 0 && Clock::now() < byteDue) {
            RawWs::Frame f = ws.next(50);
            if (f.opcode == -2) code = 1006;
            if (f.opcode == 8)
                code = f.payload.size() < 2 ? 1005
                                            : ((static_cast<unsigned char>(f.payload[0]) << 8) |
                                               static_cast<unsigned char>(f.payload[1]));
            if (f.opcode == 8) closeReason = f.payload.substr(2);
        }
    }
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
    EXPECT_EQ(code, 1008);
    EXPECT_NE(closeReason.find("frame not completed"), std::string::npos) << closeReason;
    EXPECT_LT(ms, 1000 + 1500);
    EXPECT_GE(ms, 900);  // not before its deadline
}

// The handshake-sized limit (64 KiB) holds only until the handshake is accepted: an agent then
// streams frames up to max_message_bytes.
TEST_F(RelayTest, TheHandshakeSizedLimitAppliesOnlyBeforeTheHandshake) {
    deskstream::core::FrameHeader h;
    h.codec = deskstream::core::FrameCodec::Jpeg;
    h.flags = deskstream::core::frame_flags::kKey;
    h.frameNumber = 1;
    h.quality = 80;
    h.screenWidth = h.rectWidth = 640;
    h.screenHeight = h.rectHeight = 480;
    const std::vector<std::uint8_t> payload(200 * 1024, 0x11);  // fixture limit: 256 KiB
    const std::vector<std::uint8_t> frame =
        deskstream::core::buildFrame(h, payload.data(), payload.size());

    RawWs early(port(), "/ws/agent");
    ASSERT_TRUE(early.upgraded());
    early.send(clientFrame(kFin | 2, frame));
    EXPECT_EQ(early.waitClose(), 1009);
    bool named = false;
    for (const auto& t : early.texts())
        named |= str(parseJson(t), "message").find("65536") != std::string::npos;
    EXPECT_TRUE(named) << "the too_large error names the handshake-sized limit";

    auto agent = connectAgent("big-frames-pc");
    const std::uint64_t received = counter("frames_received");
    agent->sendBinary(frame);
    EXPECT_TRUE(eventually([&] { return counter("frames_received") == received + 1; }));
    agent->send("{\"type\":\"ping\",\"timestamp\":5}");
    EXPECT_TRUE(agent->waitFor("pong"));
    EXPECT_FALSE(agent->closed());
}
