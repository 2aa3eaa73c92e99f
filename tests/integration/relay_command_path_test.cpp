// The command path end to end over real sockets (issue 19; issue 18 point 4): reused ids, lease
// redelivery and the attempt limit, results from the wrong desktop, lost registrations, and a
// store that is down when a command arrives.
#include "relay_fixture.hpp"

#include "deskstream/core/frame_header.hpp"

#include <Poco/Logger.h>

#include <optional>
#include <thread>

using namespace ds_itest;

namespace {

std::optional<deskstream::relay::CommandRecord> stored(deskstream::relay::StoreClient& store,
                                                       const std::string& id) {
    std::optional<deskstream::relay::CommandRecord> rec;
    store.getCommand(id, rec);
    return rec;
}

std::string viewerCommand(const std::string& desktop, const std::string& id, int fps) {
    return "{\"type\":\"command\",\"desktopClientId\":\"" + desktop + "\",\"commandId\":\"" + id +
           "\",\"command\":{\"type\":\"set_config\",\"fps\":" + std::to_string(fps) + "}}";
}

// Heartbeats are not under test here: the tests read one client at a time, so a 450 ms
// heartbeat death on a loaded machine would only add noise.
RelayOptions idleTolerant(RelayOptions o) {
    o.heartbeatIntervalMs = 1000;
    o.missedLimit = 3;
    return o;
}

}  // namespace

// Issue 18 point 4: viewer A's X1 for pc1, then viewer B's X1 for other-pc.
TEST_F(RelayTest, ReusedCommandIdIsAConflictAndTheResultGoesToTheStoredOrigin) {
    startRelay(idleTolerant(testOptions()));
    auto agent = connectAgent("pc1");
    auto viewerA = connectViewer();
    auto viewerB = connectViewer();
    viewerA->send(viewerCommand("pc1", "X1", 10));
    ASSERT_TRUE(viewerA->waitFor("command_queued"));
    ASSERT_TRUE(agent->waitFor("command"));

    // Same id, another desktop: refused, nothing stored for other-pc.
    viewerB->send(viewerCommand("other-pc", "X1", 10));
    Json err = viewerB->next();
    ASSERT_TRUE(err);
    EXPECT_EQ(str(err, "type"), "error");
    EXPECT_EQ(str(err, "code"), "conflict");
    // Same id and desktop, other content: refused too.
    viewerB->send(viewerCommand("pc1", "X1", 20));
    err = viewerB->waitFor("error");
    ASSERT_TRUE(err);
    EXPECT_EQ(str(err, "code"), "conflict");
    // Over REST: 409, and the row is untouched.
    HttpResult r =
        httpRequest(port(), "POST", "/api/desktops/other-pc/commands",
                    "{\"command\":{\"type\":\"set_config\",\"fps\":10},\"commandId\":\"X1\"}");
    EXPECT_EQ(r.status, 409) << r.body;
    EXPECT_EQ(str(parseJson(r.body), "code"), "conflict");
    auto rec = stored(*store, "X1");
    ASSERT_TRUE(rec);
    EXPECT_EQ(rec->clientId, "pc1");
    EXPECT_EQ(rec->commandDataJson, "{\"type\":\"set_config\",\"fps\":10}");

    // An exact retry stays idempotent (acknowledged, not stored or delivered again)...
    viewerB->send(viewerCommand("pc1", "X1", 10));
    Json again = viewerB->waitFor("command_queued");
    ASSERT_TRUE(again);
    EXPECT_EQ(str(again, "commandId"), "X1");
    EXPECT_EQ(httpRequest(port(), "POST", "/api/desktops/pc1/commands",
                          "{\"command\":{\"type\":\"set_config\",\"fps\":10},\"commandId\":\"X1\"}")
                  .status,
              202);
    EXPECT_FALSE(agent->waitFor("command", 300));

    // ...and the result goes to the origin stored with the command: viewer A, not B.
    agent->send("{\"type\":\"command_result\",\"commandId\":\"X1\",\"status\":\"done\"}");
    Json result = viewerA->waitFor("command_result");
    ASSERT_TRUE(result);
    EXPECT_EQ(str(result, "desktopClientId"), "pc1");
    EXPECT_FALSE(viewerB->waitFor("command_result", 500));
}

