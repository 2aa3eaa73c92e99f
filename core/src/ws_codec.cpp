// The sans-IO WebSocket frame codec (see deskstream/ws_codec.hpp and docs/relay.md,
// "WebSocket conformance").
#include "deskstream/ws_codec.hpp"

#include <algorithm>
#include <cstring>

namespace deskstream::core::ws {

namespace {

constexpr std::uint16_t kProtocolError = 1002;
constexpr std::uint16_t kInvalidPayload = 1007;
constexpr std::uint16_t kTooLarge = 1009;
constexpr std::size_t kMaxControlPayload = 125;
// A message buffer is reserved ahead of the bytes that have arrived by as much as has arrived
// (amortised growth), at least kMinGrowth (a typical frame then needs one allocation) and at most
// kMaxGrowthChunk, never past the frame's declared end: a header that claims a large payload
// costs only what the peer actually sends plus a bounded chunk.
constexpr std::size_t kMaxGrowthChunk = 4u << 20;
constexpr std::size_t kMinGrowth = 1u << 20;

std::string tooLarge(Opcode kind, std::uint64_t limit) {
    return std::string(kind == Opcode::Text ? "text message" : "message") + " over the " +
           std::to_string(limit) + "-byte limit";
}

bool isControl(std::uint8_t op) { return (op & 0x8) != 0; }

bool isKnownOpcode(std::uint8_t op) {
    return op == 0 || op == 1 || op == 2 || op == 8 || op == 9 || op == 10;
}

// Incremental UTF-8 validation (RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF).
// The state packs the continuation bytes still expected (bits 0-7) and the range allowed for
// the next one (low bound bits 8-15, high bound bits 16-23); kUtf8Invalid is a dead state.
constexpr std::uint32_t kUtf8Accept = 0;
constexpr std::uint32_t kUtf8Invalid = 0xFFFFFFFFu;

constexpr std::uint32_t utf8Expect(std::uint32_t remaining, std::uint32_t lo, std::uint32_t hi) {
    return remaining | (lo << 8) | (hi << 16);
}

std::uint32_t utf8Step(std::uint32_t state, std::uint8_t b) {
    const std::uint32_t remaining = state & 0xFF;
    if (remaining == 0) {
        if (b < 0x80) return kUtf8Accept;
        if (b >= 0xC2 && b <= 0xDF) return utf8Expect(1, 0x80, 0xBF);
        if (b == 0xE0) return utf8Expect(2, 0xA0, 0xBF);  // no overlongs
        if (b == 0xED) return utf8Expect(2, 0x80, 0x9F);  // no surrogates
        if (b >= 0xE1 && b <= 0xEF) return utf8Expect(2, 0x80, 0xBF);
        if (b == 0xF0) return utf8Expect(3, 0x90, 0xBF);  // no overlongs
        if (b >= 0xF1 && b <= 0xF3) return utf8Expect(3, 0x80, 0xBF);
        if (b == 0xF4) return utf8Expect(3, 0x80, 0x8F);  // <= U+10FFFF
        return kUtf8Invalid;
    }
    const std::uint32_t lo = (state >> 8) & 0xFF;
    const std::uint32_t hi = (state >> 16) & 0xFF;
    if (b < lo || b > hi) return kUtf8Invalid;
    return remaining == 1 ? kUtf8Accept : utf8Expect(remaining - 1, 0x80, 0xBF);
}

std::uint32_t utf8Run(std::uint32_t state, const std::uint8_t* p, std::size_t n) {
    std::size_t i = 0;
    while (i < n) {
        if (state == kUtf8Accept) {
            // ASCII fast path, 8 bytes at a time.
            while (i + 8 <= n) {
                std::uint64_t w;
                std::memcpy(&w, p + i, 8);
                if ((w & 0x8080808080808080ull) != 0) break;
                i += 8;
            }
            if (i == n) break;
        }
        state = utf8Step(state, p[i++]);
        if (state == kUtf8Invalid) return state;
    }
    return state;
}

// dst[i] = src[i] ^ mask[(phase + i) % 4]
void unmask(std::uint8_t* dst, const std::uint8_t* src, std::size_t n, const std::uint8_t mask[4],
            std::size_t phase) {
    std::uint8_t rotated[8];
    for (std::size_t i = 0; i < 8; ++i) rotated[i] = mask[(phase + i) & 3];
    std::uint64_t m;
    std::memcpy(&m, rotated, 8);
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        std::uint64_t w;
        std::memcpy(&w, src + i, 8);
        w ^= m;
        std::memcpy(dst + i, &w, 8);
    }
    for (; i < n; ++i) dst[i] = src[i] ^ rotated[i & 7];
}

}  // namespace

