// A program run as a child process by a test: stdin from /dev/null, stdout and stderr into
// files in a folder the test chooses (no pipe can fill up and block the child), the exit status
// with a timeout, signals, and a SIGKILL when the object goes away with the child still running.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

namespace ds_test {

class ChildProcess {
public:
    /// Starts `program` with `args` (argv[1..]); its stdout and stderr go to <dir>/stdout and
    /// <dir>/stderr. It runs in `cwd` when given. Throws std::runtime_error when it cannot start.
    ChildProcess(const std::string& program, std::vector<std::string> args, std::string dir,
                 const std::string& cwd = {});
    ~ChildProcess();
    ChildProcess(const ChildProcess&) = delete;
    ChildProcess& operator=(const ChildProcess&) = delete;

    void signal(int sig);
    /// True while the child has not exited (reaps it when it has).
    bool running();
    /// The exit status (128 + signal number when a signal ended it); -1, with the child killed,
    /// when it did not exit within `timeout`.
    int wait(std::chrono::milliseconds timeout);

    std::string out() const;     // what it wrote to stdout so far
    std::string err() const;     // what it wrote to stderr so far
    std::string output() const;  // both, labelled, for failure messages
    const std::string& dir() const { return dir_; }

private:
    std::string dir_;
    pid_t pid_ = -1;
    int status_ = -1;
};

}  // namespace ds_test
