// WsConnection: the socket I/O of one WebSocket: the reader loop, the writer thread and the
// close handshake (see ws_connection.hpp).
#include "ws_connection.hpp"

#include <Poco/Buffer.h>
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

using Poco::Net::WebSocket;

namespace {

constexpr int kCloseProtocolError = 1002;
constexpr int kCloseTooLarge = 1009;
constexpr int kCloseAbnormal = 1006;
constexpr int kClosePolicy = 1008;

std::string closePayload(int code, const std::string& reason) {
    std::string p;
    p.push_back(static_cast<char>((code >> 8) & 0xff));
    p.push_back(static_cast<char>(code & 0xff));
    // Control frames carry at most 125 bytes.
    p += reason.substr(0, 123);
    return p;
}

}  // namespace

WsConnection::WsConnection(std::unique_ptr<WebSocket> socket, WsLimits limits)
    : ws_(std::move(socket)), limits_(limits) {
    try {
        peer_ = ws_->peerAddress().toString();
    } catch (...) {
        peer_ = "?";
    }
    ws_->setNoDelay(true);  // small control messages must not wait behind Nagle (Poco #4756)
    ws_->setMaxPayloadSize(static_cast<int>(limits_.maxMessageBytes));
    ws_->setSendTimeout(Poco::Timespan(limits_.sendTimeoutMs * 1000));
    ws_->setReceiveTimeout(Poco::Timespan(limits_.receiveTimeoutMs * 1000));
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
    // A writer blocked in sendFrame on a peer that does not read is released at once.
    try {
        ws_->impl()->shutdown();
    } catch (...) {}
    if (writer_.joinable()) writer_.join();
    try {
        ws_->close();
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
    const auto now = steady_clock::now();
    int timeoutMs = 0;
    if (deadline > now) {
        // Rounded up: waking a little late is harmless, waking early would spin until due.
        const auto wait = duration_cast<microseconds>(deadline - now);
        timeoutMs = static_cast<int>(std::min<int64_t>((wait.count() + 999) / 1000, 3600 * 1000));
    }
    pollfd fds[2] = {{static_cast<int>(ws_->impl()->sockfd()), POLLIN, 0}, {wakeFd_, POLLIN, 0}};
    const int r = ::poll(fds, 2, timeoutMs);
    if (r < 0) return false;  // EINTR: the caller loops and recomputes the deadline
    if (fds[1].revents != 0) {
        uint64_t drained = 0;
        [[maybe_unused]] const ssize_t n = ::read(wakeFd_, &drained, sizeof drained);
    }
    return fds[0].revents != 0;
}

bool WsConnection::sendText(std::string message) {
    bool overflow = false;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        if (closing_) return false;
        if (control_.size() >= limits_.controlQueueLimit) {
            overflow = true;
        } else {
            control_.push_back(Item{WebSocket::FRAME_TEXT, std::move(message), nullptr});
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
        frames_.push_back(Item{WebSocket::FRAME_BINARY, std::string(), std::move(message)});
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

void WsConnection::sendControl(int opcode, const std::string& payload) {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        if (closing_) return;
        if (control_.size() >= limits_.controlQueueLimit) return;  // pings are best effort
        control_.push_back(Item{WebSocket::FRAME_FLAG_FIN | opcode, payload, nullptr});
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
        control_.push_back(Item{WebSocket::FRAME_OP_CLOSE | WebSocket::FRAME_FLAG_FIN,
                                closePayload(code, reason), nullptr});
    }
    cv_.notify_one();
    wake();  // the reader now waits at most close_grace_ms for the peer's CLOSE
}

void WsConnection::close(int code, const std::string& reason) { enqueueClose(code, reason, false); }
void WsConnection::closeNow(int code, const std::string& reason) {
    enqueueClose(code, reason, true);
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
                item = Item{WebSocket::FRAME_BINARY, std::string(), std::move(next)};
            } else {
                continue;
            }
        }
        int flags = item.flags;
        if ((flags & WebSocket::FRAME_FLAG_FIN) == 0) flags |= WebSocket::FRAME_FLAG_FIN;
        try {
            if (item.binary) {
                ws_->sendFrame(item.binary->data(), static_cast<int>(item.binary->size()), flags);
            } else {
                ws_->sendFrame(item.text.data(), static_cast<int>(item.text.size()), flags);
            }
        } catch (const Poco::Exception&) {
            // Send timeout or reset: the connection is unusable; the reader notices and ends.
            broken_ = true;
        } catch (const std::exception&) {
            broken_ = true;
        }
        if ((item.flags & WebSocket::FRAME_OP_BITMASK) == WebSocket::FRAME_OP_CLOSE) {
            closeSent_ = true;
        }
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
        ws_->impl()->shutdownSend();  // FIN after our CLOSE: the peer sees the end of the stream
    } catch (...) {
        return;
    }
    while (clock::now() < deadline) {
        if (!drainRaw(std::chrono::milliseconds(20))) return;  // EOF or error: the peer is done
    }
}

