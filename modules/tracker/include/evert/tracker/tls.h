// TLS for HttpServer (OpenSSL 3): the server context made from a PEM certificate chain and key,
// and the non-blocking steps a connection takes through it.
//
// HttpServer reads and writes raw non-blocking fds itself (recv, send, sendfile) rather than
// through libevent bufferevents, so libevent's bufferevent_openssl does not fit; an SSL* is set
// on the fd instead (SSL_set_fd) and driven by the server's own readiness watchers. These
// functions never block and never log: they say what the socket must become (readable,
// writable) before the call can go on, or that the session is over.
//
// Thread-safety: make_tls_context() from any thread; a context may be shared by many sessions
// on any threads (OpenSSL's own rule); one SSL* on one thread at a time (the loop's).
#pragma once

#include <openssl/types.h>
#include <sys/types.h>

#include <memory>
#include <string>

#include "evert/result.h"

namespace evert::tracker {

// A server context from `certificate` (a PEM chain: the server's certificate first, then its
// intermediates) and `key` (its unencrypted PEM private key): TLS 1.2 and 1.3 only, ECDHE with
// AEAD ciphers for 1.2, the server's cipher preference, session tickets, no renegotiation, ALPN
// http/1.1. Errors say which file is wrong and why (unreadable, not PEM, the key not the
// certificate's).
Result<std::shared_ptr<SSL_CTX>> make_tls_context(const std::string& certificate,
                                                  const std::string& key);

// A server session of `context` on the connected non-blocking socket `fd`, its handshake to
// come (tls_accept()); null when OpenSSL is out of memory. Free it with tls_close().
SSL* tls_session(SSL_CTX* context, int fd);

// One step of a server handshake (SSL_accept) on a non-blocking fd.
enum class TlsStep {
  kDone,       // the session is up
  kWantRead,   // call again when the fd is readable
  kWantWrite,  // call again when the fd is writable
  kPlainHttp,  // the client spoke plain HTTP: the fd may still take a plain answer
  kFailed,     // anything else: close the fd
};
TlsStep tls_accept(SSL* ssl);

// SSL_read and SSL_write shaped like recv() and send(): bytes moved (> 0); 0 when the peer
// closed the session (reads only); -1 with errno EAGAIN when the socket must first become
// readable (`wants_write` false) or writable (`wants_write` true); -1 with another errno when
// the session failed. A write that returned EAGAIN must be repeated with the same bytes at its
// start (the contexts made here accept a moved buffer and a longer length).
ssize_t tls_read(SSL* ssl, char* data, size_t size, bool& wants_write);
ssize_t tls_write(SSL* ssl, const char* data, size_t size, bool& wants_write);

// Whether OpenSSL holds bytes already read from the fd that tls_read() can return without the
// fd becoming readable again.
bool tls_pending(const SSL* ssl);

// Sends a close_notify if it can without waiting (a session that failed sends nothing), then
// frees the session. The fd stays open.
void tls_close(SSL* ssl);

}  // namespace evert::tracker
