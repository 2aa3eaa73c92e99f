// The real deskstream binary as a subprocess: options, --list-plugins, --check-config exit
// statuses, start-up failures with their messages, and a start / GET /healthz / signal stop.
#include "deskstream/host/config.hpp"
#include "deskstream/host/host.hpp"
#include "deskstream/agent/agent.hpp"
#include "deskstream/core/auth.hpp"
#include "deskstream/relay/relay.hpp"
#include "deskstream/host/services.hpp"
#include "deskstream/host/instances.hpp"
#include "deskstream/host/plugin_registry.hpp"
#include "deskstream/plugin.h"
#include "ds_test/child_process.hpp"

#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/Net/Context.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPSClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/StreamCopier.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <unistd.h>

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

std::string folder(const std::string& name) {
    return std::string(DS_TEST_PLUGIN_ROOT) + "/" + name;
}
std::string lib(const std::string& f, const std::string& stem) {
    return folder(f) + "/" + stem + ".so";
}

fs::path processTempRoot() { return fs::path(DS_BINARY_DIR) / "tmp" / std::to_string(::getpid()); }

// Removes this process's temporary folders at the end of the run.
class TempCleanup : public ::testing::Environment {
public:
    void TearDown() override {
        std::error_code ec;
        fs::remove_all(processTempRoot(), ec);
    }
};
const auto* const kCleanup = ::testing::AddGlobalTestEnvironment(new TempCleanup);

// A fresh folder per use under the test's build folder.
std::string tempDir() {
    static std::atomic<int> counter{0};
    fs::path p = processTempRoot() / std::to_string(counter++);
    fs::remove_all(p);
    fs::create_directories(p);
    return p.string();
}

struct Result {
    int status = -1;  // exit status, or 128 + signal
    std::string out, err;
};

// deskstream (or another program) as a child process, its output in a fresh temporary folder.
class Child : public ds_test::ChildProcess {
public:
    explicit Child(std::vector<std::string> args, const std::string& program = DS_DESKSTREAM_EXE)
        : ChildProcess(program, std::move(args), tempDir()) {}
    // Waits for the exit; kills the child and fails after `timeout`.
    Result wait(std::chrono::milliseconds timeout) {
        const int status = ChildProcess::wait(timeout);
        if (status == -1)
            ADD_FAILURE() << "deskstream did not exit within " << timeout.count()
                          << " ms\nstderr:\n"
                          << err();
        return Result{status, out(), err()};
    }
};

Result run(std::vector<std::string> args) { return Child(std::move(args)).wait(60s); }

// Plugins for a role=all start with the synthetic capture, the test encoder and the real SQLite
// store (the relay registers agents for real, so it needs a store that stores).
std::vector<std::string> workingSetup(const std::string& stateDir) {
    return {"--set",
            "host.plugins.path=" + std::string(DS_BUILD_PLUGIN_DIR) + ";" + folder("c_raw") + ";" +
                folder("memory"),
            "--set",
            "host.state_dir=" + stateDir,
            "--set",
            "agent.capture=synthetic",
            "--set",
            "capture.synthetic.width=320",
            "--set",
            "capture.synthetic.height=200",
            "--set",
            "agent.encoder=test_c_raw",
            "--set",
            "relay.store=sqlite"};
}

uint16_t freePort() {
    Poco::Net::ServerSocket s(Poco::Net::SocketAddress("127.0.0.1", 0));
    return s.address().port();
}

// GET http://127.0.0.1:port/path; status 0 when nothing answers.
// `bearer`: a token for the Authorization header (the relay's /api needs one once a secret is set).
std::pair<int, std::string> httpGet(uint16_t port, const std::string& path,
                                    const std::string& bearer = "") {
    try {
        Poco::Net::HTTPClientSession session("127.0.0.1", port);
        session.setTimeout(Poco::Timespan(2, 0));
        Poco::Net::HTTPRequest request(Poco::Net::HTTPRequest::HTTP_GET, path,
                                       Poco::Net::HTTPMessage::HTTP_1_1);
        if (!bearer.empty()) request.set("Authorization", "Bearer " + bearer);
        session.sendRequest(request);
        Poco::Net::HTTPResponse response;
        std::istream& body = session.receiveResponse(response);
        std::string text;
        Poco::StreamCopier::copyToString(body, text);
        return {response.getStatus(), text};
    } catch (const Poco::Exception&) {
        return {0, ""};
    }
}

TEST(Cli, Version) {
    Result r = run({"--version"});
    EXPECT_EQ(r.status, 0);
    EXPECT_EQ(r.out, "deskstream 0.1.0 (plugin ABI " + std::to_string(DS_ABI_MAJOR) + "." +
                         std::to_string(DS_ABI_MINOR) + ")\n");
}

