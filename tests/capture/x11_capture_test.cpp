// The x11 capture plugin against a real X server: the Xvfb that scripts/test.sh starts
// (scripts/lib/xvfb.sh, DESKSTREAM_TEST_X11_DISPLAY), 3840x1080 split into two monitors with
// `xrandr --setmonitor`. The plugin is loaded through its C entry point, as the host does; the
// test draws, reads the pointer and receives key events over its own X connection.
// Every test puts the screen back to the same layout first, so the order does not matter
// (ctest runs them one at a time: RESOURCE_LOCK x11_display).
#include "ds_test/plugin_fixture.hpp"

#include <gtest/gtest.h>

// After gtest: Xlib's macros (None, Bool, Status) would break its templates.
#include <X11/Xlib.h>
#include <X11/Xutil.h>
#include <X11/extensions/XTest.h>
#include <X11/keysym.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

extern char** environ;

namespace {

using ds_test::LoadedPlugin;
using ds_test::TestConfig;
using ds_test::TestHost;
using Clock = std::chrono::steady_clock;

const LoadedPlugin& plugin() {
    static LoadedPlugin p(ds_test::pluginPath("capture", "x11"));
    return p;
}

std::string testDisplay() {
    const char* d = std::getenv("DESKSTREAM_TEST_X11_DISPLAY");
    return d ? d : "";
}

// Runs xrandr on the test display; the exit status.
int xrandr(const std::string& args) {
    const std::string cmd = "xrandr --display " + testDisplay() + " " + args + " >/dev/null 2>&1";
    return std::system(cmd.c_str());
}

// The server-side SysV shared memory segments created by this process (/proc/sysvipc/shm, cpid).
int shmSegmentsOfThisProcess() {
    std::ifstream f("/proc/sysvipc/shm");
    std::string line;
    std::getline(f, line);  // header
    int count = 0;
    while (std::getline(f, line)) {
        std::istringstream in(line);
        long key, shmid, perms, size, cpid;
        if (in >> key >> shmid >> perms >> size >> cpid && cpid == getpid()) ++count;
    }
    return count;
}

class X11CaptureTest : public ::testing::Test {
protected:
    void SetUp() override {
        ASSERT_FALSE(testDisplay().empty())
            << "DESKSTREAM_TEST_X11_DISPLAY is not set: run scripts/test.sh, or `source "
               "scripts/lib/xvfb.sh; "
               "xvfb_test_start` first (the x11 tests need a real X server)";
        dpy = XOpenDisplay(testDisplay().c_str());
        ASSERT_NE(dpy, nullptr) << "cannot open the test X display " << testDisplay();
        root = DefaultRootWindow(dpy);
        // The layout every test starts from: 3840x1080, monitors "left" (primary) and "right".
        // "left" takes Xvfb's one output ("screen"), which removes the server's automatic
        // monitor of that output; a monitor is deleted before it is set again (the server
        // refuses to redefine one in place).
        xrandr("--output screen --mode 3840x1080 --fb 3840x1080");
        xrandr("--delmonitor left");
        xrandr("--delmonitor right");
        ASSERT_EQ(xrandr("--setmonitor '*left' 1920/508x1080/286+0+0 screen"), 0);
        ASSERT_EQ(xrandr("--setmonitor right 1920/508x1080/286+1920+0 none"), 0);
        XSync(dpy, False);
        Window r;
        int x, y;
        unsigned width = 0, height = 0, border, depth;
        XGetGeometry(dpy, root, &r, &x, &y, &width, &height, &border,
                     &depth);  // not the cached size
        ASSERT_EQ(width, 3840u) << "the test display must be able to show 3840x1080";
        ASSERT_EQ(height, 1080u);
        fill(0, 0, 3840, 1080, 0x202020);
    }
    void TearDown() override {
        if (handle) plugin().capture().destroy(handle);
        if (dpy) XCloseDisplay(dpy);
    }

