// The synthetic capture plugin, loaded through the C entry point exactly as the host does.
#include "ds_test/plugin_fixture.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include <unistd.h>

namespace {

using ds_test::LoadedPlugin;
using ds_test::TestConfig;
using ds_test::TestHost;

const LoadedPlugin& plugin() {
    static LoadedPlugin p(ds_test::pluginPath("capture", "synthetic"));
    return p;
}

// One capture instance; destroyed at the end of the test.
struct Instance {
    explicit Instance(std::map<std::string, std::string> values = {})
        : config("capture.synthetic", std::move(values)) {
        char err[256] = "";
        ds_status s = plugin().capture().create(host.api(), config.get(), &handle, err, sizeof err);
        EXPECT_EQ(s, DS_OK) << err;
    }
    ~Instance() {
        if (handle) plugin().capture().destroy(handle);
    }
    ds_frame grab(uint32_t monitor) {
        ds_frame f{};
        f.struct_size = sizeof f;
        char err[256] = "";
        ds_status s = plugin().capture().grab_frame(handle, monitor, 100, &f, err, sizeof err);
        EXPECT_EQ(s, DS_OK) << err;
        return f;
    }
    void release(ds_frame& f) { plugin().capture().release_frame(handle, &f); }
    std::vector<uint8_t> grabCopy(uint32_t monitor, ds_frame* meta = nullptr) {
        ds_frame f = grab(monitor);
        std::vector<uint8_t> bytes(f.data, f.data + size_t{f.stride} * f.height);
        if (meta) *meta = f;
        release(f);
        return bytes;
    }
    TestHost host;
    TestConfig config;
    void* handle = nullptr;
};

// Reads the 7-segment counter back, following the layout documented in synthetic.cpp (and
// docs/plugins.md): digit i at (12 + 28 i, 12), 20 x 40 px, segments 4 px thick.
long long readCounter(const ds_frame& f) {
    static const int segmentsOf[10] = {0x3F, 0x06, 0x5B, 0x4F, 0x66, 0x6D, 0x7D, 0x07, 0x7F, 0x6F};
    auto lit = [&](int x, int y) {
        const uint8_t* p = f.data + size_t(y) * f.stride + size_t(x) * 4;
        return p[0] > 200 && p[1] > 200 && p[2] > 200;
    };
    long long value = 0;
    for (int i = 0; i < 10; ++i) {
        int ox = 12 + 28 * i, oy = 12;
        int bits = (lit(ox + 10, oy + 2) << 0) | (lit(ox + 18, oy + 10) << 1) |
                   (lit(ox + 18, oy + 30) << 2) | (lit(ox + 10, oy + 38) << 3) |
                   (lit(ox + 2, oy + 30) << 4) | (lit(ox + 2, oy + 10) << 5) |
                   (lit(ox + 10, oy + 20) << 6);
        int digit = -1;
        for (int d = 0; d < 10; ++d)
            if (segmentsOf[d] == bits) digit = d;
        if (digit < 0) return -1;
        value = value * 10 + digit;
    }
    return value;
}

TEST(SyntheticCapture, DescriptorDeclaresKindNameAndKeys) {
    const ds_plugin_descriptor& d = plugin().descriptor();
    EXPECT_EQ(d.kind, DS_KIND_CAPTURE);
    EXPECT_STREQ(d.name, "synthetic");
    EXPECT_EQ(d.abi_major, DS_ABI_MAJOR);
    ASSERT_EQ(d.config_key_count, 7u);
    EXPECT_STREQ(d.config_keys[0].key, "width");
    EXPECT_STREQ(d.config_keys[1].key, "height");
    EXPECT_STREQ(d.config_keys[2].key, "monitors");
    EXPECT_STREQ(d.config_keys[3].key, "input_log");
    EXPECT_STREQ(d.config_keys[4].key, "scenario");
    EXPECT_STREQ(d.config_keys[5].key, "background");
    EXPECT_STREQ(d.config_keys[6].key, "typing.interval_ms");
    EXPECT_NE(plugin().capture().capabilities & DS_CAPTURE_CAP_DAMAGE, 0u);
    ASSERT_NE(plugin().capture().probe, nullptr);
    TestHost host;
    TestConfig config("capture.synthetic");
    char err[64] = "";
    EXPECT_EQ(plugin().capture().probe(host.api(), config.get(), err, sizeof err), DS_OK);
}

// Input is accepted and, with input_log set, recorded one JSON line per event (the browser
// end-to-end tests read it back); a monitor that does not exist is refused with the reason.
TEST(SyntheticCapture, RecordsInputInTheInputLog) {
    const std::string log =
        testing::TempDir() + "synthetic-input-" + std::to_string(::getpid()) + ".jsonl";
    std::remove(log.c_str());
    Instance inst({{"width", "64"}, {"height", "48"}, {"monitors", "2"}, {"input_log", log}});
    EXPECT_NE(plugin().capture().capabilities & DS_CAPTURE_CAP_INPUT, 0u);
    ASSERT_NE(plugin().capture().inject_input, nullptr);
    auto inject = [&](ds_input_event ev, std::string* error = nullptr) {
        ev.struct_size = sizeof ev;
        char err[256] = "";
        ds_status s = plugin().capture().inject_input(inst.handle, &ev, err, sizeof err);
        if (error) *error = err;
        return s;
    };
    ds_input_event down{};
    down.type = DS_INPUT_MOUSE_DOWN;
    down.monitor = 1;
    down.x = 60;
    down.y = 7;
    down.button = 2;
    EXPECT_EQ(inject(down), DS_OK);
    ds_input_event key{};
    key.type = DS_INPUT_KEY_DOWN;
    key.key = "a\"b\\";
    EXPECT_EQ(inject(key), DS_OK);
    ds_input_event wheel{};
    wheel.type = DS_INPUT_WHEEL;
    wheel.delta_y = -120;
    EXPECT_EQ(inject(wheel), DS_OK);
    ds_input_event elsewhere{};
    elsewhere.type = DS_INPUT_MOUSE_MOVE;
    elsewhere.monitor = 5;
    std::string error;
    EXPECT_EQ(inject(elsewhere, &error), DS_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(error, "input for monitor 5, which does not exist");

    std::ifstream in(log);
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    ASSERT_EQ(lines.size(), 3u);
    EXPECT_EQ(
        lines[0],
        R"({"event":"mouse_down","monitor":1,"x":60,"y":7,"button":2,"deltaX":0,"deltaY":0})");
    EXPECT_EQ(
        lines[1],
        R"({"event":"key_down","monitor":0,"x":0,"y":0,"button":0,"deltaX":0,"deltaY":0,"key":"a\"b\\"})");
    EXPECT_EQ(lines[2],
              R"({"event":"wheel","monitor":0,"x":0,"y":0,"button":0,"deltaX":0,"deltaY":-120})");
    std::remove(log.c_str());
}

TEST(SyntheticCapture, DefaultsAre1080pOneMonitor) {
    Instance inst;
    ds_frame meta{};
    inst.grabCopy(0, &meta);
    EXPECT_EQ(meta.width, 1920u);
    EXPECT_EQ(meta.height, 1080u);
    EXPECT_EQ(meta.stride, 1920u * 4);
    EXPECT_EQ(meta.format, DS_PIXEL_BGRA);
}

TEST(SyntheticCapture, SizesAndMonitorsFollowConfiguration) {
    Instance inst({{"width", "320"}, {"height", "200"}, {"monitors", "3"}});
    ds_monitor_info infos[4]{};
    uint32_t count = 0;
    char err[128] = "";
    ASSERT_EQ(plugin().capture().list_monitors(inst.handle, infos, 4, &count, err, sizeof err),
              DS_OK)
        << err;
    ASSERT_EQ(count, 3u);
    for (uint32_t m = 0; m < 3; ++m) {
        EXPECT_EQ(infos[m].index, m);
        EXPECT_EQ(infos[m].width, 320u);
        EXPECT_EQ(infos[m].height, 200u);
        EXPECT_EQ(infos[m].x, int32_t(m * 320));
        EXPECT_EQ(infos[m].primary, m == 0 ? 1 : 0);
        EXPECT_EQ(std::string(infos[m].name), "synthetic-" + std::to_string(m));
    }
    // A too small array still reports the full count.
    ASSERT_EQ(plugin().capture().list_monitors(inst.handle, infos, 1, &count, err, sizeof err),
              DS_OK);
    EXPECT_EQ(count, 3u);
    ds_frame f = inst.grab(2);
    EXPECT_EQ(f.monitor, 2u);
    EXPECT_EQ(f.width, 320u);
    EXPECT_EQ(f.height, 200u);
    EXPECT_EQ(f.stride, 1280u);
    EXPECT_GT(f.capture_time_us, 0u);
    inst.release(f);
}

TEST(SyntheticCapture, SameSequenceGivesSameBytesAcrossInstances) {
    Instance a({{"width", "640"}, {"height", "360"}});
    Instance b({{"width", "640"}, {"height", "360"}});
    std::vector<uint8_t> a1 = a.grabCopy(0), a2 = a.grabCopy(0), a3 = a.grabCopy(0);
    std::vector<uint8_t> b1 = b.grabCopy(0), b2 = b.grabCopy(0), b3 = b.grabCopy(0);
    EXPECT_TRUE(a1 == b1);
    EXPECT_TRUE(a2 == b2);
    EXPECT_TRUE(a3 == b3);
    EXPECT_FALSE(a1 == a2);  // the picture moves
    EXPECT_FALSE(a2 == a3);
}

TEST(SyntheticCapture, CounterReadsBackAsTheSequence) {
    Instance inst({{"width", "640"}, {"height", "360"}});
    for (uint64_t expected = 1; expected <= 12; ++expected) {
        ds_frame f = inst.grab(0);
        EXPECT_EQ(f.sequence, expected);
        EXPECT_EQ(readCounter(f), static_cast<long long>(expected));
        inst.release(f);
    }
}

TEST(SyntheticCapture, MonitorsDifferAndCountSeparately) {
    Instance inst({{"width", "320"}, {"height", "240"}, {"monitors", "2"}});
    ds_frame m0{}, m1{};
    std::vector<uint8_t> p0 = inst.grabCopy(0, &m0);
    std::vector<uint8_t> p1 = inst.grabCopy(1, &m1);
    EXPECT_EQ(m0.sequence, 1u);
    EXPECT_EQ(m1.sequence, 1u);
    EXPECT_FALSE(p0 == p1);
    EXPECT_EQ(inst.grabCopy(0, &m0).size(), p0.size());
    EXPECT_EQ(m0.sequence, 2u);
}

TEST(SyntheticCapture, BuffersAreReusedAndHeldFramesAreProtected) {
    Instance inst({{"width", "64"}, {"height", "64"}});
    ds_frame f1 = inst.grab(0);
    const uint8_t* first = f1.data;
    inst.release(f1);
    ds_frame f2 = inst.grab(0);
    EXPECT_EQ(f2.data, first);   // no new allocation per frame
    ds_frame f3 = inst.grab(0);  // f2 still held: the other buffer
    EXPECT_NE(f3.data, f2.data);
    ds_frame f4{};
    f4.struct_size = sizeof f4;
    char err[128] = "";
    EXPECT_EQ(plugin().capture().grab_frame(inst.handle, 0, 0, &f4, err, sizeof err),
              DS_ERR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(err).find("still held"), std::string::npos) << err;
    inst.release(f2);
    inst.release(f3);
}

TEST(SyntheticCapture, TinyPicturesDoNotCrash) {
    Instance inst({{"width", "1"}, {"height", "1"}});
    ds_frame meta{};
    EXPECT_EQ(inst.grabCopy(0, &meta).size(), 4u);
    EXPECT_EQ(meta.width, 1u);
}

TEST(SyntheticCapture, UnknownMonitorIsAnError) {
    Instance inst({{"width", "64"}, {"height", "64"}});
    ds_frame f{};
    f.struct_size = sizeof f;
    char err[128] = "";
    EXPECT_EQ(plugin().capture().grab_frame(inst.handle, 1, 0, &f, err, sizeof err),
              DS_ERR_INVALID_ARGUMENT);
    EXPECT_STREQ(err, "monitor 1 does not exist (there are 1)");
}

struct BadConfig {
    std::string key, value, message;
};
void PrintTo(const BadConfig& c, std::ostream* os) { *os << c.key << "=" << c.value; }

class SyntheticBadConfig : public ::testing::TestWithParam<BadConfig> {};

TEST_P(SyntheticBadConfig, CreateFailsWithConfigError) {
    const BadConfig& c = GetParam();
    TestHost host;
    TestConfig config("capture.synthetic", {{c.key, c.value}});
    void* handle = nullptr;
    char err[256] = "";
    EXPECT_EQ(plugin().capture().create(host.api(), config.get(), &handle, err, sizeof err),
              DS_ERR_CONFIG);
    EXPECT_EQ(handle, nullptr);
    EXPECT_EQ(std::string(err), c.message);
}

INSTANTIATE_TEST_SUITE_P(
    Values, SyntheticBadConfig,
    ::testing::Values(
        BadConfig{"width", "0", "[capture.synthetic] width = 0 is out of range [1, 8192]"},
        BadConfig{"height", "-5", "[capture.synthetic] height = -5 is out of range [1, 8192]"},
        BadConfig{"width", "wide", "[capture.synthetic] width = 'wide' is not an integer"},
        BadConfig{"monitors", "17", "[capture.synthetic] monitors = 17 is out of range [1, 16]"}),
    [](const ::testing::TestParamInfo<BadConfig>& i) {
        return i.param.key + "_" + std::to_string(i.index);
    });

}  // namespace

