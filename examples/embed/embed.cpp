// examples/embed: the smallest vendor program that embeds deskstream. It configures the host from
// code (no INI file), logs into its own channel, registers a capture plugin linked into the
// program, runs a relay and an agent in this process, and stops cleanly on SIGTERM or SIGINT.
//
//   deskstream_embed_example <plugin folder> <port> <state folder>
//
// The plugin folder provides the encoder (jpeg) and the store (sqlite) as loadable modules; the
// capture plugin "skeleton" is static. See docs/embedding.md.
#include "deskstream/host/config.hpp"
#include "deskstream/host/host.hpp"
#include "deskstream/host/plugin_registry.hpp"

#include <Poco/AutoPtr.h>
#include <Poco/Channel.h>
#include <Poco/Logger.h>
#include <Poco/Message.h>

#include <csignal>
#include <cstdlib>
#include <iostream>
#include <mutex>
#include <string>

#include <pthread.h>

// The skeleton's entry, compiled as deskstream_plugin_entry_SkeletonCapture.
DESKSTREAM_PLUGIN_STATIC_DECLARE(SkeletonCapture);

namespace {

// The vendor's own log channel: here, lines on stderr with a vendor prefix.
class VendorChannel : public Poco::Channel {
public:
    void log(const Poco::Message& msg) override {
        std::lock_guard<std::mutex> lock(mutex_);
        std::cerr << "[vendor] " << msg.getSource() << ": " << msg.getText() << std::endl;
    }

private:
    std::mutex mutex_;
};

}  // namespace

int main(int argc, char** argv) {
    if (argc != 4) {
        std::cerr << "usage: " << argv[0] << " <plugin folder> <port> <state folder>\n";
        return 64;
    }
    const std::string plugins = argv[1], port = argv[2], state = argv[3];

    // Threads the host starts inherit this mask, so SIGTERM/SIGINT reach only sigwait() below.
    sigset_t stopSignals;
    sigemptyset(&stopSignals);
    sigaddset(&stopSignals, SIGTERM);
    sigaddset(&stopSignals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stopSignals, nullptr);

    Poco::AutoPtr<Poco::Channel> channel(new VendorChannel);
    Poco::Logger::root().setChannel(channel);
    Poco::Logger::root().setLevel(Poco::Message::PRIO_INFORMATION);
    Poco::Logger::setChannel("", channel);  // loggers that already exist follow too

    deskstream::host::Configuration config;
    config.set("host", "role", "all");
    config.set("host", "plugins.path", plugins);
    config.set("host", "state_dir", state);
    config.set("relay", "listen", "127.0.0.1:" + port);
    config.set("agent", "relay_url", "ws://127.0.0.1:" + port + "/ws/agent");
    config.set("agent", "client_id", "embedded-desk");
    config.set("agent", "capture", "skeleton");
    config.set("agent", "encoder", "jpeg");
    config.set("capture.skeleton", "width", "320");
    config.set("capture.skeleton", "height", "200");
    config.set("capture.skeleton", "color", "20a040");

    try {
        deskstream::host::Host host(config);
        auto registered = DESKSTREAM_PLUGIN_STATIC_REGISTER(host.plugins(), SkeletonCapture);
        if (!registered.loaded)
            throw std::runtime_error("static skeleton plugin refused: " + registered.reason);
        host.loadPlugins();
        for (const auto& p : config.validate(&host.plugins()))
            if (p.severity == deskstream::host::Problem::Severity::Error)
                throw std::runtime_error(p.text());
        host.addDefaultServices();
        host.start();
        std::cout << "embed: running, viewer at http://127.0.0.1:" << port << "/" << std::endl;
        int sig = 0;
        sigwait(&stopSignals, &sig);
        std::cout << "embed: signal " << sig << ", stopping" << std::endl;
        host.stop();
    } catch (const std::exception& e) {
        std::cerr << "embed: " << e.what() << std::endl;
        return 1;
    }
    std::cout << "embed: stopped" << std::endl;
    return 0;
}
