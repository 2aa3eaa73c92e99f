// The relay's /metrics over real sockets with the real SQLite store: promtool accepts the
// exposition, and the failure series move when the failure really happens (a locked store, a
// viewer that stops answering, an invalid frame header). The too_large drop reason is not
// reached over the wire today: the WebSocket layer closes an oversized message with 1009 before
// its header is read. The streaming scrape (frames, delivery latency) is in streaming_test.cpp.
#include "relay_fixture.hpp"

#include "deskstream/core/auth.hpp"
#include "deskstream/core/frame_header.hpp"

#include <sqlite3.h>

using namespace ds_itest;
using deskstream::core::Role;

namespace {

std::string scrape(uint16_t port) {
    HttpResult r = httpRequest(port, "GET", "/metrics");
    EXPECT_EQ(r.status, 200);
    return r.body;
}

}  // namespace

TEST_F(RelayTest, MetricsPassPromtoolWithNoLintWarnings) {
    auto agent = connectAgent("lint-pc");
    auto viewer = connectViewer();
    const std::string text = scrape(port());
    std::string out;
    EXPECT_EQ(promtoolCheckMetrics(text, out), 0) << out << "\n" << text;
    EXPECT_EQ(out, "") << "promtool printed lint findings:\n" << out;
    // Families the operator's guide documents are all there, with HELP and TYPE.
    for (const char* family :
         {"deskstream_relay_connections_opened_total", "deskstream_relay_connections",
          "deskstream_relay_connection_duration_seconds",
          "deskstream_relay_registration_attempts_total",
          "deskstream_relay_heartbeat_timeouts_total", "deskstream_relay_frames_received_total",
          "deskstream_relay_frames_forwarded_total", "deskstream_relay_frames_dropped_total",
          "deskstream_relay_frame_delivery_latency_seconds", "deskstream_relay_commands_total",
          "deskstream_relay_store_operation_duration_seconds",
          "deskstream_relay_store_errors_total", "deskstream_relay_reaper_runs_total",
          "deskstream_relay_reaped_rows_total", "process_resident_memory_bytes", "process_open_fds",
          "process_threads", "deskstream_build_info"}) {
        EXPECT_NE(text.find(std::string("# HELP ") + family + " "), std::string::npos) << family;
        EXPECT_NE(text.find(std::string("# TYPE ") + family + " "), std::string::npos) << family;
    }
    EXPECT_EQ(metricValue(text, "deskstream_relay_connections{role=\"agent\"}"), 1);
    EXPECT_EQ(metricValue(text, "deskstream_relay_connections{role=\"viewer\"}"), 1);
    EXPECT_EQ(metricValue(text, "deskstream_relay_registration_attempts_total{result=\"ok\"}"), 1);
    EXPECT_EQ(
        metricValue(
            text, "deskstream_relay_connections_opened_total{role=\"agent\",outcome=\"accepted\"}"),
        1);
    EXPECT_GT(metricValue(text, "process_resident_memory_bytes"), 1e6);
    EXPECT_GT(metricValue(text, "process_open_fds"), 3);
    EXPECT_GT(metricValue(text, "process_threads"), 2);
    // The registration's store write was timed.
    EXPECT_GE(metricValue(text,
                          "deskstream_relay_store_operation_duration_seconds_count{operation="
                          "\"register_client\"}"),
              1);

    // A closed connection leaves the gauge and lands in the duration histogram.
    agent.reset();
    EXPECT_TRUE(eventually([&] {
        return metricValue(scrape(port()), "deskstream_relay_connections{role=\"agent\"}") == 0;
    }));
    EXPECT_EQ(metricValue(scrape(port()),
                          "deskstream_relay_connection_duration_seconds_count{role=\"agent\"}"),
              1);
}