// deskstream token mints an HS256 token from [auth] secret that the relay's verifier accepts
// for the named role only.
TEST(Cli, TokenMintsAVerifiableToken) {
    Result r = run({"--set", "auth.secret=s3cret-key", "token", "--role", "desktop", "--sub",
                    "office-pc", "--ttl", "2h"});
    ASSERT_EQ(r.status, 0) << r.err;
    ASSERT_FALSE(r.out.empty());
    std::string token = r.out.substr(0, r.out.find('\n'));
    auto nowMs = std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::system_clock::now().time_since_epoch())
                     .count();
    using deskstream::core::Role;
    auto ok = deskstream::core::verifyToken(token, "s3cret-key", Role::Desktop, nowMs);
    ASSERT_TRUE(ok.ok()) << ok.error().message;
    EXPECT_EQ(ok.value().sub, "office-pc");
    EXPECT_NEAR(static_cast<double>(ok.value().exp - nowMs / 1000), 7200.0, 5.0);
    EXPECT_FALSE(deskstream::core::verifyToken(token, "s3cret-key", Role::Viewer, nowMs).ok());
    EXPECT_FALSE(deskstream::core::verifyToken(token, "other", Role::Desktop, nowMs).ok());
    EXPECT_FALSE(
        deskstream::core::verifyToken(token, "s3cret-key", Role::Desktop, nowMs + 3 * 3600 * 1000)
            .ok());
}

TEST(Cli, TokenRefusesBadArgumentsAndAMissingSecret) {
    Result r = run({"token", "--role", "viewer", "--sub", "alice"});
    EXPECT_EQ(r.status, 78);
    EXPECT_NE(r.err.find("[auth] secret is empty"), std::string::npos) << r.err;
    r = run({"--set", "auth.secret=k", "token", "--role", "admin", "--sub", "alice"});
    EXPECT_EQ(r.status, 64);
    EXPECT_NE(r.err.find("--role must be desktop or viewer"), std::string::npos) << r.err;
    r = run({"--set", "auth.secret=k", "token", "--role", "viewer"});
    EXPECT_EQ(r.status, 64);
    EXPECT_NE(r.err.find("--sub NAME is required"), std::string::npos) << r.err;
    r = run({"--set", "auth.secret=k", "token", "--role", "viewer", "--sub", "a", "--ttl", "10x"});
    EXPECT_EQ(r.status, 64);
    EXPECT_NE(r.err.find("--ttl"), std::string::npos) << r.err;
    EXPECT_EQ(r.out, "") << "nothing printed on error";
}

// --desktops and --rights scope a viewer token (docs/security.md); bad values are refused.
TEST(Cli, TokenScopesAViewerToken) {
    Result r = run({"--set", "auth.secret=s3cret-key", "token", "--role", "viewer", "--sub",
                    "alice", "--desktops", "pc1,pc2", "--rights", "view"});
    ASSERT_EQ(r.status, 0) << r.err;
    const std::string token = r.out.substr(0, r.out.find('\n'));
    auto nowMs = std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::system_clock::now().time_since_epoch())
                     .count();
    auto c =
        deskstream::core::verifyToken(token, "s3cret-key", deskstream::core::Role::Viewer, nowMs);
    ASSERT_TRUE(c.ok()) << c.error().message;
    EXPECT_FALSE(c.value().scope.allDesktops);
    EXPECT_EQ(c.value().scope.desktops, (std::vector<std::string>{"pc1", "pc2"}));
    EXPECT_FALSE(c.value().scope.control);

    r = run(
        {"--set", "auth.secret=k", "token", "--role", "viewer", "--sub", "a", "--rights", "admin"});
    EXPECT_EQ(r.status, 64);
    EXPECT_NE(r.err.find("--rights"), std::string::npos) << r.err;
    r = run({"--set", "auth.secret=k", "token", "--role", "viewer", "--sub", "a", "--desktops",
             "bad id"});
    EXPECT_EQ(r.status, 64);
    EXPECT_NE(r.err.find("--desktops"), std::string::npos) << r.err;
    r = run({"--set", "auth.secret=k", "token", "--role", "desktop", "--sub", "pc1", "--rights",
             "view"});
    EXPECT_EQ(r.status, 64);
    EXPECT_EQ(r.out, "");
}

TEST(Cli, HelpListsTheOptions) {
    Result r = run({"--help"});
    EXPECT_EQ(r.status, 0);
    for (const char* opt :
         {"--config", "--set", "--role", "--list-plugins", "--check-config", "--version"})
        EXPECT_NE(r.out.find(opt), std::string::npos) << opt;
}

TEST(Cli, UnknownOptionAndStrayArgumentsAreUsageErrors) {
    EXPECT_NE(run({"--frobnicate"}).status, 0);
    Result r = run({"something"});
    EXPECT_EQ(r.status, 64);
    EXPECT_NE(r.err.find("unexpected argument 'something'"), std::string::npos) << r.err;
}

