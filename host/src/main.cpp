// The deskstream executable: a Poco ServerApplication around deskstream::host::Host.
//
//   deskstream [--config FILE] [--set section.key=value]... [--role relay|agent|all]
//   deskstream --check-config [FILE]     validate and exit (status 78 when anything is wrong)
//   deskstream --list-plugins            list the plugins found and the files refused
//   deskstream <subcommand> [args...]    registered subcommands (see Subcommands below)
//
// Exit statuses: 0 ok, 64 unexpected argument, 78 configuration or start-up problem (Poco's
// option parser also answers an unknown option with 78).
#include "deskstream/host/config.hpp"
#include "deskstream/host/host.hpp"
#include "deskstream/host/services.hpp"
#include "deskstream/host/version.hpp"

#include <Poco/AutoPtr.h>
#include <Poco/ConsoleChannel.h>
#include <Poco/FormattingChannel.h>
#include <Poco/Logger.h>
#include <Poco/PatternFormatter.h>
#include <Poco/Util/HelpFormatter.h>
#include <Poco/Util/Option.h>
#include <Poco/Util/OptionSet.h>
#include <Poco/Util/ServerApplication.h>

#include <csignal>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <map>
#include <set>

#if defined(POCO_OS_FAMILY_UNIX)
#include <pthread.h>
#endif

using namespace deskstream::host;
using Poco::Util::Application;
using Poco::Util::Option;
using Poco::Util::OptionSet;

