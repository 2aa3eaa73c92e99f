// Instance death (issue 17): one of two relay instances on one PostgreSQL schema is SIGKILLed
// while it holds an agent. Its registration row goes within the TTL (the survivor's reaper),
// a command posted meanwhile through the survivor waits, and once the agent comes back through
// the survivor (as a load balancer would send it) the command is delivered once.
#include "fault_harness.hpp"

#include <gtest/gtest.h>

#include <csignal>
#include <cstdlib>
#include <optional>

using namespace ds_faults;
using namespace std::chrono_literals;

namespace {

TEST(InstanceDeath, RowsGoWithinTheTtlAndQueuedCommandsAreDeliveredOnce) {
    const char* pg = std::getenv("DESKSTREAM_TEST_PG");
    ASSERT_NE(pg, nullptr) << "start PostgreSQL with scripts/test.sh";
    const std::string schema = "dsf_id_" + std::to_string(::getpid());
    constexpr int kTtlMs = 3000, kReaperMs = 500;
    uint16_t ports[2] = {freePort(), freePort()};
    std::optional<Process> relays[2];
    for (int i = 0; i < 2; ++i) {
        std::vector<std::string> args = baseArgs(tempDir("id-relay" + std::to_string(i)));
        std::string url = "127.0.0.1:" + std::to_string(ports[i]);
        args.insert(args.end(),
                    {"--role", "relay",
                     "--set",  "relay.listen=" + url,
                     "--set",  "relay.public_url=http://" + url,
                     "--set",  "relay.instance_id=dsf-id-" + std::to_string(i),
                     "--set",  "relay.store=postgres",
                     "--set",  "store.postgres.connection=" + std::string(pg),
                     "--set",  "store.postgres.schema=" + schema,
                     "--set",  "heartbeat.interval_ms=500",
                     "--set",  "relay.registration.ttl_ms=" + std::to_string(kTtlMs),
                     "--set",  "relay.reaper.interval_ms=" + std::to_string(kReaperMs)});
        relays[i].emplace(args);
        ASSERT_TRUE(waitHealthy("127.0.0.1", ports[i], 30000)) << relays[i]->err();
    }
    auto agentArgs = [&](int instance) {
        std::vector<std::string> a = baseArgs(tempDir("id-agent" + std::to_string(instance)));
        a.insert(a.end(),
                 {"--role", "agent", "--set",
                  "agent.relay_url=ws://127.0.0.1:" + std::to_string(ports[instance]) + "/ws/agent",
                  "--set", "agent.client_id=id-pc", "--set", "agent.token=" + mint(true, "id-pc")});
        return a;
    };
    auto rows = [&] {
        return std::atoi(psql("SELECT count(*) FROM " + schema +
                              ".active_desktop_clients WHERE client_id = 'id-pc'")
                             .c_str());
    };
    std::optional<Process> agent;
    agent.emplace(agentArgs(0));
    ASSERT_TRUE(eventually([&] { return rows() == 1; }, 30000)) << agent->err();

    relays[0]->signal(SIGKILL);
    ASSERT_EQ(relays[0]->wait(10s), 128 + SIGKILL);
    agent.reset();  // its relay is gone; it comes back below through the survivor
    auto t0 = Clock::now();
    // A command for the orphaned desktop through the survivor: stored, not yet deliverable.
    auto r = httpPost("127.0.0.1", ports[1], "/api/desktops/id-pc/commands",
                      "{\"command\":{\"type\":\"request_keyframe\"},\"commandId\":\"id-cmd-1\"}");
    EXPECT_EQ(r.first, 202) << r.second;
    // TTL + one reaper period + 1500 ms for ASan on 2 busy cores. The row may also have been
    // refreshed just before the kill, which the TTL already covers.
    bool gone = eventually([&] { return rows() == 0; }, kTtlMs + kReaperMs + 1500, 100);
    long goneMs = msSince(t0);
    EXPECT_TRUE(gone) << "the dead instance's row outlived the TTL";

    agent.emplace(agentArgs(1));
    auto t1 = Clock::now();
    ASSERT_TRUE(
        eventually([&] { return desktop("127.0.0.1", ports[1], "id-pc") != nullptr; }, 30000))
        << agent->err();
    long backMs = msSince(t1);
    auto status = [&] {
        return psql("SELECT status || ' ' || attempts FROM " + schema +
                    ".desktop_commands WHERE id = 'id-cmd-1'");
    };
    EXPECT_TRUE(eventually([&] { return status().rfind("done", 0) == 0; }, 15000, 100)) << status();
    EXPECT_EQ(status(), "done 1\n") << "delivered more than once";
    printf(
        "instance death: the killed instance's row gone after %ld ms (TTL %d); agent registered "
        "through the "
        "survivor in %ld ms; queued command: %s",
        goneMs, kTtlMs, backMs, status().c_str());
    agent.reset();
    relays[1]->signal(SIGTERM);
    EXPECT_EQ(relays[1]->wait(15s), 0) << relays[1]->err();
    psql("DROP SCHEMA IF EXISTS " + schema + " CASCADE");
}

}  // namespace