TEST(Cli, ListPluginsShowsKindNameVersionFileAndRefusals) {
    Result r = run({"--list-plugins", "--set",
                    "host.plugins.path=" + folder("good") + ";" + folder("c_raw") + ";" +
                        folder("broken_abi_major") + ";" + DS_BUILD_PLUGIN_DIR});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("capture\ttest_good\t2.3.4\trank 5\t" +
                         lib("good", "deskstream_capture_test_good") + "\tA good test capture\n"),
              std::string::npos)
        << r.out;
    EXPECT_NE(r.out.find("encoder\ttest_c_raw\t1.0.0\trank 0\t" +
                         lib("c_raw", "deskstream_encoder_test_c_raw")),
              std::string::npos)
        << r.out;
    EXPECT_NE(r.out.find("capture\tsynthetic\t1.0.0\trank 1\t" + std::string(DS_BUILD_PLUGIN_DIR) +
                         "/deskstream_capture_synthetic.so"),
              std::string::npos)
        << r.out;
    EXPECT_NE(
        r.out.find("refused\t" + lib("broken_abi_major", "deskstream_capture_broken_abi_major") +
                   "\tbuilt for plugin ABI 2."),
        std::string::npos)
        << r.out;
    // The refusal is also one log line on stderr.
    EXPECT_NE(r.err.find("skipped plugin file " +
                         lib("broken_abi_major", "deskstream_capture_broken_abi_major")),
              std::string::npos)
        << r.err;
}

TEST(Cli, CheckConfigAcceptsAValidFile) {
    std::string dir = tempDir();
    std::string ini = dir + "/ok.ini";
    std::ofstream(ini) << "[host]\nrole = relay\nplugins.path = " << folder("memory")
                       << "\n[relay]\nstore = test_memory\n"
                       << "listen = 127.0.0.1:9999\n";
    Result r = run({"--check-config", ini});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, ini + ": configuration is valid\n");
    // The same through --config, with a --set that breaks it.
    r = run({"--config", ini, "--check-config", "--set", "relay.viewer_queue=0"});
    EXPECT_EQ(r.status, 78);
    EXPECT_NE(r.err.find("error: --set: [relay] viewer_queue = '0': is out of range [1, 64]"),
              std::string::npos)
        << r.err;
}

TEST(Cli, CheckConfigReportsEveryProblemAndFails) {
    std::string dir = tempDir();
    std::string ini = dir + "/bad.ini";
    std::ofstream(ini)
        << "[host]\nrole = relay\nplugins.path = " << folder("memory") << ";" << folder("good")
        << "\n[relay]\nstore = test_memory\nlisten = nowhere\n[agent]\nfps = 0\ncolour = red\n"
        << "[bogus]\n[capture.test_good]\nsize = big\nshade = 3\n";
    Result r = run({"--check-config", ini});
    EXPECT_EQ(r.status, 78);
    for (const std::string& line :
         {ini + ":9: [agent] colour = 'red': unknown key",
          ini + ":8: [agent] fps = '0': is out of range [1, 1000]",
          ini + ":10: [bogus]: unknown section",
          ini + ":6: [relay] listen = 'nowhere': is not host:port",
          ini + ":13: [capture.test_good] shade = '3': unknown key (plugin 'test_good' 2.3.4 does "
                "not declare it)",
          ini + ":12: [capture.test_good] size = 'big': is not an integer"})
        EXPECT_NE(r.err.find("error: " + line + "\n"), std::string::npos) << line << "\n" << r.err;
    EXPECT_EQ(r.out, ini + ": configuration has errors\n");
}

TEST(Cli, CheckConfigOfAMissingFileFails) {
    Result r = run({"--check-config", "/nonexistent/x.ini"});
    EXPECT_EQ(r.status, 78);
    EXPECT_NE(r.err.find("cannot read configuration file '/nonexistent/x.ini'"), std::string::npos)
        << r.err;
}

TEST(Cli, MissingConfiguredPluginStopsStartUpNamingFoldersAndReason) {
    std::string state = tempDir();
    Result r =
        run({"--role", "agent", "--set", "host.state_dir=" + state, "--set",
             "host.plugins.path=" + folder("c_raw") + ";" + folder("broken_abi_major"), "--set",
             "agent.capture=broken_abi_major", "--set", "agent.encoder=test_c_raw"});
    EXPECT_EQ(r.status, 78);
    std::string expected =
        "[agent] capture = 'broken_abi_major': capture plugin 'broken_abi_major' was not loaded: " +
        lib("broken_abi_major", "deskstream_capture_broken_abi_major") +
        " was refused: built for plugin ABI 2.";
    EXPECT_NE(r.err.find(expected), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("(searched " + folder("c_raw") + ", " + folder("broken_abi_major")),
              std::string::npos)
        << r.err;

    r = run({"--role", "agent", "--set", "host.state_dir=" + state, "--set",
             "host.plugins.path=" + folder("c_raw"), "--set", "agent.capture=x11", "--set",
             "agent.encoder=test_c_raw"});
    EXPECT_EQ(r.status, 78);
    EXPECT_NE(
        r.err.find("[agent] capture = 'x11': capture plugin 'x11' was not found (searched " +
                   folder("c_raw") + "; see [host] plugins.path); available capture plugins: none"),
        std::string::npos)
        << r.err;
}

