// IoLoop / IoLoops: the relay's fixed pool of I/O threads, each an epoll loop over the
// WebSockets it was given (docs/relay.md, "Event-driven I/O"). A loop owns its connections:
// their reads, writes, timers and protocol callbacks all run on its one thread. Other threads
// reach a connection only by queueing onto it and scheduling it here (an eventfd wake, written
// once per batch: the loop drains the whole pending list when it wakes).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

namespace deskstream::relay {

class WsConnection;

class IoLoop {
public:
    explicit IoLoop(int index);
    ~IoLoop();  // stop()
    IoLoop(const IoLoop&) = delete;
    IoLoop& operator=(const IoLoop&) = delete;

    void start();
    // Ends every connection still here (1006 unless its close was already decided), joins.
    void stop();

    // Any thread: the loop takes the connection (registers its socket, feeds its early bytes).
    void adopt(std::shared_ptr<WsConnection> connection);
    // Any thread: the loop calls connection->onPending() soon.
    void schedule(std::shared_ptr<WsConnection> connection);
    bool onLoopThread() const { return std::this_thread::get_id() == threadId_.load(); }
    size_t connectionCount() const { return count_.load(); }
    // Scratch buffer for reads (the loop's thread only; connections read one after another).
    std::vector<std::uint8_t>& readBuffer() { return readBuffer_; }

private:
    using Clock = std::chrono::steady_clock;
    void run();
    void wakeUp();
    void runPending();
    void fireTimers();
    // After a connection did work: its epoll interest and timer follow its state.
    void settle(WsConnection* c);
    void forget(WsConnection* c);

    const int index_;
    int epollFd_ = -1;
    int wakeFd_ = -1;
    std::thread thread_;
    std::atomic<std::thread::id> threadId_{};
    std::atomic<bool> stopping_{false};
    std::atomic<size_t> count_{0};

    std::mutex pendingMutex_;
    std::vector<std::shared_ptr<WsConnection>> pending_;
    std::vector<std::shared_ptr<WsConnection>> adopting_;
    bool wakeWritten_ = false;  // the eventfd was written and the loop has not drained it yet
    bool closed_ = true;        // not running: adopt() ends a connection at once

    // Loop thread only.
    std::unordered_map<WsConnection*, std::shared_ptr<WsConnection>> connections_;
    std::unordered_map<WsConnection*, std::pair<Clock::time_point, std::uint32_t>> registered_;
    std::set<std::pair<Clock::time_point, WsConnection*>> timers_;
    // Ended during this batch of events: kept alive until the batch is done (epoll may still
    // hold an event naming it).
    std::vector<std::shared_ptr<WsConnection>> graveyard_;
    std::vector<std::uint8_t> readBuffer_;
};

// The pool: `threads` loops; a new connection goes to the loop with the fewest connections.
class IoLoops {
public:
    explicit IoLoops(int threads);
    void start();
    void stop();
    IoLoop& pick();
    size_t size() const { return loops_.size(); }

private:
    std::vector<std::unique_ptr<IoLoop>> loops_;
};

}  // namespace deskstream::relay