    void create(std::map<std::string, std::string> values = {{"cursor", "false"}}) {
        if (!values.count("display")) values["display"] = testDisplay();
        config = std::make_unique<TestConfig>("capture.x11", values);
        char err[256] = "";
        ASSERT_EQ(plugin().capture().create(host.api(), config->get(), &handle, err, sizeof err),
                  DS_OK)
            << err;
    }
    std::vector<ds_monitor_info> monitors() {
        ds_monitor_info infos[8]{};
        uint32_t count = 0;
        char err[256] = "";
        EXPECT_EQ(plugin().capture().list_monitors(handle, infos, 8, &count, err, sizeof err),
                  DS_OK)
            << err;
        return std::vector<ds_monitor_info>(infos, infos + std::min<uint32_t>(count, 8));
    }
    ds_status grab(uint32_t monitor, ds_frame& f, uint32_t timeoutMs = 2000) {
        f = ds_frame{};
        f.struct_size = sizeof f;
        char err[256] = "";
        ds_status s =
            plugin().capture().grab_frame(handle, monitor, timeoutMs, &f, err, sizeof err);
        EXPECT_GE(s, 0) << err;
        return s;
    }
    void release(ds_frame& f) { plugin().capture().release_frame(handle, &f); }
    ds_status inject(ds_input_event ev, std::string* error = nullptr) {
        ev.struct_size = sizeof ev;
        char err[256] = "";
        ds_status s = plugin().capture().inject_input(handle, &ev, err, sizeof err);
        if (error) *error = err;
        return s;
    }

    // Draws on the root window over the test's own connection.
    void fill(int x, int y, int w, int h, unsigned long rgb) {
        GC gc = XCreateGC(dpy, root, 0, nullptr);
        XSetForeground(dpy, gc, rgb);
        XFillRectangle(dpy, root, gc, x, y, static_cast<unsigned>(w), static_cast<unsigned>(h));
        XFreeGC(dpy, gc);
        XSync(dpy, False);
    }
    static uint32_t rgbAt(const ds_frame& f, uint32_t x, uint32_t y) {
        const uint8_t* p = f.data + size_t{y} * f.stride + size_t{x} * 4;
        return uint32_t{p[2]} << 16 | uint32_t{p[1]} << 8 | p[0];  // BGRX
    }

    Display* dpy = nullptr;
    Window root = 0;
    TestHost host;
    std::unique_ptr<TestConfig> config;
    void* handle = nullptr;
};

// A colour every pixel of the screen can be checked against, different on each monitor.
uint32_t patternAt(uint32_t x, uint32_t y) {
    return ((x * 7 + y * 3) & 0xFF) << 16 | ((x ^ y) & 0xFF) << 8 | ((x / 3 + y * 5) & 0xFF);
}

}  // namespace

TEST_F(X11CaptureTest, DescriptorDeclaresDamageCursorInputAndItsKeys) {
    const ds_plugin_descriptor& d = plugin().descriptor();
    EXPECT_EQ(d.kind, DS_KIND_CAPTURE);
    EXPECT_STREQ(d.name, "x11");
    EXPECT_GT(d.rank, 1) << "capture = auto prefers x11 to synthetic (rank 1)";
    const ds_capture_vtable& v = plugin().capture();
    EXPECT_EQ(v.capabilities,
              uint32_t{DS_CAPTURE_CAP_DAMAGE | DS_CAPTURE_CAP_CURSOR | DS_CAPTURE_CAP_INPUT});
    ASSERT_NE(v.probe, nullptr);
    ASSERT_NE(v.inject_input, nullptr);
    ASSERT_EQ(d.config_key_count, 2u);
    EXPECT_STREQ(d.config_keys[0].key, "display");
    EXPECT_STREQ(d.config_keys[1].key, "cursor");
    EXPECT_STREQ(d.config_keys[1].default_value, "true");
}

