// deskstream core: HS256 JSON Web Tokens for agents and viewers.
//
// Tokens carry {"sub": <clientId or user>, "role": "desktop"|"viewer", "iat", "exp"
// [, "nbf"]}; viewer tokens may add "desktops" (a list of clientIds, or "*") and "rights"
// (["view"] or ["view","control"]) — a viewer token without them may see and control every
// desktop (tokens minted before scopes existed; docs/security.md). verifyToken accepts ONLY alg HS256 (alg "none" and every other alg are refused),
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
#include <vector>

namespace deskstream::core {

/// What a viewer token allows: which desktops, and whether it may send input / set_config.
struct ViewerScope {
    bool allDesktops = true;            // "desktops": "*" (or no claim)
    std::vector<std::string> desktops;  // when !allDesktops: the clientIds it may see
    bool control = true;                // "rights" contains "control" (or no claim)

    bool maySee(const std::string& clientId) const;
    /// Input and set_config need control; every command needs the desktop in scope.
    bool mayCommand(const std::string& clientId, bool needsControl) const {
        return maySee(clientId) && (control || !needsControl);
    }
    static ViewerScope everything() { return ViewerScope{}; }
    bool operator==(const ViewerScope& o) const {
        return allDesktops == o.allDesktops && desktops == o.desktops && control == o.control;
    }
};

/// Parses the CLI's spellings: desktops "*" or "a,b,c"; rights "view" or "view,control".
Result<ViewerScope> parseViewerScope(const std::string& desktops, const std::string& rights);

struct TokenClaims {
    std::string sub;
    Role role = Role::Viewer;
    std::int64_t iat = 0;  // seconds since epoch
    std::int64_t exp = 0;  // seconds since epoch
    ViewerScope scope;     // viewers only (desktop tokens: everything, unused)
};

/// Mints an HS256 token valid from now for `ttl`. secret must be non-empty. A viewer token
/// gets "desktops" and "rights" claims from `scope`.
std::string mintToken(const std::string& secret, Role role, const std::string& sub, Duration ttl,
                      WallMs nowMs, const ViewerScope& scope = ViewerScope::everything());

/// Verifies `token` for an endpoint expecting `expectedRole`.
/// leeway: tolerance for exp/nbf (clock skew), default 30 s.
Result<TokenClaims> verifyToken(const std::string& token, const std::string& secret,
                                Role expectedRole, WallMs nowMs,
                                Duration leeway = std::chrono::seconds(30));

/// Constant-time equality of two byte strings (length is not secret).
bool constantTimeEquals(const std::string& a, const std::string& b);

}  // namespace deskstream::core
