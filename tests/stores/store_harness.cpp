#include "store_harness.hpp"

#include <libpq-fe.h>
#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>
#include <stdexcept>
#include <unistd.h>

namespace store_test {

::testing::AssertionResult isOk(const Result& r) {
    if (r.ok()) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "status " << r.status << ": " << r.message;
}

namespace {
constexpr size_t kErr = 1024;
template <class F>
Result call(F&& f) {
    char err[kErr] = {0};
    Result r;
    r.status = f(err, sizeof err);
    r.message = err;
    return r;
}
std::string s(const char* p) { return p ? p : ""; }
std::optional<std::string> o(const char* p) {
    if (!p) return std::nullopt;
    return std::string(p);
}
void onClient(void* u, const ds_client_record* r) {
    static_cast<std::vector<Client>*>(u)->push_back(
        {s(r->client_id), s(r->name), s(r->hostname), s(r->instance_id), s(r->monitors_json),
         s(r->capabilities_json), r->connected_at_ms, r->last_ping_ms});
}
void onCommand(void* u, const ds_command_record* r) {
    Command c;
    c.id = s(r->id);
    c.clientId = s(r->client_id);
    c.type = s(r->command_type);
    c.data = s(r->command_data_json);
    c.status = s(r->status);
    c.target = o(r->target_instance_id);
    c.result = o(r->result_json);
    c.origin = o(r->origin);
    c.createdAt = r->created_at_ms;
    c.deliveredAt = r->delivered_at_ms;
    c.completedAt = r->completed_at_ms;
    c.claimedUntil = r->claimed_until_ms;
    c.attempts = r->attempts;
    static_cast<std::vector<Command>*>(u)->push_back(c);
}
void onInstance(void* u, const ds_instance_record* r) {
    static_cast<std::vector<Instance>*>(u)->push_back(
        {s(r->instance_id), s(r->public_url), r->started_at_ms, r->last_seen_ms});
}
void onNotify(void* u, const char* clientId) {
    static_cast<std::vector<std::string>*>(u)->push_back(s(clientId));
}
}  // namespace

StoreHandle::~StoreHandle() {
    if (inst_) vt_.destroy(inst_);
}

Result StoreHandle::check() {
    return call([&](char* e, size_t n) { return vt_.check(inst_, e, n); });
}

Result StoreHandle::registerClient(const std::string& id, const std::string& instanceId,
                                   int64_t connectedAt, int64_t lastPing, const std::string& name,
                                   const std::string& hostname, const std::string& monitors,
                                   const std::string& caps) {
    ds_client_record r{};
    r.struct_size = sizeof r;
    r.client_id = id.c_str();
    r.name = name.c_str();
    r.hostname = hostname.c_str();
    r.instance_id = instanceId.c_str();
    r.monitors_json = monitors.c_str();
    r.capabilities_json = caps.c_str();
    r.connected_at_ms = connectedAt;
    r.last_ping_ms = lastPing;
    return call([&](char* e, size_t n) { return vt_.register_client(inst_, &r, e, n); });
}

Result StoreHandle::touch(const std::string& id, const char* instanceId, int64_t now) {
    return call([&](char* e, size_t n) {
        return vt_.touch_client(inst_, id.c_str(), instanceId, now, e, n);
    });
}

Result StoreHandle::unregister(const std::string& id, const char* instanceId) {
    return call([&](char* e, size_t n) {
        return vt_.unregister_client(inst_, id.c_str(), instanceId, e, n);
    });
}

Result StoreHandle::listClients(std::vector<Client>& out) {
    out.clear();
    return call([&](char* e, size_t n) { return vt_.list_clients(inst_, &onClient, &out, e, n); });
}

Result StoreHandle::reap(int64_t olderThan, const char* instanceId, uint32_t& removed) {
    removed = 12345;
    return call([&](char* e, size_t n) {
        return vt_.reap_clients(inst_, olderThan, instanceId, &removed, e, n);
    });
}

Result StoreHandle::unregisterInstance(const std::string& instanceId, uint32_t& removed) {
    removed = 12345;
    return call([&](char* e, size_t n) {
        return vt_.unregister_instance_clients(inst_, instanceId.c_str(), &removed, e, n);
    });
}

Result StoreHandle::upsertInstance(const std::string& id, const std::string& url, int64_t started,
                                   int64_t seen) {
    ds_instance_record r{};
    r.struct_size = sizeof r;
    r.instance_id = id.c_str();
    r.public_url = url.c_str();
    r.started_at_ms = started;
    r.last_seen_ms = seen;
    return call([&](char* e, size_t n) { return vt_.upsert_instance(inst_, &r, e, n); });
}

Result StoreHandle::listInstances(std::vector<Instance>& out) {
    out.clear();
    return call(
        [&](char* e, size_t n) { return vt_.list_instances(inst_, &onInstance, &out, e, n); });
}

Result StoreHandle::enqueue(const std::string& id, const std::string& clientId, int64_t createdAt,
                            int32_t& created, const std::string& type, const std::string& data,
                            const char* target, const char* origin) {
    ds_command_record r{};
    r.struct_size = sizeof r;
    r.id = id.c_str();
    r.client_id = clientId.c_str();
    r.command_type = type.c_str();
    r.command_data_json = data.c_str();
    r.target_instance_id = target;
    r.status = "pending";
    r.origin = origin;
    r.created_at_ms = createdAt;
    created = -1;
    return call([&](char* e, size_t n) { return vt_.enqueue_command(inst_, &r, &created, e, n); });
}

Result StoreHandle::claim(const std::string& clientId, int64_t now, int64_t lease, uint32_t max,
                          std::vector<Command>& out) {
    out.clear();
    return call([&](char* e, size_t n) {
        return vt_.claim_commands(inst_, clientId.c_str(), now, lease, max, &onCommand, &out, e, n);
    });
}

Result StoreHandle::complete(const std::string& id, const char* status, const char* result,
                             int64_t now) {
    return call([&](char* e, size_t n) {
        return vt_.complete_command(inst_, id.c_str(), status, result, now, e, n);
    });
}

Result StoreHandle::get(const std::string& id, Command& out) {
    std::vector<Command> v;
    Result r = call([&](char* e, size_t n) {
        return vt_.get_command(inst_, id.c_str(), &onCommand, &v, e, n);
    });
    if (r.ok() && v.size() == 1)
        out = v[0];
    else if (r.ok())
        r = {DS_ERR_INTERNAL, "get_command called back " + std::to_string(v.size()) + " times"};
    return r;
}

Result StoreHandle::expire(int64_t olderThan, int64_t now, uint32_t& expired) {
    expired = 12345;
    return call([&](char* e, size_t n) {
        return vt_.expire_commands(inst_, olderThan, now, &expired, e, n);
    });
}

Result StoreHandle::purge(int64_t olderThan, uint32_t& purged) {
    purged = 12345;
    if (vt_.struct_size < offsetof(ds_store_vtable, purge_commands) + sizeof vt_.purge_commands ||
        !vt_.purge_commands)
        return {DS_ERR_UNSUPPORTED, "no purge_commands"};
    return call(
        [&](char* e, size_t n) { return vt_.purge_commands(inst_, olderThan, &purged, e, n); });
}

Result StoreHandle::poll(uint32_t timeoutMs, std::vector<std::string>& clientIds) {
    if (!vt_.poll_notifications) return {DS_ERR_UNSUPPORTED, "no poll_notifications"};
    return call([&](char* e, size_t n) {
        return vt_.poll_notifications(inst_, timeoutMs, &onNotify, &clientIds, e, n);
    });
}

std::string uniqueName(const std::string& prefix) {
    static std::atomic<int> counter{0};
    auto t = std::chrono::steady_clock::now().time_since_epoch().count();
    return prefix + std::to_string(getpid()) + "_" + std::to_string(t % 100000000) + "_" +
           std::to_string(counter++);
}

void adminExec(const std::string& sql) {
    PGconn* c = PQconnectdb(requirePgConninfo().c_str());
    if (PQstatus(c) != CONNECTION_OK) {
        std::string m = PQerrorMessage(c);
        PQfinish(c);
        throw std::runtime_error("admin connection failed: " + m);
    }
    PGresult* r = PQexec(c, sql.c_str());
    std::string m = PQresultErrorMessage(r);
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    PQclear(r);
    PQfinish(c);
    if (!ok) throw std::runtime_error(sql + ": " + m);
}

ScopedPgRole::ScopedPgRole(std::string prefix, std::string schema)
    : name_(uniqueName(prefix)), schema_(std::move(schema)) {
    adminExec("CREATE ROLE " + name_ + " LOGIN PASSWORD 'limitedpw'");
}

ScopedPgRole::~ScopedPgRole() {
    try {
        adminExec("DROP SCHEMA IF EXISTS " + schema_ + " CASCADE; DROP OWNED BY " + name_ +
                  "; DROP ROLE " + name_);
    } catch (...) {}
}

std::string ScopedPgRole::conninfo() const {
    return requirePgConninfo() + " user=" + name_ + " password=limitedpw";
}

std::string requirePgConninfo() {
    const char* c = std::getenv("DESKSTREAM_TEST_PG");
    if (!c || !*c)
        throw std::runtime_error(
            "DESKSTREAM_TEST_PG is not set: the PostgreSQL store tests need a server. Run them "
            "through scripts/test.sh, or `source scripts/lib/postgres.sh; pg_test_start` first.");
    return c;
}

namespace {

class SqliteBackend : public Backend {
public:
    std::string pluginName() const override { return "sqlite"; }
    bool hasNotifications() const override { return false; }
    void createDatabase(const std::string& testName) override {
        dir_ = std::filesystem::temp_directory_path() / uniqueName("ds-store-" + testName + "-");
        std::filesystem::create_directories(dir_);
        path_ = (dir_ / "state.db").string();
    }
    void dropDatabase() override {
        std::error_code ec;
        if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
    }
    ds_test::TestConfig config() const override {
        return ds_test::TestConfig("store.sqlite", {{"path", path_}, {"busy_timeout_ms", "5000"}});
    }
    std::string schemaSnapshot() override {
        std::string out;
        query(
            "SELECT type || ' ' || name || ' ' || COALESCE(sql, '') FROM sqlite_master ORDER BY "
            "name",
            [&](const std::string& row) { out += row + "\n"; });
        query("SELECT version FROM schema_migrations ORDER BY version",
              [&](const std::string& row) { out += "migration " + row + "\n"; });
        return out;
    }
    long long countRows(const std::string& table) override {
        long long n = -1;
        query("SELECT COUNT(*) FROM " + table,
              [&](const std::string& row) { n = std::stoll(row); });
        return n;
    }
    void execRaw(const std::string& sql) override {
        query(sql, [](const std::string&) {});
    }

private:
    void query(const std::string& sql, const std::function<void(const std::string&)>& fn) {
        sqlite3* db = nullptr;
        if (sqlite3_open_v2(path_.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) {
            std::string m = db ? sqlite3_errmsg(db) : "out of memory";
            sqlite3_close(db);
            throw std::runtime_error("cannot open " + path_ + ": " + m);
        }
        sqlite3_busy_timeout(db, 5000);
        sqlite3_stmt* st = nullptr;
        if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) != SQLITE_OK) {
            std::string m = sqlite3_errmsg(db);
            sqlite3_close(db);
            throw std::runtime_error(sql + ": " + m);
        }
        int rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            const unsigned char* t = sqlite3_column_text(st, 0);
            fn(t ? reinterpret_cast<const char*>(t) : "NULL");
        }
        std::string m = sqlite3_errmsg(db);
        sqlite3_finalize(st);
        sqlite3_close(db);
        if (rc != SQLITE_DONE) throw std::runtime_error(sql + ": " + m);
    }
    std::filesystem::path dir_;
    std::string path_;
};

