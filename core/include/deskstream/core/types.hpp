// deskstream core: basic vocabulary shared by every core module.
//
// TIME. The core never reads a clock. Two kinds of time are passed in by the host:
//   * TimePoint: a MONOTONIC instant, std::chrono::microseconds since an arbitrary origin
//     (the host typically uses steady_clock via fromSteady(); tests use a fake counter).
//     Every timer (heartbeat, handshake timeout, flow control, fan-out) works on TimePoint.
//   * WallMs (int64_t): epoch milliseconds, only where a value leaves the process or is
//     stored (store records, serverTime in pongs, token exp/nbf in seconds derived from it).
//
// ERRORS. Decoders never throw on bad input: they return Result<T>, which holds either a
// value or an Error {code, message, field}. Error codes are the protocol's `error.code` strings.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <variant>

namespace deskstream::core {

using Duration = std::chrono::microseconds;
using TimePoint = std::chrono::microseconds;  // monotonic, arbitrary origin
using WallMs = std::int64_t;                  // epoch milliseconds

/// Converts a steady_clock instant into a core TimePoint (origin: the steady clock's epoch).
inline TimePoint fromSteady(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration_cast<TimePoint>(t.time_since_epoch());
}
inline std::int64_t toMs(Duration d) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}
inline Duration fromMs(std::int64_t ms) { return std::chrono::milliseconds(ms); }

/// Connection handle chosen by the host (any unique number per live WebSocket; never reused
/// while the connection is known to the core). 0 means "no connection".
using ConnId = std::uint64_t;

/// WebSocket close codes used by the protocol (see docs/protocol.md).
namespace close_code {
constexpr int kNormal = 1000;
constexpr int kPolicy = 1008;    // handshake missing/late/bad, auth, registration failed
constexpr int kTooLarge = 1009;  // message over the configured maximum
constexpr int kInternal = 1011;
constexpr int kReplaced = 4000;  // same clientId connected again elsewhere
constexpr int kHeartbeatTimeout = 4008;
}  // namespace close_code

/// Protocol error codes (the "code" of `error` and `registration_failed` messages).
enum class ErrorCode {
    BadRequest,        // "bad_request": malformed JSON, unknown type, wrong field type/value
    Unauthorized,      // "unauthorized": token missing/invalid/expired/wrong role
    NotFound,          // "not_found": unknown desktop or command
    TooLarge,          // "too_large": message over a limit
    RateLimited,       // "rate_limited"
    Internal,          // "internal"
    StoreUnavailable,  // "store_unavailable": only in registration_failed
    ProtocolMismatch,  // "protocol_mismatch": only in registration_failed
    Conflict,          // "conflict": a commandId reused for a different command
    Forbidden,         // "forbidden": a valid token whose scope does not cover the request
};

/// "bad_request", "unauthorized", ... (the wire spelling).
const char* toString(ErrorCode code);
/// Parses the wire spelling; false when unknown.
bool parseErrorCode(const std::string& text, ErrorCode& out);

/// A failed decode/validation: code for the peer, a message naming the offending field.
struct Error {
    ErrorCode code = ErrorCode::BadRequest;
    std::string message;  // human readable, safe to send to the peer (never contains secrets)
    std::string field;    // JSON field / header field at fault; empty when not field-specific
};

/// Either a T or an Error. Small on purpose (C++17 has no std::expected).
template <class T>
class Result {
public:
    Result(T value) : v_(std::move(value)) {}      // NOLINT(implicit)
    Result(Error error) : v_(std::move(error)) {}  // NOLINT(implicit)
    bool ok() const { return v_.index() == 0; }
    explicit operator bool() const { return ok(); }
    /// Precondition: ok().
    const T& value() const& { return std::get<0>(v_); }
    T& value() & { return std::get<0>(v_); }
    T&& value() && { return std::get<0>(std::move(v_)); }
    const T& operator*() const& { return value(); }
    const T* operator->() const { return &value(); }
    /// Precondition: !ok().
    const Error& error() const { return std::get<1>(v_); }

private:
    std::variant<T, Error> v_;
};

inline Error makeError(ErrorCode code, std::string field, std::string message) {
    return Error{code, std::move(message), std::move(field)};
}

/// Identifier rules shared by the codec and the registry.
namespace limits {
constexpr std::size_t kMaxIdLength = 128;    // clientId, viewerId, commandId, instanceId
constexpr std::size_t kMaxNameLength = 256;  // name, hostname, monitor name
constexpr std::size_t kMaxTokenLength = 8192;
constexpr std::size_t kMaxMonitors = 16;
constexpr std::size_t kMaxCodecs = 16;
constexpr std::size_t kMaxShortString = 64;    // codec names, encoder, key, status
constexpr std::size_t kMaxMessageText = 1024;  // error/message texts
constexpr std::size_t kMaxUrlLength = 2048;
constexpr std::size_t kMaxControlMessageBytes = 65536;  // a JSON text message
constexpr std::size_t kMaxDesktopList = 10000;          // availableDesktopClients / desktops
constexpr int kProtocolVersion = 1;
}  // namespace limits

/// True when `id` matches [A-Za-z0-9._-]{1,128}.
bool isValidId(const std::string& id);

/// Where fresh ids (command ids, instance ids) come from. The core never reads OS randomness:
/// the host injects a source (random version 4 UUIDs), tests inject a deterministic one.
using IdSource = std::function<std::string()>;

/// Canonical lower-case text form of a version 4 UUID made from 16 bytes (the version and
/// variant bits are set here), e.g. from a CSPRNG in the host or a counter in tests.
std::string uuidFromBytes(const std::array<std::uint8_t, 16>& bytes);

}  // namespace deskstream::core
