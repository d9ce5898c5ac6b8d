#include "evert/tracker/http_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstring>

#include "evert/tracker/http_head.h"
#include "http_connection.h"

namespace evert::tracker {
namespace {

constexpr size_t kMaxHead = kMaxHttpHead;
// Answers queued for a client that does not read them: no further request is processed past
// this (the last answer may take it over by its own size).
constexpr size_t kMaxPendingOut = 256 * 1024;
// A streamed request body is read this much at a time, the next chunk only once the sink took
// the last one.
constexpr size_t kBodyChunk = 1 << 20;
// The body of a refused request is read and dropped up to this size (the connection is then
// kept); a larger one closes the connection after the answer.
constexpr uint64_t kMaxDiscard = 1 << 20;
// A larger one (up to this size), or the rest of a streamed body its sink refused, is read and
// dropped after the answer before the connection closes ("lingering close"): a client still
// sending would otherwise get a reset instead of the answer, and never read why.
constexpr uint64_t kMaxLinger = 16 << 20;
// File bodies are checked for residency this far ahead at a time, right before they are sent:
// one check for a few socket buffers' worth, and sendfile() calls as large as the socket takes
// (nginx sends up to 2 MiB).
constexpr uint64_t kWindow = 4 << 20;
// A window the page cache does not hold whole is checked again for its first chunk of this
// size, and the chunk, when cold, read into the cache on a worker: small enough that a worker
// is not held long by one slow client.
constexpr uint64_t kChunk = 1 << 20;
// How far beyond the window a body is first checked (with cachestat, in steps of this size):
// well beyond the kernel's readahead (read_ahead_kb: 128 KiB by default, a few MiB on some
// disks), so that a read started from the window cannot reach past it.
constexpr uint64_t kLookahead = 32 << 20;
// After anything cold, every body is checked with mincore for this long.
constexpr int64_t kColdSeconds = 10;

const char* reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 206:
      return "Partial Content";
    case 302:
      return "Found";
    case 303:
      return "See Other";
    case 304:
      return "Not Modified";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 411:
      return "Length Required";
    case 413:
      return "Content Too Large";
    case 416:
      return "Range Not Satisfiable";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    case 505:
      return "HTTP Version Not Supported";
    case 507:
      return "Insufficient Storage";
    default:
      return "Error";
  }
}

// cachestat(2), Linux 6.5; glibc 2.36 and the 6.1 kernel headers do not have it yet.
#ifndef __NR_cachestat
#define __NR_cachestat 451  // the same on every architecture but alpha
#endif
struct CachestatRange {
  uint64_t off;
  uint64_t len;
};
struct Cachestat {
  uint64_t nr_cache;
  uint64_t nr_dirty;
  uint64_t nr_writeback;
  uint64_t nr_evicted;
  uint64_t nr_recently_evicted;
};
// Cleared for good when the kernel lacks cachestat (ENOSYS) or a seccomp filter denies it
// (EPERM: systemd's SystemCallErrorNumber= in evertd.service).
std::atomic<bool> g_cachestat{true};

const uint64_t kPage = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));

// Whether the page cache has a folio for every page of [offset, offset + length) of `fd`, by
// cachestat: it walks the cache's index, one step per folio, about a third of the cost of
// mincore per page, less with large folios. A folio still being read counts as cached.
// nullopt when cachestat is not available.
std::optional<bool> cached(int fd, uint64_t offset, uint64_t length) {
  if (!g_cachestat.load(std::memory_order_relaxed)) return std::nullopt;
  const uint64_t start = offset & ~(kPage - 1);
  const uint64_t pages = (offset + length - start + kPage - 1) / kPage;
  CachestatRange range{start, pages * kPage};
  Cachestat cs{};
  if (syscall(__NR_cachestat, fd, &range, &cs, 0) == 0) return cs.nr_cache >= pages;
  if (errno == ENOSYS || errno == EPERM) g_cachestat.store(false, std::memory_order_relaxed);
  return std::nullopt;
}

