// Fuzz target config: one configuration file into the host's own INI reader and its
// validation (Configuration::loadString, validate, the typed views host() .. agent()). Lines
// "#set section.key=value" (comments to the INI reader) are also applied as --set overrides,
// so the override parser is fuzzed on the same input. Promises checked (docs/configuration.md):
// every problem is reported as a Problem with a message, a typed view fails only with
// ConfigError (any other exception escapes and is a crash), and a configuration that validates
// without errors gives every typed view without an exception.
#include "targets.hpp"

#include "deskstream/host/config.hpp"

#include <sstream>
#include <string>

namespace deskstream::fuzz {

using deskstream::host::ConfigError;
using deskstream::host::Configuration;
using deskstream::host::Problem;

namespace {

// Calls one typed view; true when it gave a value, false for a ConfigError.
template <typename View>
bool typedView(View view) {
    try {
        view();
        return true;
    } catch (const ConfigError& e) {
        DS_FUZZ_CHECK(e.what()[0] != '\0', "a ConfigError says what is wrong");
        return false;
    }
}

}  // namespace

void config(const std::uint8_t* data, std::size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    Configuration c;
    c.loadString(text, "fuzz.ini");

    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);) {
        if (line.rfind("#set ", 0) != 0) continue;
        try {
            c.set(line.substr(5));
        } catch (const ConfigError& e) {
            DS_FUZZ_CHECK(e.what()[0] != '\0', "a refused --set says why");
        }
    }

    bool errors = false;
    for (const Problem& p : c.validate(nullptr)) {
        DS_FUZZ_CHECK(!p.message.empty() && !p.text().empty(), "a problem has a message");
        errors = errors || p.severity == Problem::Severity::Error;
    }

    // All five run, whatever the others gave.
    int views = 0;
    views += typedView([&] { (void)c.host(); });
    views += typedView([&] { (void)c.relay(); });
    views += typedView([&] { (void)c.heartbeat(); });
    views += typedView([&] { (void)c.auth(); });
    views += typedView([&] { (void)c.agent(); });
    if (!errors) DS_FUZZ_CHECK(views == 5, "a configuration without errors gives every typed view");
}

}  // namespace deskstream::fuzz
