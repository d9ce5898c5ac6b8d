// The control API: HTTP/1.1 + JSON over a Unix socket (evhttp), versioned routes under /v1/.
// Errors are {"error":{"code":...,"message":...}} with a fitting status. Modules add routes
// through their context. `curl --unix-socket SOCK http://localhost/v1/status` works.
//
// Thread-safety: loop thread only.
#pragma once

#include <sys/types.h>

#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "evert/daemon/event_loop.h"
#include "evert/result.h"

struct evhttp;
struct evhttp_request;
struct evconnlistener;

namespace evert::daemon {

struct PeerCredentials {
  pid_t pid = 0;
  uid_t uid = static_cast<uid_t>(-1);
  gid_t gid = static_cast<gid_t>(-1);
};

struct ApiRequest {
  std::string method;  // "GET", "POST", ...
  std::string path;    // "/v1/status"
  std::string query;   // after '?', undecoded
  std::string body;
  nlohmann::json json;  // the parsed body, when it had one
  PeerCredentials peer;
};

struct ApiResponse {
  int status = 200;
  nlohmann::json body = nlohmann::json::object();

  static ApiResponse error(int status, std::string code, std::string message);
};

using ApiHandler = std::function<ApiResponse(const ApiRequest&)>;

// Binds a Unix socket of `type` (SOCK_STREAM, SOCK_SEQPACKET) at `path` with `mode` and `group`
// (empty: unchanged) set before anyone can connect, and listens. A stale socket file is
// replaced; a live one (another evertd) is an error. Returns the non-blocking fd.
Result<int> bind_unix_socket(const std::string& path, uint32_t mode, const std::string& group,
                             int type);

// The raw (undecoded) value of `key` in a query string, or empty.
std::string query_param(const std::string& query, const std::string& key);

class ControlApi {
 public:
  struct Options {
    std::string socket_path;
    uint32_t socket_mode = 0660;
    std::string socket_group;  // empty: unchanged
    uint64_t max_body = 1 << 20;
    int inherited_fd = -1;  // a listening socket from systemd socket activation
  };

  explicit ControlApi(EventLoop& loop);
  ~ControlApi();
  ControlApi(const ControlApi&) = delete;
  ControlApi& operator=(const ControlApi&) = delete;

  // Binds (or adopts the inherited socket) and starts serving. Errors name the path and why.
  Status start(const Options& options);
  // Stops accepting; removes the socket file it created.
  void stop();
  void set_max_body(uint64_t max_body);

  // Registers a handler for METHOD PATH (exact match). State-changing methods (anything but
  // GET) have the caller's credentials logged by the host's `on_mutation` hook.
  void route(const std::string& method, const std::string& path, ApiHandler handler);
  std::function<void(const ApiRequest&)> on_mutation;

  // Dispatches without a socket (tests, fuzzing): routing, JSON parsing and errors.
  ApiResponse dispatch(ApiRequest& request) const;

 private:
  static void on_request(evhttp_request* req, void* self);
  EventLoop& loop_;
  evhttp* http_ = nullptr;
  std::string socket_path_;  // the file to unlink at stop (not for inherited sockets)
  uint64_t max_body_ = 1 << 20;
  std::map<std::string, std::map<std::string, ApiHandler>> routes_;  // path -> method -> handler
};

}  // namespace evert::daemon
