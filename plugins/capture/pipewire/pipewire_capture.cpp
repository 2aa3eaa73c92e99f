// deskstream capture plugin "pipewire": one PipeWire video stream as one monitor.
//
// The stream comes from the node named by [capture.pipewire] node (id, name or object.serial)
// or, when that is empty, from the xdg-desktop-portal ScreenCast interface; the portal's restore
// token is kept in the state folder so the user is asked once. Frames are copies of the newest
// picture the source produced; a source that produced nothing new within the timeout gives
// DS_TIMEOUT, one that went away gives DS_ERR_IO with the reason. See docs/capture.md.
//
// Memory: DS_CAPTURE_MAX_HELD_FRAMES picture buffers, reused (swapped with the stream's pending
// picture), so steady-state grabbing does not allocate.
#include "pipewire_stream.hpp"
#include "portal.hpp"

#include "deskstream/plugin.hpp"

#include <sys/stat.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>

namespace {

using deskstream::Error;
using namespace std::chrono_literals;

constexpr const char* kRestoreTokenFile = "pipewire-portal-restore-token";
constexpr const char* kFormatNames[] = {"?", "BGRA", "BGRx", "RGBA", "RGBx"};

std::string readFile(const std::string& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    std::string text = s.str();
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
    return text;
}

class PipeWireCapture : public deskstream::Capture {
public:
    static constexpr ds_config_key kConfigKeys[] = {
        {"node", DS_CONFIG_STRING, "", 0, -1, nullptr,
         "PipeWire node to capture (id, node.name or object.serial); empty: ask "
         "xdg-desktop-portal"},
        {"cursor", DS_CONFIG_BOOL, "true", 0, -1, nullptr,
         "portal only: ask for the cursor drawn into the frames"},
        {"connect_timeout_ms", DS_CONFIG_INT, "5000", 100, 600000, nullptr,
         "how long to wait for the daemon and for the format negotiation"},
        {"portal_timeout_ms", DS_CONFIG_INT, "120000", 1000, 3600000, nullptr,
         "how long to wait for the user to pick a screen in the portal dialog"},
    };
    static constexpr int32_t kRank = 50;  // below x11/dxgi (a native grab), above synthetic
    static constexpr const char* kVendor = "deskstream";

    static void probe(const deskstream::Host&, const deskstream::Config& config) {
        std::string node = config.getString("node", "");
        if (!node.empty()) {
            ds_pipewire::Stream::checkNodeExists(node, 2000ms);
            return;
        }
        try {
            ds_pipewire::checkPortalReachable(2000ms);
        } catch (const Error& e) {
            throw Error(e.status(),
                        std::string("[capture.pipewire] node is empty and ") + e.what());
        }
    }

    PipeWireCapture(const deskstream::Host& host, const deskstream::Config& config) : host_(host) {
        const std::string node = config.getString("node", "");
        const auto connectTimeout =
            std::chrono::milliseconds(config.getInt("connect_timeout_ms", 5000, 100, 600000));
        if (!node.empty()) {
            stream_ = std::make_unique<ds_pipewire::Stream>(node, -1, connectTimeout);
        } else {
            const bool cursor = config.getBool("cursor", true);
            const auto interaction = std::chrono::milliseconds(
                config.getInt("portal_timeout_ms", 120000, 1000, 3600000));
            const std::string stateDir = config.getString("host.state_dir", "");
            const std::string tokenPath =
                stateDir.empty() ? "" : stateDir + "/" + kRestoreTokenFile;
            const std::string token = tokenPath.empty() ? "" : readFile(tokenPath);
            portal_ = std::make_unique<ds_pipewire::PortalSession>(token, cursor, interaction);
            saveRestoreToken(tokenPath, token);
            stream_ = std::make_unique<ds_pipewire::Stream>(std::to_string(portal_->nodeId()),
                                                            portal_->openRemote(), connectTimeout);
        }
        uint32_t w = 0, h = 0;
        stream_->size(w, h);
        host_.info("pipewire capture: node '" + stream_->nodeName() + "' (id " +
                   std::to_string(stream_->nodeId()) + "), " + std::to_string(w) + "x" +
                   std::to_string(h) + (portal_ ? ", through the portal" : ""));
    }

    std::vector<ds_monitor_info> monitors() override {
        ds_monitor_info m{};
        m.struct_size = sizeof m;
        m.index = 0;
        std::snprintf(m.name, sizeof m.name, "%s", stream_->nodeName().c_str());
        m.x = portal_ ? portal_->x() : 0;
        m.y = portal_ ? portal_->y() : 0;
        stream_->size(m.width, m.height);
        m.primary = 1;
        return {m};
    }

    ds_status grab(uint32_t monitor, uint32_t timeoutMs, ds_frame& out) override {
        if (monitor != 0)
            throw Error(DS_ERR_INVALID_ARGUMENT,
                        "monitor " + std::to_string(monitor) +
                            " does not exist (a PipeWire stream is one monitor)");
        size_t slot = 0;
        while (slot < slots_.size() && slots_[slot].held) ++slot;
        if (slot == slots_.size())
            throw Error(DS_ERR_INVALID_ARGUMENT, std::to_string(slots_.size()) +
                                                     " frames are still held; release one first");
        Slot& s = slots_[slot];
        switch (stream_->take(std::chrono::milliseconds(timeoutMs), s.picture)) {
            case ds_pipewire::WaitResult::Timeout:
                return DS_TIMEOUT;
            case ds_pipewire::WaitResult::Reinit:
                host_.info(
                    "pipewire capture: the stream changed size; monitors must be listed again");
                return DS_REINIT;
            case ds_pipewire::WaitResult::Frame:
                break;
        }
        s.held = true;
        if (!loggedFormat_) {
            loggedFormat_ = true;
            host_.info(std::string("pipewire capture: first frame, format ") +
                       kFormatNames[s.picture.format]);
        }
        out.monitor = 0;
        out.width = s.picture.width;
        out.height = s.picture.height;
        out.stride = s.picture.width * 4;
        out.format = s.picture.format;
        out.data = s.picture.pixels.data();
        out.capture_time_us = host_.wallUs();
        out.sequence = s.picture.sequence;
        out.damage = nullptr;
        out.damage_count = 0;
        out.plugin_data = &s.held;
        return DS_OK;
    }

    void release(ds_frame& frame) override {
        for (auto& s : slots_)
            if (frame.plugin_data == &s.held) s.held = false;
    }

private:
    void saveRestoreToken(const std::string& path, const std::string& previous) {
        const std::string& token = portal_->restoreToken();
        if (token.empty() || token == previous) return;
        if (path.empty()) {
            host_.warning("pipewire capture: no state folder; the portal will ask again next time");
            return;
        }
        std::ofstream out(path, std::ios::trunc);
        out << token << '\n';
        out.close();
        ::chmod(path.c_str(), 0600);  // a token lets this user's processes reuse the screen grant
        if (!out)
            host_.warning("pipewire capture: cannot write the portal restore token to " + path);
    }

    struct Slot {
        ds_pipewire::Picture picture;
        bool held = false;
    };
    deskstream::Host host_;
    std::unique_ptr<ds_pipewire::PortalSession> portal_;  // outlives the stream it allows
    std::unique_ptr<ds_pipewire::Stream> stream_;
    std::array<Slot, DS_CAPTURE_MAX_HELD_FRAMES> slots_;
    bool loggedFormat_ = false;
};

}  // namespace

DESKSTREAM_PLUGIN(PipeWireCapture, "pipewire", "1.0.0",
                  "A PipeWire video stream (a node, or a screen chosen through xdg-desktop-portal)")
