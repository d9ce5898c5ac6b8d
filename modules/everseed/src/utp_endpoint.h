// The everseed's uTP side (BEP 29): a UDP socket on each listen address, with the same port
// number as its TCP listener, whose datagrams go to uTP connections (lib's utp::Socket, the
// protocol as a state machine without I/O) keyed by the peer's address and connection id. Each
// connection the seed takes is a PeerStream to it, so the peer wire session runs unchanged
// over uTP. This file is the thin part: sockets, one timer for every connection, batches of
// datagrams in (recvmmsg) and out (sendmmsg).
//
// Limits: a SYN is taken only when the seed's caps (connections, per address) allow it; a
// packet of a connection we do not know gets a RESET, which is never larger than the packet
// that caused it (no amplification), and nothing else; a SYN gets a 20-byte STATE, sent again
// at most twice while the initiator is silent (utp::Socket::state_resend_due); connections that
// never complete their handshake fail on the uTP socket's own timeouts and are removed.
//
// Thread-safety: loop thread only.
#pragma once

#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "evert/daemon/event_loop.h"
#include "evert/result.h"
#include "evert/tracker/types.h"
#include "evert/utp.h"
#include "peer_stream.h"

namespace spdlog {
class logger;
}

namespace evert::everseed {

class SeedServer;

struct UtpCounters {
  uint64_t datagrams_in = 0;
  uint64_t datagrams_out = 0;
  uint64_t malformed = 0;  // datagrams that are not uTP
  uint64_t resets_sent = 0;
  uint64_t refused = 0;  // SYNs over a cap
  uint64_t accepted = 0;
};

class UtpEndpoint {
 public:
  UtpEndpoint(daemon::EventLoop& loop, SeedServer& seed, std::shared_ptr<spdlog::logger> log);
  ~UtpEndpoint();
  UtpEndpoint(const UtpEndpoint&) = delete;
  UtpEndpoint& operator=(const UtpEndpoint&) = delete;

  // Binds a UDP socket to `addr` (the port of the TCP listener on it).
  Status listen(const sockaddr_storage& addr, unsigned len, const std::string& label);
  // Closes the sockets; the connections end without a word (the daemon is stopping).
  void stop();
  [[nodiscard]] size_t connections() const { return conns_.size(); }
  [[nodiscard]] const UtpCounters& counters() const { return counters_; }

 private:
  struct Key {
    tracker::Endpoint peer;
    uint16_t id = 0;  // the connection id of the packets we receive
    friend bool operator==(const Key&, const Key&) = default;
  };
  struct KeyHash {
    size_t operator()(const Key& k) const noexcept;
  };
  struct Udp;
  struct Conn;
  class Stream;

  void on_readable(Udp& u);
  void on_datagram(Udp& u, const sockaddr_storage& from, std::string_view bytes, uint64_t now);
  void on_syn(Udp& u, const sockaddr_storage& from, const Key& key, const utp::Packet& p,
              uint64_t now);
  void left_half_open(const Conn& c);
  // Marks a connection to be serviced at the end of the batch of datagrams being read, or
  // schedules it now.
  void touch(Conn& c);
  void arm();
  // Tells the connection's stream what changed, sends what the socket has to send, and
  // schedules its next deadline; removes it when it is over.
  void service(Conn& c, uint64_t now);
  void send_packets(Conn& c, uint64_t now);
  void flush_sends();
  void send_run(int fd, size_t begin, size_t end);
  void schedule(Conn& c);
  void on_timer();
  void remove(Conn& c);

  daemon::EventLoop& loop_;
  SeedServer& seed_;
  std::shared_ptr<spdlog::logger> log_;
  utp::Options options_;
  std::vector<std::unique_ptr<Udp>> sockets_;
  std::unordered_map<Key, std::unique_ptr<Conn>, KeyHash> conns_;
  std::multimap<uint64_t, Conn*> deadlines_;
  std::vector<Conn*> touched_;  // serviced at the end of a batch of datagrams
  bool in_batch_ = false;
  // Connections not yet handed to the seed (their handshake incomplete), in all and by address.
  size_t half_open_total_ = 0;
  std::map<std::array<uint8_t, 16>, int> half_open_;
  // Datagrams waiting for the next sendmmsg(): slots of kSlot bytes.
  std::vector<char> out_mem_;
  std::vector<size_t> out_len_;
  std::vector<sockaddr_storage> out_to_;
  std::vector<int> out_fd_;
  size_t out_n_ = 0;
  bool gso_ = true;  // until the kernel refuses UDP_SEGMENT
  daemon::Timer timer_;
  uint64_t armed_ = UINT64_MAX;  // the deadline the timer is set for
  UtpCounters counters_;
};

}  // namespace evert::everseed
