// WsConnection: reading, writing, timers and the close handshake of one WebSocket on its I/O
// loop (see ws_connection.hpp).
#include "ws_connection.hpp"

#include "io_loop.hpp"

#include <Poco/Exception.h>

#include <algorithm>
#include <cerrno>
#include <climits>

#include <sys/epoll.h>

namespace deskstream::relay {

namespace ws = core::ws;

namespace {

constexpr int kCloseAbnormal = 1006;
constexpr int kClosePolicy = 1008;
// Bytes read from one connection per turn of the loop before the others get theirs.
constexpr int kReadsPerTurn = 16;

// Poco's non-blocking returns (docs/relay.md, "Poco 1.11 traps"): a plain socket answers -1
// for EAGAIN; a SecureStreamSocket answers ERR_SSL_WANT_READ (-1) or ERR_SSL_WANT_WRITE (-2).
constexpr int kWantRead = -1;
constexpr int kWantWrite = -2;

}  // namespace

Bytes wsWireImage(ws::Opcode op, const std::uint8_t* payload, std::size_t size) {
    auto image = std::make_shared<std::vector<std::uint8_t>>();
    std::uint8_t header[10];
    const std::size_t h = ws::writeHeader(header, op, size, true);
    image->reserve(h + size);
    image->insert(image->end(), header, header + h);
    if (size) image->insert(image->end(), payload, payload + size);
    return image;
}

WsConnection::WsConnection(Poco::Net::StreamSocket socket, std::vector<std::uint8_t> early,
                           WsLimits limits)
    : socket_(std::move(socket)), early_(std::move(early)), limits_(limits) {
    try {
        peer_ = socket_.peerAddress().toString();
    } catch (...) {
        peer_ = "?";
    }
    fd_ = static_cast<int>(socket_.impl()->sockfd());
    secure_ = socket_.secure();
    try {
        socket_.setNoDelay(true);  // small control messages must not wait behind Nagle
    } catch (...) {}
}

WsConnection::~WsConnection() {
    try {
        socket_.close();
    } catch (...) {}
}

void WsConnection::updateParserLimits() {
    ws::Limits l;
    l.maxMessageBytes = static_cast<std::uint64_t>(limits_.maxMessageBytes);
    if (handler_) l.maxMessageBytes = std::min(l.maxMessageBytes, handler_->messageLimit());
    l.maxTextBytes = static_cast<std::uint64_t>(limits_.maxTextBytes);
    l.binaryHeadroom = 0;
    const ws::Limits& now = parser_.limits();
    if (now.maxMessageBytes != l.maxMessageBytes || now.maxTextBytes != l.maxTextBytes)
        parser_.setLimits(l);
}

void WsConnection::start(IoLoop& loop, std::shared_ptr<WsHandler> handler) {
    loop_ = &loop;
    handler_ = std::move(handler);
    loop.adopt(shared_from_this());
}

void WsConnection::schedule() {
    if (loop_ == nullptr) return;
    if (scheduled_.exchange(true)) return;  // already in the loop's list
    loop_->schedule(shared_from_this());
}

void WsConnection::wake() { schedule(); }

bool WsConnection::sendText(std::string message) {
    bool overflow = false;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        if (closing_) return false;
        if (control_.size() >= limits_.controlQueueLimit) {
            overflow = true;
        } else {
            control_.push_back(Out{
                wsWireImage(ws::Opcode::Text, reinterpret_cast<const std::uint8_t*>(message.data()),
                            message.size()),
                0, false});
        }
    }
    if (overflow) {
        // The peer does not read: holding more would grow memory without bound.
        closeNow(kClosePolicy, "too slow");
        return false;
    }
    schedule();
    return true;
}

void WsConnection::notifyFrames() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        if (closing_) return;
        framesReady_ = true;
        ++frameSignal_;
    }
    schedule();
}

void WsConnection::queueControl(Bytes frame) {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        if (closing_) return;
        if (control_.size() >= limits_.controlQueueLimit) return;  // pongs are best effort
        control_.push_back(Out{std::move(frame), 0, false});
    }
    schedule();
}

