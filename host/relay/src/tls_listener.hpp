// The relay's TLS server context: [relay] tls.cert and tls.key checked at start-up (each file
// readable, PEM, the key matching the certificate) and TLS 1.2 as the lowest version
// (docs/security-tls.md). The HTTPServer then listens on a SecureServerSocket made from it.
#pragma once

#include <Poco/Net/Context.h>

#include <string>

namespace deskstream::relay {

/// Throws std::runtime_error naming the file and the problem (missing, unreadable, not PEM, key
/// not matching the certificate). Never returns null.
Poco::Net::Context::Ptr makeServerTlsContext(const std::string& certFile,
                                             const std::string& keyFile);

}  // namespace deskstream::relay
