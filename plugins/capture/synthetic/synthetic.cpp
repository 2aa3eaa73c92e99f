// deskstream capture plugin "synthetic": a deterministic moving test picture.
//
// Each monitor shows a gradient background with window-like panels full of text-like bars, a
// block that moves with the frame number, and the frame number itself as ten 7-segment digits,
// so tests (and people) can read back which frame they are looking at.
//
// The picture depends only on (width, height, monitor, sequence): the same sequence gives the
// same bytes in every run and every instance. Every grab returns a new frame at once
// (sequence + 1 for that monitor); the timeout is not used.
//
// Counter layout (documented for readers; tests decode it independently):
//   black box x [8, 300), y [8, 56); digit i (0 = most significant of 10, zero-padded) has its
//   origin at ox = 12 + 28 * i, oy = 12, cell 20 x 40 px, segment thickness 4, lit segments
//   white (B = G = R = 255). Segments: a top, b top-right, c bottom-right, d bottom,
//   e bottom-left, f top-left, g middle (the usual 7-segment naming).
//
// Memory: DS_CAPTURE_MAX_HELD_FRAMES (2) frame buffers per monitor allocated at create() and
// reused; grab_frame never allocates. A frame's buffer is not reused until it is released.
//
// Input: accepted (DS_CAPTURE_CAP_INPUT) and changes nothing on the picture. With `input_log`
// set, each event is appended to that file as one JSON line, so tests can check what reached
// the agent (docs/configuration.md, [capture.synthetic]).
#include "deskstream/plugin.hpp"

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace {

constexpr int kCounterDigits = 10;
constexpr int kDigitOriginX = 12, kDigitOriginY = 12, kDigitPitch = 28;
constexpr int kDigitW = 20, kDigitH = 40, kSeg = 4;

// Bits a..g = 0..6.
constexpr std::array<uint8_t, 10> kSegments = {
    0x3F,  // 0: a b c d e f
    0x06,  // 1: b c
    0x5B,  // 2: a b d e g
    0x4F,  // 3: a b c d g
    0x66,  // 4: b c f g
    0x6D,  // 5: a c d f g
    0x7D,  // 6: a c d e f g
    0x07,  // 7: a b c
    0x7F,  // 8: all
    0x6F,  // 9: a b c d f g
};

struct Picture {
    uint32_t width, height;
    std::vector<uint8_t> pixels;  // BGRA, stride = width * 4

    void fill(int x0, int y0, int w, int h, uint8_t b, uint8_t g, uint8_t r) {
        int x1 = std::min<int>(x0 + w, static_cast<int>(width));
        int y1 = std::min<int>(y0 + h, static_cast<int>(height));
        x0 = std::max(x0, 0);
        y0 = std::max(y0, 0);
        for (int y = y0; y < y1; ++y) {
            uint8_t* p = pixels.data() + (static_cast<size_t>(y) * width + x0) * 4;
            for (int x = x0; x < x1; ++x, p += 4) p[0] = b, p[1] = g, p[2] = r, p[3] = 255;
        }
    }
};

// A small deterministic generator (no global state, no std::rand).
struct Lcg {
    uint32_t state;
    uint32_t next() { return state = state * 1664525u + 1013904223u; }
    int range(int n) {
        return n <= 0 ? 0 : static_cast<int>((next() >> 8) % static_cast<uint32_t>(n));
    }
};

void drawBackground(Picture& pic, uint32_t monitor) {
    const uint32_t w = pic.width, h = pic.height;
    for (uint32_t y = 0; y < h; ++y) {
        uint8_t* p = pic.pixels.data() + static_cast<size_t>(y) * w * 4;
        for (uint32_t x = 0; x < w; ++x, p += 4) {
            p[0] = static_cast<uint8_t>(w > 1 ? x * 255 / (w - 1) : 0);
            p[1] = static_cast<uint8_t>(h > 1 ? y * 255 / (h - 1) : 0);
            p[2] = static_cast<uint8_t>(60 + monitor * 70);
            p[3] = 255;
        }
    }
    // Window-like panels with lines of "words": sharp edges like real text for the encoders.
    Lcg rng{0x5eed0000u + monitor};
    int panels = 3 + static_cast<int>(monitor % 3);
    for (int i = 0; i < panels; ++i) {
        int pw = std::max(1, static_cast<int>(w) / 3 + rng.range(static_cast<int>(w) / 4 + 1));
        int ph = std::max(1, static_cast<int>(h) / 3 + rng.range(static_cast<int>(h) / 4 + 1));
        int px = rng.range(static_cast<int>(w) - pw + 1);
        int py = 60 + rng.range(std::max(1, static_cast<int>(h) - ph - 60 + 1));
        pic.fill(px, py, pw, ph, 235, 235, 235);
        pic.fill(px, py, pw, 18, 120, 70, 30);  // title bar
        for (int line = py + 28; line + 10 < py + ph; line += 16) {
            int x = px + 8;
            while (x < px + pw - 8) {
                int word = 6 + rng.range(40);
                if (x + word > px + pw - 8) break;
                pic.fill(x, line, word, 9, 40, 40, 40);
                x += word + 6;
            }
        }
    }
}

void drawDigit(Picture& pic, int ox, int oy, int digit) {
    uint8_t s = kSegments[static_cast<size_t>(digit)];
    auto seg = [&](int bit, int x, int y, int w, int h) {
        if (s & (1 << bit)) pic.fill(x, y, w, h, 255, 255, 255);
    };
    seg(0, ox, oy, kDigitW, kSeg);                                     // a
    seg(1, ox + kDigitW - kSeg, oy, kSeg, kDigitH / 2);                // b
    seg(2, ox + kDigitW - kSeg, oy + kDigitH / 2, kSeg, kDigitH / 2);  // c
    seg(3, ox, oy + kDigitH - kSeg, kDigitW, kSeg);                    // d
    seg(4, ox, oy + kDigitH / 2, kSeg, kDigitH / 2);                   // e
    seg(5, ox, oy, kSeg, kDigitH / 2);                                 // f
    seg(6, ox, oy + kDigitH / 2 - kSeg / 2, kDigitW, kSeg);            // g
}

void drawFrame(Picture& pic, uint64_t sequence) {
    const int w = static_cast<int>(pic.width), h = static_cast<int>(pic.height);
    // The moving block: a new position and colour every frame.
    int bs = std::max(1, std::min(w, h) / 8);
    int bx = static_cast<int>((sequence * 37) % static_cast<uint64_t>(w - bs + 1));
    int by = static_cast<int>((sequence * 23) % static_cast<uint64_t>(h - bs + 1));
    pic.fill(bx, by, bs, bs, static_cast<uint8_t>(sequence * 50),
             static_cast<uint8_t>(200 - sequence * 30), static_cast<uint8_t>(255 - sequence * 10));
    // The counter, drawn last so it is never covered.
    pic.fill(8, 8, 4 + kDigitPitch * kCounterDigits, 48, 0, 0, 0);
    uint64_t n = sequence;
    for (int i = kCounterDigits - 1; i >= 0; --i, n /= 10)
        drawDigit(pic, kDigitOriginX + kDigitPitch * i, kDigitOriginY, static_cast<int>(n % 10));
}

class SyntheticCapture : public deskstream::Capture {
public:
    static constexpr ds_config_key kConfigKeys[] = {
        {"width", DS_CONFIG_INT, "1920", 1, 8192, nullptr, "width of each monitor in pixels"},
        {"height", DS_CONFIG_INT, "1080", 1, 8192, nullptr, "height of each monitor in pixels"},
        {"monitors", DS_CONFIG_INT, "1", 1, 16, nullptr,
         "number of monitors (placed side by side)"},
        {"input_log", DS_CONFIG_STRING, "", 0, -1, nullptr,
         "file to which each input event received is appended as a JSON line (empty: none)"},
    };
    static constexpr int32_t kRank = 1;  // the last resort of capture = auto
    static constexpr const char* kVendor = "deskstream";

    static void probe(const deskstream::Host&, const deskstream::Config&) {}  // works everywhere

    SyntheticCapture(const deskstream::Host& host, const deskstream::Config& config) : host_(host) {
        width_ = static_cast<uint32_t>(config.getInt("width", 1920, 1, 8192));
        height_ = static_cast<uint32_t>(config.getInt("height", 1080, 1, 8192));
        uint32_t count = static_cast<uint32_t>(config.getInt("monitors", 1, 1, 16));
        const uint64_t bytes =
            uint64_t{width_} * height_ * 4 * count * (1 + DS_CAPTURE_MAX_HELD_FRAMES);
        if (bytes > (uint64_t{1} << 31))
            throw deskstream::Error(DS_ERR_CONFIG,
                                    "[" + config.section() + "] " + std::to_string(count) +
                                        " monitors of " + std::to_string(width_) + "x" +
                                        std::to_string(height_) + " need more than 2 GiB");
        inputLog_ = config.getString("input_log", "");
        monitors_.resize(count);
        for (uint32_t m = 0; m < count; ++m) {
            Monitor& mon = monitors_[m];
            mon.background =
                Picture{width_, height_, std::vector<uint8_t>(size_t{width_} * height_ * 4)};
            drawBackground(mon.background, m);
            for (auto& b : mon.buffers)
                b = Picture{width_, height_, std::vector<uint8_t>(size_t{width_} * height_ * 4)};
        }
        host_.info("synthetic capture: " + std::to_string(count) + " monitor(s) of " +
                   std::to_string(width_) + "x" + std::to_string(height_));
    }

    std::vector<ds_monitor_info> monitors() override {
        std::vector<ds_monitor_info> out(monitors_.size());
        for (uint32_t m = 0; m < out.size(); ++m) {
            ds_monitor_info& i = out[m];
            i.struct_size = sizeof i;
            i.index = m;
            std::snprintf(i.name, sizeof i.name, "synthetic-%u", m);
            i.x = static_cast<int32_t>(m * width_);
            i.y = 0;
            i.width = width_;
            i.height = height_;
            i.primary = m == 0 ? 1 : 0;
        }
        return out;
    }

    ds_status grab(uint32_t monitor, uint32_t, ds_frame& out) override {
        if (monitor >= monitors_.size())
            throw deskstream::Error(DS_ERR_INVALID_ARGUMENT, "monitor " + std::to_string(monitor) +
                                                                 " does not exist (there are " +
                                                                 std::to_string(monitors_.size()) +
                                                                 ")");
        Monitor& mon = monitors_[monitor];
        size_t slot = 0;
        while (slot < mon.held.size() && mon.held[slot]) ++slot;
        if (slot == mon.held.size())
            throw deskstream::Error(DS_ERR_INVALID_ARGUMENT,
                                    "monitor " + std::to_string(monitor) + ": " +
                                        std::to_string(mon.held.size()) +
                                        " frames are still held; release one first");
        Picture& pic = mon.buffers[slot];
        std::memcpy(pic.pixels.data(), mon.background.pixels.data(), pic.pixels.size());
        ++mon.sequence;
        drawFrame(pic, mon.sequence);
        mon.held[slot] = true;

        out.monitor = monitor;
        out.width = width_;
        out.height = height_;
        out.stride = width_ * 4;
        out.format = DS_PIXEL_BGRA;
        out.data = pic.pixels.data();
        out.capture_time_us = host_.wallUs();
        out.sequence = mon.sequence;
        out.damage = nullptr;
        out.damage_count = 0;
        out.plugin_data = &mon.held[slot];
        return DS_OK;
    }

    void release(ds_frame& frame) override {
        // plugin_data points at the held flag of the frame's buffer.
        for (auto& mon : monitors_)
            for (auto& held : mon.held)
                if (frame.plugin_data == &held) held = false;
    }

    void injectInput(const ds_input_event& ev) {
        if (ev.monitor >= monitors_.size())
            throw deskstream::Error(
                DS_ERR_INVALID_ARGUMENT,
                "input for monitor " + std::to_string(ev.monitor) + ", which does not exist");
        if (inputLog_.empty()) return;
        static const char* const names[] = {"",      "mouse_move", "mouse_down", "mouse_up",
                                            "wheel", "key_down",   "key_up"};
        const int type = static_cast<int>(ev.type);
        std::string line =
            std::string("{\"event\":\"") + (type >= 1 && type <= 6 ? names[type] : "unknown") +
            "\",\"monitor\":" + std::to_string(ev.monitor) + ",\"x\":" + std::to_string(ev.x) +
            ",\"y\":" + std::to_string(ev.y) + ",\"button\":" + std::to_string(ev.button) +
            ",\"deltaX\":" + std::to_string(ev.delta_x) +
            ",\"deltaY\":" + std::to_string(ev.delta_y);
        if (ev.key != nullptr) line += ",\"key\":" + jsonString(ev.key);
        line += "}\n";
        std::FILE* f = std::fopen(inputLog_.c_str(), "a");
        if (f == nullptr)
            throw deskstream::Error(DS_ERR_IO,
                                    "cannot append to [capture.synthetic] input_log " + inputLog_);
        const bool ok = std::fwrite(line.data(), 1, line.size(), f) == line.size();
        if (std::fclose(f) != 0 || !ok)
            throw deskstream::Error(DS_ERR_IO,
                                    "cannot write [capture.synthetic] input_log " + inputLog_);
    }

private:
    static std::string jsonString(const char* text) {
        std::string out = "\"";
        for (const char* p = text; *p != '\0'; ++p) {
            const unsigned char c = static_cast<unsigned char>(*p);
            if (c == '"' || c == '\\')
                out += '\\', out += static_cast<char>(c);
            else if (c < 0x20) {
                char esc[8];
                std::snprintf(esc, sizeof esc, "\\u%04x", c);
                out += esc;
            } else
                out += static_cast<char>(c);
        }
        return out + "\"";
    }

    struct Monitor {
        Picture background;
        // plugin.h: the host may hold up to DS_CAPTURE_MAX_HELD_FRAMES frames per monitor.
        std::array<Picture, DS_CAPTURE_MAX_HELD_FRAMES> buffers;
        std::array<bool, DS_CAPTURE_MAX_HELD_FRAMES> held{};
        uint64_t sequence = 0;
    };
    deskstream::Host host_;
    uint32_t width_ = 0, height_ = 0;
    std::vector<Monitor> monitors_;
    std::string inputLog_;
};

}  // namespace

DESKSTREAM_PLUGIN(SyntheticCapture, "synthetic", "1.0.0",
                  "Deterministic moving test picture with a readable frame counter")
