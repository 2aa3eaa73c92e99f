// WsConnection: the socket I/O of one WebSocket: the reader loop (bytes -> core::ws::Parser ->
// messages), the writer thread and the close handshake (see ws_connection.hpp).
#include "ws_connection.hpp"

#include "deskstream/ws_codec.hpp"

#include <Poco/Exception.h>
#include <Poco/Net/NetException.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

namespace deskstream::relay {

namespace ws = core::ws;

namespace {

constexpr int kCloseAbnormal = 1006;
constexpr int kClosePolicy = 1008;
constexpr std::uint8_t kOpText = static_cast<std::uint8_t>(ws::Opcode::Text);
constexpr std::uint8_t kOpBinary = static_cast<std::uint8_t>(ws::Opcode::Binary);
constexpr std::uint8_t kOpClose = static_cast<std::uint8_t>(ws::Opcode::Close);
constexpr std::uint8_t kOpPong = static_cast<std::uint8_t>(ws::Opcode::Pong);
constexpr int kReadChunk = 64 * 1024;

// A CLOSE payload: the code and the reason cut to fit 125 bytes at a UTF-8 boundary.
std::string closePayload(int code, const std::string& reason) {
    const std::vector<std::uint8_t> frame =
        ws::encodeClose(static_cast<std::uint16_t>(code), reason);
    return std::string(frame.begin() + 2, frame.end());  // a <= 125-byte payload: 2-byte header
}

}  // namespace

WsConnection::WsConnection(Poco::Net::StreamSocket socket, WsLimits limits,
                           std::vector<std::uint8_t> early)
    : socket_(std::move(socket)), limits_(limits), early_(std::move(early)) {
    try {
        peer_ = socket_.peerAddress().toString();
    } catch (...) {
        peer_ = "?";
    }
    socket_.setNoDelay(true);  // small control messages must not wait behind Nagle (Poco #4756)
    socket_.setSendTimeout(Poco::Timespan(limits_.sendTimeoutMs * 1000));
    // Reads never wait (poll() first, then what is there): this only bounds a TLS record.
    socket_.setReceiveTimeout(Poco::Timespan(limits_.receiveTimeoutMs * 1000));
    wakeFd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wakeFd_ < 0) throw std::runtime_error(std::string("eventfd: ") + std::strerror(errno));
    writer_ = std::thread([this] { writerLoop(); });
}

WsConnection::~WsConnection() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stopWriter_ = true;
    }
    cv_.notify_all();
    // A writer blocked in a send to a peer that does not read is released at once.
    try {
        socket_.shutdown();
    } catch (...) {}
    if (writer_.joinable()) writer_.join();
    try {
        socket_.close();
    } catch (...) {}
    ::close(wakeFd_);
}

void WsConnection::wake() {
    const uint64_t one = 1;
    // EAGAIN only when the counter is saturated: the reader is woken anyway.
    [[maybe_unused]] const ssize_t n = ::write(wakeFd_, &one, sizeof one);
}

bool WsConnection::waitReadable(std::chrono::steady_clock::time_point deadline) {
    using namespace std::chrono;
    // Bytes already decrypted and buffered by TLS are not visible to poll().
    if (socket_.available() > 0) return true;
    const auto now = steady_clock::now();
    int timeoutMs = 0;
    if (deadline > now) {
        // Rounded up: waking a little late is harmless, waking early would spin until due.
        const auto wait = duration_cast<microseconds>(deadline - now);
        timeoutMs = static_cast<int>(std::min<int64_t>((wait.count() + 999) / 1000, 3600 * 1000));
    }
    pollfd fds[2] = {{static_cast<int>(socket_.impl()->sockfd()), POLLIN, 0}, {wakeFd_, POLLIN, 0}};
    const int r = ::poll(fds, 2, timeoutMs);
    if (r < 0) return false;  // EINTR: the caller loops and recomputes the deadline
    if (fds[1].revents != 0) {
        uint64_t drained = 0;
        [[maybe_unused]] const ssize_t n = ::read(wakeFd_, &drained, sizeof drained);
    }
    return fds[0].revents != 0;
}

