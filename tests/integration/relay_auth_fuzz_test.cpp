// Token checks on both endpoints, and a fuzz client that must not crash or stall the relay.
#include "relay_fixture.hpp"

#include "deskstream/core/auth.hpp"
#include "deskstream/core/frame_header.hpp"

#include <Poco/Net/StreamSocket.h>
#include <Poco/Net/WebSocket.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <random>
#include <thread>

using namespace ds_itest;
using deskstream::core::Role;

namespace {

const char* kSecret = "integration-test-secret-0123456789";

int64_t nowMs() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::string token(Role role, const std::string& sub, int64_t issuedAtMs = nowMs(),
                  std::chrono::seconds ttl = std::chrono::seconds(60)) {
    return deskstream::core::mintToken(kSecret, role, sub, ttl, issuedAtMs);
}

class AuthTest : public RelayTest {
protected:
    void SetUp() override {
        RelayTest::SetUp();
        RelayOptions o = testOptions();
        o.authSecret = kSecret;
        startRelay(o);
    }

    void expectAgentRefused(const std::string& tok, const std::string& what) {
        WsClient agent(port(), "/ws/agent");
        agent.send(agentHandshake("auth-pc", tok));
        Json failed = agent.waitFor("registration_failed");
        ASSERT_TRUE(failed) << what;
        EXPECT_EQ(str(failed, "code"), "unauthorized") << what;
        EXPECT_EQ(agent.waitClose(), 1008) << what;
        EXPECT_FALSE(hasRow("auth-pc")) << what;
    }
};

}  // namespace

TEST_F(AuthTest, ValidDesktopTokenIsAccepted) {
    auto agent = connectAgent("auth-pc", token(Role::Desktop, "auth-pc"));
    EXPECT_TRUE(hasRow("auth-pc"));
    auto viewer = connectViewer(token(Role::Viewer, "alice"));
    viewer->send("{\"type\":\"ping\",\"timestamp\":3}");
    EXPECT_TRUE(viewer->waitFor("pong"));
}

TEST_F(AuthTest, MissingWrongRoleExpiredOrForgedTokensAreRefusedWith1008) {
    expectAgentRefused("", "missing token");
    expectAgentRefused(token(Role::Viewer, "auth-pc"), "viewer token on /ws/agent");
    expectAgentRefused(token(Role::Desktop, "auth-pc", nowMs() - 3600 * 1000), "expired token");
    expectAgentRefused(deskstream::core::mintToken("another-secret", Role::Desktop, "auth-pc",
                                                   std::chrono::seconds(60), nowMs()),
                       "token signed with another secret");
    expectAgentRefused("not.a.jwt", "garbage token");
    EXPECT_GE(counter("auth_failures"), 5u);

    WsClient viewer(port(), "/ws/viewer");
    viewer.send(viewerHandshake(token(Role::Desktop, "auth-pc")));
    Json err = viewer.waitFor("error");
    ASSERT_TRUE(err);
    EXPECT_EQ(str(err, "code"), "unauthorized");
    EXPECT_EQ(viewer.waitClose(), 1008);
}

