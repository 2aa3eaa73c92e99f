// The agent's TLS client context and the certificate problem of the last handshake (see
// tls_client.hpp, docs/security-tls.md).
#include "tls_client.hpp"

#include <Poco/Delegate.h>
#include <Poco/Exception.h>
#include <Poco/Net/SSLManager.h>
#include <Poco/Net/VerificationErrorArgs.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>

namespace deskstream::agent {

namespace {

// The handshake runs on the connection thread, which is also the thread that reads this after a
// failure: one slot per thread needs no lock and cannot mix two agents' handshakes.
thread_local std::string tlsProblem;

// Poco calls this (through OpenSSL's verify callback) for each certificate that fails; the
// error stays fatal (args.setIgnoreError is not called), we only keep the reason.
void onVerificationError(const void*, Poco::Net::VerificationErrorArgs& args) {
    if (!tlsProblem.empty()) return;  // the first problem is the cause
    tlsProblem = args.errorMessage() + " (certificate " + args.certificate().subjectName() +
                 ", depth " + std::to_string(args.errorDepth()) + ")";
}

void listenForVerificationErrors() {
    static std::once_flag once;
    std::call_once(once, [] {
        Poco::Net::SSLManager::instance().ClientVerificationError +=
            Poco::delegate(&onVerificationError);
    });
}

void checkCaFile(const std::string& path) {
    auto problem = [&](const std::string& what) {
        return std::runtime_error("[agent] tls.ca = '" + path + "': " + what);
    };
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) throw problem(std::string("cannot be read: ") + std::strerror(errno));
    std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(f, std::fclose);
    ERR_clear_error();
    X509* cert = PEM_read_X509(f, nullptr, nullptr, nullptr);
    const bool ok = cert != nullptr;
    X509_free(cert);
    ERR_clear_error();
    if (!ok) throw problem("holds no PEM certificate (BEGIN CERTIFICATE)");
}

}  // namespace

Poco::Net::Context::Ptr makeClientTlsContext(const std::string& caFile, bool insecure) {
    if (!caFile.empty()) checkCaFile(caFile);
    listenForVerificationErrors();
    Poco::Net::Context::Params params;
    params.caLocation = caFile;
    params.loadDefaultCAs = caFile.empty();
    // STRICT rather than RELAXED: Poco skips the host-name check for "localhost" and 127.0.0.1
    // unless the mode is strict; a client has no other difference between the two.
    params.verificationMode =
        insecure ? Poco::Net::Context::VERIFY_NONE : Poco::Net::Context::VERIFY_STRICT;
    params.cipherList = "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL:!MD5:!SHA1:@STRENGTH";
    try {
        Poco::Net::Context::Ptr context =
            new Poco::Net::Context(Poco::Net::Context::TLS_CLIENT_USE, params);
        context->requireMinimumProtocol(Poco::Net::Context::PROTO_TLSV1_2);
        // The certificate's names (subjectAltName, CN) must include the relay URL's host.
        context->enableExtendedCertificateVerification(!insecure);
        return context;
    } catch (const Poco::Exception& e) {
        throw std::runtime_error("agent: TLS client set-up failed" +
                                 (caFile.empty() ? std::string(" (system CA store)")
                                                 : " with [agent] tls.ca = '" + caFile + "'") +
                                 ": " + e.displayText());
    }
}

void clearCertificateProblem() { tlsProblem.clear(); }

std::string lastCertificateProblem() { return tlsProblem; }

}  // namespace deskstream::agent