TEST(Cli, FailingCreateStopsStartUpWithThePluginMessage) {
    std::string state = tempDir();
    Result r = run(
        {"--role", "agent", "--set", "host.state_dir=" + state, "--set",
         "host.plugins.path=" + std::string(DS_BUILD_PLUGIN_DIR) + ";" + folder("failing"), "--set",
         "agent.encoder=test_failing",
         // x11 must not find a display, whatever $DISPLAY the machine has: auto then picks synthetic
         "--set", "capture.x11.display=:1999"});
    EXPECT_EQ(r.status, 78);
    EXPECT_NE(r.err.find("deskstream: start-up failed: encoder plugin 'test_failing': create "
                         "failed (DS_ERR_CONFIG): "
                         "test_failing refuses to start (encoder.test_failing)"),
              std::string::npos)
        << r.err;
    EXPECT_NE(r.err.find("capture auto: chose 'synthetic'"), std::string::npos) << r.err;
}

TEST(Cli, PortInUseStopsStartUp) {
    Poco::Net::ServerSocket taken(Poco::Net::SocketAddress("127.0.0.1", 0));
    std::string state = tempDir();
    std::vector<std::string> args = workingSetup(state);
    args.insert(args.end(), {"--role", "relay", "--set",
                             "relay.listen=127.0.0.1:" + std::to_string(taken.address().port())});
    Result r = run(args);
    EXPECT_EQ(r.status, 78);
    EXPECT_NE(r.err.find("cannot listen"), std::string::npos) << r.err;
}

class StartStop : public ::testing::TestWithParam<int> {};

TEST_P(StartStop, ServesHealthzAndStopsCleanlyOnSignal) {
    std::string state = tempDir();
    uint16_t port = freePort();
    std::vector<std::string> args = workingSetup(state);
    args.insert(args.end(), {"--set", "relay.listen=127.0.0.1:" + std::to_string(port), "--set",
                             "relay.web_root=" + std::string(DS_SOURCE_DIR) + "/web"});
    Child child(args);
    std::pair<int, std::string> health{0, ""};
    auto deadline = std::chrono::steady_clock::now() + 30s;
    while (std::chrono::steady_clock::now() < deadline && child.running()) {
        health = httpGet(port, "/healthz");
        if (health.first != 0) break;
        std::this_thread::sleep_for(50ms);
    }
    ASSERT_EQ(health.first, 200) << "stderr:\n" << child.err();
    EXPECT_EQ(health.second, "{\"status\":\"ok\"}");
    EXPECT_EQ(httpGet(port, "/nothing-here").first, 404);
    // The viewer page and its files come from [relay] web_root, and nothing outside it.
    auto page = httpGet(port, "/");
    EXPECT_EQ(page.first, 200);
    EXPECT_NE(page.second.find("<title>deskstream viewer</title>"), std::string::npos);
    EXPECT_EQ(httpGet(port, "/viewer.js").first, 200);
    EXPECT_EQ(httpGet(port, "/../CMakeLists.txt").first, 404);
    EXPECT_EQ(httpGet(port, "/%2e%2e/CMakeLists.txt").first, 404);
    // The viewer line and the agent's ready line come after /healthz answers (the relay serves
    // before the agent has started): wait for them, up to the same 30 s start-up budget.
    const std::string viewerLine = "viewer: http://127.0.0.1:" + std::to_string(port) + "/";
    while (std::chrono::steady_clock::now() < deadline && child.running() &&
           (child.out().find(viewerLine) == std::string::npos ||
            child.err().find("agent ready:") == std::string::npos))
        std::this_thread::sleep_for(50ms);
    EXPECT_NE(child.out().find(viewerLine), std::string::npos) << child.out();
    EXPECT_NE(child.err().find(
                  "agent ready: capture 'synthetic' (1 monitor(s), 320x200), encoder 'test_c_raw' "
                  "(first frame 256000 bytes)"),
              std::string::npos)
        << child.err();

    auto t0 = std::chrono::steady_clock::now();
    child.signal(GetParam());
    Result r = child.wait(10s);
    auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - t0);
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_LT(took.count(), 5000);
    EXPECT_NE(r.err.find("service 'relay' stopped"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("service 'agent' stopped"), std::string::npos) << r.err;
    EXPECT_EQ(httpGet(port, "/healthz").first, 0) << "nothing listens after the stop";
}