int WsConnection::readAvailable(std::uint8_t* buf, int size) {
    try {
        // MSG_DONTWAIT: poll() said readable, but never block on a plain socket regardless.
        return socket_.receiveBytes(buf, size, socket_.secure() ? 0 : MSG_DONTWAIT);
    } catch (const Poco::TimeoutException&) {
        return -1;  // EAGAIN on the blocking socket: nothing there after all
    }
}

bool WsConnection::sendText(std::string message) {
    bool overflow = false;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        if (closing_) return false;
        if (control_.size() >= limits_.controlQueueLimit) {
            overflow = true;
        } else {
            control_.push_back(Item{kOpText, std::move(message), nullptr});
        }
    }
    if (overflow) {
        // The peer does not read: holding more would grow memory without bound.
        closeNow(kClosePolicy, "too slow");
        return false;
    }
    cv_.notify_one();
    return true;
}

bool WsConnection::sendBinary(Bytes message) {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        if (closing_) return false;
        while (frames_.size() >= limits_.frameQueueLimit && !frames_.empty()) {
            frames_.pop_front();
            droppedFrames_.fetch_add(1);
        }
        frames_.push_back(Item{kOpBinary, std::string(), std::move(message)});
    }
    cv_.notify_one();
    return true;
}

void WsConnection::notifyFrames() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        if (closing_) return;
        framesReady_ = true;
        ++frameSignal_;
    }
    cv_.notify_one();
}

void WsConnection::sendControl(std::uint8_t opcode, const std::string& payload) {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        if (closing_) return;
        if (control_.size() >= limits_.controlQueueLimit) return;  // pongs are best effort
        control_.push_back(Item{opcode, payload, nullptr});
    }
    cv_.notify_one();
}

void WsConnection::enqueueClose(int code, const std::string& reason, bool discardQueued) {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        if (closing_) return;
        closing_ = true;
        closeCode_ = code;
        closeRequestedAt_ = std::chrono::steady_clock::now();
        frames_.clear();
        if (discardQueued) control_.clear();
        control_.push_back(Item{kOpClose, closePayload(code, reason), nullptr});
    }
    cv_.notify_one();
    wake();  // the reader now waits at most close_grace_ms for the peer's CLOSE
}

void WsConnection::close(int code, const std::string& reason) { enqueueClose(code, reason, false); }
void WsConnection::closeNow(int code, const std::string& reason) {
    enqueueClose(code, reason, true);
}

void WsConnection::sendFrame(std::uint8_t opcode, const void* data, std::size_t size) {
    std::uint8_t header[10];
    const std::size_t h = ws::writeHeader(header, static_cast<ws::Opcode>(opcode), size);
    if (size <= 4096) {
        // Small frames go out in one write (one TCP segment with TCP_NODELAY).
        std::uint8_t frame[10 + 4096];
        std::memcpy(frame, header, h);
        if (size > 0) std::memcpy(frame + h, data, size);
        socket_.sendBytes(frame, static_cast<int>(h + size));
        return;
    }
    // Large payloads are sent from the shared buffer itself, never copied per peer.
    socket_.sendBytes(header, static_cast<int>(h), socket_.secure() ? 0 : MSG_MORE);
    socket_.sendBytes(data, static_cast<int>(size));
}

