// DOM key names to X keysyms (see dom_keysym.hpp). Keysym values are those of
// <X11/keysymdef.h>; the table is sorted by nothing in particular and searched linearly (it is
// used once per key event).
#include "dom_keysym.hpp"

#include <X11/keysym.h>

#include <cstring>

namespace ds_x11 {
namespace {

struct Named {
    const char* dom;
    uint32_t keysym;
};

const Named kNamed[] = {
    {"Enter", XK_Return},
    {"Tab", XK_Tab},
    {"Backspace", XK_BackSpace},
    {"Escape", XK_Escape},
    {"Esc", XK_Escape},
    {"Delete", XK_Delete},
    {"Insert", XK_Insert},
    {"Home", XK_Home},
    {"End", XK_End},
    {"PageUp", XK_Prior},
    {"PageDown", XK_Next},
    {"ArrowLeft", XK_Left},
    {"ArrowRight", XK_Right},
    {"ArrowUp", XK_Up},
    {"ArrowDown", XK_Down},
    {"Left", XK_Left},
    {"Right", XK_Right},
    {"Up", XK_Up},
    {"Down", XK_Down},
    {"Shift", XK_Shift_L},
    {"Control", XK_Control_L},
    {"Alt", XK_Alt_L},
    {"AltGraph", XK_ISO_Level3_Shift},
    {"Meta", XK_Super_L},
    {"OS", XK_Super_L},
    {"Super", XK_Super_L},
    {"Hyper", XK_Hyper_L},
    {"CapsLock", XK_Caps_Lock},
    {"NumLock", XK_Num_Lock},
    {"ScrollLock", XK_Scroll_Lock},
    {"Pause", XK_Pause},
    {"PrintScreen", XK_Print},
    {"ContextMenu", XK_Menu},
    {"Spacebar", XK_space},
    {"Clear", XK_Clear},
    {"Help", XK_Help},
    {"Cancel", XK_Cancel},
    {"Select", XK_Select},
    {"Execute", XK_Execute},
    {"Find", XK_Find},
    {"Undo", XK_Undo},
    {"Redo", XK_Redo},
    {"Dead", XK_dead_grave},
    {"Compose", XK_Multi_key},
    {"AudioVolumeUp", 0x1008FF13u},
    {"AudioVolumeDown", 0x1008FF11u},
    {"AudioVolumeMute", 0x1008FF12u},
    {"MediaPlayPause", 0x1008FF14u},
    {"MediaStop", 0x1008FF15u},
    {"MediaTrackPrevious", 0x1008FF16u},
    {"MediaTrackNext", 0x1008FF17u},
};

// Decodes one UTF-8 code point; returns false unless `s` is exactly one well-formed character.
bool singleCodePoint(const std::string& s, uint32_t& cp) {
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    size_t n = s.size();
    if (n == 0) return false;
    size_t len;
    if (p[0] < 0x80)
        cp = p[0], len = 1;
    else if ((p[0] & 0xE0) == 0xC0)
        cp = p[0] & 0x1Fu, len = 2;
    else if ((p[0] & 0xF0) == 0xE0)
        cp = p[0] & 0x0Fu, len = 3;
    else if ((p[0] & 0xF8) == 0xF0)
        cp = p[0] & 0x07u, len = 4;
    else
        return false;
    if (n != len) return false;
    for (size_t i = 1; i < len; ++i) {
        if ((p[i] & 0xC0) != 0x80) return false;
        cp = (cp << 6) | (p[i] & 0x3Fu);
    }
    return cp >= 0x20 && cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF) && cp != 0x7F;
}

}  // namespace

uint32_t domKeyToKeysym(const std::string& domKey) {
    uint32_t cp = 0;
    if (singleCodePoint(domKey, cp)) {
        if (cp == ' ') return XK_space;
        if (cp < 0x7F || (cp >= 0xA0 && cp <= 0xFF))
            return cp;            // Latin-1 keysyms are the code point
        return 0x01000000u + cp;  // keysymdef.h: Unicode keysyms
    }
    for (const Named& n : kNamed)
        if (domKey == n.dom) return n.keysym;
    // F1..F35
    if (domKey.size() >= 2 && domKey.size() <= 3 && domKey[0] == 'F') {
        int number = 0;
        for (size_t i = 1; i < domKey.size(); ++i) {
            if (domKey[i] < '0' || domKey[i] > '9') return 0;
            number = number * 10 + (domKey[i] - '0');
        }
        if (number >= 1 && number <= 35) return XK_F1 + static_cast<uint32_t>(number - 1);
    }
    return 0;
}

}  // namespace ds_x11
