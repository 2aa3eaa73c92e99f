// deskstream core: a sans-IO WebSocket frame codec, server side (RFC 6455; rules and close
// codes in docs/relay.md, "WebSocket conformance").
//
// The Parser is a pure function of the bytes fed to it: no socket, no clock, no threads. The
// host reads whatever bytes are available, feeds them, sends the messages that come out to the
// protocol layer, and on a Violation sends a close with its code and ends the connection.
// Deadlines (handshake, frame completion) belong to the host: inMessage() tells it when a frame
// or a fragmented message is pending. Memory grows only with bytes actually received: a
// declared length is checked against the limits before anything is allocated for it, and the
// buffer is never reserved ahead of the bytes that have arrived by more than a bounded chunk.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace deskstream::core::ws {

enum class Opcode : std::uint8_t {
    Continuation = 0,
    Text = 1,
    Binary = 2,
    Close = 8,
    Ping = 9,
    Pong = 10
};

struct Limits {
    // Any message after reassembly; a declared frame length that would exceed it -> 1009
    // before allocating.
    std::uint64_t maxMessageBytes = 16u << 20;
    // Text messages, enforced while reassembling (not after).
    std::uint64_t maxTextBytes = 64u << 10;
    // Bytes left free in front of a binary payload (room for an outgoing frame header).
    std::size_t binaryHeadroom = 0;
};

struct Message {
    Opcode kind;                      // Text, Binary, Ping, Pong or Close (never Continuation)
    std::vector<std::uint8_t> bytes;  // payload at bytes.data() + offset
    std::size_t offset = 0;           // == binaryHeadroom for Binary, 0 otherwise
    std::uint16_t closeCode = 0;      // Close only (1005 when the close had no payload)
    std::string closeReason;          // Close only (valid UTF-8)

    const std::uint8_t* payload() const { return bytes.data() + offset; }
    std::size_t payloadSize() const { return bytes.size() - offset; }
};

// The stream is broken: send a close with closeCode (1002, 1007 or 1009), then close.
struct Violation {
    std::uint16_t closeCode;
    std::string what;  // short text for logs and the close reason (never echoes peer bytes)
};

class Parser {
public:
    explicit Parser(Limits limits = {});
    // E.g. handshake-sized before the handshake is accepted, the configured limits after.
    // Applies to the frame being received as well: a pending frame or fragmented message that
    // already exceeds the new limits makes the next feed() return 1009.
    void setLimits(const Limits& limits);
    const Limits& limits() const { return limits_; }

    // Consumes all the bytes; each complete message is appended to `out`. Returns a Violation
    // once the stream is broken (the caller sends a close with that code and closes); later
    // calls return it again and consume nothing. Messages completed before the violation in
    // the same call are still appended.
    std::optional<Violation> feed(const std::uint8_t* data, std::size_t size,
                                  std::vector<Message>& out);

    // A frame or a fragmented message has begun and is not complete (for the host's
    // frame-completion deadline).
    bool inMessage() const;
    // Memory held for unfinished frames/messages (capacity of the buffers, not just size).
    std::size_t bufferedBytes() const;

private:
    enum class Stage { Header, Payload, Broken };

    std::optional<Violation> fail(std::uint16_t code, std::string what);
    std::optional<Violation> checkHeader();  // after a complete header
    std::optional<Violation> consumePayload(const std::uint8_t* data, std::size_t n);
    std::optional<Violation> finishFrame(std::vector<Message>& out);
    std::uint64_t messageLimitFor(Opcode op) const;

    Limits limits_;
    Stage stage_ = Stage::Header;
    std::optional<Violation> violation_;

    // Current frame header.
    std::uint8_t header_[14] = {};
    std::size_t headerHave_ = 0;
    std::size_t headerNeed_ = 2;
    bool fin_ = false;
    Opcode opcode_ = Opcode::Continuation;
    std::uint64_t payloadLength_ = 0;
    std::uint64_t payloadHave_ = 0;
    std::uint8_t mask_[4] = {};

    // Current control frame payload (<= 125 bytes, never interleaved into a data message).
    std::vector<std::uint8_t> control_;

    // Current data message (possibly fragmented).
    bool assembling_ = false;  // a data message has begun and its FIN frame has not ended
    Opcode messageKind_ = Opcode::Text;
    std::vector<std::uint8_t> message_;  // headroom + payload so far
    std::size_t messageOffset_ = 0;
    std::uint32_t utf8State_ = 0;  // incremental UTF-8 validation of the text message
};

// Server -> client frames are never masked.
// Writes the header of a frame into `out`; returns its length (2, 4 or 10).
std::size_t writeHeader(std::uint8_t out[10], Opcode op, std::uint64_t payloadLength,
                        bool fin = true);
std::vector<std::uint8_t> encodeFrame(Opcode op, const void* payload, std::size_t size);
// A close frame; the reason is cut to fit in 125 bytes at a UTF-8 character boundary.
std::vector<std::uint8_t> encodeClose(std::uint16_t code, const std::string& reason);

// RFC 6455 7.4: 1000-1003, 1007-1011, 3000-4999 (1004-1006, 1015, <1000, >=5000 invalid).
bool isValidCloseCode(std::uint16_t code);
bool isValidUtf8(const std::uint8_t* data, std::size_t size);

}  // namespace deskstream::core::ws