// Whether every page of [offset, offset + length) of `fd` (length at most kWindow) is in the
// page cache and up to date, by mincore on a throwaway mapping (mapping touches no data).
bool uptodate(int fd, uint64_t offset, uint64_t length) {
  const uint64_t start = offset & ~(kPage - 1);
  const auto span = static_cast<size_t>(offset + length - start);
  const size_t pages = (span + kPage - 1) / kPage;
  void* m = mmap(nullptr, span, PROT_READ, MAP_SHARED, fd, static_cast<off_t>(start));
  if (m == MAP_FAILED) return false;
  thread_local std::vector<unsigned char> vec;
  if (vec.size() < pages) vec.resize(pages);
  const bool ok = mincore(m, span, vec.data()) == 0 &&
                  std::all_of(vec.begin(), vec.begin() + static_cast<ptrdiff_t>(pages),
                              [](unsigned char p) { return (p & 1) != 0; });
  munmap(m, span);
  return ok;
}

// Reads [offset, offset + length) of `fd` into the page cache (worker threads: it blocks).
// False when the file is shorter or cannot be read.
bool warm(int fd, uint64_t offset, uint64_t length) {
  thread_local std::vector<char> buf(256 * 1024);
  while (length > 0) {
    const size_t want = static_cast<size_t>(std::min<uint64_t>(length, buf.size()));
    const ssize_t n = ::pread(fd, buf.data(), want, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    offset += static_cast<uint64_t>(n);
    length -= static_cast<uint64_t>(n);
  }
  return true;
}

}  // namespace

int64_t steady_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string_view HttpRequest::header(std::string_view name) const {
  std::string_view rest = head;
  const size_t eol = rest.find("\r\n");
  rest = eol == std::string_view::npos ? std::string_view{} : rest.substr(eol + 2);
  while (!rest.empty()) {
    const size_t e = rest.find("\r\n");
    const std::string_view h = rest.substr(0, e);
    rest = e == std::string_view::npos ? std::string_view{} : rest.substr(e + 2);
    const size_t colon = h.find(':');
    if (colon != std::string_view::npos && http_iequals(h.substr(0, colon), name)) {
      return http_trim(h.substr(colon + 1));
    }
  }
  return {};
}

struct HttpServer::Listener {
  int fd = -1;
  uint16_t port = 0;
  std::unique_ptr<daemon::FdWatcher> watcher;
};

HttpServer::HttpServer(daemon::EventLoop& loop, Handler handler, Options options)
    : loop_(loop),
      handler_(std::move(handler)),
      options_(options),
      sweeper_(loop, [this] { sweep(); }) {
  sweeper_.start(std::chrono::seconds(1), true);
}

HttpServer::~HttpServer() {
  stop();
}

Status HttpServer::listen(const sockaddr_storage& addr, unsigned len, const std::string& label) {
  auto fd = listen_tcp(addr, len, label);
  if (!fd) return fd.error();
  return adopt(*fd);
}

Status HttpServer::adopt(int fd) {
  auto l = std::make_unique<Listener>();
  l->fd = fd;
  l->port = local_port(fd);
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  Listener* raw = l.get();
  l->watcher = std::make_unique<daemon::FdWatcher>(loop_, fd, daemon::FdWatcher::kRead,
                                                   [this, raw](short) { accept_from(*raw); });
  listeners_.push_back(std::move(l));
  return Ok{};
}

std::vector<uint16_t> HttpServer::ports() const {
  std::vector<uint16_t> out;
  for (const auto& l : listeners_)
    out.push_back(l->port);
  return out;
}

std::vector<Endpoint> HttpServer::addresses() const {
  std::vector<Endpoint> out;
  for (const auto& l : listeners_)
    out.push_back(local_endpoint(l->fd));
  return out;
}

void HttpServer::stop() {
  for (auto& l : listeners_) {
    l->watcher.reset();
    ::close(l->fd);
  }
  listeners_.clear();
  while (!connections_.empty())
    close(*connections_.front());
  graveyard_.clear();
  sweeper_.stop();
}