TEST_F(X11CaptureTest, ConfigurationReferenceListsEveryKeyWithItsDefault) {
    std::ifstream f(std::string(DS_SOURCE_DIR) + "/docs/configuration.md");
    std::stringstream text;
    text << f.rdbuf();
    const std::string doc = text.str();
    const size_t at = doc.find("### [capture.x11]");
    ASSERT_NE(at, std::string::npos) << "docs/configuration.md has no [capture.x11] section";
    const std::string part = doc.substr(at, doc.find("\n### ", at + 1) - at);
    const ds_plugin_descriptor& d = plugin().descriptor();
    for (uint32_t i = 0; i < d.config_key_count; ++i) {
        const ds_config_key& k = d.config_keys[i];
        const std::string def = k.default_value && *k.default_value
                                    ? "`" + std::string(k.default_value) + "`"
                                    : "(empty)";
        const std::string row = "| `" + std::string(k.key) + "` | " + def + " |";
        EXPECT_NE(part.find(row), std::string::npos)
            << "docs/configuration.md lacks the row " << row;
    }
}

TEST_F(X11CaptureTest, ProbeSucceedsOnTheDisplayAndExplainsAMissingOne) {
    TestConfig good("capture.x11", {{"display", testDisplay()}});
    char err[256] = "";
    EXPECT_EQ(plugin().capture().probe(host.api(), good.get(), err, sizeof err), DS_OK) << err;
    TestConfig bad("capture.x11", {{"display", ":1999"}});
    EXPECT_EQ(plugin().capture().probe(host.api(), bad.get(), err, sizeof err), DS_ERR_UNSUPPORTED);
    EXPECT_STREQ(err, "cannot open X display ':1999'");
    void* inst = nullptr;
    EXPECT_EQ(plugin().capture().create(host.api(), bad.get(), &inst, err, sizeof err),
              DS_ERR_UNSUPPORTED);
    EXPECT_EQ(inst, nullptr);
}

TEST_F(X11CaptureTest, DisplayDefaultsToTheDisplayVariable) {
    const char* saved = std::getenv("DISPLAY");
    const std::string before = saved ? saved : "";
    setenv("DISPLAY", testDisplay().c_str(), 1);
    create({{"cursor", "false"}, {"display", ""}});
    if (before.empty())
        unsetenv("DISPLAY");
    else
        setenv("DISPLAY", before.c_str(), 1);
    EXPECT_EQ(monitors().size(), 2u);
    EXPECT_TRUE(host.logContains("display " + testDisplay())) << "the log line names the display";
}

// In a Wayland session $DISPLAY is Xwayland (X clients only): probe leaves the session to
// pipewire unless a display is named, so capture = auto does not pick a picture of nothing.
TEST_F(X11CaptureTest, ProbeRefusesAWaylandSessionUnlessADisplayIsNamed) {
    const char* savedDisplay = std::getenv("DISPLAY");
    const std::string before = savedDisplay ? savedDisplay : "";
    setenv("DISPLAY", testDisplay().c_str(), 1);
    setenv("WAYLAND_DISPLAY", "wayland-0", 1);
    char err[256] = "";
    TestConfig unnamed("capture.x11", {{"display", ""}});
    const ds_status onWayland =
        plugin().capture().probe(host.api(), unnamed.get(), err, sizeof err);
    const std::string why = err;
    TestConfig named("capture.x11", {{"display", testDisplay()}});
    const ds_status namedOnWayland =
        plugin().capture().probe(host.api(), named.get(), err, sizeof err);
    unsetenv("WAYLAND_DISPLAY");
    const ds_status onX11 = plugin().capture().probe(host.api(), unnamed.get(), err, sizeof err);
    if (before.empty())
        unsetenv("DISPLAY");
    else
        setenv("DISPLAY", before.c_str(), 1);
    EXPECT_EQ(onWayland, DS_ERR_UNSUPPORTED);
    EXPECT_NE(why.find("WAYLAND_DISPLAY is set"), std::string::npos) << why;
    EXPECT_EQ(namedOnWayland, DS_OK);
    EXPECT_EQ(onX11, DS_OK) << err;
}

