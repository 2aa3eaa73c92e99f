// The store contract: one parameterised suite that runs unchanged against every store plugin,
// loaded through the SDK entry point. Built twice (store_contract_sqlite, labelled unit, and
// store_contract_postgres, labelled integration); STORE_BACKENDS names the backends.
#include "store_harness.hpp"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <set>
#include <thread>

using namespace store_test;

namespace {

class StoreContract : public ::testing::TestWithParam<std::string> {
protected:
    void SetUp() override {
        backend_ = makeBackend(GetParam());
        const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
        backend_->createDatabase(info->name());
        opener_ = std::make_unique<Opener>(*backend_);
        store_ = opener_->open();
        ASSERT_TRUE(store_);
    }
    void TearDown() override {
        store_.reset();
        if (backend_) backend_->dropDatabase();
    }
    std::unique_ptr<Backend> backend_;
    std::unique_ptr<Opener> opener_;
    std::unique_ptr<StoreHandle> store_;
};

TEST_P(StoreContract, CheckSucceedsOnAnOpenStore) { EXPECT_STORE_OK(store_->check()); }

TEST_P(StoreContract, RegisterRoundTripsEveryField) {
    ASSERT_STORE_OK(store_->registerClient("c1", "relay-a", 1000, 1500, "Office PC", "office-7",
                                           "[{\"index\":0}]", "{\"input\":true}"));
    std::vector<Client> clients;
    ASSERT_STORE_OK(store_->listClients(clients));
    ASSERT_EQ(clients.size(), 1u);
    EXPECT_EQ(clients[0].clientId, "c1");
    EXPECT_EQ(clients[0].name, "Office PC");
    EXPECT_EQ(clients[0].hostname, "office-7");
    EXPECT_EQ(clients[0].instanceId, "relay-a");
    EXPECT_EQ(clients[0].monitors, "[{\"index\":0}]");
    EXPECT_EQ(clients[0].capabilities, "{\"input\":true}");
    EXPECT_EQ(clients[0].connectedAt, 1000);
    EXPECT_EQ(clients[0].lastPing, 1500);
}

TEST_P(StoreContract, UpsertNeverDuplicates) {
    for (int i = 0; i < 3; ++i)
        ASSERT_STORE_OK(store_->registerClient("c1", "relay-" + std::to_string(i), 100 + i, 200 + i,
                                               "name-" + std::to_string(i)));
    ASSERT_STORE_OK(store_->registerClient("c2", "relay-0", 1, 1));
    std::vector<Client> clients;
    ASSERT_STORE_OK(store_->listClients(clients));
    ASSERT_EQ(clients.size(), 2u);
    auto c1 = std::find_if(clients.begin(), clients.end(),
                           [](const Client& c) { return c.clientId == "c1"; });
    ASSERT_NE(c1, clients.end());
    EXPECT_EQ(c1->name, "name-2");  // the last registration wins, whole row
    EXPECT_EQ(c1->instanceId, "relay-2");
    EXPECT_EQ(c1->connectedAt, 102);
    EXPECT_EQ(c1->lastPing, 202);
    EXPECT_EQ(backend_->countRows("active_desktop_clients"), 2);
}

TEST_P(StoreContract, TouchOnlyByTheHoldingInstance) {
    ASSERT_STORE_OK(store_->registerClient("c1", "relay-a", 100, 100));
    EXPECT_EQ(store_->touch("c1", "relay-b", 500).status, DS_ERR_NOT_FOUND);
    EXPECT_EQ(store_->touch("nobody", "relay-a", 500).status, DS_ERR_NOT_FOUND);
    std::vector<Client> clients;
    ASSERT_STORE_OK(store_->listClients(clients));
    ASSERT_EQ(clients.size(), 1u);
    EXPECT_EQ(clients[0].lastPing, 100);
    EXPECT_STORE_OK(store_->touch("c1", "relay-a", 600));
    ASSERT_STORE_OK(store_->listClients(clients));
    EXPECT_EQ(clients[0].lastPing, 600);
    EXPECT_STORE_OK(store_->touch("c1", nullptr, 700));  // NULL: whoever holds it
    ASSERT_STORE_OK(store_->listClients(clients));
    EXPECT_EQ(clients[0].lastPing, 700);
}

TEST_P(StoreContract, UnregisterOnlyByTheHoldingInstance) {
    ASSERT_STORE_OK(store_->registerClient("c1", "relay-a", 100, 100));
    ASSERT_STORE_OK(store_->registerClient("c2", "relay-a", 100, 100));
    // Another instance's stale disconnect must not remove a re-registration elsewhere.
    EXPECT_STORE_OK(store_->unregister("c1", "relay-b"));
    EXPECT_EQ(backend_->countRows("active_desktop_clients"), 2);
    EXPECT_STORE_OK(store_->unregister("c1", "relay-a"));
    EXPECT_STORE_OK(store_->unregister("c2", nullptr));
    EXPECT_EQ(backend_->countRows("active_desktop_clients"), 0);
    EXPECT_STORE_OK(store_->unregister("c1", "relay-a"));  // absent: still OK
}

TEST_P(StoreContract, EightThreadsRegisteringAndTouchingLoseNoUpdate) {
    constexpr int kThreads = 8, kClients = 12, kTouches = 4;
    std::vector<std::thread> threads;
    std::atomic<int> failures{0};
    std::mutex m;
    std::string firstError;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            std::string inst = "relay-" + std::to_string(t);
            for (int c = 0; c < kClients; ++c) {
                std::string id = "t" + std::to_string(t) + "-c" + std::to_string(c);
                std::vector<Result> rs;
                rs.push_back(store_->registerClient(id, inst, 1, 1));
                for (int k = 1; k <= kTouches; ++k)
                    rs.push_back(store_->touch(id, inst.c_str(), 1000 * k + c));
                for (const auto& r : rs)
                    if (!r.ok()) {
                        std::lock_guard<std::mutex> l(m);
                        if (failures++ == 0) firstError = r.message;
                    }
            }
        });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(failures.load(), 0) << firstError;
    std::vector<Client> clients;
    ASSERT_STORE_OK(store_->listClients(clients));
    ASSERT_EQ(clients.size(), static_cast<size_t>(kThreads * kClients));
    for (const auto& c : clients) {
        int idx = std::stoi(c.clientId.substr(c.clientId.find("-c") + 2));
        EXPECT_EQ(c.lastPing, 1000 * kTouches + idx) << c.clientId;
    }
}