void WsConnection::writerLoop() {
    for (;;) {
        Item item;
        {
            std::unique_lock<std::mutex> lock(mutex_);
            cv_.wait(lock, [&] {
                return stopWriter_ || !control_.empty() || !frames_.empty() || framesReady_;
            });
            if (stopWriter_) return;
            if (closeSent_ || closing_) framesReady_ = false;  // no frames once closing
            if (closeSent_) {                                  // nothing goes after our CLOSE
                control_.clear();
                frames_.clear();
                continue;
            }
            if (!control_.empty()) {
                item = std::move(control_.front());
                control_.pop_front();
            } else if (!frames_.empty()) {
                item = std::move(frames_.front());
                frames_.pop_front();
            } else if (framesReady_) {
                // Pull one frame from the source (outside our lock: it takes the fan-out's).
                const uint64_t seen = frameSignal_;
                lock.unlock();
                Bytes next = frameSource_ ? frameSource_() : nullptr;
                lock.lock();
                if (!next) {
                    if (frameSignal_ == seen) framesReady_ = false;
                    continue;
                }
                item = Item{kOpBinary, std::string(), std::move(next)};
            } else {
                continue;
            }
        }
        try {
            if (item.binary) {
                sendFrame(item.opcode, item.binary->data(), item.binary->size());
            } else {
                sendFrame(item.opcode, item.text.data(), item.text.size());
            }
        } catch (const Poco::Exception&) {
            // Send timeout or reset: the connection is unusable; the reader notices and ends.
            broken_ = true;
        } catch (const std::exception&) {
            broken_ = true;
        }
        if (item.opcode == kOpClose) closeSent_ = true;
        if (broken_) {
            std::lock_guard<std::mutex> lock(mutex_);
            control_.clear();
            frames_.clear();
            closing_ = true;
            if (closeCode_ == 0) closeCode_ = kCloseAbnormal;
        }
        if (broken_) wake();  // the reader ends the connection now, not at its next deadline
    }
}

void WsConnection::lingerAfterFatal(std::chrono::steady_clock::time_point deadline) {
    using clock = std::chrono::steady_clock;
    while (!closeSent_ && !broken_ && clock::now() < deadline) {
        drainRaw(std::chrono::milliseconds(5));
    }
    if (broken_) return;
    try {
        socket_.shutdownSend();  // FIN after our CLOSE: the peer sees the end of the stream
    } catch (...) {
        return;
    }
    while (clock::now() < deadline) {
        if (!drainRaw(std::chrono::milliseconds(20))) return;  // EOF or error: the peer is done
    }
}

bool WsConnection::drainRaw(std::chrono::milliseconds wait) {
    // Discards bytes: after a violation the stream is not parsed any more.
    try {
        if (!waitReadable(std::chrono::steady_clock::now() + wait)) return true;
        std::uint8_t scratch[16384];
        return readAvailable(scratch, sizeof scratch) != 0;
    } catch (...) {
        return false;
    }
}

namespace {

ws::Limits parserLimits(const WsLimits& limits, std::uint64_t handlerLimit) {
    ws::Limits l;
    l.maxMessageBytes =
        std::min<std::uint64_t>(static_cast<std::uint64_t>(limits.maxMessageBytes), handlerLimit);
    l.maxTextBytes = static_cast<std::uint64_t>(limits.maxTextBytes);
    return l;
}

}  // namespace

