// Stops the suite's shared PostgreSQL test server and starts it again however the test ends
// (scripts/lib/postgres.sh exports the pg_ctl command, data folder and options it needs).
// Tests that use it must run serially: they take the server away from every other test.
#pragma once

#include <cstdlib>
#include <stdexcept>
#include <string>

namespace ds_test {

class PgOutage {
public:
    /// `logName`: the server's log file for the restart, beside its data folder.
    explicit PgOutage(std::string logName = "restart.log")
        : ctl_(required("DESKSTREAM_TEST_PG_CTL")),
          data_(required("DESKSTREAM_TEST_PG_DATA")),
          opts_(required("DESKSTREAM_TEST_PG_OPTS")),
          logName_(std::move(logName)) {}
    ~PgOutage() {
        try {
            if (stopped_) start();
        } catch (...) {}
    }
    PgOutage(const PgOutage&) = delete;
    PgOutage& operator=(const PgOutage&) = delete;

    void stop() {
        run("runuser -u postgres -- '" + ctl_ + "' -D '" + data_ + "' -m fast -w -t 30 stop");
        stopped_ = true;
    }
    void start() {
        run("runuser -u postgres -- '" + ctl_ + "' -D '" + data_ + "' -l '" + data_ + "/../" +
            logName_ + "' -w -t 60 -o '" + opts_ + "' start");
        stopped_ = false;
    }

private:
    static std::string required(const char* name) {
        const char* v = std::getenv(name);
        if (!v || !*v)
            throw std::runtime_error(std::string(name) +
                                     " is not set: run the suite with scripts/test.sh "
                                     "(scripts/lib/postgres.sh exports it)");
        return v;
    }
    static void run(const std::string& cmd) {
        if (std::system((cmd + " >/dev/null 2>&1").c_str()) != 0)
            throw std::runtime_error("command failed: " + cmd);
    }
    std::string ctl_, data_, opts_, logName_;
    bool stopped_ = false;
};

}  // namespace ds_test
