// WsConnection: the I/O of one WebSocket (private to the relay).
//
// Why this shape (docs/relay.md, "Poco 1.11 WebSocket"): Poco 1.11 WebSocket is blocking and
// not thread-safe for concurrent senders, hands PING/PONG/CLOSE to the application, and a
// receive timeout in the middle of a frame leaves the stream out of sync. So:
//   * one WRITER thread per connection drains a bounded queue; any thread may enqueue, nobody
//     else ever calls sendFrame. A slow peer only fills its own queue (then it is dropped).
//   * the READER (the HTTPServer thread that accepted the socket) sleeps in poll() until bytes
//     arrive, the handler's next deadline passes, or another thread wakes it (a close asked
//     for elsewhere, a failed send); it only calls receiveFrame when bytes are there, so a
//     receive timeout inside receiveFrame is always "mid-frame" and fatal. An idle connection
//     costs no wake-ups between its deadlines (heartbeat pings).
//   * PING is answered with PONG, CLOSE with CLOSE, fragments are reassembled under the
//     message limit, RSV bits / unknown opcodes / oversized control frames close with 1002.
// Binary payloads are queued as shared_ptr so one frame buffer can later go to many viewers.
#pragma once

#include <Poco/Net/WebSocket.h>

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
};

struct WsLimits {
    int64_t maxMessageBytes = 16 * 1024 * 1024;
    int64_t sendTimeoutMs = 10000;
    int64_t receiveTimeoutMs = 10000;
    int64_t closeGraceMs = 1000;
    size_t controlQueueLimit = 1024;
    size_t frameQueueLimit = 3;  // binary messages held for a slow peer (latest wins)
};

class WsConnection {
public:
    WsConnection(std::unique_ptr<Poco::Net::WebSocket> socket, WsLimits limits);
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
        int flags = 0;     // Poco::Net::WebSocket FRAME_* flags incl. opcode
        std::string text;  // text and control frames
        Bytes binary;      // binary messages (shared, never copied per peer)
    };
    void writerLoop();
    void enqueueClose(int code, const std::string& reason, bool discardQueued);
    void sendControl(int opcode, const std::string& payload);  // enqueue a control frame
    // After a fatal framing error: wait for our CLOSE to go out, then read and discard raw
    // bytes until the peer closes or the deadline passes.
    void lingerAfterFatal(std::chrono::steady_clock::time_point deadline);
    bool drainRaw(std::chrono::milliseconds wait);  // false on EOF / error
    // Sleeps until the socket is readable (true), or the deadline passed / wake() (false).
    bool waitReadable(std::chrono::steady_clock::time_point deadline);

    std::unique_ptr<Poco::Net::WebSocket> ws_;
    WsLimits limits_;
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
