// SQLite store failures: read-only files and folders, unusable files, bad configuration.
//
// Tests run as root, and root ignores file permission bits, so chmod alone proves nothing. The
// read-only cases therefore run the open in a forked child that (when root) drops to the
// unprivileged 'nobody' user (uid/gid 65534), against a read-only (0555/0444) folder and file
// owned by root: a real permission check by the kernel, what a relay running as a service user
// meets. Run as an ordinary user the child keeps that user, for whom the modes apply as well.
#include "store_harness.hpp"

#include <sqlite3.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>
#include <sys/wait.h>
#include <unistd.h>

using namespace store_test;

namespace {

constexpr uid_t kNobody = 65534;

class SqliteFailure : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = std::filesystem::temp_directory_path() / uniqueName("ds-sqlite-fail-");
        std::filesystem::create_directories(dir_);
        backend_ = makeBackend("sqlite");
        opener_ = std::make_unique<Opener>(*backend_);
    }
    void TearDown() override {
        std::error_code ec;
        std::filesystem::permissions(dir_, std::filesystem::perms(0755), ec);  // removable again
        std::filesystem::remove_all(dir_, ec);
    }
    Result openAt(const std::string& path, std::map<std::string, std::string> extra = {}) {
        extra["path"] = path;
        ds_test::TestConfig cfg("store.sqlite", extra);
        std::unique_ptr<StoreHandle> h;
        return opener_->tryOpen(h, cfg);
    }
    // Runs openAt + one registration as 'nobody' in a child; returns the first failure.
    Result openAsNobody(const std::string& path) {
        int fds[2];
        if (pipe(fds) != 0) return {DS_ERR_INTERNAL, "pipe failed"};
        pid_t pid = fork();
        if (pid == 0) {
            close(fds[0]);
            Result r;
            if (getuid() == 0 && (setgid(kNobody) != 0 || setuid(kNobody) != 0)) {
                r = {DS_ERR_INTERNAL,
                     std::string("cannot drop to nobody: ") + std::strerror(errno)};
            } else {
                ds_test::TestConfig cfg("store.sqlite", {{"path", path}});
                std::unique_ptr<StoreHandle> h;
                r = opener_->tryOpen(h, cfg);
                if (r.ok()) r = h->registerClient("c1", "relay-a", 1, 1);
                if (r.ok()) r = {DS_OK, "open and register succeeded"};
            }
            std::string msg = std::to_string(r.status) + "\n" + r.message;
            ssize_t ignored = write(fds[1], msg.data(), msg.size());
            (void)ignored;
            _exit(0);
        }
        close(fds[1]);
        std::string out;
        char buf[512];
        ssize_t n;
        while ((n = read(fds[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
        close(fds[0]);
        int st = 0;
        waitpid(pid, &st, 0);
        size_t nl = out.find('\n');
        if (nl == std::string::npos) return {DS_ERR_INTERNAL, "child said nothing: " + out};
        return {static_cast<ds_status>(std::stoi(out.substr(0, nl))), out.substr(nl + 1)};
    }
    std::filesystem::path dir_;
    std::unique_ptr<Backend> backend_;
    std::unique_ptr<Opener> opener_;
};

TEST_F(SqliteFailure, ReadOnlyFolderGivesPermissionErrorAtOpen) {
    std::filesystem::permissions(dir_,
                                 std::filesystem::perms(0555));  // nobody (or the owner) reads only
    Result r = openAsNobody((dir_ / "state.db").string());
    EXPECT_EQ(r.status, DS_ERR_PERMISSION) << r.message;
    EXPECT_NE(r.message.find("writable"), std::string::npos) << r.message;
    EXPECT_NE(r.message.find("state.db"), std::string::npos) << r.message;
}

TEST_F(SqliteFailure, ReadOnlyDatabaseFileGivesPermissionErrorAtOpen) {
    std::string path = (dir_ / "state.db").string();
    ASSERT_STORE_OK(openAt(path));  // created, then closed (WAL checkpointed)
    std::filesystem::permissions(dir_, std::filesystem::perms(0555));
    std::filesystem::permissions(path, std::filesystem::perms(0444));
    Result r = openAsNobody(path);
    EXPECT_EQ(r.status, DS_ERR_PERMISSION) << r.message;
    EXPECT_NE(r.message.find("read-only"), std::string::npos) << r.message;
}

TEST_F(SqliteFailure, WritableFolderWorksForAnUnprivilegedUser) {
    // The control for the two tests above: the same child succeeds when it may write.
    std::filesystem::permissions(dir_, std::filesystem::perms(0777));
    Result r = openAsNobody((dir_ / "state.db").string());
    EXPECT_EQ(r.status, DS_OK) << r.message;
}

TEST_F(SqliteFailure, ReadOnlyUriIsRefusedAtOpen) {
    std::string path = (dir_ / "state.db").string();
    ASSERT_STORE_OK(openAt(path));
    Result r = openAt("file:" + path + "?mode=ro");
    EXPECT_EQ(r.status, DS_ERR_PERMISSION) << r.message;
    EXPECT_NE(r.message.find("read-only"), std::string::npos) << r.message;
}

TEST_F(SqliteFailure, FileThatIsNotADatabaseIsAnIoError) {
    std::string path = (dir_ / "junk.db").string();
    std::ofstream(path) << std::string(4096, 'x');
    Result r = openAt(path);
    EXPECT_EQ(r.status, DS_ERR_IO) << r.message;
    EXPECT_NE(r.message.find("not a valid deskstream database"), std::string::npos) << r.message;
}

TEST_F(SqliteFailure, PathThatIsAFolderIsAnIoError) {
    Result r = openAt(dir_.string());
    EXPECT_LT(r.status, 0);
    EXPECT_NE(r.message.find(dir_.string()), std::string::npos) << r.message;
}

TEST_F(SqliteFailure, MissingFolderIsCreated) {
    std::string path = (dir_ / "a" / "b" / "state.db").string();
    EXPECT_STORE_OK(openAt(path));
    EXPECT_TRUE(std::filesystem::exists(path));
}

TEST_F(SqliteFailure, BadConfigurationNamesTheKey) {
    Result r = openAt((dir_ / "x.db").string(), {{"synchronous", "sometimes"}});
    EXPECT_EQ(r.status, DS_ERR_CONFIG);
    EXPECT_NE(r.message.find("synchronous"), std::string::npos) << r.message;
    r = openAt((dir_ / "x.db").string(), {{"busy_timeout_ms", "-5"}});
    EXPECT_EQ(r.status, DS_ERR_CONFIG);
    EXPECT_NE(r.message.find("busy_timeout_ms"), std::string::npos) << r.message;
    r = openAt("");
    EXPECT_EQ(r.status, DS_ERR_CONFIG) << r.message;
}

TEST_F(SqliteFailure, DatabaseIsInWalModeWithFullSync) {
    std::string path = (dir_ / "state.db").string();
    ds_test::TestConfig cfg("store.sqlite", {{"path", path}});
    std::unique_ptr<StoreHandle> h;
    ASSERT_STORE_OK(opener_->tryOpen(h, cfg));
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    sqlite3_stmt* st = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, nullptr), SQLITE_OK);
    ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
    EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)), "wal");
    sqlite3_finalize(st);
    sqlite3_close(db);
    EXPECT_TRUE(opener_->host().logContains("synchronous=full"));
}

