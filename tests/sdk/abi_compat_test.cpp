// ABI compatibility: plugins built against the frozen 1.0 headers (tests/sdk/abi-1.0) are loaded
// and used by the current (1.1) host and relay, and the relay's command purge (ABI 1.1) runs
// against a 1.1 store and is skipped, with one log line, for a 1.0 store.
#include "deskstream/host/instances.hpp"
#include "deskstream/host/plugin_registry.hpp"
#include "deskstream/relay/relay.hpp"
#include "deskstream/relay/store_client.hpp"
#include "ds_test/plugin_fixture.hpp"

#include <Poco/AutoPtr.h>
#include <Poco/Channel.h>
#include <Poco/Logger.h>
#include <Poco/Message.h>
#include <Poco/Util/MapConfiguration.h>

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

using namespace deskstream;

namespace {

std::string abi10Folder(const std::string& name) {
    return std::string(DS_ABI10_PLUGIN_ROOT) + "/" + name;
}

class MemoryChannel : public Poco::Channel {
public:
    void log(const Poco::Message& msg) override {
        std::lock_guard<std::mutex> lock(mutex_);
        lines_.push_back(msg.getText());
    }
    size_t countContaining(const std::string& needle) {
        std::lock_guard<std::mutex> lock(mutex_);
        size_t n = 0;
        for (const auto& l : lines_) n += l.find(needle) != std::string::npos;
        return n;
    }
    std::string all() {
        std::lock_guard<std::mutex> lock(mutex_);
        std::string s;
        for (const auto& l : lines_) s += l + "\n";
        return s;
    }

private:
    std::mutex mutex_;
    std::vector<std::string> lines_;
};

bool eventually(const std::function<bool()>& cond, int timeoutMs) {
    auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeoutMs);
    while (std::chrono::steady_clock::now() < end) {
        if (cond()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return cond();
}

int64_t wallNowMs() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

TEST(AbiCompat, CEncoderBuiltAgainstAbi10LoadsAndEncodes) {
    host::PluginRegistry registry;
    auto outcomes = registry.scan({abi10Folder("encoder")});
    ASSERT_EQ(outcomes.size(), 1u);
    ASSERT_TRUE(outcomes[0].loaded) << outcomes[0].reason;
    const host::PluginInfo* p = registry.find(DS_KIND_ENCODER, "test_c_raw");
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(p->abiMajor, 1);
    EXPECT_EQ(p->abiMinor, 0) << "the plugin must really be a 1.0 build";
    EXPECT_EQ(p->encoder.struct_size, host::kEncoderVtableSize_1_0);

    Poco::AutoPtr<Poco::Util::MapConfiguration> config(new Poco::Util::MapConfiguration);
    host::EncoderInstance encoder(*p, *config);
    std::vector<uint8_t> pixels(4 * 3 * 2);
    for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<uint8_t>(i * 7);
    ds_frame frame{};
    frame.struct_size = sizeof frame;
    frame.width = 3;
    frame.height = 2;
    frame.stride = 12;
    frame.format = DS_PIXEL_BGRA;
    frame.data = pixels.data();
    ds_encode_params params{};
    params.struct_size = sizeof params;
    params.quality = 80;
    ds_encoded out = encoder.encode(frame, params);
    EXPECT_EQ(out.codec, DS_CODEC_RAW_BGRA);
    ASSERT_EQ(out.size, pixels.size());
    EXPECT_EQ(std::vector<uint8_t>(out.data, out.data + out.size), pixels);
}

// A relay over the SQLite store loaded from `folder` by the host's loader, with a maintenance
// job every 100 ms and a retention of 5 s.
class RelayPurge : public ::testing::Test {
protected:
    void open(const std::string& folder) {
        std::random_device rd;
        dir_ = std::filesystem::temp_directory_path() /
               ("ds-abi-" + std::to_string(rd()) + std::to_string(rd()));
        std::filesystem::create_directories(dir_);
        registry_.scan({folder});
        plugin_ = registry_.find(DS_KIND_STORE, "sqlite");
        ASSERT_NE(plugin_, nullptr) << "no SQLite store loaded from " << folder;
        ds_test::TestConfig config("store.sqlite", {{"path", (dir_ / "relay.db").string()}});
        char err[512] = {0};
        ASSERT_EQ(plugin_->store.create(host_.api(), config.get(), &instance_, err, sizeof err),
                  DS_OK)
            << err;
        store_ = std::make_unique<relay::StoreClient>(&plugin_->store, instance_);
        // Two finished commands completed 60 s ago (older than the retention), one finished
        // now, one still pending from 60 s ago.
        const int64_t now = wallNowMs();
        enqueue("old-done", now - 61000);
        enqueue("old-failed", now - 61000);
        enqueue("recent-done", now - 61000);
        enqueue("old-pending", now - 61000);
        ASSERT_TRUE(store_->completeCommand("old-done", "done", "{}", now - 60000).ok());
        ASSERT_TRUE(store_->completeCommand("old-failed", "failed", "{}", now - 60000).ok());
        ASSERT_TRUE(store_->completeCommand("recent-done", "done", "{}", now).ok());

        channel_ = new MemoryChannel;
        logger_ = &Poco::Logger::get("abi-compat-relay-" + std::to_string(rd()));
        logger_->setChannel(channel_);
        logger_->setLevel(Poco::Message::PRIO_INFORMATION);
        relay::RelayOptions o;
        o.listen = "127.0.0.1:0";
        o.reaperIntervalMs = 100;
        o.commandRetentionMs = 5000;
        o.commandTtlMs = 3600000;  // old-pending stays pending: only the purge is under test
        relay_ = std::make_unique<relay::Relay>(o, *store_, *logger_);
        relay_->start();
    }
    void enqueue(const std::string& id, int64_t createdAt) {
        relay::CommandRecord c;
        c.id = id;
        c.clientId = "desk-1";
        c.commandType = "input";
        c.commandDataJson = "{\"type\":\"input\"}";
        c.createdAtMs = createdAt;
        bool created = false;
        ASSERT_TRUE(store_->enqueueCommand(c, created).ok());
        ASSERT_TRUE(created);
    }
    bool exists(const std::string& id) {
        std::optional<relay::CommandRecord> c;
        relay::StoreStatus st = store_->getCommand(id, c);
        EXPECT_TRUE(st.ok() || st.code == DS_ERR_NOT_FOUND) << st.message;
        return st.ok() && c.has_value();
    }
    void TearDown() override {
        if (relay_) relay_->stop();
        relay_.reset();
        if (logger_) logger_->setChannel(nullptr);
        if (instance_) plugin_->store.destroy(instance_);
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
    }

    std::filesystem::path dir_;
    host::PluginRegistry registry_;
    const host::PluginInfo* plugin_ = nullptr;
    ds_test::TestHost host_;
    void* instance_ = nullptr;
    std::unique_ptr<relay::StoreClient> store_;
    Poco::AutoPtr<MemoryChannel> channel_;
    Poco::Logger* logger_ = nullptr;
    std::unique_ptr<relay::Relay> relay_;
};

const char* kSkipped = "purging finished commands skipped";

// Bound: the job runs every 100 ms; 15 s leaves room for ASan on 2 busy cores. Without the purge
// the old rows stay forever and the wait fails.
TEST_F(RelayPurge, StoreOfAbi11PurgesFinishedCommandsOlderThanTheRetention) {
    open(DS_BUILD_PLUGIN_DIR);
    if (HasFatalFailure()) return;
    ASSERT_EQ(plugin_->abiMinor, DS_ABI_MINOR);
    ASSERT_TRUE(store_->canPurge());
    // The log line follows the DELETE: wait for both.
    EXPECT_TRUE(eventually(
        [&] {
            return !exists("old-done") && !exists("old-failed") &&
                   channel_->countContaining("purged 2 finished commands") > 0;
        },
        15000))
        << channel_->all();
    EXPECT_TRUE(exists("recent-done")) << "finished within the retention: kept";
    EXPECT_TRUE(exists("old-pending")) << "open commands are never purged";
    EXPECT_EQ(channel_->countContaining("purged 2 finished commands"), 1u) << channel_->all();
    EXPECT_EQ(channel_->countContaining(kSkipped), 0u);
}

// A store built against the 1.0 header has a 144-byte vtable without purge_commands: the relay
// runs with it, never calls past its end, says once that purging is skipped, keeps the rows.
TEST_F(RelayPurge, StoreOfAbi10RunsAndPurgingIsSkippedWithOneLogLine) {
    open(abi10Folder("store"));
    if (HasFatalFailure()) return;
    EXPECT_EQ(plugin_->abiMinor, 0) << "the plugin must really be a 1.0 build";
    EXPECT_EQ(plugin_->store.struct_size, host::kStoreVtableSize_1_0);
    EXPECT_FALSE(store_->canPurge());
    ASSERT_TRUE(eventually([&] { return channel_->countContaining(kSkipped) > 0; }, 15000))
        << channel_->all();
    // Several more maintenance runs (100 ms apart) must not repeat the line.
    std::this_thread::sleep_for(std::chrono::milliseconds(1000));
    EXPECT_EQ(channel_->countContaining(kSkipped), 1u) << channel_->all();
    EXPECT_NE(channel_->all().find("added in plugin ABI 1.1"), std::string::npos)
        << channel_->all();
    EXPECT_TRUE(exists("old-done"));
    EXPECT_TRUE(exists("old-failed"));
    // The relay otherwise works with the 1.0 store: it registered its instance.
    std::vector<relay::InstanceRecord> instances;
    ASSERT_TRUE(store_->listInstances(instances).ok());
    EXPECT_EQ(instances.size(), 1u);
}

}  // namespace
