// Network faults between real processes (issue 17): the relay and agents are the deskstream
// binary in network namespaces joined by veth pairs (scripts/lib/netns.sh); a partition is a
// silent iptables DROP on both ends of a link, delay and loss are tc netem (or the tbf +
// random-drop fallback when the kernel has no netem). Bounds come from docs/relay.md and
// docs/agent.md; the margin each test allows for ASan on 2 busy cores is stated next to it.
#include "fault_harness.hpp"

#include <gtest/gtest.h>

#include <csignal>
#include <optional>

using namespace ds_faults;
using namespace std::chrono_literals;

namespace {

// Removes the state folders of this run once every test (and child process) is done.
class TempCleanup : public ::testing::Environment {
public:
    void TearDown() override { removeTempDirs(); }
};
const auto* const kCleanup = ::testing::AddGlobalTestEnvironment(new TempCleanup);

constexpr uint16_t kPort = 20080;  // inside the test's own namespace: always free
constexpr int kIntervalMs = 500;   // [heartbeat] interval_ms for relay and agent
constexpr int kMissed = 3;         // [heartbeat] missed_limit
constexpr int kBoundMs = kIntervalMs * (kMissed + 1);  // docs/relay.md: 2000 ms
// Allowed on top of the bound: one relay tick + one /api/desktops poll + scheduling of ASan
// builds on 2 busy cores. A broken heartbeat (no detection) waits for TCP's own timeouts,
// which are minutes, so the test still fails.
constexpr int kMarginMs = 1500;
const std::string kRelayFromAgents = "10.203.17.1";   // the relay's address on the agents' link
const std::string kRelayFromViewers = "10.203.17.5";  // ... on the viewers' link

class PartitionTest : public ::testing::Test {
protected:
    void SetUp() override {
        ns_.emplace("dsf" + std::to_string(::getpid() % 100000));
        std::vector<std::string> args = baseArgs(tempDir("relay"));
        args.insert(args.end(),
                    {"--role", "relay", "--set", "relay.listen=0.0.0.0:" + std::to_string(kPort),
                     "--set", "heartbeat.interval_ms=" + std::to_string(kIntervalMs), "--set",
                     "heartbeat.missed_limit=" + std::to_string(kMissed)});
        args.insert(args.end(), extraRelayArgs_.begin(), extraRelayArgs_.end());
        relay_.emplace(args, ns_->name('r'));
        here_.emplace(ns_->name('r'));  // this thread talks to the relay over the relay's loopback
        ASSERT_TRUE(waitHealthy("127.0.0.1", kPort, 30000)) << relay_->err();
    }
    void TearDown() override {
        agent_.reset();
        if (relay_) {
            relay_->signal(SIGTERM);
            EXPECT_EQ(relay_->wait(15s), 0) << relay_->err();
        }
        here_.reset();
        relay_.reset();
        ns_.reset();
    }

    void startAgent(const std::string& clientId, std::vector<std::string> extra = {}) {
        std::vector<std::string> args = baseArgs(tempDir("agent-" + clientId));
        args.insert(
            args.end(),
            {"--role", "agent", "--set",
             "agent.relay_url=ws://" + kRelayFromAgents + ":" + std::to_string(kPort) + "/ws/agent",
             "--set", "agent.client_id=" + clientId, "--set", "agent.token=" + mint(true, clientId),
             "--set", "heartbeat.interval_ms=" + std::to_string(kIntervalMs), "--set",
             "heartbeat.missed_limit=" + std::to_string(kMissed)});
        args.insert(args.end(), extra.begin(), extra.end());
        agent_.emplace(args, ns_->name('a'));
    }
    bool registered(const std::string& id) { return desktop("127.0.0.1", kPort, id) != nullptr; }
    // The agent's adaptive quality from the relay's stats (docs/relay.md); -1 when not yet known.
    int quality(const std::string& id) {
        Json d = desktop("127.0.0.1", kPort, id);
        if (!d || !d->has("stats")) return -1;
        auto s = d->getObject("stats");
        return s && s->has("quality") && !s->isNull("quality") ? s->getValue<int>("quality") : -1;
    }
    int viewerCount(const std::string& id) {
        Json d = desktop("127.0.0.1", kPort, id);
        return d ? d->optValue<int>("viewers", -1) : -1;
    }

