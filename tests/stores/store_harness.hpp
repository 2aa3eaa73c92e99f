// Test harness for the store plugins: loads a store through the SDK entry point
// (ds_test::LoadedPlugin), wraps its vtable in small helpers, and gives each test a fresh,
// isolated database: a temporary file for SQLite, a private schema for PostgreSQL.
#pragma once

#include "ds_test/plugin_fixture.hpp"

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace store_test {

// What a callback saw, copied out (the record pointers die with the callback).
struct Client {
    std::string clientId, name, hostname, instanceId, monitors, capabilities;
    int64_t connectedAt = 0, lastPing = 0;
};
struct Command {
    std::string id, clientId, type, data, status;
    std::optional<std::string> target, result, origin;
    int64_t createdAt = 0, deliveredAt = 0, completedAt = 0, claimedUntil = 0;
    int32_t attempts = 0;
};
struct Instance {
    std::string instanceId, publicUrl;
    int64_t startedAt = 0, lastSeen = 0;
};

// Result of a call: status and the plugin's message.
struct Result {
    ds_status status = DS_OK;
    std::string message;
    bool ok() const { return status == DS_OK; }
};
::testing::AssertionResult isOk(const Result& r);
#define EXPECT_STORE_OK(expr) EXPECT_TRUE(::store_test::isOk(expr))
#define ASSERT_STORE_OK(expr) ASSERT_TRUE(::store_test::isOk(expr))

// One open store instance.
class StoreHandle {
public:
    StoreHandle(const ds_store_vtable& vt, void* instance) : vt_(vt), inst_(instance) {}
    ~StoreHandle();
    StoreHandle(const StoreHandle&) = delete;
    StoreHandle& operator=(const StoreHandle&) = delete;

    const ds_store_vtable& vtable() const { return vt_; }
    void* instance() const { return inst_; }

    Result check();
    Result registerClient(const std::string& id, const std::string& instanceId, int64_t connectedAt,
                          int64_t lastPing, const std::string& name = "desk",
                          const std::string& hostname = "host", const std::string& monitors = "[]",
                          const std::string& caps = "{}");
    Result touch(const std::string& id, const char* instanceId, int64_t now);
    Result unregister(const std::string& id, const char* instanceId);
    Result listClients(std::vector<Client>& out);
    Result reap(int64_t olderThan, const char* instanceId, uint32_t& removed);
    Result unregisterInstance(const std::string& instanceId, uint32_t& removed);
    Result upsertInstance(const std::string& id, const std::string& url, int64_t started,
                          int64_t seen);
    Result listInstances(std::vector<Instance>& out);
    Result enqueue(const std::string& id, const std::string& clientId, int64_t createdAt,
                   int32_t& created, const std::string& type = "input",
                   const std::string& data = "{\"type\":\"input\"}", const char* target = nullptr,
                   const char* origin = "viewer-1");
    Result claim(const std::string& clientId, int64_t now, int64_t lease, uint32_t max,
                 std::vector<Command>& out);
    Result complete(const std::string& id, const char* status, const char* result, int64_t now);
    Result get(const std::string& id, Command& out);
    Result expire(int64_t olderThan, int64_t now, uint32_t& expired);
    // ABI 1.1; DS_ERR_UNSUPPORTED when the vtable's struct_size does not cover purge_commands.
    Result purge(int64_t olderThan, uint32_t& purged);
    Result poll(uint32_t timeoutMs, std::vector<std::string>& clientIds);

private:
    const ds_store_vtable& vt_;
    void* inst_;
};

// A backend under test: how to configure a fresh database and peek at it directly.
class Backend {
public:
    virtual ~Backend() = default;
    virtual std::string pluginName() const = 0;
    virtual bool hasNotifications() const = 0;
    // Prepares a new empty database for one test; throws with a clear reason when impossible.
    virtual void createDatabase(const std::string& testName) = 0;
    virtual void dropDatabase() = 0;
    virtual ds_test::TestConfig config() const = 0;
    // Direct access, bypassing the plugin (for schema checks and tampering).
    virtual std::string schemaSnapshot() = 0;
    virtual long long countRows(const std::string& table) = 0;
    virtual void execRaw(const std::string& sql) = 0;
};

std::unique_ptr<Backend> makeBackend(const std::string& name);

// Loads the plugin of `backend` once per process and opens instances of it.
class Opener {
public:
    explicit Opener(Backend& backend);
    std::unique_ptr<StoreHandle> open();  // ADD_FAILURE + nullptr on failure
    Result tryOpen(std::unique_ptr<StoreHandle>& out, const ds_test::TestConfig& config);
    ds_test::TestHost& host() { return host_; }
    const ds_store_vtable& vtable() const { return plugin_->store(); }

private:
    Backend& backend_;
    std::shared_ptr<ds_test::LoadedPlugin> plugin_;
    ds_test::TestHost host_;
};

// Environment checks shared by the PostgreSQL tests.
std::string requirePgConninfo();  // FAILS the test (throws) when DESKSTREAM_TEST_PG is not set
std::string uniqueName(const std::string& prefix);
// Runs SQL as the test server's superuser; throws with the server's message on failure.
void adminExec(const std::string& sql);

// A login role (password "limitedpw") created for one test and dropped, with everything it owns
// and `schema`, when the test ends: for privilege tests (e.g. no INSERT on a table).
class ScopedPgRole {
public:
    ScopedPgRole(std::string prefix, std::string schema);
    ~ScopedPgRole();
    ScopedPgRole(const ScopedPgRole&) = delete;
    ScopedPgRole& operator=(const ScopedPgRole&) = delete;
    const std::string& name() const { return name_; }
    // requirePgConninfo() logged in as this role.
    std::string conninfo() const;

private:
    std::string name_, schema_;
};

}  // namespace store_test
