// HS256 tokens: valid, expired, not yet valid, wrong role, wrong secret, alg none, other algs,
// tampered payload or signature, garbage.
#include "deskstream/core/auth.hpp"

#include <Poco/Base64Encoder.h>
#include <Poco/JSON/Parser.h>
#include <Poco/JWT/Signer.h>
#include <Poco/JWT/Token.h>

#include <gtest/gtest.h>

#include <sstream>

using namespace deskstream::core;
using namespace std::chrono_literals;

namespace {
const std::string kSecret = "correct horse battery staple";
const WallMs kNow = 1750000000000;  // fixed wall clock (ms)

std::string b64url(const std::string& s) {
    std::ostringstream out;
    Poco::Base64Encoder enc(out, Poco::BASE64_URL_ENCODING | Poco::BASE64_NO_PADDING);
    enc.rdbuf()->setLineLength(0);
    enc << s;
    enc.close();
    return out.str();
}

std::string part(const std::string& token, int i) {
    std::size_t a = 0;
    for (int k = 0; k < i; ++k) a = token.find('.', a) + 1;
    std::size_t b = token.find('.', a);
    return token.substr(a, b == std::string::npos ? std::string::npos : b - a);
}

void expectRejected(const std::string& token, Role role, const std::string& why, WallMs now = kNow,
                    const std::string& secret = kSecret) {
    auto r = verifyToken(token, secret, role, now);
    ASSERT_FALSE(r.ok()) << why;
    EXPECT_EQ(r.error().code, ErrorCode::Unauthorized) << why;
    EXPECT_EQ(r.error().message.find(kSecret), std::string::npos);
    EXPECT_NE(r.error().message.find(why), std::string::npos) << r.error().message;
}
}  // namespace

TEST(Auth, MintAndVerify) {
    std::string t = mintToken(kSecret, Role::Desktop, "office-pc", 1h, kNow);
    auto r = verifyToken(t, kSecret, Role::Desktop, kNow);
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r->sub, "office-pc");
    EXPECT_EQ(r->role, Role::Desktop);
    EXPECT_EQ(r->iat, kNow / 1000);
    EXPECT_EQ(r->exp, kNow / 1000 + 3600);
    // Poco's own verifier agrees it is a proper HS256 token.
    Poco::JWT::Signer signer(kSecret);
    Poco::JWT::Token parsed = signer.verify(t);
    EXPECT_EQ(parsed.getAlgorithm(), "HS256");
}

TEST(Auth, ExpiryWithLeeway) {
    std::string t = mintToken(kSecret, Role::Viewer, "alice", 60s, kNow);
    EXPECT_TRUE(verifyToken(t, kSecret, Role::Viewer, kNow + 60000 + 29000).ok());  // in leeway
    expectRejected(t, Role::Viewer, "expired", kNow + 60000 + 30000);
    EXPECT_FALSE(verifyToken(t, kSecret, Role::Viewer, kNow + 60000, 0s).ok());  // no leeway
}

TEST(Auth, NotBefore) {
    Poco::JWT::Token tok;
    tok.setSubject("alice");
    tok.payload().set("role", std::string("viewer"));
    tok.setExpiration(Poco::Timestamp((kNow + 3600000) * 1000));
    tok.setNotBefore(Poco::Timestamp((kNow + 120000) * 1000));
    std::string t = Poco::JWT::Signer(kSecret).sign(tok, "HS256");
    expectRejected(t, Role::Viewer, "not valid yet");
    EXPECT_TRUE(verifyToken(t, kSecret, Role::Viewer, kNow + 100000).ok());  // 20 s early: leeway
}

TEST(Auth, WrongRoleWrongSecret) {
    std::string viewer = mintToken(kSecret, Role::Viewer, "alice", 1h, kNow);
    expectRejected(viewer, Role::Desktop, "role 'viewer' not allowed");
    expectRejected(viewer, Role::Viewer, "bad signature", kNow, "another secret");
    expectRejected(viewer, Role::Viewer, "no secret configured", kNow, "");
}

TEST(Auth, AlgNoneAndOtherAlgorithmsAreRefused) {
    const std::string payload = b64url(R"({"sub":"alice","role":"viewer","exp":9999999999})");
    expectRejected(b64url(R"({"alg":"none","typ":"JWT"})") + "." + payload + ".", Role::Viewer,
                   "alg none");
    expectRejected(b64url(R"({"alg":"none","typ":"JWT"})") + "." + payload + ".c2ln", Role::Viewer,
                   "alg 'none'");
    // A correctly signed HS512 token is still refused: only the configured algorithm.
    Poco::JWT::Token tok;
    tok.setSubject("alice");
    tok.payload().set("role", std::string("viewer"));
    tok.setExpiration(Poco::Timestamp((kNow + 3600000) * 1000));
    Poco::JWT::Signer signer(kSecret);
    signer.addAlgorithm("HS512");
    expectRejected(signer.sign(tok, "HS512"), Role::Viewer, "alg 'HS512'");
}

