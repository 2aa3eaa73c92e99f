// deskstream store plugin for PostgreSQL: one database shared by several relay instances.
//
// Why libpq and not Poco::Data::PostgreSQL for the statements: the errors must say what to
// check (server unreachable, authentication, missing privilege, statement timeout), which needs
// the SQLSTATE of each failure (PQresultErrorField) that Poco's connector does not expose; no
// call may hang when the server is gone, which needs a client-side deadline on every statement
// (asynchronous send + poll); and Poco 1.11's SessionPool and isConnected() are known to be
// unreliable (docs/poco-pitfalls.md). LISTEN/NOTIFY needs raw libpq anyway.
//
// Wake-ups: enqueue_command sends NOTIFY on channel 'deskstream:<schema>' with the desktop's
// client_id as payload; poll_notifications LISTENs on a dedicated connection.
//
// Structure: a small pool of connections of our own (opened lazily, outside the pool lock, and
// dropped on any connection-level error so the next call reconnects: the relay never has to
// reopen the store after the server comes back); one dedicated connection for LISTEN.
#include "../common/store_common.hpp"

#include <libpq-fe.h>

#include <poll.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <regex>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace ds = deskstream;
using namespace deskstream::stores;
using Clock = std::chrono::steady_clock;

namespace {

const char* const kCommandColumns =
    "id, desktop_client_id, command_type, command_data, target_instance_id, status, result, "
    "origin, created_at, delivered_at, completed_at, claimed_until, attempts, seq";

// Hides passwords in anything that might echo a connection string.
std::string redact(std::string s) {
    static const std::regex kv(R"((password\s*=\s*)('([^'\\]|\\.)*'|\S+))", std::regex::icase);
    static const std::regex uri(R"((://[^:/@\s]*:)[^@\s]*@)");
    s = std::regex_replace(s, kv, "$1***");
    return std::regex_replace(s, uri, "$1***@");
}

std::string trimmed(const char* s) {
    std::string r = s ? s : "";
    while (!r.empty() && (r.back() == '\n' || r.back() == ' ')) r.pop_back();
    return r;
}

// Thrown inside a connection's use when the connection itself is broken: the pool drops it and
// the call may be retried once on a fresh connection.
struct ConnectionLost : ds::Error {
    using ds::Error::Error;
};

struct PgResult {
    PGresult* r = nullptr;
    explicit PgResult(PGresult* p = nullptr) : r(p) {}
    ~PgResult() {
        if (r) PQclear(r);
    }
    PgResult(PgResult&& o) noexcept : r(o.r) { o.r = nullptr; }
    PgResult& operator=(PgResult&& o) noexcept {
        std::swap(r, o.r);
        return *this;
    }
    int rows() const { return PQntuples(r); }
    std::string text(int row, int col) const {
        return std::string(PQgetvalue(r, row, col), static_cast<size_t>(PQgetlength(r, row, col)));
    }
    std::optional<std::string> optText(int row, int col) const {
        if (PQgetisnull(r, row, col)) return std::nullopt;
        return text(row, col);
    }
    int64_t i64(int row, int col) const {
        return PQgetisnull(r, row, col) ? 0 : std::strtoll(PQgetvalue(r, row, col), nullptr, 10);
    }
    uint32_t affected() const {
        return static_cast<uint32_t>(std::strtoul(PQcmdTuples(r), nullptr, 10));
    }
};

// Text parameters of one statement (NULL pointers are SQL NULL).
class Params {
public:
    Params& add(const std::string& v) {
        store_.push_back(std::make_unique<std::string>(v));
        ptrs_.push_back(store_.back()->c_str());
        return *this;
    }
    Params& add(const char* v) {
        if (!v) {
            ptrs_.push_back(nullptr);
            return *this;
        }
        return add(std::string(v));
    }
    Params& add(int64_t v) { return add(std::to_string(v)); }
    int count() const { return static_cast<int>(ptrs_.size()); }
    const char* const* values() const { return ptrs_.data(); }

private:
    std::vector<std::unique_ptr<std::string>> store_;
    std::vector<const char*> ptrs_;
};

class PostgresStore : public ds::Store {
public:
    static constexpr ds_config_key kConfigKeys[] = {
        {"connection", DS_CONFIG_STRING,
         "host=127.0.0.1 port=5432 dbname=deskstream user=deskstream", 1, 0, nullptr,
         "libpq connection string (key=value pairs or a postgresql:// URI)."},
        {"schema", DS_CONFIG_STRING, "public", 1, 0, nullptr,
         "Schema holding the deskstream tables ([a-z_][a-z0-9_]*); created when missing."},
        {"pool_size", DS_CONFIG_INT, "8", 1, 64, nullptr,
         "Connections used for statements (plus one for LISTEN)."},
        {"connect_timeout_s", DS_CONFIG_INT, "5", 1, 300, nullptr,
         "Longest wait for a new connection (libpq connect_timeout)."},
        {"statement_timeout_ms", DS_CONFIG_INT, "5000", 100, 600000, nullptr,
         "Longest a statement may run (server statement_timeout); the client gives up 2 s later "
         "and waits no longer than this for a free pooled connection."},
    };
    static constexpr const char* kLicense = "MIT";
    static constexpr const char* kVendor = "deskstream";

