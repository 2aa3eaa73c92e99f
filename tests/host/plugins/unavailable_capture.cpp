// Test plugin: a capture whose probe always says it cannot work here (like x11 without a
// display), with a high rank, so `capture = auto` must pass over it and say why.
#include "deskstream/plugin.hpp"

namespace {

class UnavailableCapture : public deskstream::Capture {
public:
    static constexpr int32_t kRank = 1000;
    static void probe(const deskstream::Host&, const deskstream::Config&) {
        throw deskstream::Error(DS_ERR_UNSUPPORTED, "no display in this test");
    }
    UnavailableCapture(const deskstream::Host&, const deskstream::Config&) {}
    std::vector<ds_monitor_info> monitors() override { return {}; }
    ds_status grab(uint32_t, uint32_t, ds_frame&) override { return DS_TIMEOUT; }
};

}  // namespace

DESKSTREAM_PLUGIN(UnavailableCapture, "test_unavailable", "1.0.0", "A capture that never works")
