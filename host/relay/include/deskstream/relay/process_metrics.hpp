// Process figures for /metrics in every role: resident memory, open descriptors, threads and
// build info, read from /proc at scrape time (docs/operations.md, "Process"). The relay registers
// them in its registry; an agent serving its own metrics registers them in its own.
#pragma once

#include <string>

namespace deskstream::core::metrics {
class Registry;
}  // namespace deskstream::core::metrics

namespace deskstream::relay {

// Registering twice in one registry is harmless (role all shares one).
void exposeProcessMetrics(core::metrics::Registry& registry, const std::string& version);

}  // namespace deskstream::relay