    PostgresStore(const ds::Host& host, const ds::Config& config) : host_(host) {
        conninfo_ = config.getString("connection", kConfigKeys[0].default_value);
        schema_ = config.getString("schema", "public");
        poolSize_ = static_cast<int>(config.getInt("pool_size", 8, 1, 64));
        connectTimeoutS_ = static_cast<int>(config.getInt("connect_timeout_s", 5, 1, 300));
        statementTimeoutMs_ =
            static_cast<int>(config.getInt("statement_timeout_ms", 5000, 100, 600000));
        if (!std::regex_match(schema_, std::regex("[a-z_][a-z0-9_]{0,62}")))
            throw ds::Error(DS_ERR_CONFIG, "[store.postgres] schema = '" + schema_ +
                                               "' is not a plain lower-case identifier");
        channel_ = "deskstream:" + schema_;
        connectTimeoutText_ = "connect_timeout_s = " + std::to_string(connectTimeoutS_);
        parseConninfo();
        try {
            migrate();
        } catch (...) {
            closeAll();
            throw;
        }
        host_.info("connected to " + target_ + ", schema " + schema_ + " at v" +
                   std::to_string(kSchemaVersion) + ", pool " + std::to_string(poolSize_));
    }

    ~PostgresStore() override { closeAll(); }

    void check() override {
        run("check", [&](PGconn* c) { exec(c, "SELECT 1", Params()); });
    }

    void registerClient(const ds_client_record& r) override {
        validateClient(r);
        Params p;
        p.add(r.client_id).add(str(r.name)).add(str(r.hostname)).add(str(r.instance_id));
        p.add(r.monitors_json && *r.monitors_json ? r.monitors_json : "[]");
        p.add(r.capabilities_json && *r.capabilities_json ? r.capabilities_json : "{}");
        p.add(r.connected_at_ms).add(r.last_ping_ms);
        run("register_client", [&](PGconn* c) {
            exec(
                c,
                "INSERT INTO active_desktop_clients (client_id, name, hostname, instance_id, "
                "monitors, capabilities, connected_at, last_ping) VALUES ($1,$2,$3,$4,$5,$6,$7,$8) "
                "ON CONFLICT (client_id) DO UPDATE SET name = EXCLUDED.name, "
                "hostname = EXCLUDED.hostname, instance_id = EXCLUDED.instance_id, "
                "monitors = EXCLUDED.monitors, capabilities = EXCLUDED.capabilities, "
                "connected_at = EXCLUDED.connected_at, last_ping = EXCLUDED.last_ping",
                p);
        });
    }

    void touchClient(const char* clientId, const char* instanceId, int64_t nowMs) override {
        requireId(clientId, "client_id");
        Params p;
        p.add(clientId).add(nowMs).add(instanceId);
        uint32_t n = 0;
        run("touch_client", [&](PGconn* c) {
            n = exec(c,
                     "UPDATE active_desktop_clients SET last_ping = $2 WHERE client_id = $1 "
                     "AND ($3::text IS NULL OR instance_id = $3)",
                     p)
                    .affected();
        });
        if (n == 0)
            throw ds::Error(DS_ERR_NOT_FOUND,
                            "client '" + str(clientId) + "' is not registered" +
                                (instanceId ? " by instance '" + str(instanceId) + "'" : ""));
    }

    void unregisterClient(const char* clientId, const char* instanceId) override {
        requireId(clientId, "client_id");
        Params p;
        p.add(clientId).add(instanceId);
        run("unregister_client", [&](PGconn* c) {
            exec(c,
                 "DELETE FROM active_desktop_clients WHERE client_id = $1 "
                 "AND ($2::text IS NULL OR instance_id = $2)",
                 p);
        });
    }

    void listClients(const ClientFn& fn) override {
        PgResult res;
        run("list_clients", [&](PGconn* c) {
            res = exec(c,
                       "SELECT client_id, name, hostname, instance_id, monitors, capabilities, "
                       "connected_at, last_ping FROM active_desktop_clients ORDER BY client_id",
                       Params());
        });
        for (int i = 0; i < res.rows(); ++i) {
            ClientRow c;
            c.clientId = res.text(i, 0);
            c.name = res.text(i, 1);
            c.hostname = res.text(i, 2);
            c.instanceId = res.text(i, 3);
            c.monitors = res.text(i, 4);
            c.capabilities = res.text(i, 5);
            c.connectedAt = res.i64(i, 6);
            c.lastPing = res.i64(i, 7);
            fn(c.record());
        }
    }

