// The combined layout ("dual screen"): several monitors' pictures side by side in one picture.
// Pure pixel work, no plugin and no lock.
#pragma once

#include "deskstream/plugin.h"

#include <cstdint>
#include <vector>

namespace deskstream::agent {

/// Copies `frames` (4 bytes per pixel, same format) left to right, top-aligned, into `picture`
/// (its capacity is kept across calls: no allocation once sized); the rest is black. Returns a
/// ds_frame over `picture`, stamped with `captureTimeUs`.
ds_frame composeSideBySide(const std::vector<const ds_frame*>& frames,
                           std::vector<std::uint8_t>& picture, std::uint64_t captureTimeUs);

}  // namespace deskstream::agent
