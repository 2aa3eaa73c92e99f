// ds_relay_harness: a relay process for the fan-out benchmark (bench/relay/README.md).
//
//   ds_relay_harness [--port 0] [--state-dir DIR] [--store-plugin FILE.so] [--max-viewers 1000]
//                    [--viewer-queue 3] [--max-seconds 120] [--log warning]
//
// deskstream_relay with the real SQLite store plugin (loaded through its entry symbol), on
// 127.0.0.1, with the relay's default options except max_viewers (the benchmark needs more than
// the default 200 at once, plus headroom). Used until the `deskstream` binary runs the relay
// itself (`--role relay`). Prints "PORT <n>" on stdout once listening; stops on SIGINT/SIGTERM
// or after --max-seconds (a benchmark never leaves a server behind).
#include "deskstream/relay/relay.hpp"
#include "ds_test/plugin_fixture.hpp"

#include <Poco/AutoPtr.h>
#include <Poco/ConsoleChannel.h>
#include <Poco/Logger.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

namespace {

std::atomic<bool> gStop{false};
void onSignal(int) { gStop = true; }

[[noreturn]] void usage(const std::string &error) {
    if (!error.empty()) std::fprintf(stderr, "ds_relay_harness: %s\n\n", error.c_str());
    std::fprintf(stderr, "usage: ds_relay_harness [--port 0] [--state-dir DIR] [--store-plugin FILE.so]\n"
                         "         [--max-viewers 1000] [--viewer-queue 3] [--max-seconds 120] [--log warning]\n");
    std::exit(2);
}

int number(const std::string &flag, const std::string &v, long lo, long hi) {
    char *end = nullptr;
    long n = std::strtol(v.c_str(), &end, 10);
    if (v.empty() || *end != '\0' || n < lo || n > hi)
        usage(flag + ": '" + v + "' is not a number in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
    return static_cast<int>(n);
}

}  // namespace

int main(int argc, char **argv) {
    int port = 0, maxViewers = 1000, viewerQueue = 3, maxSeconds = 120;
    std::string stateDir, plugin = ds_test::pluginPath("store", "sqlite"), logLevel = "warning";
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--help" || a == "-h") usage("");
        if (i + 1 >= argc) usage(a + " needs a value");
        std::string v = argv[++i];
        if (a == "--port") port = number(a, v, 0, 65535);
        else if (a == "--state-dir") stateDir = v;
        else if (a == "--store-plugin") plugin = v;
        else if (a == "--max-viewers") maxViewers = number(a, v, 1, 10000);
        else if (a == "--viewer-queue") viewerQueue = number(a, v, 1, 100);
        else if (a == "--max-seconds") maxSeconds = number(a, v, 1, 86400);
        else if (a == "--log") logLevel = v;
        else usage("unknown option " + a);
    }
    bool ownDir = false;
    if (stateDir.empty()) {
        stateDir = (std::filesystem::temp_directory_path() /
                    ("ds-relay-bench-" + std::to_string(::getpid()))).string();
        ownDir = true;
    }
    std::filesystem::create_directories(stateDir);

    Poco::Logger::root().setChannel(Poco::AutoPtr<Poco::Channel>(new Poco::ConsoleChannel));
    try {
        Poco::Logger::root().setLevel(logLevel);
    } catch (const std::exception &) {
        usage("--log: unknown level '" + logLevel + "'");
    }

    int rc = 0;
    try {
        ds_test::TestHost host;
        ds_test::LoadedPlugin store(plugin);
        if (store.descriptor().kind != DS_KIND_STORE) throw std::runtime_error(plugin + " is not a store plugin");
        ds_test::TestConfig config("store.sqlite", {{"path", stateDir + "/relay.db"}});
        void *instance = nullptr;
        char err[512] = {0};
        if (store.store().create(host.api(), config.get(), &instance, err, sizeof err) != DS_OK)
            throw std::runtime_error("the store plugin could not open " + stateDir + "/relay.db: " + err);
        {
            deskstream::relay::RelayOptions options;
            options.listen = "127.0.0.1:" + std::to_string(port);
            options.max_viewers = maxViewers;
            options.viewer_queue = viewerQueue;
            options.http_max_threads = 2 * maxViewers + 16;  // reader per WebSocket, plus headroom
            options.http_max_queued = maxViewers + 16;
            deskstream::relay::Relay relay(options, &store.store(), instance, Poco::Logger::get("relay"));
            relay.start();
            std::signal(SIGINT, onSignal);
            std::signal(SIGTERM, onSignal);
            std::printf("PORT %u\n", static_cast<unsigned>(relay.port()));
            std::fflush(stdout);
            const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(maxSeconds);
            while (!gStop.load() && std::chrono::steady_clock::now() < deadline)
                std::this_thread::sleep_for(std::chrono::milliseconds(50));
            relay.stop();
            for (const auto &[name, value] : relay.counters())
                if (value) std::fprintf(stderr, "ds_relay_harness: %s = %llu\n", name.c_str(),
                                        static_cast<unsigned long long>(value));
        }
        store.store().destroy(instance);
    } catch (const std::exception &e) {
        std::fprintf(stderr, "ds_relay_harness: %s\n", e.what());
        rc = 1;
    }
    if (ownDir) {
        std::error_code ec;
        std::filesystem::remove_all(stateDir, ec);
    }
    return rc;
}
