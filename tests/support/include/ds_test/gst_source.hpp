// Test helper: a GStreamer process publishing a solid colour as a PipeWire Video/Source node
// (videotestsrc ! pipewiresink mode=provide), for the tests of the pipewire capture plugin.
// Needs the PipeWire session of scripts/lib/pipewire.sh in the environment.
#pragma once

#include <signal.h>
#include <spawn.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

extern char** environ;

namespace ds_test {

class GstSource {
public:
    // `format` is a GStreamer raw format (BGRx, BGRA, RGBx, RGBA); `argb` the colour.
    GstSource(const std::string& nodeName, const std::string& format, int width, int height,
              uint32_t argb) {
        char colour[16];
        std::snprintf(colour, sizeof colour, "0x%08x", argb);
        std::vector<std::string> args = {
            "gst-launch-1.0", "-q", "videotestsrc", "pattern=solid-color",
            std::string("foreground-color=") + colour, "is-live=true", "!",
            "video/x-raw,format=" + format + ",width=" + std::to_string(width) +
                ",height=" + std::to_string(height) + ",framerate=30/1",
            "!", "pipewiresink", "mode=provide",
            // node.name makes the node findable by name; media.class makes it a video source.
            "stream-properties=props,node.name=" + nodeName + ",media.class=Video/Source"};
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        if (posix_spawnp(&pid_, "gst-launch-1.0", nullptr, nullptr, argv.data(), environ) != 0)
            pid_ = -1;
    }
    ~GstSource() { kill(SIGKILL); }
    GstSource(const GstSource&) = delete;
    GstSource& operator=(const GstSource&) = delete;

    bool started() const { return pid_ > 0; }
    // Sends a signal without waiting (SIGSTOP / SIGCONT).
    void signal(int sig) {
        if (pid_ > 0) ::kill(pid_, sig);
    }
    // Sends a signal and waits for the process to end.
    void kill(int sig) {
        if (pid_ <= 0) return;
        ::kill(pid_, sig);
        int status;
        waitpid(pid_, &status, 0);
        pid_ = -1;
    }

private:
    pid_t pid_ = -1;
};

// A node name no other test (or test run) uses at the same time.
inline std::string uniqueNodeName(const std::string& what) {
    static int n = 0;
    return "ds-test-" + what + "-" + std::to_string(getpid()) + "-" + std::to_string(++n);
}

}  // namespace ds_test
