#include "evert/daemon/fd_api.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "evert/control_client.h"

namespace evert::daemon {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

struct FdApi::Conn {
  uint64_t id = 0;
  UniqueFd fd;
  std::unique_ptr<FdWatcher> watch;
  Clock::time_point started = Clock::now();
  FdRequest req;
  size_t expected = 0;
  bool have_header = false;
  bool done = false;
};

FdApi::FdApi(EventLoop& loop) : loop_(loop), sweep_timer_(loop, [this] { sweep(); }) {}

FdApi::~FdApi() {
  stop();
}

Status FdApi::start(const Options& o) {
  options_ = o;
  if (o.inherited_fd >= 0) {
    listen_fd_.reset(o.inherited_fd);
  } else {
    auto fd = bind_unix_socket(o.socket_path, o.socket_mode, o.socket_group, SOCK_SEQPACKET);
    if (!fd) return fd.error();
    listen_fd_.reset(*fd);
    socket_path_ = o.socket_path;
  }
  listen_watch_ = std::make_unique<FdWatcher>(loop_, listen_fd_.get(), FdWatcher::kRead,
                                              [this](short) { accept_one(); });
  sweep_timer_.start(std::chrono::seconds(1), true);
  return Ok{};
}

void FdApi::stop() {
  sweep_timer_.stop();
  for (auto& [id, c] : conns_) {
    c->watch.reset();
  }
  conns_.clear();
  graveyard_.clear();
  listen_watch_.reset();
  listen_fd_.reset();
  if (!socket_path_.empty()) {
    unlink(socket_path_.c_str());
    socket_path_.clear();
  }
}

void FdApi::route(const std::string& op, FdHandler handler) {
  routes_[op] = std::move(handler);
}

void FdApi::accept_one() {
  const int fd = accept4(listen_fd_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (fd < 0) return;
  auto c = std::make_unique<Conn>();
  c->id = next_id_++;
  c->fd.reset(fd);
  ucred cred{};
  socklen_t len = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
    c->req.peer = {cred.pid, cred.uid, cred.gid};
  }
  if (conns_.size() >= kMaxConnections) {
    answer(*c, ApiResponse::error(503, "busy", "too many publish requests at once; try again"));
    return;
  }
  Conn& ref = *c;
  c->watch = std::make_unique<FdWatcher>(loop_, fd, FdWatcher::kRead,
                                         [this, &ref](short) { on_readable(ref); });
  conns_[c->id] = std::move(c);
}

void FdApi::on_readable(Conn& c) {
  if (c.done) return;
  std::string buf(kFdMessageMax + 1, '\0');
  std::vector<char> control(CMSG_SPACE(sizeof(int) * kFdsPerMessage));
  iovec iov{buf.data(), buf.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.data();
  msg.msg_controllen = control.size();
  const ssize_t n = recvmsg(c.fd.get(), &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  // Take ownership of every descriptor that came, so none leaks whatever happens next.
  std::vector<UniqueFd> got;
  for (cmsghdr* h = CMSG_FIRSTHDR(&msg); h != nullptr; h = CMSG_NXTHDR(&msg, h)) {
    if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS) continue;
    const size_t count = (h->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; ++i) {
      int fd = -1;
      std::memcpy(&fd, CMSG_DATA(h) + i * sizeof(int), sizeof fd);
      got.emplace_back(fd);
    }
  }
  if (n <= 0) {  // the client went away before finishing its request
    close(c);
    return;
  }
  if ((msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0 || static_cast<size_t>(n) > kFdMessageMax) {
    answer(c, ApiResponse::error(413, "too_large", "a message was larger than the limits"));
    return;
  }
  buf.resize(static_cast<size_t>(n));
  json j = json::parse(buf, nullptr, false);
  if (!j.is_object()) {
    answer(c, ApiResponse::error(400, "bad_json", "a message is not a JSON object"));
    return;
  }
  if (!c.have_header) {
    if (!got.empty()) {
      answer(c, ApiResponse::error(400, "bad_request", "descriptors came with the header"));
      return;
    }
    if (!j.contains("op") || !j["op"].is_string() || !j.contains("count") ||
        !j["count"].is_number_unsigned()) {
      answer(c, ApiResponse::error(400, "bad_request", "the header needs \"op\" and \"count\""));
      return;
    }
    c.req.op = j["op"].get<std::string>();
    if (routes_.count(c.req.op) == 0) {
      answer(c, ApiResponse::error(404, "not_found", "no operation " + c.req.op));
      return;
    }
    c.expected = j["count"].get<size_t>();
    if (c.expected > options_.max_files) {
      answer(c, ApiResponse::error(413, "too_many_files",
                                   std::to_string(c.expected) + " files in one request; at most " +
                                       std::to_string(options_.max_files)));
      return;
    }
    c.req.header = std::move(j);
    c.have_header = true;
  } else {
    if (!j.contains("files") || !j["files"].is_array() || j["files"].size() != got.size() ||
        c.req.entries.size() + got.size() > c.expected) {
      answer(c, ApiResponse::error(400, "bad_request",
                                   "a files message needs one descriptor per entry, no more "
                                   "than the header's count"));
      return;
    }
    for (auto& e : j["files"])
      c.req.entries.push_back(std::move(e));
    for (auto& fd : got)
      c.req.fds.push_back(std::move(fd));
  }
  if (c.have_header && c.req.entries.size() == c.expected) {
    ApiResponse r;
    try {
      r = routes_.at(c.req.op)(c.req);
    } catch (const std::exception& e) {
      r = ApiResponse::error(500, "internal", e.what());
    }
    answer(c, r);
  }
}

void FdApi::answer(Conn& c, const ApiResponse& r) {
  const std::string text = std::to_string(r.status) + " " +
                           r.body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  // One message on a fresh socket's empty buffer: does not block.
  (void)!send(c.fd.get(), text.data(), std::min(text.size(), kFdMessageMax),
              MSG_DONTWAIT | MSG_NOSIGNAL);
  c.done = true;
  close(c);
}

void FdApi::close(Conn& c) {
  c.watch.reset();
  c.req.fds.clear();
  auto it = conns_.find(c.id);
  if (it == conns_.end()) return;  // refused before it was registered
  // The watcher's callback may be running: free the connection at the next sweep.
  graveyard_.push_back(std::move(it->second));
  conns_.erase(it);
}

void FdApi::sweep() {
  graveyard_.clear();
  const auto now = Clock::now();
  std::vector<Conn*> late;
  for (auto& [id, c] : conns_) {
    if (now - c->started > std::chrono::seconds(30)) late.push_back(c.get());
  }
  for (Conn* c : late)
    answer(*c, ApiResponse::error(408, "timeout", "the request did not complete in 30 s"));
}

}  // namespace evert::daemon
