// Test plugin: an encoder whose create() fails with a status and a message.
#include "deskstream/plugin.hpp"

namespace {

class FailingEncoder : public deskstream::Encoder {
public:
    static constexpr ds_codec kCodec = DS_CODEC_JPEG;
    FailingEncoder(const deskstream::Host&, const deskstream::Config& config) {
        throw deskstream::Error(DS_ERR_CONFIG,
                                "test_failing refuses to start (" + config.section() + ")");
    }
    void encode(const ds_frame&, const ds_encode_params&, ds_encoded&) override {}
};

}  // namespace

DESKSTREAM_PLUGIN(FailingEncoder, "test_failing", "1.0.0", "An encoder whose create fails")
