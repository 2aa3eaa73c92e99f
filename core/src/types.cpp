#include "deskstream/core/types.hpp"

namespace deskstream::core {

const char* toString(ErrorCode code) {
    switch (code) {
        case ErrorCode::BadRequest:
            return "bad_request";
        case ErrorCode::Unauthorized:
            return "unauthorized";
        case ErrorCode::NotFound:
            return "not_found";
        case ErrorCode::TooLarge:
            return "too_large";
        case ErrorCode::RateLimited:
            return "rate_limited";
        case ErrorCode::Internal:
            return "internal";
        case ErrorCode::StoreUnavailable:
            return "store_unavailable";
        case ErrorCode::ProtocolMismatch:
            return "protocol_mismatch";
        case ErrorCode::Conflict:
            return "conflict";
        case ErrorCode::Forbidden:
            return "forbidden";
    }
    return "internal";
}

bool parseErrorCode(const std::string& text, ErrorCode& out) {
    static const ErrorCode all[] = {ErrorCode::BadRequest,       ErrorCode::Unauthorized,
                                    ErrorCode::NotFound,         ErrorCode::TooLarge,
                                    ErrorCode::RateLimited,      ErrorCode::Internal,
                                    ErrorCode::StoreUnavailable, ErrorCode::ProtocolMismatch,
                                    ErrorCode::Conflict,         ErrorCode::Forbidden};
    for (ErrorCode c : all) {
        if (text == toString(c)) {
            out = c;
            return true;
        }
    }
    return false;
}

bool isValidId(const std::string& id) {
    if (id.empty() || id.size() > limits::kMaxIdLength) return false;
    for (char ch : id) {
        const bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                        (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-';
        if (!ok) return false;
    }
    return true;
}

std::string uuidFromBytes(const std::array<std::uint8_t, 16>& bytes) {
    std::array<std::uint8_t, 16> b = bytes;
    b[6] = static_cast<std::uint8_t>((b[6] & 0x0f) | 0x40);  // version 4
    b[8] = static_cast<std::uint8_t>((b[8] & 0x3f) | 0x80);  // RFC 4122 variant
    static const char* hex = "0123456789abcdef";
    std::string out;
    out.reserve(36);
    for (std::size_t i = 0; i < b.size(); ++i) {
        if (i == 4 || i == 6 || i == 8 || i == 10) out.push_back('-');
        out.push_back(hex[b[i] >> 4]);
        out.push_back(hex[b[i] & 0x0f]);
    }
    return out;
}

}  // namespace deskstream::core