// An agent whose registration the relay refuses (here: a bad token) logs the code, the reason
// and what to check, and the process exits non-zero (69) instead of retrying for ever.
TEST(Cli, AgentExitsWhenTheRelayRefusesRegistration) {
    uint16_t port = freePort();
    std::vector<std::string> relayArgs = workingSetup(tempDir());
    relayArgs.insert(relayArgs.end(),
                     {"--role", "relay", "--set", "relay.listen=127.0.0.1:" + std::to_string(port),
                      "--set", "auth.secret=relay-secret"});
    Child relay(relayArgs);
    auto deadline = std::chrono::steady_clock::now() + 30s;
    while (std::chrono::steady_clock::now() < deadline && httpGet(port, "/healthz").first != 200)
        std::this_thread::sleep_for(50ms);
    ASSERT_EQ(httpGet(port, "/healthz").first, 200) << relay.err();

    std::vector<std::string> agentArgs = workingSetup(tempDir());
    agentArgs.insert(agentArgs.end(),
                     {"--role", "agent", "--set",
                      "agent.relay_url=ws://127.0.0.1:" + std::to_string(port) + "/ws/agent",
                      "--set", "agent.client_id=refused-pc", "--set", "agent.token=not-a-token"});
    Result r = Child(agentArgs).wait(30s);
    EXPECT_EQ(r.status, 69) << r.err;
    EXPECT_NE(r.err.find("registration refused by the relay: code unauthorized"), std::string::npos)
        << r.err;
    EXPECT_NE(r.err.find("check [agent] token"), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("not-a-token"), std::string::npos) << "the token is never logged";
    relay.signal(SIGTERM);
    EXPECT_EQ(relay.wait(10s).status, 0);
}

// [host] log.format = json (issue 15): every line of a real run (relay and agent, debug level, a
// token-authenticated handshake) parses as a JSON object with time, level, logger and message;
// the relay's connection lines carry client_id, connection_id and instance_id; and neither the
// handshake's token nor the signing secret appears in any line.
TEST(Cli, JsonLogsParseLineByLineAndNeverContainTheHandshakeToken) {
    const std::string secret = "json-log-secret-9f2c";
    const auto nowMs = std::chrono::duration_cast<std::chrono::milliseconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count();
    const std::string token = deskstream::core::mintToken(secret, deskstream::core::Role::Desktop,
                                                          "json-pc", std::chrono::hours(1), nowMs);
    ASSERT_GT(token.size(), 20u);
    // /api needs a viewer token once a secret is set (docs/relay.md); it is not logged either.
    const std::string viewerToken = deskstream::core::mintToken(
        secret, deskstream::core::Role::Viewer, "json-viewer", std::chrono::hours(1), nowMs);
    uint16_t port = freePort();
    std::vector<std::string> args = workingSetup(tempDir());
    args.insert(args.end(), {"--set", "relay.listen=127.0.0.1:" + std::to_string(port), "--set",
                             "auth.secret=" + secret, "--set", "agent.token=" + token, "--set",
                             "agent.relay_url=ws://127.0.0.1:" + std::to_string(port) + "/ws/agent",
                             "--set", "agent.client_id=json-pc", "--set", "host.log.format=json",
                             "--set", "host.log.level=debug"});
    Child child(args);
    bool registered = false;
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    while (!registered && std::chrono::steady_clock::now() < deadline && child.running()) {
        registered = httpGet(port, "/api/desktops", viewerToken).second.find("\"json-pc\"") !=
                     std::string::npos;
        if (!registered) std::this_thread::sleep_for(50ms);
    }
    ASSERT_TRUE(registered) << child.err();
    child.signal(SIGTERM);
    Result r = child.wait(10s);
    EXPECT_EQ(r.status, 0) << r.err;

    std::istringstream in(r.err);
    int lines = 0;
    bool connectionFields = false;
    for (std::string line; std::getline(in, line);) {
        ++lines;
        EXPECT_EQ(line.find(token), std::string::npos) << "token logged: " << line;
        EXPECT_EQ(line.find(token.substr(token.rfind('.') + 1)), std::string::npos)
            << "signature logged: " << line;
        EXPECT_EQ(line.find(secret), std::string::npos) << "secret logged: " << line;
        EXPECT_EQ(line.find(viewerToken), std::string::npos) << "bearer token logged: " << line;
        Poco::JSON::Object::Ptr o;
        try {
            o = Poco::JSON::Parser().parse(line).extract<Poco::JSON::Object::Ptr>();
        } catch (const std::exception& e) {
            ADD_FAILURE() << "not a JSON object: " << line << " (" << e.what() << ")";
            continue;
        }
        for (const char* key : {"time", "level", "logger", "message"})
            EXPECT_TRUE(o->has(key)) << key << " missing: " << line;
        if (o->optValue<std::string>("client_id", "") == "json-pc" && o->has("connection_id") &&
            o->has("instance_id"))
            connectionFields = true;
    }
    EXPECT_GE(lines, 5) << r.err;
    EXPECT_TRUE(connectionFields) << "no line with client_id, connection_id and instance_id:\n"
                                  << r.err;
}