int WsConnection::run(WsHandler& handler) {
    using clock = std::chrono::steady_clock;
    ws::Parser parser(parserLimits(limits_, handler.messageLimit()));
    std::vector<ws::Message> messages;
    std::vector<std::uint8_t> buffer(kReadChunk);
    const auto frameTimeout = std::chrono::milliseconds(limits_.receiveTimeoutMs);
    clock::time_point frameStartedAt{};  // first byte of the pending frame / fragmented message
    int peerCloseCode = 0;
    bool fatal = false;

    auto transportError = [&](int code, const std::string& what) {
        handler.onTransportError(code, what);  // may queue an error message first
        close(code, what);
    };

    // Returns true when the connection is over (a CLOSE was answered).
    auto dispatch = [&](ws::Message& m) {
        switch (m.kind) {
            case ws::Opcode::Text:
                if (!closing_) {
                    handler.onText(
                        std::string(reinterpret_cast<const char*>(m.payload()), m.payloadSize()));
                }
                break;
            case ws::Opcode::Binary:
                if (!closing_) handler.onBinary(std::move(m.bytes));  // offset 0: no headroom
                break;
            case ws::Opcode::Ping:
                sendControl(kOpPong, std::string(reinterpret_cast<const char*>(m.payload()),
                                                 m.payloadSize()));
                break;
            case ws::Opcode::Pong:
                break;  // we do not send WebSocket-level pings; the protocol's JSON ping is used
            case ws::Opcode::Close:
                peerCloseCode = m.closeCode;
                if (!closing_) {
                    // Echo the peer's (valid) code, as RFC 6455 5.5.1 asks; none -> 1000.
                    close(peerCloseCode == 1005 ? 1000 : peerCloseCode, "");
                    closeCode_ = peerCloseCode;
                    const auto deadline =
                        clock::now() + std::chrono::milliseconds(limits_.closeGraceMs);
                    while (!closeSent_ && !broken_ && clock::now() < deadline)
                        std::this_thread::sleep_for(std::chrono::milliseconds(2));
                }
                return true;
            case ws::Opcode::Continuation:
                break;  // never produced by the parser
        }
        return false;
    };

    // Feeds bytes; returns true when the connection is over.
    auto consume = [&](const std::uint8_t* data, std::size_t size) {
        const bool wasInMessage = parser.inMessage();
        messages.clear();
        const std::optional<ws::Violation> violation = parser.feed(data, size, messages);
        bool dataMessageEnded = false;
        for (auto& m : messages) {
            dataMessageEnded |= m.kind == ws::Opcode::Text || m.kind == ws::Opcode::Binary;
            if (dispatch(m)) return true;
            // The handshake may have been accepted: the limit grows to max_message_bytes.
            parser.setLimits(parserLimits(limits_, handler.messageLimit()));
        }
        messages.clear();
        if (violation) {
            transportError(violation->closeCode, violation->what);
            fatal = true;
            return true;
        }
        // The frame-completion clock starts at the first byte of a frame or message.
        if (parser.inMessage() && (!wasInMessage || dataMessageEnded))
            frameStartedAt = clock::now();
        return false;
    };

    bool over = false;
    if (!early_.empty()) {
        over = consume(early_.data(), early_.size());
        std::vector<std::uint8_t>().swap(early_);
    }
    while (!over) {
        if (broken_) break;
        const auto now = clock::now();
        // After our CLOSE was asked for, wait a short grace for the peer's CLOSE, then end.
        const auto graceEnd = closeRequestedAt_ + std::chrono::milliseconds(limits_.closeGraceMs);
        if (closing_ && now > graceEnd) break;
        auto deadline = closing_ ? graceEnd : handler.nextDeadline();
        if (!closing_ && now >= deadline) {
            // Handshake deadline, heartbeat: checked whatever the peer is in the middle of.
            handler.onTick(now);
            if (broken_) break;
            deadline = closing_ ? graceEnd : handler.nextDeadline();
            // A handler whose deadline did not move must not make this loop spin.
            if (deadline <= now) deadline = now + std::chrono::milliseconds(1);
        }
        if (!closing_ && parser.inMessage()) {
            const auto frameDeadline = frameStartedAt + frameTimeout;
            if (now >= frameDeadline) {
                transportError(kClosePolicy, "frame not completed within " +
                                                 std::to_string(limits_.receiveTimeoutMs) + " ms");
                continue;  // the grace for the peer's CLOSE runs as for any close
            }
            deadline = std::min(deadline, frameDeadline);
        }

        bool readable = false;
        try {
            readable = waitReadable(deadline);
        } catch (...) {
            break;
        }
        if (!readable) continue;

        int n = 0;
        try {
            n = readAvailable(buffer.data(), static_cast<int>(buffer.size()));
        } catch (const std::exception&) {
            if (closeCode_ == 0) closeCode_ = kCloseAbnormal;
            break;
        }
        if (n < 0) continue;
        if (n == 0) {  // the peer closed the TCP connection
            if (closeCode_ == 0) closeCode_ = kCloseAbnormal;
            break;
        }
        over = consume(buffer.data(), static_cast<std::size_t>(n));
    }
    if (fatal) {
        // The stream is not parsed any more: let the error and CLOSE go out, then discard what
        // the peer still sends (e.g. the rest of an oversized payload). Closing a socket with
        // unread bytes makes the kernel send RST, which can destroy our error and CLOSE before
        // the peer reads them.
        lingerAfterFatal(clock::now() + std::chrono::milliseconds(limits_.closeGraceMs));
    }
    return closeCode_ != 0 ? closeCode_.load()
                           : (peerCloseCode != 0 ? peerCloseCode : kCloseAbnormal);
}

}  // namespace deskstream::relay
