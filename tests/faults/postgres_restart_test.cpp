// PostgreSQL restarted while two relay instances stream (issue 17): two deskstream relays on one
// schema of the real test server (scripts/lib/postgres.sh), an agent and a viewer on each. The
// server is stopped for several seconds and started again; no deskstream process restarts.
#include "fault_harness.hpp"
#include "ds_test/pg_outage.hpp"

#include <Poco/JSON/Array.h>

#include <gtest/gtest.h>

#include <csignal>
#include <cstdlib>
#include <optional>

using namespace ds_faults;
using namespace std::chrono_literals;

namespace {

std::string env(const char* name) {
    const char* v = std::getenv(name);
    if (!v)
        throw std::runtime_error(std::string(name) +
                                 " is not set: start PostgreSQL with scripts/test.sh");
    return v;
}

int64_t nowMs() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

TEST(PostgresRestart, TwoInstancesKeepStreamingAndWriteAgainWithoutARestart) {
    ASSERT_NE(std::getenv("DESKSTREAM_TEST_PG"), nullptr)
        << "start PostgreSQL with scripts/test.sh";
    const std::string pg = env("DESKSTREAM_TEST_PG");
    const std::string schema = "dsf_pgr_" + std::to_string(::getpid());
    uint16_t ports[2] = {freePort(), freePort()};
    std::optional<Process> relays[2], agents[2];
    for (int i = 0; i < 2; ++i) {
        std::vector<std::string> args = baseArgs(tempDir("pgr-relay" + std::to_string(i)));
        std::string url = "127.0.0.1:" + std::to_string(ports[i]);
        args.insert(args.end(), {"--role", "relay",
                                 "--set",  "relay.listen=" + url,
                                 "--set",  "relay.public_url=http://" + url,
                                 "--set",  "relay.instance_id=dsf-pgr-" + std::to_string(i),
                                 "--set",  "relay.store=postgres",
                                 "--set",  "store.postgres.connection=" + pg,
                                 "--set",  "store.postgres.schema=" + schema,
                                 "--set",  "heartbeat.interval_ms=500",
                                 "--set",  "relay.registration.ttl_ms=4000",
                                 "--set",  "relay.reaper.interval_ms=1000"});
        relays[i].emplace(args);
        ASSERT_TRUE(waitHealthy("127.0.0.1", ports[i], 30000)) << relays[i]->err();
    }
    const std::string ids[2] = {"pgr-pc-0", "pgr-pc-1"};
    for (int i = 0; i < 2; ++i) {
        std::vector<std::string> args = baseArgs(tempDir("pgr-agent" + std::to_string(i)));
        args.insert(
            args.end(),
            {"--role", "agent", "--set",
             "agent.relay_url=ws://127.0.0.1:" + std::to_string(ports[i]) + "/ws/agent", "--set",
             "agent.client_id=" + ids[i], "--set", "agent.token=" + mint(true, ids[i]), "--set",
             "agent.fps=8", "--set", "heartbeat.interval_ms=500"});
        agents[i].emplace(args);
    }
    for (int i = 0; i < 2; ++i)
        ASSERT_TRUE(
            eventually([&] { return desktop("127.0.0.1", ports[0], ids[i]) != nullptr; }, 30000))
            << agents[i]->err();
    Viewer v0("", "127.0.0.1", ports[0], ids[0]), v1("", "127.0.0.1", ports[1], ids[1]);
    ASSERT_TRUE(eventually([&] { return v0.frames() > 3 && v1.frames() > 3; }, 15000))
        << v0.error() << v1.error();

    ds_test::PgOutage outage;
    uint64_t f0 = v0.frames(), f1 = v1.frames();
    outage.stop();
    auto t0 = Clock::now();
    // Commands during the outage, each across instances: 202 (stored) or a clear refusal (503
    // with an error), never a silent loss or a hang.
    std::vector<std::string> accepted;
    int refused = 0;
    for (int i = 0; i < 2; ++i) {
        auto r = httpPost("127.0.0.1", ports[i], "/api/desktops/" + ids[1 - i] + "/commands",
                          "{\"command\":{\"type\":\"request_keyframe\"}}");
        if (r.first == 202) {
            Json j = parse(r.second);
            ASSERT_TRUE(j && j->has("commandId")) << r.second;
            accepted.push_back(j->getValue<std::string>("commandId"));
        } else {
            EXPECT_EQ(r.first, 503) << r.second;
            EXPECT_NE(r.second.find("error"), std::string::npos)
                << "a refusal must say why: " << r.second;
            ++refused;
        }
    }
    std::this_thread::sleep_until(t0 + 6s);
    double fps0 = (v0.frames() - f0) / (msSince(t0) / 1000.0),
           fps1 = (v1.frames() - f1) / (msSince(t0) / 1000.0);
    EXPECT_GE(fps0, 4.0) << "frames stopped on instance 0 while the database was down";
    EXPECT_GE(fps1, 4.0) << "frames stopped on instance 1 while the database was down";
    EXPECT_FALSE(v0.closed() || v1.closed()) << "a viewer was dropped because of the database";

    outage.start();
    int64_t restartedAt = nowMs();
    auto t1 = Clock::now();
    // Registrations and heartbeats are written again: both rows present with a fresh last_ping.
    bool fresh = eventually(
        [&] {
            try {
                std::string out = psql("SELECT count(*) FROM " + schema +
                                       ".active_desktop_clients WHERE last_ping > " +
                                       std::to_string(restartedAt));
                return std::atoi(out.c_str()) == 2;
            } catch (...) {
                return false;
            }
        },
        30000, 250);
    long freshMs = msSince(t1);
    EXPECT_TRUE(fresh) << "rows not refreshed after the restart: "
                       << psql("SELECT client_id, instance_id, last_ping FROM " + schema +
                               ".active_desktop_clients");
    // Accepted commands are delivered once the database is back.
    for (const auto& id : accepted)
        EXPECT_TRUE(eventually(
            [&] {
                try {
                    return psql("SELECT status FROM " + schema + ".desktop_commands WHERE id = '" +
                                id + "'")
                               .find("done") == 0;
                } catch (...) {
                    return false;
                }
            },
            30000, 250))
            << "command " << id << " accepted during the outage was not delivered";
    // A command after the restart works without restarting anything.
    auto r = httpPost("127.0.0.1", ports[0], "/api/desktops/" + ids[1] + "/commands",
                      "{\"command\":{\"type\":\"request_keyframe\"}}");
    EXPECT_EQ(r.first, 202) << r.second;
    for (int i = 0; i < 2; ++i) {
        EXPECT_TRUE(relays[i]->running()) << relays[i]->err();
        EXPECT_TRUE(agents[i]->running()) << agents[i]->err();
    }
    uint64_t g0 = v0.frames(), g1 = v1.frames();
    EXPECT_TRUE(eventually([&] { return v0.frames() > g0 + 3 && v1.frames() > g1 + 3; }, 10000));
    printf(
        "postgres restart: %.1f / %.1f fps on the two instances during the outage; commands during "
        "it: %zu "
        "accepted and delivered, %d refused (503); rows refreshed %ld ms after the restart\n",
        fps0, fps1, accepted.size(), refused, freshMs);
    for (int i = 0; i < 2; ++i) {
        agents[i].reset();
        relays[i]->signal(SIGTERM);
        EXPECT_EQ(relays[i]->wait(15s), 0) << relays[i]->err();
    }
    psql("DROP SCHEMA IF EXISTS " + schema + " CASCADE");
}

}  // namespace