INSTANTIATE_TEST_SUITE_P(Signals, StartStop, ::testing::Values(SIGTERM, SIGINT),
                         [](const ::testing::TestParamInfo<int>& i) {
                             return std::string(i.param == SIGTERM ? "SIGTERM" : "SIGINT");
                         });

// The host as a library, as a vendor embeds it: configure, load plugins, start, serve, stop.
deskstream::host::Configuration embeddedConfig(const std::string& state) {
    deskstream::host::Configuration config;
    config.set("host.plugins.path=" + std::string(DS_BUILD_PLUGIN_DIR) + ";" + folder("c_raw") +
               ";" + folder("memory"));
    config.set("host.state_dir=" + state);
    config.set("agent.capture=synthetic");
    config.set("capture.synthetic.width=64");
    config.set("capture.synthetic.height=48");
    config.set("agent.encoder=test_c_raw");
    config.set("relay.store=sqlite");
    config.set("relay.listen=127.0.0.1:0");
    return config;
}

TEST(Embedding, HostStartsServesAndStops) {
    std::string state = tempDir() + "/state/nested";
    deskstream::host::Configuration config = embeddedConfig(state);
    deskstream::host::Host host(config);
    host.loadPlugins();
    ASSERT_TRUE(config.validate(&host.plugins()).empty());
    host.addDefaultServices();
    host.start();
    EXPECT_TRUE(fs::is_directory(state)) << "the state folder is created at start";
    auto* http = dynamic_cast<deskstream::host::RelayService*>(host.service("relay"));
    auto* agent = dynamic_cast<deskstream::host::AgentService*>(host.service("agent"));
    ASSERT_NE(http, nullptr);
    ASSERT_NE(agent, nullptr);
    ASSERT_NE(http->port(), 0) << "port 0 binds a free port";
    EXPECT_EQ(httpGet(http->port(), "/healthz"),
              std::make_pair(200, std::string("{\"status\":\"ok\"}")));
    ASSERT_NE(agent->runtime(), nullptr);
    EXPECT_EQ(agent->runtime()->stats().encoder, "test_c_raw");
    EXPECT_EQ(agent->fatalError(), "");
    uint16_t port = http->port();
    host.stop();
    EXPECT_EQ(httpGet(port, "/healthz").first, 0);
    EXPECT_EQ(agent->runtime(), nullptr) << "stop releases the plugin instances";
}

// Without [relay] instance_id the relay keeps its id in the state folder: a restart is the same
// instance, so it removes the registrations its previous run left behind.
TEST(Embedding, RelayKeepsItsInstanceIdAcrossRestarts) {
    std::string state = tempDir();
    std::string first;
    {
        deskstream::host::Configuration config = embeddedConfig(state);
        config.set("host.role=relay");
        deskstream::host::Host host(config);
        host.loadPlugins();
        host.addDefaultServices();
        host.start();
        auto* relay = dynamic_cast<deskstream::host::RelayService*>(host.service("relay"));
        ASSERT_NE(relay, nullptr);
        first = relay->relay()->instanceId();
        host.stop();
    }
    EXPECT_TRUE(fs::exists(fs::path(state) / "relay-instance-id"));
    deskstream::host::Configuration config = embeddedConfig(state);
    config.set("host.role=relay");
    deskstream::host::Host host(config);
    host.loadPlugins();
    host.addDefaultServices();
    host.start();
    auto* relay = dynamic_cast<deskstream::host::RelayService*>(host.service("relay"));
    EXPECT_EQ(relay->relay()->instanceId(), first);
    host.stop();
    // An explicit id wins.
    deskstream::host::Configuration explicitConfig = embeddedConfig(state);
    explicitConfig.set("host.role=relay");
    explicitConfig.set("relay.instance_id=relay-b");
    deskstream::host::Host other(explicitConfig);
    other.loadPlugins();
    other.addDefaultServices();
    other.start();
    EXPECT_EQ(dynamic_cast<deskstream::host::RelayService*>(other.service("relay"))
                  ->relay()
                  ->instanceId(),
              "relay-b");
    other.stop();
}

TEST(Embedding, AFailedStartStopsWhatAlreadyStarted) {
    deskstream::host::Configuration config = embeddedConfig(tempDir());
    config.set("relay.store=test_memory");
    config.set("store.test_memory.fail_check=true");
    deskstream::host::Host host(config);
    host.loadPlugins();
    host.addDefaultServices();
    try {
        host.start();
        FAIL() << "no exception";
    } catch (const deskstream::host::PluginError& e) {
        EXPECT_EQ(e.status(), DS_ERR_STORE_UNAVAILABLE);
        EXPECT_STREQ(e.what(),
                     "store plugin 'test_memory': check failed (DS_ERR_STORE_UNAVAILABLE): "
                     "test_memory check "
                     "fails on request");
    }
    auto* agent = dynamic_cast<deskstream::host::AgentService*>(host.service("agent"));
    ASSERT_NE(agent, nullptr);
    EXPECT_EQ(agent->runtime(), nullptr)
        << "the relay starts first; its failure stops start-up before the agent";
}

