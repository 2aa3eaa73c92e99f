// Concurrency across two relay instances on one PostgreSQL schema (issue 17): 200 commands
// posted at once through both instances for 5 agents spread over both (all delivered, each
// delivered once, in order per desktop), and one clientId connecting to both instances at once
// (one registration survives, the other connection is closed 4000).
#include "fault_harness.hpp"

#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/WebSocket.h>

#include <gtest/gtest.h>

#include <csignal>
#include <cstdlib>
#include <map>
#include <optional>
#include <sstream>

using namespace ds_faults;
using namespace std::chrono_literals;

namespace {

struct TwoInstances {
    std::string schema = "dsf_cc_" + std::to_string(::getpid());
    uint16_t ports[2] = {freePort(), freePort()};
    std::optional<Process> relays[2];

    TwoInstances() {
        const char* pg = std::getenv("DESKSTREAM_TEST_PG");
        if (!pg)
            throw std::runtime_error(
                "DESKSTREAM_TEST_PG is not set: start PostgreSQL with scripts/test.sh");
        // Both start at the same moment against an empty schema: both must migrate safely.
        for (int i = 0; i < 2; ++i) {
            std::vector<std::string> args = baseArgs(tempDir("cc-relay" + std::to_string(i)));
            std::string url = "127.0.0.1:" + std::to_string(ports[i]);
            args.insert(
                args.end(),
                {"--role", "relay", "--set", "relay.listen=" + url, "--set",
                 "relay.public_url=http://" + url, "--set",
                 "relay.instance_id=dsf-cc-" + std::to_string(i), "--set", "relay.store=postgres",
                 "--set", "store.postgres.connection=" + std::string(pg), "--set",
                 "store.postgres.schema=" + schema, "--set", "heartbeat.interval_ms=500"});
            relays[i].emplace(args);
        }
        for (int i = 0; i < 2; ++i)
            if (!waitHealthy("127.0.0.1", ports[i], 30000))
                throw std::runtime_error("relay " + std::to_string(i) +
                                         " did not start: " + relays[i]->err());
    }
    ~TwoInstances() {
        for (auto& r : relays) {
            r->signal(SIGTERM);
            r->wait(15s);
        }
        try {
            psql("DROP SCHEMA IF EXISTS " + schema + " CASCADE");
        } catch (...) {}
    }
};

void postTwoHundredCommands(bool checkOrder);

TEST(Concurrency, TwoHundredCommandsThroughTwoInstancesAreAllDeliveredOnce) {
    postTwoHundredCommands(false);
}

// PRODUCT FINDING (host/relay, reported to the lead, not fixed here): commands for one desktop
// are not delivered in the order they were stored when they come through both instances. The
// holder delivers its own posts at once, while a command stored a few ms earlier through the
// other instance waits for the notification: measured 13 of 200 delivered after a later one
// (overtaken by up to ~250 ms). Enable when per-desktop order is defined and kept.
TEST(Concurrency, DISABLED_TwoHundredCommandsThroughTwoInstancesAreDeliveredInOrder) {
    postTwoHundredCommands(true);
}

void postTwoHundredCommands(bool checkOrder) {
    TwoInstances two;
    constexpr int kAgents = 5, kCommands = 200, kThreads = 8;
    std::vector<std::unique_ptr<Process>> agents;
    auto id = [](int i) { return "cc-pc-" + std::to_string(i); };
    for (int i = 0; i < kAgents; ++i) {  // 3 on instance 0, 2 on instance 1
        std::vector<std::string> args = baseArgs(tempDir("cc-agent" + std::to_string(i)));
        args.insert(
            args.end(),
            {"--role", "agent", "--set",
             "agent.relay_url=ws://127.0.0.1:" + std::to_string(two.ports[i % 2]) + "/ws/agent",
             "--set", "agent.client_id=" + id(i), "--set", "agent.token=" + mint(true, id(i))});
        agents.push_back(std::make_unique<Process>(args));
    }
    for (int i = 0; i < kAgents; ++i)
        ASSERT_TRUE(
            eventually([&] { return desktop("127.0.0.1", two.ports[0], id(i)) != nullptr; }, 30000))
            << agents[static_cast<size_t>(i)]->err();

    std::mutex m;
    std::vector<std::string> accepted;
    std::vector<std::string> errors;
    auto t0 = Clock::now();
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t)
        threads.emplace_back([&, t] {
            for (int k = t; k < kCommands; k += kThreads) {
                // Posted to the instance that does NOT hold the desktop half of the time.
                auto r =
                    httpPost("127.0.0.1", two.ports[(k / kAgents) % 2],
                             "/api/desktops/" + id(k % kAgents) + "/commands",
                             "{\"command\":{\"type\":\"request_keyframe\"},\"commandId\":\"cc-" +
                                 std::to_string(k) + "\"}");
                std::lock_guard<std::mutex> lock(m);
                if (r.first == 202)
                    accepted.push_back("cc-" + std::to_string(k));
                else
                    errors.push_back(std::to_string(r.first) + " " + r.second);
            }
        });
    for (auto& th : threads) th.join();
    long postMs = msSince(t0);
    ASSERT_EQ(accepted.size(), static_cast<size_t>(kCommands)) << (errors.empty() ? "" : errors[0]);