// Lease redelivery to an agent that never answers, and the attempt limit (docs/protocol.md: a
// command is delivered at most 5 times).
TEST_F(RelayTest, UnansweredCommandIsRedeliveredEachLeaseAndFailsAfterFiveDeliveries) {
    RelayOptions o = idleTolerant(testOptions());
    const int64_t leaseMs = 300;
    o.commandLeaseMs = leaseMs;
    o.reaperIntervalMs = 50;  // redelivery is checked every 50 ms
    startRelay(o);
    auto agent = connectAgent("mute-pc");  // answers pings, never a command
    ASSERT_EQ(httpRequest(port(), "POST", "/api/desktops/mute-pc/commands",
                          "{\"command\":{\"type\":\"request_keyframe\"},\"commandId\":\"lease-1\"}")
                  .status,
              202);
    std::vector<std::chrono::steady_clock::time_point> arrivals;
    while (arrivals.size() < 6) {
        Json cmd = agent->waitFor("command", 3000);
        if (!cmd) break;
        EXPECT_EQ(str(cmd, "commandId"), "lease-1");
        arrivals.push_back(std::chrono::steady_clock::now());
    }
    ASSERT_EQ(arrivals.size(), 5u) << "delivered " << arrivals.size() << " times";
    for (size_t i = 1; i < arrivals.size(); ++i) {
        const auto gap =
            std::chrono::duration_cast<std::chrono::milliseconds>(arrivals[i] - arrivals[i - 1])
                .count();
        // Lower bound: never before the lease ran out (a broken lease redelivers every 50 ms
        // sweep). Upper bound: lease + a few sweeps + ASan on 2 busy cores; without redelivery
        // there would be no second arrival at all.
        EXPECT_GE(gap, leaseMs - 20) << "delivery " << i;
        EXPECT_LE(gap, leaseMs + 1500) << "delivery " << i;
    }
    ASSERT_TRUE(eventually([&] { return stored(*store, "lease-1")->status == "failed"; }, 3000));
    auto rec = stored(*store, "lease-1");
    EXPECT_EQ(rec->attempts, 6);  // the sixth claim found the limit reached and ended it
    EXPECT_EQ(rec->resultJson,
              "{\"status\":\"failed\",\"error\":\"no result after 5 deliveries\"}");
    EXPECT_FALSE(agent->waitFor("command", leaseMs * 2));
}

TEST_F(RelayTest, ResultForAnotherDesktopsExistingCommandIsRefusedAndChangesNothing) {
    startRelay(idleTolerant(testOptions()));
    auto mine = connectAgent("pc-a");
    auto theirs = connectAgent("pc-b");
    ASSERT_EQ(httpRequest(port(), "POST", "/api/desktops/pc-b/commands",
                          "{\"command\":{\"type\":\"stop_stream\"},\"commandId\":\"b-1\"}")
                  .status,
              202);
    ASSERT_TRUE(theirs->waitFor("command"));
    ASSERT_EQ(stored(*store, "b-1")->status, "delivered");

    mine->send(
        "{\"type\":\"command_result\",\"commandId\":\"b-1\",\"status\":\"failed\",\"error\":"
        "\"x\"}");
    Json err = mine->waitFor("error");
    ASSERT_TRUE(err);
    EXPECT_EQ(str(err, "code"), "not_found");
    auto rec = stored(*store, "b-1");
    EXPECT_EQ(rec->status, "delivered");
    EXPECT_TRUE(rec->resultJson.empty());
    EXPECT_EQ(counter("command_results"), 0u);

    // The owner's result is still taken.
    theirs->send("{\"type\":\"command_result\",\"commandId\":\"b-1\",\"status\":\"done\"}");
    EXPECT_TRUE(eventually([&] { return stored(*store, "b-1")->status == "done"; }));
}

TEST_F(RelayTest, RegistrationLostClosesWith4000AndTheAgentRegistersAgain) {
    RelayOptions o = testOptions();
    o.touchIntervalMs =
        100;  // the next pong after 100 ms refreshes last_ping and finds the row gone
    startRelay(o);
    auto agent = connectAgent("lost-pc");
    ASSERT_TRUE(hasRow("lost-pc"));
    const auto removed = std::chrono::steady_clock::now();
    ASSERT_TRUE(store->unregisterClient("lost-pc", "").ok());  // e.g. reaped by another instance
    // Bound: a heartbeat (150 ms) + touch interval (100 ms), 3 s under ASan; it never closes
    // when the rule is broken.
    EXPECT_EQ(agent->waitClose(3000), 4000);
    EXPECT_LT(std::chrono::steady_clock::now() - removed, std::chrono::seconds(3));
    agent.reset();
    auto back = connectAgent("lost-pc");  // handshake_ack checked
    EXPECT_TRUE(eventually([&] { return hasRow("lost-pc"); }));
    EXPECT_EQ(rows().at(0).instanceId, relay->instanceId());
}