void HttpServer::accept_from(Listener& l) {
  graveyard_.clear();
  for (int i = 0; i < 64; ++i) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    const int fd =
        accept4(l.fd, reinterpret_cast<sockaddr*>(&ss), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;  // EAGAIN, or an error the next readiness will repeat
    if (connections_.size() >= options_.max_connections) {
      ::close(fd);
      continue;
    }
    const Endpoint peer = endpoint_of(ss);
    if (options_.max_per_address > 0 && over_address_cap(peer)) {
      // One host holding every slot shuts out everyone else (issue 15): it is told why, once,
      // without waiting for the socket to be writable.
      ++refused_per_address_;
      if (!tls_) {
        static constexpr std::string_view kBusy =
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
            "Content-Length: 37\r\nConnection: close\r\n\r\n"
            "too many connections from one address\n";
        (void)::send(fd, kBusy.data(), kBusy.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        // A request already here would make close() send a reset, which may reach the client
        // before it read the answer: it is read first.
        char sink[4096];
        (void)::recv(fd, sink, sizeof sink, MSG_DONTWAIT);
      }
      ::close(fd);
      continue;
    }
    serve_new(fd, peer);
  }
}

bool HttpServer::over_address_cap(const Endpoint& peer) const {
  const Endpoint p = unmap(peer);
  for (const Endpoint& e : options_.exempt) {
    const Endpoint x = unmap(e);
    if (x.family == p.family && std::memcmp(x.ip.data(), p.ip.data(), x.ip_size()) == 0) {
      return false;
    }
  }
  auto it = per_address_.find(address_key(p));
  return it != per_address_.end() && it->second >= options_.max_per_address;
}

HttpServer::Connection& HttpServer::track(std::unique_ptr<Connection> c, int fd,
                                          const Endpoint& peer) {
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  c->fd = fd;
  c->peer = peer;
  if (options_.max_per_address > 0) {
    c->limit_key = address_key(peer);
    ++per_address_[c->limit_key];
  }
  c->token = std::make_shared<bool>(true);
  c->last_active = steady_seconds();
  Connection* raw = c.get();
  c->reader = std::make_unique<daemon::FdWatcher>(loop_, fd, daemon::FdWatcher::kRead,
                                                  [this, raw](short) { on_readable(*raw); });
  connections_.push_back(std::move(c));
  raw->self = std::prev(connections_.end());
  return *raw;
}

void HttpServer::serve_new(int fd, const Endpoint& peer) {
  if (!options_.get_only || tls_) {
    // The web pages: answers may come later and bodies stream, so every connection gets its
    // own state from the start (the quick path below is the tracker's). So does TLS.
    auto c = std::make_unique<Connection>();
    if (tls_) {
      c->tls = tls_session(tls_.get(), fd);
      if (c->tls == nullptr) {
        ::close(fd);
        return;
      }
      c->handshaking = true;
    }
    on_readable(track(std::move(c), fd, peer));
    return;
  }
  // Most clients send the request with the connection and many want it closed after the
  // answer: serve that without a watcher or an allocation (no epoll_ctl, no malloc).
  if (!quick_) quick_ = std::make_unique<Connection>();
  Connection& q = *quick_;
  q.fd = fd;
  q.peer = peer;
  q.out.clear();
  q.out_off = 0;
  q.file.reset();
  q.in.resize(kMaxHead + 1);
  const ssize_t n = ::recv(fd, q.in.data(), q.in.size(), 0);
  if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
    ::close(fd);
    return;
  }
  q.in.resize(n > 0 ? static_cast<size_t>(n) : 0);
  bool keep = true;
  if (n > 0) keep = process(q);
  if (!q.out.empty()) {
    // A head before a file body goes with MSG_MORE: the kernel holds it until the body's first
    // sendfile() fills the segment, so head and body leave in the same packets (as with
    // nginx's tcp_nopush), not a small one first. Also in flush().
    const int more = q.file ? MSG_MORE : 0;
    const ssize_t sent = ::send(fd, q.out.data(), q.out.size(), MSG_NOSIGNAL | more);
    if (sent > 0) q.out_off = static_cast<size_t>(sent);
  }
  if (!keep && q.out_off == q.out.size() && !q.file) {
    ::close(fd);
    return;
  }
  // A connection that stays: keep-alive, a request still coming, or a response still going.
  auto c = std::make_unique<Connection>();
  c->in = q.in;
  c->out = q.out.substr(q.out_off);
  c->file = std::move(q.file);
  q.file.reset();
  c->close_after_write = !keep;
  Connection* raw = &track(std::move(c), fd, peer);
  if (raw->out.empty() && !raw->file) return;
  if (!flush(*raw)) return;
  if (raw->out.empty() && !raw->file) {  // all sent now: as on_writable() would go on
    if (raw->close_after_write) return close(*raw);
    if (raw->in.find("\r\n\r\n") != std::string::npos) on_readable(*raw);
  }
}

