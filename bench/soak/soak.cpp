// Soak under random faults (issue 17): one relay, 5 agents and 20 viewers (the deskstream
// binary in network namespaces, tests/faults/fault_harness) for a configurable time, with
// agent kills, viewer stalls, relay restarts and partitions of the agents' and viewers' links.
// Every sample period it records the relay's descriptors, threads, RSS and the registration
// count, and at the end prints the RSS and RssAnon slopes. Exit status 1 on a leak (RssAnon slope
// above 1 MB per 10 min after warm-up), a dead agent's registration that outlives the TTL, or a viewer that
// stops receiving for good, or a command accepted (202) that is not `done` at the end (lost);
// 2 on bad arguments. It posts one command a second through the relay's HTTP API (refusals while
// the relay restarts are counted, not failures) and reads every accepted one back at the end.
//
//   fault_soak [--seconds 600] [--sample-seconds 10] [--warmup-seconds 30]
//              [--relay-restart-seconds 120] [--seed N] [--no-faults 1] [--leak-check 0]
// --leak-check 0 prints the RSS slope without failing on it (sanitizer builds, whose RSS keeps
// rising for minutes after start; docs/reliability.md).
// --no-faults 1 runs the same load without faults: the baseline for the RSS slope (an ASan
// build's allocator and stack depot grow with traffic alone; see docs/reliability.md).
// SIGINT/SIGTERM end the fault loop early; the checks and the clean-up still run.
#include "fault_harness.hpp"

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <algorithm>
#include <atomic>
#include <map>
#include <optional>
#include <random>
#include <string>

using namespace ds_faults;
using namespace std::chrono_literals;

namespace {

constexpr uint16_t kPort = 20080;
constexpr int kAgents = 5;
constexpr int kViewers = 20;
constexpr int kViewersBehindLink = 4;  // in the viewers' namespace, reached over a veth pair
constexpr int kBoundMs = 500 * (3 + 1);
constexpr int kTtlMs = 5000;  // [relay] registration.ttl_ms
constexpr long kLeakKbPer10Min = 1024;
std::atomic<bool> gStop{false};
extern "C" void onStopSignal(int) { gStop = true; }

struct Sample {
    long t = 0;           // s since start
    int segment = 0;      // relay lifetime
    long sinceStart = 0;  // s since this relay started
    long fds = 0, threads = 0, rssKb = 0;
    long anonKb = 0;  // RssAnon: heap and stacks; RSS also counts file pages (code, libraries)
    int registrations = 0;
};

long procField(pid_t pid, const char* key) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    size_t n = strlen(key);
    while (std::getline(f, line))
        if (line.compare(0, n, key) == 0) return std::atol(line.c_str() + n);
    return -1;
}
long fdCount(pid_t pid) {
    std::error_code ec;
    long n = 0;
    for (auto it = std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec);
         !ec && it != std::filesystem::directory_iterator(); ++it)
        ++n;
    return n;
}
int registrationCount() {
    auto r = httpGet("127.0.0.1", kPort, "/api/desktops");
    Json o = parse(r.second);
    if (r.first != 200 || !o || !o->has("desktops")) return -1;
    return static_cast<int>(o->getArray("desktops")->size());
}

// Least-squares slope of a memory figure (`kb`: RSS or RssAnon) over time with one intercept
// per relay lifetime, so restarts (back to the start value) do not read as a shrink or a leak.
// KB per second.
std::optional<double> pooledSlope(const std::vector<Sample>& s, long Sample::*kb) {
    std::map<int, std::pair<double, double>> mean;  // segment -> (mean t, mean rss)
    std::map<int, int> count;
    for (auto& x : s) {
        mean[x.segment].first += x.t;
        mean[x.segment].second += x.*kb;
        ++count[x.segment];
    }
    for (auto& m : mean) {
        m.second.first /= count[m.first];
        m.second.second /= count[m.first];
    }
    double sxy = 0, sxx = 0;
    for (auto& x : s) {
        double dt = x.t - mean[x.segment].first;
        sxy += dt * (x.*kb - mean[x.segment].second);
        sxx += dt * dt;
    }
    if (sxx <= 0) return std::nullopt;
    return sxy / sxx;
}

}  // namespace

