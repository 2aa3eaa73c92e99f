// deskstream store plugin for SQLite: a single-machine store with no set-up.
//
// Why the sqlite3 C library and not Poco::Data::SQLite: the error classification the issue asks
// for (read-only file, locked database, unopenable folder, full disk) needs SQLite's extended
// result codes and the OS errno behind SQLITE_CANTOPEN, and the performance ceiling is measured
// with the same C calls. Statements are prepared once and cached per connection.
//
// Concurrency: one connection guarded by one mutex. SQLite serialises writers anyway, and a
// mutex hands the lock over without the busy-handler sleeps that several connections would
// cause. busy_timeout only matters when ANOTHER process (a second relay on the same file, the
// sqlite3 shell) holds the write lock. Every write is one autocommit statement (or one
// BEGIN IMMEDIATE transaction for migrations), so each is atomic across processes too.
#include "../common/store_common.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <string>
#include <unordered_map>
#include <unistd.h>
#include <vector>

namespace ds = deskstream;
using namespace deskstream::stores;

namespace {

const char* const kCommandColumns =
    "id, desktop_client_id, command_type, command_data, target_instance_id, status, result, "
    "origin, created_at, delivered_at, completed_at, claimed_until, attempts, seq";

class SqliteStore : public ds::Store {
public:
    static constexpr ds_config_key kConfigKeys[] = {
        {"path", DS_CONFIG_STRING, "deskstream.db", 1, 0, nullptr,
         "Database file. A relative path is taken inside [host] state_dir."},
        {"synchronous", DS_CONFIG_STRING, "full", 1, 0, "full|normal",
         "full: an acknowledged write survives a power cut; normal: faster, may lose the last "
         "writes on power loss (never corrupts)."},
        {"busy_timeout_ms", DS_CONFIG_INT, "5000", 0, 600000, nullptr,
         "How long a write waits for another process holding the database lock."},
    };
    static constexpr const char* kLicense = "MIT";
    static constexpr const char* kVendor = "deskstream";

    SqliteStore(const ds::Host& host, const ds::Config& config) : host_(host) {
        path_ = config.getString("path", "deskstream.db");
        if (path_.empty()) throw ds::Error(DS_ERR_CONFIG, "[store.sqlite] path is empty");
        // A relative path lives in the host's state folder (host-provided key, see plugin.h).
        if (std::filesystem::path(path_).is_relative() && path_.rfind("file:", 0) != 0) {
            if (auto stateDir = config.get("host.state_dir"); stateDir && !stateDir->empty())
                path_ = (std::filesystem::path(*stateDir) / path_).string();
        }
        std::string sync = config.getString("synchronous", "full");
        if (sync != "full" && sync != "normal")
            throw ds::Error(DS_ERR_CONFIG, "[store.sqlite] synchronous = '" + sync +
                                               "' is not one of full|normal");
        int busy = static_cast<int>(config.getInt("busy_timeout_ms", 5000, 0, 600000));
        try {
            open(sync, busy);
        } catch (...) {
            close();  // the destructor does not run when the constructor throws
            throw;
        }
    }

    ~SqliteStore() override { close(); }

    void check() override {
        std::lock_guard<std::mutex> lock(mutex_);
        Stmt s(*this, "SELECT 1");
        s.step();
    }

    void registerClient(const ds_client_record& r) override {
        validateClient(r);
        std::lock_guard<std::mutex> lock(mutex_);
        Stmt s(*this,
               "INSERT INTO active_desktop_clients (client_id, name, hostname, instance_id, "
               "monitors, capabilities, connected_at, last_ping) VALUES (?1,?2,?3,?4,?5,?6,?7,?8) "
               "ON CONFLICT (client_id) DO UPDATE SET name = excluded.name, "
               "hostname = excluded.hostname, instance_id = excluded.instance_id, "
               "monitors = excluded.monitors, capabilities = excluded.capabilities, "
               "connected_at = excluded.connected_at, last_ping = excluded.last_ping");
        s.text(1, r.client_id).text(2, str(r.name)).text(3, str(r.hostname));
        s.text(4, str(r.instance_id));
        s.text(5, r.monitors_json && *r.monitors_json ? r.monitors_json : "[]");
        s.text(6, r.capabilities_json && *r.capabilities_json ? r.capabilities_json : "{}");
        s.i64(7, r.connected_at_ms).i64(8, r.last_ping_ms);
        s.run();
    }

