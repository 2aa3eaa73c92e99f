// Text and JSON log line formatters; see log_format.hpp.
#include "deskstream/host/log_format.hpp"

#include "deskstream/core/log_context.hpp"

#include <Poco/DateTimeFormatter.h>
#include <Poco/Message.h>
#include <Poco/PatternFormatter.h>

#include <cstdio>
#include <stdexcept>

namespace deskstream::host {

namespace {

void appendJsonString(std::string& out, const std::string& s) {
    out += '"';
    for (unsigned char c : s) {
        switch (c) {
            case '"':
                out += "\\\"";
                break;
            case '\\':
                out += "\\\\";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\r':
                out += "\\r";
                break;
            case '\t':
                out += "\\t";
                break;
            default:
                if (c < 0x20 || c == 0x7f) {
                    char buf[8];
                    std::snprintf(buf, sizeof buf, "\\u%04x", c);
                    out += buf;
                } else {
                    out += static_cast<char>(c);
                }
        }
    }
    out += '"';
}

void appendField(std::string& out, const char* key, const std::string& value) {
    out += ",\"";
    out += key;
    out += "\":";
    appendJsonString(out, value);
}

}  // namespace

const char* levelName(int priority) {
    switch (priority) {
        case Poco::Message::PRIO_FATAL:
            return "fatal";
        case Poco::Message::PRIO_CRITICAL:
            return "critical";
        case Poco::Message::PRIO_ERROR:
            return "error";
        case Poco::Message::PRIO_WARNING:
            return "warning";
        case Poco::Message::PRIO_NOTICE:
            return "notice";
        case Poco::Message::PRIO_INFORMATION:
            return "information";
        case Poco::Message::PRIO_DEBUG:
            return "debug";
        case Poco::Message::PRIO_TRACE:
            return "trace";
    }
    return "unknown";
}

void JsonLogFormatter::format(const Poco::Message& msg, std::string& text) {
    text.clear();
    text += "{\"time\":";
    appendJsonString(text, Poco::DateTimeFormatter::format(msg.getTime(), "%Y-%m-%dT%H:%M:%S.%iZ"));
    appendField(text, "level", levelName(msg.getPriority()));
    appendField(text, "logger", msg.getSource());
    appendField(text, "message", msg.getText());
    for (const auto& [key, value] : core::logctx::current()) appendField(text, key.c_str(), value);
    text += '}';
}

Poco::AutoPtr<Poco::Formatter> makeLogFormatter(const std::string& format) {
    if (format == "json") return new JsonLogFormatter;
    if (format == "text") return new Poco::PatternFormatter("%Y-%m-%d %H:%M:%S.%i %q %s: %t");
    throw std::invalid_argument("[host] log.format must be text or json, not \"" + format + "\"");
}

}  // namespace deskstream::host