void HttpServer::on_readable(Connection& c) {
  if (c.tls != nullptr && c.handshaking) return handshake(c);
  if (c.sink) return read_body(c);
  if (c.deferred) {
    c.reader->stop();  // started again when the answer is sent
    return;
  }
  if (c.out.size() - c.out_off > kMaxPendingOut) {
    // The client sends requests and does not read the answers: nothing more is read until it
    // does (on_writable() starts the reader again). Left armed, the reader fired at once
    // again and again: the loop spun at 100% (issue 15).
    c.reader->stop();
    return;
  }
  if (c.file) {
    c.reader->stop();  // started again when the file body is sent
    return;
  }
  bool closed = false;
  const size_t limit = kMaxHead + options_.max_body;
  // A short read empties a plain socket; TLS reads a record at a time, until it must wait.
  const size_t step = c.tls == nullptr ? 4096 : kTlsRecord;
  for (;;) {
    const size_t old = c.in.size();
    c.in.resize(old + step);
    const ssize_t n = receive(c, c.in.data() + old, step);
    if (n <= 0) {
      c.in.resize(old);
      if (n == 0 || (errno != EAGAIN && errno != EINTR)) closed = true;
      break;
    }
    c.in.resize(old + static_cast<size_t>(n));
    if (c.discard_left > 0) {  // the body of a refused request
      const auto drop = static_cast<size_t>(std::min<uint64_t>(c.discard_left, c.in.size()));
      c.in.erase(0, drop);
      c.discard_left -= drop;
    }
    if ((c.tls == nullptr && static_cast<size_t>(n) < step) || c.in.size() > limit) break;
  }
  c.last_active = steady_seconds();
  connections_.splice(connections_.end(), connections_, c.self);
  if (c.request_since == 0 && !c.in.empty()) c.request_since = c.last_active;
  const bool server_busy = c.sink || c.deferred || c.file || c.out_off != c.out.size();
  if (c.request_since != 0 && !server_busy &&
      c.last_active - c.request_since >= options_.timeout_seconds) {
    // A request still incomplete after the timeout: one byte now and then kept the idle timer
    // from ever firing, so a few hundred such connections held every slot (issue 15).
    return close(c);
  }
  if (c.close_after_write) {
    // Answered, closing: only the rest of a refused body is read (and dropped).
    if (c.discard_left == 0 && c.out_off == c.out.size() && !c.file) return close(c);
    if (closed) return close(c);
    return;
  }
  bool keep = true;
  // Requests pipelined behind a file body are processed once it is sent (bounded per turn).
  for (int i = 0; i < 64; ++i) {
    keep = process(c);
    if (!flush(c)) return;
    if (c.file || c.deferred || c.sink || !keep || c.in.find("\r\n\r\n") == std::string::npos ||
        c.out.size() - c.out_off > kMaxPendingOut) {
      break;
    }
  }
  if (c.sink || c.deferred) return;
  const bool done = c.out_off == c.out.size() && !c.file;
  if (!keep && done && c.discard_left == 0) {
    close(c);
    return;
  }
  if (!keep) c.close_after_write = true;
  if (closed && done) return close(c);
  if (c.tls != nullptr && !closed && keep && done && tls_pending(c.tls)) {
    // Bytes OpenSSL holds raise no readiness: read them at the loop's next turn.
    loop_.post([this, raw = &c, token = std::weak_ptr<bool>(c.token)] {
      if (!token.expired()) on_readable(*raw);
    });
  }
}

