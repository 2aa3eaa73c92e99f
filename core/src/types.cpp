#include "deskstream/core/types.hpp"

#include <Poco/UUID.h>
#include <Poco/UUIDGenerator.h>

namespace deskstream::core {

const char* toString(ErrorCode code) {
    switch (code) {
    case ErrorCode::BadRequest: return "bad_request";
    case ErrorCode::Unauthorized: return "unauthorized";
    case ErrorCode::NotFound: return "not_found";
    case ErrorCode::TooLarge: return "too_large";
    case ErrorCode::RateLimited: return "rate_limited";
    case ErrorCode::Internal: return "internal";
    case ErrorCode::StoreUnavailable: return "store_unavailable";
    case ErrorCode::ProtocolMismatch: return "protocol_mismatch";
    case ErrorCode::Conflict: return "conflict";
    }
    return "internal";
}

bool parseErrorCode(const std::string& text, ErrorCode& out) {
    static const ErrorCode all[] = {ErrorCode::BadRequest,   ErrorCode::Unauthorized,
                                    ErrorCode::NotFound,     ErrorCode::TooLarge,
                                    ErrorCode::RateLimited,  ErrorCode::Internal,
                                    ErrorCode::StoreUnavailable, ErrorCode::ProtocolMismatch,
                                    ErrorCode::Conflict};
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

std::string newUuid() {
    // createRandom(): version 4 from Poco's RandomInputStream (the OS CSPRNG); thread-safe.
    return Poco::UUIDGenerator::defaultGenerator().createRandom().toString();
}

}  // namespace deskstream::core
