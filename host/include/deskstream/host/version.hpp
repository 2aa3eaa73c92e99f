#pragma once

namespace deskstream::host {
// The deskstream version (from the top-level project() call).
const char* version();
}  // namespace deskstream::host
