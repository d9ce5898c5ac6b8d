// A blocking client for evertd's control API (HTTP/1.1 over a Unix socket), for evertctl.
// No event loop: one request per connection, with a timeout.
#pragma once

#include <string>
#include <vector>

#include "evert/result.h"

namespace evert {

inline constexpr const char* kDefaultControlSocket = "/run/evert/evertd.sock";

struct ControlResponse {
  int status = 0;    // HTTP status
  std::string body;  // JSON text
};

// Sends METHOD PATH with `body` (JSON, may be empty) to the daemon at `socket_path`. Errors say
// what the user can do: the daemon is not running (no socket, or nothing listening), or the
// socket is not accessible (join the group that owns it), or the daemon did not answer in time.
Result<ControlResponse> control_request(const std::string& socket_path, const std::string& method,
                                        const std::string& path, const std::string& body = {},
                                        int timeout_ms = 30'000);

// The descriptor socket beside the control socket: evertctl hands evertd open files over it
// (SCM_RIGHTS), which HTTP cannot carry. "/run/evert/evertd.sock" -> "/run/evert/evertd-fds.sock".
// Protocol (docs/control-api.md): SOCK_SEQPACKET; a header message (JSON object with "op" and
// "count"), then messages {"files":[entry, ...]} each carrying one descriptor per entry, then
// one answer message "STATUS JSON".
std::string fd_socket_path(const std::string& control_socket_path);
inline constexpr size_t kFdMessageMax = 64 * 1024;  // bytes of JSON in one message
inline constexpr size_t kFdsPerMessage = 200;       // descriptors in one message

// Sends `header` (a JSON object's text, without "count": it is added) and the files: entries[i]
// is a JSON object's text describing fds[i]. Blocking, with a timeout for the answer.
Result<ControlResponse> control_send_fds(const std::string& fd_socket, const std::string& header,
                                         const std::vector<std::string>& entries,
                                         const std::vector<int>& fds, int timeout_ms = 60'000);

}  // namespace evert