    void touchClient(const char* clientId, const char* instanceId, int64_t nowMs) override {
        requireId(clientId, "client_id");
        std::lock_guard<std::mutex> lock(mutex_);
        Stmt s(*this,
               "UPDATE active_desktop_clients SET last_ping = ?2 WHERE client_id = ?1 "
               "AND (?3 IS NULL OR instance_id = ?3)");
        s.text(1, clientId).i64(2, nowMs).textOrNull(3, instanceId);
        if (s.run() == 0)
            throw ds::Error(DS_ERR_NOT_FOUND,
                            "client '" + str(clientId) + "' is not registered" +
                                (instanceId ? " by instance '" + str(instanceId) + "'" : ""));
    }

    void unregisterClient(const char* clientId, const char* instanceId) override {
        requireId(clientId, "client_id");
        std::lock_guard<std::mutex> lock(mutex_);
        Stmt s(*this,
               "DELETE FROM active_desktop_clients WHERE client_id = ?1 "
               "AND (?2 IS NULL OR instance_id = ?2)");
        s.text(1, clientId).textOrNull(2, instanceId);
        s.run();
    }

    void listClients(const ClientFn& fn) override {
        std::vector<ClientRow> rows;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            Stmt s(*this,
                   "SELECT client_id, name, hostname, instance_id, monitors, capabilities, "
                   "connected_at, last_ping FROM active_desktop_clients ORDER BY client_id");
            while (s.step()) {
                ClientRow c;
                c.clientId = s.colText(0);
                c.name = s.colText(1);
                c.hostname = s.colText(2);
                c.instanceId = s.colText(3);
                c.monitors = s.colText(4);
                c.capabilities = s.colText(5);
                c.connectedAt = s.colI64(6);
                c.lastPing = s.colI64(7);
                rows.push_back(std::move(c));
            }
        }
        // Callbacks run without the lock: a callback may call back into the store.
        for (const auto& c : rows) fn(c.record());
    }

    uint32_t reapClients(int64_t olderThanMs, const char* instanceId) override {
        std::lock_guard<std::mutex> lock(mutex_);
        Stmt s(*this,
               "DELETE FROM active_desktop_clients WHERE last_ping < ?1 "
               "AND (?2 IS NULL OR instance_id = ?2)");
        s.i64(1, olderThanMs).textOrNull(2, instanceId);
        return static_cast<uint32_t>(s.run());
    }

    uint32_t unregisterInstanceClients(const char* instanceId) override {
        requireId(instanceId, "instance_id");
        std::lock_guard<std::mutex> lock(mutex_);
        Stmt s(*this, "DELETE FROM active_desktop_clients WHERE instance_id = ?1");
        s.text(1, instanceId);
        return static_cast<uint32_t>(s.run());
    }

    void upsertInstance(const ds_instance_record& r) override {
        requireId(r.instance_id, "instance_id");
        std::lock_guard<std::mutex> lock(mutex_);
        Stmt s(*this,
               "INSERT INTO relay_instances (instance_id, public_url, started_at, last_seen) "
               "VALUES (?1,?2,?3,?4) ON CONFLICT (instance_id) DO UPDATE SET "
               "public_url = excluded.public_url, started_at = excluded.started_at, "
               "last_seen = excluded.last_seen");
        s.text(1, r.instance_id)
            .text(2, str(r.public_url))
            .i64(3, r.started_at_ms)
            .i64(4, r.last_seen_ms);
        s.run();
    }