namespace {

// A subcommand gets the configuration (file and --set applied) and its own arguments, and runs
// instead of the services: `deskstream [options] <name> [args...]`. New ones (e.g. `token`) are
// added in registerSubcommands() below; --help lists them.
using Subcommand = std::function<int(Configuration &config, const std::vector<std::string> &args)>;
std::map<std::string, std::pair<std::string, Subcommand>> &subcommands() {
    static std::map<std::string, std::pair<std::string, Subcommand>> s;
    return s;
}

void registerSubcommands() {
    // subcommands()["token"] = {"print a viewer/agent token signed with [auth] secret", &tokenMain};
}

void setupLogging(const std::string &level) {
    Poco::AutoPtr<Poco::PatternFormatter> formatter(new Poco::PatternFormatter("%Y-%m-%d %H:%M:%S.%i %q %s: %t"));
    Poco::AutoPtr<Poco::ConsoleChannel> console(new Poco::ConsoleChannel(std::cerr));
    Poco::AutoPtr<Poco::FormattingChannel> channel(new Poco::FormattingChannel(formatter, console));
    Poco::Logger::root().setChannel(channel);
    Poco::Logger::root().setLevel(level);
    // Loggers created before this call keep their old settings: update them too.
    Poco::Logger::setChannel("", channel);
    Poco::Logger::setLevel("", Poco::Logger::parseLevel(level));
}

// Blocks SIGINT/SIGTERM/SIGQUIT in this thread before the services start their threads, which
// inherit the mask. Otherwise a signal arriving while the services start (or later, on a
// thread that does not block it: Poco's pool threads block SIGTERM but not SIGINT) takes the
// default action and kills the process without a clean stop. A request held this way is
// collected by waitForTerminationRequest() (sigwait) as soon as start-up is complete.
void holdTerminationSignals() {
#if defined(POCO_OS_FAMILY_UNIX)
    sigset_t set;
    sigemptyset(&set);
    if (!std::getenv("POCO_ENABLE_DEBUGGER")) sigaddset(&set, SIGINT); // Poco's own rule
    sigaddset(&set, SIGQUIT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
#endif
}

// Waits for SIGINT/SIGTERM/SIGQUIT (held by holdTerminationSignals) or for a service that
// ended by itself; returns that service's reason, "" for a termination request.
std::string waitForStop(const Host &host) {
#if defined(POCO_OS_FAMILY_UNIX)
    sigset_t set;
    sigemptyset(&set);
    if (!std::getenv("POCO_ENABLE_DEBUGGER")) sigaddset(&set, SIGINT);
    sigaddset(&set, SIGQUIT);
    sigaddset(&set, SIGTERM);
    for (;;) {
        timespec tick{0, 200 * 1000 * 1000};
        if (sigtimedwait(&set, nullptr, &tick) > 0) return {};
        std::string fatal = host.fatalError();
        if (!fatal.empty()) return fatal;
    }
#else
    (void)host;
    return {};
#endif
}

class DeskstreamApp : public Poco::Util::ServerApplication {
protected:
    void defineOptions(OptionSet &options) override {
        ServerApplication::defineOptions(options);
        registerSubcommands();
        options.addOption(Option("help", "h", "print this help and exit").callback(
            Poco::Util::OptionCallback<DeskstreamApp>(this, &DeskstreamApp::onHelp)));
        options.addOption(Option("version", "v", "print the version and exit").callback(
            Poco::Util::OptionCallback<DeskstreamApp>(this, &DeskstreamApp::onFlag)));
        options.addOption(Option("config", "c", "read the INI configuration FILE")
                              .argument("FILE")
                              .callback(Poco::Util::OptionCallback<DeskstreamApp>(this, &DeskstreamApp::onValue)));
        options.addOption(Option("set", "s", "override one key, e.g. --set agent.fps=15 (repeatable)")
                              .argument("section.key=value")
                              .repeatable(true)
                              .callback(Poco::Util::OptionCallback<DeskstreamApp>(this, &DeskstreamApp::onSet)));
        options.addOption(Option("role", "r", "what to run: relay, agent or all (same as --set host.role=...)")
                              .argument("ROLE")
                              .callback(Poco::Util::OptionCallback<DeskstreamApp>(this, &DeskstreamApp::onValue)));
        options.addOption(Option("list-plugins", "l", "list the plugins found in [host] plugins.path and exit")
                              .callback(Poco::Util::OptionCallback<DeskstreamApp>(this, &DeskstreamApp::onFlag)));
        options.addOption(Option("check-config", "k",
                                 "validate the configuration (optionally FILE given after the options) and exit")
                              .callback(Poco::Util::OptionCallback<DeskstreamApp>(this, &DeskstreamApp::onFlag)));
    }

    void onHelp(const std::string &, const std::string &) {
        flags_.insert("help");
        stopOptionsProcessing();
    }
    void onFlag(const std::string &name, const std::string &) { flags_.insert(name); }
    void onValue(const std::string &name, const std::string &value) { values_[name] = value; }
    void onSet(const std::string &, const std::string &value) { sets_.push_back(value); }

    void printHelp() {
        Poco::Util::HelpFormatter help(options());
        help.setCommand(commandName());
        help.setUsage("[options] [subcommand args...]");
        help.setHeader("deskstream " + std::string(version()) +
                       ": streams desktops to browsers. With no options: relay and agent on "
                       "127.0.0.1:8080 (see docs/configuration.md).");
        std::string footer = "Subcommands:";
        for (const auto &kv : subcommands()) footer += "\n  " + kv.first + "  " + kv.second.first;
        if (subcommands().empty()) footer += " none in this build.";
        help.setFooter(footer);
        help.format(std::cout);
    }

    int main(const std::vector<std::string> &args) override {
        if (flags_.count("help")) {
            printHelp();
            return EXIT_OK;
        }
        if (flags_.count("version")) {
            std::cout << "deskstream " << version() << " (plugin ABI " << DS_ABI_MAJOR << "." << DS_ABI_MINOR
                      << ")\n";
            return EXIT_OK;
        }
        std::vector<std::string> rest = args;
        std::string configFile = values_.count("config") ? values_["config"] : "";
        const Subcommand *sub = nullptr;
        if (!rest.empty() && subcommands().count(rest.front())) {
            sub = &subcommands()[rest.front()].second;
            rest.erase(rest.begin());
        } else if (flags_.count("check-config") && rest.size() == 1 && configFile.empty()) {
            configFile = rest.front();
            rest.clear();
        } else if (!rest.empty()) {
            std::cerr << "deskstream: unexpected argument '" << rest.front() << "' (see --help)\n";
            return EXIT_USAGE;
        }

        Configuration config;
        try {
            if (!configFile.empty()) config.loadFile(configFile);
            for (const auto &s : sets_) config.set(s);
            if (values_.count("role")) config.set("host", "role", values_["role"]);
        } catch (const std::exception &e) {
            std::cerr << "deskstream: " << e.what() << "\n";
            return EXIT_CONFIG;
        }

        // Logging first (the level is needed before plugins log); a bad level is reported
        // by validation below, so fall back to the default meanwhile.
        std::string level = config.get("host", "log.level").value_or("information");
        try {
            setupLogging(level);
        } catch (const std::exception &) {
            setupLogging("information");
        }

        if (sub) return (*sub)(config, rest);

        try {
            Host host(config);
            bool check = flags_.count("check-config") > 0;
            // Plugins are found through [host] plugins.path; when the host keys themselves are
            // broken, validation still reports everything else.
            bool loaded = false;
            try {
                host.loadPlugins();
                loaded = true;
            } catch (const ConfigError &) {
            }
            std::vector<Problem> problems = config.validate(loaded ? &host.plugins() : nullptr);
            if (flags_.count("list-plugins")) {
                if (!loaded) return report(problems, "deskstream: the configuration is invalid");
                return listPlugins(host.plugins());
            }
            if (check) {
                int status = report(problems, "");
                std::cout << (configFile.empty() ? std::string("built-in defaults") : configFile) << ": "
                          << (status == EXIT_OK ? "configuration is valid" : "configuration has errors") << "\n";
                return status;
            }
            if (report(problems, "deskstream: the configuration is invalid") != EXIT_OK) return EXIT_CONFIG;

            host.addDefaultServices();
            holdTerminationSignals();
            host.start();
            HostConfig h = config.host();
            if (h.runsRelay()) {
                auto *http = dynamic_cast<RelayService *>(host.service("relay"));
                RelayConfig relay = config.relay();
                std::cout << "deskstream " << version() << " running (role " << h.roleName << ")\n"
                          << "viewer: http://" << relay.listenHost << ":" << (http ? http->port() : relay.listenPort)
                          << "/\n"
                          << std::flush;
            } else {
                std::cout << "deskstream " << version() << " running (role " << h.roleName << ")\n" << std::flush;
            }
            std::string fatal = waitForStop(host);
            if (!fatal.empty()) {
                Poco::Logger::get("host").error("stopping: " + fatal);
                host.stop();
                std::cerr << "deskstream: " << fatal << "\n";
                return EXIT_UNAVAILABLE;
            }
            Poco::Logger::get("host").information("termination requested, stopping");
            host.stop();
            return EXIT_OK;
        } catch (const std::exception &e) {
            std::cerr << "deskstream: start-up failed: " << e.what() << "\n";
            return EXIT_CONFIG;
        }
    }

    // Prints each problem on its own line; returns EXIT_CONFIG when any is an error.
    int report(const std::vector<Problem> &problems, const std::string &heading) {
        bool errors = false;
        for (const auto &p : problems) errors |= p.severity == Problem::Severity::Error;
        if (errors && !heading.empty()) std::cerr << heading << ":\n";
        for (const auto &p : problems) std::cerr << p.text() << "\n";
        return errors ? EXIT_CONFIG : EXIT_OK;
    }

    int listPlugins(const PluginRegistry &plugins) {
        std::cout << "plugin folders:";
        for (const auto &f : plugins.folders()) std::cout << " " << f;
        std::cout << "\n";
        for (const PluginInfo *p : plugins.all())
            std::cout << kindName(p->kind) << "\t" << p->name << "\t" << p->version << "\trank " << p->rank << "\t"
                      << p->file << "\t" << p->description << "\n";
        for (const auto &s : plugins.skipped()) std::cout << "refused\t" << s.file << "\t" << s.reason << "\n";
        return EXIT_OK;
    }

private:
    std::set<std::string> flags_;
    std::map<std::string, std::string> values_;
    std::vector<std::string> sets_;
};

} // namespace

POCO_SERVER_MAIN(DeskstreamApp)
