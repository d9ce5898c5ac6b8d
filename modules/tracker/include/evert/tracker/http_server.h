// A small HTTP/1.0 and 1.1 server: keep-alive and pipelining, bounded request heads (8 KiB),
// idle and header timeouts, a cap on connections. Written for
// the tracker's announce path's speed (one read, one parse, one write per request, no
// allocation per request once a connection is warm); evhttp is kept for the control API.
//
// The web seed (modules/web) uses it too: a response may carry a file body (a range of an open
// file), sent with sendfile() and never from a cold page cache on the loop: each window of up
// to 4 MiB is checked with cachestat() (mincore() near anything cold, and where cachestat is
// missing); a 1 MiB chunk the page cache does not hold whole is read into the cache on a worker
// thread first (set_workers()). While a file body is being sent the connection reads no
// further requests, so its memory stays bounded (a head, a request buffer); a client that
// takes nothing for `timeout_seconds` is dropped.
//
// The web pages use request bodies (Options::max_body, 0 for the tracker: bodies get 413),
// answers given later (defer(): a login checked on a worker) and bodies streamed to a BodySink
// (uploads of many GiB: set_stream_opener()), read a chunk at a time and never faster than the
// sink takes them. Bodies need a Content-Length (chunked request bodies get 411); a client that
// sends `Expect: 100-continue` is told to go on only when its body is wanted.
//
// TLS (set_tls(), the web listener with a certificate): every connection is then HTTPS only.
// OpenSSL runs directly on the non-blocking fd (tls.h; libevent's bufferevent_openssl needs
// bufferevents, which this server does not use): the handshake is driven by the same readiness
// watchers, then every read goes through SSL_read and every write through SSL_write, and bytes
// OpenSSL already holds are read without waiting for the fd. File bodies cannot use sendfile()
// (the kernel would send them unencrypted): each resident chunk is pread() into a 256 KiB
// buffer on the loop and written through SSL_write, so the rule that the loop never waits for
// the disk holds as for plain connections. A client that does not finish its handshake within
// `timeout_seconds` is dropped by the idle sweep; one that speaks plain HTTP gets a plain 400
// and is closed. The plain path (the tracker's) is unchanged: a branch on the connection's
// SSL*, no allocation.
//
// Thread-safety: loop thread only.
#pragma once

#include <openssl/types.h>
#include <sys/socket.h>

#include <chrono>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "evert/daemon/event_loop.h"
#include "evert/daemon/worker_pool.h"
#include "evert/result.h"
#include "evert/tracker/types.h"

namespace evert::tracker {

struct HttpRequest {
  std::string_view method;
  std::string_view path;   // before '?'
  std::string_view query;  // after '?', undecoded
  std::string_view x_forwarded_for;
  std::string_view x_real_ip;
  std::string_view range;     // the Range header, raw
  std::string_view if_range;  // the If-Range header, raw
  Endpoint peer;              // the connection's address
  std::string_view head;      // the whole request head, for header()
  std::string_view body;      // a buffered body (at most Options::max_body)
  uint64_t content_length = 0;

  // The value of the first header named `name` (case-insensitive), trimmed; empty if none.
  [[nodiscard]] std::string_view header(std::string_view name) const;
};

// `length` bytes of an open file from `offset`, kept open by `hold` until sent; the server keeps
// `hold` until the connection's next body is sent or the connection closes (so that a
// keep-alive client's next range of the same file finds it still open).
struct FileBody {
  std::shared_ptr<const void> hold;
  int fd = -1;
  uint64_t offset = 0;
  uint64_t length = 0;
};

struct HttpResponse {
  int status = 200;
  std::string_view content_type = "text/plain";
  std::string body;     // reused between requests
  std::string headers;  // extra header lines, each ending in "\r\n"
  // Sent instead of `body` when set (Content-Length is its length, also for HEAD).
  std::optional<FileBody> file;
};

class HttpServer;

// An answer given after the handler returned (HttpServer::defer()). Sending it on a connection
// that closed meanwhile does nothing. Copyable; the first send() counts.
class HttpReply {
 public:
  HttpReply() = default;
  void send(HttpResponse response);
  [[nodiscard]] bool connected() const { return !token_.expired(); }