    void listInstances(const InstanceFn& fn) override {
        std::vector<InstanceRow> rows;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            Stmt s(*this,
                   "SELECT instance_id, public_url, started_at, last_seen FROM relay_instances "
                   "ORDER BY instance_id");
            while (s.step()) {
                InstanceRow i;
                i.instanceId = s.colText(0);
                i.publicUrl = s.colText(1);
                i.startedAt = s.colI64(2);
                i.lastSeen = s.colI64(3);
                rows.push_back(std::move(i));
            }
        }
        for (const auto& i : rows) fn(i.record());
    }

    bool enqueueCommand(const ds_command_record& r) override {
        validateCommand(r);
        std::lock_guard<std::mutex> lock(mutex_);
        // The seq comes from the desktop's counter row in the same transaction (docs/stores.md,
        // "Command order"); BEGIN IMMEDIATE holds the write lock across both statements, also
        // against another process on the same file.
        exec("BEGIN IMMEDIATE", "cannot start the enqueue transaction");
        try {
            {
                Stmt c(*this,
                       "INSERT INTO desktop_command_seqs (desktop_client_id, last_seq) VALUES "
                       "(?1, 1) ON CONFLICT (desktop_client_id) DO UPDATE SET last_seq = "
                       "last_seq + 1");
                c.text(1, r.client_id);
                c.run();
            }
            Stmt s(*this,
                   "INSERT INTO desktop_commands (id, desktop_client_id, command_type, "
                   "command_data, target_instance_id, status, origin, created_at, attempts, seq) "
                   "SELECT ?1,?2,?3,?4,?5,'pending',?6,?7,0,last_seq FROM desktop_command_seqs "
                   "WHERE desktop_client_id = ?2 ON CONFLICT (id) DO NOTHING");
            s.text(1, r.id).text(2, r.client_id).text(3, r.command_type);
            s.text(4, r.command_data_json ? r.command_data_json : "{}");
            s.textOrNull(
                5, r.target_instance_id && *r.target_instance_id ? r.target_instance_id : nullptr);
            s.textOrNull(6, r.origin).i64(7, r.created_at_ms);
            bool created = s.run() == 1;
            exec("COMMIT", "cannot commit the enqueue");
            return created;
        } catch (...) {
            sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
            throw;
        }
    }

    void claimCommands(const char* clientId, int64_t nowMs, int64_t leaseMs, uint32_t maxCount,
                       const CommandFn& fn) override {
        requireId(clientId, "client_id");
        validateLease(leaseMs, maxCount);
        std::vector<CommandRow> rows;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            // One UPDATE ... RETURNING: atomic under SQLite's write lock, also across processes.
            Stmt s(*this,
                   std::string(
                       "UPDATE desktop_commands SET status = 'delivered', "
                       "delivered_at = ?2, claimed_until = ?2 + ?3, attempts = attempts + 1 "
                       "WHERE id IN (SELECT id FROM desktop_commands WHERE desktop_client_id = ?1 "
                       "AND (status = 'pending' OR (status = 'delivered' AND claimed_until < ?2)) "
                       "ORDER BY seq, id LIMIT ?4) RETURNING ") +
                       kCommandColumns);
            s.text(1, clientId).i64(2, nowMs).i64(3, leaseMs).i64(4, maxCount);
            while (s.step()) rows.push_back(readCommand(s));
        }
        sortInDeliveryOrder(rows);
        for (const auto& c : rows) fn(c.record());
    }

    void completeCommand(const char* commandId, const char* status, const char* resultJson,
                         int64_t nowMs) override {
        requireId(commandId, "command id");
        requireFinalStatus(status);
        std::lock_guard<std::mutex> lock(mutex_);
        Stmt s(*this,
               "UPDATE desktop_commands SET status = ?2, result = ?3, completed_at = ?4 "
               "WHERE id = ?1");
        s.text(1, commandId).text(2, status).textOrNull(3, resultJson).i64(4, nowMs);
        if (s.run() == 0)
            throw ds::Error(DS_ERR_NOT_FOUND, "command '" + str(commandId) + "' does not exist");
    }

    void getCommand(const char* commandId, const CommandFn& fn) override {
        requireId(commandId, "command id");
        std::optional<CommandRow> row;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            Stmt s(*this, std::string("SELECT ") + kCommandColumns +
                              " FROM desktop_commands WHERE id = ?1");
            s.text(1, commandId);
            if (s.step()) row = readCommand(s);
        }
        if (!row)
            throw ds::Error(DS_ERR_NOT_FOUND, "command '" + str(commandId) + "' does not exist");
        fn(row->record());
    }

    uint32_t expireCommands(int64_t olderThanMs, int64_t nowMs) override {
        std::lock_guard<std::mutex> lock(mutex_);
        Stmt s(*this,
               "UPDATE desktop_commands SET status = 'expired', completed_at = ?2, "
               "result = '{\"status\":\"expired\",\"error\":\"not completed within the command "
               "TTL\"}' "
               "WHERE status IN ('pending','delivered') AND created_at < ?1");
        s.i64(1, olderThanMs).i64(2, nowMs);
        return static_cast<uint32_t>(s.run());
    }

    // ABI 1.1: finished commands (done, failed, expired) completed before olderThanMs go.
    uint32_t purgeCommands(int64_t olderThanMs) {
        std::lock_guard<std::mutex> lock(mutex_);
        Stmt s(*this,
               "DELETE FROM desktop_commands "
               "WHERE status IN ('done','failed','expired') AND completed_at < ?1");
        s.i64(1, olderThanMs);
        return static_cast<uint32_t>(s.run());
    }

