#include "evert/control_client.h"

#include <grp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "evert/unique_fd.h"

namespace evert {

namespace {

constexpr size_t kMaxResponseBytes = 64 << 20;

std::string group_hint(const std::string& path) {
  struct stat st {};
  std::string name = "evert";
  if (stat(path.c_str(), &st) == 0) {
    if (const struct group* g = getgrgid(st.st_gid)) name = g->gr_name;
  }
  return "permission denied on " + path + ": join the group '" + name + "' (sudo adduser $USER " +
         name + ", then log in again)";
}

Error connect_error(const std::string& path, int err) {
  switch (err) {
    case ENOENT:
      return Error("evertd is not running: no control socket at " + path +
                   " (start it: sudo systemctl start evertd; or give --socket)");
    case ECONNREFUSED:
      return Error("evertd is not running: nothing listens on " + path +
                   " (start it: sudo systemctl start evertd)");
    case EACCES:
    case EPERM:
      return Error(group_hint(path));
    default:
      return Error(path + ": cannot connect: " + std::strerror(err));
  }
}

}  // namespace

Result<ControlResponse> control_request(const std::string& socket_path, const std::string& method,
                                        const std::string& path, const std::string& body,
                                        int timeout_ms) {
  sockaddr_un addr{};
  if (socket_path.size() >= sizeof addr.sun_path) return Error(socket_path + ": path too long");
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, socket_path.c_str(), socket_path.size());
  UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) return Error(std::string("socket: ") + std::strerror(errno));
  if (connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    return connect_error(socket_path, errno);
  }
  std::string req = method + " " + path + " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n";
  if (!body.empty()) req += "Content-Type: application/json\r\n";
  req += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  for (size_t sent = 0; sent < req.size();) {
    const ssize_t n = send(fd.get(), req.data() + sent, req.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    // The daemon may answer (413) and close before reading a large body: read its answer.
    if (n < 0 && (errno == EPIPE || errno == ECONNRESET)) break;
    if (n <= 0) return Error(socket_path + ": cannot send: " + std::strerror(errno));
    sent += static_cast<size_t>(n);
  }

  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  std::string resp;
  char buf[16384];
  while (true) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                          deadline - std::chrono::steady_clock::now())
                          .count();
    if (left <= 0)
      return Error("evertd did not answer within " + std::to_string(timeout_ms) + " ms");
    pollfd p{fd.get(), POLLIN, 0};
    const int rc = poll(&p, 1, static_cast<int>(left));
    if (rc < 0 && errno == EINTR) continue;
    if (rc <= 0) continue;
    const ssize_t n = recv(fd.get(), buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == ECONNRESET && !resp.empty()) break;
    if (n < 0) return Error(socket_path + ": read error: " + std::strerror(errno));
    if (n == 0) break;
    resp.append(buf, static_cast<size_t>(n));
    if (resp.size() > kMaxResponseBytes) return Error("evertd's answer is too large");
  }

  // "HTTP/1.1 200 OK\r\n...headers...\r\n\r\nbody"
  const size_t header_end = resp.find("\r\n\r\n");
  if (resp.compare(0, 5, "HTTP/") != 0 || header_end == std::string::npos) {
    return Error("evertd sent a malformed answer");
  }
  const size_t sp = resp.find(' ');
  ControlResponse out;
  out.status = std::atoi(resp.c_str() + sp + 1);
  out.body = resp.substr(header_end + 4);
  return out;
}

std::string fd_socket_path(const std::string& control) {
  const std::string suffix = ".sock";
  if (control.size() > suffix.size() &&
      control.compare(control.size() - suffix.size(), suffix.size(), suffix) == 0) {
    return control.substr(0, control.size() - suffix.size()) + "-fds.sock";
  }
  return control + "-fds";
}

namespace {

Status send_message(int fd, const std::string& path, const std::string& text, const int* fds,
                    size_t nfds) {
  iovec iov{const_cast<char*>(text.data()), text.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  std::vector<char> control;
  if (nfds > 0) {
    control.assign(CMSG_SPACE(sizeof(int) * nfds), 0);
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
    std::memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
  }
  while (true) {
    if (sendmsg(fd, &msg, MSG_NOSIGNAL) >= 0) return Ok{};
    if (errno == EINTR) continue;
    // The daemon may have answered (an error) and closed: the caller reads the answer.
    if (errno == EPIPE || errno == ECONNRESET) return Ok{};
    return Error(path + ": cannot send: " + std::strerror(errno));
  }
}

}  // namespace

Result<ControlResponse> control_send_fds(const std::string& path, const std::string& header,
                                         const std::vector<std::string>& entries,
                                         const std::vector<int>& fds, int timeout_ms) {
  if (entries.size() != fds.size()) return Error("internal error: one descriptor per entry");
  if (header.empty() || header.back() != '}') return Error("internal error: header not an object");
  sockaddr_un addr{};
  if (path.size() >= sizeof addr.sun_path) return Error(path + ": path too long");
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size());
  UniqueFd fd(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return Error(std::string("socket: ") + std::strerror(errno));
  if (connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    return connect_error(path, errno);
  }
  std::string head = header.substr(0, header.size() - 1);
  head +=
      std::string(head.size() > 1 ? "," : "") + "\"count\":" + std::to_string(entries.size()) + "}";
  if (head.size() > kFdMessageMax) return Error("the request is too large");
  if (auto s = send_message(fd.get(), path, head, nullptr, 0); !s) return s.error();
  for (size_t i = 0; i < entries.size();) {
    std::string batch = "{\"files\":[";
    const size_t first = i;
    while (i < entries.size() && i - first < kFdsPerMessage &&
           batch.size() + entries[i].size() + 3 <= kFdMessageMax) {
      if (i > first) batch += ',';
      batch += entries[i++];
    }
    if (i == first) return Error("a file's path is too long to send");
    batch += "]}";
    if (auto s = send_message(fd.get(), path, batch, fds.data() + first, i - first); !s) {
      return s.error();
    }
  }
  pollfd p{fd.get(), POLLIN, 0};
  int rc = 0;
  do {
    rc = poll(&p, 1, timeout_ms);
  } while (rc < 0 && errno == EINTR);
  if (rc == 0) return Error("evertd did not answer within " + std::to_string(timeout_ms) + " ms");
  std::string answer(kFdMessageMax, '\0');
  const ssize_t n = recv(fd.get(), answer.data(), answer.size(), 0);
  if (n <= 0) return Error(path + ": evertd closed the connection without an answer");
  answer.resize(static_cast<size_t>(n));
  ControlResponse out;
  out.status = std::atoi(answer.c_str());
  const size_t sp = answer.find(' ');
  if (out.status < 100 || sp == std::string::npos) return Error("evertd sent a malformed answer");
  out.body = answer.substr(sp + 1);
  return out;
}

}  // namespace evert