// ---------------------------------------------------------------- scenarios (damage tests)

namespace {
ds_status grabWithin(Instance& inst, uint32_t timeoutMs, ds_frame& f) {
    f = ds_frame{};
    f.struct_size = sizeof f;
    char err[256] = "";
    return plugin().capture().grab_frame(inst.handle, 0, timeoutMs, &f, err, sizeof err);
}
std::size_t differingPixels(const std::vector<uint8_t>& a, const ds_frame& b) {
    std::size_t n = 0;
    for (std::size_t i = 0; i < a.size(); i += 4)
        if (std::memcmp(&a[i], b.data + i, 4) != 0) ++n;
    return n;
}
}  // namespace

// still: one picture, then DS_TIMEOUT after waiting the timeout (a damage-driven source).
TEST(SyntheticCapture, StillGivesOnePictureThenTimesOut) {
    Instance inst({{"width", "320"}, {"height", "200"}, {"scenario", "still"}});
    ds_frame f;
    ASSERT_EQ(grabWithin(inst, 50, f), DS_OK);
    inst.release(f);
    const auto start = std::chrono::steady_clock::now();
    EXPECT_EQ(grabWithin(inst, 50, f), DS_TIMEOUT);
    // It waited (no busy loop for the caller); upper bound loose for a loaded ASan machine.
    const auto waited = std::chrono::steady_clock::now() - start;
    EXPECT_GE(waited, std::chrono::milliseconds(45));
    EXPECT_LT(waited, std::chrono::seconds(2));
}