TEST_F(SqliteFailure, SeveralInstancesOpeningANewFileAtOnceAllSucceed) {
    // Migrations under BEGIN IMMEDIATE: racing opens of a fresh file wait for each other.
    for (int round = 0; round < 5; ++round) {
        std::string path = (dir_ / ("race" + std::to_string(round) + ".db")).string();
        std::vector<Result> results(4);
        std::vector<std::unique_ptr<StoreHandle>> handles(4);
        std::vector<std::thread> ts;
        for (int t = 0; t < 4; ++t)
            ts.emplace_back([&, t] {
                ds_test::TestConfig cfg("store.sqlite", {{"path", path}});
                results[t] = opener_->tryOpen(handles[t], cfg);
            });
        for (auto& t : ts) t.join();
        for (const auto& r : results) EXPECT_STORE_OK(r);
        ASSERT_TRUE(handles[0]);
        EXPECT_STORE_OK(handles[0]->registerClient("c", "r", 1, 1));
    }
}

TEST_F(SqliteFailure, LockedByAnotherProcessGivesUnavailableAfterBusyTimeout) {
    std::string path = (dir_ / "state.db").string();
    ds_test::TestConfig cfg("store.sqlite", {{"path", path}, {"busy_timeout_ms", "200"}});
    std::unique_ptr<StoreHandle> h;
    ASSERT_STORE_OK(opener_->tryOpen(h, cfg));
    sqlite3* other = nullptr;  // another "process" holding the write lock
    ASSERT_EQ(sqlite3_open(path.c_str(), &other), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
    auto t0 = std::chrono::steady_clock::now();
    Result r = h->registerClient("c1", "relay-a", 1, 1);
    auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
            .count();
    EXPECT_EQ(r.status, DS_ERR_STORE_UNAVAILABLE) << r.message;
    EXPECT_NE(r.message.find("busy_timeout_ms"), std::string::npos) << r.message;
    EXPECT_GE(ms, 150);
    EXPECT_LT(ms, 3000);
    sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr);
    sqlite3_close(other);
    EXPECT_STORE_OK(h->registerClient("c1", "relay-a", 1, 1));  // lock gone: works again
}

}  // namespace

// A relative [store.sqlite] path is placed in the host's state folder (host-provided key).
TEST_F(SqliteFailure, RelativePathIsTakenInsideTheHostStateDir) {
    auto r = openAt("relative.db", {{"host.state_dir", dir_.string()}});
    ASSERT_TRUE(r.ok()) << r.message;
    EXPECT_TRUE(std::filesystem::exists(dir_ / "relative.db"));
    EXPECT_FALSE(std::filesystem::exists("relative.db")) << "not in the working directory";
}
