// deskstream capture plugin "x11": the screens of an X11 display (docs/capture.md).
//
// - Pixels: XShmGetImage of each monitor's rectangle of the root window straight into a MIT-SHM
//   segment that is the frame buffer (no XGetImage, no copy). Two segments per monitor, created
//   at the first grab of that monitor and reused (plugin.h: the host may hold two frames).
// - Monitors: XRandR 1.5 monitors (so `xrandr --setmonitor` splits count), clipped to the root
//   window; without RandR 1.5 the whole root window is one monitor.
// - Changes: one XDamage object on the root window. Its rectangles are handed to every monitor
//   they touch and become the damage of that monitor's next frame; a monitor with no damage
//   waits for some until the timeout and then gives DS_TIMEOUT.
// - Cursor: with `cursor = true` the XFixes cursor image is blended into each frame; a pointer
//   move or a new cursor shape counts as damage of the old and new cursor areas.
// - Layout changes (root resized, monitors added, moved or removed): seen through RandR and
//   ConfigureNotify events and a periodic re-read; the next grab returns DS_REINIT once, and
//   later grabs give frames of the new geometry. Segments of frames still held are kept until
//   their release.
// - Input: XTest, coordinates relative to the event's monitor (dom_keysym.hpp for key names).
#include "deskstream/plugin.hpp"
#include "dom_keysym.hpp"
#include "shm_image.hpp"

#include <X11/Xatom.h>
#include <X11/Xlib.h>
#include <X11/Xutil.h>
#include <X11/extensions/XShm.h>
#include <X11/extensions/XTest.h>
#include <X11/extensions/Xdamage.h>
#include <X11/extensions/Xfixes.h>
#include <X11/extensions/Xrandr.h>

#include <poll.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace {

using deskstream::Error;

constexpr size_t kMaxDamageRects = 64;  // more: the monitor's damage becomes their bounding box
constexpr uint64_t kLayoutRecheckUs = 500000;  // re-read the layout at least this often
constexpr int kPointerPollMs = 10;  // pointer position check while waiting (cursor = true)

std::string displayName(const deskstream::Config& config) {
    std::string name = config.getString("display", "");
    if (name.empty()) {
        const char* env = std::getenv("DISPLAY");
        name = env ? env : "";
    }
    if (name.empty())
        throw Error(DS_ERR_UNSUPPORTED, "no X display: [" + config.section() +
                                            "] display is empty and $DISPLAY is not set");
    return name;
}

struct DisplayCloser {
    void operator()(Display* d) const {
        if (d) XCloseDisplay(d);
    }
};
using DisplayPtr = std::unique_ptr<Display, DisplayCloser>;

// Opens the display and checks every extension the plugin uses. Throws with the reason.
struct Extensions {
    int damageEvent = 0, fixesEvent = 0, randrEvent = 0;
    bool monitors = false;  // RandR >= 1.5
};

DisplayPtr openDisplay(const std::string& name, Extensions& ext) {
    DisplayPtr d(XOpenDisplay(name.c_str()));
    if (!d) throw Error(DS_ERR_UNSUPPORTED, "cannot open X display '" + name + "'");
    int major = 0, minor = 0, error = 0;
    Bool pixmaps = False;
    if (!XShmQueryVersion(d.get(), &major, &minor, &pixmaps))
        throw Error(DS_ERR_UNSUPPORTED, "X display '" + name + "' has no MIT-SHM extension");
    if (!XDamageQueryExtension(d.get(), &ext.damageEvent, &error))
        throw Error(DS_ERR_UNSUPPORTED, "X display '" + name + "' has no DAMAGE extension");
    if (!XFixesQueryExtension(d.get(), &ext.fixesEvent, &error))
        throw Error(DS_ERR_UNSUPPORTED, "X display '" + name + "' has no XFIXES extension");
    // XFIXES and DAMAGE require a client to announce its version before any other request.
    int fixesMajor = 0, fixesMinor = 0;
    XFixesQueryVersion(d.get(), &fixesMajor, &fixesMinor);
    int damageMajor = 0, damageMinor = 0;
    XDamageQueryVersion(d.get(), &damageMajor, &damageMinor);
    int evBase = 0;
    if (!XTestQueryExtension(d.get(), &evBase, &error, &major, &minor))
        throw Error(DS_ERR_UNSUPPORTED, "X display '" + name + "' has no XTEST extension");
    if (XRRQueryExtension(d.get(), &ext.randrEvent, &error) &&
        XRRQueryVersion(d.get(), &major, &minor))
        ext.monitors = major > 1 || (major == 1 && minor >= 5);
    return d;
}

