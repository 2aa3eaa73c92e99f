// HttpListener: Poco's HTTP server with a first-request deadline counted from the accept.
#include "http_listener.hpp"

#include <Poco/Net/HTTPServerConnection.h>
#include <Poco/Net/StreamSocket.h>
#include <Poco/Net/TCPServerConnection.h>
#include <Poco/Net/TCPServerConnectionFactory.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <unordered_map>
#include <unordered_set>

namespace deskstream::relay {

using Clock = std::chrono::steady_clock;

struct HttpListener::Shared {
    Shared(Poco::Net::HTTPRequestHandlerFactory::Ptr f, Poco::Net::HTTPServerParams::Ptr p,
           std::chrono::milliseconds within)
        : factory(std::move(f)), params(std::move(p)), firstRequestWithin(within) {}

    const Poco::Net::HTTPRequestHandlerFactory::Ptr factory;
    const Poco::Net::HTTPServerParams::Ptr params;
    const std::chrono::milliseconds firstRequestWithin;
    std::atomic<bool> stopped{false};

    // The sockets being served, so that stopAll() can end them (HTTPServer does this through
    // the factory's serverStopped event, which only HTTPServer may raise).
    std::mutex liveMutex;
    std::unordered_set<Poco::Net::StreamSocket*> live;

    // Accept time by socket descriptor. An entry of a connection the dispatcher refused (queue
    // full) stays until its descriptor number is accepted again: at most one per descriptor.
    std::mutex mutex;
    std::unordered_map<int, Clock::time_point> acceptedAt;

    void stamp(int fd) {
        std::lock_guard<std::mutex> lock(mutex);
        acceptedAt[fd] = Clock::now();
    }
    Clock::time_point take(int fd) {
        std::lock_guard<std::mutex> lock(mutex);
        auto it = acceptedAt.find(fd);
        if (it == acceptedAt.end()) return Clock::now();
        const Clock::time_point t = it->second;
        acceptedAt.erase(it);
        return t;
    }
};

namespace {

// Runs on the acceptor thread for every accepted connection, before it is queued.
class AcceptStamp : public Poco::Net::TCPServerConnectionFilter {
public:
    explicit AcceptStamp(std::shared_ptr<HttpListener::Shared> shared)
        : shared_(std::move(shared)) {}
    bool accept(const Poco::Net::StreamSocket& socket) override {
        shared_->stamp(socket.impl()->sockfd());
        return true;
    }

private:
    std::shared_ptr<HttpListener::Shared> shared_;
};

class FirstRequestConnection : public Poco::Net::TCPServerConnection {
public:
    FirstRequestConnection(const Poco::Net::StreamSocket& socket,
                           std::shared_ptr<HttpListener::Shared> shared)
        : TCPServerConnection(socket), shared_(std::move(shared)) {}

    void run() override {
        const Clock::time_point deadline =
            shared_->take(socket().impl()->sockfd()) + shared_->firstRequestWithin;
        // Wait in short slices so that stopAll() ends the wait at once.
        for (;;) {
            if (shared_->stopped) return;
            const auto left = std::max(Clock::duration::zero(), deadline - Clock::now());
            const auto slice = std::min<Clock::duration>(left, std::chrono::milliseconds(100));
            const auto us = std::chrono::duration_cast<std::chrono::microseconds>(slice).count();
            if (socket().poll(Poco::Timespan(us), Poco::Net::Socket::SELECT_READ)) break;
            if (left == Clock::duration::zero()) return;  // nothing by the deadline: closed
        }
        {
            std::lock_guard<std::mutex> lock(shared_->liveMutex);
            if (shared_->stopped) return;
            shared_->live.insert(&socket());
        }
        struct Unlist {
            HttpListener::Shared& shared;
            Poco::Net::StreamSocket* socket;
            ~Unlist() {
                std::lock_guard<std::mutex> lock(shared.liveMutex);
                shared.live.erase(socket);
            }
        } unlist{*shared_, &socket()};
        Poco::Net::HTTPServerConnection(socket(), shared_->params, shared_->factory).run();
    }

private:
    std::shared_ptr<HttpListener::Shared> shared_;
};

class FirstRequestFactory : public Poco::Net::TCPServerConnectionFactory {
public:
    explicit FirstRequestFactory(std::shared_ptr<HttpListener::Shared> shared)
        : shared_(std::move(shared)) {}
    Poco::Net::TCPServerConnection* createConnection(
        const Poco::Net::StreamSocket& socket) override {
        return new FirstRequestConnection(socket, shared_);
    }

private:
    std::shared_ptr<HttpListener::Shared> shared_;
};

}  // namespace

HttpListener::HttpListener(Poco::Net::HTTPRequestHandlerFactory::Ptr factory,
                           Poco::ThreadPool& pool, const Poco::Net::ServerSocket& socket,
                           Poco::Net::HTTPServerParams::Ptr params,
                           std::chrono::milliseconds firstRequestWithin)
    : HttpListener(std::make_shared<Shared>(factory, params, firstRequestWithin), pool, socket,
                   params) {}

HttpListener::HttpListener(std::shared_ptr<Shared> shared, Poco::ThreadPool& pool,
                           const Poco::Net::ServerSocket& socket,
                           Poco::Net::HTTPServerParams::Ptr params)
    : TCPServer(new FirstRequestFactory(shared), pool, socket, params), shared_(std::move(shared)) {
    setConnectionFilter(new AcceptStamp(shared_));
}

HttpListener::~HttpListener() = default;

void HttpListener::stopAll() {
    stop();
    std::lock_guard<std::mutex> lock(shared_->liveMutex);
    shared_->stopped = true;
    for (Poco::Net::StreamSocket* s : shared_->live) {
        try {
            s->shutdown();  // the connection's blocking read ends; its thread returns
        } catch (const Poco::Exception&) {}  // already closed by the peer
    }
}

}  // namespace deskstream::relay