TEST_F(X11CaptureTest, ListsBothSetMonitorMonitorsWithTheirGeometry) {
    create();
    auto m = monitors();
    ASSERT_EQ(m.size(), 2u);
    EXPECT_STREQ(m[0].name, "left");
    EXPECT_EQ(m[0].x, 0);
    EXPECT_EQ(m[0].y, 0);
    EXPECT_EQ(m[0].width, 1920u);
    EXPECT_EQ(m[0].height, 1080u);
    EXPECT_EQ(m[0].primary, 1);
    EXPECT_STREQ(m[1].name, "right");
    EXPECT_EQ(m[1].x, 1920);
    EXPECT_EQ(m[1].y, 0);
    EXPECT_EQ(m[1].width, 1920u);
    EXPECT_EQ(m[1].height, 1080u);
    EXPECT_EQ(m[1].primary, 0);
    EXPECT_EQ(m[0].index, 0u);
    EXPECT_EQ(m[1].index, 1u);
}

TEST_F(X11CaptureTest, DrawnPatternIsReadBackPixelExactOnEachMonitor) {
    // The whole 3840x1080 screen gets a pattern with a different value almost everywhere.
    const int w = 3840, h = 1080;
    std::vector<char> pixels(size_t{w} * h * 4);
    XImage* img = XCreateImage(dpy, DefaultVisual(dpy, DefaultScreen(dpy)), 24, ZPixmap, 0,
                               pixels.data(), w, h, 32, w * 4);
    ASSERT_NE(img, nullptr);
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x)
            XPutPixel(img, x, y, patternAt(static_cast<uint32_t>(x), static_cast<uint32_t>(y)));
    GC gc = XCreateGC(dpy, root, 0, nullptr);
    XPutImage(dpy, root, gc, img, 0, 0, 0, 0, w, h);
    XFreeGC(dpy, gc);
    XSync(dpy, False);
    img->data = nullptr;  // owned by the vector
    XDestroyImage(img);

    create();
    for (uint32_t m = 0; m < 2; ++m) {
        ds_frame f;
        ASSERT_EQ(grab(m, f), DS_OK);
        EXPECT_EQ(f.monitor, m);
        ASSERT_EQ(f.width, 1920u);
        ASSERT_EQ(f.height, 1080u);
        EXPECT_GE(f.stride, 1920u * 4);
        EXPECT_EQ(f.format, DS_PIXEL_BGRX);
        EXPECT_EQ(f.damage_count, 0u) << "the first frame is a whole picture";
        uint64_t wrong = 0;
        for (uint32_t y = 0; y < f.height; ++y)
            for (uint32_t x = 0; x < f.width; ++x)
                if (rgbAt(f, x, y) != patternAt(x + m * 1920, y)) {
                    if (wrong++ < 5)
                        ADD_FAILURE() << "monitor " << m << " pixel (" << x << ", " << y << ") is "
                                      << std::hex << rgbAt(f, x, y) << ", drawn "
                                      << patternAt(x + m * 1920, y);
                }
        EXPECT_EQ(wrong, 0u) << "monitor " << m;
        release(f);
    }
}

