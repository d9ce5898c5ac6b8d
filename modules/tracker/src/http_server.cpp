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

namespace evert::tracker {
namespace {

constexpr size_t kMaxHead = 8192;
constexpr size_t kMaxPendingOut = 1 << 20;
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

int64_t steady_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

const char* reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 206:
      return "Partial Content";
    case 304:
      return "Not Modified";
    case 400:
      return "Bad Request";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 413:
      return "Content Too Large";
    case 416:
      return "Range Not Satisfiable";
    case 431:
      return "Request Header Fields Too Large";
    case 505:
      return "HTTP Version Not Supported";
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

struct HttpServer::Listener {
  int fd = -1;
  uint16_t port = 0;
  std::unique_ptr<daemon::FdWatcher> watcher;
};

struct HttpServer::Connection {
  int fd = -1;
  Endpoint peer;
  std::string in;
  std::string out;
  size_t out_off = 0;
  int64_t last_active = 0;
  bool close_after_write = false;
  std::optional<FileBody> file;      // being sent after `out`
  uint64_t checked_to = 0;           // file offset up to which the page cache was found to hold it
  uint64_t ahead_to = 0;             // offset up to which `file` was looked ahead at (resident())
  bool exact = false;                // check the rest of `file` with mincore (resident())
  bool warming = false;              // a chunk of `file` is being read on a worker
  std::shared_ptr<const void> kept;  // the `hold` of the last body sent
  std::shared_ptr<bool> token;       // expires when the connection closes (worker results)
  std::unique_ptr<daemon::FdWatcher> reader;
  std::unique_ptr<daemon::FdWatcher> writer;
  std::list<std::unique_ptr<Connection>>::iterator self;
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
    serve_new(fd, endpoint_of(ss));
  }
}

void HttpServer::serve_new(int fd, const Endpoint& peer) {
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
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  auto c = std::make_unique<Connection>();
  c->fd = fd;
  c->peer = peer;
  c->in = q.in;
  c->out = q.out.substr(q.out_off);
  c->file = std::move(q.file);
  q.file.reset();
  c->token = std::make_shared<bool>(true);
  c->close_after_write = !keep;
  c->last_active = steady_seconds();
  Connection* raw = c.get();
  c->reader = std::make_unique<daemon::FdWatcher>(loop_, fd, daemon::FdWatcher::kRead,
                                                  [this, raw](short) { on_readable(*raw); });
  connections_.push_back(std::move(c));
  raw->self = std::prev(connections_.end());
  if (raw->out.empty() && !raw->file) return;
  if (!flush(*raw)) return;
  if (raw->out.empty() && !raw->file) {  // all sent now: as on_writable() would go on
    if (raw->close_after_write) return close(*raw);
    if (raw->in.find("\r\n\r\n") != std::string::npos) on_readable(*raw);
  }
}

void HttpServer::on_readable(Connection& c) {
  if (c.out.size() - c.out_off > kMaxPendingOut) return;  // the client is not reading
  if (c.file) {
    c.reader->stop();  // started again when the file body is sent
    return;
  }
  bool closed = false;
  for (;;) {
    const size_t old = c.in.size();
    c.in.resize(old + 4096);
    const ssize_t n = ::recv(c.fd, c.in.data() + old, 4096, 0);
    if (n <= 0) {
      c.in.resize(old);
      if (n == 0 || (errno != EAGAIN && errno != EINTR)) closed = true;
      break;
    }
    c.in.resize(old + static_cast<size_t>(n));
    if (static_cast<size_t>(n) < 4096 || c.in.size() > kMaxHead) break;
  }
  c.last_active = steady_seconds();
  connections_.splice(connections_.end(), connections_, c.self);
  bool keep = true;
  // Requests pipelined behind a file body are processed once it is sent (bounded per turn).
  for (int i = 0; i < 64; ++i) {
    keep = process(c);
    if (!flush(c)) return;
    if (c.file || !keep || c.in.find("\r\n\r\n") == std::string::npos) break;
  }
  const bool done = c.out_off == c.out.size() && !c.file;
  if (!keep && done) {
    close(c);
    return;
  }
  if (!keep) c.close_after_write = true;
  if (closed && done) close(c);
}

bool HttpServer::process(Connection& c) {
  size_t consumed = 0;
  bool keep = true;
  while (keep && !c.file) {
    const std::string_view buf = std::string_view(c.in).substr(consumed);
    const size_t end = buf.find("\r\n\r\n");
    if (end == std::string_view::npos || end > kMaxHead) {
      if (buf.size() > kMaxHead) {
        response_.status = 431;
        response_.body = "request head too large\n";
        keep = false;
      } else {
        break;
      }
    }
    HttpRequest req;
    req.peer = c.peer;
    bool http10 = false;
    bool conn_close = false;
    bool conn_keep = false;
    if (keep) {
      const std::string_view head = buf.substr(0, end);
      consumed += end + 4;
      ++requests_;
      response_.status = 200;
      response_.content_type = "text/plain";
      response_.body.clear();
      response_.headers.clear();
      response_.file.reset();
      const size_t eol = head.find("\r\n");
      const std::string_view line = head.substr(0, eol);
      const size_t sp1 = line.find(' ');
      const size_t sp2 = line.rfind(' ');
      std::string_view version = sp2 == std::string_view::npos ? "" : line.substr(sp2 + 1);
      if (sp1 == std::string_view::npos || sp1 == sp2 || version.substr(0, 5) != "HTTP/") {
        response_.status = 400;
        response_.body = "malformed request line\n";
        keep = false;
      } else if (version != "HTTP/1.1" && version != "HTTP/1.0") {
        response_.status = 505;
        response_.body = "HTTP/1.0 or HTTP/1.1 only\n";
        keep = false;
      } else {
        http10 = version == "HTTP/1.0";
        req.method = line.substr(0, sp1);
        const std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
        const size_t q = target.find('?');
        req.path = target.substr(0, q);
        req.query = q == std::string_view::npos ? std::string_view{} : target.substr(q + 1);
        bool has_body = false;
        std::string_view rest = eol == std::string_view::npos ? "" : head.substr(eol + 2);
        while (!rest.empty()) {
          const size_t e = rest.find("\r\n");
          const std::string_view h = rest.substr(0, e);
          rest = e == std::string_view::npos ? std::string_view{} : rest.substr(e + 2);
          const size_t colon = h.find(':');
          if (colon == std::string_view::npos) continue;
          const std::string_view name = h.substr(0, colon);
          const std::string_view value = trim(h.substr(colon + 1));
          if (iequals(name, "connection")) {
            if (iequals(value, "close")) conn_close = true;
            if (iequals(value, "keep-alive")) conn_keep = true;
          } else if (iequals(name, "x-forwarded-for")) {
            req.x_forwarded_for = value;
          } else if (iequals(name, "x-real-ip")) {
            req.x_real_ip = value;
          } else if (iequals(name, "range")) {
            req.range = value;
          } else if (iequals(name, "if-range")) {
            req.if_range = value;
          } else if ((iequals(name, "content-length") && value != "0") ||
                     iequals(name, "transfer-encoding")) {
            has_body = true;
          }
        }
        keep = http10 ? conn_keep && !conn_close : !conn_close;
        if (has_body) {
          response_.status = 413;
          response_.body = "request bodies are not accepted here\n";
          keep = false;
        } else if (req.method != "GET" && req.method != "HEAD") {
          response_.status = 405;
          response_.body = "GET only\n";
        } else {
          handler_(req, response_);
        }
      }
    }
    // A HEAD answer says the length of the body it does not send.
    const uint64_t length = response_.file ? response_.file->length : response_.body.size();
    char num[24];
    auto [p, ec] = std::to_chars(num, num + sizeof num, length);
    c.out += http10 ? "HTTP/1.0 " : "HTTP/1.1 ";
    char st[8];
    auto [sp, sec] = std::to_chars(st, st + sizeof st, response_.status);
    c.out.append(st, sp);
    c.out += ' ';
    c.out += reason(response_.status);
    c.out += "\r\nContent-Type: ";
    c.out += response_.content_type;
    c.out += "\r\nContent-Length: ";
    c.out.append(num, p);
    c.out += "\r\n";
    c.out += response_.headers;
    if (!keep) {
      c.out += "Connection: close\r\n";
    } else if (http10) {
      c.out += "Connection: keep-alive\r\n";
    }
    c.out += "\r\n";
    if (req.method != "HEAD") {
      c.out += response_.body;
      if (response_.file && response_.file->length > 0) {
        c.file = std::move(response_.file);
        c.checked_to = c.file->offset;
      }
    }
    response_.file.reset();
    if (c.out.size() - c.out_off > kMaxPendingOut) break;
  }
  c.in.erase(0, consumed);
  return keep;
}

bool HttpServer::flush(Connection& c) {
  while (c.out_off < c.out.size()) {
    const ssize_t n = ::send(c.fd, c.out.data() + c.out_off, c.out.size() - c.out_off,
                             MSG_NOSIGNAL | (c.file ? MSG_MORE : 0));  // see serve_new()
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

bool HttpServer::send_file(Connection& c, bool& waiting) {
  FileBody& f = *c.file;
  while (f.length > 0) {
    if (c.warming) {
      waiting = true;
      return true;
    }
    if (f.offset >= c.checked_to) {
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
        waiting = true;
        Connection* raw = &c;
        workers_->submit([this, &loop = loop_, raw, token = std::weak_ptr<bool>(c.token),
                          hold = f.hold, fd = f.fd, offset = f.offset, chunk] {
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
        return true;
      }
      c.checked_to = f.offset + hot;
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
  if (!flush(c)) return;
  if (c.out_off == c.out.size() && !c.file) {
    if (c.close_after_write) {
      close(c);
      return;
    }
    if (c.writer) c.writer->stop();
    c.reader->start();
    if (!c.in.empty()) on_readable(c);
  }
}

void HttpServer::close(Connection& c) {
  // Stopped now, destroyed later: this may run inside the connection's own watcher callback.
  if (c.reader) c.reader->stop();
  if (c.writer) c.writer->stop();
  c.token.reset();
  c.file.reset();
  c.kept.reset();
  ::close(c.fd);
  graveyard_.push_back(std::move(*c.self));
  connections_.erase(c.self);
}

void HttpServer::sweep() {
  graveyard_.clear();
  const int64_t now = steady_seconds();
  while (!connections_.empty() &&
         now - connections_.front()->last_active >= options_.timeout_seconds) {
    close(*connections_.front());
  }
}

}  // namespace evert::tracker
