// A blocking client for evertd's control API (HTTP/1.1 over a Unix socket), for evertctl.
// No event loop: one request per connection, with a timeout.
#pragma once

#include <string>

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

}  // namespace evert