Parser::Parser(Limits limits) : limits_(limits) {}

void Parser::setLimits(const Limits& limits) { limits_ = limits; }

std::optional<Violation> Parser::fail(std::uint16_t code, std::string what) {
    violation_ = Violation{code, std::move(what)};
    stage_ = Stage::Broken;
    // A broken stream keeps no payload memory.
    std::vector<std::uint8_t>().swap(message_);
    std::vector<std::uint8_t>().swap(control_);
    assembling_ = false;
    return violation_;
}

std::uint64_t Parser::messageLimitFor(Opcode op) const {
    if (op == Opcode::Text) return std::min(limits_.maxTextBytes, limits_.maxMessageBytes);
    return limits_.maxMessageBytes;
}

bool Parser::inMessage() const {
    return stage_ == Stage::Payload || headerHave_ > 0 || assembling_;
}

std::size_t Parser::bufferedBytes() const {
    return message_.capacity() + control_.capacity() + headerHave_;
}

std::optional<Violation> Parser::checkHeader() {
    const std::uint8_t b0 = header_[0];
    const std::uint8_t b1 = header_[1];
    const std::uint8_t op = b0 & 0x0F;
    std::uint64_t len = b1 & 0x7F;
    std::size_t at = 2;
    if (len == 126) {
        len = (std::uint64_t{header_[2]} << 8) | header_[3];
        at = 4;
    } else if (len == 127) {
        len = 0;
        for (std::size_t i = 0; i < 8; ++i) len = (len << 8) | header_[2 + i];
        at = 10;
        if ((len >> 63) != 0) return fail(kProtocolError, "64-bit length with the top bit set");
    }
    std::memcpy(mask_, header_ + at, 4);
    fin_ = (b0 & 0x80) != 0;
    opcode_ = static_cast<Opcode>(op);
    payloadLength_ = len;
    payloadHave_ = 0;

    if (isControl(op)) {
        control_.clear();
        control_.reserve(static_cast<std::size_t>(len));  // <= 125, checked with the first bytes
        return std::nullopt;
    }
    const Opcode kind = op == 0 ? messageKind_ : opcode_;
    const std::uint64_t limit = messageLimitFor(kind);
    const std::uint64_t have = assembling_ ? message_.size() - messageOffset_ : 0;
    if (have > limit || len > limit - have) {
        return fail(kTooLarge, tooLarge(kind, limit));
    }
    if (op != 0) {  // first frame of a data message
        assembling_ = true;
        messageKind_ = kind;
        messageOffset_ = kind == Opcode::Binary ? limits_.binaryHeadroom : 0;
        message_.clear();
        message_.shrink_to_fit();
        message_.resize(messageOffset_);
        utf8State_ = kUtf8Accept;
    }
    return std::nullopt;
}

