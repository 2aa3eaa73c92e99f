// WsConnection: one WebSocket served by an I/O loop (private to the relay).
//
// Why this shape (docs/relay.md, "Event-driven I/O"): the relay serves every WebSocket from a
// fixed pool of epoll loops (io_loop.hpp) instead of two threads per connection. A connection
// belongs to one loop for its whole life; on that loop's thread it
//   * reads until the socket would block (TLS buffers whole records, so epoll may not wake for
//     bytes already decrypted) and feeds the bytes to the sans-IO parser (core ws::Parser);
//   * hands complete messages to its WsHandler (the protocol layer: Session);
//   * writes its queued frames with non-blocking sends, resuming a partial write at its offset;
//   * fires its timers: the handler's nextDeadline(), the frame-completion deadline (a frame or
//     fragmented message must complete within receiveTimeoutMs of its first byte), the send
//     deadline (no progress for sendTimeoutMs: the peer does not read) and the close grace.
// Any other thread only enqueues (sendText, notifyFrames, close) and asks the loop to look at
// the connection (an eventfd wake, at most one per loop until it ran).
// Outgoing frames are complete wire images (header + payload): a video frame's image is built
// once and shared by reference count by every viewer it goes to.
#pragma once

#include "deskstream/ws_codec.hpp"

#include <Poco/Net/StreamSocket.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace deskstream::relay {

// Same type as core::FrameBytes: one buffer shared by every viewer it goes to. Frames handed to
// a WsConnection (its frame source) are complete server frames (wsWireImage).
using Bytes = std::shared_ptr<const std::vector<std::uint8_t>>;

// A complete unmasked server frame (header + payload) for `payload`.
Bytes wsWireImage(core::ws::Opcode op, const std::uint8_t* payload, std::size_t size);

class IoLoop;

// What the connection hands to the protocol layer. Called on the connection's loop thread only.
class WsHandler {
public:
    virtual ~WsHandler() = default;
    virtual void onText(std::string&& message) = 0;
    virtual void onBinary(std::vector<std::uint8_t>&& message) = 0;
    // Called when nextDeadline() has passed; drives heartbeat and handshake timers.
    virtual void onTick(std::chrono::steady_clock::time_point now) = 0;
    // When the loop must call onTick next (time_point::max(): only when something arrives).
    // Asked after every event; a change made by another thread must call WsConnection::wake().
    virtual std::chrono::steady_clock::time_point nextDeadline() const = 0;
    // A protocol-level violation found by the I/O layer (too large, bad framing, a frame not
    // completed in time). The connection is already closing; used for counters and the log.
    virtual void onTransportError(int closeCode, const std::string& what) = 0;
    // The connection ended (the close code that ended it: ours, the peer's, 1006 when the
    // socket just died). The last call; the connection drops its reference afterwards.
    virtual void onClosed(int closeCode) = 0;
    // The largest message the peer may send now (bytes). The relay answers a handshake-sized
    // limit until the handshake is accepted, then max_message_bytes (docs/relay.md, "WebSocket
    // conformance"). Asked when the connection starts and after each message; the connection
    // applies the smaller of this and WsLimits::maxMessageBytes (a message already begun that
    // exceeds a lowered limit ends the connection with 1009).
    virtual std::uint64_t messageLimit() const { return UINT64_MAX; }
};

struct WsLimits {
    int64_t maxMessageBytes = 16 * 1024 * 1024;
    int64_t maxTextBytes = 64 * 1024;  // text messages, enforced while reassembling
    int64_t sendTimeoutMs = 10000;
    // Frame-completion deadline: a frame (or a fragmented message) must be complete this long
    // after its first byte arrived, however slowly the bytes come; otherwise 1008.
    int64_t receiveTimeoutMs = 10000;
    int64_t closeGraceMs = 1000;
    size_t controlQueueLimit = 1024;
};

class WsConnection : public std::enable_shared_from_this<WsConnection> {
public:
    // `socket` is the upgraded connection (plain or TLS), `early` bytes the HTTP layer had
    // already read past the upgrade request.
    WsConnection(Poco::Net::StreamSocket socket, std::vector<std::uint8_t> early, WsLimits limits);
    ~WsConnection();