TEST_P(StoreContract, ReapRemovesOnlyStaleRows) {
    ASSERT_STORE_OK(store_->registerClient("a-old", "relay-a", 0, 100));
    ASSERT_STORE_OK(store_->registerClient("a-new", "relay-a", 0, 900));
    ASSERT_STORE_OK(store_->registerClient("b-old", "relay-b", 0, 100));
    ASSERT_STORE_OK(store_->registerClient("b-edge", "relay-b", 0, 500));  // not < 500: stays
    uint32_t removed = 0;
    ASSERT_STORE_OK(store_->reap(500, "relay-a", removed));
    EXPECT_EQ(removed, 1u);
    ASSERT_STORE_OK(store_->reap(500, nullptr, removed));
    EXPECT_EQ(removed, 1u);
    std::vector<Client> clients;
    ASSERT_STORE_OK(store_->listClients(clients));
    std::set<std::string> ids;
    for (const auto& c : clients) ids.insert(c.clientId);
    EXPECT_EQ(ids, (std::set<std::string>{"a-new", "b-edge"}));
    ASSERT_STORE_OK(store_->reap(500, nullptr, removed));
    EXPECT_EQ(removed, 0u);
}

TEST_P(StoreContract, UnregisterInstanceClientsRemovesThatInstanceOnly) {
    ASSERT_STORE_OK(store_->registerClient("a1", "relay-a", 0, 1));
    ASSERT_STORE_OK(store_->registerClient("a2", "relay-a", 0, 1));
    ASSERT_STORE_OK(store_->registerClient("b1", "relay-b", 0, 1));
    uint32_t removed = 0;
    ASSERT_STORE_OK(store_->unregisterInstance("relay-a", removed));
    EXPECT_EQ(removed, 2u);
    EXPECT_EQ(backend_->countRows("active_desktop_clients"), 1);
}