    auto count = [&](const std::string& where) {
        return std::atoi(
            psql("SELECT count(*) FROM " + two.schema + ".desktop_commands WHERE " + where)
                .c_str());
    };
    bool allDone = eventually(
        [&] { return count("id LIKE 'cc-%' AND status = 'done'") == kCommands; }, 60000, 250);
    long doneMs = msSince(t0);
    EXPECT_TRUE(allDone) << count("id LIKE 'cc-%' AND status = 'done'") << " of " << kCommands
                         << " done";
    EXPECT_EQ(count("id LIKE 'cc-%'"), kCommands) << "a command was stored twice or lost";
    EXPECT_EQ(count("id LIKE 'cc-%' AND attempts > 1"), 0)
        << "a command was delivered more than once";
    // In order per desktop: delivery times follow creation times.
    std::string rows =
        psql("SELECT desktop_client_id, created_at, delivered_at FROM " + two.schema +
             ".desktop_commands WHERE id LIKE 'cc-%' ORDER BY desktop_client_id, created_at, "
             "delivered_at");
    std::istringstream in(rows);
    std::string line;
    std::map<std::string, long long> lastDelivered;
    int outOfOrder = 0;
    while (std::getline(in, line)) {
        auto a = line.find('|'), b = line.rfind('|');
        if (a == std::string::npos || b == a) continue;
        std::string desk = line.substr(0, a);
        long long delivered = std::atoll(line.c_str() + b + 1);
        if (lastDelivered.count(desk) && delivered < lastDelivered[desk]) ++outOfOrder;
        lastDelivered[desk] = delivered;
    }
    if (checkOrder) {
        EXPECT_EQ(outOfOrder, 0) << rows.substr(0, 3000);
    }
    printf(
        "concurrency: %d commands posted by %d threads through 2 instances in %ld ms, all done "
        "after %ld ms, "
        "redelivered %d, out of order %d\n",
        kCommands, kThreads, postMs, doneMs, count("id LIKE 'cc-%' AND attempts > 1"), outOfOrder);
}

