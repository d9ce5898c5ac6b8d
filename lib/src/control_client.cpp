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

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  [[nodiscard]] int get() const { return fd_; }

 private:
  int fd_;
};

}  // namespace

Result<ControlResponse> control_request(const std::string& socket_path, const std::string& method,
                                        const std::string& path, const std::string& body,
                                        int timeout_ms) {
  sockaddr_un addr{};
  if (socket_path.size() >= sizeof addr.sun_path) return Error(socket_path + ": path too long");
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, socket_path.c_str(), socket_path.size());
  Fd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
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

}  // namespace evert