TEST_P(StoreContract, InstancesUpsertAndList) {
    ASSERT_STORE_OK(store_->upsertInstance("relay-a", "http://127.0.0.1:1", 10, 20));
    ASSERT_STORE_OK(store_->upsertInstance("relay-b", "http://127.0.0.1:2", 11, 21));
    ASSERT_STORE_OK(store_->upsertInstance("relay-a", "http://127.0.0.1:3", 10, 99));
    std::vector<Instance> v;
    ASSERT_STORE_OK(store_->listInstances(v));
    ASSERT_EQ(v.size(), 2u);
    auto a = std::find_if(v.begin(), v.end(),
                          [](const Instance& i) { return i.instanceId == "relay-a"; });
    ASSERT_NE(a, v.end());
    EXPECT_EQ(a->publicUrl, "http://127.0.0.1:3");
    EXPECT_EQ(a->startedAt, 10);
    EXPECT_EQ(a->lastSeen, 99);
}

TEST_P(StoreContract, EnqueueIsIdempotentAndStoresPending) {
    int32_t created = -1;
    ASSERT_STORE_OK(
        store_->enqueue("cmd-1", "c1", 1000, created, "input", "{\"k\":1}", "relay-a", "viewer-9"));
    EXPECT_EQ(created, 1);
    ASSERT_STORE_OK(store_->enqueue("cmd-1", "c1", 2000, created, "other", "{}"));
    EXPECT_EQ(created, 0);
    Command c;
    ASSERT_STORE_OK(store_->get("cmd-1", c));
    EXPECT_EQ(c.clientId, "c1");
    EXPECT_EQ(c.type, "input");
    EXPECT_EQ(c.data, "{\"k\":1}");
    EXPECT_EQ(c.status, "pending");
    EXPECT_EQ(c.target, std::optional<std::string>("relay-a"));
    EXPECT_EQ(c.origin, std::optional<std::string>("viewer-9"));
    EXPECT_EQ(c.result, std::nullopt);
    EXPECT_EQ(c.createdAt, 1000);
    EXPECT_EQ(c.deliveredAt, 0);
    EXPECT_EQ(c.completedAt, 0);
    EXPECT_EQ(c.claimedUntil, 0);
    EXPECT_EQ(c.attempts, 0);
    EXPECT_EQ(backend_->countRows("desktop_commands"), 1);
}

// Claims follow the desktop's seq, i.e. the order the enqueues committed (docs/stores.md,
// "Command order"), not created_at: the caller's clock is not the store's order.
TEST_P(StoreContract, ClaimInEnqueueOrderWithLease) {
    int32_t created = 0;
    ASSERT_STORE_OK(store_->enqueue("k3", "c1", 300, created));
    ASSERT_STORE_OK(store_->enqueue("k1", "c1", 100, created));
    ASSERT_STORE_OK(store_->enqueue("k2", "c1", 200, created));
    ASSERT_STORE_OK(store_->enqueue("other", "c2", 50, created));
    ASSERT_STORE_OK(store_->enqueue("k3", "c1", 300, created));  // a retry keeps its place
    EXPECT_EQ(created, 0);
    std::vector<Command> got;
    ASSERT_STORE_OK(store_->claim("c1", 10000, 5000, 2, got));
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[0].id, "k3");
    EXPECT_EQ(got[1].id, "k1");
    for (const auto& c : got) {
        EXPECT_EQ(c.status, "delivered");
        EXPECT_EQ(c.deliveredAt, 10000);
        EXPECT_EQ(c.claimedUntil, 15000);
        EXPECT_EQ(c.attempts, 1);
    }
    ASSERT_STORE_OK(store_->claim("c1", 10001, 5000, 10, got));
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].id, "k2");
    ASSERT_STORE_OK(store_->claim("c1", 15000, 5000, 10, got));  // lease not yet expired
    EXPECT_TRUE(got.empty());
    ASSERT_STORE_OK(store_->complete("k3", "done", "{\"ok\":true}", 15500));
    ASSERT_STORE_OK(store_->claim("c1", 15001, 5000, 10, got));  // k1's lease expired
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].id, "k1");
    EXPECT_EQ(got[0].attempts, 2);
    EXPECT_EQ(got[0].claimedUntil, 20001);
    Command k3;
    ASSERT_STORE_OK(store_->get("k3", k3));
    EXPECT_EQ(k3.status, "done");
    EXPECT_EQ(k3.result, std::optional<std::string>("{\"ok\":true}"));
    EXPECT_EQ(k3.completedAt, 15500);
    ASSERT_STORE_OK(store_->claim("c1", 99999, 5000, 10, got));  // done is never claimed again
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[0].id, "k1");
    EXPECT_EQ(got[1].id, "k2");
}

