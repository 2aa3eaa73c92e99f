// Registration, store failure, heartbeat, replacement and the HTTP API of the relay, over real
// sockets against the real SQLite store plugin.
#include "relay_fixture.hpp"

#include <Poco/JSON/Array.h>
#include <Poco/Logger.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/WebSocket.h>

#include <sqlite3.h>

#include <thread>

using namespace ds_itest;
using Poco::Net::WebSocket;

TEST_F(RelayTest, HandshakeIsAckedAfterTheRowIsStored) {
    WsClient agent(port(), "/ws/agent");
    agent.send(agentHandshake("office-pc"));
    Json ack = agent.waitFor("handshake_ack");
    ASSERT_TRUE(ack);
    EXPECT_EQ(str(ack, "clientId"), "office-pc");
    EXPECT_TRUE(ack->getValue<bool>("dbRegistered"));
    EXPECT_EQ(str(ack, "instanceId"), relay->instanceId());
    EXPECT_GT(ack->getValue<int>("streamId"), 0);
    EXPECT_EQ(ack->getValue<int>("heartbeatIntervalMs"), 150);

    auto all = rows();
    ASSERT_EQ(all.size(), 1u);
    EXPECT_EQ(all[0].clientId, "office-pc");
    EXPECT_EQ(all[0].instanceId, relay->instanceId());
    EXPECT_EQ(all[0].hostname, "testhost");
    EXPECT_NE(all[0].monitorsJson.find("HDMI-1"), std::string::npos);

    // GET /api/desktops lists it with the documented names.
    HttpResult r = httpRequest(port(), "GET", "/api/desktops");
    ASSERT_EQ(r.status, 200) << r.body;
    Json body = parseJson(r.body);
    ASSERT_TRUE(body);
    auto list = body->getArray("desktops");
    ASSERT_EQ(list->size(), 1u);
    Json d = list->getObject(0);
    EXPECT_EQ(str(d, "clientId"), "office-pc");
    EXPECT_EQ(str(d, "name"), "Test PC");
    EXPECT_EQ(str(d, "hostname"), "testhost");
    EXPECT_EQ(str(d, "instanceId"), relay->instanceId());
    EXPECT_EQ(d->getArray("monitors")->size(), 1u);
    EXPECT_TRUE(d->getObject("capabilities")->getValue<bool>("input"));
    EXPECT_GT(d->getValue<int64_t>("connectedAt"), 0);
    EXPECT_GT(d->getValue<int64_t>("lastPing"), 0);
    EXPECT_EQ(d->getValue<int>("viewers"), 0);

    // Disconnect: the row goes away.
    agent.sendFrame("\x03\xe8", 2, WebSocket::FRAME_OP_CLOSE | WebSocket::FRAME_FLAG_FIN);
    EXPECT_EQ(agent.waitClose(), 1000);
    EXPECT_TRUE(eventually([&] { return !hasRow("office-pc"); }));
}

