// The relay over the real PostgreSQL store plugin (server started by scripts/test.sh, reached
// through DESKSTREAM_TEST_PG): registrations land in PostgreSQL, and a database role without the
// INSERT privilege on active_desktop_clients (the original system's row-level-security failure)
// makes the relay refuse the agent with registration_failed and 1008, leaving no trace, while
// it keeps serving everyone else.
#include "relay_fixture.hpp"
#include "store_harness.hpp"
#include "ds_test/pg_outage.hpp"

#include <Poco/Logger.h>

#include <cstdlib>
#include <stdexcept>

using namespace ds_itest;
using deskstream::relay::Relay;
using deskstream::relay::StoreClient;

namespace {

std::string adminConninfo() {
    const char* c = std::getenv("DESKSTREAM_TEST_PG");
    return c ? c : "";
}

// One PostgreSQL store plugin instance (loaded through its entry symbol) behind a relay.
struct PgRelay {
    ds_test::TestHost host;
    std::unique_ptr<ds_test::LoadedPlugin> plugin;
    void* instance = nullptr;
    std::unique_ptr<StoreClient> store;
    std::unique_ptr<Relay> relay;

    PgRelay(const std::string& conninfo, const std::string& schema,
            int64_t reaperIntervalMs = 30000) {
        plugin = std::make_unique<ds_test::LoadedPlugin>(ds_test::pluginPath("store", "postgres"));
        ds_test::TestConfig cfg("store.postgres", {{"connection", conninfo}, {"schema", schema}});
        char err[512] = "";
        ds_status s = plugin->store().create(host.api(), cfg.get(), &instance, err, sizeof err);
        if (s != DS_OK) throw std::runtime_error(std::string("postgres store: ") + err);
        store = std::make_unique<StoreClient>(&plugin->store(), instance);
        deskstream::relay::RelayOptions o;
        o.listen = "127.0.0.1:0";
        o.heartbeatIntervalMs = 150;
        o.reaperIntervalMs = reaperIntervalMs;
        relay = std::make_unique<Relay>(o, *store, Poco::Logger::get("relay"));
        relay->start();
    }
    ~PgRelay() {
        relay->stop();
        relay.reset();
        plugin->store().destroy(instance);
    }
    std::vector<deskstream::relay::ClientRecord> rows() {
        std::vector<deskstream::relay::ClientRecord> out;
        auto s = store->listClients(out);
        if (!s.ok()) throw std::runtime_error(s.describe());
        return out;
    }
};

class RelayPostgres : public ::testing::Test {
protected:
    void SetUp() override {
        ASSERT_FALSE(adminConninfo().empty())
            << "DESKSTREAM_TEST_PG is not set: run the suite with scripts/test.sh, which starts a "
               "PostgreSQL server for it";
        schema = store_test::uniqueName("relay_it_");
    }
    void TearDown() override {
        try {
            store_test::adminExec("DROP SCHEMA IF EXISTS " + schema + " CASCADE");
        } catch (...) {}
    }
    std::string schema;
};

}  // namespace

TEST_F(RelayPostgres, RegistrationIsStoredInPostgres) {
    PgRelay pg(adminConninfo(), schema);
    WsClient agent(pg.relay->port(), "/ws/agent");
    agent.send(agentHandshake("pg-pc"));
    Json ack = agent.waitFor("handshake_ack", 5000);
    ASSERT_TRUE(ack);
    EXPECT_TRUE(ack->getValue<bool>("dbRegistered"));
    auto rows = pg.rows();
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(rows[0].clientId, "pg-pc");
    EXPECT_EQ(rows[0].instanceId, pg.relay->instanceId());
}

TEST_F(RelayPostgres, RoleWithoutInsertGetsRegistrationFailedAndNoRow) {
    { PgRelay migrate(adminConninfo(), schema); }  // creates the schema as the admin role
    store_test::ScopedPgRole limitedRole("noins_", schema);
    const std::string& role = limitedRole.name();
    // Everything a relay needs except INSERT on the registrations table.
    store_test::adminExec("GRANT USAGE ON SCHEMA " + schema + " TO " + role +
                          "; GRANT SELECT, UPDATE, DELETE ON ALL TABLES IN SCHEMA " + schema +
                          " TO " + role + "; GRANT INSERT ON " + schema + ".relay_instances, " +
                          schema + ".desktop_commands TO " + role);

    PgRelay limited(limitedRole.conninfo(), schema);
    WsClient agent(limited.relay->port(), "/ws/agent");
    agent.send(agentHandshake("blocked-pc"));
    Json failed = agent.waitFor("registration_failed", 5000);
    ASSERT_TRUE(failed);
    EXPECT_EQ(str(failed, "clientId"), "blocked-pc");
    EXPECT_EQ(str(failed, "code"), "store_unavailable");
    const std::string why = str(failed, "error");
    EXPECT_NE(why.find("permission denied"), std::string::npos) << why;
    EXPECT_NE(why.find("INSERT"), std::string::npos) << why;
    EXPECT_EQ(why.find("limitedpw"), std::string::npos) << "no secret in the message";
    EXPECT_EQ(agent.waitClose(3000), 1008);
    EXPECT_TRUE(limited.rows().empty());
    EXPECT_EQ(limited.relay->agentCount(), 0u);

    // The relay keeps serving: a viewer connects, and health answers.
    WsClient viewer(limited.relay->port(), "/ws/viewer");
    viewer.send(viewerHandshake());
    EXPECT_TRUE(viewer.waitFor("handshake_ack", 3000));
    EXPECT_EQ(httpRequest(limited.relay->port(), "GET", "/healthz").status, 200);
}