bool sameLayout(const std::vector<ds_monitor_info>& a, const std::vector<ds_monitor_info>& b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
        if (a[i].x != b[i].x || a[i].y != b[i].y || a[i].width != b[i].width ||
            a[i].height != b[i].height || a[i].primary != b[i].primary ||
            std::strcmp(a[i].name, b[i].name) != 0)
            return false;
    return true;
}

// Intersection of a root-window rectangle with a monitor, in monitor coordinates.
bool clipToMonitor(long x, long y, long w, long h, const ds_monitor_info& m, ds_rect& out) {
    const long x0 = std::max(x, static_cast<long>(m.x)), y0 = std::max(y, static_cast<long>(m.y));
    const long x1 = std::min(x + w, static_cast<long>(m.x) + m.width);
    const long y1 = std::min(y + h, static_cast<long>(m.y) + m.height);
    if (x1 <= x0 || y1 <= y0) return false;
    out = {static_cast<uint32_t>(x0 - m.x), static_cast<uint32_t>(y0 - m.y),
           static_cast<uint32_t>(x1 - x0), static_cast<uint32_t>(y1 - y0)};
    return true;
}

class X11Capture : public deskstream::Capture {
public:
    static constexpr ds_config_key kConfigKeys[] = {
        {"display", DS_CONFIG_STRING, "", 0, -1, nullptr,
         "X display to capture, e.g. :0; empty: $DISPLAY"},
        {"cursor", DS_CONFIG_BOOL, "true", 0, -1, nullptr,
         "draw the mouse cursor into the frames (XFixes)"},
    };
    static constexpr int32_t kRank = 60;  // capture = auto: after dxgi (100), before pipewire (50)
    static constexpr uint32_t kCapabilities = DS_CAPTURE_CAP_DAMAGE | DS_CAPTURE_CAP_CURSOR;
    static constexpr const char* kVendor = "deskstream";

    static void probe(const deskstream::Host&, const deskstream::Config& config) {
        // In a Wayland session $DISPLAY is Xwayland, which shows only X clients: leave such a
        // session to pipewire unless a display is named explicitly (docs/capture.md).
        const char* wayland = std::getenv("WAYLAND_DISPLAY");
        if (config.getString("display", "").empty() && wayland && *wayland)
            throw Error(DS_ERR_UNSUPPORTED,
                        "a Wayland session (WAYLAND_DISPLAY is set): X11 capture would see only "
                        "Xwayland clients; use pipewire, or set [" +
                            config.section() + "] display");
        Extensions ext;
        openDisplay(displayName(config), ext);  // closed again at once
    }

    X11Capture(const deskstream::Host& host, const deskstream::Config& config)
        : host_(host), name_(displayName(config)), cursor_(config.getBool("cursor", true)) {
        ds_x11::installErrorTrap();
        display_ = openDisplay(name_, ext_);
        Display* d = display_.get();
        // Xlib's default on a lost connection is exit(); this handler returns instead, and
        // every call after it reports the loss as an error (checkConnection).
        XSetIOErrorExitHandler(d, &onConnectionLost, this);
        screen_ = DefaultScreen(d);
        root_ = RootWindow(d, screen_);
        visual_ = DefaultVisual(d, screen_);
        depth_ = DefaultDepth(d, screen_);
        format_ = pixelFormat();
        damage_ = XDamageCreate(d, root_, XDamageReportNonEmpty);
        region_ = XFixesCreateRegion(d, nullptr, 0);
        XSelectInput(d, root_, StructureNotifyMask);
        if (ext_.monitors)
            XRRSelectInput(
                d, root_,
                RRScreenChangeNotifyMask | RRCrtcChangeNotifyMask | RROutputChangeNotifyMask);
        if (cursor_) XFixesSelectCursorInput(d, root_, XFixesDisplayCursorNotifyMask);
        XSync(d, False);
        if (int e = ds_x11::takeError())
            throw Error(DS_ERR_UNSUPPORTED, "X display '" + name_ +
                                                "': setting up damage tracking failed (X error " +
                                                std::to_string(e) + ")");
        rebuildMonitors(readLayout());
        if (cursor_) readPointer(pointerX_, pointerY_);
        std::string list;
        for (const Monitor& m : monitors_)
            list += std::string(list.empty() ? "" : ", ") + m.info.name + " " +
                    std::to_string(m.info.width) + "x" + std::to_string(m.info.height) + "+" +
                    std::to_string(m.info.x) + "+" + std::to_string(m.info.y) +
                    (m.info.primary ? " primary" : "");
        host_.info("x11 capture: display " + name_ + ", " + std::to_string(monitors_.size()) +
                   " monitor(s): " + list + (cursor_ ? ", cursor drawn" : ""));
    }