// Two store instances (two relays) enqueue for one desktop at once: every command gets its own
// seq, and a claim hands them out in exactly the order of those numbers.
TEST_P(StoreContract, ConcurrentEnqueuesGetDistinctSeqsAndClaimInThatOrder) {
    constexpr int kEach = 60;
    auto second = opener_->open();
    ASSERT_TRUE(second);
    std::string errors[2];
    auto run = [&](StoreHandle& s, int who) {
        for (int i = 0; i < kEach; ++i) {
            int32_t created = 0;
            Result r = s.enqueue("w" + std::to_string(who) + "-" + std::to_string(i), "c1",
                                 1000 - i, created);
            if (!r.ok()) errors[who] = r.message;
        }
    };
    std::thread a(run, std::ref(*store_), 0), b(run, std::ref(*second), 1);
    a.join();
    b.join();
    EXPECT_EQ(errors[0], "");
    EXPECT_EQ(errors[1], "");
    std::vector<Command> got;
    ASSERT_STORE_OK(store_->claim("c1", 5000, 60000, 2 * kEach, got));
    ASSERT_EQ(got.size(), static_cast<size_t>(2 * kEach));
    // Each writer's own commands come out in the order it enqueued them.
    int last[2] = {-1, -1};
    for (const auto& c : got) {
        int who = c.id[1] - '0', i = std::stoi(c.id.substr(3));
        EXPECT_GT(i, last[who]) << c.id << " handed out after w" << who << "-" << last[who];
        last[who] = i;
    }
    EXPECT_EQ(backend_->countRows("desktop_commands WHERE seq IS NULL"), 0);
}

// A schema-1 database (no seq) is numbered by migration 2 in the order claims used before:
// created_at, then id.
TEST_P(StoreContract, MigrationTwoNumbersExistingCommandsInTheirOldOrder) {
    int32_t created = 0;
    ASSERT_STORE_OK(store_->enqueue("b", "c1", 200, created));
    ASSERT_STORE_OK(store_->enqueue("c", "c1", 100, created));
    ASSERT_STORE_OK(store_->enqueue("a", "c1", 200, created));
    store_.reset();
    backend_->execRaw("DROP INDEX desktop_commands_order");
    backend_->execRaw("ALTER TABLE desktop_commands DROP COLUMN seq");
    backend_->execRaw("DROP TABLE desktop_command_seqs");
    backend_->execRaw("DELETE FROM schema_migrations WHERE version = 2");
    store_ = opener_->open();
    ASSERT_TRUE(store_);
    EXPECT_EQ(backend_->countRows("schema_migrations"), 2);
    ASSERT_STORE_OK(store_->enqueue("d", "c1", 50, created));  // after the numbered ones
    std::vector<Command> got;
    ASSERT_STORE_OK(store_->claim("c1", 1000, 5000, 10, got));
    ASSERT_EQ(got.size(), 4u);
    EXPECT_EQ(got[0].id, "c");
    EXPECT_EQ(got[1].id, "a");
    EXPECT_EQ(got[2].id, "b");
    EXPECT_EQ(got[3].id, "d");
}

