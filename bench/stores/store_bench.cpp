// Store plugin throughput: registrations (upserts) per second and enqueue -> claim throughput
// and latency, through the SDK exactly as the relay calls it, next to a ceiling measured in the
// same run (SQLite: the same statements through the sqlite3 C library directly; PostgreSQL:
// pgbench, run by bench/stores/run.sh with the scripts beside this file).
//
//   store_bench sqlite   <database file>           [--threads N] [--seconds S]
//   store_bench postgres <libpq conninfo> <schema> [--threads N] [--seconds S]
#include "ds_test/plugin_fixture.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

using Clock = std::chrono::steady_clock;

namespace {

struct Options {
    std::string kind, target, schema;
    int threads = 4;
    double seconds = 5;
};

struct Figures {
    double perSecond = 0;
    double p50Us = 0, p99Us = 0;
    long long count = 0;
};

void die(const std::string& m) {
    std::fprintf(stderr, "store_bench: %s\n", m.c_str());
    std::exit(2);
}

double percentile(std::vector<double>& v, double p) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

// Runs body(thread, iteration) on `threads` threads for `seconds`; body returns the latency in
// microseconds of one operation, or < 0 on failure.
template <class F>
Figures runLoad(int threads, double seconds, F body) {
    std::atomic<bool> stop{false};
    std::atomic<long long> failures{0};
    std::vector<std::vector<double>> lat(static_cast<size_t>(threads));
    std::vector<std::thread> ts;
    auto t0 = Clock::now();
    for (int t = 0; t < threads; ++t)
        ts.emplace_back([&, t] {
            for (long long i = 0; !stop.load(std::memory_order_relaxed); ++i) {
                double us = body(t, i);
                if (us < 0)
                    failures++;
                else
                    lat[static_cast<size_t>(t)].push_back(us);
            }
        });
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
    stop = true;
    for (auto& t : ts) t.join();
    double elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
    if (failures) die(std::to_string(failures.load()) + " operations failed");
    std::vector<double> all;
    for (auto& v : lat) all.insert(all.end(), v.begin(), v.end());
    Figures f;
    f.count = static_cast<long long>(all.size());
    f.perSecond = static_cast<double>(all.size()) / elapsed;
    f.p50Us = percentile(all, 0.50);
    f.p99Us = percentile(all, 0.99);
    return f;
}

double usSince(Clock::time_point t0) {
    return std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
}

void print(const std::string& what, const Figures& f, int threads) {
    std::printf("%-44s %9.0f /s   p50 %7.0f us   p99 %7.0f us   (%lld ops, %d threads)\n",
                what.c_str(), f.perSecond, f.p50Us, f.p99Us, f.count, threads);
    std::fflush(stdout);
}

void noopCommand(void*, const ds_command_record*) {}

// ---- through the plugin
void benchPlugin(const Options& o) {
    ds_test::LoadedPlugin plugin(ds_test::pluginPath("store", o.kind));
    const ds_store_vtable& vt = plugin.store();
    ds_test::TestHost host;
    std::unique_ptr<ds_test::TestConfig> cfg;
    if (o.kind == "sqlite")
        cfg = std::make_unique<ds_test::TestConfig>(
            "store.sqlite", std::map<std::string, std::string>{{"path", o.target}});
    else
        cfg = std::make_unique<ds_test::TestConfig>(
            "store.postgres",
            std::map<std::string, std::string>{{"connection", o.target},
                                               {"schema", o.schema},
                                               {"pool_size", std::to_string(o.threads)}});
    void* inst = nullptr;
    char err[512] = {0};
    if (vt.create(host.api(), cfg->get(), &inst, err, sizeof err) != DS_OK)
        die(std::string("open: ") + err);

    Figures up = runLoad(o.threads, o.seconds, [&](int t, long long i) -> double {
        std::string id = "bench-" + std::to_string(t) + "-" + std::to_string(i % 1000);
        ds_client_record r{};
        r.struct_size = sizeof r;
        r.client_id = id.c_str();
        r.name = "bench";
        r.hostname = "bench-host";
        r.instance_id = "relay-bench";
        r.monitors_json = "[{\"index\": 0, \"width\": 1920, \"height\": 1080}]";
        r.capabilities_json = "{\"input\": true}";
        r.connected_at_ms = i;
        r.last_ping_ms = i;
        char e[256];
        auto t0 = Clock::now();
        if (vt.register_client(inst, &r, e, sizeof e) != DS_OK) {
            std::fprintf(stderr, "register: %s\n", e);
            return -1;
        }
        return usSince(t0);
    });
    print(o.kind + " plugin: register_client (upsert)", up, o.threads);

    Figures eq = runLoad(o.threads, o.seconds, [&](int t, long long i) -> double {
        std::string id = "cmd-" + std::to_string(t) + "-" + std::to_string(i) + "-" +
                         std::to_string(Clock::now().time_since_epoch().count());
        std::string client = "bench-desk-" + std::to_string(t);
        ds_command_record r{};
        r.struct_size = sizeof r;
        r.id = id.c_str();
        r.client_id = client.c_str();
        r.command_type = "input";
        r.command_data_json = "{\"type\": \"input\", \"x\": 1}";
        r.origin = "bench";
        r.created_at_ms = i;
        char e[256];
        int32_t created = 0;
        auto t0 = Clock::now();
        if (vt.enqueue_command(inst, &r, &created, e, sizeof e) != DS_OK ||
            vt.claim_commands(inst, client.c_str(), i, 60000, 1, &noopCommand, nullptr, e,
                              sizeof e) != DS_OK) {
            std::fprintf(stderr, "enqueue/claim: %s\n", e);
            return -1;
        }
        return usSince(t0);
    });
    print(o.kind + " plugin: enqueue + claim", eq, o.threads);
    vt.destroy(inst);
}

// ---- SQLite ceiling: the plugin's statements through sqlite3 directly, one connection.
void benchSqliteDirect(const Options& o) {
    std::string path = o.target + ".direct";
    std::filesystem::remove(path);
    {  // create the same schema through the plugin, then close it
        ds_test::LoadedPlugin plugin(ds_test::pluginPath("store", "sqlite"));
        ds_test::TestHost host;
        ds_test::TestConfig cfg("store.sqlite", {{"path", path}});
        void* inst = nullptr;
        char err[512];
        if (plugin.store().create(host.api(), cfg.get(), &inst, err, sizeof err) != DS_OK) die(err);
        plugin.store().destroy(inst);
    }
    sqlite3* db = nullptr;
    if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) die("sqlite3_open");
    sqlite3_exec(db, "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL", nullptr, nullptr,
                 nullptr);
    auto prep = [&](const char* sql) {
        sqlite3_stmt* s = nullptr;
        if (sqlite3_prepare_v2(db, sql, -1, &s, nullptr) != SQLITE_OK) die(sqlite3_errmsg(db));
        return s;
    };
    sqlite3_stmt* up = prep(
        "INSERT INTO active_desktop_clients (client_id, name, hostname, instance_id, monitors, "
        "capabilities, connected_at, last_ping) VALUES (?1,?2,?3,?4,?5,?6,?7,?8) ON CONFLICT "
        "(client_id) DO UPDATE SET name = excluded.name, hostname = excluded.hostname, "
        "instance_id = excluded.instance_id, monitors = excluded.monitors, capabilities = "
        "excluded.capabilities, connected_at = excluded.connected_at, last_ping = "
        "excluded.last_ping");
    // The plugin's enqueue: the desktop's counter row and the command in one transaction
    // (docs/stores.md, "Command order").
    sqlite3_stmt* seq = prep(
        "INSERT INTO desktop_command_seqs (desktop_client_id, last_seq) VALUES (?1, 1) ON "
        "CONFLICT (desktop_client_id) DO UPDATE SET last_seq = last_seq + 1");
    sqlite3_stmt* enq = prep(
        "INSERT INTO desktop_commands (id, desktop_client_id, command_type, command_data, "
        "target_instance_id, status, origin, created_at, attempts, seq) SELECT "
        "?1,?2,?3,?4,?5,'pending',?6,?7,0,last_seq FROM desktop_command_seqs WHERE "
        "desktop_client_id = ?2 ON CONFLICT (id) DO NOTHING");
    sqlite3_stmt* claim = prep(
        "UPDATE desktop_commands SET status = 'delivered', delivered_at = ?2, claimed_until = ?2 + "
        "?3, "
        "attempts = attempts + 1 WHERE id IN (SELECT id FROM desktop_commands WHERE "
        "desktop_client_id = ?1 "
        "AND (status = 'pending' OR (status = 'delivered' AND claimed_until < ?2)) ORDER BY "
        "seq, id "
        "LIMIT ?4) RETURNING id, desktop_client_id, command_type, command_data, "
        "target_instance_id, status, "
        "result, origin, created_at, delivered_at, completed_at, claimed_until, attempts, seq");
    auto text = [](sqlite3_stmt* s, int i, const std::string& v) {
        sqlite3_bind_text(s, i, v.c_str(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    };
    auto finish = [&](sqlite3_stmt* s) {
        int rc;
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {}
        sqlite3_reset(s);
        return rc == SQLITE_DONE;
    };
    Figures f = runLoad(1, o.seconds, [&](int, long long i) -> double {
        auto t0 = Clock::now();
        text(up, 1, "bench-0-" + std::to_string(i % 1000));
        text(up, 2, "bench");
        text(up, 3, "bench-host");
        text(up, 4, "relay-bench");
        text(up, 5, "[{\"index\": 0, \"width\": 1920, \"height\": 1080}]");
        text(up, 6, "{\"input\": true}");
        sqlite3_bind_int64(up, 7, i);
        sqlite3_bind_int64(up, 8, i);
        return finish(up) ? usSince(t0) : -1;
    });
    print("sqlite3 C API direct: upsert (ceiling)", f, 1);
    f = runLoad(1, o.seconds, [&](int, long long i) -> double {
        auto t0 = Clock::now();
        text(enq, 1,
             "cmd-" + std::to_string(i) + "-" + std::to_string(t0.time_since_epoch().count()));
        // Four desktops in turn, as the plugin run's four threads use one each.
        std::string desk = "bench-desk-" + std::to_string(i % 4);
        if (sqlite3_exec(db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) != SQLITE_OK) return -1;
        text(seq, 1, desk);
        if (!finish(seq)) return -1;
        text(enq, 2, desk);
        text(enq, 3, "input");
        text(enq, 4, "{\"type\": \"input\", \"x\": 1}");
        sqlite3_bind_null(enq, 5);
        text(enq, 6, "bench");
        sqlite3_bind_int64(enq, 7, i);
        if (!finish(enq)) return -1;
        if (sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) return -1;
        text(claim, 1, desk);
        sqlite3_bind_int64(claim, 2, i);
        sqlite3_bind_int64(claim, 3, 60000);
        sqlite3_bind_int64(claim, 4, 1);
        return finish(claim) ? usSince(t0) : -1;
    });
    print("sqlite3 C API direct: enqueue + claim (ceiling)", f, 1);
    sqlite3_finalize(up);
    sqlite3_finalize(seq);
    sqlite3_finalize(enq);
    sqlite3_finalize(claim);
    sqlite3_close(db);
}

}  // namespace

int main(int argc, char** argv) {
    Options o;
    std::vector<std::string> pos;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--threads" && i + 1 < argc)
            o.threads = std::max(1, std::atoi(argv[++i]));
        else if (a == "--seconds" && i + 1 < argc)
            o.seconds = std::max(0.5, std::atof(argv[++i]));
        else
            pos.push_back(a);
    }
    if (pos.size() < 2 || (pos[0] != "sqlite" && pos[0] != "postgres") ||
        (pos[0] == "postgres" && pos.size() < 3))
        die("usage: store_bench sqlite <db file> | postgres <conninfo> <schema>  [--threads N] "
            "[--seconds S]");
    o.kind = pos[0];
    o.target = pos[1];
    if (o.kind == "postgres") o.schema = pos[2];
    if (o.kind == "sqlite") std::filesystem::remove(o.target);
    benchPlugin(o);
    if (o.kind == "sqlite") benchSqliteDirect(o);
    return 0;
}