    ~X11Capture() override {
        if (lost_) {  // nothing can be sent any more: only this process's side is undone
            for (Monitor& m : monitors_)
                for (auto& b : m.buffers)
                    if (b && b->shm) b->shm->abandon();
            for (auto& b : retired_)
                if (b->shm) b->shm->abandon();
            monitors_.clear();
            retired_.clear();
            return;  // display_ is closed by its deleter
        }
        monitors_.clear();  // detaches the segments while the display is open
        retired_.clear();
        if (display_) {
            XFixesDestroyRegion(display_.get(), region_);
            XDamageDestroy(display_.get(), damage_);
            XSync(display_.get(), False);
        }
    }

    std::vector<ds_monitor_info> monitors() override {
        checkConnection();
        pumpEvents();
        if (layoutChanged_) applyNewLayout();  // the caller asks for the new layout: it is told
        std::vector<ds_monitor_info> out;
        for (const Monitor& m : monitors_) out.push_back(m.info);
        return out;
    }

    ds_status grab(uint32_t monitor, uint32_t timeoutMs, ds_frame& out) override {
        const uint64_t deadline = host_.monotonicUs() + uint64_t{timeoutMs} * 1000;
        checkConnection();
        pumpEvents();
        if (layoutChanged_) return applyNewLayout();
        Monitor& mon = monitorAt(monitor);
        if (cursor_) checkPointer();
        while (!mon.fullDamage && mon.pending.empty()) {
            const uint64_t now = host_.monotonicUs();
            if (now >= deadline) return DS_TIMEOUT;
            int waitMs = static_cast<int>((deadline - now + 999) / 1000);
            if (cursor_) waitMs = std::min(waitMs, kPointerPollMs);
            waitForEvents(waitMs);
            pumpEvents();
            if (layoutChanged_) return applyNewLayout();
            if (cursor_) checkPointer();
        }

        Buffer* buf = nullptr;
        for (auto& b : mon.buffers)
            if (!b->held) buf = b.get();
        if (!buf)
            throw Error(DS_ERR_INVALID_ARGUMENT, "monitor " + std::to_string(monitor) + ": " +
                                                     std::to_string(mon.buffers.size()) +
                                                     " frames are still held; release one first");
        if (!buf->shm)
            buf->shm = std::make_unique<ds_x11::ShmImage>(display_.get(), visual_, depth_,
                                                          mon.info.width, mon.info.height);
        ds_x11::takeError();
        if (!XShmGetImage(display_.get(), root_, buf->shm->image(), mon.info.x, mon.info.y,
                          AllPlanes)) {
            const int error = ds_x11::takeError();
            checkConnection();
            // The usual cause: the screen shrank under the monitor since the layout was read.
            checkLayout();
            if (layoutChanged_) return applyNewLayout();
            throw Error(DS_ERR_IO, "XShmGetImage of monitor " + std::to_string(monitor) +
                                       " failed (X error " + std::to_string(error) + ")");
        }
        if (cursor_) drawCursor(mon, *buf);

        buf->damage.clear();
        if (!mon.fullDamage) buf->damage.swap(mon.pending);
        mon.pending.clear();
        mon.fullDamage = false;
        buf->held = true;
        out.monitor = monitor;
        out.width = mon.info.width;
        out.height = mon.info.height;
        out.stride = buf->shm->stride();
        out.format = format_;
        out.data = buf->shm->data();
        out.capture_time_us = host_.wallUs();
        out.sequence = ++mon.sequence;
        out.damage = buf->damage.empty() ? nullptr : buf->damage.data();
        out.damage_count = static_cast<uint32_t>(buf->damage.size());
        out.plugin_data = buf;
        return DS_OK;
    }