void WsConnection::enqueueClose(int code, const std::string& reason, bool discardQueued) {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        if (closing_) return;
        closing_ = true;
        closeCode_ = code;
        closeRequestedAt_ = Clock::now();
        framesReady_ = false;
        if (discardQueued) control_.clear();
        auto frame = ws::encodeClose(static_cast<std::uint16_t>(code), reason);
        control_.push_back(
            Out{std::make_shared<const std::vector<std::uint8_t>>(std::move(frame)), 0, true});
    }
    schedule();  // the loop now waits at most close_grace_ms for the peer's CLOSE
}

void WsConnection::close(int code, const std::string& reason) { enqueueClose(code, reason, false); }
void WsConnection::closeNow(int code, const std::string& reason) {
    enqueueClose(code, reason, true);
}

void WsConnection::requestEnd(int code) {
    if (endRequested_) return;
    endRequested_ = true;
    endCode_ = code;
}

// ------------------------------------------------------------------ loop side

void WsConnection::onAdopted() {
    try {
        socket_.setBlocking(false);
        if (secure_) {
            // Poco 1.11 trap (docs/relay.md): SecureStreamSocketImpl does not pass
            // setBlocking(false) on to the socket OpenSSL uses, which stays "blocking" and waits
            // in poll() for the socket's timeouts whenever OpenSSL wants to read or write. The
            // timeouts live on the shared fd: at 0 that wait returns at once and throws
            // Poco::TimeoutException, which the loop takes as "would block".
            socket_.setReceiveTimeout(Poco::Timespan(0));
            socket_.setSendTimeout(Poco::Timespan(0));
        }
    } catch (...) {
        requestEnd(kCloseAbnormal);
    }
    lastTick_ = Clock::now();
    updateParserLimits();
    if (!early_.empty() && !endRequested_) {
        std::vector<std::uint8_t> early;
        early.swap(early_);
        feed(early.data(), early.size());
    }
    // TLS may hold decrypted bytes already; a plain socket just answers "would block".
    if (!endRequested_) readAvailable();
    flush();
    afterWork();
}

void WsConnection::onEvents(std::uint32_t events) {
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP))
        readAvailable();
    else if ((events & EPOLLOUT) && sslWantsWrite_)
        readAvailable();
    flush();
    afterWork();
}

void WsConnection::onPending() {
    flush();
    afterWork();
}

void WsConnection::onTimer(Clock::time_point now) {
    if (!endRequested_) {
        const auto graceEnd = closeRequestedAt_ + std::chrono::milliseconds(limits_.closeGraceMs);
        if (closing_ && now >= graceEnd) {
            requestEnd(closeCode_ != 0 ? closeCode_.load() : kCloseAbnormal);
        } else if (messageStartedAt_ && !draining_ && !closing_ &&
                   now >=
                       *messageStartedAt_ + std::chrono::milliseconds(limits_.receiveTimeoutMs)) {
            // A frame started and did not complete in time (a slow drip): closed with 1008,
            // then the grace for the peer's CLOSE runs as for any close (issue 18.2).
            const std::string what =
                "frame not completed within " + std::to_string(limits_.receiveTimeoutMs) + " ms";
            messageStartedAt_.reset();
            if (handler_) handler_->onTransportError(kClosePolicy, what);
            close(kClosePolicy, what);
        } else if (writeBlockedSince_ &&
                   now >= *writeBlockedSince_ + std::chrono::milliseconds(limits_.sendTimeoutMs)) {
            // The peer has not read for send_timeout_ms: it holds memory and gets nothing.
            if (closeCode_ == 0) closeCode_ = kCloseAbnormal;
            requestEnd(closeCode_);
        } else if (!closing_ && handler_ && now >= handler_->nextDeadline()) {
            lastTick_ = now;
            handler_->onTick(now);
        }
    }
    flush();
    afterWork();
}

void WsConnection::onLoopStopping() {
    requestEnd(closeCode_ != 0 ? closeCode_.load() : kCloseAbnormal);
    afterWork();
}

std::uint32_t WsConnection::wantedEvents() const {
    std::uint32_t e = EPOLLIN | EPOLLRDHUP;
    if (wantWrite_ || sslWantsWrite_) e |= EPOLLOUT;
    return e;
}