class PostgresBackend : public Backend {
public:
    std::string pluginName() const override { return "postgres"; }
    bool hasNotifications() const override { return true; }
    void createDatabase(const std::string&) override {
        conninfo_ = requirePgConninfo();
        schema_ = uniqueName("t_");
    }
    void dropDatabase() override {
        if (!schema_.empty()) execRaw("DROP SCHEMA IF EXISTS " + schema_ + " CASCADE");
    }
    ds_test::TestConfig config() const override {
        return ds_test::TestConfig("store.postgres", {{"connection", conninfo_},
                                                      {"schema", schema_},
                                                      {"pool_size", "4"},
                                                      {"statement_timeout_ms", "5000"},
                                                      {"connect_timeout_s", "3"}});
    }
    std::string schemaSnapshot() override {
        std::string out;
        query(
            "SELECT table_name || '.' || column_name || ' ' || data_type || ' ' || "
            "COALESCE(column_default, '') FROM information_schema.columns WHERE table_schema = '" +
                schema_ + "' ORDER BY table_name, ordinal_position",
            [&](const std::string& r) { out += r + "\n"; });
        query("SELECT indexname || ' ' || indexdef FROM pg_indexes WHERE schemaname = '" + schema_ +
                  "' ORDER BY indexname",
              [&](const std::string& r) { out += r + "\n"; });
        query("SELECT version FROM " + schema_ + ".schema_migrations ORDER BY version",
              [&](const std::string& r) { out += "migration " + r + "\n"; });
        return out;
    }
    long long countRows(const std::string& table) override {
        long long n = -1;
        query("SELECT COUNT(*) FROM " + schema_ + "." + table,
              [&](const std::string& r) { n = std::stoll(r); });
        return n;
    }
    void execRaw(const std::string& sql) override {
        query("SET search_path TO " + schema_ + "; " + sql, [](const std::string&) {});
    }

private:
    void query(const std::string& sql, const std::function<void(const std::string&)>& fn) {
        PGconn* c = PQconnectdb(conninfo_.c_str());
        if (PQstatus(c) != CONNECTION_OK) {
            std::string m = PQerrorMessage(c);
            PQfinish(c);
            throw std::runtime_error("cannot connect to the test PostgreSQL: " + m);
        }
        PGresult* r = PQexec(c, sql.c_str());
        ExecStatusType st = PQresultStatus(r);
        if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
            std::string m = PQresultErrorMessage(r);
            PQclear(r);
            PQfinish(c);
            throw std::runtime_error(sql + ": " + m);
        }
        for (int i = 0; i < PQntuples(r); ++i)
            fn(PQgetisnull(r, i, 0) ? "NULL" : PQgetvalue(r, i, 0));
        PQclear(r);
        PQfinish(c);
    }
    std::string conninfo_, schema_;
};

}  // namespace

