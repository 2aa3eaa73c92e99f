// Test plugin: the smallest store that starts (check() succeeds); its data functions report
// DS_ERR_UNSUPPORTED. Lets the host start role relay without the real store plugins.
#include "deskstream/plugin.hpp"

namespace {

[[noreturn]] void unsupported() {
    throw deskstream::Error(DS_ERR_UNSUPPORTED, "test_memory stores nothing");
}

class MemoryStore : public deskstream::Store {
public:
    static constexpr ds_config_key kConfigKeys[] = {
        {"fail_check", DS_CONFIG_BOOL, "false", 0, -1, nullptr, "make check() fail"},
    };
    MemoryStore(const deskstream::Host&, const deskstream::Config& config)
        : failCheck_(config.getBool("fail_check", false)) {}
    void check() override {
        if (failCheck_)
            throw deskstream::Error(DS_ERR_STORE_UNAVAILABLE, "test_memory check fails on request");
    }
    void registerClient(const ds_client_record&) override { unsupported(); }
    void touchClient(const char*, const char*, int64_t) override { unsupported(); }
    void unregisterClient(const char*, const char*) override { unsupported(); }
    void listClients(const ClientFn&) override { unsupported(); }
    uint32_t reapClients(int64_t, const char*) override { unsupported(); }
    uint32_t unregisterInstanceClients(const char*) override { unsupported(); }
    void upsertInstance(const ds_instance_record&) override { unsupported(); }
    void listInstances(const InstanceFn&) override { unsupported(); }
    bool enqueueCommand(const ds_command_record&) override { unsupported(); }
    void claimCommands(const char*, int64_t, int64_t, uint32_t, const CommandFn&) override {
        unsupported();
    }
    void completeCommand(const char*, const char*, const char*, int64_t) override { unsupported(); }
    void getCommand(const char*, const CommandFn&) override { unsupported(); }
    uint32_t expireCommands(int64_t, int64_t) override { unsupported(); }

private:
    bool failCheck_;
};

}  // namespace

DESKSTREAM_PLUGIN(MemoryStore, "test_memory", "0.1.0", "A store for host tests")