bool HttpServer::process(Connection& c) {
  size_t consumed = 0;
  bool keep = true;
  while (keep && !c.file && !c.deferred && !c.sink && c.discard_left == 0 &&
         c.out.size() - c.out_off <= kMaxPendingOut) {
    const std::string_view buf = std::string_view(c.in).substr(consumed);
    HttpRequest req;
    req.peer = c.peer;
    bool http10 = false;
    bool head_only = false;
    response_.status = 200;
    response_.content_type = "text/plain";
    response_.body.clear();
    response_.headers.clear();
    response_.file.reset();
    const HttpHeadResult parsed = parse_http_head(buf, kMaxHead);
    if (std::holds_alternative<HttpNeedMore>(parsed)) break;
    if (const auto* refused = std::get_if<HttpRefusal>(&parsed)) {
      // Where a malformed request ends cannot be told: answered, and the connection closed.
      response_.status = refused->status;
      response_.body = refused->message;
      keep = false;
      consumed = c.in.size();
      ++requests_;
    } else {
      const HttpHead& h = std::get<HttpHead>(parsed);
      const size_t end = h.size - 4;
      req.head = h.head;
      http10 = h.http10;
      req.method = h.method;
      head_only = req.method == "HEAD";
      req.path = h.path;
      req.query = h.query;
      req.x_forwarded_for = h.x_forwarded_for;
      req.x_real_ip = h.x_real_ip;
      req.range = h.range;
      req.if_range = h.if_range;
      req.content_length = h.content_length;
      const bool chunked = h.chunked;
      const bool expect_continue = h.expect_continue;
      keep = h.keep_alive;
      const bool has_body = req.content_length > 0 || chunked;
      size_t body_here = 0;  // bytes of a buffered body, consumed with the head
      if (chunked) {
        response_.status = options_.max_body == 0 ? 413 : 411;
        response_.body = options_.max_body == 0 ? "request bodies are not accepted here\n"
                                                : "a request body needs a Content-Length\n";
        keep = false;
      } else if (has_body && options_.max_body == 0) {
        response_.status = 413;
        response_.body = "request bodies are not accepted here\n";
        keep = false;
      } else if (options_.get_only && req.method != "GET" && req.method != "HEAD") {
        response_.status = 405;
        response_.body = "GET only\n";
      } else if (has_body) {
        current_ = &c;
        std::unique_ptr<BodySink> sink = opener_ ? opener_(req, response_) : nullptr;
        current_ = nullptr;
        if (sink) {
          // Streamed: the head is done with; the body follows in c.in and later reads.
          consumed += end + 4;
          ++requests_;
          c.sink = std::move(sink);
          c.body_left = req.content_length;
          c.pending_http10 = http10;
          c.pending_keep = keep;
          c.pending_head = false;
          if (expect_continue && !http10) c.out += "HTTP/1.1 100 Continue\r\n\r\n";
          break;
        }
        if (response_.status != 200) {
          // Refused unread: a small body is read and dropped, the connection kept.
          c.discard_left = req.content_length;
          if (req.content_length > kMaxDiscard || expect_continue) keep = false;
        } else if (req.content_length > options_.max_body) {
          response_.status = 413;
          response_.body = "request body too large\n";
          c.discard_left = req.content_length;
          if (req.content_length > kMaxDiscard || expect_continue) keep = false;
        } else if (buf.size() - end - 4 < req.content_length) {
          if (expect_continue && !c.continued && !http10) {
            c.out += "HTTP/1.1 100 Continue\r\n\r\n";
            c.continued = true;
          }
          break;  // the rest of the body is still coming
        } else {
          body_here = static_cast<size_t>(req.content_length);
          req.body = buf.substr(end + 4, body_here);
        }
      }
      consumed += end + 4 + body_here;
      c.continued = false;
      if (response_.status == 200 && c.discard_left == 0) {
        c.pending_http10 = http10;
        c.pending_keep = keep;
        c.pending_head = head_only;
        current_ = &c;
        try {
          handler_(req, response_);
        } catch (const std::exception& e) {
          // A handler's bug answers this request with a 500 and ends its connection; every
          // other connection goes on (STYLE.md §7).
          daemon::report_callback_error("an HTTP handler", e.what());
          c.deferred = false;
          response_ = HttpResponse{};
          response_.status = 500;
          response_.body = "internal error\n";
          keep = false;
        }
        current_ = nullptr;
      }
      if (c.discard_left > 0) {
        // The part of the body already read is dropped with the head.
        const uint64_t here = std::min<uint64_t>(c.discard_left, buf.size() - end - 4);
        consumed += static_cast<size_t>(here);
        c.discard_left -= here;
        if (!keep && (expect_continue || c.discard_left > kMaxLinger)) {
          c.discard_left = 0;  // closing at once: the client waits, or sends too much
        }
      }
      ++requests_;
    }
    if (c.deferred) {
      c.pending_http10 = http10;
      c.pending_keep = keep;
      c.pending_head = head_only;
      break;
    }
    write_response(c, response_, http10, keep, head_only);
    if (c.out.size() - c.out_off > kMaxPendingOut) break;
  }
  c.in.erase(0, consumed);
  // The next request's clock starts with its first byte (already here when pipelined).
  if (consumed > 0) c.request_since = c.in.empty() ? 0 : steady_seconds();
  if (c.sink) feed_body(c);
  return keep;
}

