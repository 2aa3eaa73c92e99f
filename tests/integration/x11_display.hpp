// The Xvfb display of scripts/test.sh (DESKSTREAM_TEST_X11_DISPLAY) as the x11 integration tests
// lay it out: xrandr on that display, and its 3840x1080 screen split into two 1920x1080 monitors.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

namespace ds_itest {

// The test display's name, "" when DESKSTREAM_TEST_X11_DISPLAY is not set.
inline std::string testDisplay() {
    const char* d = std::getenv("DESKSTREAM_TEST_X11_DISPLAY");
    return d ? d : "";
}

// Runs `xrandr --display <test display> args`; its exit status.
inline int xrandr(const std::string& args) {
    return std::system(
        ("xrandr --display " + testDisplay() + " " + args + " >/dev/null 2>&1").c_str());
}

// 3840x1080 as two monitors: "left" (the primary, monitor 0) and "right". Call it inside
// ASSERT_NO_FATAL_FAILURE: a monitor xrandr cannot set fails the test.
inline void splitIntoTwoMonitors() {
    xrandr("--output screen --mode 3840x1080 --fb 3840x1080");
    xrandr("--delmonitor left");
    xrandr("--delmonitor right");
    ASSERT_EQ(xrandr("--setmonitor '*left' 1920/508x1080/286+0+0 screen"), 0);
    ASSERT_EQ(xrandr("--setmonitor right 1920/508x1080/286+1920+0 none"), 0);
}

}  // namespace ds_itest