// typing: a glyph per interval; each new picture carries damage that covers every changed pixel
// and is small; nothing new within the timeout gives DS_TIMEOUT.
TEST(SyntheticCapture, TypingReportsDamageCoveringEveryChange) {
    Instance inst({{"width", "1280"},
                   {"height", "720"},
                   {"scenario", "typing"},
                   {"typing.interval_ms", "20"}});
    ds_frame f;
    ASSERT_EQ(grabWithin(inst, 200, f), DS_OK);
    EXPECT_EQ(f.damage, nullptr);  // the first picture is all new
    std::vector<uint8_t> prev(f.data, f.data + size_t{f.stride} * f.height);
    inst.release(f);
    for (int i = 0; i < 5; ++i) {
        ASSERT_EQ(grabWithin(inst, 200, f), DS_OK);
        ASSERT_NE(f.damage, nullptr);
        ASSERT_EQ(f.damage_count, 1u);
        const ds_rect d = f.damage[0];
        EXPECT_LE(uint64_t{d.width} * d.height, 60u * 12 * 24) << "a line at most";
        std::size_t outside = 0;
        for (uint32_t y = 0; y < f.height; ++y)
            for (uint32_t x = 0; x < f.width; ++x) {
                const bool in = x >= d.x && x < d.x + d.width && y >= d.y && y < d.y + d.height;
                if (!in && std::memcmp(&prev[(size_t{y} * f.width + x) * 4],
                                       f.data + size_t{y} * f.stride + x * 4, 4) != 0)
                    ++outside;
            }
        EXPECT_EQ(outside, 0u) << "grab " << i;
        EXPECT_GT(differingPixels(prev, f), 0u) << "grab " << i;
        prev.assign(f.data, f.data + size_t{f.stride} * f.height);
        inst.release(f);
    }
    Instance slow({{"width", "320"},
                   {"height", "200"},
                   {"scenario", "typing"},
                   {"typing.interval_ms", "60000"}});
    ASSERT_EQ(grabWithin(slow, 50, f), DS_OK);
    slow.release(f);
    EXPECT_EQ(grabWithin(slow, 30, f), DS_TIMEOUT);
}

