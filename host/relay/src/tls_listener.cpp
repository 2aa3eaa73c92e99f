// The relay's TLS server context (see tls_listener.hpp, docs/security-tls.md).
#include "tls_listener.hpp"

#include <Poco/Exception.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>

namespace deskstream::relay {

namespace {

std::runtime_error problem(const char* key, const std::string& file, const std::string& what) {
    return std::runtime_error("relay: [relay] " + std::string(key) + " = '" + file + "': " + what);
}

// The oldest OpenSSL error on this thread as text (and the queue cleared), or `fallback`.
std::string opensslError(const std::string& fallback) {
    unsigned long e = ERR_get_error();
    ERR_clear_error();
    if (e == 0) return fallback;
    char text[256];
    ERR_error_string_n(e, text, sizeof text);
    return text;
}

struct FileCloser {
    void operator()(std::FILE* f) const { std::fclose(f); }
};
using File = std::unique_ptr<std::FILE, FileCloser>;

File openReadable(const char* key, const std::string& path) {
    if (path.empty()) throw problem(key, path, "is empty");
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) throw problem(key, path, std::string("cannot be read: ") + std::strerror(errno));
    File file(f);
    // fopen succeeds on a directory; the first read tells.
    if (std::fgetc(f) == EOF && std::ferror(f))
        throw problem(key, path, std::string("cannot be read: ") + std::strerror(errno));
    std::rewind(f);
    return file;
}

// A key file with a passphrase cannot be used unattended: refuse it instead of prompting.
int noPassphrase(char*, int, int, void*) { return 0; }

// Reads both files ourselves first: OpenSSL's own messages ("no start line") do not say which
// file is wrong, and a mismatch would otherwise surface only as a handshake failure.
void checkPair(const std::string& certFile, const std::string& keyFile) {
    ERR_clear_error();
    File cf = openReadable("tls.cert", certFile);
    std::unique_ptr<X509, decltype(&X509_free)> cert(
        PEM_read_X509(cf.get(), nullptr, noPassphrase, nullptr), X509_free);
    if (!cert)
        throw problem("tls.cert", certFile,
                      "is not a PEM certificate (" + opensslError("no certificate found") + ")");
    File kf = openReadable("tls.key", keyFile);
    std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
        PEM_read_PrivateKey(kf.get(), nullptr, noPassphrase, nullptr), EVP_PKEY_free);
    if (!key)
        throw problem(
            "tls.key", keyFile,
            "is not an unencrypted PEM private key (" + opensslError("no private key found") + ")");
    if (X509_check_private_key(cert.get(), key.get()) != 1) {
        ERR_clear_error();
        throw problem("tls.key", keyFile,
                      "does not match the certificate in [relay] tls.cert = '" + certFile + "'");
    }
}

}  // namespace

Poco::Net::Context::Ptr makeServerTlsContext(const std::string& certFile,
                                             const std::string& keyFile) {
    checkPair(certFile, keyFile);
    Poco::Net::Context::Params params;
    params.certificateFile = certFile;  // may hold the chain after the leaf
    params.privateKeyFile = keyFile;
    params.verificationMode = Poco::Net::Context::VERIFY_NONE;  // clients authenticate by token
    // Forward-secret AEAD suites only for TLS 1.2 (TLS 1.3 has its own, all acceptable).
    params.cipherList = "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL:!MD5:!SHA1:@STRENGTH";
    Poco::Net::Context::Ptr context;
    try {
        context = new Poco::Net::Context(Poco::Net::Context::TLS_SERVER_USE, params);
        // SSLv3, TLS 1.0 and 1.1 are refused at the handshake (protocol_version alert).
        context->requireMinimumProtocol(Poco::Net::Context::PROTO_TLSV1_2);
        context->preferServerCiphers();
    } catch (const Poco::Exception& e) {
        throw std::runtime_error("relay: TLS with [relay] tls.cert = '" + certFile +
                                 "' and tls.key = '" + keyFile + "' failed: " + e.displayText());
    }
    // A non-blocking send that answered "want write" is retried with the same bytes, possibly
    // from another address (a queue that moved them). Partial writes stay off: Poco's blocking
    // WebSocket send does not loop, so a short TLS write would lose the rest of a frame.
    SSL_CTX_set_mode(context->sslContext(), SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    return context;
}

}  // namespace deskstream::relay