std::optional<Violation> Parser::consumePayload(const std::uint8_t* data, std::size_t n) {
    const std::size_t phase = static_cast<std::size_t>(payloadHave_ & 3);
    if (isControl(static_cast<std::uint8_t>(opcode_))) {
        const std::size_t old = control_.size();
        control_.resize(old + n);
        unmask(control_.data() + old, data, n, mask_, phase);
        payloadHave_ += n;
        return std::nullopt;
    }
    const std::size_t old = message_.size();
    const std::size_t needed = old + n;
    if (needed > message_.capacity()) {
        // Grow with what arrived, by at most a bounded chunk, never past this frame's end.
        const std::size_t frameEnd = old + static_cast<std::size_t>(payloadLength_ - payloadHave_);
        const std::size_t growth = std::clamp(needed, kMinGrowth, kMaxGrowthChunk);
        message_.reserve(std::min(frameEnd, needed + growth));
    }
    message_.insert(message_.end(), data, data + n);
    unmask(message_.data() + old, message_.data() + old, n, mask_, phase);
    payloadHave_ += n;
    if (messageKind_ == Opcode::Text) {
        utf8State_ = utf8Run(utf8State_, message_.data() + old, n);
        if (utf8State_ == kUtf8Invalid) return fail(kInvalidPayload, "invalid UTF-8 in text");
    }
    return std::nullopt;
}

std::optional<Violation> Parser::finishFrame(std::vector<Message>& out) {
    stage_ = Stage::Header;
    headerHave_ = 0;
    headerNeed_ = 2;
    if (isControl(static_cast<std::uint8_t>(opcode_))) {
        Message m{opcode_, std::vector<std::uint8_t>(), 0, 0, std::string()};
        if (opcode_ == Opcode::Close) {
            if (control_.size() == 1) return fail(kProtocolError, "close with a 1-byte payload");
            if (control_.empty()) {
                m.closeCode = 1005;
            } else {
                m.closeCode = static_cast<std::uint16_t>((control_[0] << 8) | control_[1]);
                if (!isValidCloseCode(m.closeCode))
                    return fail(kProtocolError, "invalid close code");
                if (!isValidUtf8(control_.data() + 2, control_.size() - 2)) {
                    return fail(kInvalidPayload, "invalid UTF-8 in close reason");
                }
                m.closeReason.assign(control_.begin() + 2, control_.end());
            }
        }
        m.bytes = control_;  // small (<= 125 bytes); control_ keeps its buffer for the next one
        control_.clear();
        out.push_back(std::move(m));
        return std::nullopt;
    }
    if (!fin_) return std::nullopt;  // more fragments follow
    if (messageKind_ == Opcode::Text && utf8State_ != kUtf8Accept) {
        return fail(kInvalidPayload, "invalid UTF-8 in text");
    }
    Message m{messageKind_, std::move(message_), messageOffset_, 0, std::string()};
    message_ = std::vector<std::uint8_t>();
    assembling_ = false;
    messageOffset_ = 0;
    out.push_back(std::move(m));
    return std::nullopt;
}

