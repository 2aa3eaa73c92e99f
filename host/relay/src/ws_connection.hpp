// WsConnection: the I/O of one WebSocket (private to the relay).
//
// Why this shape (docs/poco-pitfalls.md; docs/relay.md, "WebSocket conformance"): Poco 1.11
// WebSocket is blocking, not thread-safe for concurrent senders, and its receiveFrame blocks
// until a whole frame is there (a peer dripping one byte every few seconds holds it forever).
// So the relay speaks WebSocket itself over the raw StreamSocket, with the sans-IO codec of
// core (deskstream/ws_codec.hpp):
//   * one WRITER thread per connection drains a bounded queue; any thread may enqueue, nobody
//     else ever sends on the socket. A slow peer only fills its own queue (then it is dropped).
//   * the READER (the HTTPServer thread that accepted the socket) sleeps in poll() until bytes
//     arrive, a deadline passes (the handler's, or the frame-completion deadline of a frame
//     that has begun), or another thread wakes it (a close asked for elsewhere, a failed
//     send). It reads what is there without waiting for more and feeds the parser, so every
//     deadline is checked however slowly the bytes come. An idle connection costs no wake-ups
//     between its deadlines (heartbeat pings).
//   * PING is answered with PONG (same payload), a valid CLOSE with CLOSE (same code); a
//     violation found by the parser (1002, 1007, 1009) closes with its code.
// Binary payloads are queued as shared_ptr so one frame buffer can later go to many viewers.
#pragma once

#include <Poco/Net/StreamSocket.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace deskstream::relay {

// Same type as core::FrameBytes: one received frame shared by every viewer it goes to.
using Bytes = std::shared_ptr<const std::vector<std::uint8_t>>;

// What the reader hands to the protocol layer.
class WsHandler {
public:
    virtual ~WsHandler() = default;
    virtual void onText(std::string&& message) = 0;
    virtual void onBinary(std::vector<std::uint8_t>&& message) = 0;
    // Called when nextDeadline() has passed; drives heartbeat and handshake timers.
    virtual void onTick(std::chrono::steady_clock::time_point now) = 0;
    // When the reader must call onTick next (time_point::max(): only when something arrives).
    // Asked after every event; a change made by another thread must call WsConnection::wake().
    virtual std::chrono::steady_clock::time_point nextDeadline() const = 0;
    // A protocol-level violation found by the I/O layer (too large, bad framing). The
    // connection is already closing when this is called; used for counters and the log.
    virtual void onTransportError(int closeCode, const std::string& what) = 0;
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
    size_t frameQueueLimit = 3;  // binary messages held for a slow peer (latest wins)
};

class WsConnection {
public:
    // `socket`: the connection after the 101 answer was sent; `early`: bytes the HTTP layer had
    // already read past the upgrade request (fed to the parser before anything else).
    WsConnection(Poco::Net::StreamSocket socket, WsLimits limits,
                 std::vector<std::uint8_t> early = {});
    ~WsConnection();  // joins the writer

    // Runs the reader loop on the calling thread until the connection ends. Returns the close
    // code that ended it (ours or the peer's; 1006 when the socket just died).
    int run(WsHandler& handler);

    // --- any thread ---
    // Queues a text message. False when the connection is closing or its control queue is
    // full (the connection is then closed with 1008 "too slow").
    bool sendText(std::string message);
    // Queues a binary message; when frameQueueLimit messages already wait, the oldest waiting
    // one is dropped (latest wins) and counted in droppedFrames().
    bool sendBinary(Bytes message);
    // Frames can also come from a source the writer pulls from (the core FanOut's per-viewer
    // queue): notifyFrames() wakes the writer, which calls the source until it returns null.
    // Set before any notifyFrames(); called on the writer thread only.
    void setFrameSource(std::function<Bytes()> source) { frameSource_ = std::move(source); }
    void notifyFrames();
    // Wakes the reader so it asks the handler for its deadline again. Any thread.
    void wake();
    // Sends CLOSE(code, reason) after what is already queued, then stops sending. Idempotent.
    void close(int code, const std::string& reason);
    // Like close(), but discards whatever is still queued (replacement, shutdown).
    void closeNow(int code, const std::string& reason);

    bool closing() const { return closing_.load(); }
    int closeCode() const { return closeCode_.load(); }
    uint64_t droppedFrames() const { return droppedFrames_.load(); }
    std::string peer() const { return peer_; }

private:
    struct Item {
        std::uint8_t opcode = 0;  // core::ws::Opcode
        std::string text;         // text and control frames
        Bytes binary;             // binary messages (shared, never copied per peer)
    };
    void writerLoop();
    void enqueueClose(int code, const std::string& reason, bool discardQueued);
    void sendControl(std::uint8_t opcode, const std::string& payload);  // enqueue a control frame
    void sendFrame(std::uint8_t opcode, const void* data, std::size_t size);  // writer thread
    // Reads what the socket has now (never waits for more) into buf; 0 at EOF, -1 when nothing
    // was there after all. Throws on a socket error.
    int readAvailable(std::uint8_t* buf, int size);
    // After a fatal framing error: wait for our CLOSE to go out, then read and discard raw
    // bytes until the peer closes or the deadline passes.
    void lingerAfterFatal(std::chrono::steady_clock::time_point deadline);
    bool drainRaw(std::chrono::milliseconds wait);  // false on EOF / error
    // Sleeps until the socket is readable (true), or the deadline passed / wake() (false).
    bool waitReadable(std::chrono::steady_clock::time_point deadline);

    Poco::Net::StreamSocket socket_;
    WsLimits limits_;
    std::vector<std::uint8_t> early_;
    std::string peer_;

    std::mutex mutex_;
    std::condition_variable cv_;
    std::deque<Item> control_;  // text + control frames, FIFO
    std::deque<Item> frames_;   // binary messages, bounded, latest wins
    bool stopWriter_ = false;
    bool framesReady_ = false;  // notifyFrames() was called since the writer last pulled
    uint64_t frameSignal_ = 0;  // counts notifyFrames(), so a wake-up during a pull is not lost
    std::function<Bytes()> frameSource_;
    std::atomic<bool> closing_{false};
    std::atomic<bool> closeSent_{false};
    std::atomic<bool> broken_{false};  // a send failed: the socket is unusable
    std::atomic<int> closeCode_{0};
    std::atomic<uint64_t> droppedFrames_{0};
    std::chrono::steady_clock::time_point closeRequestedAt_{};
    std::thread writer_;
    int wakeFd_ = -1;  // eventfd: wake() makes it readable, the reader drains it
};

}  // namespace deskstream::relay