void HttpServer::write_response(Connection& c, HttpResponse& r, bool http10, bool keep,
                                bool head_only) {
  // A HEAD answer says the length of the body it does not send.
  const uint64_t length = r.file ? r.file->length : r.body.size();
  char num[24];
  auto [p, ec] = std::to_chars(num, num + sizeof num, length);
  c.out += http10 ? "HTTP/1.0 " : "HTTP/1.1 ";
  char st[8];
  auto [sp, sec] = std::to_chars(st, st + sizeof st, r.status);
  c.out.append(st, sp);
  c.out += ' ';
  c.out += reason(r.status);
  c.out += "\r\nContent-Type: ";
  c.out += r.content_type;
  c.out += "\r\nContent-Length: ";
  c.out.append(num, p);
  c.out += "\r\n";
  c.out += r.headers;
  if (!keep) {
    c.out += "Connection: close\r\n";
  } else if (http10) {
    c.out += "Connection: keep-alive\r\n";
  }
  c.out += "\r\n";
  if (!head_only) {
    c.out += r.body;
    if (r.file && r.file->length > 0) {
      c.file = std::move(r.file);
      c.checked_to = c.file->offset;
    }
  }
  r.file.reset();
}

HttpReply HttpServer::defer() {
  HttpReply r;
  if (current_ == nullptr) return r;
  current_->deferred = true;
  r.server_ = this;
  r.token_ = current_->token;
  r.connection_ = current_;
  r.sent_ = std::make_shared<bool>(false);
  return r;
}

void HttpReply::send(HttpResponse response) {
  if (!sent_ || *sent_) return;
  *sent_ = true;
  if (token_.expired()) return;  // the connection closed meanwhile
  auto* c = static_cast<HttpServer::Connection*>(connection_);
  if (server_->current_ == c) {
    // Sent from inside the handler (an answer known at once): the handler's caller has not
    // yet recorded how to answer, nor consumed the request; answer at the next turn.
    server_->loop_.post([server = server_, c, token = token_, r = std::move(response)]() mutable {
      if (!token.expired()) server->complete(*c, r);
    });
    return;
  }
  server_->complete(*c, response);
}

void HttpServer::complete(Connection& c, HttpResponse& r) {
  c.deferred = false;
  c.sink.reset();
  write_response(c, r, c.pending_http10, c.pending_keep, c.pending_head);
  if (!c.pending_keep) c.close_after_write = true;
  c.last_active = steady_seconds();
  connections_.splice(connections_.end(), connections_, c.self);
  if (!flush(c)) return;
  on_writable(c);
}

void HttpServer::feed_body(Connection& c) {
  while (c.sink && !c.sink_busy && !c.deferred) {
    if (c.body_left == 0) {
      // The whole body arrived: the sink answers, now or later.
      c.deferred = true;
      HttpReply reply;
      reply.server_ = this;
      reply.token_ = c.token;
      reply.connection_ = &c;
      reply.sent_ = std::make_shared<bool>(false);
      std::unique_ptr<BodySink> sink = std::move(c.sink);
      sink->finish(reply);
      return;
    }
    if (c.in.empty()) return;
    const auto n = static_cast<size_t>(std::min<uint64_t>(c.body_left, c.in.size()));
    std::string chunk;
    if (n == c.in.size()) {
      chunk.swap(c.in);
    } else {
      chunk = c.in.substr(0, n);
      c.in.erase(0, n);
    }
    c.body_left -= n;
    c.sink_busy = true;
    c.in_write = true;
    Connection* raw = &c;
    c.sink->write(std::move(chunk), [this, raw, token = std::weak_ptr<bool>(c.token)](Status s) {
      if (token.expired()) return;
      raw->sink_busy = false;
      raw->last_active = steady_seconds();
      if (s && raw->in_write) return;  // taken at once: feed_body() goes on
      if (!s) {
        HttpResponse r;
        r.status = raw->sink ? raw->sink->error_status : 500;
        r.body = s.error().message + "\n";
        raw->sink.reset();  // not aborted: the sink cleaned up after its own error
        raw->pending_keep = false;
        // The client is likely still sending: read and drop the rest before closing, so that
        // it reads the answer rather than a reset.
        raw->discard_left = raw->body_left <= kMaxLinger ? raw->body_left : 0;
        raw->body_left = 0;
        raw->deferred = true;
        complete(*raw, r);
        return;
      }
      feed_body(*raw);
      if (raw->sink && !raw->sink_busy) read_body(*raw);
    });
    c.in_write = false;
  }
}