    uint32_t reapClients(int64_t olderThanMs, const char* instanceId) override {
        Params p;
        p.add(olderThanMs).add(instanceId);
        uint32_t n = 0;
        run("reap_clients", [&](PGconn* c) {
            n = exec(c,
                     "DELETE FROM active_desktop_clients WHERE last_ping < $1 "
                     "AND ($2::text IS NULL OR instance_id = $2)",
                     p)
                    .affected();
        });
        return n;
    }

    uint32_t unregisterInstanceClients(const char* instanceId) override {
        requireId(instanceId, "instance_id");
        Params p;
        p.add(instanceId);
        uint32_t n = 0;
        run("unregister_instance_clients", [&](PGconn* c) {
            n = exec(c, "DELETE FROM active_desktop_clients WHERE instance_id = $1", p).affected();
        });
        return n;
    }

    void upsertInstance(const ds_instance_record& r) override {
        requireId(r.instance_id, "instance_id");
        Params p;
        p.add(r.instance_id).add(str(r.public_url)).add(r.started_at_ms).add(r.last_seen_ms);
        run("upsert_instance", [&](PGconn* c) {
            exec(c,
                 "INSERT INTO relay_instances (instance_id, public_url, started_at, last_seen) "
                 "VALUES ($1,$2,$3,$4) ON CONFLICT (instance_id) DO UPDATE SET "
                 "public_url = EXCLUDED.public_url, started_at = EXCLUDED.started_at, "
                 "last_seen = EXCLUDED.last_seen",
                 p);
        });
    }

    void listInstances(const InstanceFn& fn) override {
        PgResult res;
        run("list_instances", [&](PGconn* c) {
            res = exec(c,
                       "SELECT instance_id, public_url, started_at, last_seen FROM relay_instances "
                       "ORDER BY instance_id",
                       Params());
        });
        for (int i = 0; i < res.rows(); ++i) {
            InstanceRow r;
            r.instanceId = res.text(i, 0);
            r.publicUrl = res.text(i, 1);
            r.startedAt = res.i64(i, 2);
            r.lastSeen = res.i64(i, 3);
            fn(r.record());
        }
    }

    bool enqueueCommand(const ds_command_record& r) override {
        validateCommand(r);
        Params p;
        p.add(r.id).add(r.client_id).add(r.command_type);
        p.add(r.command_data_json ? r.command_data_json : "{}");
        p.add(r.target_instance_id && *r.target_instance_id ? r.target_instance_id : nullptr);
        p.add(r.origin).add(r.created_at_ms);
        uint32_t n = 0;
        // A retry after a lost connection may find its own first attempt committed: then it
        // reports created = 0, which the contract allows (the command is stored once).
        // The seq comes from the desktop's counter row in the same statement: the upsert locks
        // that row until this transaction commits, so one desktop's commands commit in seq order
        // and a claim never sees a later seq without the earlier ones (docs/stores.md, "Command
        // order"). A retry of an existing id uses up a number (gaps are harmless).
        run("enqueue_command", [&](PGconn* c) {
            n = exec(c,
                     "WITH s AS (INSERT INTO desktop_command_seqs (desktop_client_id, last_seq) "
                     "VALUES ($2, 1) ON CONFLICT (desktop_client_id) DO UPDATE SET last_seq = "
                     "desktop_command_seqs.last_seq + 1 RETURNING last_seq) "
                     "INSERT INTO desktop_commands (id, desktop_client_id, command_type, "
                     "command_data, target_instance_id, status, origin, created_at, attempts, "
                     "seq) SELECT $1,$2,$3,$4,$5,'pending',$6,$7,0,s.last_seq FROM s "
                     "ON CONFLICT (id) DO NOTHING",
                     p)
                    .affected();
        });
        if (n == 1) notifyStored(r.client_id);
        return n == 1;
    }

    void claimCommands(const char* clientId, int64_t nowMs, int64_t leaseMs, uint32_t maxCount,
                       const CommandFn& fn) override {
        requireId(clientId, "client_id");
        validateLease(leaseMs, maxCount);
        Params p;
        p.add(clientId).add(nowMs).add(leaseMs).add(static_cast<int64_t>(maxCount));
        PgResult res;
        // In seq order. SKIP LOCKED passes over rows another transaction holds: a completion
        // or an expiry (those rows are finished, never to be sent again) or a claim by another
        // instance (only while a clientId moves, when order across two connections means
        // nothing); one instance's claims for a desktop never overlap (the relay's delivery
        // lock). Waiting instead could deadlock with expire_commands, which locks rows in its
        // own order. The row lock re-checks the WHERE clause on the newest row version, so a
        // row claimed and committed meanwhile (lease not expired) is never claimed twice.
        run("claim_commands", [&](PGconn* c) {
            res = exec(
                c,
                std::string("UPDATE desktop_commands d SET status = 'delivered', "
                            "delivered_at = $2, claimed_until = $2::bigint + $3::bigint, "
                            "attempts = d.attempts + 1 FROM (SELECT id FROM desktop_commands "
                            "WHERE desktop_client_id = $1 AND (status = 'pending' OR "
                            "(status = 'delivered' AND claimed_until < $2)) ORDER BY seq, id "
                            "LIMIT $4 FOR UPDATE SKIP LOCKED) s WHERE d.id = s.id RETURNING ") +
                    prefixed("d."),
                p);
        });
        std::vector<CommandRow> rows;
        for (int i = 0; i < res.rows(); ++i) rows.push_back(readCommand(res, i));
        sortInDeliveryOrder(rows);
        for (const auto& c : rows) fn(c.record());
    }