TEST_F(RelayTest, ForcedStoreFailureMovesTheRegistrationFailureSeries) {
    const std::string failed =
        "deskstream_relay_registration_attempts_total{result=\"store_unavailable\"}";
    const std::string errors = "deskstream_relay_store_errors_total{operation=\"register_client\"}";
    EXPECT_EQ(metricValue(scrape(port()), failed), 0);
    EXPECT_EQ(metricValue(scrape(port()), errors), 0);
    // A genuine SQLite failure: another connection holds the write lock past busy_timeout.
    sqlite3* locker = nullptr;
    ASSERT_EQ(sqlite3_open(dbPath.c_str(), &locker), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(locker, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
    WsClient agent(port(), "/ws/agent");
    agent.send(agentHandshake("locked-pc"));
    ASSERT_TRUE(agent.waitFor("registration_failed", 3000));
    ASSERT_EQ(sqlite3_exec(locker, "ROLLBACK", nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(locker);
    // registration_failed goes out while the failure is being counted: wait for the count.
    EXPECT_TRUE(eventually([&] { return metricValue(scrape(port()), failed) == 1; }));
    const std::string text = scrape(port());
    EXPECT_EQ(metricValue(text, failed), 1) << text;
    EXPECT_EQ(metricValue(text, errors), 1) << text;
    EXPECT_EQ(metricValue(text, "deskstream_relay_registration_attempts_total{result=\"ok\"}"), 0);

    // A refused handshake (bad request) is told apart from the store's failure.
    WsClient bad(port(), "/ws/agent");
    bad.send("{\"type\":\"ping\",\"timestamp\":1}");
    EXPECT_EQ(bad.waitClose(), 1008);
    EXPECT_TRUE(eventually([&] {
        return metricValue(
                   scrape(port()),
                   "deskstream_relay_registration_attempts_total{result=\"bad_request\"}") == 1;
    }));
    EXPECT_EQ(metricValue(scrape(port()), failed), 1);
}

TEST_F(RelayTest, ViewerThatStopsAnsweringMovesTheHeartbeatTimeoutSeries) {
    const std::string series = "deskstream_relay_heartbeat_timeouts_total{role=\"viewer\"}";
    EXPECT_EQ(metricValue(scrape(port()), series), 0);
    WsClient viewer(port(), "/ws/viewer", /*autoPong=*/false);
    viewer.send(viewerHandshake());
    ASSERT_TRUE(viewer.waitFor("handshake_ack"));
    // interval 150 ms x (missed_limit 2 + 1): closed with 4008 after ~450 ms.
    EXPECT_EQ(viewer.waitClose(3000), 4008);
    EXPECT_TRUE(eventually([&] { return metricValue(scrape(port()), series) == 1; }));
    EXPECT_EQ(
        metricValue(scrape(port()), "deskstream_relay_heartbeat_timeouts_total{role=\"agent\"}"),
        0);
}

TEST_F(RelayTest, InvalidFramesAreCountedAsDropsByReason) {
    auto agent = connectAgent("bad-frames-pc");
    agent->sendBinary({1, 2, 3});  // shorter than a frame header
    EXPECT_TRUE(eventually([&] {
        return metricValue(scrape(port()),
                           "deskstream_relay_frames_dropped_total{reason=\"invalid\"}") == 1;
    }));
    EXPECT_EQ(metricValue(scrape(port()), "deskstream_relay_frames_received_total"), 1);
    EXPECT_EQ(
        metricValue(scrape(port()), "deskstream_relay_frames_dropped_total{reason=\"too_large\"}"),
        0);
}

// The registration series is labelled by the cause of a refusal: a refused token is
// unauthorized (neither bad_request nor store_unavailable), and a valid token then counts as ok.
TEST_F(RelayTest, RefusedTokenMovesTheUnauthorizedRegistrationSeries) {
    const std::string secret = "metrics-test-secret-0123456789";
    RelayOptions o = testOptions();
    o.authSecret = secret;
    startRelay(o);
    const std::string series = "deskstream_relay_registration_attempts_total{result=";
    WsClient refused(port(), "/ws/agent");
    refused.send(agentHandshake("unauth-pc", "not.a.jwt"));
    ASSERT_TRUE(refused.waitFor("registration_failed"));
    EXPECT_EQ(refused.waitClose(), 1008);
    EXPECT_TRUE(
        eventually([&] { return metricValue(scrape(port()), series + "\"unauthorized\"}") == 1; }));
    std::string text = scrape(port());
    EXPECT_EQ(metricValue(text, series + "\"unauthorized\"}"), 1) << text;
    EXPECT_EQ(metricValue(text, series + "\"bad_request\"}"), 0) << text;
    EXPECT_EQ(metricValue(text, series + "\"store_unavailable\"}"), 0) << text;
    EXPECT_EQ(metricValue(text, series + "\"ok\"}"), 0) << text;

    const auto nowMs = std::chrono::duration_cast<std::chrono::milliseconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count();
    auto agent =
        connectAgent("unauth-pc", deskstream::core::mintToken(secret, Role::Desktop, "unauth-pc",
                                                              std::chrono::seconds(60), nowMs));
    // The handshake_ack goes out while the registration is being counted: wait for the count.
    EXPECT_TRUE(eventually([&] { return metricValue(scrape(port()), series + "\"ok\"}") == 1; }));
    text = scrape(port());
    EXPECT_EQ(metricValue(text, series + "\"ok\"}"), 1) << text;
    EXPECT_EQ(metricValue(text, series + "\"unauthorized\"}"), 1) << text;
}

// A command's final status is counted once, by its type, when the agent's result is stored.
TEST_F(RelayTest, CommandResultsAreCountedByTypeAndStatus) {
    auto agent = connectAgent("cmd-metrics-pc");
    const std::string done =
        "deskstream_relay_commands_total{type=\"request_keyframe\",status=\"done\"}";
    const std::string failed =
        "deskstream_relay_commands_total{type=\"request_keyframe\",status=\"failed\"}";
    EXPECT_LE(metricValue(scrape(port()), failed), 0);  // absent (-1) until the first one
    HttpResult r =
        httpRequest(port(), "POST", "/api/desktops/cmd-metrics-pc/commands",
                    "{\"commandId\":\"m-1\",\"command\":{\"type\":\"request_keyframe\"}}");
    ASSERT_EQ(r.status, 202) << r.body;
    Json cmd = agent->waitFor("command");
    ASSERT_TRUE(cmd);
    EXPECT_EQ(str(cmd, "commandId"), "m-1");
    agent->send(
        "{\"type\":\"command_result\",\"commandId\":\"m-1\",\"status\":\"failed\",\"error\":"
        "\"no\"}");
    EXPECT_TRUE(eventually([&] { return metricValue(scrape(port()), failed) == 1; }));
    EXPECT_LE(metricValue(scrape(port()), done), 0);
}