// examples/plugin_skeleton configured and built out of tree against sdk/include only, then
// loaded by the host's loader and driven through the C ABI.
TEST(PluginSkeleton, BuildsOutOfTreeAndLoads) {
    std::string build = tempDir();
    Result r =
        Child({"-S", std::string(DS_SOURCE_DIR) + "/examples/plugin_skeleton", "-B", build,
               "-DCMAKE_BUILD_TYPE=Release", "-DCMAKE_CXX_COMPILER=" + std::string(DS_CXX_COMPILER),
               "-Ddeskstream_DIR=" + std::string(DS_BINARY_DIR) + "/../../package-build"},
              DS_CMAKE_COMMAND)
            .wait(120s);
    ASSERT_EQ(r.status, 0) << r.out << r.err;
    r = Child({"--build", build}, DS_CMAKE_COMMAND).wait(300s);
    ASSERT_EQ(r.status, 0) << r.out << r.err;

    deskstream::host::PluginRegistry plugins;
    auto outcomes = plugins.scan({build});
    ASSERT_EQ(outcomes.size(), 1u);
    ASSERT_TRUE(outcomes[0].loaded) << outcomes[0].reason;
    const auto& info = plugins.require(DS_KIND_CAPTURE, "skeleton", "");
    EXPECT_EQ(info.version, "0.1.0");
    EXPECT_EQ(info.vendor, "Example Vendor");
    ASSERT_EQ(info.configKeys.size(), 3u);

    deskstream::host::Configuration config;
    config.set("capture.skeleton.width=4");
    config.set("capture.skeleton.height=2");
    config.set("capture.skeleton.color=ff8000");
    EXPECT_TRUE(config.validate(nullptr).empty());
    deskstream::host::CaptureInstance capture(info, config.poco());
    deskstream::host::CaptureInstance::Frame frame;
    ASSERT_EQ(capture.grab(0, 0, frame), DS_OK);
    EXPECT_EQ(frame->width, 4u);
    EXPECT_EQ(frame->height, 2u);
    EXPECT_EQ(frame->data[0], 0x00);  // B
    EXPECT_EQ(frame->data[1], 0x80);  // G
    EXPECT_EQ(frame->data[2], 0xFF);  // R

    config.set("capture.skeleton.color=orange");
    try {
        deskstream::host::CaptureInstance bad(info, config.poco());
        FAIL() << "no exception";
    } catch (const deskstream::host::PluginError& e) {
        EXPECT_STREQ(
            e.what(),
            "capture plugin 'skeleton': create failed (DS_ERR_CONFIG): [capture.skeleton] color = "
            "'orange' is not RRGGBB");
    }
}

// ---- TLS (issue 14, docs/security-tls.md)

// GET https://127.0.0.1:port/path trusting `ca`; status 0 when nothing answers.
int httpsStatus(uint16_t port, const std::string& path, const std::string& ca) {
    try {
        Poco::Net::Context::Params params;
        params.caLocation = ca;
        params.verificationMode = Poco::Net::Context::VERIFY_STRICT;
        Poco::Net::HTTPSClientSession session(
            "127.0.0.1", port, new Poco::Net::Context(Poco::Net::Context::TLS_CLIENT_USE, params));
        session.setTimeout(Poco::Timespan(2, 0));
        Poco::Net::HTTPRequest request(Poco::Net::HTTPRequest::HTTP_GET, path,
                                       Poco::Net::HTTPMessage::HTTP_1_1);
        session.sendRequest(request);
        Poco::Net::HTTPResponse response;
        session.receiveResponse(response);
        return response.getStatus();
    } catch (const Poco::Exception&) {
        return 0;
    }
}