TEST_F(RelayTest, StoreFailureRejectsRegistrationAndLeavesNoTrace) {
    // A genuine SQLite failure: another connection holds the write lock longer than the
    // store's busy_timeout_ms (100 ms in the fixture), exactly as a second process would.
    sqlite3* locker = nullptr;
    ASSERT_EQ(sqlite3_open(dbPath.c_str(), &locker), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(locker, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);

    WsClient agent(port(), "/ws/agent");
    agent.send(agentHandshake("locked-pc"));
    Json failed = agent.waitFor("registration_failed", 3000);
    ASSERT_TRUE(failed);
    EXPECT_EQ(str(failed, "clientId"), "locked-pc");
    EXPECT_EQ(str(failed, "code"), "store_unavailable");
    EXPECT_NE(str(failed, "error").find("store"), std::string::npos) << str(failed, "error");
    EXPECT_EQ(agent.waitClose(), 1008);

    // The relay keeps serving: a viewer is accepted and answered while the store is locked.
    auto viewer = connectViewer();
    viewer->send("{\"type\":\"ping\",\"timestamp\":5}");
    Json pong = viewer->waitFor("pong");
    ASSERT_TRUE(pong);
    EXPECT_EQ(pong->getValue<int64_t>("timestamp"), 5);
    EXPECT_EQ(httpRequest(port(), "GET", "/healthz").status, 200);

    ASSERT_EQ(sqlite3_exec(locker, "ROLLBACK", nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(locker);

    EXPECT_FALSE(hasRow("locked-pc"));
    EXPECT_EQ(relay->agentCount(), 0u);
    EXPECT_TRUE(eventually([&] { return counter("registration_failures") >= 1u; }));
    // Once the store works again, registrations succeed.
    auto other = connectAgent("healthy-pc");
    EXPECT_TRUE(hasRow("healthy-pc"));
    EXPECT_FALSE(hasRow("locked-pc"));
}

TEST_F(RelayTest, SilentPeerIsClosedWith4008WithinTheBoundAndItsRowRemoved) {
    WsClient agent(port(), "/ws/agent", /*autoPong=*/false);
    // Measured from before the handshake: the relay's heartbeat clock starts after it, so the
    // rule's 450 ms can only look longer from here, never shorter.
    const auto start = std::chrono::steady_clock::now();
    agent.send(agentHandshake("silent-pc"));
    ASSERT_TRUE(agent.waitFor("handshake_ack"));
    ASSERT_TRUE(hasRow("silent-pc"));
    // Pings arrive but are never answered.
    const int code = agent.waitClose(3000);
    const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::steady_clock::now() - start)
                             .count();
    EXPECT_EQ(code, 4008);
    // Rule: close after interval x (missed_limit + 1) = 150 x 3 = 450 ms without a pong.
    // Lower bound 450: a relay giving up one interval early (300 ms) fails it. Upper bound 2 s:
    // 450 ms plus room for ASan on 2 busy cores; a relay that never closes gives -1 after 3 s.
    EXPECT_LE(elapsed, 2000);
    EXPECT_GE(elapsed, 450);
    EXPECT_TRUE(eventually([&] { return !hasRow("silent-pc"); }, 200));
    EXPECT_GE(counter("heartbeat_timeouts"), 1u);

    // A peer that answers stays connected across many intervals.
    auto healthy = connectAgent("healthy-pc");
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    EXPECT_FALSE(healthy->waitFor("never", 900));  // answers pings meanwhile
    EXPECT_FALSE(healthy->closed());
    EXPECT_TRUE(hasRow("healthy-pc"));
}

TEST_F(RelayTest, MissingHandshakeIsClosedWith1008) {
    WsClient silent(port(), "/ws/viewer");
    const auto start = std::chrono::steady_clock::now();
    EXPECT_EQ(silent.waitClose(3000), 1008);
    const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::steady_clock::now() - start)
                             .count();
    // Rule: 600 ms (handshake_timeout_ms), counted from the upgrade, which precedes `start`.
    // Lower 500: the upgrade takes far less than 100 ms, so a relay closing early (or at once)
    // fails it. Upper 2 s: room for ASan on 2 busy cores; a relay without the timeout never
    // closes (-1 after 3 s).
    EXPECT_GE(elapsed, 500);
    EXPECT_LE(elapsed, 2000);
    EXPECT_GE(counter("handshake_timeouts"), 1u);
}

TEST_F(RelayTest, SecondConnectionReplacesTheFirstWith4000) {
    auto first = connectAgent("dup-pc");
    auto second = connectAgent("dup-pc");
    EXPECT_EQ(first->waitClose(), 4000);
    // One row, still present after the old connection's clean-up.
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    auto all = rows();
    ASSERT_EQ(all.size(), 1u);
    EXPECT_EQ(all[0].clientId, "dup-pc");
    EXPECT_EQ(relay->agentCount(), 1u);
    EXPECT_GE(counter("replaced"), 1u);
    // The new connection is the live one.
    second->send("{\"type\":\"ping\",\"timestamp\":9}");
    ASSERT_TRUE(second->waitFor("pong"));
}

TEST_F(RelayTest, StaleRowsAreReapedAndInstanceRowIsKeptFresh) {
    // A row left by a dead instance long ago.
    deskstream::relay::ClientRecord stale;
    stale.clientId = "ghost";
    stale.instanceId = "dead-instance";
    stale.connectedAtMs = 1000;
    stale.lastPingMs = 1000;
    ASSERT_TRUE(store->registerClient(stale).ok());
    auto live = connectAgent("live-pc");
    EXPECT_TRUE(eventually([&] { return !hasRow("ghost"); }, 2000));
    EXPECT_TRUE(hasRow("live-pc"));
    auto lastSeen = [&]() -> int64_t {
        std::vector<deskstream::relay::InstanceRecord> inst;
        EXPECT_TRUE(store->listInstances(inst).ok());
        for (const auto& i : inst)
            if (i.instanceId == relay->instanceId()) return i.lastSeenMs;
        return -1;
    };
    EXPECT_TRUE(eventually([&] { return lastSeen() > 0; }));
    EXPECT_TRUE(eventually([&] { return counter("rows_reaped") >= 1u; }));
    // Kept fresh: last_seen moves forward with the maintenance period (reaper_interval_ms, 200
    // ms here). Bound: a later value within 2 s (ASan, 2 cores), and successive values at least
    // 150 ms apart (the period minus wall-clock jitter); a relay that wrote it once fails the first.
    const int64_t first = lastSeen();
    ASSERT_TRUE(eventually([&] { return lastSeen() > first; }, 2000))
        << "last_seen stayed " << first;
    EXPECT_GE(lastSeen() - first, 150);
}

TEST_F(RelayTest, StartUpRemovesRowsThisInstanceLeftBehind) {
    RelayOptions o = testOptions();
    o.instanceId = "fixed-instance";
    deskstream::relay::ClientRecord left;
    left.clientId = "left-behind";
    left.instanceId = "fixed-instance";
    left.connectedAtMs = left.lastPingMs = std::chrono::duration_cast<std::chrono::milliseconds>(
                                               std::chrono::system_clock::now().time_since_epoch())
                                               .count();
    ASSERT_TRUE(store->registerClient(left).ok());
    startRelay(o);
    EXPECT_FALSE(hasRow("left-behind"));
}

TEST_F(RelayTest, HttpEndpoints) {
    EXPECT_EQ(httpRequest(port(), "GET", "/healthz").status, 200);
    HttpResult ready = httpRequest(port(), "GET", "/readyz");
    EXPECT_EQ(ready.status, 200) << ready.body;
    HttpResult metrics = httpRequest(port(), "GET", "/metrics");
    EXPECT_EQ(metrics.status, 200);
    EXPECT_NE(metrics.body.find("deskstream_relay_http_requests_total "), std::string::npos);
    EXPECT_NE(metrics.body.find("deskstream_relay_agents 0"), std::string::npos);
    HttpResult missing = httpRequest(port(), "GET", "/nope");
    EXPECT_EQ(missing.status, 404);
    Json err = parseJson(missing.body);
    ASSERT_TRUE(err);
    EXPECT_EQ(str(err, "code"), "not_found");
    // Plain GET on a WebSocket path: 400, not a hang.
    EXPECT_EQ(httpRequest(port(), "GET", "/ws/agent").status, 400);
    // Commands: bad JSON, bad command, too large.
    EXPECT_EQ(httpRequest(port(), "POST", "/api/desktops/pc/commands", "{nope").status, 400);
    EXPECT_EQ(httpRequest(port(), "POST", "/api/desktops/pc/commands",
                          "{\"command\":{\"type\":\"explode\"}}")
                  .status,
              400);
    EXPECT_EQ(httpRequest(port(), "POST", "/api/desktops/bad%20id/commands",
                          "{\"command\":{\"type\":\"request_keyframe\"}}")
                  .status,
              400);
    EXPECT_EQ(
        httpRequest(port(), "POST", "/api/desktops/pc/commands", std::string(200000, ' ')).status,
        413);
    EXPECT_EQ(httpRequest(port(), "GET", "/api/desktops/pc/commands").status, 405);
}

TEST_F(RelayTest, StartRefusesWithoutAStoreInstance) {
    deskstream::relay::StoreClient broken(&plugin->store(), nullptr);
    EXPECT_FALSE(broken.valid());
    deskstream::relay::Relay r(testOptions(), broken, Poco::Logger::get("relay-test"));
    EXPECT_THROW(r.start(), std::runtime_error);
}

TEST_F(RelayTest, RefusesNonLoopbackWithoutSecret) {
    RelayOptions o = testOptions();
    o.listen = "0.0.0.0:0";
    deskstream::relay::Relay r(o, *store, Poco::Logger::get("relay-test"));
    try {
        r.start();
        FAIL() << "start() must refuse 0.0.0.0 without [auth] secret";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("secret"), std::string::npos) << e.what();
    }
}

