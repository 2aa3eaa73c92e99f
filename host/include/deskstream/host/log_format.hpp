// Log line formats of the host ([host] log.format): "text" (one human-readable line) or "json"
// (one JSON object per line with time, level, logger, message and the structured fields of
// core/log_context.hpp: client_id, connection_id, instance_id where known). docs/operations.md.
#pragma once

#include <Poco/AutoPtr.h>
#include <Poco/Formatter.h>

#include <string>

namespace deskstream::host {

class JsonLogFormatter : public Poco::Formatter {
public:
    void format(const Poco::Message& msg, std::string& text) override;
};

// "text" or "json"; anything else throws std::invalid_argument.
Poco::AutoPtr<Poco::Formatter> makeLogFormatter(const std::string& format);

// The level as a lower-case word ("error", "information", ...).
const char* levelName(int priority);

}  // namespace deskstream::host
