// The agent's TLS client for wss:// relay URLs: the client context (certificate verification
// on: [agent] tls.ca, else the system CA store; tls.insecure turns it off for tests), and the
// certificate problem a failed handshake had, so the agent can exit naming it
// (docs/security-tls.md).
#pragma once

#include <Poco/Net/Context.h>

#include <stdexcept>
#include <string>

namespace deskstream::agent {

/// The relay's certificate failed verification (untrusted, expired, wrong host name). Fatal for
/// the agent: retrying cannot fix it, the operator must (docs/security-tls.md).
class CertificateProblem : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// TLS 1.2 or later, the peer's chain checked against `caFile` (PEM; empty: the system CA
/// store) and its name against the URL's host, unless `insecure`. Throws std::runtime_error
/// naming [agent] tls.ca when that file cannot be read or holds no PEM certificate.
Poco::Net::Context::Ptr makeClientTlsContext(const std::string& caFile, bool insecure);

/// Call before a handshake on this thread: forgets the previous handshake's problem.
void clearCertificateProblem();
/// The first certificate problem OpenSSL reported during this thread's last handshake, e.g.
/// "self-signed certificate (certificate /CN=relay, depth 0)"; "" when none was reported.
std::string lastCertificateProblem();

}  // namespace deskstream::agent