bool WsConnection::drainRaw(std::chrono::milliseconds wait) {
    // Raw bytes, below the WebSocket framing (which is out of sync at this point).
    const int fd = static_cast<int>(ws_->impl()->sockfd());
    pollfd p{fd, POLLIN, 0};
    const int r = ::poll(&p, 1, static_cast<int>(wait.count()));
    if (r < 0) return false;
    if (r == 0) return true;
    char scratch[16384];
    const ssize_t n = ::recv(fd, scratch, sizeof scratch, MSG_DONTWAIT);
    if (n == 0) return false;
    if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
    return true;
}

int WsConnection::run(WsHandler& handler) {
    using clock = std::chrono::steady_clock;
    std::string assembling;    // a fragmented message being reassembled
    int assemblingOpcode = 0;  // 0: none
    int peerCloseCode = 0;

    auto transportError = [&](int code, const std::string& what) {
        handler.onTransportError(code, what);  // may queue an error message first
        close(code, what);
    };

    for (;;) {
        if (broken_) break;
        const auto now = clock::now();
        // After our CLOSE was asked for, wait a short grace for the peer's CLOSE, then end.
        const auto graceEnd = closeRequestedAt_ + std::chrono::milliseconds(limits_.closeGraceMs);
        if (closing_ && now > graceEnd) break;
        auto deadline = closing_ ? graceEnd : handler.nextDeadline();
        if (!closing_ && now >= deadline) {
            handler.onTick(now);
            if (broken_) break;
            deadline = closing_ ? graceEnd : handler.nextDeadline();
            // A handler whose deadline did not move must not make this loop spin.
            if (deadline <= now) deadline = now + std::chrono::milliseconds(1);
        }

        bool readable = false;
        try {
            readable = waitReadable(deadline);
        } catch (...) {
            break;
        }
        if (!readable) continue;

        Poco::Buffer<char> buffer(0);
        int flags = 0;
        int n = 0;
        try {
            n = ws_->receiveFrame(buffer, flags);
        } catch (const Poco::Net::WebSocketException& e) {
            if (e.code() == WebSocket::WS_ERR_PAYLOAD_TOO_BIG) {
                // The payload is still in the stream: the connection cannot continue.
                transportError(kCloseTooLarge, "message too large");
            } else {
                transportError(kCloseProtocolError, "bad frame");
            }
            // The stream is out of sync: let the error and CLOSE go out, then discard what the
            // peer still sends (the rest of the oversized payload). Closing a socket with
            // unread bytes makes the kernel send RST, which can destroy our error and CLOSE
            // before the peer reads them.
            lingerAfterFatal(clock::now() + std::chrono::milliseconds(limits_.closeGraceMs));
            break;
        } catch (const Poco::TimeoutException&) {
            // Bytes arrived but the frame did not complete in time: out of sync, fatal.
            handler.onTransportError(kCloseAbnormal, "receive timeout inside a frame");
            closeCode_ = kCloseAbnormal;
            break;
        } catch (const std::exception&) {
            if (closeCode_ == 0) closeCode_ = kCloseAbnormal;
            break;
        }
        if (n == 0 && flags == 0) {  // the peer closed the TCP connection
            if (closeCode_ == 0) closeCode_ = kCloseAbnormal;
            break;
        }

        const int opcode = flags & WebSocket::FRAME_OP_BITMASK;
        const bool fin = (flags & WebSocket::FRAME_FLAG_FIN) != 0;
        if ((flags & (WebSocket::FRAME_FLAG_RSV1 | WebSocket::FRAME_FLAG_RSV2 |
                      WebSocket::FRAME_FLAG_RSV3)) != 0) {
            transportError(kCloseProtocolError, "reserved bits set");
            continue;
        }
        const bool control = (opcode & 0x8) != 0;
        if (control && (!fin || n > 125)) {
            transportError(kCloseProtocolError, "bad control frame");
            continue;
        }

        switch (opcode) {
            case WebSocket::FRAME_OP_PING:
                sendControl(WebSocket::FRAME_OP_PONG,
                            std::string(buffer.begin(), static_cast<size_t>(n)));
                break;
            case WebSocket::FRAME_OP_PONG:
                break;  // we do not send WebSocket-level pings; the protocol's JSON ping is used
            case WebSocket::FRAME_OP_CLOSE: {
                peerCloseCode = 1005;
                if (n >= 2) {
                    peerCloseCode = (static_cast<unsigned char>(buffer[0]) << 8) |
                                    static_cast<unsigned char>(buffer[1]);
                }
                if (!closing_) {
                    // Echo the peer's code, as RFC 6455 5.5.1 asks.
                    close(peerCloseCode == 1005 ? 1000 : peerCloseCode, "");
                    closeCode_ = peerCloseCode;
                    const auto deadline =
                        clock::now() + std::chrono::milliseconds(limits_.closeGraceMs);
                    while (!closeSent_ && !broken_ && clock::now() < deadline)
                        std::this_thread::sleep_for(std::chrono::milliseconds(2));
                }
                return closeCode_ != 0 ? closeCode_.load() : peerCloseCode;
            }
            case WebSocket::FRAME_OP_TEXT:
            case WebSocket::FRAME_OP_BINARY:
                if (assemblingOpcode != 0) {
                    transportError(kCloseProtocolError, "new message inside a fragmented one");
                    break;
                }
                if (closing_) break;  // draining until the peer's CLOSE
                if (fin) {
                    if (opcode == WebSocket::FRAME_OP_TEXT) {
                        handler.onText(std::string(buffer.begin(), static_cast<size_t>(n)));
                    } else {
                        handler.onBinary(
                            std::vector<std::uint8_t>(buffer.begin(), buffer.begin() + n));
                    }
                } else {
                    assemblingOpcode = opcode;
                    assembling.assign(buffer.begin(), static_cast<size_t>(n));
                }
                break;
            case WebSocket::FRAME_OP_CONT:
                if (assemblingOpcode == 0) {
                    transportError(kCloseProtocolError, "continuation without a message");
                    break;
                }
                if (static_cast<int64_t>(assembling.size()) + n > limits_.maxMessageBytes) {
                    transportError(kCloseTooLarge, "message too large");
                    assembling.clear();
                    assemblingOpcode = 0;
                    break;
                }
                assembling.append(buffer.begin(), static_cast<size_t>(n));
                if (fin) {
                    const int op = assemblingOpcode;
                    assemblingOpcode = 0;
                    std::string message;
                    message.swap(assembling);
                    if (closing_) break;
                    if (op == WebSocket::FRAME_OP_TEXT)
                        handler.onText(std::move(message));
                    else
                        handler.onBinary(std::vector<std::uint8_t>(message.begin(), message.end()));
                }
                break;
            default:
                transportError(kCloseProtocolError, "unknown opcode");
                break;
        }
    }
    return closeCode_ != 0 ? closeCode_.load()
                           : (peerCloseCode != 0 ? peerCloseCode : kCloseAbnormal);
}

}  // namespace deskstream::relay