TEST_F(X11CaptureTest, DamageCoversADrawnChangeAndAnUnchangedScreenTimesOut) {
    create();
    ds_frame f;
    for (uint32_t m = 0; m < 2; ++m) {
        ASSERT_EQ(grab(m, f), DS_OK);
        release(f);
    }
    // Nothing changed: DS_TIMEOUT after the timeout (300 ms; at most 3 s on a busy machine),
    // not a copy of the same picture.
    for (uint32_t m = 0; m < 2; ++m) {
        const auto t0 = Clock::now();
        EXPECT_EQ(grab(m, f, 300), DS_TIMEOUT) << "monitor " << m;
        const auto ms =
            std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
        EXPECT_GE(ms, 280);
        EXPECT_LT(ms, 3000);
    }
    // A rectangle drawn on the right monitor: its frame's damage covers it; the left stays idle.
    fill(1920 + 100, 200, 50, 40, 0x30C060);
    ASSERT_EQ(grab(1, f), DS_OK);
    ASSERT_GE(f.damage_count, 1u);
    ASSERT_NE(f.damage, nullptr);
    uint32_t x0 = UINT32_MAX, y0 = UINT32_MAX, x1 = 0, y1 = 0;
    for (uint32_t i = 0; i < f.damage_count; ++i) {
        const ds_rect& r = f.damage[i];
        EXPECT_LE(r.x + r.width, f.width);
        EXPECT_LE(r.y + r.height, f.height);
        x0 = std::min(x0, r.x), y0 = std::min(y0, r.y);
        x1 = std::max(x1, r.x + r.width), y1 = std::max(y1, r.y + r.height);
    }
    EXPECT_LE(x0, 100u);
    EXPECT_LE(y0, 200u);
    EXPECT_GE(x1, 150u);
    EXPECT_GE(y1, 240u);
    EXPECT_LE((x1 - x0) * (y1 - y0), 4u * 50 * 40)
        << "the damage is about the drawn area, not the monitor";
    EXPECT_EQ(rgbAt(f, 100, 200), 0x30C060u);
    EXPECT_EQ(rgbAt(f, 149, 239), 0x30C060u);
    EXPECT_EQ(rgbAt(f, 99, 200), 0x202020u);
    release(f);
    EXPECT_EQ(grab(0, f, 300), DS_TIMEOUT) << "the change was on the right monitor only";
    EXPECT_EQ(grab(1, f, 300), DS_TIMEOUT) << "the change was delivered once";
}

TEST_F(X11CaptureTest, TwoFramesOfAMonitorCanBeHeldAtOnce) {
    create();
    ds_frame a, b;
    ASSERT_EQ(grab(0, a), DS_OK);
    fill(10, 10, 20, 20, 0xFF0000);
    ASSERT_EQ(grab(0, b), DS_OK);
    EXPECT_NE(a.data, b.data);
    EXPECT_EQ(rgbAt(a, 15, 15), 0x202020u) << "the held frame is not overwritten";
    EXPECT_EQ(rgbAt(b, 15, 15), 0xFF0000u);
    EXPECT_GT(b.sequence, a.sequence);
    release(a);
    release(b);
}

TEST_F(X11CaptureTest, InjectedMouseMoveLandsWhereXQueryPointerSays) {
    create();
    auto pointer = [&] {
        Window r, c;
        int x = -1, y = -1, wx, wy;
        unsigned mask;
        XQueryPointer(dpy, root, &r, &c, &x, &y, &wx, &wy, &mask);
        return std::make_pair(x, y);
    };
    ds_input_event ev{};
    ev.type = DS_INPUT_MOUSE_MOVE;
    ev.monitor = 1;
    ev.x = 300;
    ev.y = 400;
    ASSERT_EQ(inject(ev), DS_OK);
    EXPECT_EQ(pointer(), std::make_pair(1920 + 300, 400))
        << "coordinates are relative to the monitor";
    ev.monitor = 0;
    ev.x = 1919;
    ev.y = 1079;
    ASSERT_EQ(inject(ev), DS_OK);
    EXPECT_EQ(pointer(), std::make_pair(1919, 1079));
    // Outside the monitor, or a monitor that does not exist: a clear error, the pointer stays.
    std::string error;
    ev.x = 1920;
    EXPECT_EQ(inject(ev, &error), DS_ERR_INVALID_ARGUMENT);
    EXPECT_NE(error.find("outside monitor 0 (1920x1080)"), std::string::npos) << error;
    ev.monitor = 5;
    ev.x = 10;
    EXPECT_EQ(inject(ev, &error), DS_ERR_INVALID_ARGUMENT);
    EXPECT_NE(error.find("monitor 5 does not exist"), std::string::npos) << error;
    EXPECT_EQ(pointer(), std::make_pair(1919, 1079));
}

