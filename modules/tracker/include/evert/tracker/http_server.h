// A small HTTP/1.0 and 1.1 server for GET and HEAD requests: keep-alive and pipelining,
// bounded request heads (8 KiB), idle and header timeouts, a cap on connections. Written for
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
// Thread-safety: loop thread only.
#pragma once

#include <sys/socket.h>

#include <chrono>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
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

class HttpServer {
 public:
  using Handler = std::function<void(const HttpRequest&, HttpResponse&)>;
  struct Options {
    int timeout_seconds = 15;
    size_t max_connections = 10'000;
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
  // Stops accepting and closes every connection.
  void stop();

  [[nodiscard]] size_t connections() const { return connections_.size(); }
  [[nodiscard]] uint64_t requests() const { return requests_; }
  [[nodiscard]] uint64_t file_bytes_sent() const { return file_bytes_; }
  // File chunks the page cache did not hold, read on a worker before being sent.
  [[nodiscard]] uint64_t cold_chunks() const { return cold_chunks_; }

 private:
  struct Connection;
  struct Listener;
  void accept_from(Listener& l);
  void serve_new(int fd, const Endpoint& peer);
  void on_readable(Connection& c);
  void on_writable(Connection& c);
  // Handles every complete request in the buffer; false when the connection must close.
  bool process(Connection& c);
  bool flush(Connection& c);  // false: closed
  // Sends what it can of the file body; false: closed. Sets `waiting` when the socket is full
  // or a chunk is being read on a worker.
  bool send_file(Connection& c, bool& waiting);
  // Whether the page cache holds the next `length` bytes (at most 4 MiB) of the connection's
  // file body; never waits for the disk.
  bool resident(Connection& c, uint64_t length);
  // The body, and for a while every new one, is checked with mincore (see resident()).
  void mark_cold(Connection& c);
  void want_write(Connection& c);
  void close(Connection& c);
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
  int64_t cold_until_ = 0;  // steady seconds
  daemon::WorkerPool* workers_ = nullptr;
};

}  // namespace evert::tracker
