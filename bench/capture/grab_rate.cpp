// ds_capture_grab_rate: how many frames per second a capture plugin delivers, grabbing as fast
// as it can (each frame released at once), and the CPU it spends per frame. Loads the plugin
// through its C entry point only, as the host does. Prints one JSON line.
//
//   ds_capture_grab_rate --plugin build/release/plugins/deskstream_capture_x11.so
//                        [--set key=value ...] [--monitor 0] [--seconds 10] [--warmup-seconds 2]
//                        [--poke-display :N]
//
// A damage-driven plugin (x11) delivers only changed pictures, so its rate is at most the rate
// at which the screen changes. --poke-display draws one pixel at (0, 0) of that X display, over
// any window, before every grab: each grab then finds damage and does its full work (a whole
// monitor grabbed), which measures the grab path's own capacity, as ffmpeg's x11grab does.
#include "deskstream/plugin.h"

#include <X11/Xlib.h>
#include <dlfcn.h>
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>

namespace {

std::map<std::string, std::string> g_values;

int32_t lookup(void*, const char* key, char* out, size_t outSize) {
    auto it = g_values.find(key);
    if (it == g_values.end()) return -1;
    if (out && outSize) std::snprintf(out, outSize, "%s", it->second.c_str());
    return static_cast<int32_t>(it->second.size());
}

void log(void*, ds_log_level level, const char* plugin, const char* message) {
    if (level >= DS_LOG_INFO) std::fprintf(stderr, "[%s] %s\n", plugin, message);
}

uint64_t monotonicUs(void*) {
    return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                     std::chrono::steady_clock::now().time_since_epoch())
                                     .count());
}

uint64_t wallUs(void*) {
    return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                     std::chrono::system_clock::now().time_since_epoch())
                                     .count());
}

double cpuSeconds() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
           static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

int usage() {
    std::fprintf(stderr,
                 "usage: ds_capture_grab_rate --plugin FILE [--set key=value]... [--monitor N] "
                 "[--seconds S] [--warmup-seconds S] [--poke-display :N]\n");
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    std::string file, pokeDisplay;
    uint32_t monitor = 0;
    double seconds = 10, warmup = 2;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (i + 1 >= argc) return usage();
        std::string v = argv[++i];
        if (a == "--plugin")
            file = v;
        else if (a == "--monitor")
            monitor = static_cast<uint32_t>(std::stoul(v));
        else if (a == "--seconds")
            seconds = std::stod(v);
        else if (a == "--warmup-seconds")
            warmup = std::stod(v);
        else if (a == "--poke-display")
            pokeDisplay = v;
        else if (a == "--set" && v.find('=') != std::string::npos)
            g_values[v.substr(0, v.find('='))] = v.substr(v.find('=') + 1);
        else
            return usage();
    }
    if (file.empty()) return usage();

    void* lib = dlopen(file.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!lib) return std::fprintf(stderr, "cannot load %s: %s\n", file.c_str(), dlerror()), 1;
    auto entry = reinterpret_cast<ds_plugin_entry_fn>(dlsym(lib, DS_PLUGIN_ENTRY_SYMBOL));
    const ds_plugin_descriptor* d = entry ? entry() : nullptr;
    if (!d || d->kind != DS_KIND_CAPTURE)
        return std::fprintf(stderr, "%s is not a capture plugin\n", file.c_str()), 1;
    const auto* v = static_cast<const ds_capture_vtable*>(d->vtable);

    ds_host_api host{sizeof host, DS_ABI_MAJOR, DS_ABI_MINOR, nullptr, &log, &monotonicUs, &wallUs};
    const std::string section = std::string("capture.") + d->name;
    ds_config config{sizeof config, nullptr, section.c_str(), &lookup};
    void* inst = nullptr;
    char err[512] = "";
    if (v->create(&host, &config, &inst, err, sizeof err) != DS_OK)
        return std::fprintf(stderr, "create failed: %s\n", err), 1;

    Display* poke = nullptr;
    GC pokeGc = nullptr;
    if (!pokeDisplay.empty()) {
        poke = XOpenDisplay(pokeDisplay.c_str());
        if (!poke)
            return std::fprintf(stderr, "cannot open X display %s\n", pokeDisplay.c_str()), 1;
        pokeGc = XCreateGC(poke, DefaultRootWindow(poke), 0, nullptr);
        XSetSubwindowMode(poke, pokeGc, IncludeInferiors);  // drawn over the windows too
    }
    unsigned long pokeColour = 0;

    uint64_t frames = 0, timeouts = 0, reinits = 0, bytes = 0;
    uint32_t width = 0, height = 0;
    double cpu0 = 0;
    auto start = std::chrono::steady_clock::now();
    auto measureFrom = start + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                   std::chrono::duration<double>(warmup));
    auto end = measureFrom + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                 std::chrono::duration<double>(seconds));
    bool measuring = false;
    while (true) {
        auto now = std::chrono::steady_clock::now();
        if (!measuring && now >= measureFrom) {
            measuring = true;
            frames = timeouts = reinits = bytes = 0;
            cpu0 = cpuSeconds();
        }
        if (now >= end) break;
        if (poke) {
            XSetForeground(poke, pokeGc, pokeColour++ & 0xFFFFFF);
            XDrawPoint(poke, DefaultRootWindow(poke), pokeGc, 0, 0);
            XFlush(poke);
        }
        ds_frame f{};
        f.struct_size = sizeof f;
        ds_status s = v->grab_frame(inst, monitor, 100, &f, err, sizeof err);
        if (s == DS_OK) {
            ++frames;
            width = f.width, height = f.height;
            bytes += uint64_t{f.stride} * f.height;
            v->release_frame(inst, &f);
        } else if (s == DS_TIMEOUT) {
            ++timeouts;
        } else if (s == DS_REINIT) {
            ++reinits;
        } else {
            std::fprintf(stderr, "grab failed: %s\n", err);
            v->destroy(inst);
            return 1;
        }
    }
    const double cpu = cpuSeconds() - cpu0;
    v->destroy(inst);
    if (poke) {
        XFreeGC(poke, pokeGc);
        XCloseDisplay(poke);
    }
    std::printf(
        "{\"plugin\":\"%s\",\"poked\":%s,\"width\":%u,\"height\":%u,\"seconds\":%.1f,\"frames\":%"
        "llu,\"fps\":%.1f,"
        "\"timeouts\":%llu,\"reinits\":%llu,\"cpuCores\":%.2f,\"cpuMsPerFrame\":%.2f,"
        "\"gbPerSecond\":%.2f}\n",
        d->name, poke ? "true" : "false", width, height, seconds,
        static_cast<unsigned long long>(frames), frames / seconds,
        static_cast<unsigned long long>(timeouts), static_cast<unsigned long long>(reinits),
        cpu / seconds, frames ? cpu * 1000 / static_cast<double>(frames) : 0.0,
        static_cast<double>(bytes) / seconds / 1e9);
    return 0;
}
