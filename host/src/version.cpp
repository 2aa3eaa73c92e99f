#include "deskstream/host/version.hpp"

namespace deskstream::host {
const char* version() { return DESKSTREAM_VERSION; }
}  // namespace deskstream::host
