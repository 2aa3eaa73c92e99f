// The frame_ack fast JSON path and the binary ack (see frame_ack.hpp).
#include "deskstream/core/frame_ack.hpp"

#include <cstring>

namespace deskstream::core {

namespace {

constexpr std::int64_t kMaxLatencyMs = 3600000;

class FlatScanner {
public:
    explicit FlatScanner(const std::string& t) : p_(t.data()), end_(t.data() + t.size()) {}

    void ws() {
        while (p_ < end_ && (*p_ == ' ' || *p_ == '\t' || *p_ == '\n' || *p_ == '\r')) ++p_;
    }
    bool take(char c) {
        ws();
        if (p_ < end_ && *p_ == c) {
            ++p_;
            return true;
        }
        return false;
    }
    // A string without escapes or control characters (anything else: not for the fast path).
    bool string(const char*& start, std::size_t& len) {
        ws();
        if (p_ >= end_ || *p_ != '"') return false;
        start = ++p_;
        while (p_ < end_ && *p_ != '"') {
            const unsigned char c = static_cast<unsigned char>(*p_);
            if (c == '\\' || c < 0x20 || c >= 0x80) return false;
            ++p_;
        }
        if (p_ >= end_) return false;
        len = static_cast<std::size_t>(p_ - start);
        ++p_;
        return true;
    }
    // A JSON integer >= 0 without fraction or exponent that fits in 64 bits.
    bool uint(std::uint64_t& v) {
        ws();
        if (p_ >= end_ || *p_ < '0' || *p_ > '9') return false;
        if (*p_ == '0' && p_ + 1 < end_ && p_[1] >= '0' && p_[1] <= '9') return false;
        v = 0;
        while (p_ < end_ && *p_ >= '0' && *p_ <= '9') {
            const std::uint64_t d = static_cast<std::uint64_t>(*p_ - '0');
            if (v > (UINT64_MAX - d) / 10) return false;
            v = v * 10 + d;
            ++p_;
        }
        // "15.0", "1e3": the full decoder's answer (it refuses them).
        return !(p_ < end_ && (*p_ == '.' || *p_ == 'e' || *p_ == 'E'));
    }
    bool atEnd() {
        ws();
        return p_ == end_;
    }

private:
    const char* p_;
    const char* end_;
};

bool is(const char* s, std::size_t n, const char* lit) {
    return n == std::strlen(lit) && std::memcmp(s, lit, n) == 0;
}

}  // namespace

std::optional<ViewerFrameAck> parseFrameAckFast(const std::string& text) {
    FlatScanner s(text);
    if (!s.take('{')) return std::nullopt;
    bool haveType = false, haveId = false, haveNumber = false, haveLatency = false,
         haveMonitor = false;
    ViewerFrameAck a;
    do {
        const char* key = nullptr;
        std::size_t keyLen = 0;
        if (!s.string(key, keyLen) || !s.take(':')) return std::nullopt;
        if (is(key, keyLen, "type")) {
            const char* v = nullptr;
            std::size_t n = 0;
            if (haveType || !s.string(v, n) || !is(v, n, "frame_ack")) return std::nullopt;
            haveType = true;
        } else if (is(key, keyLen, "desktopClientId")) {
            const char* v = nullptr;
            std::size_t n = 0;
            if (haveId || !s.string(v, n)) return std::nullopt;
            a.desktopClientId.assign(v, n);
            if (!isValidId(a.desktopClientId)) return std::nullopt;
            haveId = true;
        } else if (is(key, keyLen, "frameNumber")) {
            if (haveNumber || !s.uint(a.frameNumber)) return std::nullopt;
            haveNumber = true;
        } else if (is(key, keyLen, "latency")) {
            std::uint64_t v = 0;
            if (haveLatency || !s.uint(v) || v > static_cast<std::uint64_t>(kMaxLatencyMs))
                return std::nullopt;
            a.latency = static_cast<std::int64_t>(v);
            haveLatency = true;
        } else if (is(key, keyLen, "monitor")) {
            std::uint64_t v = 0;
            if (haveMonitor || !s.uint(v) || v > 65535) return std::nullopt;
            a.monitor = static_cast<int>(v);
            haveMonitor = true;
        } else {
            return std::nullopt;  // an extra field: the full decoder ignores or refuses it
        }
    } while (s.take(','));
    if (!s.take('}') || !s.atEnd()) return std::nullopt;
    if (!haveType || !haveId || !haveNumber || !haveLatency) return std::nullopt;
    return a;
}

Result<ViewerFrameAck> decodeBinaryAck(const std::uint8_t* d, std::size_t size) {
    if (size < kBinaryAckFixedBytes || d[0] != kBinaryAckMagic)
        return makeError(ErrorCode::BadRequest, "", "binary frame_ack shorter than 16 bytes");
    ViewerFrameAck a;
    for (int i = 0; i < 8; ++i) a.frameNumber = (a.frameNumber << 8) | d[1 + i];
    std::uint32_t latency = 0;
    for (int i = 0; i < 4; ++i) latency = (latency << 8) | d[9 + i];
    if (latency > kMaxLatencyMs)
        return makeError(ErrorCode::BadRequest, "latency", "must be within 0..3600000");
    a.latency = latency;
    const std::uint16_t monitor = static_cast<std::uint16_t>((d[13] << 8) | d[14]);
    if (monitor != kBinaryAckNoMonitor) a.monitor = monitor;
    const std::size_t n = d[15];
    if (size != kBinaryAckFixedBytes + n)
        return makeError(ErrorCode::BadRequest, "desktopClientId",
                         "binary frame_ack length disagrees with its id length");
    a.desktopClientId.assign(reinterpret_cast<const char*>(d + kBinaryAckFixedBytes), n);
    if (!isValidId(a.desktopClientId))
        return makeError(ErrorCode::BadRequest, "desktopClientId",
                         "must match [A-Za-z0-9._-]{1,128}");
    return a;
}

std::vector<std::uint8_t> encodeBinaryAck(const ViewerFrameAck& a) {
    std::vector<std::uint8_t> out(kBinaryAckFixedBytes + a.desktopClientId.size());
    out[0] = kBinaryAckMagic;
    for (int i = 0; i < 8; ++i)
        out[1 + i] = static_cast<std::uint8_t>(a.frameNumber >> (56 - 8 * i));
    const auto latency = static_cast<std::uint32_t>(a.latency);
    for (int i = 0; i < 4; ++i) out[9 + i] = static_cast<std::uint8_t>(latency >> (24 - 8 * i));
    const std::uint16_t monitor =
        a.monitor ? static_cast<std::uint16_t>(*a.monitor) : kBinaryAckNoMonitor;
    out[13] = static_cast<std::uint8_t>(monitor >> 8);
    out[14] = static_cast<std::uint8_t>(monitor & 0xff);
    out[15] = static_cast<std::uint8_t>(a.desktopClientId.size());
    std::memcpy(out.data() + kBinaryAckFixedBytes, a.desktopClientId.data(),
                a.desktopClientId.size());
    return out;
}

}  // namespace deskstream::core