    // Hands the connection to `loop`; from then on `handler` is called on the loop's thread.
    void start(IoLoop& loop, std::shared_ptr<WsHandler> handler);

    // --- any thread ---
    // Queues a text message. False when the connection is closing or its control queue is
    // full (the connection is then closed with 1008 "too slow").
    bool sendText(std::string message);
    // Frames come from a source the loop pulls from (the core FanOut's per-viewer queue):
    // notifyFrames() makes the loop call the source until it returns null. Set before start().
    void setFrameSource(std::function<Bytes()> source) { frameSource_ = std::move(source); }
    void notifyFrames();
    // Makes the loop ask the handler for its deadline again.
    void wake();
    // Sends CLOSE(code, reason) after what is already queued, then stops sending. Idempotent.
    void close(int code, const std::string& reason);
    // Like close(), but discards whatever is still queued (replacement, shutdown).
    void closeNow(int code, const std::string& reason);

    bool closing() const { return closing_.load(); }
    int closeCode() const { return closeCode_.load(); }
    std::string peer() const { return peer_; }

private:
    friend class IoLoop;
    using Clock = std::chrono::steady_clock;
    struct Out {
        Bytes bytes;
        std::size_t offset = 0;
        bool isClose = false;
    };

    // Loop side (IoLoop calls these on its thread).
    int fd() const { return fd_; }
    void onAdopted();                     // registered with the loop: the early bytes
    void onEvents(std::uint32_t events);  // epoll said readable / writable / hung up
    void onPending();                     // another thread queued something or asked for a wake
    void onTimer(Clock::time_point now);
    void onLoopStopping();  // the loop stops: end at once (1006 unless a code is known)
    Clock::time_point deadline() const { return deadline_; }
    std::uint32_t wantedEvents() const;
    bool ended() const { return ended_; }

    void readAvailable();
    void feed(const std::uint8_t* data, std::size_t size);
    void dispatch(core::ws::Message& message);
    void flush();
    bool nextOut();  // takes the next item to write into out_; false when none
    void enqueueClose(int code, const std::string& reason, bool discardQueued);
    void queueControl(Bytes frame);
    void requestEnd(int code);
    // After any work: end if asked, else recompute the deadline and the epoll interest.
    void afterWork();
    void finishEnd();
    void schedule();            // asks the loop to call onPending (any thread)
    void updateParserLimits();  // from WsLimits and the handler's messageLimit()

    Poco::Net::StreamSocket socket_;
    std::vector<std::uint8_t> early_;
    WsLimits limits_;
    std::string peer_;
    int fd_ = -1;
    bool secure_ = false;
    IoLoop* loop_ = nullptr;
    std::shared_ptr<WsHandler> handler_;
    std::function<Bytes()> frameSource_;

    // Loop thread only.
    core::ws::Parser parser_;
    std::vector<core::ws::Message> messages_;
    Out out_;
    bool wantWrite_ = false;      // a send would block: wait for EPOLLOUT
    bool sslWantsWrite_ = false;  // a TLS receive needs the socket writable to go on
    bool draining_ = false;       // after a violation: read and discard until the peer is done
    bool closeSent_ = false;
    bool peerClosed_ = false;  // the peer's CLOSE arrived
    bool sendShutdown_ = false;
    bool endRequested_ = false;
    bool ended_ = false;
    int endCode_ = 0;
    int peerCloseCode_ = 0;
    std::optional<Clock::time_point> messageStartedAt_;  // first byte of the pending frame
    std::optional<Clock::time_point> writeBlockedSince_;
    Clock::time_point lastTick_{};
    Clock::time_point deadline_ = Clock::time_point::max();

    // Shared with other threads.
    std::mutex mutex_;
    std::deque<Out> control_;   // text + control frames, FIFO
    bool framesReady_ = false;  // notifyFrames() was called since the loop last pulled
    uint64_t frameSignal_ = 0;  // counts notifyFrames(), so a wake-up during a pull is not lost
    Clock::time_point closeRequestedAt_{};
    std::atomic<bool> closing_{false};
    std::atomic<int> closeCode_{0};
    std::atomic<bool> scheduled_{false};  // in the loop's pending list
};

}  // namespace deskstream::relay