private:
    // A cached prepared statement, reset and unbound when the scope ends. Caller holds mutex_.
    class Stmt {
    public:
        Stmt(SqliteStore& store, const std::string& sql)
            : store_(store), stmt_(store.prepare(sql)) {}
        ~Stmt() {
            sqlite3_reset(stmt_);
            sqlite3_clear_bindings(stmt_);
        }
        Stmt& text(int i, const std::string& v) {
            store_.checkBind(sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()),
                                               SQLITE_TRANSIENT));
            return *this;
        }
        Stmt& textOrNull(int i, const char* v) {
            store_.checkBind(v ? sqlite3_bind_text(stmt_, i, v, -1, SQLITE_TRANSIENT)
                               : sqlite3_bind_null(stmt_, i));
            return *this;
        }
        Stmt& i64(int i, int64_t v) {
            store_.checkBind(sqlite3_bind_int64(stmt_, i, v));
            return *this;
        }
        bool step() {
            int rc = sqlite3_step(stmt_);
            if (rc == SQLITE_ROW) return true;
            if (rc == SQLITE_DONE) return false;
            store_.fail(rc, "statement failed");
        }
        // Runs to completion; returns the number of changed rows.
        int run() {
            while (step()) {}
            return sqlite3_changes(store_.db_);
        }
        std::string colText(int i) {
            auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, i));
            return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(stmt_, i)))
                     : std::string();
        }
        std::optional<std::string> colOptText(int i) {
            if (sqlite3_column_type(stmt_, i) == SQLITE_NULL) return std::nullopt;
            return colText(i);
        }
        int64_t colI64(int i) { return sqlite3_column_int64(stmt_, i); }

    private:
        SqliteStore& store_;
        sqlite3_stmt* stmt_;
    };

    static CommandRow readCommand(Stmt& s) {
        CommandRow c;
        c.id = s.colText(0);
        c.clientId = s.colText(1);
        c.type = s.colText(2);
        c.data = s.colText(3);
        c.target = s.colOptText(4);
        c.status = s.colText(5);
        c.result = s.colOptText(6);
        c.origin = s.colOptText(7);
        c.createdAt = s.colI64(8);
        c.deliveredAt = s.colI64(9);
        c.completedAt = s.colI64(10);
        c.claimedUntil = s.colI64(11);
        c.attempts = static_cast<int32_t>(s.colI64(12));
        c.seq = s.colI64(13);
        return c;
    }

    void close() {
        for (auto& kv : cache_) sqlite3_finalize(kv.second);
        cache_.clear();
        if (db_) sqlite3_close_v2(db_);
        db_ = nullptr;
    }

    sqlite3_stmt* prepare(const std::string& sql) {
        auto it = cache_.find(sql);
        if (it != cache_.end()) return it->second;
        sqlite3_stmt* stmt = nullptr;
        int rc = sqlite3_prepare_v3(db_, sql.c_str(), static_cast<int>(sql.size()) + 1,
                                    SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
        if (rc != SQLITE_OK) fail(rc, "cannot prepare statement");
        cache_.emplace(sql, stmt);
        return stmt;
    }

    void checkBind(int rc) {
        if (rc != SQLITE_OK) fail(rc, "cannot bind a parameter");
    }

    void exec(const char* sql, const char* what) {
        char* msg = nullptr;
        int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &msg);
        if (msg) sqlite3_free(msg);
        if (rc != SQLITE_OK) fail(rc, what);
    }

    // Turns an SQLite result code into a status and a message that says what to check.
    [[noreturn]] void fail(int rc, const std::string& what) const {
        int primary = rc & 0xff;
        int sysErr = db_ ? sqlite3_system_errno(db_) : 0;
        std::string detail = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
        std::string where = "SQLite store '" + path_ + "': " + what + ": " + detail;
        switch (primary) {
            case SQLITE_READONLY:
                throw ds::Error(DS_ERR_PERMISSION,
                                where +
                                    " (the database is read-only: check that "
                                    "the file and its folder are writable by this user "
                                    "and the disk is not mounted read-only)");
            case SQLITE_PERM:
            case SQLITE_AUTH:
                throw ds::Error(DS_ERR_PERMISSION, where + " (permission denied)");
            case SQLITE_CANTOPEN:
                // The errno SQLite keeps is that of its last attempt (often ENOENT from a fallback),
                // so ask the kernel directly whether this user may create or read the file.
                if (sysErr == EACCES || sysErr == EPERM || sysErr == EROFS || !accessible())
                    throw ds::Error(DS_ERR_PERMISSION, where + " (" + std::strerror(sysErr) +
                                                           ": check that the folder is writable by "
                                                           "this user and not mounted read-only)");
                throw ds::Error(
                    DS_ERR_IO, where +
                                   (sysErr ? std::string(" (") + std::strerror(sysErr) + ")" : "") +
                                   " (check that the folder exists and the path is a file)");
            case SQLITE_BUSY:
            case SQLITE_LOCKED:
                throw ds::Error(DS_ERR_STORE_UNAVAILABLE,
                                where +
                                    " (another process held the database lock longer than "
                                    "busy_timeout_ms: retry later or raise busy_timeout_ms)");
            case SQLITE_FULL:
                throw ds::Error(DS_ERR_IO, where + " (the disk is full)");
            case SQLITE_IOERR:
                throw ds::Error(
                    DS_ERR_IO, where +
                                   (sysErr ? std::string(" (") + std::strerror(sysErr) + ")" : "") +
                                   " (check the disk)");
            case SQLITE_CORRUPT:
            case SQLITE_NOTADB:
                throw ds::Error(DS_ERR_IO,
                                where + " (the file is not a valid deskstream database)");
            case SQLITE_NOMEM:
                throw ds::Error(DS_ERR_NO_MEMORY, where);
            case SQLITE_CONSTRAINT:
            case SQLITE_TOOBIG:
            case SQLITE_RANGE:
            case SQLITE_MISMATCH:
                throw ds::Error(DS_ERR_INVALID_ARGUMENT, where);
            default:
                throw ds::Error(DS_ERR_INTERNAL, where);
        }
    }

    // False when the file (or, when absent, its folder) exists but this user may not use it.
    bool accessible() const {
        std::string parent = std::filesystem::path(path_).parent_path().string();
        if (parent.empty()) parent = ".";
        if (::access(path_.c_str(), F_OK) == 0) return ::access(path_.c_str(), R_OK | W_OK) == 0;
        if (::access(parent.c_str(), F_OK) != 0)
            return true;  // missing folder: not a permission problem
        return ::access(parent.c_str(), W_OK | X_OK) == 0;
    }

    void open(const std::string& sync, int busyMs) {
        // SQLite does not create folders; creating the state folder spares an operator a step.
        std::error_code ec;
        std::filesystem::path parent = std::filesystem::path(path_).parent_path();
        if (!parent.empty() && !std::filesystem::exists(parent, ec))
            std::filesystem::create_directories(parent, ec);
        int rc = sqlite3_open_v2(
            path_.c_str(), &db_,
            SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_URI,
            nullptr);
        if (rc != SQLITE_OK) {
            if (ec) {
                sqlite3_close_v2(db_);
                db_ = nullptr;
                throw ds::Error(DS_ERR_PERMISSION, "SQLite store '" + path_ +
                                                       "': cannot create the folder " +
                                                       parent.string() + ": " + ec.message());
            }
            fail(rc, "cannot open the database");
        }
        sqlite3_extended_result_codes(db_, 1);
        sqlite3_busy_timeout(db_, busyMs);
        // SQLite silently falls back to read-only when the file is not writable (or the URI
        // says mode=ro): refuse at open rather than fail every registration later.
        if (sqlite3_db_readonly(db_, "main") == 1)
            throw ds::Error(
                DS_ERR_PERMISSION,
                "SQLite store '" + path_ +
                    "': the database is read-only for this process "
                    "(check that the file and its folder are writable by this user and the "
                    "disk is not mounted read-only)");
        exec("PRAGMA journal_mode = WAL", "cannot switch to WAL mode");
        exec(sync == "full" ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL",
             "cannot set synchronous");
        migrate();
        host_.info("opened " + path_ + " (WAL, synchronous=" + sync + ", schema v" +
                   std::to_string(kSchemaVersion) + ")");
    }

    // Versioned, idempotent, and safe when two processes open the file at once: BEGIN
    // IMMEDIATE takes the write lock before the version is read.
    void migrate() {
        exec("BEGIN IMMEDIATE", "cannot start the migration transaction");
        try {
            exec(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
                "applied_at BIGINT NOT NULL)",
                "cannot create schema_migrations");
            int current = 0;
            {
                Stmt s(*this, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
                if (s.step()) current = static_cast<int>(s.colI64(0));
            }
            if (current > kSchemaVersion)
                throw ds::Error(DS_ERR_SCHEMA,
                                "SQLite store '" + path_ + "': the schema is version " +
                                    std::to_string(current) + ", newer than this build (version " +
                                    std::to_string(kSchemaVersion) +
                                    "): run a deskstream at least as new as the one that wrote it");
            for (int v = current + 1; v <= kSchemaVersion; ++v) {
                exec(kMigrations[v - 1], ("migration " + std::to_string(v) + " failed").c_str());
                Stmt s(*this,
                       "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)");
                s.i64(1, v).i64(2, static_cast<int64_t>(host_.wallUs() / 1000));
                s.run();
                host_.info("applied schema migration " + std::to_string(v));
            }
            exec("COMMIT", "cannot commit the migration");
        } catch (...) {
            sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
            throw;
        }
    }

    ds::Host host_;
    std::string path_;
    sqlite3* db_ = nullptr;
    std::mutex mutex_;
    std::unordered_map<std::string, sqlite3_stmt*> cache_;
};

}  // namespace

DESKSTREAM_PLUGIN(SqliteStore, "sqlite", "1.0.0",
                  "Registrations and commands in a local SQLite file (WAL, durable writes)")
