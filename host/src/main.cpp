// The deskstream executable: a Poco ServerApplication around deskstream::host::Host.
//
//   deskstream [--config FILE] [--set section.key=value]... [--role relay|agent|all]
//   deskstream --check-config [FILE]     validate and exit (status 78 when anything is wrong)
//   deskstream --list-plugins            list the plugins found and the files refused
//   deskstream <subcommand> [args...]    registered subcommands (see Subcommands below)
//
// Exit statuses: 0 ok, 64 unexpected argument, 78 configuration or start-up problem (Poco's
// option parser also answers an unknown option with 78).
#include "deskstream/core/auth.hpp"
#include "deskstream/host/config.hpp"
#include "deskstream/host/host.hpp"
#include "deskstream/host/log_format.hpp"
#include "deskstream/host/services.hpp"
#include "deskstream/host/version.hpp"

#include <Poco/AutoPtr.h>
#include <Poco/ConsoleChannel.h>
#include <Poco/FormattingChannel.h>
#include <Poco/Logger.h>
#include <Poco/Net/IPAddress.h>
#include <Poco/PatternFormatter.h>
#include <Poco/Util/HelpFormatter.h>
#include <Poco/Util/Option.h>
#include <Poco/Util/OptionSet.h>
#include <Poco/Util/ServerApplication.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <map>
#include <set>
#include <stdexcept>

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
using Subcommand = std::function<int(Configuration& config, const std::vector<std::string>& args)>;
std::map<std::string, std::pair<std::string, Subcommand>>& subcommands() {
    static std::map<std::string, std::pair<std::string, Subcommand>> s;
    return s;
}

// Arguments after the subcommand's name, kept away from Poco's option parser (which would take
// `token --role desktop` for the global --role option). Filled by main() below.
std::vector<std::string>& subcommandArgs() {
    static std::vector<std::string> a;
    return a;
}

// deskstream [--config FILE] token --role desktop|viewer --sub NAME [--ttl 1h]
//                                   [--desktops ID,ID|*] [--rights view|view,control]
int tokenMain(Configuration& config, const std::vector<std::string>& args) {
    std::string role, sub, ttl = "1h", desktops, rights;
    for (size_t i = 0; i < args.size(); ++i) {
        const std::string& a = args[i];
        auto value = [&](std::string& out) {
            if (i + 1 >= args.size()) throw std::invalid_argument(a + " needs a value");
            out = args[++i];
        };
        if (a == "--role")
            value(role);
        else if (a == "--sub")
            value(sub);
        else if (a == "--ttl")
            value(ttl);
        else if (a == "--desktops")
            value(desktops);
        else if (a == "--rights")
            value(rights);
        else
            throw std::invalid_argument("unknown argument '" + a + "'");
    }
    deskstream::core::Role r;
    if (role == "desktop")
        r = deskstream::core::Role::Desktop;
    else if (role == "viewer")
        r = deskstream::core::Role::Viewer;
    else
        throw std::invalid_argument("--role must be desktop or viewer");
    if (sub.empty()) throw std::invalid_argument("--sub NAME is required (the clientId or user)");
    // A viewer token's scope (docs/security.md): every desktop with control unless narrowed.
    if (r == deskstream::core::Role::Desktop && (!desktops.empty() || !rights.empty()))
        throw std::invalid_argument(
            "--desktops and --rights are for viewer tokens (a desktop token is bound to --sub)");
    auto scope = deskstream::core::parseViewerScope(desktops.empty() ? "*" : desktops,
                                                    rights.empty() ? "view,control" : rights);
    if (!scope.ok())
        throw std::invalid_argument("--" + scope.error().field + ": " + scope.error().message);
    // 90s, 30m, 1h, 7d
    size_t unitAt = ttl.find_first_not_of("0123456789");
    if (ttl.empty() || unitAt == 0 || unitAt == std::string::npos || unitAt + 1 != ttl.size())
        throw std::invalid_argument("--ttl must be a number with a unit s, m, h or d (e.g. 1h)");
    long long n = std::stoll(ttl.substr(0, unitAt));
    const long long unit = ttl[unitAt] == 's'   ? 1
                           : ttl[unitAt] == 'm' ? 60
                           : ttl[unitAt] == 'h' ? 3600
                           : ttl[unitAt] == 'd' ? 86400
                                                : 0;
    if (unit == 0 || n <= 0 || n > 366LL * 86400 / unit)
        throw std::invalid_argument(
            "--ttl must be a positive duration of at most 366 days, with a unit s, m, h or d");
    std::string secret = config.auth().secret;
    if (secret.empty()) {
        std::cerr << "deskstream: token: [auth] secret is empty: set it in the configuration (or "
                     "--set auth.secret=...)\n";
        return Poco::Util::Application::EXIT_CONFIG;
    }
    auto nowMs = std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::system_clock::now().time_since_epoch())
                     .count();
    std::cout << deskstream::core::mintToken(secret, r, sub, std::chrono::seconds(n * unit), nowMs,
                                             scope.value())
              << "\n";
    return Poco::Util::Application::EXIT_OK;
}

