// Fault-injection harness for tests/faults: the real deskstream binary as child processes,
// network namespaces from scripts/lib/netns.sh (partitions, delay, loss), a thread's entry into
// a namespace, WebSocket viewers that count frames, and /api/desktops polling.
#pragma once

#include <Poco/JSON/Object.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/WebSocket.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <sys/types.h>

namespace ds_faults {

using Clock = std::chrono::steady_clock;
using Json = Poco::JSON::Object::Ptr;

// Milliseconds since `t0`.
long msSince(Clock::time_point t0);

// Runs scripts/lib/netns.sh with `args`; throws with its output on a non-zero status.
void netns(const std::string& args);

// Namespaces of one test: up in the constructor, down (with any process left inside) in the
// destructor. Prefix: at most 8 characters.
class Namespaces {
public:
    explicit Namespaces(std::string prefix);
    ~Namespaces();
    std::string name(char side) const { return prefix_ + "-" + side; }
    void partition(char side) { netns("partition " + prefix_ + " " + side); }
    void heal(char side) { netns("heal " + prefix_ + " " + side); }
    void impair(char side, int delayMs, int jitterMs, int lossPct);
    void clear(char side) { netns("clear " + prefix_ + " " + side); }
    const std::string& prefix() const { return prefix_; }

private:
    std::string prefix_;
};

// Moves the calling thread into network namespace `ns` (by name, "" = the process's original
// one) for its lifetime, and back afterwards. Sockets keep the namespace they were made in.
class InNamespace {
public:
    explicit InNamespace(const std::string& ns);
    ~InNamespace();
    InNamespace(const InNamespace&) = delete;
    InNamespace& operator=(const InNamespace&) = delete;

private:
    int original_ = -1;
};

// The deskstream binary (optionally inside namespace `ns` via `ip netns exec`); stdout and
// stderr go to files.
class Process {
public:
    Process(const std::vector<std::string>& args, const std::string& ns = "");
    ~Process();
    void signal(int sig);
    // Exit status (128 + signal when killed); -1 when it did not end in time.
    int wait(std::chrono::milliseconds timeout);
    bool running();
    std::string err() const;
    pid_t pid() const { return pid_; }
    // Milliseconds until `text` appears in stderr, or -1 after timeoutMs.
    long waitForLog(const std::string& text, long timeoutMs, size_t fromOffset = 0) const;
    size_t errSize() const;

private:
    pid_t pid_ = -1;
    int status_ = -1;
    std::string errPath_, outPath_;
};

// A folder for one test's state, under the build folder.
std::string tempDir(const std::string& name);
// Removes this process's folders made by tempDir (call when no child runs any more).
void removeTempDirs();
// Common --set options: plugin path, state dir, synthetic capture, JPEG encoder, SQLite store.
std::vector<std::string> baseArgs(const std::string& stateDir);
std::string mint(bool desktop, const std::string& sub);  // HS256 token for kSecret
// A raw agent WebSocket to /ws/agent on 127.0.0.1:port over `session` that has sent its handshake
// (a valid desktop token for `clientId`, one 64x48 monitor); receives time out after 10 s.
Poco::Net::WebSocket rawAgentSocket(Poco::Net::HTTPClientSession& session,
                                    const std::string& clientId);
extern const char* const kSecret;

// GET on host:port (from the calling thread's namespace); status 0 when unreachable.
std::pair<int, std::string> httpGet(const std::string& host, uint16_t port,
                                    const std::string& path);
// The desktop entry of `clientId` in /api/desktops; null when absent or unreachable.
Json desktop(const std::string& host, uint16_t port, const std::string& clientId);
// Waits for GET /healthz to answer 200.
bool waitHealthy(const std::string& host, uint16_t port, long timeoutMs);
bool eventually(const std::function<bool()>& cond, long timeoutMs, long stepMs = 20);
Json parse(const std::string& text);
// A free TCP port on 127.0.0.1 of the calling thread's namespace.
uint16_t freePort();
// psql as the test superuser over TCP (DESKSTREAM_TEST_PG from scripts/lib/postgres.sh); throws
// with psql's output on failure or when the variable is missing.
std::string psql(const std::string& sql);
// POST with a JSON body; status 0 when unreachable.
std::pair<int, std::string> httpPost(const std::string& host, uint16_t port,
                                     const std::string& path, const std::string& body);

// A viewer on its own thread: connects from namespace `ns`, subscribes to `desktopId`, counts
// frames and acks each like the browser; answers pings; can stop reading (a stalled tab).
class Viewer {
public:
    Viewer(const std::string& ns, const std::string& host, uint16_t port,
           const std::string& desktopId);
    ~Viewer();
    bool subscribed() const { return subscribed_; }
    uint64_t frames() const { return frames_; }
    bool closed() const { return closed_; }
    int closeCode() const { return closeCode_; }
    void stopReading() { reading_ = false; }
    void resumeReading() { reading_ = true; }
    // Longest time between two frames since the last call (ms).
    long takeMaxGapMs();
    std::string error() const;

private:
    void run(std::string ns, std::string host, uint16_t port);
    std::string desktop_;
    std::thread thread_;
    std::atomic<bool> stop_{false}, reading_{true}, subscribed_{false}, closed_{false};
    std::atomic<int> closeCode_{0};
    std::atomic<uint64_t> frames_{0};
    std::atomic<long> lastFrameMs_{0}, maxGapMs_{0};
    mutable std::mutex mutex_;
    std::string error_;
    Clock::time_point t0_ = Clock::now();
};

}  // namespace ds_faults
