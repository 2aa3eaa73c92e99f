// IoLoop: one epoll thread over its WebSockets; IoLoops: the fixed pool (see io_loop.hpp).
#include "io_loop.hpp"

#include "ws_connection.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

namespace deskstream::relay {

namespace {
constexpr int kMaxEvents = 256;
constexpr size_t kReadChunk = 256 * 1024;
}  // namespace

IoLoop::IoLoop(int index) : index_(index), readBuffer_(kReadChunk) {
    epollFd_ = ::epoll_create1(EPOLL_CLOEXEC);
    if (epollFd_ < 0)
        throw std::runtime_error(std::string("epoll_create1: ") + std::strerror(errno));
    wakeFd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wakeFd_ < 0) {
        ::close(epollFd_);
        throw std::runtime_error(std::string("eventfd: ") + std::strerror(errno));
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = nullptr;  // the wake fd
    ::epoll_ctl(epollFd_, EPOLL_CTL_ADD, wakeFd_, &ev);
}

IoLoop::~IoLoop() {
    stop();
    ::close(wakeFd_);
    ::close(epollFd_);
}

void IoLoop::start() {
    if (thread_.joinable()) return;
    stopping_ = false;
    {
        std::lock_guard<std::mutex> lock(pendingMutex_);
        closed_ = false;
    }
    thread_ = std::thread([this] { run(); });
}

void IoLoop::stop() {
    if (!thread_.joinable()) return;
    stopping_ = true;
    wakeUp();
    thread_.join();
    // An upgrade that finished while the loop was stopping: nobody will serve it, it ends here.
    std::vector<std::shared_ptr<WsConnection>> late;
    {
        std::lock_guard<std::mutex> lock(pendingMutex_);
        closed_ = true;
        late.swap(adopting_);
        pending_.clear();
    }
    count_.fetch_sub(late.size());
    for (auto& c : late) c->onLoopStopping();
}

void IoLoop::adopt(std::shared_ptr<WsConnection> connection) {
    bool wake = false;
    {
        std::lock_guard<std::mutex> lock(pendingMutex_);
        if (!closed_) {
            count_.fetch_add(1);
            adopting_.push_back(connection);
            wake = !wakeWritten_;
            wakeWritten_ = true;
            connection.reset();
        }
    }
    if (wake) {
        const uint64_t one = 1;
        [[maybe_unused]] const ssize_t n = ::write(wakeFd_, &one, sizeof one);
    }
    // Not taken: the loop is not running (the relay is stopping), so the connection ends here.
    if (connection) connection->onLoopStopping();
}

void IoLoop::schedule(std::shared_ptr<WsConnection> connection) {
    {
        std::lock_guard<std::mutex> lock(pendingMutex_);
        pending_.push_back(std::move(connection));
        // On the loop's own thread the list is drained before the loop sleeps again.
        if (wakeWritten_ || onLoopThread()) return;
        wakeWritten_ = true;
    }
    const uint64_t one = 1;
    [[maybe_unused]] const ssize_t n = ::write(wakeFd_, &one, sizeof one);
}

void IoLoop::wakeUp() {
    {
        std::lock_guard<std::mutex> lock(pendingMutex_);
        wakeWritten_ = true;
    }
    const uint64_t one = 1;
    [[maybe_unused]] const ssize_t n = ::write(wakeFd_, &one, sizeof one);
}

void IoLoop::settle(WsConnection* c) {
    if (c->ended()) {
        forget(c);
        return;
    }
    auto it = registered_.find(c);
    if (it == registered_.end()) return;
    const std::uint32_t events = c->wantedEvents();
    if (events != it->second.second) {
        epoll_event ev{};
        ev.events = events;
        ev.data.ptr = c;
        ::epoll_ctl(epollFd_, EPOLL_CTL_MOD, c->fd(), &ev);
        it->second.second = events;
    }
    const Clock::time_point d = c->deadline();
    if (d != it->second.first) {
        if (it->second.first != Clock::time_point::max()) timers_.erase({it->second.first, c});
        if (d != Clock::time_point::max()) timers_.insert({d, c});
        it->second.first = d;
    }
}

void IoLoop::forget(WsConnection* c) {
    auto it = registered_.find(c);
    if (it != registered_.end()) {
        if (it->second.first != Clock::time_point::max()) timers_.erase({it->second.first, c});
        registered_.erase(it);
    }
    auto conn = connections_.find(c);
    if (conn != connections_.end()) {
        graveyard_.push_back(std::move(conn->second));
        connections_.erase(conn);
        count_.fetch_sub(1);
    }
}

void IoLoop::runPending() {
    std::vector<std::shared_ptr<WsConnection>> adopting;
    std::vector<std::shared_ptr<WsConnection>> pending;
    {
        std::lock_guard<std::mutex> lock(pendingMutex_);
        adopting.swap(adopting_);
        pending.swap(pending_);
    }
    for (auto& c : adopting) {
        WsConnection* raw = c.get();
        connections_[raw] = c;
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLRDHUP;
        ev.data.ptr = raw;
        if (::epoll_ctl(epollFd_, EPOLL_CTL_ADD, raw->fd(), &ev) != 0) {
            raw->requestEnd(1006);
        } else {
            registered_[raw] = {Clock::time_point::max(), std::uint32_t{EPOLLIN | EPOLLRDHUP}};
        }
        raw->onAdopted();
        settle(raw);
    }
    for (auto& c : pending) {
        c->scheduled_ = false;
        if (c->ended() || connections_.find(c.get()) == connections_.end()) continue;
        c->onPending();
        settle(c.get());
    }
}

void IoLoop::fireTimers() {
    const auto now = Clock::now();
    // Collected first: a connection's timer entry moves while it is handled.
    std::vector<WsConnection*> due;
    for (auto it = timers_.begin(); it != timers_.end() && it->first <= now; ++it)
        due.push_back(it->second);
    for (WsConnection* c : due) {
        if (c->ended() || registered_.find(c) == registered_.end()) continue;
        c->onTimer(now);
        settle(c);
    }
}

void IoLoop::run() {
    threadId_ = std::this_thread::get_id();
    // Named, so a look at /proc/<pid>/task tells the I/O threads apart.
    const std::string name = "ds-relay-io-" + std::to_string(index_);
    ::pthread_setname_np(::pthread_self(), name.substr(0, 15).c_str());
    epoll_event events[kMaxEvents];
    while (!stopping_) {
        runPending();
        bool more = false;
        {
            // Work queued by this thread during runPending: look at the sockets without
            // sleeping, then do it (so one busy connection cannot starve the others).
            std::lock_guard<std::mutex> lock(pendingMutex_);
            more = !pending_.empty() || !adopting_.empty();
        }
        graveyard_.clear();
        int timeoutMs = -1;
        if (more) {
            timeoutMs = 0;
        } else if (!timers_.empty()) {
            const auto wait = timers_.begin()->first - Clock::now();
            // Rounded up: waking a little late is harmless, waking early would spin until due.
            const auto us = std::chrono::duration_cast<std::chrono::microseconds>(wait).count();
            timeoutMs =
                us <= 0 ? 0 : static_cast<int>(std::min<int64_t>((us + 999) / 1000, 3600000));
        }
        const int n = ::epoll_wait(epollFd_, events, kMaxEvents, timeoutMs);
        if (n < 0 && errno != EINTR) break;
        for (int i = 0; i < n; ++i) {
            auto* c = static_cast<WsConnection*>(events[i].data.ptr);
            if (c == nullptr) {
                uint64_t drained = 0;
                [[maybe_unused]] const ssize_t r = ::read(wakeFd_, &drained, sizeof drained);
                std::lock_guard<std::mutex> lock(pendingMutex_);
                wakeWritten_ = false;
                continue;
            }
            if (c->ended() || registered_.find(c) == registered_.end()) continue;
            c->onEvents(events[i].events);
            settle(c);
        }
        fireTimers();
    }
    // Stopping: every connection still here ends now.
    runPending();
    std::vector<WsConnection*> all;
    for (auto& entry : connections_) all.push_back(entry.first);
    for (WsConnection* c : all) {
        c->onLoopStopping();
        settle(c);
    }
    graveyard_.clear();
    timers_.clear();
    registered_.clear();
    connections_.clear();
}

IoLoops::IoLoops(int threads) {
    const int n = std::max(1, threads);
    for (int i = 0; i < n; ++i) loops_.push_back(std::make_unique<IoLoop>(i));
}

void IoLoops::start() {
    for (auto& l : loops_) l->start();
}

void IoLoops::stop() {
    for (auto& l : loops_) l->stop();
}

IoLoop& IoLoops::pick() {
    IoLoop* best = loops_.front().get();
    for (auto& l : loops_)
        if (l->connectionCount() < best->connectionCount()) best = l.get();
    return *best;
}

}  // namespace deskstream::relay
