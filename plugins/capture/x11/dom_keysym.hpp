// Maps a DOM KeyboardEvent.key value ("a", "Enter", "ArrowLeft", "F5", "é") to an X keysym.
// One concern: the naming table; it knows nothing about a display or a keyboard map.
#pragma once

#include <cstdint>
#include <string>

namespace ds_x11 {

// The keysym for `domKey`, or 0 when the name is unknown. A single character maps to its
// Latin-1 keysym (U+0020..U+007E, U+00A0..U+00FF) or to the Unicode keysym 0x01000000 + code
// point; named keys follow the UI Events KeyboardEvent key values table.
uint32_t domKeyToKeysym(const std::string& domKey);

}  // namespace ds_x11