TEST_F(RelayTest, ManyConnectionsBeyondPocosDefaultPoolAndStopClosesThemAll) {
    // Poco's default pool is 16 threads and one thread serves a WebSocket for its whole life:
    // the pool is sized from the options, so 100 viewers all get served at once.
    RelayOptions o = testOptions();
    o.httpMaxThreads = 160;
    o.maxViewers = 100;
    o.heartbeatIntervalMs = 5000;  // these clients only read when asked to
    startRelay(o);
    std::vector<std::unique_ptr<WsClient>> viewers;
    for (int i = 0; i < 100; ++i) viewers.push_back(connectViewer());
    auto agent = connectAgent("busy-pc");
    EXPECT_EQ(relay->viewerCount(), 100u);
    // max_viewers: the 101st viewer is refused at the upgrade (503), agents are not limited.
    EXPECT_THROW(WsClient(port(), "/ws/viewer"), Poco::Exception);
    for (size_t i = 0; i < viewers.size(); i += 10) {
        viewers[i]->send("{\"type\":\"ping\",\"timestamp\":" + std::to_string(i) + "}");
        ASSERT_TRUE(viewers[i]->waitFor("pong")) << "viewer " << i;
    }
    // stop() closes every connection itself (1001) and returns promptly.
    const auto start = std::chrono::steady_clock::now();
    relay->stop();
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::steady_clock::now() - start)
                          .count();
    EXPECT_LT(took, 3000);
    EXPECT_EQ(viewers[0]->waitClose(), 1001);
    EXPECT_EQ(agent->waitClose(), 1001);
    EXPECT_FALSE(hasRow("busy-pc"));
}

TEST_F(RelayTest, HttpFallbackServesWhatTheRelayHasNoRouteFor) {
    RelayOptions o = testOptions();
    o.httpFallback = [](Poco::Net::HTTPServerRequest& req, Poco::Net::HTTPServerResponse& resp) {
        if (req.getURI() != "/") return false;
        resp.setContentType("text/html");
        resp.send() << "<html>viewer</html>";
        return true;
    };
    startRelay(o);
    HttpResult page = httpRequest(port(), "GET", "/");
    EXPECT_EQ(page.status, 200);
    EXPECT_EQ(page.body, "<html>viewer</html>");
    EXPECT_EQ(httpRequest(port(), "GET", "/other").status, 404);
    EXPECT_EQ(httpRequest(port(), "GET", "/healthz").status, 200);  // relay routes come first
}
