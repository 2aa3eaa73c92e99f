// Fuzz target token: one bearer token into the verifier (verifyToken) for both endpoints.
// The valid seed tokens (corpus/token/valid-*) are HS256, signed with kSecret below, iat
// 2025-11-30, exp 2100-01-01, so valid at kNowMs; the others are refused for the reason their
// file name gives (alg none, HS512, tampered payload, wrong secret, expired, nbf ahead, ...).
// Promises checked (docs/protocol.md, "Authentication"): an accepted token has a usable sub and the
// endpoint's role and is not expired; changing one character of its signature gets it refused;
// a refusal's message never contains the token or the secret.
#include "targets.hpp"

#include "deskstream/core/auth.hpp"

#include <string>

namespace deskstream::fuzz {

using namespace deskstream::core;

namespace {
// Longer than the 16 characters of an alg name a refusal may quote.
const std::string kSecret = "deskstream-fuzz-secret-0123456789";
constexpr WallMs kNowMs = 1800000000000;  // 2027-01-15, inside the seeds' validity
}  // namespace

void token(const std::uint8_t* data, std::size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    for (Role role : {Role::Desktop, Role::Viewer}) {
        Result<TokenClaims> r = verifyToken(text, kSecret, role, kNowMs);
        if (!r.ok()) {
            const std::string& why = r.error().message;
            DS_FUZZ_CHECK(r.error().code == ErrorCode::Unauthorized, "refusals are unauthorized");
            DS_FUZZ_CHECK(why.find(kSecret) == std::string::npos, "no secret in the message");
            // A refusal may quote 16 characters of the alg; the fixed texts hold no '.'.
            if (text.size() > 16 && text.find('.') != std::string::npos)
                DS_FUZZ_CHECK(why.find(text) == std::string::npos, "no token in the message");
            continue;
        }
        const TokenClaims& c = r.value();
        DS_FUZZ_CHECK(c.role == role, "the endpoint's role");
        DS_FUZZ_CHECK(!c.sub.empty() && c.sub.size() <= limits::kMaxIdLength, "a usable sub");
        DS_FUZZ_CHECK(kNowMs / 1000 < c.exp + 30, "not expired (30 s leeway)");

        // Any one-character change of the signature is refused.
        const std::size_t sig = text.rfind('.') + 1;
        for (std::size_t i = sig; i < text.size(); ++i) {
            std::string tampered = text;
            tampered[i] = tampered[i] == 'A' ? 'B' : 'A';
            DS_FUZZ_CHECK(!verifyToken(tampered, kSecret, role, kNowMs).ok(),
                          "a tampered signature is refused");
        }
        DS_FUZZ_CHECK(!verifyToken(text, kSecret + "x", role, kNowMs).ok(),
                      "another secret refuses it");
    }
}

}  // namespace deskstream::fuzz