// Reads body bytes for the sink, at most kBodyChunk ahead of it.
void HttpServer::read_body(Connection& c) {
  if (c.sink_busy) {
    c.reader->stop();  // started again when the sink took the chunk
    return;
  }
  c.reader->start();
  const auto want = static_cast<size_t>(std::min<uint64_t>(c.body_left, kBodyChunk));
  if (want == 0) return feed_body(c);
  const size_t old = c.in.size();
  if (old >= want) return feed_body(c);
  c.in.resize(want);
  size_t got = old;
  bool closed = false;
  while (got < want) {
    const ssize_t n = receive(c, c.in.data() + got, want - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (n == 0 || errno != EAGAIN) closed = true;
      break;
    }
    got += static_cast<size_t>(n);
  }
  c.in.resize(got);
  if (got > old) {
    c.last_active = steady_seconds();
    connections_.splice(connections_.end(), connections_, c.self);
  }
  if (closed) return close(c);  // the body ended early: the sink is aborted
  feed_body(c);
}

bool HttpServer::flush(Connection& c) {
  while (c.out_off < c.out.size()) {
    const ssize_t n = transmit(c, c.out.data() + c.out_off, c.out.size() - c.out_off,
                               c.file.has_value());  // head and body in the same packets
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {
        want_write(c);
        return true;
      }
      close(c);
      return false;
    }
    c.out_off += static_cast<size_t>(n);
  }
  c.out.clear();
  c.out_off = 0;
  if (!c.file) return true;
  bool waiting = false;
  if (!send_file(c, waiting)) return false;
  if (c.warming) {
    if (c.writer) c.writer->stop();  // the worker's result resumes the sending
  } else if (waiting) {
    want_write(c);
  }
  return true;
}

void HttpServer::want_write(Connection& c) {
  if (c.writer) {
    c.writer->start();
    return;
  }
  Connection* raw = &c;
  c.writer = std::make_unique<daemon::FdWatcher>(loop_, c.fd, daemon::FdWatcher::kWrite,
                                                 [this, raw](short) { on_writable(*raw); });
}

bool HttpServer::chunk_ready(Connection& c) {
  FileBody& f = *c.file;
  if (c.warming) return false;
  if (f.offset < c.checked_to) return true;
  const uint64_t window = std::min(f.length, kWindow);
  const uint64_t chunk = std::min(f.length, kChunk);
  uint64_t hot = window;
  if (workers_ != nullptr && !resident(c, window)) {
    mark_cold(c);
    hot = window > chunk && resident(c, chunk) ? chunk : 0;
  }
  if (hot == 0) {
    ++cold_chunks_;
    c.warming = true;
    Connection* raw = &c;
    workers_->submit([this, &loop = loop_, raw, token = std::weak_ptr<bool>(c.token), hold = f.hold,
                      fd = f.fd, offset = f.offset, chunk] {
      const bool ok = warm(fd, offset, chunk);
      loop.post([this, raw, token, ok, end = offset + chunk] {
        if (token.expired()) return;  // closed meanwhile
        raw->warming = false;
        if (!ok) return close(*raw);
        raw->checked_to = end;
        raw->last_active = steady_seconds();
        on_writable(*raw);
      });
    });
    return false;
  }
  c.checked_to = f.offset + hot;
  return true;
}

bool HttpServer::send_file(Connection& c, bool& waiting) {
  if (c.tls != nullptr) return send_file_tls(c, waiting);
  FileBody& f = *c.file;
  while (f.length > 0) {
    if (!chunk_ready(c)) {
      waiting = true;
      return true;
    }
    auto off = static_cast<off_t>(f.offset);
    const auto want = static_cast<size_t>(std::min(f.length, c.checked_to - f.offset));
    const ssize_t n = ::sendfile(c.fd, f.fd, &off, want);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {
        waiting = true;
        return true;
      }
      close(c);
      return false;
    }
    if (n == 0) {  // the file is shorter than it was: the length sent cannot be kept
      close(c);
      return false;
    }
    f.offset += static_cast<uint64_t>(n);
    f.length -= static_cast<uint64_t>(n);
    file_bytes_ += static_cast<uint64_t>(n);
    c.last_active = steady_seconds();
    connections_.splice(connections_.end(), connections_, c.self);
  }
  // Kept until the next body is sent: a client asks for range after range of one file on a
  // keep-alive connection, and its handler then finds the file still open.
  c.kept = std::move(f.hold);
  c.file.reset();
  c.ahead_to = 0;
  c.exact = false;
  return true;
}