    void release(ds_frame& frame) override {
        for (auto it = retired_.begin(); it != retired_.end(); ++it)
            if (it->get() == frame.plugin_data) {
                retired_.erase(it);  // a segment of the previous layout: detached now
                return;
            }
        for (Monitor& m : monitors_)
            for (auto& b : m.buffers)
                if (b.get() == frame.plugin_data) b->held = false;
    }

    void injectInput(const ds_input_event& ev) {
        Display* d = display_.get();
        checkConnection();
        pumpEvents();
        const Monitor& mon = monitorAt(ev.monitor);
        const bool pointerEvent = ev.type == DS_INPUT_MOUSE_MOVE ||
                                  ev.type == DS_INPUT_MOUSE_DOWN || ev.type == DS_INPUT_MOUSE_UP ||
                                  ev.type == DS_INPUT_WHEEL;
        ds_x11::takeError();
        if (pointerEvent) {
            if (ev.x < 0 || ev.y < 0 || static_cast<uint32_t>(ev.x) >= mon.info.width ||
                static_cast<uint32_t>(ev.y) >= mon.info.height)
                throw Error(DS_ERR_INVALID_ARGUMENT,
                            "input: (" + std::to_string(ev.x) + ", " + std::to_string(ev.y) +
                                ") is outside monitor " + std::to_string(ev.monitor) + " (" +
                                std::to_string(mon.info.width) + "x" +
                                std::to_string(mon.info.height) + ")");
            XTestFakeMotionEvent(d, screen_, mon.info.x + ev.x, mon.info.y + ev.y, CurrentTime);
        }
        switch (ev.type) {
            case DS_INPUT_MOUSE_MOVE:
                break;
            case DS_INPUT_MOUSE_DOWN:
            case DS_INPUT_MOUSE_UP:
                XTestFakeButtonEvent(d, xButton(ev.button), ev.type == DS_INPUT_MOUSE_DOWN,
                                     CurrentTime);
                break;
            case DS_INPUT_WHEEL:
                wheel(ev.delta_y, 5, 4);  // DOM: positive deltaY scrolls down (X button 5)
                wheel(ev.delta_x, 7, 6);  // positive deltaX scrolls right (X button 7)
                break;
            case DS_INPUT_KEY_DOWN:
            case DS_INPUT_KEY_UP: {
                const std::string key = ev.key ? ev.key : "";
                const uint32_t keysym = ds_x11::domKeyToKeysym(key);
                if (keysym == 0)
                    throw Error(DS_ERR_INVALID_ARGUMENT, "input: unknown key name '" + key + "'");
                XTestFakeKeyEvent(d, keycodeFor(keysym, key), ev.type == DS_INPUT_KEY_DOWN,
                                  CurrentTime);
                break;
            }
            default:
                throw Error(DS_ERR_INVALID_ARGUMENT,
                            "input: unknown event type " + std::to_string(ev.type));
        }
        XSync(d, False);
        checkConnection();
        if (int e = ds_x11::takeError())
            throw Error(DS_ERR_IO, "input: the X server refused the event (X error " +
                                       std::to_string(e) + ")");
    }

private:
    struct Buffer {
        std::unique_ptr<ds_x11::ShmImage> shm;  // created at the first grab into this buffer
        std::vector<ds_rect> damage;            // what the frame in this buffer points at
        bool held = false;
    };
    struct Monitor {
        ds_monitor_info info{};
        // plugin.h: the host may hold up to DS_CAPTURE_MAX_HELD_FRAMES frames per monitor.
        std::array<std::unique_ptr<Buffer>, DS_CAPTURE_MAX_HELD_FRAMES> buffers;
        std::vector<ds_rect> pending;  // damage since this monitor's last frame
        bool fullDamage = true;        // the next frame is a whole new picture
        uint64_t sequence = 0;
    };

    ds_pixel_format pixelFormat() const {
        // The frames are the server's pixels as they are: 32-bit little-endian xRGB (B,G,R,x).
        int count = 0;
        XPixmapFormatValues* formats = XListPixmapFormats(display_.get(), &count);
        int bpp = 0;
        for (int i = 0; i < count; ++i)
            if (formats[i].depth == depth_) bpp = formats[i].bits_per_pixel;
        if (formats) XFree(formats);
        if ((depth_ != 24 && depth_ != 32) || bpp != 32 || visual_->red_mask != 0xFF0000 ||
            visual_->green_mask != 0xFF00 || visual_->blue_mask != 0xFF ||
            ImageByteOrder(display_.get()) != LSBFirst)
            throw Error(DS_ERR_UNSUPPORTED,
                        "X display '" + name_ + "': depth " + std::to_string(depth_) + " with " +
                            std::to_string(bpp) +
                            " bits per pixel is not supported (needs 24/32-bit xRGB, LSB first)");
        return DS_PIXEL_BGRX;
    }