// Readiness follows the store (issue 15): 503 with the reason while PostgreSQL is down, 200 again
// once it is back, with no restart of the relay.
TEST_F(RelayPostgres, ReadyzIs503WithTheReasonWhileTheStoreIsDownAnd200WhenItReturns) {
    PgRelay pg(adminConninfo(), schema);
    const uint16_t port = pg.relay->port();
    HttpResult ready = httpRequest(port, "GET", "/readyz");
    ASSERT_EQ(ready.status, 200) << ready.body;

    ds_test::PgOutage outage("relay-readyz-restart.log");
    outage.stop();
    ready = httpRequest(port, "GET", "/readyz");
    EXPECT_EQ(ready.status, 503) << ready.body;
    Json body = parseJson(ready.body);
    ASSERT_TRUE(body) << ready.body;
    EXPECT_EQ(str(body, "status"), "unavailable");
    EXPECT_NE(str(body, "reason").find("store check failed"), std::string::npos) << ready.body;
    EXPECT_EQ(str(body, "reason").find("password=deskstream"), std::string::npos) << "no secret";
    // Liveness is not readiness: the process itself is fine.
    EXPECT_EQ(httpRequest(port, "GET", "/healthz").status, 200);
    // The failed checks are counted as store errors.
    EXPECT_GE(metricValue(httpRequest(port, "GET", "/metrics").body,
                          "deskstream_relay_store_errors_total{operation=\"check\"}"),
              1);

    outage.start();
    // The plugin reconnects on its next call; allow for the server's start-up on 2 busy cores.
    EXPECT_TRUE(
        eventually([&] { return httpRequest(port, "GET", "/readyz").status == 200; }, 15000))
        << httpRequest(port, "GET", "/readyz").body;
}

// A command posted through instance B for an agent on instance A reaches it through the store's
// notification alone: the maintenance sweep (which also redelivers) runs every 10 minutes here.
TEST_F(RelayPostgres, CommandThroughAnotherInstanceArrivesByNotificationWithinOneSecond) {
    const int64_t noSweep = 600000;
    PgRelay a(adminConninfo(), schema, noSweep);
    PgRelay b(adminConninfo(), schema, noSweep);
    WsClient agent(a.relay->port(), "/ws/agent");
    agent.send(agentHandshake("notify-pc"));
    ASSERT_TRUE(agent.waitFor("handshake_ack", 5000));
    EXPECT_FALSE(agent.waitFor("command", 300));  // nothing pending; the agent is idle

    const auto posted = std::chrono::steady_clock::now();
    HttpResult r =
        httpRequest(b.relay->port(), "POST", "/api/desktops/notify-pc/commands",
                    "{\"command\":{\"type\":\"request_keyframe\"},\"commandId\":\"n-1\"}");
    ASSERT_EQ(r.status, 202) << r.body;
    Json cmd = agent.waitFor("command", 3000);
    const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - posted);
    ASSERT_TRUE(cmd) << "not delivered within 3 s";
    EXPECT_EQ(str(cmd, "commandId"), "n-1");
    // Bound (issue 19): within 1 s of the POST. Without the notification the next chance is the
    // 10-minute sweep, so a broken wake-up fails this by far; the notification itself takes a
    // few ms (the rest is margin for ASan on 2 busy cores).
    EXPECT_LT(elapsed.count(), 1000);
    std::optional<deskstream::relay::CommandRecord> rec;
    ASSERT_TRUE(a.store->getCommand("n-1", rec).ok());
    ASSERT_TRUE(rec);
    EXPECT_EQ(rec->targetInstanceId, a.relay->instanceId());
    EXPECT_EQ(rec->status, "delivered");
}
