// HttpServer's TLS half (http_server.h, tls.h): the handshake, reads and writes through the
// session, and file bodies through a buffer where plain connections use sendfile().
#include <openssl/ssl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <string_view>

#include "evert/tracker/http_server.h"
#include "http_connection.h"

namespace evert::tracker {

ssize_t HttpServer::receive_tls(Connection& c, char* data, size_t size) {
  bool wants_write = false;
  const ssize_t n = tls_read(c.tls, data, size, wants_write);
  if (n < 0 && errno == EAGAIN && wants_write) {
    // A TLS 1.3 key update's answer, say: on_writable() reads again once it went out.
    c.read_wants_write = true;
    want_write(c);
  }
  return n;
}

ssize_t HttpServer::transmit_tls(Connection& c, const char* data, size_t size) {
  bool wants_write = false;
  const ssize_t n = tls_write(c.tls, data, size, wants_write);
  if (n < 0 && errno == EAGAIN && !wants_write) {
    // A write that must first read is renegotiation, which the context refuses: never wait
    // for it (the writer would spin).
    errno = EPROTO;
  }
  return n;
}

void HttpServer::handshake(Connection& c) {
  switch (tls_accept(c.tls)) {
    case TlsStep::kDone:
      // Only now is the connection active: a handshake must end within timeout_seconds.
      c.handshaking = false;
      c.last_active = steady_seconds();
      connections_.splice(connections_.end(), connections_, c.self);
      if (c.writer) c.writer->stop();
      c.reader->start();
      return on_readable(c);  // the request may have come with the handshake's last flight
    case TlsStep::kWantRead:
      if (c.writer) c.writer->stop();
      c.reader->start();
      return;
    case TlsStep::kWantWrite:
      c.reader->stop();
      return want_write(c);
    case TlsStep::kPlainHttp: {
      // A plain answer the client can read. Its request is read (at most 16 KiB) and dropped
      // first: closing with unread bytes would reset the connection and lose the answer.
      ++tls_failures_;
      std::array<char, 4096> sink{};
      for (int i = 0; i < 4 && ::recv(c.fd, sink.data(), sink.size(), 0) > 0; ++i) {
      }
      static constexpr std::string_view kAnswer =
          "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 35\r\n"
          "Connection: close\r\n\r\nThis port speaks HTTPS only (TLS).\n";
      (void)::send(c.fd, kAnswer.data(), kAnswer.size(), MSG_NOSIGNAL);
      return close(c);
    }
    case TlsStep::kFailed:
      ++tls_failures_;
      return close(c);
  }
}

// sendfile() would put the file's bytes on the socket unencrypted: each piece of a chunk the
// page cache holds (chunk_ready()) is pread() into the connection's buffer, so the loop never
// waits for the disk, and written from there. After a WANT_WRITE the same bytes are written
// again from where they stopped, as SSL_write requires.
bool HttpServer::send_file_tls(Connection& c, bool& waiting) {
  FileBody& f = *c.file;
  for (;;) {
    if (c.tls_file_off == c.tls_file_len) {
      if (f.length == 0) break;
      if (!chunk_ready(c)) {
        waiting = true;
        return true;
      }
      if (c.tls_file.empty()) c.tls_file.resize(kTlsFileBuffer);
      const auto want = static_cast<size_t>(
          std::min<uint64_t>({kTlsFileBuffer, f.length, c.checked_to - f.offset}));
      const ssize_t n = ::pread(f.fd, c.tls_file.data(), want, static_cast<off_t>(f.offset));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {  // unreadable, or shorter than it was: the length sent cannot be kept
        close(c);
        return false;
      }
      f.offset += static_cast<uint64_t>(n);
      f.length -= static_cast<uint64_t>(n);
      c.tls_file_off = 0;
      c.tls_file_len = static_cast<size_t>(n);
    }
    bool wants_write = false;
    const ssize_t n = tls_write(c.tls, c.tls_file.data() + c.tls_file_off,
                                c.tls_file_len - c.tls_file_off, wants_write);
    if (n < 0) {
      if (errno == EAGAIN && wants_write) {
        waiting = true;
        return true;
      }
      close(c);
      return false;
    }
    c.tls_file_off += static_cast<size_t>(n);
    file_bytes_ += static_cast<uint64_t>(n);
    c.last_active = steady_seconds();
    connections_.splice(connections_.end(), connections_, c.self);
  }
  c.kept = std::move(c.file->hold);  // as send_file() does
  c.file.reset();
  c.ahead_to = 0;
  c.exact = false;
  // The buffer is for a body being sent: an idle keep-alive connection holds none.
  std::vector<char>().swap(c.tls_file);
  c.tls_file_off = 0;
  c.tls_file_len = 0;
  return true;
}

}  // namespace evert::tracker