    void completeCommand(const char* commandId, const char* status, const char* resultJson,
                         int64_t nowMs) override {
        requireId(commandId, "command id");
        requireFinalStatus(status);
        Params p;
        p.add(commandId).add(status).add(resultJson).add(nowMs);
        uint32_t n = 0;
        run("complete_command", [&](PGconn* c) {
            n = exec(c,
                     "UPDATE desktop_commands SET status = $2, result = $3, completed_at = $4 "
                     "WHERE id = $1",
                     p)
                    .affected();
        });
        if (n == 0)
            throw ds::Error(DS_ERR_NOT_FOUND, "command '" + str(commandId) + "' does not exist");
    }

    void getCommand(const char* commandId, const CommandFn& fn) override {
        requireId(commandId, "command id");
        Params p;
        p.add(commandId);
        PgResult res;
        run("get_command", [&](PGconn* c) {
            res = exec(
                c,
                std::string("SELECT ") + kCommandColumns + " FROM desktop_commands WHERE id = $1",
                p);
        });
        if (res.rows() == 0)
            throw ds::Error(DS_ERR_NOT_FOUND, "command '" + str(commandId) + "' does not exist");
        CommandRow row = readCommand(res, 0);
        fn(row.record());
    }

    uint32_t expireCommands(int64_t olderThanMs, int64_t nowMs) override {
        Params p;
        p.add(olderThanMs).add(nowMs);
        uint32_t n = 0;
        run("expire_commands", [&](PGconn* c) {
            n = exec(c,
                     "UPDATE desktop_commands SET status = 'expired', completed_at = $2, "
                     "result = '{\"status\":\"expired\",\"error\":\"not completed within the "
                     "command TTL\"}' "
                     "WHERE status IN ('pending','delivered') AND created_at < $1",
                     p)
                    .affected();
        });
        return n;
    }

    // ABI 1.1: finished commands (done, failed, expired) completed before olderThanMs go.
    uint32_t purgeCommands(int64_t olderThanMs) {
        Params p;
        p.add(olderThanMs);
        uint32_t n = 0;
        run("purge_commands", [&](PGconn* c) {
            n = exec(c,
                     "DELETE FROM desktop_commands "
                     "WHERE status IN ('done','failed','expired') AND completed_at < $1",
                     p)
                    .affected();
        });
        return n;
    }

    // Waits for NOTIFYs on this schema's channel on a dedicated connection. After that
    // connection is re-established, notifications sent meanwhile are lost (PostgreSQL never
    // replays them): the relay keeps its slow poll of the queue as the fallback.
    bool pollNotifications(uint32_t timeoutMs, const NotifyFn& fn) {
        std::lock_guard<std::mutex> lock(listenMutex_);
        auto deadline = Clock::now() + std::chrono::milliseconds(timeoutMs);
        if (!listen_) {
            PGconn* c = connect();
            try {
                exec(c, "LISTEN \"" + channel_ + "\"", Params());
            } catch (...) {
                PQfinish(c);
                throw;
            }
            listen_ = c;
        }
        bool any = false;
        for (;;) {
            while (PGnotify* n = PQnotifies(listen_)) {
                if (channel_ == n->relname) {
                    fn(n->extra);
                    any = true;
                }
                PQfreemem(n);
            }
            if (any) return true;
            auto left =
                std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now())
                    .count();
            if (left <= 0) return false;
            pollfd pfd{PQsocket(listen_), POLLIN, 0};
            int rc = ::poll(&pfd, 1, static_cast<int>(left));
            if (rc < 0 && errno != EINTR)
                dropListener("poll failed: " + std::string(std::strerror(errno)));
            if (rc > 0 && PQconsumeInput(listen_) == 0)
                dropListener(trimmed(PQerrorMessage(listen_)));
        }
    }

private:
    // Wakes the instances listening on 'deskstream:<schema>'. Sent in its own transaction after
    // the INSERT committed, with synchronous_commit off for that transaction only: NOTIFY takes
    // a database-wide lock from its commit until the commit is flushed, so a NOTIFY inside the
    // durable INSERT transaction would serialise every enqueue behind one fsync each (pgbench,
    // 4 clients: 2,200 enqueue+claim/s instead of 3,400-3,800). A wake-up lost to a crash right
    // here is covered by the relay's slow poll; the command itself is already durable. Failure
    // to notify is logged, not returned: the command is stored, and a retry would store nothing.
    void notifyStored(const char* clientId) {
        Params p;
        p.add(channel_).add(clientId);
        try {
            run("notify", [&](PGconn* c) {
                exec(c, "SELECT set_config('synchronous_commit', 'off', true), pg_notify($1, $2)",
                     p);
            });
        } catch (const std::exception& e) {
            host_.warning(std::string("command stored but the wake-up NOTIFY failed: ") + e.what());
        }
    }