TEST(Auth, TamperedTokens) {
    std::string t = mintToken(kSecret, Role::Viewer, "alice", 1h, kNow);
    // Payload swapped for a desktop claim, signature kept.
    std::string forged = part(t, 0) + "." +
                         b64url(R"({"sub":"alice","role":"desktop","exp":9999999999})") + "." +
                         part(t, 2);
    expectRejected(forged, Role::Desktop, "bad signature");
    // One signature character changed.
    std::string sig = part(t, 2);
    sig[5] = sig[5] == 'A' ? 'B' : 'A';
    expectRejected(part(t, 0) + "." + part(t, 1) + "." + sig, Role::Viewer, "bad signature");
    // Truncated signature.
    expectRejected(t.substr(0, t.size() - 1), Role::Viewer, "bad signature");
}

TEST(Auth, GarbageAndMissingClaims) {
    expectRejected("", Role::Viewer, "missing");
    expectRejected("abc", Role::Viewer, "not a JWS");
    expectRejected("a.b.c.d", Role::Viewer, "not a JWS");
    expectRejected("a b.c.d", Role::Viewer, "malformed");
    expectRejected(std::string(9000, 'a'), Role::Viewer, "too long");
    expectRejected("eyJhbGciOiJIUzI1NiJ9.bm90IGpzb24.abc", Role::Viewer, "malformed");
    // Well signed but without role / sub / exp.
    for (const auto& [claims, why] : std::vector<std::pair<std::string, std::string>>{
             {R"({"sub":"a","exp":9999999999})", "no role"},
             {R"({"role":"viewer","exp":9999999999})", "no sub"},
             {R"({"sub":"a","role":"viewer"})", "no exp"},
             {R"({"sub":"a","role":"root","exp":9999999999})", "unknown role"},
             {R"({"sub":"a","role":"viewer","exp":"soon"})", "no exp"}}) {
        const std::string header = b64url(R"({"alg":"HS256","typ":"JWT"})");
        const std::string body = b64url(claims);
        // Poco signs a token parsed from the raw claims (the dummy signature is replaced).
        Poco::JWT::Token raw(header + "." + body + ".x");
        std::string signedTok = Poco::JWT::Signer(kSecret).sign(raw, "HS256");
        expectRejected(signedTok, Role::Viewer, why);
    }
}

TEST(Auth, ConstantTimeEquals) {
    EXPECT_TRUE(constantTimeEquals("abc", "abc"));
    EXPECT_FALSE(constantTimeEquals("abc", "abd"));
    EXPECT_FALSE(constantTimeEquals("abc", "ab"));
    EXPECT_TRUE(constantTimeEquals("", ""));
}

TEST(Auth, ViewerScopesRoundTripAndDefaultToEverything) {
    auto scope = parseViewerScope("pc1,pc2", "view");
    ASSERT_TRUE(scope.ok());
    std::string t = mintToken(kSecret, Role::Viewer, "alice", 1h, kNow, scope.value());
    auto c = verifyToken(t, kSecret, Role::Viewer, kNow);
    ASSERT_TRUE(c.ok());
    EXPECT_EQ(c.value().scope, scope.value());
    EXPECT_TRUE(c.value().scope.maySee("pc2"));
    EXPECT_FALSE(c.value().scope.maySee("pc3"));
    EXPECT_FALSE(c.value().scope.mayCommand("pc1", true));
    EXPECT_TRUE(c.value().scope.mayCommand("pc1", false));
    EXPECT_FALSE(c.value().scope.mayCommand("pc3", false));

    auto all = parseViewerScope("*", "view,control");
    ASSERT_TRUE(all.ok());
    EXPECT_TRUE(all.value().allDesktops);
    EXPECT_TRUE(all.value().control);
    for (const char* bad : {"", "pc1,,pc2", "pc 1", "*,pc1"})
        EXPECT_FALSE(parseViewerScope(bad, "view").ok()) << bad;
    for (const char* bad : {"", "control", "view,admin", "edit"})
        EXPECT_FALSE(parseViewerScope("*", bad).ok()) << bad;
}

TEST(Auth, MalformedScopeClaimsAreRefused) {
    // Signed with the right key, but the claims are not what the relay understands: refused
    // rather than read as "everything".
    auto sign = [](const std::string& payloadJson) {
        Poco::JWT::Token token;
        token.setType("JWT");
        Poco::JSON::Parser p;
        token.payload() = *p.parse(payloadJson).extract<Poco::JSON::Object::Ptr>();
        Poco::JWT::Signer signer(kSecret);
        return signer.sign(token, Poco::JWT::Signer::ALGO_HS256);
    };
    const std::string base =
        R"("sub":"alice","role":"viewer","exp":)" + std::to_string(kNow / 1000 + 3600);
    for (const char* extra :
         {R"("desktops":"pc1")", R"("desktops":[1])", R"("desktops":["bad id"])",
          R"("rights":"view")", R"("rights":["control"])", R"("rights":["view","root"])"}) {
        auto c = verifyToken(sign("{" + base + "," + extra + "}"), kSecret, Role::Viewer, kNow);
        ASSERT_FALSE(c.ok()) << extra;
        EXPECT_EQ(c.error().code, ErrorCode::Unauthorized);
    }
    auto legacy = verifyToken(sign("{" + base + "}"), kSecret, Role::Viewer, kNow);
    ASSERT_TRUE(legacy.ok());
    EXPECT_EQ(legacy.value().scope, ViewerScope::everything());
}
