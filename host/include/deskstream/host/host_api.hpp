// The host side of the SDK: the ds_host_api table handed to plugins (logging into Poco::Logger
// "plugin.<name>", clocks) and ds_config views over one section of the configuration.
#pragma once

#include "deskstream/plugin.h"

#include <map>
#include <string>

namespace Poco::Util {
class AbstractConfiguration;
}

namespace deskstream::host {

// One process-wide, immutable table (host_api functions may be called from any thread).
const ds_host_api* hostApi();

// Besides the keys of its own section, every view answers this key with the absolute
// [host] state_dir, so that a plugin (the SQLite store) can resolve relative file names.
inline constexpr const char* kHostStateDirKey = "host.state_dir";

// A ds_config view of "section" of `config`. Values are read raw (no ${} expansion) so
// secrets and connection strings arrive exactly as written. Valid while this object lives.
class ConfigView {
public:
    ConfigView(const Poco::Util::AbstractConfiguration& config, std::string section);
    ConfigView(const ConfigView&) = delete;
    ConfigView& operator=(const ConfigView&) = delete;
    const ds_config* get() const { return &view_; }

private:
    static int32_t lookup(void* ctx, const char* key, char* out, size_t outSize);
    const Poco::Util::AbstractConfiguration& config_;
    std::string section_;
    ds_config view_{};
};

// Maps a plugin's ds_log_level onto a Poco::Message priority.
int pocoPriority(ds_log_level level);

}  // namespace deskstream::host