TEST_P(StoreContract, TwoClaimersNeverGetTheSameCommand) {
    constexpr int kCommands = 120;
    int32_t created = 0;
    for (int i = 0; i < kCommands; ++i)
        ASSERT_STORE_OK(store_->enqueue("cmd-" + std::to_string(i), "c1", i, created));
    // Two instances of the store on the same database, like two relays.
    auto second = opener_->open();
    ASSERT_TRUE(second);
    std::vector<std::string> got[2];
    std::string errors[2];
    auto run = [&](StoreHandle& s, int who) {
        for (;;) {
            std::vector<Command> batch;
            Result r = s.claim("c1", 1000000, 60000, 3, batch);
            if (!r.ok()) {
                errors[who] = r.message;
                return;
            }
            if (batch.empty()) return;
            for (const auto& c : batch) got[who].push_back(c.id);
        }
    };
    std::thread a(run, std::ref(*store_), 0), b(run, std::ref(*second), 1);
    a.join();
    b.join();
    EXPECT_EQ(errors[0], "");
    EXPECT_EQ(errors[1], "");
    std::set<std::string> all(got[0].begin(), got[0].end());
    size_t total = got[0].size() + got[1].size();
    for (const auto& id : got[1]) EXPECT_TRUE(all.insert(id).second) << id << " claimed twice";
    EXPECT_EQ(total, static_cast<size_t>(kCommands));
    EXPECT_EQ(all.size(), static_cast<size_t>(kCommands));
}

TEST_P(StoreContract, CommandSurvivesCloseAndReopen) {
    int32_t created = 0;
    ASSERT_STORE_OK(store_->enqueue("durable", "c1", 42, created, "input", "{\"x\":1}"));
    ASSERT_STORE_OK(store_->registerClient("c1", "relay-a", 1, 2));
    store_.reset();
    store_ = opener_->open();
    ASSERT_TRUE(store_);
    std::vector<Command> got;
    ASSERT_STORE_OK(store_->claim("c1", 100, 1000, 10, got));
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].id, "durable");
    EXPECT_EQ(got[0].data, "{\"x\":1}");
    std::vector<Client> clients;
    ASSERT_STORE_OK(store_->listClients(clients));
    EXPECT_EQ(clients.size(), 1u);
}

TEST_P(StoreContract, MigrationsTwiceInARowChangeNothing) {
    int32_t created = 0;
    ASSERT_STORE_OK(store_->enqueue("keep", "c1", 1, created));
    std::string before = backend_->schemaSnapshot();
    ASSERT_NE(before.find("migration 2"), std::string::npos) << before;
    for (int i = 0; i < 2; ++i) {
        store_.reset();
        store_ = opener_->open();
        ASSERT_TRUE(store_);
        EXPECT_EQ(backend_->schemaSnapshot(), before);
    }
    EXPECT_EQ(backend_->countRows("desktop_commands"), 1);
    EXPECT_EQ(backend_->countRows("schema_migrations"), 2);  // kSchemaVersion
}

TEST_P(StoreContract, SchemaNewerThanThisBuildIsRefused) {
    store_.reset();
    backend_->execRaw("INSERT INTO schema_migrations (version, applied_at) VALUES (999, 0)");
    std::unique_ptr<StoreHandle> h;
    ds_test::TestConfig cfg = backend_->config();
    Result r = opener_->tryOpen(h, cfg);
    EXPECT_EQ(r.status, DS_ERR_SCHEMA) << r.message;
    EXPECT_NE(r.message.find("newer than this build"), std::string::npos) << r.message;
    EXPECT_FALSE(h);
}