// video: a large area new every 33 ms, damage = that area.
TEST(SyntheticCapture, VideoChangesALargeAreaWithDamage) {
    Instance inst({{"scenario", "video"}, {"monitors", "1"}});
    ds_frame f;
    ASSERT_EQ(grabWithin(inst, 200, f), DS_OK);
    std::vector<uint8_t> prev(f.data, f.data + size_t{f.stride} * f.height);
    inst.release(f);
    ASSERT_EQ(grabWithin(inst, 200, f), DS_OK);
    ASSERT_EQ(f.damage_count, 1u);
    EXPECT_EQ(f.damage[0].width, 960u);
    EXPECT_EQ(f.damage[0].height, 540u);
    EXPECT_GT(differingPixels(prev, f), 960u * 540 / 2);
    inst.release(f);
}

// A PPM background is shown as is (BGRA from RGB) at its own size.
TEST(SyntheticCapture, PpmBackgroundIsShownAtItsSize) {
    const std::string path =
        testing::TempDir() + "synthetic-bg-" + std::to_string(::getpid()) + ".ppm";
    {
        std::ofstream out(path, std::ios::binary);
        out << "P6\n# comment\n3 2\n255\n";
        const unsigned char rgb[] = {10, 20, 30, 40, 50, 60, 70, 80, 90, 1, 2, 3, 4, 5, 6, 7, 8, 9};
        out.write(reinterpret_cast<const char*>(rgb), sizeof rgb);
    }
    Instance inst({{"scenario", "still"}, {"background", path}, {"monitors", "1"}});
    ds_frame f;
    ASSERT_EQ(grabWithin(inst, 50, f), DS_OK);
    EXPECT_EQ(f.width, 3u);
    EXPECT_EQ(f.height, 2u);
    EXPECT_EQ(f.data[0], 30);  // B
    EXPECT_EQ(f.data[1], 20);  // G
    EXPECT_EQ(f.data[2], 10);  // R
    EXPECT_EQ(f.data[5 * 4 + 0], 9);
    inst.release(f);
    std::remove(path.c_str());

    TestHost host;
    TestConfig bad("capture.synthetic", {{"background", path + ".missing"}});
    void* handle = nullptr;
    char err[256] = "";
    EXPECT_EQ(plugin().capture().create(host.api(), bad.get(), &handle, err, sizeof err),
              DS_ERR_CONFIG);
    EXPECT_NE(std::string(err).find("cannot open background"), std::string::npos) << err;
    TestConfig badScenario("capture.synthetic", {{"scenario", "dancing"}});
    EXPECT_NE(plugin().capture().create(host.api(), badScenario.get(), &handle, err, sizeof err),
              DS_OK);
}
