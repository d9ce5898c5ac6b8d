#include "evert/daemon/control_api.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <fcntl.h>
#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace evert::daemon {

using nlohmann::json;

ApiResponse ApiResponse::error(int status, std::string code, std::string message) {
  ApiResponse r;
  r.status = status;
  r.body = {{"error", {{"code", std::move(code)}, {"message", std::move(message)}}}};
  return r;
}

ControlApi::ControlApi(EventLoop& loop) : loop_(loop) {}

ControlApi::~ControlApi() {
  stop();
}

namespace {

std::string errno_text(const std::string& what) {
  return what + ": " + std::strerror(errno);
}

// A stale socket file (left by a crash) is removed; a live one (another evertd) is an error.
Status clear_stale_socket(const std::string& path, int type) {
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0) return Ok{};
  if (!S_ISSOCK(st.st_mode)) return Error(path + ": exists and is not a socket");
  const int fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  const bool live = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  close(fd);
  if (live) return Error(path + ": another evertd is already listening there");
  unlink(path.c_str());
  return Ok{};
}

}  // namespace

Result<int> bind_unix_socket(const std::string& path, uint32_t mode, const std::string& owner_group,
                             int type) {
  if (path.size() >= sizeof(sockaddr_un{}.sun_path)) {
    return Error(path + ": socket path too long");
  }
  std::error_code ec;
  const auto parent = std::filesystem::path(path).parent_path();
  std::filesystem::create_directories(parent, ec);
  if (ec) return Error(parent.string() + ": cannot create: " + ec.message());
  if (auto s = clear_stale_socket(path, type); !s) return s.error();
  const int fd = socket(AF_UNIX, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return Error(errno_text("socket"));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  // The mode is set before anyone can connect: bind under a restrictive umask, then chmod.
  const mode_t old = umask(0177);
  const int rc = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  umask(old);
  if (rc != 0) {
    const std::string e = errno_text(path + ": cannot bind");
    close(fd);
    return Error(e);
  }
  if (!owner_group.empty()) {
    group* g = getgrnam(owner_group.c_str());
    if (g == nullptr) {
      close(fd);
      unlink(path.c_str());
      return Error(path + ": group '" + owner_group + "' does not exist (control.socket_group)");
    }
    if (chown(path.c_str(), static_cast<uid_t>(-1), g->gr_gid) != 0) {
      const std::string e = errno_text(path + ": cannot set group " + owner_group);
      close(fd);
      unlink(path.c_str());
      return Error(e);
    }
  }
  chmod(path.c_str(), mode);
  if (listen(fd, 64) != 0) {
    const std::string e = errno_text(path + ": cannot listen");
    close(fd);
    unlink(path.c_str());
    return Error(e);
  }
  return fd;
}

namespace {

PeerCredentials peer_of(evhttp_request* req) {
  PeerCredentials p;
  evhttp_connection* conn = evhttp_request_get_connection(req);
  bufferevent* bev = conn ? evhttp_connection_get_bufferevent(conn) : nullptr;
  const int fd = bev ? bufferevent_getfd(bev) : -1;
  ucred cred{};
  socklen_t len = sizeof cred;
  if (fd >= 0 && getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
    p.pid = cred.pid;
    p.uid = cred.uid;
    p.gid = cred.gid;
  }
  return p;
}

}  // namespace

Status ControlApi::start(const Options& o) {
  max_body_ = o.max_body;
  int fd = o.inherited_fd;
  if (fd < 0) {
    auto bound = bind_unix_socket(o.socket_path, o.socket_mode, o.socket_group, SOCK_STREAM);
    if (!bound) return bound.error();
    fd = *bound;
    socket_path_ = o.socket_path;
  } else {
    evutil_make_socket_nonblocking(fd);
  }
  http_ = evhttp_new(loop_.base());
  evhttp_set_allowed_methods(http_, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
                                        EVHTTP_REQ_DELETE | EVHTTP_REQ_HEAD);
  // One byte more than our limit reaches the handler, which answers 413 in JSON; libevent
  // itself refuses anything larger with its own 413.
  evhttp_set_max_body_size(http_, static_cast<ev_ssize_t>(max_body_ + 1));
  evhttp_set_max_headers_size(http_, 16 * 1024);
  evhttp_set_timeout(http_, 30);
  evhttp_set_gencb(http_, &ControlApi::on_request, this);
  evconnlistener* l = evconnlistener_new(loop_.base(), nullptr, nullptr,
                                         LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1, fd);
  if (l == nullptr || evhttp_bind_listener(http_, l) == nullptr) {
    return Error(o.socket_path + ": cannot serve the control API");
  }
  return Ok{};
}

void ControlApi::stop() {
  if (http_ != nullptr) {
    evhttp_free(http_);
    http_ = nullptr;
  }
  if (!socket_path_.empty()) {
    unlink(socket_path_.c_str());
    socket_path_.clear();
  }
}

void ControlApi::set_max_body(uint64_t max_body) {
  max_body_ = max_body;
  if (http_ != nullptr) evhttp_set_max_body_size(http_, static_cast<ev_ssize_t>(max_body_ + 1));
}

void ControlApi::route(const std::string& method, const std::string& path, ApiHandler handler) {
  routes_[path][method] = std::move(handler);
}

ApiResponse ControlApi::dispatch(ApiRequest& r) const {
  if (r.body.size() > max_body_) {
    return ApiResponse::error(413, "body_too_large",
                              "request body larger than " + std::to_string(max_body_) + " bytes");
  }
  auto path = routes_.find(r.path);
  if (path == routes_.end()) {
    return ApiResponse::error(404, "not_found", "no route " + r.path);
  }
  auto handler = path->second.find(r.method);
  if (handler == path->second.end()) {
    std::string allowed;
    for (const auto& [m, _] : path->second)
      allowed += (allowed.empty() ? "" : ", ") + m;
    return ApiResponse::error(405, "method_not_allowed",
                              r.method + " " + r.path + " (allowed: " + allowed + ")");
  }
  if (!r.body.empty()) {
    r.json = json::parse(r.body, nullptr, false);
    if (r.json.is_discarded()) {
      return ApiResponse::error(400, "bad_json", "the request body is not valid JSON");
    }
  }
  if (r.method != "GET" && r.method != "HEAD" && on_mutation) on_mutation(r);
  try {
    return handler->second(r);
  } catch (const std::exception& e) {
    // No exception escapes a loop callback (STYLE.md §7).
    return ApiResponse::error(500, "internal", e.what());
  }
}

void ControlApi::on_request(evhttp_request* req, void* self) {
  auto* api = static_cast<ControlApi*>(self);
  ApiRequest r;
  switch (evhttp_request_get_command(req)) {
    case EVHTTP_REQ_GET:
      r.method = "GET";
      break;
    case EVHTTP_REQ_POST:
      r.method = "POST";
      break;
    case EVHTTP_REQ_PUT:
      r.method = "PUT";
      break;
    case EVHTTP_REQ_DELETE:
      r.method = "DELETE";
      break;
    case EVHTTP_REQ_HEAD:
      r.method = "HEAD";
      break;
    default:
      r.method = "OTHER";
  }
  const evhttp_uri* uri = evhttp_request_get_evhttp_uri(req);
  const char* p = uri ? evhttp_uri_get_path(uri) : nullptr;
  const char* q = uri ? evhttp_uri_get_query(uri) : nullptr;
  r.path = p ? p : "/";
  r.query = q ? q : "";
  evbuffer* in = evhttp_request_get_input_buffer(req);
  const size_t n = evbuffer_get_length(in);
  r.body.resize(n);
  evbuffer_remove(in, r.body.data(), n);
  r.peer = peer_of(req);

  const ApiResponse resp = api->dispatch(r);
  const std::string body =
      resp.body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  evkeyvalq* headers = evhttp_request_get_output_headers(req);
  evhttp_add_header(headers, "Content-Type", "application/json");
  evbuffer* out = evbuffer_new();
  evbuffer_add(out, body.data(), body.size());
  evhttp_send_reply(req, resp.status, nullptr, out);
  evbuffer_free(out);
}

std::string query_param(const std::string& query, const std::string& key) {
  size_t pos = 0;
  while (pos <= query.size()) {
    const size_t amp = query.find('&', pos);
    const std::string part = query.substr(pos, amp - pos);
    if (part.rfind(key + "=", 0) == 0) return part.substr(key.size() + 1);
    if (amp == std::string::npos) break;
    pos = amp + 1;
  }
  return {};
}

}  // namespace evert::daemon