TEST_P(StoreContract, CompleteAndGetReportUnknownIds) {
    EXPECT_EQ(store_->complete("missing", "done", nullptr, 1).status, DS_ERR_NOT_FOUND);
    Command c;
    EXPECT_EQ(store_->get("missing", c).status, DS_ERR_NOT_FOUND);
    int32_t created = 0;
    ASSERT_STORE_OK(store_->enqueue("x", "c1", 1, created));
    Result bad = store_->complete("x", "pending", nullptr, 1);
    EXPECT_EQ(bad.status, DS_ERR_INVALID_ARGUMENT);
    EXPECT_NE(bad.message.find("done or failed"), std::string::npos) << bad.message;
    EXPECT_STORE_OK(store_->complete("x", "failed", "{\"error\":\"no\"}", 5));
    ASSERT_STORE_OK(store_->get("x", c));
    EXPECT_EQ(c.status, "failed");
}

TEST_P(StoreContract, ExpireMarksOnlyOldOpenCommands) {
    int32_t created = 0;
    ASSERT_STORE_OK(store_->enqueue("old-pending", "c1", 100, created));
    ASSERT_STORE_OK(store_->enqueue("old-delivered", "c2", 110, created));
    ASSERT_STORE_OK(store_->enqueue("old-done", "c3", 120, created));
    ASSERT_STORE_OK(store_->enqueue("new", "c1", 900, created));
    std::vector<Command> got;
    ASSERT_STORE_OK(store_->claim("c2", 150, 10, 10, got));
    ASSERT_STORE_OK(store_->complete("old-done", "done", nullptr, 160));
    uint32_t expired = 0;
    ASSERT_STORE_OK(store_->expire(500, 1000, expired));
    EXPECT_EQ(expired, 2u);
    Command c;
    ASSERT_STORE_OK(store_->get("old-pending", c));
    EXPECT_EQ(c.status, "expired");
    // The reason is stored with it (issue 18 point 12).
    EXPECT_EQ(c.result.value_or(""),
              R"({"status":"expired","error":"not completed within the command TTL"})");
    EXPECT_EQ(c.completedAt, 1000);
    ASSERT_STORE_OK(store_->get("old-delivered", c));
    EXPECT_EQ(c.status, "expired");
    EXPECT_TRUE(c.result.has_value());
    ASSERT_STORE_OK(store_->get("old-done", c));
    EXPECT_EQ(c.status, "done");
    EXPECT_FALSE(c.result.has_value() && c.result->find("expired") != std::string::npos);
    ASSERT_STORE_OK(store_->get("new", c));
    EXPECT_EQ(c.status, "pending");
    ASSERT_STORE_OK(store_->claim("c1", 2000, 10, 10, got));  // expired is never claimed
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].id, "new");
}

// ABI 1.1: finished commands older than the retention are deleted, open ones never are.
TEST_P(StoreContract, PurgeDeletesOnlyOldFinishedCommands) {
    int32_t created = 0;
    ASSERT_STORE_OK(store_->enqueue("done-old", "c1", 100, created));
    ASSERT_STORE_OK(store_->enqueue("failed-old", "c1", 110, created));
    ASSERT_STORE_OK(store_->enqueue("expired-old", "c2", 120, created));
    ASSERT_STORE_OK(store_->enqueue("done-new", "c1", 130, created));
    ASSERT_STORE_OK(store_->enqueue("pending-old", "c3", 140, created));
    ASSERT_STORE_OK(store_->enqueue("delivered-old", "c4", 150, created));
    std::vector<Command> got;
    ASSERT_STORE_OK(store_->claim("c4", 160, 10, 10, got));
    ASSERT_STORE_OK(store_->complete("done-old", "done", "{}", 200));
    ASSERT_STORE_OK(store_->complete("failed-old", "failed", "{\"error\":\"x\"}", 210));
    uint32_t n = 0;
    ASSERT_STORE_OK(store_->expire(125, 220, n));  // only expired-old is open and older than 125
    ASSERT_EQ(n, 1u);
    ASSERT_STORE_OK(store_->complete("done-new", "done", "{}", 900));
    uint32_t purged = 0;
    ASSERT_STORE_OK(store_->purge(500, purged));
    EXPECT_EQ(purged, 3u);
    Command c;
    for (const char* gone : {"done-old", "failed-old", "expired-old"}) {
        Result r = store_->get(gone, c);
        EXPECT_EQ(r.status, DS_ERR_NOT_FOUND) << gone;
    }
    for (const char* kept : {"done-new", "pending-old", "delivered-old"})
        EXPECT_STORE_OK(store_->get(kept, c)) << kept;
    ASSERT_STORE_OK(store_->purge(500, purged));  // nothing left to purge
    EXPECT_EQ(purged, 0u);
    ASSERT_STORE_OK(store_->purge(1000, purged));  // open commands are never purged
    EXPECT_EQ(purged, 1u);
    EXPECT_STORE_OK(store_->get("pending-old", c));
    EXPECT_STORE_OK(store_->get("delivered-old", c));
}