// A raw agent connection that answers pings and records how it was closed.
class RawAgent {
public:
    RawAgent(uint16_t port, const std::string& clientId) : clientId_(clientId) {
        thread_ = std::thread([this, port] { run(port); });
    }
    ~RawAgent() {
        stop_ = true;
        thread_.join();
    }
    std::atomic<bool> acked{false}, closed{false};
    std::atomic<int> closeCode{0};
    std::string closeReason() {
        std::lock_guard<std::mutex> lock(m_);
        return reason_;
    }

private:
    void run(uint16_t port) {
        using Poco::Net::WebSocket;
        try {
            Poco::Net::HTTPClientSession s("127.0.0.1", port);
            Poco::Net::HTTPRequest req(Poco::Net::HTTPRequest::HTTP_GET, "/ws/agent",
                                       Poco::Net::HTTPMessage::HTTP_1_1);
            Poco::Net::HTTPResponse resp;
            WebSocket ws(s, req, resp);
            ws.setReceiveTimeout(Poco::Timespan(10, 0));
            std::string hs =
                "{\"type\":\"handshake\",\"protocol\":1,\"role\":\"desktop\",\"clientId\":\"" +
                clientId_ + "\",\"token\":\"" + mint(true, clientId_) +
                "\",\"monitors\":[{\"index\":0,\"width\":64,\"height\":48}]}";
            ws.sendFrame(hs.data(), static_cast<int>(hs.size()));
            Poco::Buffer<char> buf(0);
            while (!stop_) {
                if (!ws.poll(Poco::Timespan(0, 20000), Poco::Net::Socket::SELECT_READ)) continue;
                int flags = 0;
                buf.resize(0);
                int n = ws.receiveFrame(buf, flags);
                int op = flags & WebSocket::FRAME_OP_BITMASK;
                if (op == WebSocket::FRAME_OP_CLOSE || (n == 0 && flags == 0)) {
                    closeCode = n >= 2 ? (static_cast<unsigned char>(buf.begin()[0]) << 8) |
                                             static_cast<unsigned char>(buf.begin()[1])
                                       : 1006;
                    std::lock_guard<std::mutex> lock(m_);
                    if (n > 2) reason_.assign(buf.begin() + 2, static_cast<size_t>(n - 2));
                    break;
                }
                Json j = parse(std::string(buf.begin(), buf.size()));
                std::string type = j ? j->optValue<std::string>("type", "") : "";
                if (type == "handshake_ack") acked = true;
                if (type == "ping") {
                    std::string pong = "{\"type\":\"pong\",\"timestamp\":" +
                                       std::to_string(j->optValue<int64_t>("timestamp", 0)) + "}";
                    ws.sendFrame(pong.data(), static_cast<int>(pong.size()));
                }
            }
        } catch (...) {}
        closed = true;
    }
    std::string clientId_;
    std::thread thread_;
    std::atomic<bool> stop_{false};
    std::mutex m_;
    std::string reason_;
};

TEST(Concurrency, SameClientIdOnTwoInstancesEndsWithOneRegistration) {
    TwoInstances two;
    RawAgent a(two.ports[0], "twin-pc"), b(two.ports[1], "twin-pc");
    ASSERT_TRUE(eventually([&] { return (a.acked || a.closed) && (b.acked || b.closed); }, 10000));
    // The loser is told within the touch interval (max(interval, ttl / 4) = 15 s by default).
    bool settled = eventually([&] { return a.closed != b.closed; }, 30000, 100);
    EXPECT_TRUE(settled) << "both connections " << (a.closed ? "closed" : "open");
    RawAgent& loser = a.closed ? a : b;
    RawAgent& winner = a.closed ? b : a;
    EXPECT_EQ(loser.closeCode, 4000) << loser.closeReason();
    EXPECT_FALSE(winner.closed);
    int rows = std::atoi(psql("SELECT count(*) FROM " + two.schema +
                              ".active_desktop_clients WHERE client_id = 'twin-pc'")
                             .c_str());
    EXPECT_EQ(rows, 1);
    std::string holder = psql("SELECT instance_id FROM " + two.schema +
                              ".active_desktop_clients WHERE client_id = 'twin-pc'");
    EXPECT_NE(holder.find(&a == &winner ? "dsf-cc-0" : "dsf-cc-1"), std::string::npos)
        << "the row names " << holder << " but the open connection is on the other instance";
    printf("same clientId on two instances: the loser was closed %d '%s'; one row, held by %s",
           loser.closeCode.load(), loser.closeReason().c_str(), holder.c_str());
}

}  // namespace