// deskstream tls-selfsigned [--host H] [--days N]: prints (never runs) the openssl commands
// for a self-signed pair to try TLS with, and the keys that use it (docs/security-tls.md).
int tlsSelfSignedMain(Configuration&, const std::vector<std::string>& args) {
    std::string host = "127.0.0.1", days = "30";
    for (size_t i = 0; i < args.size(); ++i) {
        const std::string& a = args[i];
        if ((a == "--host" || a == "--days") && i + 1 < args.size())
            (a == "--host" ? host : days) = args[++i];
        else if (a == "--host" || a == "--days")
            throw std::invalid_argument(a + " needs a value");
        else
            throw std::invalid_argument("unknown argument '" + a + "'");
    }
    // The host goes into a printed shell command: letters, digits, '.', '-' and ':' only.
    if (host.empty() || host.size() > 253 ||
        host.find_first_not_of(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-:") !=
            std::string::npos)
        throw std::invalid_argument("--host must be a host name or an IP address (got '" + host +
                                    "')");
    if (days.empty() || days.size() > 5 ||
        days.find_first_not_of("0123456789") != std::string::npos || std::stoi(days) < 1)
        throw std::invalid_argument("--days must be a whole number of days from 1 to 99999");
    Poco::Net::IPAddress ip;
    const bool isIp = Poco::Net::IPAddress::tryParse(host, ip);
    // Browsers match an IP address against IP: names only; Poco's client also accepts the CN.
    const std::string san = (isIp ? "IP:" : "DNS:") + host;
    const std::string urlHost =
        ip.family() == Poco::Net::IPAddress::IPv6 && isIp ? "[" + host + "]" : host;
    std::cout
        << "# A self-signed certificate for trying TLS out (run these yourself; deskstream does\n"
           "# not). Browsers warn about it; agents trust it through [agent] tls.ca. For a real\n"
           "# deployment use a certificate from your CA (docs/security-tls.md).\n"
        << "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -sha256 -nodes \\\n"
        << "  -days " << days << " -subj \"/CN=" << host << "\" -addext \"subjectAltName=" << san
        << "\" \\\n"
        << "  -keyout deskstream-key.pem -out deskstream-cert.pem\n"
        << "chmod 600 deskstream-key.pem\n"
        << "\n# Then, in the relay's configuration:\n"
        << "#   [relay]\n"
        << "#   tls.cert = /full/path/to/deskstream-cert.pem\n"
        << "#   tls.key = /full/path/to/deskstream-key.pem\n"
        << "#   public_url = https://" << urlHost << ":8080\n"
        << "# and in each agent's (copy deskstream-cert.pem, never the key):\n"
        << "#   [agent]\n"
        << "#   relay_url = wss://" << urlHost << ":8080/ws/agent\n"
        << "#   tls.ca = /full/path/to/deskstream-cert.pem\n";
    return Poco::Util::Application::EXIT_OK;
}

void registerSubcommands() {
    subcommands()["token"] = {
        "mint a token: token --role desktop|viewer --sub NAME [--ttl 1h] [--desktops ID,ID|*] "
        "[--rights view|view,control] (signed with [auth] secret)",
        &tokenMain};
    subcommands()["tls-selfsigned"] = {
        "print the openssl commands for a self-signed TLS pair to try wss:// with: "
        "tls-selfsigned [--host 127.0.0.1] [--days 30] (prints, does not run them)",
        &tlsSelfSignedMain};
}

void setupLogging(const std::string& level, const std::string& format) {
    Poco::AutoPtr<Poco::Formatter> formatter = deskstream::host::makeLogFormatter(format);
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
// collected by waitForStop() (sigtimedwait) as soon as start-up is complete.
#if defined(POCO_OS_FAMILY_UNIX)
sigset_t terminationSignals() {
    sigset_t set;
    sigemptyset(&set);
    if (!std::getenv("POCO_ENABLE_DEBUGGER")) sigaddset(&set, SIGINT);  // Poco's own rule
    sigaddset(&set, SIGQUIT);
    sigaddset(&set, SIGTERM);
    return set;
}
#endif

void holdTerminationSignals() {
#if defined(POCO_OS_FAMILY_UNIX)
    sigset_t set = terminationSignals();
    sigaddset(&set, SIGHUP);  // plugin folder rescan, collected by waitForStop()
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
#endif
}

// Waits for SIGINT/SIGTERM/SIGQUIT (held by holdTerminationSignals) or for a service that
// ended by itself; returns that service's reason, "" for a termination request. SIGHUP loads
// plugins copied into the plugin folders since start-up (docs/embedding.md, "Folder rescan").
std::string waitForStop(Host& host) {
#if defined(POCO_OS_FAMILY_UNIX)
    sigset_t set = terminationSignals();
    sigaddset(&set, SIGHUP);
    for (;;) {
        timespec tick{0, 200 * 1000 * 1000};
        int sig = sigtimedwait(&set, nullptr, &tick);
        if (sig == SIGHUP) {
            auto outcomes = host.plugins().rescan();
            size_t loaded = 0;
            for (const auto& o : outcomes) loaded += o.loaded;
            Poco::Logger::get("host.plugins")
                .information(
                    "SIGHUP: rescanned the plugin folders: %z new plugin(s) loaded, %z file(s) "
                    "refused",
                    loaded, outcomes.size() - loaded);
            continue;
        }
        if (sig > 0) return {};
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
    void defineOptions(OptionSet& options) override {
        ServerApplication::defineOptions(options);
        registerSubcommands();
        options.addOption(
            Option("help", "h", "print this help and exit")
                .callback(Poco::Util::OptionCallback<DeskstreamApp>(this, &DeskstreamApp::onHelp)));
        options.addOption(
            Option("version", "v", "print the version and exit")
                .callback(Poco::Util::OptionCallback<DeskstreamApp>(this, &DeskstreamApp::onFlag)));
        options.addOption(Option("config", "c", "read the INI configuration FILE")
                              .argument("FILE")
                              .callback(Poco::Util::OptionCallback<DeskstreamApp>(
                                  this, &DeskstreamApp::onValue)));
        options.addOption(
            Option("set", "s", "override one key, e.g. --set agent.fps=15 (repeatable)")
                .argument("section.key=value")
                .repeatable(true)
                .callback(Poco::Util::OptionCallback<DeskstreamApp>(this, &DeskstreamApp::onSet)));
        options.addOption(
            Option("role", "r", "what to run: relay, agent or all (same as --set host.role=...)")
                .argument("ROLE")
                .callback(
                    Poco::Util::OptionCallback<DeskstreamApp>(this, &DeskstreamApp::onValue)));
        options.addOption(
            Option("list-plugins", "l", "list the plugins found in [host] plugins.path and exit")
                .callback(Poco::Util::OptionCallback<DeskstreamApp>(this, &DeskstreamApp::onFlag)));
        options.addOption(
            Option("check-config", "k",
                   "validate the configuration (optionally FILE given after the options) and exit")
                .callback(Poco::Util::OptionCallback<DeskstreamApp>(this, &DeskstreamApp::onFlag)));
    }

    void onHelp(const std::string&, const std::string&) {
        flags_.insert("help");
        stopOptionsProcessing();
    }
    void onFlag(const std::string& name, const std::string&) { flags_.insert(name); }
    void onValue(const std::string& name, const std::string& value) { values_[name] = value; }
    void onSet(const std::string&, const std::string& value) { sets_.push_back(value); }

    void printHelp() {
        Poco::Util::HelpFormatter help(options());
        help.setCommand(commandName());
        help.setUsage("[options] [subcommand args...]");
        help.setHeader("deskstream " + std::string(version()) +
                       ": streams desktops to browsers. With no options: relay and agent on "
                       "127.0.0.1:8080 (see docs/configuration.md).");
        std::string footer = "Subcommands:";
        for (const auto& kv : subcommands()) footer += "\n  " + kv.first + "  " + kv.second.first;
        if (subcommands().empty()) footer += " none in this build.";
        help.setFooter(footer);
        help.format(std::cout);
    }

    int main(const std::vector<std::string>& args) override {
        if (flags_.count("help")) {
            printHelp();
            return EXIT_OK;
        }
        if (flags_.count("version")) {
            std::cout << "deskstream " << version() << " (plugin ABI " << DS_ABI_MAJOR << "."
                      << DS_ABI_MINOR << ")\n";
            return EXIT_OK;
        }
        std::vector<std::string> rest = args;
        std::string configFile = values_.count("config") ? values_["config"] : "";
        const Subcommand* sub = nullptr;
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
            for (const auto& s : sets_) config.set(s);
            if (values_.count("role")) config.set("host", "role", values_["role"]);
        } catch (const std::exception& e) {
            std::cerr << "deskstream: " << e.what() << "\n";
            return EXIT_CONFIG;
        }

        // Logging first (the level is needed before plugins log); a bad level is reported
        // by validation below, so fall back to the default meanwhile.
        std::string level = config.get("host", "log.level").value_or("information");
        const std::string format = config.get("host", "log.format").value_or("text");
        try {
            setupLogging(level, format);
        } catch (const std::exception&) {
            setupLogging("information", format == "json" ? format : "text");
        }

        if (sub) {
            rest.insert(rest.end(), subcommandArgs().begin(), subcommandArgs().end());
            try {
                return (*sub)(config, rest);
            } catch (const std::invalid_argument& e) {
                std::cerr << "deskstream: " << e.what() << " (see --help)\n";
                return EXIT_USAGE;
            } catch (const std::exception& e) {
                std::cerr << "deskstream: " << e.what() << "\n";
                return EXIT_SOFTWARE;
            }
        }

        try {
            Host host(config);
            bool check = flags_.count("check-config") > 0;
            // Plugins are found through [host] plugins.path; when the host keys themselves are
            // broken, validation still reports everything else.
            bool loaded = false;
            try {
                host.loadPlugins();
                loaded = true;
            } catch (const ConfigError&) {}
            std::vector<Problem> problems = config.validate(loaded ? &host.plugins() : nullptr);
            if (flags_.count("list-plugins")) {
                if (!loaded) return report(problems, "deskstream: the configuration is invalid");
                return listPlugins(host.plugins());
            }
            if (check) {
                int status = report(problems, "");
                std::cout << (configFile.empty() ? std::string("built-in defaults") : configFile)
                          << ": "
                          << (status == EXIT_OK ? "configuration is valid"
                                                : "configuration has errors")
                          << "\n";
                return status;
            }
            if (report(problems, "deskstream: the configuration is invalid") != EXIT_OK)
                return EXIT_CONFIG;

            host.addDefaultServices();
            holdTerminationSignals();
            host.start();
            HostConfig h = config.host();
            if (h.runsRelay()) {
                auto* http = dynamic_cast<RelayService*>(host.service("relay"));
                RelayConfig relay = config.relay();
                std::cout << "deskstream " << version() << " running (role " << h.roleName << ")\n"
                          << "viewer: " << (relay.tlsCert.empty() ? "http" : "https") << "://"
                          << relay.listenHost << ":" << (http ? http->port() : relay.listenPort)
                          << "/\n"
                          << std::flush;
            } else {
                std::cout << "deskstream " << version() << " running (role " << h.roleName << ")\n"
                          << std::flush;
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
        } catch (const std::exception& e) {
            std::cerr << "deskstream: start-up failed: " << e.what() << "\n";
            return EXIT_CONFIG;
        }
    }

    // Prints each problem on its own line; returns EXIT_CONFIG when any is an error.
    int report(const std::vector<Problem>& problems, const std::string& heading) {
        bool errors = false;
        for (const auto& p : problems) errors |= p.severity == Problem::Severity::Error;
        if (errors && !heading.empty()) std::cerr << heading << ":\n";
        for (const auto& p : problems) std::cerr << p.text() << "\n";
        return errors ? EXIT_CONFIG : EXIT_OK;
    }

    int listPlugins(const PluginRegistry& plugins) {
        std::cout << "plugin folders:";
        for (const auto& f : plugins.folders()) std::cout << " " << f;
        std::cout << "\n";
        for (const PluginInfo* p : plugins.all())
            std::cout << kindName(p->kind) << "\t" << p->name << "\t" << p->version << "\trank "
                      << p->rank << "\t" << p->file << "\t" << p->description << "\n";
        for (const auto& s : plugins.skipped())
            std::cout << "refused\t" << s.file << "\t" << s.reason << "\n";
        return EXIT_OK;
    }

private:
    std::set<std::string> flags_;
    std::map<std::string, std::string> values_;
    std::vector<std::string> sets_;
};

}  // namespace

int main(int argc, char** argv) {
    // Everything after a subcommand's name belongs to the subcommand.
    registerSubcommands();
    std::vector<char*> kept;
    for (int i = 0; i < argc; ++i) {
        if (i > 0 && subcommands().count(argv[i])) {
            kept.push_back(argv[i]);
            for (int j = i + 1; j < argc; ++j) subcommandArgs().push_back(argv[j]);
            break;
        }
        kept.push_back(argv[i]);
        // Values of options that take one are not subcommand names (e.g. --config token).
        std::string a = argv[i];
        if (i + 1 < argc && (a == "--config" || a == "-c" || a == "--set" || a == "-s" ||
                             a == "--role" || a == "-r"))
            kept.push_back(argv[++i]);
    }
    kept.push_back(nullptr);
    try {
        DeskstreamApp app;
        return app.run(static_cast<int>(kept.size()) - 1, kept.data());
    } catch (const Poco::Exception& e) {
        std::cerr << "deskstream: " << e.displayText() << "\n";
        return Poco::Util::Application::EXIT_USAGE;
    }
}