    [[noreturn]] void dropListener(const std::string& why) {
        PQfinish(listen_);
        listen_ = nullptr;
        host_.warning("notification connection to " + target_ + " lost: " + why);
        throw ds::Error(DS_ERR_STORE_UNAVAILABLE, "PostgreSQL notification connection to " +
                                                      target_ + " lost (" + why +
                                                      "): it reconnects on the next call");
    }

    std::string prefixed(const std::string& alias) const {
        std::string out, cols = kCommandColumns;
        size_t start = 0;
        while (start < cols.size()) {
            size_t end = cols.find(',', start);
            if (end == std::string::npos) end = cols.size();
            std::string col = cols.substr(start, end - start);
            while (!col.empty() && col.front() == ' ') col.erase(0, 1);
            out += (out.empty() ? "" : ", ") + alias + col;
            start = end + 1;
        }
        return out;
    }

    static CommandRow readCommand(const PgResult& r, int i) {
        CommandRow c;
        c.id = r.text(i, 0);
        c.clientId = r.text(i, 1);
        c.type = r.text(i, 2);
        c.data = r.text(i, 3);
        c.target = r.optText(i, 4);
        c.status = r.text(i, 5);
        c.result = r.optText(i, 6);
        c.origin = r.optText(i, 7);
        c.createdAt = r.i64(i, 8);
        c.deliveredAt = r.i64(i, 9);
        c.completedAt = r.i64(i, 10);
        c.claimedUntil = r.i64(i, 11);
        c.attempts = static_cast<int32_t>(r.i64(i, 12));
        c.seq = r.i64(i, 13);
        return c;
    }

    // ---- connection string and connecting

    void parseConninfo() {
        char* errmsg = nullptr;
        PQconninfoOption* opts = PQconninfoParse(conninfo_.c_str(), &errmsg);
        if (!opts) {
            std::string m = errmsg ? redact(trimmed(errmsg)) : "out of memory";
            if (errmsg) PQfreemem(errmsg);
            throw ds::Error(DS_ERR_CONFIG,
                            "[store.postgres] connection is not a valid libpq "
                            "connection string: " +
                                m);
        }
        std::string host = "localhost", port = "5432", user, db;
        for (PQconninfoOption* o = opts; o->keyword; ++o) {
            if (!o->val) continue;
            std::string k = o->keyword;
            if (k == "host" || k == "hostaddr")
                host = o->val;
            else if (k == "port")
                port = o->val;
            else if (k == "user")
                user = o->val;
            else if (k == "dbname")
                db = o->val;
            else if (k == "options")
                userOptions_ = o->val;
            else if (k == "connect_timeout")
                connectTimeoutText_ =
                    "connect_timeout = " + std::string(o->val) + " s of the connection string";
        }
        PQconninfoFree(opts);
        user_ = user;
        target_ = "PostgreSQL at " + host + ":" + port + (db.empty() ? "" : " database " + db) +
                  (user.empty() ? "" : " as " + user);
    }