    Monitor& monitorAt(uint32_t index) {
        if (index >= monitors_.size())
            throw Error(DS_ERR_INVALID_ARGUMENT, "monitor " + std::to_string(index) +
                                                     " does not exist (there are " +
                                                     std::to_string(monitors_.size()) + ")");
        return monitors_[index];
    }

    std::vector<ds_monitor_info> readLayout() {
        Display* d = display_.get();
        Window rootReturn = 0;
        int gx = 0, gy = 0;
        unsigned int rootW = 0, rootH = 0, border = 0, depth = 0;
        XGetGeometry(d, root_, &rootReturn, &gx, &gy, &rootW, &rootH, &border, &depth);
        std::vector<ds_monitor_info> out;
        auto add = [&](const char* name, long x, long y, long w, long h, bool primary) {
            ds_monitor_info m{};
            m.struct_size = sizeof m;
            ds_rect r{};
            ds_monitor_info screen{};
            screen.width = rootW, screen.height = rootH;
            if (!clipToMonitor(x, y, w, h, screen, r)) return;  // entirely off screen
            m.index = static_cast<uint32_t>(out.size());
            std::snprintf(m.name, sizeof m.name, "%s", name);
            m.x = static_cast<int32_t>(r.x), m.y = static_cast<int32_t>(r.y);
            m.width = r.width, m.height = r.height;
            m.primary = primary ? 1 : 0;
            out.push_back(m);
        };
        if (ext_.monitors) {
            int n = 0;
            XRRMonitorInfo* list = XRRGetMonitors(d, root_, True, &n);
            for (int i = 0; i < n; ++i) {
                char* atomName = XGetAtomName(d, list[i].name);
                add(atomName ? atomName : "monitor", list[i].x, list[i].y, list[i].width,
                    list[i].height, list[i].primary != 0);
                if (atomName) XFree(atomName);
            }
            if (list) XRRFreeMonitors(list);
        }
        if (out.empty()) add("screen", 0, 0, rootW, rootH, true);
        if (!out.empty() && std::none_of(out.begin(), out.end(),
                                         [](const ds_monitor_info& m) { return m.primary != 0; }))
            out.front().primary = 1;  // the host shows the primary first; X may not name one
        lastLayoutCheckUs_ = host_.monotonicUs();
        return out;
    }

    void rebuildMonitors(const std::vector<ds_monitor_info>& layout) {
        for (Monitor& m : monitors_)
            for (auto& b : m.buffers)
                if (b && b->held) retired_.push_back(std::move(b));  // released later by release()
        monitors_.clear();
        monitors_.resize(layout.size());
        for (size_t i = 0; i < layout.size(); ++i) {
            monitors_[i].info = layout[i];
            for (auto& b : monitors_[i].buffers) b = std::make_unique<Buffer>();
        }
    }

    ds_status applyNewLayout() {
        layoutChanged_ = false;
        std::vector<ds_monitor_info> layout = readLayout();
        checkConnection();
        rebuildMonitors(layout);
        std::string list;
        for (const auto& m : layout)
            list += std::string(list.empty() ? "" : ", ") + m.name + " " + std::to_string(m.width) +
                    "x" + std::to_string(m.height) + "+" + std::to_string(m.x) + "+" +
                    std::to_string(m.y);
        host_.info("x11 capture: display " + name_ + " changed: " + std::to_string(layout.size()) +
                   " monitor(s): " + list);
        return DS_REINIT;
    }

    void checkLayout() {
        if (lost_) return;
        std::vector<ds_monitor_info> current;
        for (const Monitor& m : monitors_) current.push_back(m.info);
        if (!sameLayout(current, readLayout())) layoutChanged_ = true;
    }

    void waitForEvents(int timeoutMs) {
        XFlush(display_.get());
        if (XPending(display_.get()) > 0) return;
        pollfd p{ConnectionNumber(display_.get()), POLLIN, 0};
        poll(&p, 1, timeoutMs);
    }

