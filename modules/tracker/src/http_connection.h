// HttpServer's state per connection, shared by http_server.cpp and http_server_tls.cpp.
#pragma once

#include <sys/socket.h>

#include <list>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "evert/tracker/http_server.h"
#include "evert/tracker/tls.h"

namespace evert::tracker {

struct HttpServer::Connection {
  Connection() = default;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection() { tls_close(tls); }

  int fd = -1;
  Endpoint peer;
  std::string limit_key;  // its count in per_address_ (address_key()); empty: not counted
  std::string in;
  std::string out;
  size_t out_off = 0;
  int64_t last_active = 0;
  // When the first byte of the request being read came (0: none is): a request's head and
  // buffered body must be in within the timeout, however steadily they trickle.
  int64_t request_since = 0;
  bool close_after_write = false;
  std::optional<FileBody> file;      // being sent after `out`
  uint64_t checked_to = 0;           // file offset up to which the page cache was found to hold it
  uint64_t ahead_to = 0;             // offset up to which `file` was looked ahead at (resident())
  bool exact = false;                // check the rest of `file` with mincore (resident())
  bool warming = false;              // a chunk of `file` is being read on a worker
  std::shared_ptr<const void> kept;  // the `hold` of the last body sent
  std::shared_ptr<bool> token;       // expires when the connection closes (worker results)
  // A request whose answer comes later (HttpServer::defer(), a streamed body's end).
  bool deferred = false;
  bool pending_http10 = false;
  bool pending_keep = true;
  bool pending_head = false;
  std::unique_ptr<BodySink> sink;  // takes the body of the request being read
  bool sink_busy = false;          // a chunk was handed to it and not yet taken
  uint64_t body_left = 0;          // body bytes the sink has yet to get
  uint64_t discard_left = 0;       // body bytes of a refused request still to drop
  bool continued = false;          // "100 Continue" sent for the buffered body coming
  bool in_write = false;           // inside BodySink::write()
  // TLS (HttpServer::set_tls()): the session, null on a plain connection.
  SSL* tls = nullptr;
  bool handshaking = false;       // SSL_accept has not finished
  bool read_wants_write = false;  // SSL_read must wait for the socket to be writable
  std::vector<char> tls_file;     // file body bytes pread() for SSL_write (no sendfile)
  size_t tls_file_off = 0;        // sent of them
  size_t tls_file_len = 0;        // read into it
  std::unique_ptr<daemon::FdWatcher> reader;
  std::unique_ptr<daemon::FdWatcher> writer;
  std::list<std::unique_ptr<Connection>>::iterator self;
};

// TLS records carry at most 16 KiB: reading that much at a time takes one whole, so OpenSSL
// seldom keeps bytes back (tls_pending() covers when it does).
constexpr size_t kTlsRecord = 16384;
// File bodies over TLS are read this much at a time (a buffer per connection while it sends
// one, given back after).
constexpr size_t kTlsFileBuffer = 256 * 1024;

int64_t steady_seconds();

// The plain path stays a system call behind one branch (the tracker's speed).
inline ssize_t HttpServer::receive(Connection& c, char* data, size_t size) {
  if (c.tls == nullptr) return ::recv(c.fd, data, size, 0);
  return receive_tls(c, data, size);
}

inline ssize_t HttpServer::transmit(Connection& c, const char* data, size_t size, bool more) {
  if (c.tls == nullptr) return ::send(c.fd, data, size, MSG_NOSIGNAL | (more ? MSG_MORE : 0));
  return transmit_tls(c, data, size);
}

inline bool HttpServer::buffered(const Connection& c) {
  return c.tls != nullptr && tls_pending(c.tls);
}

}  // namespace evert::tracker
