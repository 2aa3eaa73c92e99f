// A minimal deskstream capture plugin: every monitor is one solid colour. Copy this folder,
// rename the class and the plugin, and fill in monitors() and grab().
//
// What the SDK asks of a plugin (see docs/plugins.md):
//  - derive from deskstream::Capture (or Encoder, or Store) and add one DESKSTREAM_PLUGIN line;
//  - the constructor gets the host (logging, clocks) and the plugin's own INI section
//    [capture.skeleton]: read and copy what you need there, it is not valid afterwards;
//  - report errors by throwing deskstream::Error(status, message): the adapter turns it into a
//    status code and a message for the host; no exception crosses the C boundary;
//  - a frame's pixels belong to the plugin until release(); one instance is never called from
//    two threads at once.
#include "deskstream/plugin.hpp"

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

class SkeletonCapture : public deskstream::Capture {
public:
    // The keys of [capture.skeleton]; deskstream --check-config validates them.
    static constexpr ds_config_key kConfigKeys[] = {
        {"width", DS_CONFIG_INT, "640", 1, 8192, nullptr, "picture width"},
        {"height", DS_CONFIG_INT, "480", 1, 8192, nullptr, "picture height"},
        {"color", DS_CONFIG_STRING, "336699", 0, -1, nullptr, "RRGGBB in hex"},
    };
    static constexpr int32_t kRank = 0;  // capture = auto prefers higher ranks
    static constexpr const char* kLicense = "MIT";
    static constexpr const char* kVendor = "Example Vendor";

    SkeletonCapture(const deskstream::Host& host, const deskstream::Config& config) : host_(host) {
        width_ = static_cast<uint32_t>(config.getInt("width", 640, 1, 8192));
        height_ = static_cast<uint32_t>(config.getInt("height", 480, 1, 8192));
        std::string color = config.getString("color", "336699");
        char* end = nullptr;
        unsigned long rgb = std::strtoul(color.c_str(), &end, 16);
        if (color.size() != 6 || *end != '\0')
            throw deskstream::Error(
                DS_ERR_CONFIG, "[" + config.section() + "] color = '" + color + "' is not RRGGBB");
        pixels_.resize(size_t{width_} * height_ * 4);
        for (size_t i = 0; i < pixels_.size(); i += 4) {
            pixels_[i + 0] = static_cast<uint8_t>(rgb & 0xFF);          // B
            pixels_[i + 1] = static_cast<uint8_t>((rgb >> 8) & 0xFF);   // G
            pixels_[i + 2] = static_cast<uint8_t>((rgb >> 16) & 0xFF);  // R
            pixels_[i + 3] = 255;
        }
        host_.info("skeleton capture " + std::to_string(width_) + "x" + std::to_string(height_));
    }

    std::vector<ds_monitor_info> monitors() override {
        ds_monitor_info m{};
        m.index = 0;
        std::snprintf(m.name, sizeof m.name, "skeleton");
        m.width = width_;
        m.height = height_;
        m.primary = 1;
        return {m};
    }

    ds_status grab(uint32_t monitor, uint32_t /*timeoutMs*/, ds_frame& out) override {
        if (monitor != 0)
            throw deskstream::Error(DS_ERR_INVALID_ARGUMENT, "the skeleton has one monitor");
        out.monitor = 0;
        out.width = width_;
        out.height = height_;
        out.stride = width_ * 4;
        out.format = DS_PIXEL_BGRA;
        out.data = pixels_.data();  // stays ours; the host calls release() when done
        out.capture_time_us = host_.wallUs();
        out.sequence = ++sequence_;
        return DS_OK;
    }

private:
    deskstream::Host host_;
    uint32_t width_ = 0, height_ = 0;
    std::vector<uint8_t> pixels_;
    uint64_t sequence_ = 0;
};

}  // namespace

DESKSTREAM_PLUGIN(SkeletonCapture, "skeleton", "0.1.0", "Solid-colour capture: the plugin skeleton")
