#include "evert/tracker/tls.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace evert::tracker {
namespace {

// The reason of the oldest queued OpenSSL error ("no start line"), and the queue cleared.
std::string openssl_reason() {
  const unsigned long e = ERR_get_error();
  ERR_clear_error();
  const char* r = e == 0 ? nullptr : ERR_reason_error_string(e);
  return r != nullptr ? r : "unknown error";
}

// A key file must not make OpenSSL prompt on the terminal for a passphrase.
int no_passphrase(char*, int, int, void*) {
  return -1;
}

struct FileCloser {
  void operator()(FILE* f) const { std::fclose(f); }
};
using File = std::unique_ptr<FILE, FileCloser>;

Result<File> open_readable(const std::string& what, const std::string& path) {
  File f(std::fopen(path.c_str(), "rb"));
  if (!f) return Error(what + " " + path + ": cannot read it: " + std::strerror(errno));
  return f;
}

// ALPN (RFC 7301): this server speaks HTTP/1.1 only. A client that offers no http/1.1 (h2
// only) gets no ALPN answer and may go on or give up.
int select_http11(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                  unsigned inlen, void*) {
  static const unsigned char kHttp11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
  unsigned char* chosen = nullptr;
  if (SSL_select_next_proto(&chosen, outlen, kHttp11, sizeof kHttp11, in, inlen) !=
      OPENSSL_NPN_NEGOTIATED) {
    return SSL_TLSEXT_ERR_NOACK;
  }
  *out = chosen;
  return SSL_TLSEXT_ERR_OK;
}

}  // namespace

Result<std::shared_ptr<SSL_CTX>> make_tls_context(const std::string& certificate,
                                                  const std::string& key) {
  ERR_clear_error();
  std::shared_ptr<SSL_CTX> ctx(SSL_CTX_new(TLS_server_method()), SSL_CTX_free);
  if (!ctx) return Error("cannot make a TLS context: " + openssl_reason());
  SSL_CTX* c = ctx.get();
  SSL_CTX_set_default_passwd_cb(c, no_passphrase);
  SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
  SSL_CTX_set_options(
      c, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
  // Forward secrecy and AEAD for TLS 1.2 (TLS 1.3's suites are all such).
  SSL_CTX_set_cipher_list(c,
                          "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                          "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                          "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305");
  // Partial writes and a moved buffer: the server retries a write from its output's current
  // position, which may have been reallocated by appended answers. Idle sessions give their
  // 16 KiB record buffers back, so keep-alive connections stay small.
  SSL_CTX_set_mode(c, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                          SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_SERVER);
  static const unsigned char kContext[] = "evert-http";
  SSL_CTX_set_session_id_context(c, kContext, sizeof kContext - 1);
  SSL_CTX_set_alpn_select_cb(c, select_http11, nullptr);

  // Readable first, so that "cannot read" is told apart from "not PEM".
  if (auto f = open_readable("certificate", certificate); !f) return f.error();
  if (SSL_CTX_use_certificate_chain_file(c, certificate.c_str()) != 1) {
    return Error("certificate " + certificate +
                 ": not a PEM certificate chain: " + openssl_reason());
  }
  auto f = open_readable("key", key);
  if (!f) return f.error();
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> pkey(
      PEM_read_PrivateKey(f->get(), nullptr, no_passphrase, nullptr), EVP_PKEY_free);
  if (!pkey) {
    return Error("key " + key + ": not an unencrypted PEM private key: " + openssl_reason());
  }
  X509* leaf = SSL_CTX_get0_certificate(c);
  if (leaf == nullptr || X509_check_private_key(leaf, pkey.get()) != 1) {
    ERR_clear_error();
    return Error("key " + key + " does not match the certificate in " + certificate);
  }
  if (SSL_CTX_use_PrivateKey(c, pkey.get()) != 1 || SSL_CTX_check_private_key(c) != 1) {
    return Error("key " + key + ": cannot be used with the certificate in " + certificate + ": " +
                 openssl_reason());
  }
  return ctx;
}

SSL* tls_session(SSL_CTX* context, int fd) {
  SSL* ssl = SSL_new(context);
  if (ssl == nullptr) return nullptr;
  if (SSL_set_fd(ssl, fd) != 1) {
    SSL_free(ssl);
    ERR_clear_error();
    return nullptr;
  }
  SSL_set_accept_state(ssl);
  return ssl;
}

TlsStep tls_accept(SSL* ssl) {
  ERR_clear_error();
  const int r = SSL_accept(ssl);
  if (r == 1) return TlsStep::kDone;
  switch (SSL_get_error(ssl, r)) {
    case SSL_ERROR_WANT_READ:
      return TlsStep::kWantRead;
    case SSL_ERROR_WANT_WRITE:
      return TlsStep::kWantWrite;
    case SSL_ERROR_SSL:
      // OpenSSL recognises "GET ", "POST " and the like where a ClientHello should be.
      if (ERR_GET_REASON(ERR_peek_error()) == SSL_R_HTTP_REQUEST) {
        ERR_clear_error();
        return TlsStep::kPlainHttp;
      }
      ERR_clear_error();
      return TlsStep::kFailed;
    default:
      ERR_clear_error();
      return TlsStep::kFailed;
  }
}

namespace {

ssize_t io_result(SSL* ssl, int r, bool& wants_write) {
  switch (SSL_get_error(ssl, r)) {
    case SSL_ERROR_WANT_READ:
      wants_write = false;
      errno = EAGAIN;
      return -1;
    case SSL_ERROR_WANT_WRITE:
      wants_write = true;
      errno = EAGAIN;
      return -1;
    case SSL_ERROR_ZERO_RETURN:  // close_notify
      return 0;
    case SSL_ERROR_SYSCALL:
      ERR_clear_error();
      if (errno == 0 || errno == EAGAIN) errno = ECONNRESET;  // EOF without close_notify
      return -1;
    default:
      ERR_clear_error();
      errno = EPROTO;
      return -1;
  }
}

}  // namespace

ssize_t tls_read(SSL* ssl, char* data, size_t size, bool& wants_write) {
  ERR_clear_error();
  errno = 0;
  size_t n = 0;
  const int r = SSL_read_ex(ssl, data, size, &n);
  if (r == 1) return static_cast<ssize_t>(n);
  const ssize_t e = io_result(ssl, r, wants_write);
  if (e == -1 && errno == ECONNRESET) return 0;  // a truncation: the same as a plain close
  return e;
}

ssize_t tls_write(SSL* ssl, const char* data, size_t size, bool& wants_write) {
  ERR_clear_error();
  errno = 0;
  size_t n = 0;
  const int r = SSL_write_ex(ssl, data, size, &n);
  if (r == 1) return static_cast<ssize_t>(n);
  const ssize_t e = io_result(ssl, r, wants_write);
  if (e == 0) {  // the peer closed: nothing more can be sent
    errno = EPIPE;
    return -1;
  }
  return e;
}

bool tls_pending(const SSL* ssl) {
  return SSL_has_pending(ssl) == 1;
}

void tls_close(SSL* ssl) {
  if (ssl == nullptr) return;
  ERR_clear_error();
  // One try: a full socket or a failed session (SSL_shutdown refuses those) sends nothing.
  if (SSL_is_init_finished(ssl) == 1) (void)SSL_shutdown(ssl);
  ERR_clear_error();
  SSL_free(ssl);
}

}  // namespace evert::tracker