TEST_F(RelayTest, CommandsWhileTheStoreIsDownAreRefusedAndNothingIsAcknowledged) {
    SwitchableStore& outage = startRelayWithSwitchableStore(idleTolerant(testOptions()));
    auto viewer = connectViewer();
    auto agent = connectAgent("down-pc");
    ASSERT_EQ(httpRequest(port(), "GET", "/readyz").status, 200);

    outage.setDown(true);
    EXPECT_EQ(httpRequest(port(), "GET", "/readyz").status, 503);
    HttpResult r =
        httpRequest(port(), "POST", "/api/desktops/down-pc/commands",
                    "{\"command\":{\"type\":\"request_keyframe\"},\"commandId\":\"down-1\"}");
    EXPECT_EQ(r.status, 503) << r.body;
    EXPECT_EQ(str(parseJson(r.body), "code"), "internal");
    viewer->send(viewerCommand("down-pc", "down-2", 5));
    // The viewer also heard desktop_connected for down-pc (relay_notice_test.cpp): the answer
    // to its command is the error that follows.
    Json answer = viewer->waitFor("error");
    ASSERT_TRUE(answer);
    EXPECT_EQ(str(answer, "code"), "internal");
    EXPECT_FALSE(viewer->waitFor("command_queued", 300));
    EXPECT_FALSE(agent->waitFor("command", 300));  // nothing was delivered unstored
    EXPECT_EQ(counter("commands_queued"), 0u);

    outage.setDown(false);
    EXPECT_FALSE(stored(*store, "down-1"));
    EXPECT_FALSE(stored(*store, "down-2"));
    EXPECT_TRUE(eventually([&] { return httpRequest(port(), "GET", "/readyz").status == 200; }));
    // The viewer's connection survived (store trouble is not its fault) and works again.
    viewer->send(viewerCommand("down-pc", "down-2", 5));
    EXPECT_TRUE(viewer->waitFor("command_queued"));
    EXPECT_TRUE(agent->waitFor("command"));
}

TEST_F(RelayTest, WatchingViewersHearDesktopDisconnectedButNotOnAReplacement) {
    startRelay(idleTolerant(testOptions()));
    auto viewer = connectViewer();
    auto first = connectAgent("swap-pc");
    viewer->send("{\"type\":\"subscribe\",\"desktopClientId\":\"swap-pc\"}");
    Json sub = viewer->waitFor("subscribed");
    ASSERT_TRUE(sub);
    const int firstStream = sub->getValue<int>("streamId");

    // A replacement (same clientId, new connection): the old one closes 4000, no notice.
    auto second = connectAgent("swap-pc");
    EXPECT_EQ(first->waitClose(3000), 4000);
    EXPECT_FALSE(viewer->waitFor("desktop_disconnected", 500));
    // The new agent's frames keep flowing to the viewer under its new stream.
    deskstream::core::FrameHeader h;
    h.codec = deskstream::core::FrameCodec::Jpeg;
    h.flags = deskstream::core::frame_flags::kKey;
    h.frameNumber = 1;
    h.monitor = 0;
    h.quality = 80;
    h.screenWidth = h.rectWidth = 64;
    h.screenHeight = h.rectHeight = 64;
    std::vector<uint8_t> payload(100, 1);
    second->sendBinary(deskstream::core::buildFrame(h, payload.data(), payload.size()));
    std::string got = viewer->waitBinary(3000);
    ASSERT_GE(got.size(), 64u);
    const uint32_t newStream =
        deskstream::core::peekStreamId(reinterpret_cast<const uint8_t*>(got.data()));
    EXPECT_NE(newStream, static_cast<uint32_t>(firstStream));

    // The desktop really leaving: the watching viewer is told.
    second.reset();  // closes the connection
    Json gone = viewer->waitFor("desktop_disconnected", 3000);
    ASSERT_TRUE(gone);
    EXPECT_EQ(str(gone, "desktopClientId"), "swap-pc");
}
