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
// Scenarios (`scenario`, docs/capture.md "synthetic"), for damage-driven streaming tests; all
// but `moving` change with time (the monotonic clock), not with the number of grabs, and a grab
// with nothing new waits for the next change up to its timeout, then gives DS_TIMEOUT (as a
// damage-driven plugin does):
//   moving     the picture above, new every grab (the default; no damage rectangles);
//   still      the background only; one picture, then DS_TIMEOUT;
//   typing     a text line gains a glyph every `typing.interval_ms` (wraps after 60 glyphs);
//              damage: the glyphs drawn since the last grab;
//   scrolling  a panel's content moves up 4 px every 33 ms; no damage (the agent compares);
//   video      a 960x540 area (clipped) of noise, new every 33 ms; damage: that area.
// `background` = a binary PPM (P6, 8-bit) replaces the generated background (the picture then
// takes the image's size), so tests can stream a real screenshot.
//
// Input: accepted (DS_CAPTURE_CAP_INPUT) and changes nothing on the picture. With `input_log`
// set, each event is appended to that file as one JSON line, so tests can check what reached
// the agent (docs/configuration.md, [capture.synthetic]).
#include "deskstream/plugin.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
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

// A binary PPM (P6, maxval 255) as a BGRA picture; throws with the reason.
Picture readPpm(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw deskstream::Error(DS_ERR_CONFIG, "cannot open background " + path);
    auto token = [&in]() {
        std::string t;
        char c;
        while (in.get(c)) {
            if (c == '#') {
                std::string skip;
                std::getline(in, skip);
            } else if (std::isspace(static_cast<unsigned char>(c))) {
                if (!t.empty()) break;
            } else {
                t += c;
            }
        }
        return t;
    };
    const std::string magic = token(), w = token(), h = token(), maxval = token();
    long width = 0, height = 0;
    try {
        width = std::stol(w);
        height = std::stol(h);
    } catch (const std::exception&) {
        width = height = 0;
    }
    if (magic != "P6" || maxval != "255" || width < 1 || height < 1 || width > 8192 ||
        height > 8192)
        throw deskstream::Error(DS_ERR_CONFIG, "background " + path +
                                                   " is not a binary 8-bit PPM (P6, maxval 255) "
                                                   "of at most 8192x8192");
    Picture pic{static_cast<uint32_t>(width), static_cast<uint32_t>(height),
                std::vector<uint8_t>(static_cast<size_t>(width) * height * 4)};
    std::vector<char> rgb(static_cast<size_t>(width) * height * 3);
    if (!in.read(rgb.data(), static_cast<std::streamsize>(rgb.size())))
        throw deskstream::Error(DS_ERR_CONFIG, "background " + path + " is truncated");
    for (size_t i = 0, n = static_cast<size_t>(width) * height; i < n; ++i) {
        pic.pixels[i * 4 + 0] = static_cast<uint8_t>(rgb[i * 3 + 2]);
        pic.pixels[i * 4 + 1] = static_cast<uint8_t>(rgb[i * 3 + 1]);
        pic.pixels[i * 4 + 2] = static_cast<uint8_t>(rgb[i * 3 + 0]);
        pic.pixels[i * 4 + 3] = 255;
    }
    return pic;
}

enum class Scenario { Moving, Still, Typing, Scrolling, Video };