 private:
  friend class HttpServer;
  HttpServer* server_ = nullptr;
  std::weak_ptr<bool> token_;
  void* connection_ = nullptr;
  std::shared_ptr<bool> sent_;
};

// Takes a request body as it arrives (HttpServer::set_stream_opener()).
class BodySink {
 public:
  virtual ~BodySink() = default;
  // The next bytes of the body. Call `done` (on the loop thread, now or later) when ready for
  // more; an error answers the request with `error_status` and the message, and closes.
  virtual void write(std::string chunk, std::function<void(Status)> done) = 0;
  // The whole body arrived: answer through `reply` (now or later).
  virtual void finish(HttpReply reply) = 0;
  // The client went away (or timed out) before the body ended: undo what was written.
  virtual void abort() = 0;
  int error_status = 500;
};

class HttpServer {
 public:
  using Handler = std::function<void(const HttpRequest&, HttpResponse&)>;
  // Called for a request with a body before any of it is read: returns the sink that takes it,
  // or nullptr to let the server buffer it (up to max_body) and call the handler. Set a status
  // other than 200 in the response to refuse it at once (the body is not read).
  using StreamOpener = std::function<std::unique_ptr<BodySink>(const HttpRequest&, HttpResponse&)>;
  struct Options {
    int timeout_seconds = 15;
    size_t max_connections = 10'000;
    // Open connections from one address (IPv6: one /64) at most, 0 for no cap; a connection
    // past it gets a 503 and is closed. `exempt` addresses (trusted proxies, which bring many
    // clients' requests) are not counted.
    size_t max_per_address = 0;
    std::vector<Endpoint> exempt;
    size_t max_body = 0;   // buffered request bodies at most; larger ones get 413
    bool get_only = true;  // other methods get 405 without reaching the handler
  };

  HttpServer(daemon::EventLoop& loop, Handler handler, Options options);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and listens ("addr:port" already parsed), or adopts an inherited listening socket.
  Status listen(const sockaddr_storage& addr, unsigned len, const std::string& label);
  Status adopt(int fd);
  // The port of the first listener (tests bind port 0).
  [[nodiscard]] std::vector<uint16_t> ports() const;
  // The address and port each socket is bound to (getsockname).
  [[nodiscard]] std::vector<Endpoint> addresses() const;
  void set_options(const Options& o) { options_ = o; }
  // Where file bodies are read into the page cache when it does not hold them. Without workers
  // file bodies are sent as they are (the loop may then wait for the disk).
  void set_workers(daemon::WorkerPool* workers) { workers_ = workers; }
  void set_stream_opener(StreamOpener opener) { opener_ = std::move(opener); }
  // Serves HTTPS with `context` (make_tls_context(), tls.h) on every listener, for connections
  // accepted from now on (those already open keep the context they began with, so a renewed
  // certificate can be swapped in); nullptr: plain HTTP again.
  void set_tls(std::shared_ptr<SSL_CTX> context) { tls_ = std::move(context); }
  [[nodiscard]] bool tls() const { return tls_ != nullptr; }
  // Called from inside the handler: the answer will be sent through the returned reply, and
  // the connection reads no further request until it is. The response the handler was given
  // is then ignored.
  HttpReply defer();
  // Stops accepting and closes every connection.
  void stop();