    // Opens one connection with the timeouts set in the startup packet (no extra round trip).
    // With expand_dbname, keys of the expanded conninfo override earlier entries and later
    // entries override it: so our connect_timeout and application_name are defaults the
    // conninfo may change, and our options are appended to the conninfo's own.
    PGconn* connect() {
        std::string options = userOptions_ + (userOptions_.empty() ? "" : " ") +
                              "-c statement_timeout=" + std::to_string(statementTimeoutMs_) +
                              " -c search_path=" + schema_ + ",public";
        std::string timeout = std::to_string(connectTimeoutS_);
        const char* k[] = {"connect_timeout", "application_name", "dbname", "options", nullptr};
        const char* v[] = {timeout.c_str(), "deskstream", conninfo_.c_str(), options.c_str(),
                           nullptr};
        PGconn* c = PQconnectdbParams(k, v, 1);
        if (!c) throw ds::Error(DS_ERR_NO_MEMORY, "out of memory creating a PostgreSQL connection");
        if (PQstatus(c) != CONNECTION_OK) {
            std::string m = redact(trimmed(PQerrorMessage(c)));
            PQfinish(c);
            markDown(m);
            if (m.find("password authentication failed") != std::string::npos ||
                m.find("authentication failed") != std::string::npos ||
                m.find("no password supplied") != std::string::npos ||
                m.find("pg_hba.conf") != std::string::npos ||
                (m.find("role \"") != std::string::npos &&
                 m.find("does not exist") != std::string::npos))
                throw ds::Error(DS_ERR_AUTH, "authentication with " + target_ + " failed: " + m +
                                                 " (check user and password in [store.postgres] "
                                                 "connection, and pg_hba.conf on the server)");
            if (m.find("database \"") != std::string::npos &&
                m.find("does not exist") != std::string::npos)
                throw ds::Error(DS_ERR_CONFIG,
                                "cannot use " + target_ + ": " + m +
                                    " (create it or fix dbname in [store.postgres] connection)");
            throw ConnectionLost(
                DS_ERR_STORE_UNAVAILABLE,
                "cannot connect to " + target_ + ": " + m +
                    " (check that the server is running and reachable at that host "
                    "and port; waited at most " +
                    connectTimeoutText_ + ")");
        }
        markUp();
        return c;
    }

    void markDown(const std::string& why) {
        if (healthy_.exchange(false)) host_.warning("lost " + target_ + ": " + why);
    }
    void markUp() {
        if (!healthy_.exchange(true)) host_.info("reconnected to " + target_);
    }

    // ---- statements

    // Runs one statement with a client-side deadline: the server's statement_timeout ends a
    // slow statement cleanly; the deadline (2 s later) covers a server or network that stopped
    // answering at all. Throws ConnectionLost when the connection is unusable afterwards.
    PgResult exec(PGconn* c, const std::string& sql, const Params& p) {
        auto deadline = Clock::now() + std::chrono::milliseconds(statementTimeoutMs_ + 2000);
        int sent;
        if (p.count() == 0) {
            // The simple protocol accepts several statements (the migrations) in one string.
            sent = PQsendQuery(c, sql.c_str());
        } else {
            // Statements with parameters are prepared once per connection (as pgbench -M
            // prepared does): each later call is a single Bind/Execute round trip, no re-parse.
            const std::string name = statementName(c, sql, p.count(), deadline);
            sent = PQsendQueryPrepared(c, name.c_str(), p.count(), p.values(), nullptr, nullptr, 0);
        }
        if (!sent) lost(c, trimmed(PQerrorMessage(c)));
        return wait(c, deadline);
    }

    // The name of `sql` prepared on connection c, preparing it on first use.
    std::string statementName(PGconn* c, const std::string& sql, int nParams,
                              Clock::time_point deadline) {
        std::string name;
        std::unordered_set<std::string>* done = nullptr;
        {
            std::lock_guard<std::mutex> lock(preparedMutex_);
            auto it = names_.find(sql);
            if (it == names_.end())
                it = names_.emplace(sql, "ds_" + std::to_string(names_.size() + 1)).first;
            name = it->second;
            done = &prepared_[c];  // node-based map: the set stays put while c lives
        }
        if (done->count(name)) return name;
        if (!PQsendPrepare(c, name.c_str(), sql.c_str(), nParams, nullptr))
            lost(c, trimmed(PQerrorMessage(c)));
        wait(c, deadline);
        done->insert(name);
        return name;
    }

    // Closes a connection and forgets what was prepared on it.
    void finish(PGconn* c) {
        if (!c) return;
        {
            std::lock_guard<std::mutex> lock(preparedMutex_);
            prepared_.erase(c);
        }
        PQfinish(c);
    }

