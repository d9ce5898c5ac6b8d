#include "udp_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace evert::tracker {
namespace {

constexpr unsigned kBatch = 64;        // datagrams per recvmmsg
constexpr size_t kMaxDatagram = 2048;  // larger requests are cut and fail to parse
constexpr int kMaxRounds = 16;         // batches per readiness, so TCP gets its turn

}  // namespace

struct UdpServer::Socket {
  int fd = -1;
  uint16_t port = 0;
  std::unique_ptr<daemon::FdWatcher> watcher;
  // Buffers for one batch, allocated once.
  std::vector<uint8_t> in = std::vector<uint8_t>(kBatch * kMaxDatagram);
  std::vector<uint8_t> out = std::vector<uint8_t>(kBatch * UdpTracker::kMaxResponse);
  mmsghdr rmsgs[kBatch]{};
  iovec riov[kBatch]{};
  sockaddr_storage addrs[kBatch]{};
  mmsghdr smsgs[kBatch]{};
  iovec siov[kBatch]{};
};

UdpServer::UdpServer(daemon::EventLoop& loop, UdpTracker& tracker, std::function<int64_t()> now)
    : loop_(loop), tracker_(tracker), now_(std::move(now)) {}

UdpServer::~UdpServer() {
  stop();
}

Status UdpServer::listen(const sockaddr_storage& addr, unsigned len, const std::string& label) {
  const int fd = ::socket(addr.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return Error(label + ": socket: " + std::strerror(errno));
  const int one = 1;
  if (addr.ss_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  const int buf = 4 << 20;  // absorb bursts; the kernel caps it at rmem_max
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&addr), len) != 0) {
    const int e = errno;
    ::close(fd);
    return Error(label + ": cannot bind: " + std::strerror(e));
  }
  auto s = std::make_unique<Socket>();
  s->fd = fd;
  sockaddr_storage ss{};
  socklen_t sl = sizeof ss;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &sl) == 0) s->port = endpoint_of(ss).port;
  Socket* raw = s.get();
  s->watcher = std::make_unique<daemon::FdWatcher>(loop_, fd, daemon::FdWatcher::kRead,
                                                   [this, raw](short) { drain(*raw); });
  sockets_.push_back(std::move(s));
  return Ok{};
}

std::vector<uint16_t> UdpServer::ports() const {
  std::vector<uint16_t> out;
  for (const auto& s : sockets_)
    out.push_back(s->port);
  return out;
}

std::vector<Endpoint> UdpServer::addresses() const {
  std::vector<Endpoint> out;
  for (const auto& s : sockets_)
    out.push_back(local_endpoint(s->fd));
  return out;
}

void UdpServer::stop() {
  for (auto& s : sockets_) {
    s->watcher.reset();
    ::close(s->fd);
  }
  sockets_.clear();
}

void UdpServer::drain(Socket& s) {
  for (int round = 0; round < kMaxRounds; ++round) {
    for (unsigned i = 0; i < kBatch; ++i) {
      s.riov[i] = {s.in.data() + i * kMaxDatagram, kMaxDatagram};
      s.rmsgs[i].msg_hdr = {};
      s.rmsgs[i].msg_hdr.msg_iov = &s.riov[i];
      s.rmsgs[i].msg_hdr.msg_iovlen = 1;
      s.rmsgs[i].msg_hdr.msg_name = &s.addrs[i];
      s.rmsgs[i].msg_hdr.msg_namelen = sizeof(sockaddr_storage);
    }
    const int n = recvmmsg(s.fd, s.rmsgs, kBatch, MSG_DONTWAIT, nullptr);
    if (n <= 0) return;
    datagrams_ += static_cast<uint64_t>(n);
    const int64_t now = now_();
    unsigned replies = 0;
    for (int i = 0; i < n; ++i) {
      if (s.rmsgs[i].msg_hdr.msg_flags & MSG_TRUNC) continue;  // larger than any request
      const Endpoint from = endpoint_of(s.addrs[i]);
      uint8_t* out = s.out.data() + replies * UdpTracker::kMaxResponse;
      const size_t size =
          tracker_.handle({s.in.data() + static_cast<size_t>(i) * kMaxDatagram, s.rmsgs[i].msg_len},
                          from, now, out);
      if (size == 0) continue;
      s.siov[replies] = {out, size};
      s.smsgs[replies].msg_hdr = {};
      s.smsgs[replies].msg_hdr.msg_iov = &s.siov[replies];
      s.smsgs[replies].msg_hdr.msg_iovlen = 1;
      s.smsgs[replies].msg_hdr.msg_name = &s.addrs[i];
      s.smsgs[replies].msg_hdr.msg_namelen = s.rmsgs[i].msg_hdr.msg_namelen;
      ++replies;
    }
    for (unsigned sent = 0; sent < replies;) {
      const int m = sendmmsg(s.fd, s.smsgs + sent, replies - sent, MSG_DONTWAIT);
      if (m <= 0) break;  // a full send buffer drops replies, as UDP may; clients retry
      sent += static_cast<unsigned>(m);
    }
    if (static_cast<unsigned>(n) < kBatch) return;
  }
}

}  // namespace evert::tracker
