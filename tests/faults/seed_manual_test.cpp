// The seed's manual tests 2 and 3 automated against the real binary (issue 17; test 1, the
// heartbeat, is PartitionTest.SeedHeartbeatNetworkOffLongerThanTheBound):
// - registration failure: the relay's PostgreSQL credentials are revoked on the real server →
//   a new agent gets registration_failed (store_unavailable) and close 1008, the agent binary
//   exits 69; credentials back → registrations work again without a restart;
// - backpressure: a viewer that stops reading → the agent never has more than 10 frames in
//   flight (max_in_flight) and drops frames at capture instead of queueing them.
#include "fault_harness.hpp"

#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/WebSocket.h>

#include <gtest/gtest.h>

#include <csignal>
#include <cstdlib>
#include <optional>

using namespace ds_faults;
using namespace std::chrono_literals;

namespace {

struct Refusal {
    std::string type, code;
    int closeCode = 0;
};
// A raw agent handshake: the first answer's type and code, and the close code that follows.
Refusal rawAgentHandshake(uint16_t port, const std::string& clientId) {
    using Poco::Net::WebSocket;
    Refusal r;
    Poco::Net::HTTPClientSession s("127.0.0.1", port);
    WebSocket ws = rawAgentSocket(s, clientId);
    Poco::Buffer<char> buf(0);
    for (int i = 0; i < 10; ++i) {
        int flags = 0;
        buf.resize(0);
        int n = ws.receiveFrame(buf, flags);
        int op = flags & WebSocket::FRAME_OP_BITMASK;
        if (op == WebSocket::FRAME_OP_CLOSE || (n == 0 && flags == 0)) {
            r.closeCode = n >= 2 ? (static_cast<unsigned char>(buf.begin()[0]) << 8) |
                                       static_cast<unsigned char>(buf.begin()[1])
                                 : 1006;
            break;
        }
        Json j = parse(std::string(buf.begin(), buf.size()));
        if (!j || !r.type.empty()) continue;
        r.type = j->optValue<std::string>("type", "");
        r.code = j->optValue<std::string>("code", "");
        if (r.type == "handshake_ack") break;
    }
    return r;
}

// Seed test 2: "temporarily disable the service role key". Here: the relay's database role
// loses its right to log in and its sessions are ended, on the real PostgreSQL server.
TEST(SeedManual, RegistrationFailsWith1008WhenDatabaseCredentialsAreRevoked) {
    const char* pg = std::getenv("DESKSTREAM_TEST_PG");
    ASSERT_NE(pg, nullptr) << "DESKSTREAM_TEST_PG is not set: start PostgreSQL (scripts/test.sh)";
    std::string role = "dsf_role_" + std::to_string(::getpid());
    std::string schema = "dsf_s_" + std::to_string(::getpid());
    psql("CREATE ROLE " + role + " LOGIN PASSWORD 'fault-pw'");
    psql("GRANT CREATE ON DATABASE deskstream_test TO " + role);
    std::string conninfo(pg);
    conninfo.replace(conninfo.find("user=deskstream_admin password=deskstream"),
                     std::string("user=deskstream_admin password=deskstream").size(),
                     "user=" + role + " password=fault-pw");

    uint16_t port = freePort();
    std::vector<std::string> args = baseArgs(tempDir("pg-relay"));
    args.insert(args.end(),
                {"--role", "relay", "--set", "relay.listen=127.0.0.1:" + std::to_string(port),
                 "--set", "relay.store=postgres", "--set", "store.postgres.connection=" + conninfo,
                 "--set", "store.postgres.schema=" + schema});
    {
        Process relay(args);
        ASSERT_TRUE(waitHealthy("127.0.0.1", port, 30000)) << relay.err();
        Refusal ok = rawAgentHandshake(port, "pg-before");
        EXPECT_EQ(ok.type, "handshake_ack")
            << "registration before the revocation: " << ok.type << " " << ok.code;

        psql("ALTER ROLE " + role + " NOLOGIN");
        psql("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE usename = '" +
             role + "'");
        auto t0 = Clock::now();
        Refusal refused = rawAgentHandshake(port, "pg-during");
        long refusedMs = msSince(t0);
        EXPECT_EQ(refused.type, "registration_failed");
        EXPECT_EQ(refused.code, "store_unavailable");
        EXPECT_EQ(refused.closeCode, 1008);
        EXPECT_LT(refusedMs, 8000) << "the refusal must not wait for long timeouts";
        EXPECT_FALSE(desktop("127.0.0.1", port, "pg-during")) << "a refused agent is listed";

        // The agent binary: registration_failed is final, exit 69 with the code in the log.
        std::vector<std::string> agentArgs = baseArgs(tempDir("pg-agent"));
        agentArgs.insert(
            agentArgs.end(),
            {"--role", "agent", "--set",
             "agent.relay_url=ws://127.0.0.1:" + std::to_string(port) + "/ws/agent", "--set",
             "agent.client_id=pg-agent", "--set", "agent.token=" + mint(true, "pg-agent")});
        Process agent(agentArgs);
        EXPECT_EQ(agent.wait(30s), 69) << agent.err();
        EXPECT_NE(agent.err().find("registration refused by the relay: code store_unavailable"),
                  std::string::npos)
            << agent.err();
        EXPECT_EQ(agent.err().find("fault-pw"), std::string::npos) << "no secret in the log";
        EXPECT_EQ(relay.err().find("fault-pw"), std::string::npos)
            << "no secret in the relay's log";

        psql("ALTER ROLE " + role + " LOGIN");
        auto t1 = Clock::now();
        EXPECT_TRUE(
            eventually([&] { return rawAgentHandshake(port, "pg-after").type == "handshake_ack"; },
                       10000, 200))
            << "registrations did not work again without a relay restart";
        printf(
            "registration failure: refused (1008, store_unavailable) in %ld ms; registrations back "
            "%ld ms after "
            "the credentials returned\n",
            refusedMs, msSince(t1));
        relay.signal(SIGTERM);
        EXPECT_EQ(relay.wait(15s), 0) << relay.err();
    }
    psql("DROP SCHEMA IF EXISTS " + schema + " CASCADE");
    psql("DROP OWNED BY " + role);
    psql("DROP ROLE " + role);
}

// Seed test 3 (backpressure): the only viewer stops reading and acking. The relay keeps it for
// acks (viewer_ack_timeout_ms raised to 60 s, so the relay does not skip it), so the agent's
// window is the only thing between a stalled receiver and unbounded queues: at most 10 frames
// in flight, the rest dropped at capture (dropsWindow grows). Reading again resumes the stream.
TEST(SeedManual, StalledViewerKeepsAtMostTenFramesInFlight) {
    uint16_t port = freePort();
    std::vector<std::string> args = baseArgs(tempDir("bp-relay"));
    args.insert(args.end(),
                {"--role", "relay", "--set", "relay.listen=127.0.0.1:" + std::to_string(port),
                 "--set", "relay.viewer_ack_timeout_ms=60000"});
    Process relay(args);
    ASSERT_TRUE(waitHealthy("127.0.0.1", port, 30000)) << relay.err();
    std::vector<std::string> agentArgs = baseArgs(tempDir("bp-agent"));
    agentArgs.insert(agentArgs.end(),
                     {"--role", "agent", "--set",
                      "agent.relay_url=ws://127.0.0.1:" + std::to_string(port) + "/ws/agent",
                      "--set", "agent.client_id=bp-pc", "--set",
                      "agent.token=" + mint(true, "bp-pc"), "--set", "agent.fps=12"});
    Process agent(agentArgs);
    ASSERT_TRUE(eventually([&] { return desktop("127.0.0.1", port, "bp-pc") != nullptr; }, 30000))
        << agent.err();
    Viewer viewer("", "127.0.0.1", port, "bp-pc");
    ASSERT_TRUE(eventually([&] { return viewer.frames() > 5; }, 15000)) << viewer.error();

    auto stat = [&](const std::string& key) -> long {
        Json d = desktop("127.0.0.1", port, "bp-pc");
        if (!d || !d->has("stats")) return -1;
        auto s = d->getObject("stats");
        return s && s->has(key) && !s->isNull(key) ? static_cast<long>(s->getValue<int64_t>(key))
                                                   : -1;
    };
    long drops0 = stat("dropsWindow");
    viewer.stopReading();
    long maxInFlight = 0;
    auto t0 = Clock::now();
    while (msSince(t0) < 8000) {  // agent_stats arrive every 2 s; frames lost leave after 10 s
        maxInFlight = std::max(maxInFlight, stat("inFlight"));
        std::this_thread::sleep_for(200ms);
    }
    long drops1 = stat("dropsWindow");
    printf("backpressure: max frames in flight %ld (limit 10), window drops %ld -> %ld\n",
           maxInFlight, drops0, drops1);
    EXPECT_LE(maxInFlight, 10);
    EXPECT_GE(maxInFlight, 8) << "the window never filled: the stall did not reach the agent";
    EXPECT_GT(drops1, drops0) << "frames were not dropped at capture while the window was full";

    uint64_t f = viewer.frames();
    viewer.resumeReading();
    EXPECT_TRUE(eventually([&] { return viewer.frames() > f + 10; }, 20000))
        << "the stream did not resume";
    relay.signal(SIGTERM);
    EXPECT_EQ(relay.wait(15s), 0) << relay.err();
}

}  // namespace
