// The descriptor socket beside the control API: a SOCK_SEQPACKET Unix socket over which
// evertctl hands evertd files it opened with the user's rights (SCM_RIGHTS), so the daemon
// never opens a user's path with its own privileges (DESIGN.md, "Publishing"). HTTP cannot
// carry descriptors, hence a second socket, with the control socket's owner and mode.
//
// Protocol (docs/control-api.md): a header message, a JSON object with "op" and "count"; then
// messages {"files":[entry, ...]} carrying one descriptor per entry until `count` entries came;
// the daemon answers one message "STATUS JSON" (an ApiResponse) and closes. Limits: 64 KiB per
// message, `max_files` descriptors per request, 16 connections at once, 30 s per request.
//
// Thread-safety: loop thread only.
#pragma once

#include <sys/types.h>

#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "evert/daemon/control_api.h"
#include "evert/daemon/event_loop.h"
#include "evert/result.h"
#include "evert/unique_fd.h"

namespace evert::daemon {

struct FdRequest {
  std::string op;
  nlohmann::json header;                // the first message (with "op" and "count")
  std::vector<nlohmann::json> entries;  // one per descriptor, as the client described it
  std::vector<UniqueFd> fds;
  PeerCredentials peer;
};

using FdHandler = std::function<ApiResponse(FdRequest&)>;

class FdApi {
 public:
  struct Options {
    std::string socket_path;
    uint32_t socket_mode = 0660;
    std::string socket_group;
    int inherited_fd = -1;
    size_t max_files = 100'000;
  };

  explicit FdApi(EventLoop& loop);
  ~FdApi();
  FdApi(const FdApi&) = delete;
  FdApi& operator=(const FdApi&) = delete;

  Status start(const Options& options);
  void stop();
  void route(const std::string& op, FdHandler handler);

  static constexpr size_t kMaxConnections = 16;

 private:
  struct Conn;
  void accept_one();
  void on_readable(Conn& c);
  void answer(Conn& c, const ApiResponse& r);
  void close(Conn& c);
  void sweep();

  EventLoop& loop_;
  Options options_;
  UniqueFd listen_fd_;
  std::unique_ptr<FdWatcher> listen_watch_;
  std::string socket_path_;  // unlinked at stop (not for inherited sockets)
  std::map<uint64_t, std::unique_ptr<Conn>> conns_;
  std::vector<std::unique_ptr<Conn>> graveyard_;
  uint64_t next_id_ = 1;
  std::map<std::string, FdHandler> routes_;
  Timer sweep_timer_;
};

}  // namespace evert::daemon