// cachestat cannot tell a folio in the cache from one being read into it, and the kernel's
// readahead puts such folios just ahead of a reader of a cold file (a cold chunk read on a
// worker, or a sendfile() reaching the readahead mark of an earlier read): sending them would
// make the loop wait for that read. So a body is checked with cachestat only if this server
// found nothing cold in the kColdSeconds before it started, and only while its next kLookahead
// bytes, looked at before the sending comes near them, are all cached (readahead then has
// nothing to read there); else with mincore, which counts only up-to-date pages, for the rest
// of the body. A read that another process (or the everseed) started in a body otherwise all
// cached is the one case left where the loop can wait for the disk, as when the kernel drops a
// page between the check and the sendfile().
bool HttpServer::resident(Connection& c, uint64_t length) {
  const FileBody& f = *c.file;
  if (!c.exact && c.ahead_to == 0 && steady_seconds() < cold_until_) c.exact = true;
  const uint64_t end = f.offset + f.length;
  bool just_looked = false;  // at the window too, as a body's first look does
  while (!c.exact && c.ahead_to < std::min(end, f.offset + kWindow + kLookahead)) {
    const uint64_t from = std::max(c.ahead_to, f.offset);
    const uint64_t n = std::min(end - from, kLookahead);
    const std::optional<bool> all = cached(f.fd, from, n);
    if (!all) c.exact = true;  // no cachestat
    if (all == false) mark_cold(c);
    just_looked = just_looked || from == f.offset;
    c.ahead_to = from + n;
  }
  if (!c.exact) {
    if (just_looked) return true;
    if (auto all = cached(f.fd, f.offset, length)) return *all;
  }
  return uptodate(f.fd, f.offset, length);
}

void HttpServer::mark_cold(Connection& c) {
  c.exact = true;
  cold_until_ = steady_seconds() + kColdSeconds;
}

void HttpServer::on_writable(Connection& c) {
  if (c.tls != nullptr && c.handshaking) return handshake(c);
  if (!flush(c)) return;
  if (c.out_off == c.out.size() && !c.file) {
    if (c.close_after_write && !c.sink) {
      if (c.discard_left == 0) return close(c);
      // The rest of a refused body is read and dropped first (kMaxLinger).
      if (c.writer) c.writer->stop();
      c.reader->start();
      return;
    }
    if (c.writer) c.writer->stop();
    if (c.deferred) return;
    if (c.sink) return read_body(c);
    c.reader->start();
    const bool read_again = c.read_wants_write;  // an SSL_read waited for this
    c.read_wants_write = false;
    if (!c.in.empty() || read_again || buffered(c)) on_readable(c);
  }
}

void HttpServer::close(Connection& c) {
  // Stopped now, destroyed later: this may run inside the connection's own watcher callback.
  if (c.fd < 0) return;  // closed already
  if (c.reader) c.reader->stop();
  if (c.writer) c.writer->stop();
  c.token.reset();
  c.file.reset();
  if (c.sink) {
    c.sink->abort();
    c.sink.reset();
  }
  if (c.tls != nullptr) {
    tls_close(c.tls);
    c.tls = nullptr;
  }
  c.kept.reset();
  if (!c.limit_key.empty()) {
    auto it = per_address_.find(c.limit_key);
    if (it != per_address_.end() && --it->second == 0) per_address_.erase(it);
  }
  ::close(c.fd);
  c.fd = -1;
  graveyard_.push_back(std::move(*c.self));
  connections_.erase(c.self);
}

void HttpServer::sweep() {
  graveyard_.clear();
  const int64_t now = steady_seconds();
  // Least recently active first. A connection waiting for the server (an answer being made, a
  // body chunk being written, a file chunk being read) is not idle: it goes to the back.
  for (size_t n = connections_.size(); n > 0 && !connections_.empty(); --n) {
    Connection& c = *connections_.front();
    if (now - c.last_active < options_.timeout_seconds) break;
    if (c.deferred || c.sink_busy || c.warming) {
      c.last_active = now;
      connections_.splice(connections_.end(), connections_, c.self);
      continue;
    }
    close(c);
  }
}

}  // namespace evert::tracker