void WsConnection::readAvailable() {
    std::vector<std::uint8_t>& buffer = loop_->readBuffer();
    sslWantsWrite_ = false;
    for (int i = 0; i < kReadsPerTurn && !endRequested_; ++i) {
        int n = 0;
        try {
            n = socket_.receiveBytes(buffer.data(), static_cast<int>(buffer.size()));
        } catch (const Poco::TimeoutException&) {
            return;  // EAGAIN reported as a timeout: nothing more now
        } catch (...) {
            // Reset, TLS failure: the socket is unusable.
            requestEnd(closeCode_ != 0 ? closeCode_.load()
                                       : (peerCloseCode_ != 0 ? peerCloseCode_ : kCloseAbnormal));
            return;
        }
        if (n == 0) {  // the peer closed the TCP connection (or sent TLS close_notify)
            if (closeCode_ == 0 && peerCloseCode_ == 0) closeCode_ = kCloseAbnormal;
            requestEnd(closeCode_ != 0 ? closeCode_.load() : peerCloseCode_);
            return;
        }
        if (n < 0) {
            if (secure_ && n == kWantWrite) sslWantsWrite_ = true;
            return;  // would block (kWantRead is also plain EAGAIN)
        }
        if (!draining_) feed(buffer.data(), static_cast<std::size_t>(n));
    }
    // More may be waiting (or buffered inside TLS, where epoll would not say so): come back
    // after the other connections had their turn.
    if (!endRequested_) schedule();
}

void WsConnection::feed(const std::uint8_t* data, std::size_t size) {
    messages_.clear();
    std::optional<ws::Violation> violation = parser_.feed(data, size, messages_);
    const bool completed = !messages_.empty();
    for (auto& m : messages_) {
        if (endRequested_) break;
        dispatch(m);
        // The handshake may have been accepted: the limit grows to max_message_bytes.
        updateParserLimits();
    }
    messages_.clear();
    if (violation && !draining_ && !endRequested_) {
        draining_ = true;
        messageStartedAt_.reset();
        if (handler_) handler_->onTransportError(violation->closeCode, violation->what);
        close(violation->closeCode, violation->what);
        return;
    }
    // The frame-completion deadline runs from the first byte of a frame or message (a
    // message completed in this read and the next one begun: from now).
    if (!parser_.inMessage())
        messageStartedAt_.reset();
    else if (!messageStartedAt_ || completed)
        messageStartedAt_ = Clock::now();
}

void WsConnection::dispatch(ws::Message& m) {
    switch (m.kind) {
        case ws::Opcode::Text:
            if (closing_ || !handler_) return;
            handler_->onText(
                std::string(reinterpret_cast<const char*>(m.payload()), m.payloadSize()));
            return;
        case ws::Opcode::Binary: {
            if (closing_ || !handler_) return;
            std::vector<std::uint8_t> bytes;
            if (m.offset == 0)
                bytes.swap(m.bytes);
            else
                bytes.assign(m.payload(), m.payload() + m.payloadSize());
            handler_->onBinary(std::move(bytes));
            return;
        }
        case ws::Opcode::Ping:
            queueControl(wsWireImage(ws::Opcode::Pong, m.payload(), m.payloadSize()));
            return;
        case ws::Opcode::Pong:
            return;  // we send no WebSocket-level pings; the protocol's JSON ping is used
        case ws::Opcode::Close: {
            peerClosed_ = true;
            peerCloseCode_ = m.closeCode != 0 ? m.closeCode : 1005;
            if (!closing_) {
                // Echo the peer's code, as RFC 6455 5.5.1 asks.
                close(peerCloseCode_ == 1005 ? 1000 : peerCloseCode_, "");
                closeCode_ = peerCloseCode_;
            }
            if (closeSent_) requestEnd(closeCode_ != 0 ? closeCode_.load() : peerCloseCode_);
            return;
        }
        case ws::Opcode::Continuation:
            return;  // never produced by the parser
    }
}

bool WsConnection::nextOut() {
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
        if (closeSent_) return false;
        if (!control_.empty()) {
            out_ = std::move(control_.front());
            control_.pop_front();
            return true;
        }
        if (!framesReady_ || closing_ || !frameSource_) return false;
        // Pull one frame from the source (outside our lock: it takes the fan-out's).
        const uint64_t seen = frameSignal_;
        lock.unlock();
        Bytes next = frameSource_();
        lock.lock();
        if (!next) {
            if (frameSignal_ == seen) framesReady_ = false;
            continue;
        }
        if (closing_) continue;
        out_ = Out{std::move(next), 0, false};
        return true;
    }
}