TEST_F(RelayTest, FuzzClientsDoNotCrashStallOrLeakConnectionsOfTheRelay) {
    // Heartbeat timing is not under test here: with hundreds of short fuzz connections a
    // second on 2 shared cores under ASan, a 450 ms death bound is too tight for the watcher.
    RelayOptions o = testOptions();
    o.heartbeatIntervalMs = 500;
    o.missedLimit = 3;
    startRelay(o);
    auto watcher = connectAgent("steady-pc");
    std::atomic<bool> stop{false};
    std::atomic<uint64_t> sent{0};
    std::atomic<uint64_t> upgraded{0};  // fuzz WebSocket connections the relay accepted
    auto fuzz = [&](unsigned seed, const char* path) {
        std::mt19937 rng(seed);
        const std::vector<std::string> pieces = {"{",
                                                 "}",
                                                 "[",
                                                 "]",
                                                 "\"type\"",
                                                 ":",
                                                 ",",
                                                 "\"handshake\"",
                                                 "\"ping\"",
                                                 "\"subscribe\"",
                                                 "\"command\"",
                                                 "\"command_result\"",
                                                 "\"timestamp\"",
                                                 "1e309",
                                                 "-1",
                                                 "null",
                                                 "true",
                                                 "\"desktopClientId\"",
                                                 "\"clientId\"",
                                                 "\"role\"",
                                                 "\"desktop\"",
                                                 "\"viewer\"",
                                                 "\"protocol\"",
                                                 "\"monitors\"",
                                                 "\"\\u0000\"",
                                                 "\"\\ud800\"",
                                                 "0",
                                                 "99999999999999999999",
                                                 "\"command\":{\"type\":\"input\"}",
                                                 "\xff\xfe",
                                                 "\"frame_ack\"",
                                                 "{\"type\":\"ping\"}"};
        while (!stop) {
            try {
                WsClient c(port(), path, (rng() & 1) != 0);
                upgraded.fetch_add(1);
                const int messages = 1 + static_cast<int>(rng() % 40);
                for (int i = 0; i < messages && !stop && !c.closed(); ++i) {
                    const unsigned kind = rng() % 6;
                    if (kind == 0) {  // random bytes as binary
                        std::vector<uint8_t> b(rng() % 300);
                        for (auto& x : b) x = static_cast<uint8_t>(rng());
                        c.sendBinary(b);
                    } else if (kind == 1) {  // random bytes as text
                        std::string s(rng() % 200, ' ');
                        for (auto& x : s) x = static_cast<char>(rng());
                        c.send(s);
                    } else if (kind == 2) {  // a valid handshake, sometimes
                        c.send(std::string(path) == "/ws/agent"
                                   ? agentHandshake("fuzz-" + std::to_string(rng() % 5))
                                   : viewerHandshake());
                    } else if (kind == 3) {  // a frame with random header fields
                        std::vector<uint8_t> b(64 + rng() % 64);
                        for (auto& x : b) x = static_cast<uint8_t>(rng());
                        std::memcpy(b.data(), "DSF1", 4);
                        c.sendBinary(b);
                    } else {  // JSON-ish soup
                        std::string s;
                        const int n = 1 + static_cast<int>(rng() % 20);
                        for (int k = 0; k < n; ++k) s += pieces[rng() % pieces.size()];
                        c.send(s);
                    }
                    sent.fetch_add(1);
                    if (rng() % 4 == 0) c.receive(5);  // sometimes read a little
                }
            } catch (const std::exception&) {
                // The relay may close us at any point: that is fine.
            }
        }
    };
    auto raw = [&](unsigned seed) {
        std::mt19937 rng(seed);
        while (!stop) {
            try {
                Poco::Net::StreamSocket s(Poco::Net::SocketAddress("127.0.0.1", port()));
                std::string junk(rng() % 2000, ' ');
                for (auto& x : junk) x = static_cast<char>(rng());
                if (rng() & 1) junk = "GET /ws/agent HTTP/1.1\r\nUpgrade: websocket\r\n" + junk;
                s.sendBytes(junk.data(), static_cast<int>(junk.size()));
                s.close();
                sent.fetch_add(1);
            } catch (const std::exception&) {}
        }
    };
    std::vector<std::thread> threads;
    threads.emplace_back(fuzz, 1u, "/ws/agent");
    threads.emplace_back(fuzz, 2u, "/ws/viewer");
    threads.emplace_back(fuzz, 3u, "/ws/agent");
    threads.emplace_back(raw, 4u);
    // The steady agent keeps answering pings for the whole run (10 s).
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    int64_t ts = 100;
    while (std::chrono::steady_clock::now() < end) {
        watcher->send("{\"type\":\"ping\",\"timestamp\":" + std::to_string(++ts) + "}");
        Json pong = watcher->waitFor("pong", 3000);
        ASSERT_TRUE(pong) << "the steady agent stopped getting answers during the fuzz run";
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    stop = true;
    for (auto& t : threads) t.join();
    std::printf(
        "fuzz: %llu messages/connections sent in 10 s; relay counted %llu bad messages, "
        "%llu connections\n",
        static_cast<unsigned long long>(sent.load()),
        static_cast<unsigned long long>(counter("bad_messages")),
        static_cast<unsigned long long>(counter("connections_opened")));
    EXPECT_GT(sent.load(), 100u);
    EXPECT_FALSE(watcher->closed());
    EXPECT_TRUE(hasRow("steady-pc"));
    // The relay saw every fuzz connection and let go of each one: only the watcher is left
    // (a session leaked by some bad input would stay in these figures).
    EXPECT_GE(counter("connections_opened"), upgraded.load() + 1);
    EXPECT_TRUE(eventually(
        [&] {
            return relay->agentCount() == 1 && relay->viewerCount() == 0 &&
                   counter("connections_closed") == counter("connections_opened") - 1;
        },
        5000))
        << "agents " << relay->agentCount() << ", viewers " << relay->viewerCount() << ", opened "
        << counter("connections_opened") << ", closed " << counter("connections_closed");
    EXPECT_EQ(rows().size(), 1u);  // no fuzz-* registration outlived its connection

    // A normal client still works afterwards.
    auto fresh = connectAgent("after-fuzz");
    EXPECT_TRUE(hasRow("after-fuzz"));
    auto viewer = connectViewer();
    viewer->send("{\"type\":\"subscribe\",\"desktopClientId\":\"after-fuzz\"}");
    EXPECT_TRUE(viewer->waitFor("subscribed"));
    EXPECT_GT(counter("bad_messages"), 10u);
}