  [[nodiscard]] size_t connections() const { return connections_.size(); }
  // Connections refused by max_per_address.
  [[nodiscard]] uint64_t refused_per_address() const { return refused_per_address_; }
  [[nodiscard]] uint64_t requests() const { return requests_; }
  [[nodiscard]] uint64_t file_bytes_sent() const { return file_bytes_; }
  // File chunks the page cache did not hold, read on a worker before being sent.
  [[nodiscard]] uint64_t cold_chunks() const { return cold_chunks_; }
  // TLS handshakes that failed (including plain HTTP sent to the TLS port).
  [[nodiscard]] uint64_t tls_failures() const { return tls_failures_; }

 private:
  struct Connection;
  struct Listener;
  void accept_from(Listener& l);
  void serve_new(int fd, const Endpoint& peer);
  // Watches a connection that stays (TCP_NODELAY, its token, reader and place in the list).
  Connection& track(std::unique_ptr<Connection> c, int fd, const Endpoint& peer);
  void on_readable(Connection& c);
  void on_writable(Connection& c);
  // Handles every complete request in the buffer; false when the connection must close.
  bool process(Connection& c);
  bool flush(Connection& c);  // false: closed
  // Sends what it can of the file body; false: closed. Sets `waiting` when the socket is full
  // or a chunk is being read on a worker.
  bool send_file(Connection& c, bool& waiting);
  bool send_file_tls(Connection& c, bool& waiting);
  // Whether the page cache holds the file body's chunk at its offset; when not, starts reading
  // it on a worker (which resumes the sending) and returns false.
  bool chunk_ready(Connection& c);
  // recv() and send() on the connection, through its TLS session when it has one.
  ssize_t receive(Connection& c, char* data, size_t size);
  // `more`: a file body follows (plain: MSG_MORE, the head and the body in the same packets).
  ssize_t transmit(Connection& c, const char* data, size_t size, bool more = false);
  ssize_t receive_tls(Connection& c, char* data, size_t size);
  ssize_t transmit_tls(Connection& c, const char* data, size_t size);
  // Whether bytes already read from the socket wait to be processed (TLS records).
  static bool buffered(const Connection& c);
  void handshake(Connection& c);
  // Whether the page cache holds the next `length` bytes (at most 4 MiB) of the connection's
  // file body; never waits for the disk.
  bool resident(Connection& c, uint64_t length);
  // The body, and for a while every new one, is checked with mincore (see resident()).
  void mark_cold(Connection& c);
  void want_write(Connection& c);
  void close(Connection& c);
  // Whether `peer`'s address has max_per_address connections open already (not if exempt).
  [[nodiscard]] bool over_address_cap(const Endpoint& peer) const;
  // Appends the status line, headers and body of `r` to the connection's output.
  void write_response(Connection& c, HttpResponse& r, bool http10, bool keep, bool head_only);
  // Hands buffered body bytes to the connection's sink; finishes the body at its end.
  void feed_body(Connection& c);
  void read_body(Connection& c);
  void complete(Connection& c, HttpResponse& r);  // a deferred answer
  friend class HttpReply;
  void sweep();

  daemon::EventLoop& loop_;
  Handler handler_;
  Options options_;
  std::vector<std::unique_ptr<Listener>> listeners_;
  std::list<std::unique_ptr<Connection>> connections_;  // least recently active first
  std::vector<std::unique_ptr<Connection>> graveyard_;  // closed, destroyed at the next turn
  daemon::Timer sweeper_;
  HttpResponse response_;
  std::unique_ptr<Connection> quick_;  // buffers reused by serve_new()
  uint64_t requests_ = 0;
  uint64_t file_bytes_ = 0;
  uint64_t cold_chunks_ = 0;
  uint64_t tls_failures_ = 0;
  uint64_t refused_per_address_ = 0;
  std::unordered_map<std::string, size_t> per_address_;  // open connections by address_key()
  std::shared_ptr<SSL_CTX> tls_;
  int64_t cold_until_ = 0;  // steady seconds
  daemon::WorkerPool* workers_ = nullptr;
  StreamOpener opener_;
  Connection* current_ = nullptr;  // whose request the handler is answering
};

}  // namespace evert::tracker
