// Configuration model: defaults, layers, --set parsing, validation of every error class, typed
// accessors, and the docs/example checked against the schema.
#include "deskstream/host/config.hpp"
#include "deskstream/host/plugin_registry.hpp"
#include "deskstream/core/commands.hpp"
#include "deskstream/core/fanout.hpp"
#include "deskstream/relay/options.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

using namespace deskstream::host;

namespace {

std::string folder(const std::string& name) {
    return std::string(DS_TEST_PLUGIN_ROOT) + "/" + name;
}

std::vector<std::string> texts(const std::vector<Problem>& problems) {
    std::vector<std::string> out;
    for (const auto& p : problems) out.push_back(p.text());
    return out;
}

std::string one(const std::string& ini, const PluginRegistry* plugins = nullptr) {
    Configuration c;
    c.loadString(ini, "t.ini");
    auto p = texts(c.validate(plugins));
    if (p.size() != 1) {
        std::string all;
        for (const auto& s : p) all += s + "\n";
        return "expected exactly one problem, got " + std::to_string(p.size()) + ":\n" + all;
    }
    return p[0];
}

TEST(Config, DefaultsAreTheEmbeddedSetup) {
    Configuration c;
    EXPECT_TRUE(c.validate(nullptr).empty());
    HostConfig h = c.host();
    EXPECT_EQ(h.role, Role::All);
    EXPECT_TRUE(h.runsAgent());
    EXPECT_TRUE(h.runsRelay());
    ASSERT_EQ(h.pluginsPath.size(), 2u);  // the installed layout, then the build tree's
    EXPECT_EQ(h.pluginsPath[0],
              (std::filesystem::path(executableDir()) / ".." / "lib/deskstream/plugins")
                  .lexically_normal()
                  .string());
    EXPECT_EQ(
        h.pluginsPath[1],
        (std::filesystem::path(executableDir()) / ".." / "plugins").lexically_normal().string());
    EXPECT_EQ(h.stateDir, (std::filesystem::current_path() / "var").string());
    EXPECT_EQ(h.logLevel, "information");
    RelayConfig r = c.relay();
    EXPECT_EQ(r.listenHost, "127.0.0.1");
    EXPECT_EQ(r.listenPort, 8080);
    EXPECT_EQ(r.store, "sqlite");
    EXPECT_EQ(r.viewerQueue, 3);
    EXPECT_EQ(r.maxMessageBytes, 16777216);
    EXPECT_EQ(r.instanceId.size(), 36u) << "a random UUID";
    EXPECT_EQ(c.relay().instanceId, r.instanceId) << "chosen once per process";
    HeartbeatConfig hb = c.heartbeat();
    EXPECT_EQ(hb.intervalMs, 5000);
    EXPECT_EQ(hb.missedLimit, 3);
    AgentConfig a = c.agent();
    EXPECT_EQ(a.capture, "auto");
    EXPECT_EQ(a.encoder, "jpeg");
    EXPECT_EQ(a.fps, 30);
    EXPECT_EQ(a.quality, 75);
    EXPECT_TRUE(a.monitors.empty());
    EXPECT_EQ(a.layout, Layout::Separate);
    EXPECT_FALSE(a.clientId.empty()) << "defaults to the host name";
    EXPECT_EQ(a.name, a.clientId);
    EXPECT_TRUE(c.auth().secret.empty());
}

TEST(Config, FileThenSetOverrides) {
    Configuration c;
    c.loadString(
        "[agent]\nfps = 15 ; inline comment\nmonitors = 0, 2\nname = a;b\n[auth]\n"
        "allowed_origins = http://a, http://b\n",
        "t.ini");
    EXPECT_EQ(c.agent().fps, 15);
    EXPECT_EQ(c.agent().monitors, (std::vector<uint32_t>{0, 2}));
    EXPECT_EQ(c.agent().name, "a;b") << "';' without a space before it is part of the value";
    EXPECT_EQ(c.auth().allowedOrigins, (std::vector<std::string>{"http://a", "http://b"}));
    c.set("agent.fps=20");
    c.set("host.plugins.path=/x; relative");
    c.set("capture.synthetic.width=640");
    c.set("relay.listen = 127.0.0.1:0");
    EXPECT_EQ(c.agent().fps, 20);
    EXPECT_EQ(
        c.host().pluginsPath,
        (std::vector<std::string>{"/x", (std::filesystem::current_path() / "relative").string()}));
    EXPECT_EQ(c.get("capture.synthetic", "width"), "640");
    EXPECT_EQ(c.poco().getString("capture.synthetic.width"), "640");
    EXPECT_EQ(c.relay().listenPort, 0);
    EXPECT_EQ(c.userKeys("agent"), (std::vector<std::string>{"fps", "monitors", "name"}));
    EXPECT_TRUE(c.validate(nullptr).empty()) << texts(c.validate(nullptr)).front();
}

TEST(Config, ExeDirTokenAndRelativeFolders) {
    Configuration c;
    c.set("host.plugins.path={exe_dir}/p;;/abs/q");
    EXPECT_EQ(c.host().pluginsPath, (std::vector<std::string>{executableDir() + "/p", "/abs/q"}));
}

TEST(Config, MalformedSetIsRefused) {
    Configuration c;
    EXPECT_THROW(c.set("agent"), ConfigError);
    EXPECT_THROW(c.set("fps=3"), ConfigError);
    EXPECT_THROW(c.set("=3"), ConfigError);
    EXPECT_THROW(c.set("capture.x=1"), ConfigError);
}

TEST(Config, UnreadableFileIsAnError) {
    Configuration c;
    try {
        c.loadFile("/nonexistent/deskstream.ini");
        FAIL();
    } catch (const ConfigError& e) {
        EXPECT_STREQ(e.what(), "cannot read configuration file '/nonexistent/deskstream.ini'");
    }
}

TEST(ConfigCheck, UnknownSection) {
    EXPECT_EQ(one("[bogus]\nx = 1\n"), "error: t.ini:1: [bogus]: unknown section");
    EXPECT_EQ(one("[empty]\n"), "error: t.ini:1: [empty]: unknown section");
}

TEST(ConfigCheck, UnknownKey) {
    EXPECT_EQ(one("[agent]\ncolour = red\n"),
              "error: t.ini:2: [agent] colour = 'red': unknown key");
}

TEST(ConfigCheck, WrongType) {
    EXPECT_EQ(one("[agent]\nfps = fast\n"),
              "error: t.ini:2: [agent] fps = 'fast': is not an integer");
    EXPECT_EQ(one("[relay]\nlisten = localhost\n"),
              "error: t.ini:2: [relay] listen = 'localhost': is not host:port");
    EXPECT_EQ(one("[agent]\nmonitors = 0,x\n"),
              "error: t.ini:2: [agent] monitors = '0,x': is not 'all' or a comma-separated list of "
              "monitor "
              "indices (0..255)");
}

TEST(ConfigCheck, OutOfRange) {
    EXPECT_EQ(one("[agent]\nfps = 0\n"),
              "error: t.ini:2: [agent] fps = '0': is out of range [1, 1000]");
    EXPECT_EQ(one("[heartbeat]\nmissed_limit = 1000\n"),
              "error: t.ini:2: [heartbeat] missed_limit = '1000': is out of range [1, 100]");
    EXPECT_EQ(
        one("[relay]\nlisten = 127.0.0.1:70000\n"),
        "error: t.ini:2: [relay] listen = '127.0.0.1:70000': has a port out of range [0, 65535]");
}

TEST(ConfigCheck, BadChoice) {
    EXPECT_EQ(one("[host]\nrole = both\n"),
              "error: t.ini:2: [host] role = 'both': is not one of relay|agent|all");
    EXPECT_EQ(one("[agent]\nlayout = stacked\n"),
              "error: t.ini:2: [agent] layout = 'stacked': is not one of separate|combined");
}

TEST(ConfigCheck, RulesBetweenKeys) {
    EXPECT_EQ(one("[agent]\nquality = 95\n"),
              "error: t.ini:2: [agent] quality = '95': must lie within quality.min .. quality.max "
              "(30 .. 90)");
    EXPECT_EQ(one("[agent]\nadapt.low_latency_ms = 600\n"),
              "error: t.ini:2: [agent] adapt.low_latency_ms = '600': must be below "
              "adapt.high_latency_ms (500)");
}

TEST(ConfigCheck, AgentMetricsListenIsEmptyOrHostPort) {
    EXPECT_EQ(one("[agent]\nmetrics_listen = 9464\n"),
              "error: t.ini:2: [agent] metrics_listen = '9464': is not host:port (or empty: off)");
    EXPECT_EQ(one("[agent]\nmetrics_listen = 127.0.0.1:99999\n"),
              "error: t.ini:2: [agent] metrics_listen = '127.0.0.1:99999': has a port out of range "
              "[0, 65535] "
              "(or empty: off)");
}

TEST(ConfigCheck, RelayHealthListenIsEmptyOrHostPortAndReachesTheRelay) {
    EXPECT_EQ(one("[relay]\nhealth_listen = 8081\n"),
              "error: t.ini:2: [relay] health_listen = '8081': is not host:port (or empty: off)");
    EXPECT_EQ(one("[relay]\nhttp_idle_timeout_ms = 0\n"),
              "error: t.ini:2: [relay] http_idle_timeout_ms = '0': is out of range [100, 600000]");
    Configuration c;
    c.loadString("[relay]\nhealth_listen = 127.0.0.1:8081\nhttp_idle_timeout_ms = 1500\n", "t.ini");
    EXPECT_TRUE(c.validate(nullptr).empty());
    EXPECT_EQ(c.relay().healthListen, "127.0.0.1:8081");
    EXPECT_EQ(c.relay().httpIdleTimeoutMs, 1500);
    EXPECT_EQ(Configuration().relay().healthListen, "") << "off by default";
    EXPECT_EQ(Configuration().relay().httpIdleTimeoutMs, 3000);
}

TEST(ConfigCheck, SyntaxErrors) {
    EXPECT_EQ(one("[agent\n"), "error: t.ini:1: malformed section header '[agent'");
    EXPECT_EQ(one("[agent]\njust words\n"),
              "error: t.ini:2: [agent]: line 'just words' is not 'key = value'");
    EXPECT_EQ(one("fps = 3\n"), "error: t.ini:1: fps = '3': key outside of any section");
}

TEST(ConfigCheck, EveryProblemIsReportedNotJustTheFirst) {
    Configuration c;
    c.loadString("[agent]\nfps = 0\ncolour = red\nlayout = x\n[nope]\n[host]\nrole = both\n",
                 "t.ini");
    c.set("heartbeat.interval_ms=soon");
    auto p = texts(c.validate(nullptr));
    EXPECT_EQ(p, (std::vector<std::string>{
                     "error: t.ini:3: [agent] colour = 'red': unknown key",
                     "error: t.ini:2: [agent] fps = '0': is out of range [1, 1000]",
                     "error: t.ini:4: [agent] layout = 'x': is not one of separate|combined",
                     "error: --set: [heartbeat] interval_ms = 'soon': is not an integer",
                     "error: t.ini:7: [host] role = 'both': is not one of relay|agent|all",
                     "error: t.ini:5: [nope]: unknown section",
                 }));
}

TEST(ConfigCheck, TypedAccessorsRefuseInvalidValues) {
    Configuration c;
    c.set("agent.fps=fast");
    try {
        c.agent();
        FAIL();
    } catch (const ConfigError& e) {
        EXPECT_STREQ(e.what(), "[agent] fps = 'fast': is not an integer");
    }
}

class PluginSectionTest : public ::testing::Test {
protected:
    void SetUp() override { plugins.scan({folder("good"), folder("c_raw"), folder("memory")}); }
    PluginRegistry plugins;
    const std::string roleOk =
        "[host]\nrole = all\n[agent]\ncapture = test_good\nencoder = test_c_raw\n"
        "[relay]\nstore = test_memory\n";
};

TEST_F(PluginSectionTest, ValidPluginSectionPasses) {
    Configuration c;
    c.loadString(roleOk + "[capture.test_good]\nsize = 10\nmode = b\nflag = yes\nratio = 1.5\n",
                 "t.ini");
    EXPECT_TRUE(c.validate(&plugins).empty()) << texts(c.validate(&plugins)).front();
}

TEST_F(PluginSectionTest, PluginKeysAreCheckedAgainstTheDescriptor) {
    EXPECT_EQ(one(roleOk + "[capture.test_good]\ncolour = red\n", &plugins),
              "error: t.ini:9: [capture.test_good] colour = 'red': unknown key (plugin 'test_good' "
              "2.3.4 does "
              "not declare it)");
    EXPECT_EQ(one(roleOk + "[capture.test_good]\nsize = big\n", &plugins),
              "error: t.ini:9: [capture.test_good] size = 'big': is not an integer");
    EXPECT_EQ(one(roleOk + "[capture.test_good]\nsize = 101\n", &plugins),
              "error: t.ini:9: [capture.test_good] size = '101': is out of range [1, 100]");
    EXPECT_EQ(one(roleOk + "[capture.test_good]\nmode = c\n", &plugins),
              "error: t.ini:9: [capture.test_good] mode = 'c': is not one of a|b");
    EXPECT_EQ(one(roleOk + "[capture.test_good]\nflag = maybe\n", &plugins),
              "error: t.ini:9: [capture.test_good] flag = 'maybe': is not a boolean (true|false)");
    EXPECT_EQ(one(roleOk + "[capture.test_good]\nratio = half\n", &plugins),
              "error: t.ini:9: [capture.test_good] ratio = 'half': is not a number");
}

TEST_F(PluginSectionTest, SectionOfAPluginNotLoadedIsAWarning) {
    Configuration c;
    c.loadString(roleOk + "[encoder.webp]\nquality = 3\n", "t.ini");
    auto p = c.validate(&plugins);
    ASSERT_EQ(p.size(), 1u);
    EXPECT_EQ(p[0].severity, Problem::Severity::Warning);
    EXPECT_EQ(p[0].text(),
              "warning: t.ini:8: [encoder.webp]: no encoder plugin named 'webp' is loaded; its "
              "keys were not checked");
}

TEST_F(PluginSectionTest, PluginsTheRoleNeedsMustBeLoaded) {
    std::string prefix =
        "error: t.ini:9: [agent] encoder = 'jpeg': encoder plugin 'jpeg' was not found (searched ";
    std::string got = one(roleOk + "[agent]\nencoder = jpeg\n", &plugins);
    EXPECT_EQ(got.rfind(prefix, 0), 0u) << got;
    // The relay role does not need agent plugins.
    Configuration c;
    c.loadString("[host]\nrole = relay\n[relay]\nstore = test_memory\n[agent]\nencoder = jpeg\n",
                 "t.ini");
    EXPECT_TRUE(c.validate(&plugins).empty());
    c.set("relay.store=sqlite");
    ASSERT_EQ(c.validate(&plugins).size(), 1u);
    EXPECT_EQ(c.validate(&plugins)[0].key, "store");
}

// ---------------------------------------------------------------- docs against the schema
std::string readFile(const std::string& path) {
    std::ifstream in(path);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

TEST(ConfigDocs, ExampleIniHasEveryKeyWithItsDefault) {
    std::string path = std::string(DS_SOURCE_DIR) + "/examples/deskstream.ini";
    std::vector<Problem> problems;
    auto entries = parseIni(readFile(path), path, problems);
    EXPECT_TRUE(problems.empty());
    for (const KeySpec& k : schema()) {
        auto it = std::find_if(entries.begin(), entries.end(), [&](const IniEntry& e) {
            return e.section == k.section && e.key == k.key;
        });
        ASSERT_NE(it, entries.end())
            << "examples/deskstream.ini lacks [" << k.section << "] " << k.key;
        EXPECT_EQ(it->value, k.defaultValue) << "[" << k.section << "] " << k.key;
    }
    Configuration c;
    c.loadFile(path);
    for (const auto& p : c.validate(nullptr)) ADD_FAILURE() << p.text();
}

TEST(ConfigDocs, ConfigurationReferenceListsEveryKeyWithItsDefault) {
    std::string doc = readFile(std::string(DS_SOURCE_DIR) + "/docs/configuration.md");
    ASSERT_FALSE(doc.empty());
    std::string section;
    for (const KeySpec& k : schema()) {
        std::string heading = std::string("### [") + k.section + "]";
        size_t at = doc.find(heading);
        ASSERT_NE(at, std::string::npos) << heading;
        size_t end = doc.find("\n### ", at + 1);
        std::string part = doc.substr(at, end == std::string::npos ? std::string::npos : end - at);
        std::string def = *k.defaultValue ? "`" + std::string(k.defaultValue) + "`" : "(empty)";
        std::string row = "| `" + std::string(k.key) + "` | " + def + " |";
        EXPECT_NE(part.find(row), std::string::npos)
            << "docs/configuration.md lacks the row " << row;
    }
}

// One truth per behaviour (issue 19): the command TTL, the lease and the viewer queue have one
// default in the config schema, RelayOptions and the core, and the docs state that value and
// the drop-all rule.
TEST(ConfigDocs, CommandTtlLeaseAndViewerQueueHaveOneDefaultInCodeAndDocs) {
    auto schemaDefault = [](const char* key) {
        const KeySpec* k = findKey("relay", key);
        EXPECT_NE(k, nullptr) << key;
        return k ? std::stoll(k->defaultValue) : -1;
    };
    const deskstream::relay::RelayOptions relay;
    const deskstream::core::CommandPolicy policy;
    const deskstream::core::FanOutConfig fanout;
    const long long ttl = schemaDefault("command.ttl_ms");
    const long long lease = schemaDefault("command.lease_ms");
    const long long queue = schemaDefault("viewer_queue");
    EXPECT_EQ(relay.commandTtlMs, ttl);
    EXPECT_EQ(policy.ttlMs, ttl);
    EXPECT_EQ(relay.commandLeaseMs, lease);
    EXPECT_EQ(policy.leaseMs, lease);
    EXPECT_EQ(relay.viewerQueue, queue);
    EXPECT_EQ(static_cast<long long>(fanout.viewerQueue), queue);

    const std::string protocol = readFile(std::string(DS_SOURCE_DIR) + "/docs/protocol.md");
    const std::string relayDoc = readFile(std::string(DS_SOURCE_DIR) + "/docs/relay.md");
    ASSERT_FALSE(protocol.empty());
    ASSERT_FALSE(relayDoc.empty());
    const std::string ttlText =
        "`[relay] command.ttl_ms`, default " + std::to_string(ttl / 1000) + " s";
    const std::string leaseText =
        "`[relay] command.lease_ms`, default " + std::to_string(lease / 1000) + " s";
    EXPECT_NE(protocol.find(ttlText), std::string::npos) << "docs/protocol.md lacks: " << ttlText;
    EXPECT_NE(protocol.find(leaseText), std::string::npos)
        << "docs/protocol.md lacks: " << leaseText;
    EXPECT_NE(protocol.find("at most " + std::to_string(policy.maxAttempts) + " times"),
              std::string::npos);
    EXPECT_NE(relayDoc.find("| `commandTtlMs` | `[relay] command.ttl_ms` | " + std::to_string(ttl) +
                            " |"),
              std::string::npos);
    EXPECT_NE(relayDoc.find("| `commandLeaseMs` | `[relay] command.lease_ms` | " +
                            std::to_string(lease) + " |"),
              std::string::npos);
    EXPECT_NE(
        relayDoc.find("| `viewerQueue` | `[relay] viewer_queue` | " + std::to_string(queue) + " |"),
        std::string::npos);
    // Drop-all, as core FanOut does (tests/core/fanout_test.cpp pins the behaviour).
    EXPECT_NE(relayDoc.find("drop-all"), std::string::npos);
    EXPECT_NE(protocol.find("loses all its undelivered frames"), std::string::npos);
    for (const std::string* doc : {&protocol, &relayDoc}) {
        EXPECT_EQ(doc->find("oldest is dropped"), std::string::npos);
        EXPECT_EQ(doc->find("drop the oldest"), std::string::npos);
        EXPECT_EQ(doc->find("(60 s)"), std::string::npos);  // the old TTL
    }
}

// TLS keys (docs/security-tls.md): the relay needs both files; the agent's keys are typed and
// warn when the relay URL is not wss://.
TEST(ConfigCheck, TlsKeys) {
    EXPECT_EQ(one("[relay]\ntls.cert = /etc/relay.pem\n"),
              "error: t.ini:2: [relay] tls.cert = '/etc/relay.pem': TLS needs both tls.cert and "
              "tls.key");
    EXPECT_EQ(one("[relay]\ntls.key = /etc/relay-key.pem\n"),
              "error: t.ini:2: [relay] tls.key = '/etc/relay-key.pem': TLS needs both tls.cert "
              "and tls.key");
    EXPECT_EQ(one("[agent]\ntls.ca = /etc/ca.pem\n"),
              "warning: t.ini:2: [agent] tls.ca = '/etc/ca.pem': has no effect: [agent] relay_url "
              "is not a wss:// URL");
    EXPECT_EQ(one("[agent]\nrelay_url = wss://relay:8443/ws/agent\ntls.insecure = maybe\n"),
              "error: t.ini:3: [agent] tls.insecure = 'maybe': is not a boolean (true|false)");

    Configuration c;
    c.loadString(
        "[relay]\ntls.cert = c.pem\ntls.key = k.pem\n[agent]\nrelay_url = "
        "wss://relay:8443/ws/agent\ntls.ca = ca.pem\ntls.insecure = true\n",
        "t.ini");
    EXPECT_TRUE(c.validate(nullptr).empty());
    EXPECT_EQ(c.relay().tlsCert, "c.pem");
    EXPECT_EQ(c.relay().tlsKey, "k.pem");
    EXPECT_EQ(c.agent().tlsCa, "ca.pem");
    EXPECT_TRUE(c.agent().tlsInsecure);
    EXPECT_FALSE(Configuration().agent().tlsInsecure);
    Configuration half;
    half.set("relay", "tls.cert", "c.pem");
    EXPECT_THROW(half.relay(), ConfigError);
}

}  // namespace

// Found by fuzzing (tests/fuzz/corpus/config/crash-nul-in-port.ini): strtoll stopped at a NUL
// byte, so "host:<NUL>" passed as port 0 and relay() then died in std::stoi with an uncaught
// std::invalid_argument instead of a ConfigError.
TEST(ConfigCheck, NulBytesInNumbersAreNotNumbers) {
    using namespace std::string_literals;
    EXPECT_EQ(one("[relay]\nlisten = host:\0\0\n"s),
              "error: t.ini:2: [relay] listen = 'host:\0\0': is not host:port (the port is not "
              "a number)"s);
    EXPECT_EQ(one("[agent]\nfps = 8\0x\n"s),
              "error: t.ini:2: [agent] fps = '8\0x': is not an integer"s);
    EXPECT_EQ(one("[agent]\nmonitors = 1,\0\n"s),
              "error: t.ini:2: [agent] monitors = '1,\0': is not 'all' or a comma-separated list "
              "of monitor indices (0..255)"s);

    Configuration c;
    c.loadString("[relay]\nlisten = host:\0\0\n"s, "t.ini");
    EXPECT_THROW(c.relay(), ConfigError);
}