TEST_F(X11CaptureTest, InjectedKeysButtonsAndWheelReachATestWindow) {
    create();
    // A focused window on the right monitor collects the events.
    Window win = XCreateSimpleWindow(dpy, root, 2000, 100, 300, 200, 0, 0, 0xFFFFFF);
    XSelectInput(dpy, win, KeyPressMask | KeyReleaseMask | ButtonPressMask | StructureNotifyMask);
    XMapWindow(dpy, win);
    XEvent ev;
    do XNextEvent(dpy, &ev);
    while (ev.type != MapNotify);
    XSetInputFocus(dpy, win, RevertToParent, CurrentTime);
    XSync(dpy, False);

    auto next = [&](int type) -> XEvent {
        const auto deadline = Clock::now() + std::chrono::seconds(3);
        XEvent e{};
        while (Clock::now() < deadline) {
            while (XPending(dpy)) {
                XNextEvent(dpy, &e);
                if (e.type == MappingNotify) XRefreshKeyboardMapping(&e.xmapping);
                if (e.type == type) return e;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        ADD_FAILURE() << "no event of type " << type << " within 3 s";
        return XEvent{};
    };
    auto key = [&](const char* name) {
        ds_input_event in{};
        in.type = DS_INPUT_KEY_DOWN;
        in.key = name;
        EXPECT_EQ(inject(in), DS_OK) << name;
        in.type = DS_INPUT_KEY_UP;
        EXPECT_EQ(inject(in), DS_OK) << name;
    };
    key("a");
    XEvent press = next(KeyPress);
    EXPECT_EQ(XLookupKeysym(&press.xkey, 0), static_cast<KeySym>(XK_a));
    EXPECT_EQ(press.xkey.window, win);
    next(KeyRelease);
    key("Enter");
    press = next(KeyPress);
    EXPECT_EQ(XLookupKeysym(&press.xkey, 0), static_cast<KeySym>(XK_Return));
    key("ArrowLeft");
    press = next(KeyPress);
    EXPECT_EQ(XLookupKeysym(&press.xkey, 0), static_cast<KeySym>(XK_Left));
    // A character the US keyboard map lacks is bound to a spare keycode first.
    key("€");
    press = next(KeyPress);
    EXPECT_EQ(XLookupKeysym(&press.xkey, 0), static_cast<KeySym>(0x10020AC))
        << "the Unicode keysym of U+20AC";

    std::string error;
    ds_input_event bad{};
    bad.type = DS_INPUT_KEY_DOWN;
    bad.key = "NoSuchKey";
    EXPECT_EQ(inject(bad, &error), DS_ERR_INVALID_ARGUMENT);
    EXPECT_NE(error.find("unknown key name 'NoSuchKey'"), std::string::npos) << error;

    // Right button down at (110, 120) of the right monitor = (30, 20) in the window.
    ds_input_event b{};
    b.type = DS_INPUT_MOUSE_DOWN;
    b.monitor = 1;
    b.x = 110;
    b.y = 120;
    b.button = 2;
    ASSERT_EQ(inject(b), DS_OK);
    XEvent bp = next(ButtonPress);
    EXPECT_EQ(bp.xbutton.button, 3u);
    EXPECT_EQ(bp.xbutton.x, 30);
    EXPECT_EQ(bp.xbutton.y, 20);
    b.type = DS_INPUT_MOUSE_UP;
    ASSERT_EQ(inject(b), DS_OK);
    // Wheel: deltaY 100 is one click down (button 5), deltaY -300 three clicks up (button 4).
    b.type = DS_INPUT_WHEEL;
    b.delta_y = 100;
    ASSERT_EQ(inject(b), DS_OK);
    EXPECT_EQ(next(ButtonPress).xbutton.button, 5u);
    b.delta_y = -300;
    ASSERT_EQ(inject(b), DS_OK);
    for (int i = 0; i < 3; ++i) EXPECT_EQ(next(ButtonPress).xbutton.button, 4u);
    XDestroyWindow(dpy, win);
    XSync(dpy, False);
}

TEST_F(X11CaptureTest, CursorIsDrawnOnlyWhenEnabled) {
    fill(0, 0, 1920, 1080, 0x000080);
    XTestFakeMotionEvent(dpy, DefaultScreen(dpy), 500, 500, CurrentTime);
    XSync(dpy, False);
    auto differing = [&](const ds_frame& f) {
        int n = 0;
        for (uint32_t y = 468; y < 532; ++y)
            for (uint32_t x = 468; x < 532; ++x) n += rgbAt(f, x, y) != 0x000080u;
        return n;
    };
    create({{"cursor", "false"}});
    ds_frame f;
    ASSERT_EQ(grab(0, f), DS_OK);
    EXPECT_EQ(differing(f), 0);
    release(f);
    plugin().capture().destroy(handle);
    handle = nullptr;

    create({{"cursor", "true"}});
    ASSERT_EQ(grab(0, f), DS_OK);
    EXPECT_GT(differing(f), 20) << "the X server's cursor is drawn around (500, 500)";
    release(f);
    // A pointer move alone is a change: a new frame whose damage covers both cursor places.
    XTestFakeMotionEvent(dpy, DefaultScreen(dpy), 800, 300, CurrentTime);
    XSync(dpy, False);
    ASSERT_EQ(grab(0, f), DS_OK);
    ASSERT_GE(f.damage_count, 1u);
    EXPECT_EQ(differing(f), 0) << "the old cursor is gone from the new frame";
    release(f);
}

TEST_F(X11CaptureTest, ResizeGivesReinitThenFramesOfTheNewSizeAndLeaksNoSegment) {
    create();
    ds_frame held, f;
    ASSERT_EQ(grab(0, held), DS_OK);
    ASSERT_EQ(grab(1, f), DS_OK);
    release(f);
    EXPECT_GE(shmSegmentsOfThisProcess(), 2)
        << "one segment per grabbed buffer, marked for removal";

    // 3840x1080 -> 2560x1080, the right monitor shrinks to 640 pixels, during capture.
    xrandr("--newmode 2560x1080 0 2560 0 0 0 1080 0 0 0");
    xrandr("--addmode screen 2560x1080");
    ASSERT_EQ(xrandr("--output screen --mode 2560x1080 --fb 2560x1080"), 0);
    xrandr("--delmonitor right");
    ASSERT_EQ(xrandr("--setmonitor right 640/170x1080/286+1920+0 none"), 0);

    // DS_REINIT within 3 s (the plugin re-reads the layout at least every 0.5 s).
    ds_status s = DS_TIMEOUT;
    const auto deadline = Clock::now() + std::chrono::seconds(3);
    while (s != DS_REINIT && Clock::now() < deadline) {
        s = grab(1, f, 200);
        if (s == DS_OK) release(f);
    }
    ASSERT_EQ(s, DS_REINIT);
    auto m = monitors();
    ASSERT_EQ(m.size(), 2u);
    EXPECT_EQ(m[1].x, 1920);
    EXPECT_EQ(m[1].width, 640u);
    ASSERT_EQ(grab(1, f), DS_OK) << "the first frame after DS_REINIT is a whole picture";
    EXPECT_EQ(f.width, 640u);
    EXPECT_EQ(f.height, 1080u);
    release(f);
    ASSERT_EQ(grab(0, f), DS_OK);
    EXPECT_EQ(f.width, 1920u);
    release(f);
    // The frame held across the change stays readable until it is released.
    EXPECT_EQ(held.width, 1920u);
    EXPECT_EQ(rgbAt(held, 1919, 1079), 0x202020u);
    release(held);

    // Back to 3840x1080: another DS_REINIT, then 1920-pixel frames again.
    ASSERT_EQ(xrandr("--output screen --mode 3840x1080 --fb 3840x1080"), 0);
    xrandr("--delmonitor right");
    ASSERT_EQ(xrandr("--setmonitor right 1920/508x1080/286+1920+0 none"), 0);
    s = DS_TIMEOUT;
    const auto deadline2 = Clock::now() + std::chrono::seconds(3);
    while (s != DS_REINIT && Clock::now() < deadline2) {
        s = grab(1, f, 200);
        if (s == DS_OK) release(f);
    }
    ASSERT_EQ(s, DS_REINIT);
    ASSERT_EQ(grab(1, f), DS_OK);
    EXPECT_EQ(f.width, 1920u);
    release(f);

    plugin().capture().destroy(handle);
    handle = nullptr;
    EXPECT_EQ(shmSegmentsOfThisProcess(), 0) << "no shared memory segment outlives the capture";
}

// A private Xvfb (not the shared test display) is killed under a running capture: the calls that
// follow fail with DS_ERR_IO and a clear message; Xlib's default (exit the process) never runs.
TEST_F(X11CaptureTest, LosingTheXServerIsAnErrorNotAnExit) {
    int number = 0;
    for (int n = 190; n < 290 && number == 0; ++n) {
        struct stat st;
        const std::string lock = "/tmp/.X" + std::to_string(n) + "-lock";
        const std::string sock = "/tmp/.X11-unix/X" + std::to_string(n);
        if (stat(lock.c_str(), &st) != 0 && stat(sock.c_str(), &st) != 0) number = n;
    }
    ASSERT_NE(number, 0);
    const std::string name = ":" + std::to_string(number);
    std::vector<std::string> args = {"Xvfb",       name,        "-screen", "0",
                                     "640x480x24", "-nolisten", "tcp"};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid = 0;
    ASSERT_EQ(posix_spawnp(&pid, "Xvfb", nullptr, nullptr, argv.data(), environ), 0)
        << "Xvfb must be installed";
    Display* probe = nullptr;
    for (int i = 0; i < 100 && !probe; ++i) {  // up to 10 s on a busy machine
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        probe = XOpenDisplay(name.c_str());
    }
    ASSERT_NE(probe, nullptr) << "the private Xvfb " << name << " did not start";
    create({{"cursor", "true"}, {"display", name}});
    XCloseDisplay(probe);  // the capture is now the server's only client
    ds_frame f;
    ASSERT_EQ(grab(0, f), DS_OK);
    EXPECT_EQ(f.width, 640u);
    release(f);

    kill(pid, SIGTERM);  // Xvfb removes its lock file and socket on SIGTERM
    waitpid(pid, nullptr, 0);
    f = ds_frame{};
    f.struct_size = sizeof f;
    char err[256] = "";
    EXPECT_EQ(plugin().capture().grab_frame(handle, 0, 1000, &f, err, sizeof err), DS_ERR_IO);
    EXPECT_NE(std::string(err).find("connection to the X server was lost"), std::string::npos)
        << err;
    EXPECT_EQ(plugin().capture().grab_frame(handle, 0, 10, &f, err, sizeof err), DS_ERR_IO)
        << "and stays so";
    ds_input_event ev{};
    ev.type = DS_INPUT_MOUSE_MOVE;
    std::string error;
    EXPECT_EQ(inject(ev, &error), DS_ERR_IO);
    plugin().capture().destroy(handle);
    handle = nullptr;
    EXPECT_EQ(shmSegmentsOfThisProcess(), 0) << "no shared memory segment outlives the capture";
}
