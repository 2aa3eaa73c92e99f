// deskstream core: HS256 JSON Web Tokens for agents and viewers.
//
// Tokens carry {"sub": <clientId or user>, "role": "desktop"|"viewer", "iat", "exp"
// [, "nbf"]}. verifyToken accepts ONLY alg HS256 (alg "none" and every other alg are refused),
// compares the signature in constant time (Poco::JWT compares with ==, see docs/poco-pitfalls.md),
// checks exp and nbf with a small leeway, and requires the role claim to match the endpoint
// (/ws/agent -> desktop, /ws/viewer -> viewer). Every failure is ErrorCode::Unauthorized with a
// message that never contains the token or the secret.
//
// Time comes in as WallMs (epoch ms): the core has no clock.
#pragma once

#include "deskstream/core/protocol.hpp"
#include "deskstream/core/types.hpp"

#include <cstdint>
#include <string>

namespace deskstream::core {

struct TokenClaims {
    std::string sub;
    Role role = Role::Viewer;
    std::int64_t iat = 0;  // seconds since epoch
    std::int64_t exp = 0;  // seconds since epoch
};

/// Mints an HS256 token valid from now for `ttl`. secret must be non-empty.
std::string mintToken(const std::string& secret, Role role, const std::string& sub, Duration ttl,
                      WallMs nowMs);

/// Verifies `token` for an endpoint expecting `expectedRole`.
/// leeway: tolerance for exp/nbf (clock skew), default 30 s.
Result<TokenClaims> verifyToken(const std::string& token, const std::string& secret,
                                Role expectedRole, WallMs nowMs,
                                Duration leeway = std::chrono::seconds(30));

/// Constant-time equality of two byte strings (length is not secret).
bool constantTimeEquals(const std::string& a, const std::string& b);

}  // namespace deskstream::core
