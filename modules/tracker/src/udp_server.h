// The UDP tracker's sockets: batched receive and send (recvmmsg/sendmmsg), each datagram
// handed to UdpTracker::handle. IPv4 and IPv6 listeners.
//
// Thread-safety: loop thread only.
#pragma once

#include <sys/socket.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "evert/daemon/event_loop.h"
#include "evert/result.h"
#include "evert/tracker/udp_proto.h"

namespace evert::tracker {

class UdpServer {
 public:
  // `now` gives the wall clock in seconds (injected for tests).
  UdpServer(daemon::EventLoop& loop, UdpTracker& tracker, std::function<int64_t()> now);
  ~UdpServer();
  UdpServer(const UdpServer&) = delete;
  UdpServer& operator=(const UdpServer&) = delete;

  Status listen(const sockaddr_storage& addr, unsigned len, const std::string& label);
  [[nodiscard]] std::vector<uint16_t> ports() const;
  // The address and port each socket is bound to (getsockname).
  [[nodiscard]] std::vector<Endpoint> addresses() const;
  void stop();
  [[nodiscard]] uint64_t datagrams() const { return datagrams_; }

 private:
  struct Socket;
  void drain(Socket& s);

  daemon::EventLoop& loop_;
  UdpTracker& tracker_;
  std::function<int64_t()> now_;
  std::vector<std::unique_ptr<Socket>> sockets_;
  uint64_t datagrams_ = 0;
};

}  // namespace evert::tracker
