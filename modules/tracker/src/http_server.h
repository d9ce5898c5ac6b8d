// A small HTTP/1.0 and 1.1 server for the tracker's GET requests: keep-alive and pipelining,
// bounded request heads (8 KiB), idle and header timeouts, a cap on connections. Written for
// the announce path's speed (one read, one parse, one write per request, no allocation per
// request once a connection is warm); evhttp is kept for the control API.
//
// Thread-safety: loop thread only.
#pragma once

#include <sys/socket.h>

#include <chrono>
#include <functional>
#include <list>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "evert/daemon/event_loop.h"
#include "evert/result.h"
#include "evert/tracker/types.h"

namespace evert::tracker {

struct HttpRequest {
  std::string_view method;
  std::string_view path;   // before '?'
  std::string_view query;  // after '?', undecoded
  std::string_view x_forwarded_for;
  std::string_view x_real_ip;
  Endpoint peer;  // the connection's address
};

struct HttpResponse {
  int status = 200;
  std::string_view content_type = "text/plain";
  std::string body;  // reused between requests
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
  // Stops accepting and closes every connection.
  void stop();

  [[nodiscard]] size_t connections() const { return connections_.size(); }
  [[nodiscard]] uint64_t requests() const { return requests_; }

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
};

}  // namespace evert::tracker
