// Plugin loader, host API and instance wrappers, with real plugins built in tests/host/plugins.
#include "deskstream/host/config.hpp"
#include "deskstream/host/host.hpp"
#include "deskstream/host/host_api.hpp"
#include "deskstream/host/instances.hpp"
#include "deskstream/host/plugin_registry.hpp"

#include <Poco/AutoPtr.h>
#include <Poco/Channel.h>
#include <Poco/Logger.h>
#include <Poco/Message.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <mutex>
#include <string>
#include <vector>

using namespace deskstream::host;

namespace {

std::string folder(const std::string& name) {
    return std::string(DS_TEST_PLUGIN_ROOT) + "/" + name;
}
std::string file(const std::string& f, const std::string& stem) {
    return folder(f) + "/" + stem + ".so";
}

// Captures log lines so tests can check the "one clear line" promise.
class MemoryChannel : public Poco::Channel {
public:
    void log(const Poco::Message& msg) override {
        std::lock_guard<std::mutex> lock(mutex);
        lines.push_back(msg.getSource() + ": " + msg.getText());
    }
    std::vector<std::string> take() {
        std::lock_guard<std::mutex> lock(mutex);
        return std::move(lines);
    }
    std::mutex mutex;
    std::vector<std::string> lines;
};

class LoaderTest : public ::testing::Test {
protected:
    void SetUp() override {
        channel = new MemoryChannel;
        for (const char* name :
             {"host.plugins", "plugin.test_good", "plugin.test_c_raw", "host.agent"}) {
            Poco::Logger::get(name).setChannel(channel);
            Poco::Logger::get(name).setLevel(Poco::Message::PRIO_INFORMATION);
        }
    }
    void TearDown() override {
        for (const char* name :
             {"host.plugins", "plugin.test_good", "plugin.test_c_raw", "host.agent"})
            Poco::Logger::get(name).setChannel(nullptr);
    }
    Poco::AutoPtr<MemoryChannel> channel;
};

TEST_F(LoaderTest, GoodPluginLoadsWithItsDescriptor) {
    PluginRegistry reg;
    auto outcomes = reg.scan({folder("good")});
    ASSERT_EQ(outcomes.size(), 1u);
    EXPECT_TRUE(outcomes[0].loaded) << outcomes[0].reason;
    const PluginInfo* p = reg.find(DS_KIND_CAPTURE, "test_good");
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(p->version, "2.3.4");
    EXPECT_EQ(p->description, "A good test capture");
    EXPECT_EQ(p->license, "MIT");
    EXPECT_EQ(p->vendor, "deskstream tests");
    EXPECT_EQ(p->rank, 5);
    EXPECT_EQ(p->file, file("good", "deskstream_capture_test_good"));
    ASSERT_EQ(p->configKeys.size(), 4u);
    EXPECT_STREQ(p->configKeys[1].key, "mode");
    EXPECT_NE(p->capture.probe, nullptr);
    auto lines = channel->take();
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_EQ(lines[0], "host.plugins: loaded capture plugin 'test_good' 2.3.4 from " + p->file);
}

struct Refusal {
    std::string folder, stem, reason;
};
void PrintTo(const Refusal& r, std::ostream* os) { *os << r.folder; }

class LoaderRefusal : public LoaderTest, public ::testing::WithParamInterface<Refusal> {};

TEST_P(LoaderRefusal, IsSkippedWithOneLineNamingFileAndReason) {
    const Refusal& r = GetParam();
    PluginRegistry reg;
    auto outcomes = reg.scan({folder(r.folder)});
    ASSERT_EQ(outcomes.size(), 1u);
    EXPECT_FALSE(outcomes[0].loaded);
    std::string path = file(r.folder, r.stem);
    EXPECT_EQ(outcomes[0].file, path);
    if (r.reason.back() == '*')  // dlerror text differs between libc versions: compare the start
        EXPECT_EQ(outcomes[0].reason.rfind(r.reason.substr(0, r.reason.size() - 1), 0), 0u)
            << outcomes[0].reason;
    else
        EXPECT_EQ(outcomes[0].reason, r.reason);
    EXPECT_TRUE(reg.all().empty());
    auto lines = channel->take();
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_EQ(lines[0], "host.plugins: skipped plugin file " + path + ": " + outcomes[0].reason);
}

const std::string kAbi = std::to_string(DS_ABI_MAJOR) + "." + std::to_string(DS_ABI_MINOR);

INSTANTIATE_TEST_SUITE_P(
    Cases, LoaderRefusal,
    ::testing::Values(
        Refusal{"textfile", "deskstream_encoder_fake", "not a loadable library: *"},
        Refusal{"broken_no_entry", "deskstream_capture_broken_no_entry",
                "no entry symbol 'deskstream_plugin_entry'"},
        Refusal{"broken_null_descriptor", "deskstream_capture_broken_null_descriptor",
                "deskstream_plugin_entry returned NULL"},
        Refusal{"broken_abi_major", "deskstream_capture_broken_abi_major",
                "built for plugin ABI 2." + std::to_string(DS_ABI_MINOR) +
                    ", this host supports ABI " + kAbi + " (the major version must be equal)"},
        Refusal{"broken_abi_minor", "deskstream_capture_broken_abi_minor",
                "built for plugin ABI " + std::to_string(DS_ABI_MAJOR) + "." +
                    std::to_string(DS_ABI_MINOR + 7) + ", newer than this host's ABI " + kAbi},
        Refusal{"broken_unknown_kind", "deskstream_capture_broken_unknown_kind",
                "unknown plugin kind 9"},
        Refusal{"broken_bad_name", "deskstream_capture_broken_bad_name",
                "invalid plugin name 'Bad-Name' (must match [a-z0-9_]+, at most 64 characters)"},
        Refusal{"broken_no_version", "deskstream_capture_broken_no_version",
                "descriptor has no version"},
        Refusal{"broken_no_vtable", "deskstream_capture_broken_no_vtable",
                "descriptor has no vtable"},
        Refusal{"broken_small_descriptor", "deskstream_capture_broken_small_descriptor",
                "descriptor struct_size 24 is smaller than ABI 1.0's (" +
                    std::to_string(kDescriptorSize_1_0) + " bytes)"},
        Refusal{"broken_small_vtable", "deskstream_capture_broken_small_vtable",
                "capture vtable struct_size 8 is smaller than ABI 1.0's (" +
                    std::to_string(kCaptureVtableSize_1_0) + " bytes)"},
        Refusal{"broken_missing_function", "deskstream_capture_broken_missing_function",
                "capture vtable lacks the required function 'grab_frame'"},
        Refusal{"broken_keys_null", "deskstream_capture_broken_keys_null",
                "descriptor has config_key_count 3 but config_keys is NULL"}),
    [](const ::testing::TestParamInfo<Refusal>& info) { return info.param.folder; });

TEST_F(LoaderTest, DuplicateNameIsRefusedAndLoadingGoesOn) {
    PluginRegistry reg;
    auto outcomes =
        reg.scan({folder("good"), folder("duplicate"), folder("broken_no_entry"), folder("c_raw")});
    ASSERT_EQ(outcomes.size(), 4u);
    EXPECT_TRUE(outcomes[0].loaded);
    EXPECT_FALSE(outcomes[1].loaded);
    EXPECT_EQ(outcomes[1].reason, "capture plugin name 'test_good' is already taken by " +
                                      file("good", "deskstream_capture_test_good"));
    EXPECT_FALSE(outcomes[2].loaded);
    EXPECT_TRUE(outcomes[3].loaded) << "loading goes on after refusals";
    EXPECT_EQ(reg.find(DS_KIND_CAPTURE, "test_good")->rank, 5) << "the first one found wins";
    EXPECT_EQ(reg.all().size(), 2u);
    EXPECT_EQ(reg.skipped().size(), 2u);
}

TEST_F(LoaderTest, AFolderListedTwiceIsScannedOnce) {
    PluginRegistry reg;
    auto outcomes = reg.scan({folder("good"), folder("good")});
    ASSERT_EQ(outcomes.size(), 1u);
    EXPECT_TRUE(outcomes[0].loaded);
    EXPECT_TRUE(reg.skipped().empty());
}

TEST_F(LoaderTest, MissingFolderIsNotAnError) {
    PluginRegistry reg;
    EXPECT_TRUE(reg.scan({folder("does-not-exist")}).empty());
    EXPECT_EQ(reg.folders(), std::vector<std::string>{folder("does-not-exist")});
}

TEST_F(LoaderTest, RequireExplainsMissingAndRefusedPlugins) {
    PluginRegistry reg;
    reg.scan({folder("good"), folder("broken_abi_major")});
    EXPECT_EQ(&reg.require(DS_KIND_CAPTURE, "test_good", "[agent] capture"),
              reg.find(DS_KIND_CAPTURE, "test_good"));
    try {
        reg.require(DS_KIND_ENCODER, "jpeg", "[agent] encoder");
        FAIL() << "no exception";
    } catch (const std::runtime_error& e) {
        EXPECT_EQ(std::string(e.what()),
                  "[agent] encoder = jpeg: encoder plugin 'jpeg' was not found (searched " +
                      folder("good") + ", " + folder("broken_abi_major") +
                      "; see [host] plugins.path); available encoder plugins: none");
    }
    try {
        reg.require(DS_KIND_CAPTURE, "broken_abi_major", "[agent] capture");
        FAIL() << "no exception";
    } catch (const std::runtime_error& e) {
        std::string msg = e.what();
        EXPECT_NE(msg.find("capture plugin 'broken_abi_major' was not loaded: " +
                           file("broken_abi_major", "deskstream_capture_broken_abi_major") +
                           " was refused: built for plugin ABI 2."),
                  std::string::npos)
            << msg;
        EXPECT_NE(msg.find("(searched " + folder("good")), std::string::npos) << msg;
    }
}

TEST_F(LoaderTest, CreateFailureSurfacesStatusAndMessage) {
    PluginRegistry reg;
    reg.scan({folder("failing")});
    const PluginInfo& p = reg.require(DS_KIND_ENCODER, "test_failing", "");
    Configuration config;
    try {
        EncoderInstance instance(p, config.poco());
        FAIL() << "no exception";
    } catch (const PluginError& e) {
        EXPECT_EQ(e.status(), DS_ERR_CONFIG);
        EXPECT_EQ(std::string(e.what()),
                  "encoder plugin 'test_failing': create failed (DS_ERR_CONFIG): "
                  "test_failing refuses to start (encoder.test_failing)");
    }
}

TEST_F(LoaderTest, CPluginLoadsAndEncodesAFrameFromACppCapture) {
    PluginRegistry reg;
    reg.scan({folder("good"), folder("c_raw")});
    Configuration config;
    config.set("capture.test_good.size=8");
    CaptureInstance capture(reg.require(DS_KIND_CAPTURE, "test_good", ""), config.poco());
    EncoderInstance encoder(reg.require(DS_KIND_ENCODER, "test_c_raw", ""), config.poco());
    auto monitors = capture.monitors();
    ASSERT_EQ(monitors.size(), 1u);
    EXPECT_STREQ(monitors[0].name, "good");
    CaptureInstance::Frame frame;
    ASSERT_EQ(capture.grab(0, 10, frame), DS_OK);
    ASSERT_TRUE(frame);
    EXPECT_EQ(frame->width, 8u);
    EXPECT_EQ(frame->sequence, 1u);
    ds_encode_params params{};
    params.struct_size = sizeof params;
    params.quality = 50;
    params.rect = {2, 2, 4, 3};
    ds_encoded out = encoder.encode(*frame, params);
    EXPECT_EQ(out.codec, DS_CODEC_RAW_BGRA);
    EXPECT_EQ(out.size, 4u * 3 * 4);
    EXPECT_EQ(out.width, 4u);
    EXPECT_EQ(out.data[0], 0x80);
    params.rect = {6, 6, 4, 4};
    try {
        encoder.encode(*frame, params);
        FAIL() << "no exception";
    } catch (const PluginError& e) {
        EXPECT_EQ(e.status(), DS_ERR_INVALID_ARGUMENT);
        EXPECT_EQ(std::string(e.what()),
                  "encoder plugin 'test_c_raw': encode failed (DS_ERR_INVALID_ARGUMENT): "
                  "rect 4x4+6+6 is outside the 8x8 frame");
    }
    // Plugin log lines land in the Poco logger "plugin.<name>".
    auto lines = channel->take();
    EXPECT_NE(
        std::find(lines.begin(), lines.end(), "plugin.test_good: test_good created with size 8"),
        lines.end());
    EXPECT_NE(std::find(lines.begin(), lines.end(), "plugin.test_c_raw: C encoder created"),
              lines.end());
}

TEST_F(LoaderTest, GrabErrorsBecomePluginErrors) {
    PluginRegistry reg;
    reg.scan({folder("good")});
    Configuration config;
    CaptureInstance capture(reg.require(DS_KIND_CAPTURE, "test_good", ""), config.poco());
    CaptureInstance::Frame frame;
    try {
        capture.grab(3, 0, frame);
        FAIL() << "no exception";
    } catch (const PluginError& e) {
        EXPECT_EQ(e.status(), DS_ERR_INVALID_ARGUMENT);
        EXPECT_EQ(std::string(e.what()),
                  "capture plugin 'test_good': grab_frame failed (DS_ERR_INVALID_ARGUMENT): only "
                  "monitor 0");
    }
    EXPECT_FALSE(frame);
}

TEST_F(LoaderTest, ConfigViewReadsTheSectionRawAndTheStateDir) {
    Configuration config;
    config.set("encoder.jpeg.subsampling=444");
    config.set("encoder.jpeg.secret=${HOME}");
    config.set("host.state_dir=/tmp/ds-state");
    ConfigView view(config.poco(), "encoder.jpeg");
    const ds_config* c = view.get();
    EXPECT_STREQ(c->section, "encoder.jpeg");
    char buf[8];
    EXPECT_EQ(c->get(c->ctx, "subsampling", buf, sizeof buf), 3);
    EXPECT_STREQ(buf, "444");
    EXPECT_EQ(c->get(c->ctx, "secret", buf, sizeof buf), 7) << "no ${} expansion";
    EXPECT_STREQ(buf, "${HOME}");
    EXPECT_EQ(c->get(c->ctx, "missing", buf, sizeof buf), -1);
    EXPECT_EQ(c->get(c->ctx, "subsampling", buf, 2), 3) << "truncated copy, full length returned";
    EXPECT_STREQ(buf, "4");
    char dir[64];
    EXPECT_EQ(c->get(c->ctx, kHostStateDirKey, dir, sizeof dir), 13);
    EXPECT_STREQ(dir, "/tmp/ds-state");
}

TEST_F(LoaderTest, HostApiClocksAdvance) {
    const ds_host_api* api = hostApi();
    EXPECT_EQ(api->struct_size, sizeof(ds_host_api));
    EXPECT_EQ(api->abi_major, DS_ABI_MAJOR);
    uint64_t m1 = api->monotonic_us(api->ctx), w = api->wall_us(api->ctx);
    EXPECT_GT(w, 1600000000ull * 1000000ull);  // after 2020
    uint64_t m2 = api->monotonic_us(api->ctx);
    EXPECT_GE(m2, m1);
    api->log(api->ctx, static_cast<ds_log_level>(77), nullptr, nullptr);  // must not crash
}

// A folder holding only the synthetic capture plugin, so which real plugins this build has
// (x11, pipewire...) and whether they work here cannot change the outcome.
std::string syntheticOnlyFolder() {
    std::filesystem::path dir = std::filesystem::path(DS_BINARY_DIR) / "plugins" / "synthetic_only";
    std::filesystem::create_directories(dir);
    std::filesystem::path link = dir / "deskstream_capture_synthetic.so";
    std::error_code ec;
    std::filesystem::remove(link, ec);
    std::filesystem::create_symlink(
        std::string(DS_BUILD_PLUGIN_DIR) + "/deskstream_capture_synthetic.so", link);
    return dir.string();
}

std::vector<std::string> skipLines(const std::vector<std::string>& lines) {
    std::vector<std::string> out;
    for (const auto& l : lines)
        if (l.find("capture auto: skipped") != std::string::npos) out.push_back(l);
    return out;
}

TEST_F(LoaderTest, CaptureAutoPicksTheBestWorkingPluginAndLogsEachSkip) {
    PluginRegistry reg;
    reg.scan({folder("unavailable"), folder("good"), syntheticOnlyFolder()});
    channel->take();
    Configuration config;
    std::string why;
    const PluginInfo& p = selectCapture(reg, config, why);
    EXPECT_EQ(p.name, "test_good");
    EXPECT_EQ(
        why, "capture auto: chose 'test_good' (rank 5, probe succeeded); skipped test_unavailable");
    EXPECT_EQ(skipLines(channel->take()),
              std::vector<std::string>{
                  "host.agent: capture auto: skipped 'test_unavailable' (rank 1000): "
                  "DS_ERR_UNSUPPORTED: no display in this test"});
    config.set("agent.capture=synthetic");
    EXPECT_EQ(selectCapture(reg, config, why).name, "synthetic");
    config.set("agent.capture=test_unavailable");
    EXPECT_THROW(selectCapture(reg, config, why), std::runtime_error);
}

// With the plugins this build really has: every higher-ranked plugin that cannot work is
// skipped with its own line and reason, and synthetic (rank 1) is the last resort.
TEST_F(LoaderTest, CaptureAutoOverTheRealPluginsLogsWhyEachWasSkipped) {
    PluginRegistry reg;
    reg.scan({DS_BUILD_PLUGIN_DIR});
    channel->take();
    Configuration config;
    config.set(
        "capture.pipewire.node=ds-no-such-node");  // pipewire cannot work: its node is missing
    config.set("capture.x11.display=:4242");       // x11 cannot work: no such display
    std::string why;
    EXPECT_EQ(selectCapture(reg, config, why).name, "synthetic") << why;
    std::vector<std::string> lines = skipLines(channel->take());
    std::vector<std::string> expected;
    for (const PluginInfo* c : reg.ofKind(DS_KIND_CAPTURE))
        if (c->rank > 1) expected.push_back(c->name);
    ASSERT_EQ(lines.size(), expected.size()) << why;
    for (size_t i = 0; i < lines.size(); ++i)
        EXPECT_EQ(
            lines[i].rfind("host.agent: capture auto: skipped '" + expected[i] + "' (rank ", 0), 0u)
            << lines[i];
    const PluginInfo* pw = reg.find(DS_KIND_CAPTURE, "pipewire");
    ASSERT_NE(pw, nullptr) << "the pipewire plugin is built on Linux";
    bool pwLine = false;
    for (const auto& l : lines)
        pwLine |= l.find("skipped 'pipewire' (rank 50): DS_ERR_") != std::string::npos;
    EXPECT_TRUE(pwLine) << "pipewire's reason is logged";
}

TEST_F(LoaderTest, CaptureAutoFailsClearlyWhenNothingWorks) {
    PluginRegistry reg;
    reg.scan({folder("unavailable")});
    Configuration config;
    std::string why;
    try {
        selectCapture(reg, config, why);
        FAIL() << "no exception";
    } catch (const std::runtime_error& e) {
        EXPECT_EQ(std::string(e.what()),
                  "[agent] capture = auto: no capture plugin can work here: test_unavailable "
                  "(rank 1000): DS_ERR_UNSUPPORTED: no display in this test");
    }
}

TEST_F(LoaderTest, ValidateDescriptorCopiesOnlyWhatThePluginDeclared) {
    // A descriptor claiming exactly the 1.0 size with garbage after it: the host must not read
    // beyond struct_size (ASan would flag it with a heap copy of exactly that size).
    PluginRegistry reg;
    reg.scan({folder("good")});
    ds_plugin_descriptor d{};
    d.struct_size = static_cast<uint32_t>(kDescriptorSize_1_0);
    d.abi_major = DS_ABI_MAJOR;
    d.kind = DS_KIND_ENCODER;
    d.name = "x";
    d.version = "1";
    ds_encoder_vtable v{};
    v.struct_size = static_cast<uint32_t>(kEncoderVtableSize_1_0);
    v.codec = DS_CODEC_PNG;
    d.vtable = &v;
    PluginInfo info;
    EXPECT_EQ(validateDescriptor(&d, info), "encoder vtable lacks the required function 'create'");
    v.codec = static_cast<ds_codec>(42);
    EXPECT_EQ(validateDescriptor(&d, info), "encoder vtable has an unknown codec 42");
}

}  // namespace