std::optional<Violation> Parser::feed(const std::uint8_t* data, std::size_t size,
                                      std::vector<Message>& out) {
    if (stage_ == Stage::Broken) return violation_;
    // Limits may have been lowered since the pending frame/message was accepted.
    if (assembling_) {
        const std::uint64_t limit = messageLimitFor(messageKind_);
        std::uint64_t pending = message_.size() - messageOffset_;
        if (stage_ == Stage::Payload && !isControl(static_cast<std::uint8_t>(opcode_))) {
            pending += payloadLength_ - payloadHave_;
        }
        if (pending > limit) return fail(kTooLarge, tooLarge(messageKind_, limit));
    }
    while (size > 0) {
        if (stage_ == Stage::Header) {
            const std::size_t take = std::min(size, headerNeed_ - headerHave_);
            std::memcpy(header_ + headerHave_, data, take);
            headerHave_ += take;
            data += take;
            size -= take;
            if (headerHave_ == 2 && headerNeed_ == 2) {
                // The first two bytes decide most rules; check them before waiting for more.
                const std::uint8_t b0 = header_[0];
                const std::uint8_t b1 = header_[1];
                const std::uint8_t op = b0 & 0x0F;
                const std::uint8_t len7 = b1 & 0x7F;
                if ((b0 & 0x70) != 0) return fail(kProtocolError, "reserved bits set");
                if (!isKnownOpcode(op)) return fail(kProtocolError, "unknown opcode");
                if ((b1 & 0x80) == 0) return fail(kProtocolError, "unmasked client frame");
                if (isControl(op)) {
                    if ((b0 & 0x80) == 0) return fail(kProtocolError, "fragmented control frame");
                    if (len7 > kMaxControlPayload) {
                        return fail(kProtocolError, "control frame over 125 bytes");
                    }
                } else if (op == 0 && !assembling_) {
                    return fail(kProtocolError, "continuation without a message");
                } else if (op != 0 && assembling_) {
                    return fail(kProtocolError, "new message inside a fragmented one");
                }
                headerNeed_ = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + 4;
            }
            if (headerHave_ < headerNeed_) continue;
            if (auto v = checkHeader()) return v;
            stage_ = Stage::Payload;
            if (payloadLength_ == 0) {
                if (auto v = finishFrame(out)) return v;
            }
            continue;
        }
        // Stage::Payload
        const std::size_t take =
            static_cast<std::size_t>(std::min<std::uint64_t>(size, payloadLength_ - payloadHave_));
        if (auto v = consumePayload(data, take)) return v;
        data += take;
        size -= take;
        if (payloadHave_ == payloadLength_) {
            if (auto v = finishFrame(out)) return v;
        }
    }
    return std::nullopt;
}

std::size_t writeHeader(std::uint8_t out[10], Opcode op, std::uint64_t payloadLength, bool fin) {
    out[0] = static_cast<std::uint8_t>((fin ? 0x80 : 0x00) | static_cast<std::uint8_t>(op));
    if (payloadLength < 126) {
        out[1] = static_cast<std::uint8_t>(payloadLength);
        return 2;
    }
    if (payloadLength <= 0xFFFF) {
        out[1] = 126;
        out[2] = static_cast<std::uint8_t>(payloadLength >> 8);
        out[3] = static_cast<std::uint8_t>(payloadLength);
        return 4;
    }
    out[1] = 127;
    for (int i = 0; i < 8; ++i)
        out[2 + i] = static_cast<std::uint8_t>(payloadLength >> (56 - 8 * i));
    return 10;
}

std::vector<std::uint8_t> encodeFrame(Opcode op, const void* payload, std::size_t size) {
    std::uint8_t header[10];
    const std::size_t h = writeHeader(header, op, size);
    std::vector<std::uint8_t> frame;
    frame.reserve(h + size);
    frame.insert(frame.end(), header, header + h);
    const auto* p = static_cast<const std::uint8_t*>(payload);
    if (size > 0) frame.insert(frame.end(), p, p + size);
    return frame;
}

std::vector<std::uint8_t> encodeClose(std::uint16_t code, const std::string& reason) {
    std::size_t n = std::min<std::size_t>(reason.size(), kMaxControlPayload - 2);
    // Cut at a character boundary: never leave half a UTF-8 sequence (the peer would fail 1007).
    if (n < reason.size()) {
        while (n > 0 && (static_cast<std::uint8_t>(reason[n]) & 0xC0) == 0x80) --n;
    }
    std::vector<std::uint8_t> payload;
    payload.reserve(2 + n);
    payload.push_back(static_cast<std::uint8_t>(code >> 8));
    payload.push_back(static_cast<std::uint8_t>(code));
    payload.insert(payload.end(), reason.begin(), reason.begin() + static_cast<std::ptrdiff_t>(n));
    return encodeFrame(Opcode::Close, payload.data(), payload.size());
}

bool isValidCloseCode(std::uint16_t code) {
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011) ||
           (code >= 3000 && code <= 4999);
}

bool isValidUtf8(const std::uint8_t* data, std::size_t size) {
    return utf8Run(kUtf8Accept, data, size) == kUtf8Accept;
}

}  // namespace deskstream::core::ws