    // Handles every queued event without blocking.
    void pumpEvents() {
        Display* d = display_.get();
        bool layoutEvent = false;
        while (!lost_ && XPending(d) > 0) {
            XEvent ev;
            XNextEvent(d, &ev);
            if (ev.type == ext_.damageEvent + XDamageNotify) {
                collectDamage();
            } else if (ev.type == ext_.fixesEvent + XFixesCursorNotify) {
                cursorDamage(pointerX_, pointerY_);
            } else if (ev.type == ConfigureNotify) {
                layoutEvent = true;
            } else if (ext_.monitors && (ev.type == ext_.randrEvent + RRScreenChangeNotify ||
                                         ev.type == ext_.randrEvent + RRNotify)) {
                XRRUpdateConfiguration(&ev);
                layoutEvent = true;
            }
        }
        checkConnection();
        if (layoutEvent || host_.monotonicUs() - lastLayoutCheckUs_ >= kLayoutRecheckUs)
            checkLayout();
        checkConnection();
    }

    static void onConnectionLost(Display*, void* self) {
        static_cast<X11Capture*>(self)->lost_ = true;
    }

    void checkConnection() const {
        if (lost_)
            throw Error(DS_ERR_IO,
                        "X display '" + name_ + "': the connection to the X server was lost");
    }

    // Moves the damage accumulated by the server into each monitor's pending list.
    void collectDamage() {
        Display* d = display_.get();
        XDamageSubtract(d, damage_, None, region_);
        int count = 0;
        XRectangle bounds{};
        XRectangle* rects = XFixesFetchRegionAndBounds(d, region_, &count, &bounds);
        for (int i = 0; i < count; ++i)
            addDamage(rects[i].x, rects[i].y, rects[i].width, rects[i].height);
        if (rects) XFree(rects);
    }

    void addDamage(long x, long y, long w, long h) {
        for (Monitor& m : monitors_) {
            ds_rect r{};
            if (m.fullDamage || !clipToMonitor(x, y, w, h, m.info, r)) continue;
            m.pending.push_back(r);
            if (m.pending.size() > kMaxDamageRects) {
                uint32_t x0 = UINT32_MAX, y0 = UINT32_MAX, x1 = 0, y1 = 0;
                for (const ds_rect& p : m.pending) {
                    x0 = std::min(x0, p.x), y0 = std::min(y0, p.y);
                    x1 = std::max(x1, p.x + p.width), y1 = std::max(y1, p.y + p.height);
                }
                m.pending.assign(1, ds_rect{x0, y0, x1 - x0, y1 - y0});
            }
        }
    }

    // ---- cursor
    bool readPointer(int& x, int& y) {
        Window rootReturn = 0, child = 0;
        int wx = 0, wy = 0;
        unsigned int mask = 0;
        return XQueryPointer(display_.get(), root_, &rootReturn, &child, &x, &y, &wx, &wy, &mask) !=
               False;
    }

    void cursorDamage(int x, int y) {
        addDamage(x - cursorHotX_, y - cursorHotY_, cursorW_, cursorH_);
    }

    void checkPointer() {
        int x = 0, y = 0;
        if (!readPointer(x, y) || (x == pointerX_ && y == pointerY_)) return;
        cursorDamage(pointerX_, pointerY_);
        pointerX_ = x, pointerY_ = y;
        cursorDamage(x, y);
    }

    // Blends the current cursor (premultiplied ARGB) over the frame.
    void drawCursor(const Monitor& mon, Buffer& buf) {
        XFixesCursorImage* ci = XFixesGetCursorImage(display_.get());
        if (!ci) return;
        cursorW_ = ci->width, cursorH_ = ci->height, cursorHotX_ = ci->xhot, cursorHotY_ = ci->yhot;
        const long left = ci->x - ci->xhot - mon.info.x, top = ci->y - ci->yhot - mon.info.y;
        uint8_t* pixels = buf.shm->data();
        const uint32_t stride = buf.shm->stride();
        for (long cy = 0; cy < ci->height; ++cy) {
            const long y = top + cy;
            if (y < 0 || y >= static_cast<long>(mon.info.height)) continue;
            for (long cx = 0; cx < ci->width; ++cx) {
                const long x = left + cx;
                if (x < 0 || x >= static_cast<long>(mon.info.width)) continue;
                const uint32_t argb = static_cast<uint32_t>(ci->pixels[cy * ci->width + cx]);
                const uint32_t a = argb >> 24;
                if (a == 0) continue;
                uint8_t* p = pixels + static_cast<size_t>(y) * stride + static_cast<size_t>(x) * 4;
                const uint32_t keep = 255 - a;
                p[0] = static_cast<uint8_t>((argb & 0xFF) + p[0] * keep / 255);
                p[1] = static_cast<uint8_t>(((argb >> 8) & 0xFF) + p[1] * keep / 255);
                p[2] = static_cast<uint8_t>(((argb >> 16) & 0xFF) + p[2] * keep / 255);
            }
        }
        XFree(ci);
    }