TEST_P(StoreContract, BadArgumentsGetClearErrorsNotCrashes) {
    const ds_store_vtable& vt = store_->vtable();
    char err[256] = {0};
    EXPECT_EQ(vt.register_client(store_->instance(), nullptr, err, sizeof err),
              DS_ERR_INVALID_ARGUMENT);
    ds_client_record r{};
    r.struct_size = sizeof r;
    EXPECT_EQ(vt.register_client(store_->instance(), &r, err, sizeof err), DS_ERR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(err).find("client_id"), std::string::npos) << err;
    EXPECT_EQ(vt.touch_client(store_->instance(), nullptr, "x", 1, err, sizeof err),
              DS_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(
        vt.claim_commands(store_->instance(), "c1", 1, 0, 5, nullptr, nullptr, err, sizeof err),
        DS_ERR_INVALID_ARGUMENT);
    std::vector<Command> got;
    EXPECT_EQ(store_->claim("c1", 1, 0, 5, got).status, DS_ERR_INVALID_ARGUMENT);
    int32_t created = 0;
    EXPECT_EQ(store_->enqueue("", "c1", 1, created).status, DS_ERR_INVALID_ARGUMENT);
    // Quotes and other SQL metacharacters are data, never SQL.
    ASSERT_STORE_OK(store_->registerClient("o'brien\"; DROP TABLE x;--", "relay-a", 1, 1, "n'a"));
    std::vector<Client> clients;
    ASSERT_STORE_OK(store_->listClients(clients));
    ASSERT_EQ(clients.size(), 1u);
    EXPECT_EQ(clients[0].clientId, "o'brien\"; DROP TABLE x;--");
}

TEST_P(StoreContract, NotificationsWakeOtherInstancesWhenSupported) {
    if (!backend_->hasNotifications()) {
        EXPECT_EQ(store_->vtable().poll_notifications, nullptr)
            << "a store without cross-instance wake-ups leaves poll_notifications NULL";
        return;
    }
    ASSERT_NE(store_->vtable().poll_notifications, nullptr);
    std::vector<std::string> seen;
    Result first = store_->poll(10, seen);  // starts listening
    EXPECT_TRUE(first.status == DS_TIMEOUT || first.ok()) << first.message;
    auto other = opener_->open();
    ASSERT_TRUE(other);
    int32_t created = 0;
    ASSERT_STORE_OK(other->enqueue("wake-1", "desk-42", 1, created));
    seen.clear();
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (std::find(seen.begin(), seen.end(), "desk-42") == seen.end() &&
           std::chrono::steady_clock::now() < deadline) {
        Result r = store_->poll(500, seen);
        ASSERT_TRUE(r.ok() || r.status == DS_TIMEOUT) << r.message;
    }
    EXPECT_NE(std::find(seen.begin(), seen.end(), "desk-42"), seen.end());
    // An idempotent retry stores nothing and wakes nobody.
    ASSERT_STORE_OK(other->enqueue("wake-1", "desk-42", 1, created));
    EXPECT_EQ(created, 0);
    seen.clear();
    Result quiet = store_->poll(300, seen);
    EXPECT_EQ(quiet.status, DS_TIMEOUT) << quiet.message;
    EXPECT_TRUE(seen.empty());
}

}  // namespace

INSTANTIATE_TEST_SUITE_P(Stores, StoreContract, ::testing::Values(STORE_BACKENDS),
                         [](const ::testing::TestParamInfo<std::string>& i) { return i.param; });