std::unique_ptr<Backend> makeBackend(const std::string& name) {
    if (name == "sqlite") return std::make_unique<SqliteBackend>();
    if (name == "postgres") return std::make_unique<PostgresBackend>();
    throw std::runtime_error("unknown store backend " + name);
}

Opener::Opener(Backend& backend) : backend_(backend) {
    static std::mutex m;
    static std::map<std::string, std::shared_ptr<ds_test::LoadedPlugin>> loaded;
    std::lock_guard<std::mutex> lock(m);
    auto& p = loaded[backend.pluginName()];
    if (!p)
        p = std::make_shared<ds_test::LoadedPlugin>(
            ds_test::pluginPath("store", backend.pluginName()));
    plugin_ = p;
}

Result Opener::tryOpen(std::unique_ptr<StoreHandle>& out, const ds_test::TestConfig& config) {
    void* inst = nullptr;
    const ds_store_vtable& vt = plugin_->store();
    Result r =
        call([&](char* e, size_t n) { return vt.create(host_.api(), config.get(), &inst, e, n); });
    if (r.ok())
        out = std::make_unique<StoreHandle>(vt, inst);
    else if (inst)
        vt.destroy(inst);
    return r;
}

std::unique_ptr<StoreHandle> Opener::open() {
    std::unique_ptr<StoreHandle> h;
    ds_test::TestConfig cfg = backend_.config();
    Result r = tryOpen(h, cfg);
    if (!r.ok())
        ADD_FAILURE() << "cannot open the " << backend_.pluginName() << " store: status "
                      << r.status << ": " << r.message;
    return h;
}

}  // namespace store_test
