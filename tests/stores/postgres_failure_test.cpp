// PostgreSQL store failures against the real test server (scripts/lib/postgres.sh): server
// stopped and started under an open store, unreachable port, wrong password, a role without
// INSERT privilege, secrets kept out of messages and logs.
#include "store_harness.hpp"
#include "ds_test/pg_outage.hpp"

#include <libpq-fe.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <poll.h>
#include <chrono>
#include <thread>
#include <cstdlib>
#include <stdexcept>

using namespace store_test;
using Clock = std::chrono::steady_clock;

namespace {

long long msSince(Clock::time_point t0) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
}

// A TCP proxy to the test server that can freeze: while frozen it neither accepts nor forwards,
// so the plugin's connections stay open but get no answer — a hung server or a dead network.
class FreezableProxy {
public:
    explicit FreezableProxy(int targetPort) : target_(targetPort) {
        listen_ = socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (listen_ < 0 || bind(listen_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
            listen(listen_, 16) != 0)
            throw std::runtime_error("proxy: cannot listen");
        socklen_t len = sizeof a;
        getsockname(listen_, reinterpret_cast<sockaddr*>(&a), &len);
        port_ = ntohs(a.sin_port);
        thread_ = std::thread([this] { loop(); });
    }
    ~FreezableProxy() {
        stop_ = true;
        thread_.join();
        for (auto& p : pairs_) {
            close(p.first);
            close(p.second);
        }
        close(listen_);
    }
    int port() const { return port_; }
    void freeze(bool f) { frozen_ = f; }

private:
    void loop() {
        while (!stop_) {
            std::vector<pollfd> fds;
            if (!frozen_) {
                fds.push_back({listen_, POLLIN, 0});
                for (auto& p : pairs_) {
                    fds.push_back({p.first, POLLIN, 0});
                    fds.push_back({p.second, POLLIN, 0});
                }
            }
            if (fds.empty()) {
                std::this_thread::sleep_for(std::chrono::milliseconds(20));
                continue;
            }
            if (::poll(fds.data(), fds.size(), 20) <= 0) continue;
            if (fds[0].revents & POLLIN) accept1();
            for (size_t i = 1; i < fds.size(); ++i)
                if (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) forward(fds[i].fd);
        }
    }
    void accept1() {
        int c = accept(listen_, nullptr, nullptr);
        if (c < 0) return;
        int s = socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a.sin_port = htons(static_cast<uint16_t>(target_));
        if (connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
            close(c);
            close(s);
            return;
        }
        pairs_.push_back({c, s});
    }
    void forward(int from) {
        for (auto it = pairs_.begin(); it != pairs_.end(); ++it) {
            if (it->first != from && it->second != from) continue;
            int to = it->first == from ? it->second : it->first;
            char buf[16384];
            ssize_t n = read(from, buf, sizeof buf);
            if (n <= 0 || send(to, buf, static_cast<size_t>(n), MSG_NOSIGNAL) != n) {
                close(it->first);
                close(it->second);
                pairs_.erase(it);
            }
            return;
        }
    }
    int target_, listen_ = -1, port_ = 0;
    std::atomic<bool> stop_{false}, frozen_{false};
    std::vector<std::pair<int, int>> pairs_;
    std::thread thread_;
};

int pgPort(const std::string& conninfo) {
    PQconninfoOption* opts = PQconninfoParse(conninfo.c_str(), nullptr);
    int port = 5432;
    for (PQconninfoOption* o = opts; o && o->keyword; ++o)
        if (std::string(o->keyword) == "port" && o->val) port = std::atoi(o->val);
    PQconninfoFree(opts);
    return port;
}

class PostgresFailure : public ::testing::Test {
protected:
    void SetUp() override {
        conninfo_ = requirePgConninfo();
        schema_ = uniqueName("f_");
        backend_ = makeBackend("postgres");
        opener_ = std::make_unique<Opener>(*backend_);
    }
    void TearDown() override {
        try {
            adminExec("DROP SCHEMA IF EXISTS " + schema_ + " CASCADE");
        } catch (const std::exception& e) {
            ADD_FAILURE() << e.what();
        }
    }
    Result open(std::unique_ptr<StoreHandle>& h, const std::string& conninfo,
                std::map<std::string, std::string> extra = {}) {
        extra["connection"] = conninfo;
        if (!extra.count("schema")) extra["schema"] = schema_;
        if (!extra.count("statement_timeout_ms")) extra["statement_timeout_ms"] = "2000";
        if (!extra.count("connect_timeout_s")) extra["connect_timeout_s"] = "2";
        ds_test::TestConfig cfg("store.postgres", extra);
        return opener_->tryOpen(h, cfg);
    }
    std::string conninfo_, schema_;
    std::unique_ptr<Backend> backend_;
    std::unique_ptr<Opener> opener_;
};

TEST_F(PostgresFailure, ServerStoppedGivesUnavailableInTimeAndRecoversWithoutReopening) {
    ds_test::PgOutage outage;  // fails clearly when the pg_ctl variables are missing
    std::unique_ptr<StoreHandle> h;
    ASSERT_STORE_OK(open(h, conninfo_, {{"pool_size", "2"}}));
    ASSERT_STORE_OK(h->registerClient("c1", "relay-a", 1, 1));
    std::vector<std::string> seen;
    Result listening = h->poll(10, seen);
    ASSERT_TRUE(listening.status == DS_TIMEOUT || listening.ok()) << listening.message;

    outage.stop();
    // Bound: connect_timeout_s (2 s) for the reconnect attempt + the statement deadline.
    for (int i = 0; i < 3; ++i) {
        auto t0 = Clock::now();
        Result r = h->registerClient("c2", "relay-a", 2, 2);
        EXPECT_EQ(r.status, DS_ERR_STORE_UNAVAILABLE) << r.message;
        EXPECT_NE(r.message.find("127.0.0.1"), std::string::npos) << r.message;
        EXPECT_LT(msSince(t0), 6000) << "a call hung with the server gone";
    }
    auto t0 = Clock::now();
    Result c = h->check();
    EXPECT_EQ(c.status, DS_ERR_STORE_UNAVAILABLE) << c.message;
    EXPECT_LT(msSince(t0), 6000);
    t0 = Clock::now();
    Result p = h->poll(200, seen);
    EXPECT_EQ(p.status, DS_ERR_STORE_UNAVAILABLE) << p.message;
    EXPECT_LT(msSince(t0), 6000);

    outage.start();
    EXPECT_STORE_OK(h->check());
    EXPECT_STORE_OK(h->registerClient("c2", "relay-a", 2, 2));
    std::vector<Client> clients;
    ASSERT_STORE_OK(h->listClients(clients));
    EXPECT_EQ(clients.size(), 2u);
    // The listener comes back too: a command stored now wakes it.
    seen.clear();
    Result relisten = h->poll(10, seen);
    ASSERT_TRUE(relisten.status == DS_TIMEOUT || relisten.ok()) << relisten.message;
    int32_t created = 0;
    ASSERT_STORE_OK(h->enqueue("after-restart", "c2", 5, created));
    Result woke = h->poll(3000, seen);
    EXPECT_TRUE(woke.ok()) << woke.message;
    EXPECT_NE(std::find(seen.begin(), seen.end(), "c2"), seen.end());
    EXPECT_TRUE(opener_->host().logContains("reconnected to PostgreSQL"));
}

TEST_F(PostgresFailure, RestartBetweenCallsIsInvisibleWithAFullPool) {
    ds_test::PgOutage outage;
    std::unique_ptr<StoreHandle> h;
    ASSERT_STORE_OK(open(h, conninfo_, {{"pool_size", "4"}}));
    std::vector<std::thread> ts;  // fill the pool with 4 connections
    for (int t = 0; t < 8; ++t)
        ts.emplace_back([&, t] {
            for (int i = 0; i < 10; ++i)
                EXPECT_STORE_OK(h->registerClient("c" + std::to_string(t), "r", i, i));
        });
    for (auto& t : ts) t.join();
    outage.stop();
    outage.start();
    // Every pooled connection is dead now; the first call must still succeed.
    EXPECT_STORE_OK(h->registerClient("after", "r", 1, 1));
    EXPECT_STORE_OK(h->check());
}

TEST_F(PostgresFailure, ServerThatNeverAnswersTimesOutAtConnect) {
    // A listening socket that never answers: the TCP handshake completes (kernel backlog) but
    // the startup packet gets no reply, as with a hung server.
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(fd, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    ASSERT_EQ(listen(fd, 8), 0);
    socklen_t len = sizeof addr;
    ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
    std::string port = std::to_string(ntohs(addr.sin_port));
    std::unique_ptr<StoreHandle> h;
    auto t0 = Clock::now();
    Result r = open(h, "host=127.0.0.1 port=" + port + " dbname=x user=y password=z",
                    {{"connect_timeout_s", "2"}});
    long long ms = msSince(t0);
    close(fd);
    EXPECT_EQ(r.status, DS_ERR_STORE_UNAVAILABLE) << r.message;
    EXPECT_NE(r.message.find("127.0.0.1:" + port), std::string::npos) << r.message;
    EXPECT_NE(r.message.find("connect_timeout_s"), std::string::npos) << r.message;
    EXPECT_GE(ms, 1500);
    EXPECT_LT(ms, 5000) << "connect must give up after connect_timeout_s";
}

TEST_F(PostgresFailure, ServerThatStopsAnsweringMidSessionDoesNotHangCalls) {
    FreezableProxy proxy(pgPort(conninfo_));
    std::string via = conninfo_ + " host=127.0.0.1 port=" + std::to_string(proxy.port());
    std::unique_ptr<StoreHandle> h;
    ASSERT_STORE_OK(open(h, via, {{"pool_size", "1"}, {"statement_timeout_ms", "500"}}));
    ASSERT_STORE_OK(h->registerClient("c1", "relay-a", 1, 1));
    proxy.freeze(true);
    auto t0 = Clock::now();
    Result r = h->registerClient("c2", "relay-a", 1, 1);
    long long ms = msSince(t0);
    EXPECT_EQ(r.status, DS_ERR_STORE_UNAVAILABLE) << r.message;
    // The retry's connect attempt is what reports: it names the timeout that expired.
    EXPECT_NE(r.message.find("127.0.0.1:" + std::to_string(proxy.port())), std::string::npos)
        << r.message;
    EXPECT_NE(r.message.find("timeout"), std::string::npos) << r.message;
    EXPECT_TRUE(opener_->host().logContains("no answer within statement_timeout_ms"));
    // Bound: the statement deadline (500 ms + 2 s), then one retry on a new connection that
    // gives up after connect_timeout_s (2 s).
    EXPECT_GE(ms, 2400);
    EXPECT_LT(ms, 7500) << "a call hung on a server that stopped answering";
    proxy.freeze(false);
    EXPECT_STORE_OK(h->registerClient("c2", "relay-a", 1, 1));
    std::vector<Client> clients;
    ASSERT_STORE_OK(h->listClients(clients));
    EXPECT_EQ(clients.size(), 2u);
}

TEST_F(PostgresFailure, UnreachablePortFailsFastNamingHostAndPort) {
    std::unique_ptr<StoreHandle> h;
    auto t0 = Clock::now();
    Result r = open(h, "host=127.0.0.1 port=1 dbname=x user=someone password=Xy7secretZ");
    EXPECT_EQ(r.status, DS_ERR_STORE_UNAVAILABLE) << r.message;
    EXPECT_NE(r.message.find("127.0.0.1:1"), std::string::npos) << r.message;
    EXPECT_NE(r.message.find("running"), std::string::npos) << r.message;
    EXPECT_EQ(r.message.find("Xy7secretZ"), std::string::npos) << r.message;
    EXPECT_LT(msSince(t0), 4000);
}

TEST_F(PostgresFailure, WrongPasswordIsAnAuthenticationError) {
    std::unique_ptr<StoreHandle> h;
    Result r = open(h, conninfo_ + " password=Xy7secretZ");
    EXPECT_EQ(r.status, DS_ERR_AUTH)
        << r.message
        << " (the test server must require passwords over TCP: see scripts/lib/postgres.sh)";
    EXPECT_NE(r.message.find("password"), std::string::npos) << r.message;
    EXPECT_EQ(r.message.find("Xy7secretZ"), std::string::npos) << r.message;
    for (const auto& line : opener_->host().logLines())
        EXPECT_EQ(line.find("Xy7secretZ"), std::string::npos) << line;
}

TEST_F(PostgresFailure, BadConnectionStringIsAConfigErrorWithoutThePassword) {
    std::unique_ptr<StoreHandle> h;
    Result r = open(h, "host=127.0.0.1 password=Xy7secretZ nonsense");
    EXPECT_EQ(r.status, DS_ERR_CONFIG) << r.message;
    EXPECT_EQ(r.message.find("Xy7secretZ"), std::string::npos) << r.message;
    r = open(h, conninfo_, {{"schema", "Robert'); DROP"}});
    EXPECT_EQ(r.status, DS_ERR_CONFIG) << r.message;
    r = open(h, conninfo_, {{"pool_size", "0"}});
    EXPECT_EQ(r.status, DS_ERR_CONFIG) << r.message;
}

TEST_F(PostgresFailure, RoleWithoutInsertPrivilegeCannotRegister) {
    std::unique_ptr<StoreHandle> admin;
    ASSERT_STORE_OK(open(admin, conninfo_));  // creates the schema at the current version
    ScopedPgRole limitedRole("ro_", schema_);
    const std::string& role = limitedRole.name();
    adminExec("GRANT USAGE ON SCHEMA " + schema_ + " TO " + role +
              "; GRANT SELECT, UPDATE, DELETE ON ALL TABLES IN SCHEMA " + schema_ + " TO " + role);
    std::unique_ptr<StoreHandle> limited;
    ASSERT_STORE_OK(open(limited, limitedRole.conninfo()));
    std::vector<Client> clients;
    EXPECT_STORE_OK(limited->listClients(clients));  // SELECT is granted
    Result r = limited->registerClient("c1", "relay-a", 1, 1);
    EXPECT_EQ(r.status, DS_ERR_PERMISSION) << r.message;
    EXPECT_NE(r.message.find("permission denied"), std::string::npos) << r.message;
    EXPECT_NE(r.message.find("INSERT"), std::string::npos) << r.message;
    EXPECT_NE(r.message.find(role), std::string::npos) << r.message;
    EXPECT_NE(r.message.find("active_desktop_clients"), std::string::npos) << r.message;
    int32_t created = 0;
    EXPECT_EQ(limited->enqueue("x", "c1", 1, created).status, DS_ERR_PERMISSION);
    EXPECT_STORE_OK(admin->registerClient("c1", "relay-a", 1, 1));  // the table itself is fine
}

TEST_F(PostgresFailure, TwoInstancesMigratingAtOnceBothSucceed) {
    std::unique_ptr<StoreHandle> a, b;
    Result ra, rb;
    std::thread ta([&] { ra = open(a, conninfo_); });
    std::thread tb([&] { rb = open(b, conninfo_); });
    ta.join();
    tb.join();
    EXPECT_STORE_OK(ra);
    EXPECT_STORE_OK(rb);
    ASSERT_TRUE(a && b);
    EXPECT_STORE_OK(a->registerClient("c1", "relay-a", 1, 1));
    std::vector<Client> clients;
    ASSERT_STORE_OK(b->listClients(clients));
    EXPECT_EQ(clients.size(), 1u);
}

}  // namespace
