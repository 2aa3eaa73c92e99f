// The relay's HTTP surface (issue 18 points 6, 7, 8 and issue 19's GET of a command), over real
// sockets against the real relay and SQLite store.
#include "relay_fixture.hpp"

#include "deskstream/core/auth.hpp"

#include <Poco/AutoPtr.h>
#include <Poco/Channel.h>
#include <Poco/Logger.h>
#include <Poco/Message.h>

#include <mutex>
#include <thread>

using namespace ds_itest;
using deskstream::core::Role;

namespace {

const std::string kSecret = "http-api-test-secret-0123456789abcdef";

std::string token(Role role) {
    const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
    return deskstream::core::mintToken(kSecret, role, "tester", std::chrono::seconds(60), now);
}

std::string statusLine(const std::string& response) {
    return response.substr(0, response.find("\r\n"));
}

// Collects every line the relay logs while installed on its logger.
class CapturingChannel : public Poco::Channel {
public:
    void log(const Poco::Message& msg) override {
        std::lock_guard<std::mutex> lock(mutex_);
        lines_.push_back(msg.getText());
    }
    std::vector<std::string> lines() {
        std::lock_guard<std::mutex> lock(mutex_);
        return lines_;
    }

private:
    std::mutex mutex_;
    std::vector<std::string> lines_;
};

class LogCapture {
public:
    LogCapture() : logger_(Poco::Logger::get("relay-test")), previous_(logger_.getChannel()) {
        channel_ = new CapturingChannel;
        logger_.setChannel(channel_);
    }
    ~LogCapture() { logger_.setChannel(previous_); }
    std::vector<std::string> lines() { return channel_->lines(); }

private:
    Poco::Logger& logger_;
    Poco::AutoPtr<Poco::Channel> previous_;
    Poco::AutoPtr<CapturingChannel> channel_;
};

std::string get(uint16_t port, const std::string& target) {
    return rawHttp(port,
                   "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
}

}  // namespace

TEST_F(RelayTest, StatusLinesCarryTheReasonPhraseOfTheirCode) {
    EXPECT_EQ(statusLine(get(port(), "/healthz")), "HTTP/1.1 200 OK");
    EXPECT_EQ(statusLine(get(port(), "/no/such/route")), "HTTP/1.1 404 Not Found");
    EXPECT_EQ(statusLine(get(port(), "/%zz")), "HTTP/1.1 400 Bad Request");
    EXPECT_EQ(statusLine(rawHttp(port(),
                                 "PUT /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
                                 "Connection: close\r\n\r\n")),
              "HTTP/1.1 405 Method Not Allowed");
    EXPECT_EQ(statusLine(rawHttp(port(),
                                 "POST /api/desktops/pc/commands HTTP/1.1\r\nHost: x\r\n"
                                 "Content-Type: text/plain\r\nContent-Length: 2\r\n"
                                 "Connection: close\r\n\r\n{}")),
              "HTTP/1.1 415 Unsupported Media Type");
}

TEST_F(RelayTest, MalformedUrisGet400AndTheirFloodIsOneLogLineWithACountAndNoQuery) {
    LogCapture capture;
    const auto first = std::chrono::steady_clock::now();
    const int requests = 300;  // modest: the machine is shared (the probe used 3,000)
    for (int i = 0; i < requests; ++i) {
        const std::string target = i % 2 ? "/%zz?token=SECRET-TOKEN" : "/%?token=SECRET-TOKEN";
        ASSERT_EQ(statusLine(get(port(), target)), "HTTP/1.1 400 Bad Request") << i;
    }
    // Bound: all 300 within the limiter's 10 s window give exactly one line. Were each logged,
    // there would be 300.
    ASSERT_LT(std::chrono::steady_clock::now() - first, std::chrono::seconds(10))
        << "too slow to test the window";
    auto lines = capture.lines();
    ASSERT_EQ(lines.size(), 1u);
    // After the window the next one is logged with the count of those suppressed meanwhile.
    std::this_thread::sleep_until(first + std::chrono::milliseconds(10100));
    ASSERT_EQ(statusLine(get(port(), "/%zz?token=SECRET-TOKEN")), "HTTP/1.1 400 Bad Request");
    lines = capture.lines();
    ASSERT_EQ(lines.size(), 2u);
    EXPECT_NE(lines[1].find("(and " + std::to_string(requests - 1) + " more like it)"),
              std::string::npos)
        << lines[1];
    for (const auto& l : lines) {
        EXPECT_EQ(l.find("SECRET-TOKEN"), std::string::npos) << l;
        EXPECT_EQ(l.find('?'), std::string::npos) << l;
    }
    EXPECT_EQ(statusLine(get(port(), "/healthz")), "HTTP/1.1 200 OK");  // still serving
}

TEST_F(RelayTest, EveryApiEndpointNeedsABearerTokenOnceASecretIsSet) {
    RelayOptions o = testOptions();
    o.authSecret = kSecret;
    startRelay(o);
    const std::string viewerAuth = "Bearer " + token(Role::Viewer);
    const std::vector<std::pair<std::string, std::string>> json = {
        {"Content-Type", "application/json"}};
    const std::string body =
        "{\"command\":{\"type\":\"request_keyframe\"},\"commandId\":\"auth-1\"}";

    // Without a token, or with it only in the query string, or with a desktop's token: 401.
    EXPECT_EQ(httpRequest(port(), "GET", "/api/desktops").status, 401);
    EXPECT_EQ(httpRequest(port(), "GET", "/api/desktops?token=" + token(Role::Viewer)).status, 401);
    EXPECT_EQ(httpRequest(port(), "GET", "/api/desktops",
                          {{"Authorization", "Bearer " + token(Role::Desktop)}}, "")
                  .status,
              401);
    EXPECT_EQ(
        httpRequest(port(), "GET", "/api/desktops", {{"Authorization", "Bearer not.a.token"}}, "")
            .status,
        401);
    EXPECT_EQ(httpRequest(port(), "POST", "/api/desktops/pc/commands", json, body).status, 401);
    EXPECT_EQ(httpRequest(port(), "GET", "/api/desktops/pc/commands/auth-1").status, 401);
    EXPECT_EQ(httpRequest(port(), "GET", "/api/nothing").status, 401);  // unknown /api paths too
    std::optional<deskstream::relay::CommandRecord> rec;
    store->getCommand("auth-1", rec);
    EXPECT_FALSE(rec) << "a refused POST stored its command";

    // With the viewer token every endpoint answers; probes stay open.
    EXPECT_EQ(
        httpRequest(port(), "GET", "/api/desktops", {{"Authorization", viewerAuth}}, "").status,
        200);
    auto withAuth = json;
    withAuth.emplace_back("Authorization", viewerAuth);
    EXPECT_EQ(httpRequest(port(), "POST", "/api/desktops/pc/commands", withAuth, body).status, 202);
    EXPECT_EQ(httpRequest(port(), "GET", "/api/desktops/pc/commands/auth-1",
                          {{"Authorization", viewerAuth}}, "")
                  .status,
              200);
    EXPECT_EQ(httpRequest(port(), "GET", "/healthz").status, 200);
    EXPECT_EQ(httpRequest(port(), "GET", "/readyz").status, 200);
    EXPECT_EQ(httpRequest(port(), "GET", "/metrics").status, 200);
}

TEST_F(RelayTest, CrossSiteSimplePostIsRefusedWith403AndStoresNothing) {
    const uint64_t queuedBefore = counter("commands_queued");
    auto post = [&](const std::vector<std::pair<std::string, std::string>>& headers,
                    const std::string& id) {
        return httpRequest(port(), "POST", "/api/desktops/pc/commands", headers,
                           "{\"command\":{\"type\":\"input\",\"event\":\"key_down\",\"key\":\"a\"},"
                           "\"commandId\":\"" +
                               id + "\"}");
    };
    auto storedCommand = [&](const std::string& id) {
        std::optional<deskstream::relay::CommandRecord> rec;
        store->getCommand(id, rec);
        return rec.has_value();
    };
    // The request a hostile page's form or fetch() sends without a preflight.
    HttpResult r =
        post({{"Origin", "http://evil.example"}, {"Content-Type", "text/plain"}}, "csrf-1");
    EXPECT_EQ(r.status, 403) << r.body;
    EXPECT_EQ(str(parseJson(r.body), "message"), "origin not allowed");
    EXPECT_FALSE(storedCommand("csrf-1"));
    // A foreign Origin is refused whatever the type; without an Origin the type must be JSON.
    EXPECT_EQ(
        post({{"Origin", "http://evil.example"}, {"Content-Type", "application/json"}}, "csrf-2")
            .status,
        403);
    EXPECT_EQ(post({{"Content-Type", "text/plain"}}, "csrf-3").status, 415);
    EXPECT_EQ(post({}, "csrf-4").status, 415);
    EXPECT_EQ(post({{"Content-Type", "application/x-www-form-urlencoded"}}, "csrf-5").status, 415);
    for (const char* id : {"csrf-2", "csrf-3", "csrf-4", "csrf-5"})
        EXPECT_FALSE(storedCommand(id)) << id;
    EXPECT_EQ(counter("commands_queued"), queuedBefore);

    // Accepted: no Origin (curl, scripts) and the relay's own origin, with application/json.
    EXPECT_EQ(post({{"Content-Type", "application/json; charset=utf-8"}}, "ok-1").status, 202);
    EXPECT_EQ(post({{"Origin", "http://127.0.0.1:" + std::to_string(port())},
                    {"Content-Type", "application/json"}},
                   "ok-2")
                  .status,
              202);
    EXPECT_TRUE(storedCommand("ok-1"));
    EXPECT_TRUE(storedCommand("ok-2"));

    // allowed_origins widens same-origin (docs/security.md): those, and still the relay's own.
    RelayOptions o = testOptions();
    o.allowedOrigins = {"https://console.example"};
    startRelay(o);
    EXPECT_EQ(
        post({{"Origin", "https://console.example"}, {"Content-Type", "application/json"}}, "ok-3")
            .status,
        202);
    EXPECT_EQ(post({{"Origin", "http://127.0.0.1:" + std::to_string(port())},
                    {"Content-Type", "application/json"}},
                   "ok-4")
                  .status,
              202);
    EXPECT_EQ(
        post({{"Origin", "https://other.example"}, {"Content-Type", "application/json"}}, "csrf-6")
            .status,
        403);
    EXPECT_FALSE(storedCommand("csrf-6"));
}

TEST_F(RelayTest, CommandStatusAttemptsTimesAndResultCanBeReadBack) {
    RelayOptions o = testOptions();
    o.heartbeatIntervalMs = 1000;  // the agent idles while the test reads over HTTP
    startRelay(o);
    const std::string body =
        "{\"command\":{\"type\":\"set_config\",\"fps\":12},\"commandId\":\"read-1\"}";
    ASSERT_EQ(httpRequest(port(), "POST", "/api/desktops/read-pc/commands", body).status, 202);
    HttpResult r = httpRequest(port(), "GET", "/api/desktops/read-pc/commands/read-1");
    ASSERT_EQ(r.status, 200) << r.body;
    Json j = parseJson(r.body);
    ASSERT_TRUE(j);
    EXPECT_EQ(str(j, "commandId"), "read-1");
    EXPECT_EQ(str(j, "desktopClientId"), "read-pc");
    EXPECT_EQ(str(j, "status"), "pending");
    EXPECT_EQ(j->getValue<int>("attempts"), 0);
    EXPECT_EQ(j->getObject("command")->getValue<int>("fps"), 12);
    EXPECT_GT(j->getValue<int64_t>("createdAt"), 0);
    EXPECT_TRUE(j->isNull("deliveredAt"));
    EXPECT_TRUE(j->isNull("result"));

    auto agent = connectAgent("read-pc");
    ASSERT_TRUE(agent->waitFor("command"));
    j = parseJson(httpRequest(port(), "GET", "/api/desktops/read-pc/commands/read-1").body);
    ASSERT_TRUE(j);
    EXPECT_EQ(str(j, "status"), "delivered");
    EXPECT_EQ(j->getValue<int>("attempts"), 1);
    EXPECT_GE(j->getValue<int64_t>("deliveredAt"), j->getValue<int64_t>("createdAt"));

    agent->send(
        "{\"type\":\"command_result\",\"commandId\":\"read-1\",\"status\":\"failed\","
        "\"error\":\"encoder busy\"}");
    ASSERT_TRUE(eventually([&] {
        Json d =
            parseJson(httpRequest(port(), "GET", "/api/desktops/read-pc/commands/read-1").body);
        return d && str(d, "status") == "failed";
    }));
    j = parseJson(httpRequest(port(), "GET", "/api/desktops/read-pc/commands/read-1").body);
    EXPECT_EQ(str(j->getObject("result"), "status"), "failed");
    EXPECT_EQ(str(j->getObject("result"), "error"), "encoder busy");
    EXPECT_GE(j->getValue<int64_t>("completedAt"), j->getValue<int64_t>("deliveredAt"));

    // Another desktop's command is not visible under this desktop; unknown ids, bad ids, methods.
    EXPECT_EQ(httpRequest(port(), "GET", "/api/desktops/other-pc/commands/read-1").status, 404);
    EXPECT_EQ(httpRequest(port(), "GET", "/api/desktops/read-pc/commands/nope").status, 404);
    EXPECT_EQ(httpRequest(port(), "GET", "/api/desktops/read-pc/commands/a%20b").status, 400);
    EXPECT_EQ(httpRequest(port(), "DELETE", "/api/desktops/read-pc/commands/read-1").status, 405);
    EXPECT_EQ(httpRequest(port(), "GET", "/api/desktops/read-pc/commands/read-1/x").status, 404);
}