// The commands `tls-selfsigned` prints, run as a user would, make a pair the relay serves with
// and the agent trusts through tls.ca; without tls.ca the agent process exits 69 naming the
// certificate problem, as it does for a refused registration.
TEST(CliTls, SelfSignedCommandsMakeAPairForRelayAndAgent) {
    Result printed = run({"tls-selfsigned", "--host", "127.0.0.1", "--days", "2"});
    ASSERT_EQ(printed.status, 0) << printed.err;
    EXPECT_NE(printed.out.find("openssl req -x509"), std::string::npos) << printed.out;
    EXPECT_NE(printed.out.find("subjectAltName=IP:127.0.0.1"), std::string::npos) << printed.out;
    const std::string pairDir = tempDir();
    std::ofstream(pairDir + "/commands.sh") << printed.out;
    Result made = Child({"-ec", "cd '" + pairDir + "' && . ./commands.sh"}, "/bin/sh").wait(60s);
    ASSERT_EQ(made.status, 0) << made.out << made.err;
    const std::string cert = pairDir + "/deskstream-cert.pem",
                      key = pairDir + "/deskstream-key.pem";
    ASSERT_TRUE(fs::exists(cert) && fs::exists(key));
    EXPECT_EQ(fs::status(key).permissions() & fs::perms::all,
              fs::perms::owner_read | fs::perms::owner_write);

    const uint16_t port = freePort();
    std::vector<std::string> relayArgs = workingSetup(tempDir());
    relayArgs.insert(relayArgs.end(),
                     {"--role", "relay", "--set", "relay.listen=127.0.0.1:" + std::to_string(port),
                      "--set", "relay.tls.cert=" + cert, "--set", "relay.tls.key=" + key});
    Child relay(relayArgs);
    auto deadline = std::chrono::steady_clock::now() + 30s;
    while (std::chrono::steady_clock::now() < deadline && relay.running() &&
           httpsStatus(port, "/healthz", cert) != 200)
        std::this_thread::sleep_for(50ms);
    ASSERT_EQ(httpsStatus(port, "/healthz", cert), 200) << relay.err();
    while (std::chrono::steady_clock::now() < deadline &&
           relay.out().find("viewer: https://") == std::string::npos)
        std::this_thread::sleep_for(50ms);
    EXPECT_NE(relay.out().find("viewer: https://127.0.0.1:" + std::to_string(port) + "/"),
              std::string::npos)
        << relay.out();

    const std::string url = "agent.relay_url=wss://127.0.0.1:" + std::to_string(port) + "/ws/agent";
    std::vector<std::string> untrusting = workingSetup(tempDir());
    untrusting.insert(untrusting.end(),
                      {"--role", "agent", "--set", url, "--set", "agent.client_id=no-ca-pc"});
    Result refused = Child(untrusting).wait(30s);
    EXPECT_EQ(refused.status, 69) << refused.err;
    EXPECT_NE(refused.err.find("the relay's TLS certificate failed verification: self-signed "
                               "certificate"),
              std::string::npos)
        << refused.err;

    std::vector<std::string> trusting = workingSetup(tempDir());
    trusting.insert(trusting.end(), {"--role", "agent", "--set", url, "--set",
                                     "agent.client_id=ca-pc", "--set", "agent.tls.ca=" + cert});
    Child agent(trusting);
    while (std::chrono::steady_clock::now() < deadline + 30s && agent.running() &&
           agent.err().find("registered with relay wss://") == std::string::npos)
        std::this_thread::sleep_for(50ms);
    EXPECT_NE(agent.err().find("agent ca-pc: registered with relay wss://127.0.0.1:"),
              std::string::npos)
        << agent.err();
    agent.signal(SIGTERM);
    EXPECT_EQ(agent.wait(10s).status, 0);
    relay.signal(SIGTERM);
    EXPECT_EQ(relay.wait(10s).status, 0);
}

TEST(CliTls, RelayWithAMissingKeyFileExitsNamingIt) {
    const std::string missing = tempDir() + "/relay-key.pem";
    std::vector<std::string> args = workingSetup(tempDir());
    args.insert(args.end(), {"--role", "relay", "--set", "relay.listen=127.0.0.1:0", "--set",
                             "relay.tls.cert=" + std::string(DS_SOURCE_DIR) + "/README.md", "--set",
                             "relay.tls.key=" + missing});
    // The certificate is checked first: README.md is no PEM certificate.
    Result r = run(args);
    EXPECT_EQ(r.status, 78);
    EXPECT_NE(r.err.find("[relay] tls.cert = '" + std::string(DS_SOURCE_DIR) +
                         "/README.md': is not a PEM certificate"),
              std::string::npos)
        << r.err;
    // A usable certificate and a missing key: the key file is named.
    const std::string dir = tempDir();
    Result made = Child({"-ec", "cd '" + dir +
                                    "' && openssl req -x509 -newkey ec -pkeyopt "
                                    "ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=t "
                                    "-keyout k.pem -out c.pem 2>&1"},
                        "/bin/sh")
                      .wait(60s);
    ASSERT_EQ(made.status, 0) << made.out;
    args = workingSetup(tempDir());
    args.insert(args.end(),
                {"--role", "relay", "--set", "relay.listen=127.0.0.1:0", "--set",
                 "relay.tls.cert=" + dir + "/c.pem", "--set", "relay.tls.key=" + missing});
    r = run(args);
    EXPECT_EQ(r.status, 78);
    EXPECT_NE(r.err.find("deskstream: start-up failed: relay: [relay] tls.key = '" + missing +
                         "': cannot be read: No such file or directory"),
              std::string::npos)
        << r.err;
}

TEST(CliTls, SelfSignedRefusesAHostThatIsNotAName) {
    Result r = run({"tls-selfsigned", "--host", "a;rm -rf /"});
    EXPECT_EQ(r.status, 64);
    EXPECT_NE(r.err.find("--host must be a host name or an IP address"), std::string::npos)
        << r.err;
    EXPECT_TRUE(r.out.empty()) << r.out;
    EXPECT_EQ(run({"tls-selfsigned", "--days", "0"}).status, 64);
}

}  // namespace