    // Collects the results of the query sent on c, polling with the deadline.
    PgResult wait(PGconn* c, Clock::time_point deadline) {
        PgResult result;
        for (;;) {
            while (PQisBusy(c)) {
                auto left =
                    std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now())
                        .count();
                if (left <= 0)
                    lost(c, "no answer within statement_timeout_ms + 2 s = " +
                                std::to_string(statementTimeoutMs_ + 2000) + " ms");
                pollfd pfd{PQsocket(c), POLLIN, 0};
                int rc = ::poll(&pfd, 1, static_cast<int>(left));
                if (rc < 0 && errno != EINTR) lost(c, std::string("poll: ") + std::strerror(errno));
                if (rc > 0 && PQconsumeInput(c) == 0) lost(c, trimmed(PQerrorMessage(c)));
            }
            PGresult* r = PQgetResult(c);
            if (!r) break;
            ExecStatusType st = PQresultStatus(r);
            bool bad = st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK;
            // Keep the first error (or the last good result when there is none).
            if (!result.r || (bad && PQresultStatus(result.r) != PGRES_FATAL_ERROR))
                result = PgResult(r);
            else
                PQclear(r);
        }
        if (!result.r) lost(c, trimmed(PQerrorMessage(c)));
        ExecStatusType st = PQresultStatus(result.r);
        if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return result;
        failStatement(c, result.r);
    }

    [[noreturn]] void lost(PGconn* c, const std::string& why) {
        (void)c;
        markDown(why);
        throw ConnectionLost(DS_ERR_STORE_UNAVAILABLE,
                             target_ + " is unreachable: " + why +
                                 " (check that the server is running; the "
                                 "store reconnects by itself)");
    }

    [[noreturn]] void failStatement(PGconn* c, PGresult* r) {
        std::string state =
            PQresultErrorField(r, PG_DIAG_SQLSTATE) ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : "";
        std::string msg = trimmed(PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY)
                                      ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY)
                                      : PQresultErrorMessage(r));
        std::string full = msg + (state.empty() ? "" : " (SQLSTATE " + state + ")");
        if (PQstatus(c) == CONNECTION_BAD || state.rfind("08", 0) == 0 || state == "57P01" ||
            state == "57P02" || state == "57P03")
            lost(c, full);
        if (state == "42501")
            throw ds::Error(
                DS_ERR_PERMISSION,
                target_ + " refused: " + full + ": the role" +
                    (user_.empty() ? "" : " '" + user_ + "'") +
                    " lacks a privilege (INSERT, UPDATE, DELETE or SELECT) on the deskstream "
                    "tables of schema " +
                    schema_ +
                    ", or a row-level security policy "
                    "denies the row: GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN "
                    "SCHEMA " +
                    schema_ + " TO that role");
        if (state.rfind("28", 0) == 0)
            throw ds::Error(DS_ERR_AUTH, "authentication with " + target_ + " failed: " + full);
        if (state == "57014")
            throw ds::Error(DS_ERR_STORE_UNAVAILABLE,
                            target_ + ": statement cancelled after statement_timeout_ms = " +
                                std::to_string(statementTimeoutMs_) + ": " + full);
        if (state == "53300" || state == "40001" || state == "40P01" || state == "55P03" ||
            state == "25006")
            throw ds::Error(DS_ERR_STORE_UNAVAILABLE,
                            target_ + " is busy or read-only, retry later: " + full);
        if (state.rfind("53", 0) == 0)
            throw ds::Error(DS_ERR_IO, target_ + " is out of resources (disk or memory): " + full);
        if (state.rfind("22", 0) == 0 || state.rfind("23", 0) == 0)
            throw ds::Error(DS_ERR_INVALID_ARGUMENT, target_ + " rejected the values: " + full);
        if (state == "42P01" || state == "42703")
            throw ds::Error(DS_ERR_SCHEMA, target_ + ": the deskstream schema in " + schema_ +
                                               " is missing or damaged: " + full);
        throw ds::Error(DS_ERR_INTERNAL, target_ + ": " + full);
    }

    // ---- the pool

    struct Lease {
        PGconn* conn = nullptr;
        bool reused = false;
    };

    Lease acquire() {
        std::unique_lock<std::mutex> lock(poolMutex_);
        auto deadline = Clock::now() + std::chrono::milliseconds(statementTimeoutMs_);
        while (idle_.empty() && open_ >= poolSize_) {
            if (poolCv_.wait_until(lock, deadline) == std::cv_status::timeout && idle_.empty() &&
                open_ >= poolSize_)
                throw ds::Error(DS_ERR_STORE_UNAVAILABLE,
                                "all " + std::to_string(poolSize_) + " connections to " + target_ +
                                    " stayed busy for statement_timeout_ms: raise pool_size or "
                                    "check the server");
        }
        if (!idle_.empty()) {
            PGconn* c = idle_.back();
            idle_.pop_back();
            return {c, true};
        }
        ++open_;  // reserve a slot, connect outside the lock
        lock.unlock();
        try {
            return {connect(), false};
        } catch (...) {
            release(nullptr);
            throw;
        }
    }

    // Returns a healthy connection to the pool; nullptr gives the slot back after a failure.
    void release(PGconn* c) {
        {
            std::lock_guard<std::mutex> lock(poolMutex_);
            if (c)
                idle_.push_back(c);
            else
                --open_;
        }
        poolCv_.notify_one();
    }

    // Runs f on a pooled connection. A connection that turns out dead is dropped; when it was
    // an old pooled one (the server restarted since), the call is retried once on a new one.
    template <class F>
    void run(const char* what, F&& f) {
        for (int attempt = 0;; ++attempt) {
            Lease l = acquire();
            try {
                f(l.conn);
                if (PQtransactionStatus(l.conn) != PQTRANS_IDLE) {
                    finish(l.conn);
                    release(nullptr);
                } else {
                    release(l.conn);
                }
                return;
            } catch (const ConnectionLost& e) {
                finish(l.conn);
                release(nullptr);
                // The idle ones most likely died with it (server restart): drop them so the
                // retry, and the calls after it, get fresh connections.
                dropIdle();
                if (l.reused && attempt == 0) continue;
                throw ds::Error(e.status(), std::string(what) + ": " + e.what());
            } catch (...) {
                if (PQstatus(l.conn) == CONNECTION_OK &&
                    PQtransactionStatus(l.conn) == PQTRANS_IDLE) {
                    release(l.conn);
                } else {
                    finish(l.conn);
                    release(nullptr);
                }
                throw;
            }
        }
    }

    void dropIdle() {
        std::vector<PGconn*> dead;
        {
            std::lock_guard<std::mutex> lock(poolMutex_);
            dead.swap(idle_);
            open_ -= static_cast<int>(dead.size());
        }
        for (PGconn* c : dead) finish(c);
        poolCv_.notify_all();
    }

    void closeAll() {
        std::lock_guard<std::mutex> lock(poolMutex_);
        for (PGconn* c : idle_) PQfinish(c);
        prepared_.clear();
        idle_.clear();
        open_ = 0;
        if (listen_) PQfinish(listen_);
        listen_ = nullptr;
    }

    // ---- migrations: versioned, idempotent, serialised across instances by an advisory
    // lock held for the transaction. Nothing is created when the schema is already current, so
    // a role with only SELECT/INSERT/UPDATE/DELETE can open an up-to-date database.
    void migrate() {
        run("migrate", [&](PGconn* c) {
            exec(c, "BEGIN", Params());
            try {
                Params lockKey;
                lockKey.add("deskstream:" + schema_);
                exec(c, "SELECT pg_advisory_xact_lock(hashtext($1))", lockKey);
                Params sp;
                sp.add(schema_);
                if (exec(c, "SELECT 1 FROM pg_namespace WHERE nspname = $1", sp).rows() == 0)
                    exec(c, "CREATE SCHEMA \"" + schema_ + "\"", Params());
                Params tbl;
                tbl.add(schema_ + ".schema_migrations");
                if (exec(c, "SELECT to_regclass($1)::text", tbl).optText(0, 0) == std::nullopt)
                    exec(c,
                         "CREATE TABLE \"" + schema_ +
                             "\".schema_migrations (version INTEGER PRIMARY KEY, "
                             "applied_at BIGINT NOT NULL)",
                         Params());
                int current = static_cast<int>(exec(c,
                                                    "SELECT COALESCE(MAX(version), 0) FROM \"" +
                                                        schema_ + "\".schema_migrations",
                                                    Params())
                                                   .i64(0, 0));
                if (current > kSchemaVersion)
                    throw ds::Error(
                        DS_ERR_SCHEMA,
                        target_ + ": the schema " + schema_ + " is version " +
                            std::to_string(current) + ", newer than this build (version " +
                            std::to_string(kSchemaVersion) +
                            "): run a deskstream at least as new as the one that wrote it");
                for (int v = current + 1; v <= kSchemaVersion; ++v) {
                    exec(c, "SET LOCAL search_path TO \"" + schema_ + "\"", Params());
                    exec(c, kMigrations[v - 1], Params());
                    Params ins;
                    ins.add(static_cast<int64_t>(v))
                        .add(static_cast<int64_t>(host_.wallUs() / 1000));
                    exec(c,
                         "INSERT INTO \"" + schema_ +
                             "\".schema_migrations (version, applied_at) VALUES ($1, $2)",
                         ins);
                    host_.info("applied schema migration " + std::to_string(v) + " to " + schema_);
                }
                exec(c, "COMMIT", Params());
            } catch (const ConnectionLost&) {
                throw;
            } catch (...) {
                PGresult* r = PQexec(c, "ROLLBACK");
                if (r) PQclear(r);
                throw;
            }
        });
    }

    ds::Host host_;
    std::string conninfo_, schema_, channel_, target_, user_;
    std::string userOptions_;         // the conninfo's own options=, kept in front of ours
    std::string connectTimeoutText_;  // for messages: the connect timeout in force
    int poolSize_ = 8, connectTimeoutS_ = 5, statementTimeoutMs_ = 5000;
    std::atomic<bool> healthy_{true};

    std::mutex poolMutex_;
    std::condition_variable poolCv_;
    std::vector<PGconn*> idle_;
    int open_ = 0;

    std::mutex preparedMutex_;
    std::unordered_map<std::string, std::string> names_;  // sql -> statement name
    std::unordered_map<PGconn*, std::unordered_set<std::string>> prepared_;  // per connection

    std::mutex listenMutex_;
    PGconn* listen_ = nullptr;
};

}  // namespace

DESKSTREAM_PLUGIN(PostgresStore, "postgres", "1.0.0",
                  "Registrations and commands in PostgreSQL, shared by several relay instances")
