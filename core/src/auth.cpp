#include "deskstream/core/auth.hpp"

#include <Poco/Dynamic/Var.h>
#include <Poco/HMACEngine.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/JWT/Signer.h>
#include <Poco/JWT/Token.h>
#include <Poco/SHA2Engine.h>
#include <Poco/Timestamp.h>

#include <algorithm>
#include <limits>

namespace deskstream::core {
namespace {

// HMACEngine needs BLOCK_SIZE/DIGEST_SIZE, which Poco's SHA2Engine (multi-size) lacks.
class Sha256 : public Poco::SHA2Engine {
public:
    enum { BLOCK_SIZE = 64, DIGEST_SIZE = 32 };
    Sha256() : Poco::SHA2Engine(SHA_256) {}
};

const char kB64Url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string base64UrlEncode(const unsigned char* data, std::size_t n) {
    std::string out;
    out.reserve((n * 4 + 2) / 3);
    std::size_t i = 0;
    for (; i + 2 < n; i += 3) {
        const unsigned v = (data[i] << 16) | (data[i + 1] << 8) | data[i + 2];
        out += kB64Url[(v >> 18) & 63];
        out += kB64Url[(v >> 12) & 63];
        out += kB64Url[(v >> 6) & 63];
        out += kB64Url[v & 63];
    }
    if (n - i == 1) {
        const unsigned v = data[i] << 16;
        out += kB64Url[(v >> 18) & 63];
        out += kB64Url[(v >> 12) & 63];
    } else if (n - i == 2) {
        const unsigned v = (data[i] << 16) | (data[i + 1] << 8);
        out += kB64Url[(v >> 18) & 63];
        out += kB64Url[(v >> 12) & 63];
        out += kB64Url[(v >> 6) & 63];
    }
    return out;
}

bool isB64UrlText(const std::string& s) {
    for (char c : s) {
        const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                        (c >= '0' && c <= '9') || c == '-' || c == '_';
        if (!ok) return false;
    }
    return !s.empty();
}

std::string hs256(const std::string& secret, const std::string& signingInput) {
    Poco::HMACEngine<Sha256> hmac(secret);
    hmac.update(signingInput);
    const Poco::DigestEngine::Digest& d = hmac.digest();
    return base64UrlEncode(d.data(), d.size());
}

Error unauthorized(const std::string& why) {
    return makeError(ErrorCode::Unauthorized, "token", "token rejected: " + why);
}

// Claims may be written as integers or (by some libraries) as doubles.
bool numericClaim(const Poco::JSON::Object& payload, const char* key, std::int64_t& out) {
    if (!payload.has(key)) return false;
    Poco::Dynamic::Var v = payload.get(key);
    if (v.isEmpty() || v.isString() || v.isBoolean() || !v.isNumeric()) return false;
    const double d = v.convert<double>();
    if (!(d > -1e15 && d < 1e15)) return false;  // also rejects NaN
    out = static_cast<std::int64_t>(d);
    return true;
}

// "desktops": "*" or an array of ids; "rights": an array of "view" / "control". Absent: the
// token predates scopes and allows everything (docs/security.md).
Result<ViewerScope> scopeClaims(const Poco::JSON::Object& payload) {
    ViewerScope scope;
    if (payload.has("desktops")) {
        Poco::Dynamic::Var d = payload.get("desktops");
        if (d.isString() && d.extract<std::string>() == "*") {
            scope.allDesktops = true;
        } else if (payload.isArray("desktops")) {
            scope.allDesktops = false;
            Poco::JSON::Array::Ptr list = payload.getArray("desktops");
            if (!list || list->size() > limits::kMaxDesktopList)
                return unauthorized("bad desktops claim");
            for (std::size_t i = 0; i < list->size(); ++i) {
                Poco::Dynamic::Var id = list->get(static_cast<unsigned>(i));
                if (!id.isString() || !isValidId(id.extract<std::string>()))
                    return unauthorized("bad desktops claim");
                scope.desktops.push_back(id.extract<std::string>());
            }
        } else {
            return unauthorized("bad desktops claim");
        }
    }
    if (payload.has("rights")) {
        if (!payload.isArray("rights")) return unauthorized("bad rights claim");
        Poco::JSON::Array::Ptr list = payload.getArray("rights");
        if (!list || list->size() > 8) return unauthorized("bad rights claim");
        scope.control = false;
        bool view = false;
        for (std::size_t i = 0; i < list->size(); ++i) {
            Poco::Dynamic::Var r = list->get(static_cast<unsigned>(i));
            if (!r.isString()) return unauthorized("bad rights claim");
            const std::string right = r.extract<std::string>();
            if (right == "view")
                view = true;
            else if (right == "control")
                scope.control = true;
            else
                return unauthorized("unknown right");
        }
        if (!view) return unauthorized("rights without view");
    }
    return scope;
}

}  // namespace

bool constantTimeEquals(const std::string& a, const std::string& b) {
    if (a.size() != b.size()) return false;
    unsigned char diff = 0;
    for (std::size_t i = 0; i < a.size(); ++i)
        diff |= static_cast<unsigned char>(a[i]) ^ static_cast<unsigned char>(b[i]);
    return diff == 0;
}

bool ViewerScope::maySee(const std::string& clientId) const {
    return allDesktops || std::find(desktops.begin(), desktops.end(), clientId) != desktops.end();
}

Result<ViewerScope> parseViewerScope(const std::string& desktops, const std::string& rights) {
    ViewerScope scope;
    auto split = [](const std::string& text) {
        std::vector<std::string> out;
        std::size_t start = 0;
        while (start <= text.size()) {
            const std::size_t comma = std::min(text.find(',', start), text.size());
            out.push_back(text.substr(start, comma - start));
            start = comma + 1;
        }
        return out;
    };
    if (desktops != "*") {
        scope.allDesktops = false;
        for (const std::string& id : split(desktops)) {
            if (!isValidId(id))
                return makeError(ErrorCode::BadRequest, "desktops",
                                 "desktops must be * or clientIds separated by commas");
            scope.desktops.push_back(id);
        }
        if (scope.desktops.size() > limits::kMaxDesktopList)
            return makeError(ErrorCode::BadRequest, "desktops", "too many desktops");
    }
    if (rights == "view")
        scope.control = false;
    else if (rights == "view,control" || rights == "control,view")
        scope.control = true;
    else
        return makeError(ErrorCode::BadRequest, "rights", "rights must be view or view,control");
    return scope;
}

std::string mintToken(const std::string& secret, Role role, const std::string& sub, Duration ttl,
                      WallMs nowMs, const ViewerScope& scope) {
    Poco::JWT::Token token;
    token.setType("JWT");
    token.setSubject(sub);
    token.payload().set("role", std::string(toString(role)));
    if (role == Role::Viewer) {
        if (scope.allDesktops) {
            token.payload().set("desktops", std::string("*"));
        } else {
            Poco::JSON::Array::Ptr list = new Poco::JSON::Array;
            for (const auto& id : scope.desktops) list->add(id);
            token.payload().set("desktops", list);
        }
        Poco::JSON::Array::Ptr rights = new Poco::JSON::Array;
        rights->add(std::string("view"));
        if (scope.control) rights->add(std::string("control"));
        token.payload().set("rights", rights);
    }
    // Poco::Timestamp is in microseconds; the claims are written in whole seconds.
    token.setIssuedAt(Poco::Timestamp(nowMs * 1000));
    token.setExpiration(Poco::Timestamp(nowMs * 1000 + ttl.count()));
    Poco::JWT::Signer signer(secret);
    return signer.sign(token, Poco::JWT::Signer::ALGO_HS256);
}

Result<TokenClaims> verifyToken(const std::string& token, const std::string& secret,
                                Role expectedRole, WallMs nowMs, Duration leeway) {
    if (secret.empty()) return unauthorized("no secret configured");
    if (token.empty()) return unauthorized("missing");
    if (token.size() > limits::kMaxTokenLength) return unauthorized("too long");

    const auto dot1 = token.find('.');
    const auto dot2 = dot1 == std::string::npos ? dot1 : token.find('.', dot1 + 1);
    if (dot2 == std::string::npos || token.find('.', dot2 + 1) != std::string::npos)
        return unauthorized("not a JWS compact token");
    const std::string headerPart = token.substr(0, dot1);
    const std::string payloadPart = token.substr(dot1 + 1, dot2 - dot1 - 1);
    const std::string sigPart = token.substr(dot2 + 1);
    if (!isB64UrlText(headerPart) || !isB64UrlText(payloadPart)) return unauthorized("malformed");
    if (sigPart.empty()) return unauthorized("unsigned (alg none is not accepted)");
    if (!isB64UrlText(sigPart)) return unauthorized("malformed signature");

    Poco::JWT::Token parsed;
    try {
        parsed = Poco::JWT::Token(token);  // parses header and payload JSON only
    } catch (const std::exception&) {
        return unauthorized("malformed");
    }
    // Only the configured algorithm: refuses "none", HS384/512, RS*/ES* (key confusion).
    std::string alg;
    try {
        alg = parsed.getAlgorithm();
    } catch (const std::exception&) {
        return unauthorized("bad alg");
    }
    if (alg != "HS256") return unauthorized("alg '" + alg.substr(0, 16) + "' not accepted");

    // Constant time: Poco::JWT::Signer compares digests with ==.
    const std::string expected = hs256(secret, headerPart + "." + payloadPart);
    if (!constantTimeEquals(expected, sigPart)) return unauthorized("bad signature");

    const Poco::JSON::Object& payload = parsed.payload();
    const std::int64_t nowSec = nowMs / 1000;
    const std::int64_t leewaySec = std::chrono::duration_cast<std::chrono::seconds>(leeway).count();
    TokenClaims claims;
    if (!numericClaim(payload, "exp", claims.exp)) return unauthorized("no exp claim");
    if (nowSec >= claims.exp + leewaySec) return unauthorized("expired");
    std::int64_t nbf = 0;
    if (payload.has("nbf")) {
        if (!numericClaim(payload, "nbf", nbf)) return unauthorized("bad nbf claim");
        if (nowSec + leewaySec < nbf) return unauthorized("not valid yet");
    }
    numericClaim(payload, "iat", claims.iat);

    Poco::Dynamic::Var role = payload.has("role") ? payload.get("role") : Poco::Dynamic::Var();
    if (role.isEmpty() || !role.isString()) return unauthorized("no role claim");
    const std::string roleText = role.extract<std::string>();
    if (roleText == "desktop")
        claims.role = Role::Desktop;
    else if (roleText == "viewer")
        claims.role = Role::Viewer;
    else
        return unauthorized("unknown role");
    if (claims.role != expectedRole)
        return unauthorized(std::string("role '") + roleText + "' not allowed on this endpoint");

    Poco::Dynamic::Var sub = payload.has("sub") ? payload.get("sub") : Poco::Dynamic::Var();
    if (sub.isEmpty() || !sub.isString()) return unauthorized("no sub claim");
    claims.sub = sub.extract<std::string>();
    if (claims.sub.empty() || claims.sub.size() > limits::kMaxIdLength)
        return unauthorized("bad sub claim");
    if (claims.role == Role::Viewer) {
        auto scope = scopeClaims(payload);
        if (!scope.ok()) return scope.error();
        claims.scope = scope.value();
    }
    return claims;
}

}  // namespace deskstream::core