void WsConnection::flush() {
    if (endRequested_) return;
    for (;;) {
        if (!out_.bytes && !nextOut()) break;
        const std::size_t left = out_.bytes->size() - out_.offset;
        int n = 0;
        try {
            n = socket_.sendBytes(out_.bytes->data() + out_.offset,
                                  static_cast<int>(std::min<std::size_t>(left, INT_MAX)));
        } catch (const Poco::TimeoutException&) {
            // TLS wanting to write (or, rarely, to read) reported as a timeout (see onAdopted).
            n = kWantWrite;
        } catch (const Poco::IOException& e) {
            // Poco 1.11 trap (docs/poco-pitfalls.md): SocketImpl::sendBytes does not treat
            // EAGAIN on a non-blocking socket as "would block" (receiveBytes does) and throws
            // IOException("Operation would block") instead. That is a full send buffer, not an
            // error: wait for EPOLLOUT like any other would-block.
            if (e.code() != EAGAIN && e.code() != EWOULDBLOCK) {
                if (closeCode_ == 0) closeCode_ = kCloseAbnormal;
                requestEnd(closeCode_);
                return;
            }
            n = kWantRead;  // plain would-block (the same value receiveBytes gives)
        } catch (...) {
            if (closeCode_ == 0) closeCode_ = kCloseAbnormal;
            requestEnd(closeCode_);
            return;
        }
        if (n < 0) {
            // Would block (a plain EAGAIN or TLS wanting to write); TLS wanting to read goes
            // on when the socket is readable, which is always watched.
            wantWrite_ = !secure_ || n == kWantWrite;
            if (!writeBlockedSince_) writeBlockedSince_ = Clock::now();
            return;
        }
        writeBlockedSince_.reset();
        out_.offset += static_cast<std::size_t>(n);
        if (out_.offset < out_.bytes->size()) continue;
        const bool wasClose = out_.isClose;
        out_ = Out{};
        if (wasClose) {
            closeSent_ = true;
            std::lock_guard<std::mutex> lock(mutex_);
            control_.clear();
        }
    }
    wantWrite_ = false;
    if (closeSent_) {
        if (peerClosed_) {
            requestEnd(closeCode_ != 0 ? closeCode_.load() : peerCloseCode_);
        } else if (!sendShutdown_) {
            // FIN after our CLOSE: the peer sees the end of the stream. (Not over TLS, where
            // a half-close would end the session for both directions.)
            sendShutdown_ = true;
            if (!secure_) {
                try {
                    socket_.shutdownSend();
                } catch (...) {}
            }
        }
    }
}

void WsConnection::afterWork() {
    if (ended_) return;
    if (endRequested_) {
        finishEnd();
        return;
    }
    auto d = Clock::time_point::max();
    if (closing_) {
        d = closeRequestedAt_ + std::chrono::milliseconds(limits_.closeGraceMs);
    } else if (handler_) {
        d = handler_->nextDeadline();
        // A handler whose deadline did not move must not make the loop spin.
        if (d <= lastTick_) d = lastTick_ + std::chrono::milliseconds(1);
    }
    if (messageStartedAt_ && !draining_ && !closing_)
        d = std::min(d, *messageStartedAt_ + std::chrono::milliseconds(limits_.receiveTimeoutMs));
    if (writeBlockedSince_)
        d = std::min(d, *writeBlockedSince_ + std::chrono::milliseconds(limits_.sendTimeoutMs));
    deadline_ = d;
}

void WsConnection::finishEnd() {
    ended_ = true;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        closing_ = true;
        control_.clear();
        framesReady_ = false;
    }
    if (closeCode_ == 0) closeCode_ = endCode_ != 0 ? endCode_ : kCloseAbnormal;
    try {
        socket_.close();
    } catch (...) {}
    out_ = Out{};
    std::shared_ptr<WsHandler> handler;
    handler.swap(handler_);
    const int code = endCode_ != 0 ? endCode_ : closeCode_.load();
    if (handler) handler->onClosed(code);
    frameSource_ = nullptr;  // it may hold the session
}

}  // namespace deskstream::relay