    void checkDeadLinkDetection(bool streaming);
    std::vector<std::string> extraRelayArgs_;
    std::optional<Namespaces> ns_;
    std::optional<Process> relay_;
    std::optional<InNamespace> here_;
    std::optional<Process> agent_;
};

// A silent link (no FIN, no RST): the relay closes the agent 4008 and removes its registration
// within interval × (missed + 1); the agent detects it within the same bound, backs off, and
// is registered again within 10 s of the link returning.
// The agent is idle (no viewer): see DISABLED_AgentDetectsADeadLinkWhileStreaming for the
// streaming case, which does not hold yet.
TEST_F(PartitionTest, SilentAgentLinkIsDetectedByBothSidesAndTheAgentComesBack) {
    checkDeadLinkDetection(false);
}

// While frames are being sent the socket fills and a frame send blocks; the agent must still
// see the silent link within interval x (missed + 1) plus its control-send wait (half an
// interval). Before the fix it noticed only when the blocked send timed out (+21 s).
TEST_F(PartitionTest, AgentDetectsADeadLinkWhileStreaming) { checkDeadLinkDetection(true); }

void PartitionTest::checkDeadLinkDetection(bool streaming) {
    startAgent("part-pc");
    ASSERT_TRUE(eventually([&] { return registered("part-pc"); }, 30000)) << agent_->err();
    std::optional<Viewer> viewer;
    if (streaming) {
        viewer.emplace("", "127.0.0.1", kPort, "part-pc");  // frames in flight while the link dies
        ASSERT_TRUE(eventually([&] { return viewer->frames() > 3; }, 15000)) << viewer->error();
    }

    size_t relayLog = relay_->errSize(), agentLog = agent_->errSize();
    auto t0 = Clock::now();
    ns_->partition('a');
    ASSERT_TRUE(eventually([&] { return !registered("part-pc"); }, kBoundMs + kMarginMs))
        << "registration still there " << msSince(t0) << " ms after the partition";
    long relayMs = msSince(t0);
    EXPECT_GE(relayMs, kIntervalMs * kMissed - kIntervalMs)
        << "closed before missed pongs could add up";
    EXPECT_GE(relay_->waitForLog("no pong for " + std::to_string(kBoundMs) + " ms, closing 4008",
                                 1000, relayLog),
              0)
        << relay_->err().substr(relayLog);
    ASSERT_GE(agent_->waitForLog("heartbeat timeout", kBoundMs + kMarginMs, agentLog), 0)
        << agent_->err().substr(agentLog);
    long agentMs = msSince(t0);  // an upper estimate: the log is polled after the relay's check
    EXPECT_LE(agentMs, kBoundMs + kMarginMs);
    RecordProperty("relay_detect_ms", std::to_string(relayMs));
    RecordProperty("agent_detect_ms_upper", std::to_string(agentMs));
    printf(
        "partition: relay removed the registration after %ld ms, agent closed by %ld ms (bound "
        "%d)\n",
        relayMs, agentMs, kBoundMs);

    std::this_thread::sleep_for(3s);  // the agent retries into the dead link and backs off
    EXPECT_NE(agent_->err().find("reconnecting", agentLog), std::string::npos)
        << agent_->err().substr(agentLog);
    auto t1 = Clock::now();
    ns_->heal('a');
    ASSERT_TRUE(eventually([&] { return registered("part-pc"); }, 10000))
        << "not registered again 10 s after the link returned:\n"
        << agent_->err().substr(agentLog);
    long backMs = msSince(t1);
    RecordProperty("reregister_ms", std::to_string(backMs));
    printf("partition: agent registered again %ld ms after the link returned (bound 10000)\n",
           backMs);
    Viewer again("", "127.0.0.1", kPort, "part-pc");
    EXPECT_TRUE(eventually([&] { return again.frames() > 3; }, 15000))
        << "streaming did not resume";
}

// The seed's manual test 1 ("network off for 2 minutes" against a 90 s bound), scaled to a 2 s
// bound: the link is down for 3 × the bound; both sides detect it within the bound, the agent
// keeps retrying with backoff, and after the link returns it re-registers within 10 s and
// frames flow again.
TEST_F(PartitionTest, SeedHeartbeatNetworkOffLongerThanTheBound) {
    startAgent("seed-pc");
    ASSERT_TRUE(eventually([&] { return registered("seed-pc"); }, 30000)) << agent_->err();
    size_t agentLog = agent_->errSize();
    auto t0 = Clock::now();
    ns_->partition('a');
    ASSERT_TRUE(eventually([&] { return !registered("seed-pc"); }, kBoundMs + kMarginMs));
    long relayMs = msSince(t0);
    ASSERT_GE(agent_->waitForLog("heartbeat timeout", kBoundMs + kMarginMs - relayMs, agentLog), 0)
        << "agent did not detect the dead link within the bound:\n"
        << agent_->err().substr(agentLog);
    long agentMs = msSince(t0);
    EXPECT_LE(agentMs, kBoundMs + kMarginMs);
    std::this_thread::sleep_until(t0 + std::chrono::milliseconds(3 * kBoundMs));
    EXPECT_FALSE(registered("seed-pc")) << "a registration appeared through a dead link";
    auto t1 = Clock::now();
    ns_->heal('a');
    ASSERT_TRUE(eventually([&] { return registered("seed-pc"); }, 10000))
        << agent_->err().substr(agentLog);
    long backMs = msSince(t1);
    printf(
        "seed heartbeat: relay %ld ms, agent %ld ms (bound %d), back %ld ms after the link "
        "returned\n",
        relayMs, agentMs, kBoundMs, backMs);
    Viewer viewer("", "127.0.0.1", kPort, "seed-pc");
    EXPECT_TRUE(eventually([&] { return viewer.frames() > 3; }, 15000))
        << "streaming did not resume";
}

// The agent's window waits for every live viewer's acks (the slowest viewer drives backpressure,
// docs/protocol.md) until the viewer misses viewer_ack_timeout_ms and is skipped. With the default
// (2 s) a viewer behind a silent link holds a 10 fps agent's window of 10 frames until then: the
// relay's socket buffers keep taking its frames, so nothing else tells it apart from a slow one.
// This fixture sets the timeout to 500 ms, the bound the healthy viewer's gap is checked against.
class ViewerPartitionTest : public PartitionTest {
protected:
    static constexpr int kAckTimeoutMs = 500;
    void SetUp() override {
        extraRelayArgs_ = {"--set", "relay.viewer_ack_timeout_ms=" + std::to_string(kAckTimeoutMs)};
        PartitionTest::SetUp();
    }
};

// A viewer behind a silent link is closed within the heartbeat bound, and the viewer on a
// healthy link keeps its frame rate meanwhile: its writes are never blocked by the dead one's,
// and the agent waits for the dead one's acks only for the ack timeout.
TEST_F(ViewerPartitionTest, ViewerBehindAPartitionIsDroppedWithoutSlowingOthers) {
    startAgent("fan-pc", {"--set", "agent.fps=10"});
    ASSERT_TRUE(eventually([&] { return registered("fan-pc"); }, 30000)) << agent_->err();
    Viewer healthy("", "127.0.0.1", kPort, "fan-pc");
    Viewer behind(ns_->name('v'), kRelayFromViewers, kPort, "fan-pc");
    ASSERT_TRUE(eventually([&] { return healthy.frames() > 5 && behind.frames() > 5; }, 15000))
        << healthy.error() << " / " << behind.error();
    ASSERT_TRUE(eventually([&] { return viewerCount("fan-pc") == 2; }, 5000));

    uint64_t f0 = healthy.frames();
    std::this_thread::sleep_for(3s);
    double before = (healthy.frames() - f0) / 3.0;
    healthy.takeMaxGapMs();

    auto t0 = Clock::now();
    uint64_t f1 = healthy.frames();
    ns_->partition('v');
    ASSERT_TRUE(eventually([&] { return viewerCount("fan-pc") == 1; }, kBoundMs + kMarginMs))
        << "the partitioned viewer is still counted " << msSince(t0) << " ms later";
    long dropMs = msSince(t0);
    std::this_thread::sleep_until(t0 + 3s);
    double during = (healthy.frames() - f1) / (msSince(t0) / 1000.0);
    long gap = healthy.takeMaxGapMs();
    printf(
        "viewer partition: dropped after %ld ms (bound %d); healthy viewer %.1f fps before, %.1f "
        "during, "
        "longest gap %ld ms\n",
        dropMs, kBoundMs, before, during, gap);
    // 70 % of the rate and no gap over 1 s (ack timeout 500 ms + a frame period + margin for
    // 2 busy cores): a writer blocked by the dead viewer would stall the healthy one for
    // send_timeout (10 s) or until the heartbeat (2 s), and so would an agent window that waited
    // for the dead viewer past the ack timeout.
    EXPECT_GE(during, 0.7 * before);
    EXPECT_LT(gap, 1000);
    EXPECT_GT(before, 3.0) << "the stream was too slow to tell anything";
}

// Delay and loss on the agent's link (200 ms ± 50 each way, 2 % loss) push ack latencies over
// adapt.high_latency_ms (500): quality steps down; once the link is clean it climbs back.
// encoding = full: the rule (ack latency -> quality) is the same in both encodings, but damage
// frames of the moving picture are a few KB, so the link's queueing adds little to the 400 ms
// round trip and the latency hovers at the threshold (measured: quality stayed at 90).
TEST_F(PartitionTest, DelayAndLossDriveAdaptiveQualityDownAndBackUp) {
    startAgent("adapt-pc", {"--set", "agent.fps=10", "--set", "agent.quality=75", "--set",
                            "agent.quality.min=30", "--set", "agent.quality.max=90", "--set",
                            "agent.encoding=full"});
    ASSERT_TRUE(eventually([&] { return registered("adapt-pc"); }, 30000)) << agent_->err();
    Viewer viewer("", "127.0.0.1", kPort, "adapt-pc");
    // A clean link: latency < 100 ms, quality climbs to the top of its range.
    ASSERT_TRUE(eventually([&] { return quality("adapt-pc") >= 85; }, 30000))
        << "quality " << quality("adapt-pc") << " on a clean link";
    int high = quality("adapt-pc");
    auto t0 = Clock::now();
    ns_->impair('a', 200, 50, 2);
    int low = high;
    bool down = eventually(
        [&] {
            int q = quality("adapt-pc");
            if (q >= 0) low = std::min(low, q);
            return low <= high - 20;
        },
        40000, 250);
    long downMs = msSince(t0);
    ns_->clear('a');
    ASSERT_TRUE(down) << "quality only went from " << high << " to " << low
                      << " under delay and loss";
    auto t1 = Clock::now();
    ASSERT_TRUE(eventually([&] { return quality("adapt-pc") >= 85; }, 40000, 250))
        << "quality stayed at " << quality("adapt-pc") << " after the link was clean";
    long upMs = msSince(t1);
    printf("adaptive quality: %d -> %d in %ld ms under delay+loss, back to >= 85 in %ld ms\n", high,
           low, downMs, upMs);
}

}  // namespace