int main(int argc, char** argv) {
    long seconds = 600, sampleSeconds = 10, warmupSeconds = 30, restartSeconds = 120;
    bool faults = true, leakCheck = true;
    unsigned seed = static_cast<unsigned>(::time(nullptr));
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string k = argv[i];
        long v = std::atol(argv[i + 1]);
        if (k == "--seconds" && v > 0)
            seconds = v;
        else if (k == "--sample-seconds" && v > 0)
            sampleSeconds = v;
        else if (k == "--warmup-seconds" && v >= 0)
            warmupSeconds = v;
        else if (k == "--relay-restart-seconds" && v > 0)
            restartSeconds = v;
        else if (k == "--no-faults")
            faults = v == 0;
        else if (k == "--leak-check")
            leakCheck = v != 0;
        else if (k == "--seed")
            seed = static_cast<unsigned>(v);
        else {
            fprintf(stderr,
                    "usage: fault_soak [--seconds N] [--sample-seconds N] [--warmup-seconds N] "
                    "[--relay-restart-seconds N] [--seed N] [--no-faults 1] [--leak-check 0]\n");
            return 2;
        }
    }
    if (argc % 2 == 0) {
        fprintf(stderr, "fault_soak: option %s needs a value\n", argv[argc - 1]);
        return 2;
    }
    printf(
        "soak: %s, %ld s, sample every %ld s, warm-up %ld s, relay restart at most every %ld s, "
        "seed %u\n",
        faults ? "random faults" : "no faults (baseline)", seconds, sampleSeconds, warmupSeconds,
        restartSeconds, seed);
    std::signal(SIGINT, onStopSignal);
    std::signal(SIGTERM, onStopSignal);
    fflush(stdout);
    std::mt19937 rng(seed);
    int failures = 0;
    auto fail = [&](const std::string& why) {
        ++failures;
        printf("FAIL: %s\n", why.c_str());
        fflush(stdout);
    };

    // ASan holds freed memory in a quarantine (256 MB by default) that would read as growth;
    // keep it small in the processes under test so RSS shows what the code keeps.
    {
        const char* a = std::getenv("ASAN_OPTIONS");
        std::string opts = a ? a : "";
        opts += std::string(opts.empty() ? "" : ":") +
                "quarantine_size_mb=4:thread_local_quarantine_size_kb=64";
        ::setenv("ASAN_OPTIONS", opts.c_str(), 1);
    }
    try {
        Namespaces ns("dss" + std::to_string(::getpid() % 100000));
        InNamespace here(ns.name('r'));
        std::string relayState = tempDir("soak-relay");
        std::vector<std::string> relayArgs = baseArgs(relayState);
        relayArgs.insert(
            relayArgs.end(),
            {"--role", "relay", "--set", "relay.listen=0.0.0.0:" + std::to_string(kPort), "--set",
             "heartbeat.interval_ms=500", "--set", "heartbeat.missed_limit=3", "--set",
             "relay.registration.ttl_ms=" + std::to_string(kTtlMs), "--set",
             "relay.reaper.interval_ms=1000", "--set", "relay.command.lease_ms=5000", "--set",
             "host.log.level=warning"});
        std::optional<Process> relay;
        int segment = 0;
        auto segmentStart = Clock::now();
        auto startRelay = [&] {
            relay.emplace(relayArgs, ns.name('r'));
            ++segment;
            segmentStart = Clock::now();
            if (!waitHealthy("127.0.0.1", kPort, 30000))
                throw std::runtime_error("relay did not start: " + relay->err());
        };
        startRelay();

        std::vector<std::optional<Process>> agents(kAgents);
        std::vector<std::string> agentStates;
        auto agentId = [](int i) { return "soak-pc-" + std::to_string(i); };
        auto startAgent = [&](int i) {
            std::vector<std::string> args = baseArgs(agentStates[static_cast<size_t>(i)]);
            args.insert(args.end(),
                        {"--role",
                         "agent",
                         "--set",
                         "agent.relay_url=ws://10.203.17.1:" + std::to_string(kPort) + "/ws/agent",
                         "--set",
                         "agent.client_id=" + agentId(i),
                         "--set",
                         "agent.token=" + mint(true, agentId(i)),
                         "--set",
                         "agent.fps=4",
                         "--set",
                         "capture.synthetic.width=320",
                         "--set",
                         "capture.synthetic.height=200",
                         "--set",
                         "heartbeat.interval_ms=500",
                         "--set",
                         "heartbeat.missed_limit=3",
                         "--set",
                         "host.log.level=warning"});
            agents[static_cast<size_t>(i)].emplace(args, ns.name('a'));
        };
        for (int i = 0; i < kAgents; ++i) {
            agentStates.push_back(tempDir("soak-agent-" + std::to_string(i)));
            startAgent(i);
        }
        if (!eventually([&] { return registrationCount() == kAgents; }, 60000))
            throw std::runtime_error("the 5 agents did not register");

        std::vector<std::unique_ptr<Viewer>> viewers(kViewers);
        auto viewerNs = [&](int v) {
            return v >= kViewers - kViewersBehindLink ? ns.name('v') : std::string();
        };
        auto viewerHost = [&](int v) {
            return v >= kViewers - kViewersBehindLink ? "10.203.17.5" : "127.0.0.1";
        };
        auto openViewer = [&](int v) {
            viewers[static_cast<size_t>(v)].reset();
            viewers[static_cast<size_t>(v)] =
                std::make_unique<Viewer>(viewerNs(v), viewerHost(v), kPort, agentId(v % kAgents));
        };
        for (int v = 0; v < kViewers; ++v) openViewer(v);
        long replaced = 0;

        std::vector<Sample> samples;
        auto t0 = Clock::now();
        auto nextSample = t0;
        auto nextFault = t0 + 5s;
        std::vector<long> partitionReconnectMs;
        long faultsDone = 0;
        // Commands: one a second to the next agent; accepted ids are read back at the end.
        std::vector<std::pair<std::string, std::string>> acceptedCommands;  // (desktop, id)
        long commandsRefused = 0;
        auto nextCommand = t0;
        auto postCommand = [&] {
            long n = static_cast<long>(acceptedCommands.size()) + commandsRefused;
            std::string desk = agentId(static_cast<int>(n % kAgents));
            std::string id = "soak-cmd-" + std::to_string(n);
            auto r = httpPost(
                "127.0.0.1", kPort, "/api/desktops/" + desk + "/commands",
                "{\"command\":{\"type\":\"request_keyframe\"},\"commandId\":\"" + id + "\"}");
            if (r.first == 202)
                acceptedCommands.emplace_back(desk, id);
            else
                ++commandsRefused;
        };
        while (msSince(t0) < seconds * 1000 && !gStop) {
            if (Clock::now() >= nextCommand) {
                postCommand();
                nextCommand += 1s;
                if (nextCommand < Clock::now()) nextCommand = Clock::now() + 1s;
            }
            // Closed viewers (relay restart, heartbeat after a stall) come back, as a browser does.
            for (int v = 0; v < kViewers; ++v)
                if (viewers[static_cast<size_t>(v)]->closed()) {
                    openViewer(v);
                    ++replaced;
                }
            if (Clock::now() >= nextSample) {
                Sample s;
                s.t = msSince(t0) / 1000;
                s.segment = segment;
                s.sinceStart = msSince(segmentStart) / 1000;
                s.fds = fdCount(relay->pid());
                s.threads = procField(relay->pid(), "Threads:");
                s.rssKb = procField(relay->pid(), "VmRSS:");
                s.anonKb = procField(relay->pid(), "RssAnon:");
                s.registrations = registrationCount();
                samples.push_back(s);
                printf(
                    "sample t=%lds relay#%d fds=%ld threads=%ld rss=%ldKB anon=%ldKB "
                    "registrations=%d\n",
                    s.t, s.segment, s.fds, s.threads, s.rssKb, s.anonKb, s.registrations);
                fflush(stdout);
                nextSample += std::chrono::seconds(sampleSeconds);
            }
            if (Clock::now() < nextFault || !faults) {
                std::this_thread::sleep_for(100ms);
                continue;
            }
            ++faultsDone;
            int kind = static_cast<int>(rng() % 100);
            if (kind < 30) {  // an agent killed: its registration must go within the TTL
                int i = static_cast<int>(rng() % kAgents);
                agents[static_cast<size_t>(i)]->signal(SIGKILL);
                agents[static_cast<size_t>(i)]->wait(10s);
                auto k0 = Clock::now();
                if (!eventually([&] { return desktop("127.0.0.1", kPort, agentId(i)) == nullptr; },
                                kTtlMs, 50))
                    fail("registration of killed " + agentId(i) + " outlived the TTL (" +
                         std::to_string(kTtlMs) + " ms)");
                printf("fault: killed %s, registration gone after %ld ms\n", agentId(i).c_str(),
                       msSince(k0));
                startAgent(i);
            } else if (kind < 55) {  // a viewer stalls (stops reading) for 3 s
                int v = static_cast<int>(rng() % kViewers);
                viewers[static_cast<size_t>(v)]->stopReading();
                std::this_thread::sleep_for(3s);
                viewers[static_cast<size_t>(v)]->resumeReading();
                printf("fault: viewer %d stalled 3 s\n", v);
            } else if (kind < 70) {  // the agents' link silently drops for 3 s
                auto p0 = Clock::now();
                ns.partition('a');
                bool gone =
                    eventually([&] { return registrationCount() == 0; }, kBoundMs + 1500, 50);
                long goneMs = msSince(p0);
                std::this_thread::sleep_until(p0 + 3s);
                ns.heal('a');
                auto h0 = Clock::now();
                if (!gone)
                    fail("registrations survived a partition for " + std::to_string(goneMs) +
                         " ms");
                if (!eventually([&] { return registrationCount() == kAgents; }, 10000, 50))
                    fail("agents not all back 10 s after a partition");
                partitionReconnectMs.push_back(msSince(h0));
                printf(
                    "fault: agents' link down 3 s: registrations gone after %ld ms, all back %ld "
                    "ms after\n",
                    goneMs, msSince(h0));
            } else if (kind < 85) {  // the viewers' link silently drops for 3 s
                ns.partition('v');
                std::this_thread::sleep_for(3s);
                ns.heal('v');
                printf("fault: viewers' link down 3 s\n");
            } else if (msSince(segmentStart) < restartSeconds * 1000) {  // too soon for a restart
                int v = static_cast<int>(rng() % kViewers);
                viewers[static_cast<size_t>(v)]->stopReading();
                std::this_thread::sleep_for(3s);
                viewers[static_cast<size_t>(v)]->resumeReading();
                printf("fault: viewer %d stalled 3 s\n", v);
            } else {  // the relay restarts (long lifetimes between, so its RSS trend is readable)
                relay->signal(SIGTERM);
                int st = relay->wait(15s);
                if (st != 0) fail("relay stop exit status " + std::to_string(st));
                startRelay();
                printf("fault: relay restarted (relay #%d)\n", segment);
            }
            fflush(stdout);
            nextFault = Clock::now() + std::chrono::milliseconds(2000 + rng() % 4000);
        }

        // Calm: every agent back (the agent's breaker may hold it 60 s) and every viewer receiving.
        if (!eventually([&] { return registrationCount() == kAgents; }, 90000, 200))
            fail("not all agents registered after the faults stopped: " +
                 std::to_string(registrationCount()));
        for (int v = 0; v < kViewers; ++v)
            if (viewers[static_cast<size_t>(v)]->closed()) openViewer(v), ++replaced;
        std::vector<uint64_t> base(kViewers);
        for (int v = 0; v < kViewers; ++v)
            base[static_cast<size_t>(v)] = viewers[static_cast<size_t>(v)]->frames();
        auto c0 = Clock::now();
        for (int v = 0; v < kViewers; ++v) {
            bool ok = eventually(
                [&] {
                    if (viewers[static_cast<size_t>(v)]->closed()) {
                        openViewer(v);
                        ++replaced;
                        base[static_cast<size_t>(v)] = 0;
                    }
                    return viewers[static_cast<size_t>(v)]->frames() > base[static_cast<size_t>(v)];
                },
                std::max(1000L, 30000 - msSince(c0)), 50);
            if (!ok) fail("viewer " + std::to_string(v) + " stopped receiving for good");
        }

        // Every accepted command is done (the lease, 5 s here, redelivers one sent into a dead
        // link; an agent killed with a command pending gets it when it registers again).
        long commandsDone = 0, commandsTwice = 0;
        std::map<std::string, long> notDone;  // status -> count
        auto c1 = Clock::now();
        for (auto& [desk, id] : acceptedCommands) {
            std::string status;
            long attempts = 0;
            eventually(
                [&] {
                    auto r =
                        httpGet("127.0.0.1", kPort, "/api/desktops/" + desk + "/commands/" + id);
                    Json o = parse(r.second);
                    status = r.first == 200 && o ? o->optValue<std::string>("status", "?")
                                                 : "http " + std::to_string(r.first);
                    attempts = o ? o->optValue<long>("attempts", 0) : 0;
                    return status == "done" || status == "failed" || status == "expired";
                },
                std::max(1000L, 60000 - msSince(c1)), 200);
            if (status == "done")
                ++commandsDone;
            else
                ++notDone[status];
            if (attempts > 1) ++commandsTwice;
        }
        printf(
            "commands: %zu accepted, %ld refused (relay restarting), %ld done, %ld delivered "
            "more than once (lease ran out in a partition)",
            acceptedCommands.size(), commandsRefused, commandsDone, commandsTwice);
        for (auto& [st, n] : notDone) printf(", %ld %s", n, st.c_str());
        printf("\n");
        if (commandsDone != static_cast<long>(acceptedCommands.size()))
            fail(std::to_string(acceptedCommands.size() - static_cast<size_t>(commandsDone)) +
                 " accepted commands not done (lost)");

        // Leak check over samples after warm-up in each relay lifetime.
        std::vector<Sample> warm;
        for (auto& s : samples)
            if (s.sinceStart >= warmupSeconds) warm.push_back(s);
        // The verdict is on RssAnon (heap, stacks): RSS also counts pages of the executable,
        // the libraries and the SQLite files as they are first touched, which is not a leak.
        auto slope = pooledSlope(warm, &Sample::anonKb);
        auto rssSlope = pooledSlope(warm, &Sample::rssKb);
        long maxFds = 0, maxThreads = 0;
        for (auto& s : samples)
            maxFds = std::max(maxFds, s.fds), maxThreads = std::max(maxThreads, s.threads);
        if (slope && rssSlope) {
            double per10Min = *slope * 600.0;
            printf(
                "RSS slope: %.1f KB per 10 min; RssAnon slope: %.1f KB per 10 min over %zu "
                "samples after warm-up (limit %ld, on RssAnon)\n",
                *rssSlope * 600.0, per10Min, warm.size(), kLeakKbPer10Min);
            if (!leakCheck)
                printf("RssAnon slope not checked (--leak-check 0)\n");
            else if (per10Min > kLeakKbPer10Min)
                fail("RssAnon grows " + std::to_string(per10Min) + " KB per 10 min");
        } else {
            printf(
                "RSS slope: not enough samples after warm-up (%zu); run longer for the leak "
                "check\n",
                warm.size());
        }
        long avgReconnect = 0;
        for (long m : partitionReconnectMs) avgReconnect += m;
        long maxReconnect =
            partitionReconnectMs.empty()
                ? 0
                : *std::max_element(partitionReconnectMs.begin(), partitionReconnectMs.end());
        printf(
            "summary: %ld faults, %zu agent partitions (reconnect avg %ld ms, max %ld ms), viewers "
            "reopened %ld, "
            "max relay fds %ld, max threads %ld\n",
            faultsDone, partitionReconnectMs.size(),
            partitionReconnectMs.empty()
                ? 0
                : avgReconnect / static_cast<long>(partitionReconnectMs.size()),
            maxReconnect, replaced, maxFds, maxThreads);
        viewers.clear();
        for (auto& a : agents) a.reset();
        relay->signal(SIGTERM);
        int st = relay->wait(15s);
        if (st != 0)
            fail("relay exit status " + std::to_string(st) + ": " + relay->err().substr(0, 4000));
    } catch (const std::exception& e) {
        fail(std::string("harness: ") + e.what());
    }
    if (!failures) removeTempDirs();  // kept after a failure: the processes' logs are there
    printf("soak: %s\n", failures ? "FAILED" : "passed");
    return failures ? 1 : 0;
}