// The typing scenario's line: glyph i at (kTypeX + i * kGlyphPitch, kTypeY).
constexpr int kTypeX = 200, kTypeY = 300, kGlyphW = 10, kGlyphH = 16, kGlyphPitch = 12;
constexpr int kLineGlyphs = 60;
// A glyph: a few strokes of one dark colour on a light box, different per glyph.
void drawGlyph(Picture& pic, int index) {
    const int x = kTypeX + (index % kLineGlyphs) * kGlyphPitch;
    Lcg rng{0x7e7700u + static_cast<uint32_t>(index)};
    pic.fill(x, kTypeY, kGlyphW, kGlyphH, 250, 250, 250);
    for (int stroke = 0; stroke < 3; ++stroke) {
        const bool vertical = rng.range(2) == 0;
        const int sx = x + rng.range(kGlyphW - 2), sy = kTypeY + rng.range(kGlyphH - 2);
        pic.fill(sx, sy, vertical ? 2 : kGlyphW - (sx - x), vertical ? kGlyphH - (sy - kTypeY) : 2,
                 20, 20, static_cast<uint8_t>(20 + 40 * (index % 3)));
    }
}
void clearLine(Picture& pic) {
    pic.fill(kTypeX - 4, kTypeY - 4, kLineGlyphs * kGlyphPitch + 8, kGlyphH + 8, 250, 250, 250);
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
        {"scenario", DS_CONFIG_STRING, "moving", 0, -1, "moving|still|typing|scrolling|video",
         "what changes: moving (every grab), still, typing, scrolling, video"},
        {"background", DS_CONFIG_STRING, "", 0, -1, nullptr,
         "binary PPM (P6) used as the background, at its own size (empty: generated)"},
        {"typing.interval_ms", DS_CONFIG_INT, "100", 1, 60000, nullptr,
         "typing scenario: one glyph every this many ms"},
    };
    static constexpr uint32_t kCapabilities = DS_CAPTURE_CAP_DAMAGE;
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
        const std::string scenario = config.getString("scenario", "moving");
        if (scenario == "moving")
            scenario_ = Scenario::Moving;
        else if (scenario == "still")
            scenario_ = Scenario::Still;
        else if (scenario == "typing")
            scenario_ = Scenario::Typing;
        else if (scenario == "scrolling")
            scenario_ = Scenario::Scrolling;
        else if (scenario == "video")
            scenario_ = Scenario::Video;
        else
            throw deskstream::Error(DS_ERR_CONFIG, "[" + config.section() + "] scenario = '" +
                                                       scenario +
                                                       "' is not one of "
                                                       "moving|still|typing|scrolling|video");
        typingIntervalUs_ =
            static_cast<uint64_t>(config.getInt("typing.interval_ms", 100, 1, 60000)) * 1000;
        const std::string backgroundPath = config.getString("background", "");
        Picture image;
        if (!backgroundPath.empty()) {
            image = readPpm(backgroundPath);
            width_ = image.width;
            height_ = image.height;
        }
        monitors_.resize(count);
        for (uint32_t m = 0; m < count; ++m) {
            Monitor& mon = monitors_[m];
            mon.background =
                Picture{width_, height_, std::vector<uint8_t>(size_t{width_} * height_ * 4)};
            if (backgroundPath.empty())
                drawBackground(mon.background, m);
            else
                mon.background.pixels = image.pixels;
            if (scenario_ == Scenario::Typing) clearLine(mon.background);
            for (auto& b : mon.buffers)
                b = Picture{width_, height_, std::vector<uint8_t>(size_t{width_} * height_ * 4)};
        }
        host_.info("synthetic capture: " + std::to_string(count) + " monitor(s) of " +
                   std::to_string(width_) + "x" + std::to_string(height_) + ", scenario " +
                   scenario);
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

    ds_status grab(uint32_t monitor, uint32_t timeoutMs, ds_frame& out) override {
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
        out.damage = nullptr;
        out.damage_count = 0;
        if (scenario_ == Scenario::Moving) {
            std::memcpy(pic.pixels.data(), mon.background.pixels.data(), pic.pixels.size());
            drawFrame(pic, mon.sequence + 1);
        } else if (!timed(mon, pic, timeoutMs, out)) {
            return DS_TIMEOUT;
        }
        ++mon.sequence;
        mon.held[slot] = true;

        out.monitor = monitor;
        out.width = width_;
        out.height = height_;
        out.stride = width_ * 4;
        out.format = DS_PIXEL_BGRA;
        out.data = pic.pixels.data();
        out.capture_time_us = host_.wallUs();
        out.sequence = mon.sequence;
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
        uint64_t startUs = 0;  // first grab (the scenarios' time origin)
        int64_t shown = -1;    // the step of the time-driven scenario last given; -1: none
        ds_rect damage{};
        Picture background;
        // plugin.h: the host may hold up to DS_CAPTURE_MAX_HELD_FRAMES frames per monitor.
        std::array<Picture, DS_CAPTURE_MAX_HELD_FRAMES> buffers;
        std::array<bool, DS_CAPTURE_MAX_HELD_FRAMES> held{};
        uint64_t sequence = 0;
    };
    // The step the scenario is at `us` after the start (a new picture per step).
    int64_t stepAt(uint64_t us) const {
        switch (scenario_) {
            case Scenario::Still:
                return 0;
            case Scenario::Typing:
                return static_cast<int64_t>(us / typingIntervalUs_);
            case Scenario::Scrolling:
            case Scenario::Video:
                return static_cast<int64_t>(us / 33333);
            case Scenario::Moving:
                break;
        }
        return 0;
    }
    uint64_t stepStartUs(int64_t step) const {
        const uint64_t period = scenario_ == Scenario::Typing ? typingIntervalUs_ : 33333;
        return scenario_ == Scenario::Still ? UINT64_MAX : static_cast<uint64_t>(step) * period;
    }

    // The time-driven scenarios: waits (up to the timeout) for the next step, then draws it
    // into `pic` with its damage. False: nothing new within the timeout.
    bool timed(Monitor& mon, Picture& pic, uint32_t timeoutMs, ds_frame& out) {
        const uint64_t now = host_.monotonicUs();
        if (mon.startUs == 0) mon.startUs = now;
        int64_t step = stepAt(now - mon.startUs);
        if (step == mon.shown) {
            const uint64_t next = stepStartUs(step + 1);
            const uint64_t waitUs =
                next == UINT64_MAX ? uint64_t{timeoutMs} * 1000 : mon.startUs + next - now;
            if (waitUs > uint64_t{timeoutMs} * 1000) {
                std::this_thread::sleep_for(std::chrono::milliseconds(timeoutMs));
                return false;
            }
            std::this_thread::sleep_for(std::chrono::microseconds(waitUs));
            step = stepAt(host_.monotonicUs() - mon.startUs);
            if (step == mon.shown) return false;
        }
        std::memcpy(pic.pixels.data(), mon.background.pixels.data(), pic.pixels.size());
        const int w = static_cast<int>(width_), h = static_cast<int>(height_);
        const bool first = mon.shown < 0;
        switch (scenario_) {
            case Scenario::Typing: {
                const int64_t lineStart = step - step % kLineGlyphs;
                for (int64_t g = lineStart; g <= step; ++g) drawGlyph(pic, static_cast<int>(g));
                const int64_t from = std::max<int64_t>(mon.shown + 1, lineStart);
                const bool wrapped = mon.shown >= 0 && mon.shown < lineStart;
                const int x0 = kTypeX + static_cast<int>(from % kLineGlyphs) * kGlyphPitch;
                const int x1 =
                    kTypeX + static_cast<int>(step % kLineGlyphs) * kGlyphPitch + kGlyphW;
                mon.damage = wrapped ? ds_rect{kTypeX - 4, kTypeY - 4,
                                               kLineGlyphs * kGlyphPitch + 8, kGlyphH + 8}
                                     : ds_rect{static_cast<uint32_t>(x0), kTypeY,
                                               static_cast<uint32_t>(x1 - x0), kGlyphH};
                break;
            }
            case Scenario::Scrolling: {
                // A panel in the middle whose rows are the background's, shifted by 4 px a step.
                const int px = w / 4, py = h / 4, pw = w / 2, ph = h / 2;
                const int shift = static_cast<int>((step * 4) % std::max(ph, 1));
                for (int y = 0; y < ph; ++y) {
                    const int src = py + (y + shift) % ph;
                    std::memcpy(
                        pic.pixels.data() + (static_cast<size_t>(py + y) * w + px) * 4,
                        mon.background.pixels.data() + (static_cast<size_t>(src) * w + px) * 4,
                        static_cast<size_t>(pw) * 4);
                }
                break;  // no damage: the agent compares tiles
            }
            case Scenario::Video: {
                const int vw = std::min(960, w), vh = std::min(540, h);
                const int vx = (w - vw) / 2, vy = (h - vh) / 2;
                Lcg rng{static_cast<uint32_t>(step) * 2654435761u + 1};
                for (int y = 0; y < vh; ++y) {
                    uint8_t* p = pic.pixels.data() + (static_cast<size_t>(vy + y) * w + vx) * 4;
                    for (int x = 0; x < vw; ++x, p += 4) {
                        const uint32_t r = rng.next();
                        p[0] = static_cast<uint8_t>(r >> 8), p[1] = static_cast<uint8_t>(r >> 16);
                        p[2] = static_cast<uint8_t>(r >> 24), p[3] = 255;
                    }
                }
                mon.damage = ds_rect{static_cast<uint32_t>(vx), static_cast<uint32_t>(vy),
                                     static_cast<uint32_t>(vw), static_cast<uint32_t>(vh)};
                break;
            }
            case Scenario::Still:
            case Scenario::Moving:
                break;
        }
        // Damage is relative to the previous picture given; the first one is all new.
        if (!first && (scenario_ == Scenario::Typing || scenario_ == Scenario::Video)) {
            out.damage = &mon.damage;
            out.damage_count = 1;
        }
        mon.shown = step;
        return true;
    }

    deskstream::Host host_;
    Scenario scenario_ = Scenario::Moving;
    uint64_t typingIntervalUs_ = 100000;
    uint32_t width_ = 0, height_ = 0;
    std::vector<Monitor> monitors_;
    std::string inputLog_;
};

}  // namespace

DESKSTREAM_PLUGIN(SyntheticCapture, "synthetic", "1.0.0",
                  "Deterministic moving test picture with a readable frame counter")