    // ---- input
    static unsigned int xButton(int domButton) {
        switch (domButton) {
            case 0:
                return 1;  // left
            case 1:
                return 2;  // middle
            case 2:
                return 3;  // right
            case 3:
                return 8;  // back
            case 4:
                return 9;  // forward
            default:
                throw Error(DS_ERR_INVALID_ARGUMENT,
                            "input: unknown mouse button " + std::to_string(domButton));
        }
    }

    // One wheel click per 100 units of DOM delta (a typical notch), at least one, at most 50.
    void wheel(int32_t delta, unsigned int positive, unsigned int negative) {
        if (delta == 0) return;
        const long magnitude = std::labs(static_cast<long>(delta));
        const long clicks = std::min(50L, std::max(1L, (magnitude + 50) / 100));
        const unsigned int button = delta > 0 ? positive : negative;
        for (long i = 0; i < clicks; ++i) {
            XTestFakeButtonEvent(display_.get(), button, True, CurrentTime);
            XTestFakeButtonEvent(display_.get(), button, False, CurrentTime);
        }
    }

    // The keycode that produces `keysym`. A keysym missing from the keyboard map (a character
    // of another layout) is bound to a keycode that has no keysym, as xdotool does; the
    // binding is kept so the matching key_up finds the same keycode.
    KeyCode keycodeFor(uint32_t keysym, const std::string& domKey) {
        Display* d = display_.get();
        if (KeyCode code = XKeysymToKeycode(d, keysym)) return code;
        auto bound = boundKeys_.find(keysym);
        if (bound != boundKeys_.end()) return bound->second;
        int minCode = 0, maxCode = 0, perCode = 0;
        XDisplayKeycodes(d, &minCode, &maxCode);
        KeySym* map =
            XGetKeyboardMapping(d, static_cast<KeyCode>(minCode), maxCode - minCode + 1, &perCode);
        KeyCode spare = 0;
        for (int code = maxCode; map && code >= minCode && spare == 0; --code) {
            bool empty = true;
            for (int i = 0; i < perCode; ++i)
                if (map[(code - minCode) * perCode + i] != NoSymbol) empty = false;
            if (empty) spare = static_cast<KeyCode>(code);
        }
        if (map) XFree(map);
        if (spare == 0 && !boundKeys_.empty()) {  // reuse the oldest binding of ours
            spare = boundKeys_.begin()->second;
            boundKeys_.erase(boundKeys_.begin());
        }
        if (spare == 0)
            throw Error(DS_ERR_UNSUPPORTED, "input: no free keycode to type '" + domKey + "'");
        KeySym syms[2] = {keysym, keysym};
        XChangeKeyboardMapping(d, spare, 2, syms, 1);
        XSync(d, False);
        boundKeys_[keysym] = spare;
        return spare;
    }

    deskstream::Host host_;
    std::string name_;
    bool cursor_;
    DisplayPtr display_;
    Extensions ext_;
    int screen_ = 0;
    Window root_ = 0;
    Visual* visual_ = nullptr;
    int depth_ = 0;
    ds_pixel_format format_ = DS_PIXEL_BGRX;
    Damage damage_ = 0;
    XserverRegion region_ = 0;
    std::vector<Monitor> monitors_;
    std::vector<std::unique_ptr<Buffer>> retired_;  // held frames of a previous layout
    bool layoutChanged_ = false;
    bool lost_ = false;  // the X connection broke (server gone): every call fails with DS_ERR_IO
    uint64_t lastLayoutCheckUs_ = 0;
    int pointerX_ = 0, pointerY_ = 0;
    int cursorW_ = 32, cursorH_ = 32, cursorHotX_ = 16, cursorHotY_ = 16;  // until the first image
    std::map<uint32_t, KeyCode> boundKeys_;
};

}  // namespace

DESKSTREAM_PLUGIN(
    X11Capture, "x11", "1.0.0",
    "X11 screens through MIT-SHM, XRandR monitors, XDamage changes, XFixes cursor, XTest input")
