// Test plugin: a well-formed capture plugin written with plugin.hpp. Declares one key of each
// type so that --check-config can be tested on a plugin section.
#include "deskstream/plugin.hpp"

#include <cstdio>
#include <vector>

namespace {

class GoodCapture : public deskstream::Capture {
public:
    static constexpr ds_config_key kConfigKeys[] = {
        {"size", DS_CONFIG_INT, "16", 1, 100, nullptr, "picture width and height"},
        {"mode", DS_CONFIG_STRING, "a", 0, -1, "a|b", "a choice"},
        {"flag", DS_CONFIG_BOOL, "false", 0, -1, nullptr, "a boolean"},
        {"ratio", DS_CONFIG_DOUBLE, "0.5", 0, -1, nullptr, "a number"},
    };
    static constexpr int32_t kRank = TEST_GOOD_RANK;
    static constexpr const char* kLicense = "MIT";
    static constexpr const char* kVendor = "deskstream tests";

    static void probe(const deskstream::Host&, const deskstream::Config&) {}

    GoodCapture(const deskstream::Host& host, const deskstream::Config& config)
        : size_(static_cast<uint32_t>(config.getInt("size", 16, 1, 100))),
          pixels_(size_t{size_} * size_ * 4, 0x80) {
        host.info("test_good created with size " + std::to_string(size_));
    }
    std::vector<ds_monitor_info> monitors() override {
        ds_monitor_info m{};
        m.width = m.height = size_;
        m.primary = 1;
        std::snprintf(m.name, sizeof m.name, "good");
        return {m};
    }
    ds_status grab(uint32_t monitor, uint32_t, ds_frame& out) override {
        if (monitor != 0) throw deskstream::Error(DS_ERR_INVALID_ARGUMENT, "only monitor 0");
        out.width = out.height = size_;
        out.stride = size_ * 4;
        out.format = DS_PIXEL_BGRX;
        out.data = pixels_.data();
        out.sequence = ++sequence_;
        return DS_OK;
    }

private:
    uint32_t size_;
    std::vector<uint8_t> pixels_;
    uint64_t sequence_ = 0;
};

}  // namespace

DESKSTREAM_PLUGIN(GoodCapture, TEST_GOOD_NAME, "2.3.4", "A good test capture")
