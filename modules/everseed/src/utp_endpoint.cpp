#include "utp_endpoint.h"

#include <netinet/in.h>
#include <netinet/udp.h>
#include <sodium.h>
#include <spdlog/logger.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "seed_server.h"

namespace evert::everseed {
namespace {

// Datagrams read or sent per system call.
constexpr size_t kBatch = 64;
// The largest datagram read: uTP packets stay under the path MTU; a larger one is not ours.
constexpr size_t kMaxDatagram = 4096;
// Connections whose handshake is not complete, at most: a flood of SYNs (their source
// addresses may be forged) costs no more than this many small sockets, and never a seed
// connection: the seed takes a connection only once the peer's first packet after the SYN
// shows it received our answer.
constexpr size_t kMaxHalfOpen = 1024;
constexpr int kMaxHalfOpenPerAddress = 16;
// Kernel buffers: a burst of a window's packets in, a window out.
constexpr int kSocketBuffer = 4 << 20;
// Room for one datagram we send: the socket's packets are at most Options::packet_size.
constexpr size_t kSlot = 2048;
// Datagrams in one GSO message: the kernel takes at most 64 segments, and 64 KiB in all.
constexpr size_t kMaxSegments = 40;

uint64_t now_us() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

const std::array<unsigned char, crypto_shorthash_KEYBYTES>& hash_key() {
  static const auto key = [] {
    std::array<unsigned char, crypto_shorthash_KEYBYTES> k{};
    randombytes_buf(k.data(), k.size());
    return k;
  }();
  return key;
}

}  // namespace

struct UtpEndpoint::Udp {
  int fd = -1;
  std::unique_ptr<daemon::FdWatcher> watcher;
};

struct UtpEndpoint::Conn {
  Key key;
  Udp* udp = nullptr;
  sockaddr_storage addr{};
  utp::Socket sock;
  Stream* stream = nullptr;    // the seed's side, while it holds the connection
  bool taken = false;          // handed to the seed (once connected)
  bool touched = false;        // in touched_
  bool want_writable = false;  // the stream's last write was short
  bool scheduled = false;
  std::multimap<uint64_t, Conn*>::iterator when;
  Conn(Key k, Udp* u, utp::Socket s) : key(std::move(k)), udp(u), sock(std::move(s)) {}
};

class UtpEndpoint::Stream final : public PeerStream {
 public:
  Stream(UtpEndpoint& ep, Conn& c, Notify notify)
      : ep_(ep), conn_(&c), notify_(std::move(notify)) {}
  ~Stream() override { close(); }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  ssize_t read(char* buf, size_t cap) override {
    if (conn_ == nullptr) return -1;
    const std::string_view v = conn_->sock.readable();
    if (v.empty()) {
      if (conn_->sock.eof()) return -1;
      if (conn_->sock.state() == utp::Socket::State::kFailed) {
        why_ = conn_->sock.failure();
        return -1;
      }
      return 0;
    }
    const size_t n = std::min(cap, v.size());
    std::memcpy(buf, v.data(), n);
    conn_->sock.consume(n);
    return static_cast<ssize_t>(n);
  }

  ssize_t write(const iovec* iov, int n) override {
    if (conn_ == nullptr) return -1;
    if (conn_->sock.state() == utp::Socket::State::kFailed) {
      why_ = conn_->sock.failure();
      return -1;
    }
    size_t total = 0;
    for (int i = 0; i < n; ++i) {
      const std::string_view part(static_cast<const char*>(iov[i].iov_base), iov[i].iov_len);
      const size_t k = conn_->sock.write(part);
      total += k;
      if (k < part.size()) {
        conn_->want_writable = true;
        break;
      }
    }
    if (total > 0) ep_.send_packets(*conn_, now_us());
    return static_cast<ssize_t>(total);
  }

  void close() override {
    if (conn_ == nullptr) return;
    Conn& c = *conn_;
    conn_ = nullptr;
    c.stream = nullptr;
    c.sock.close(now_us());
    ep_.send_packets(c, now_us());
    ep_.touch(c);  // removed when its FIN is acknowledged or it times out
  }

  [[nodiscard]] const std::string& why() const override { return why_; }
  [[nodiscard]] const char* kind() const override { return "uTP"; }
  [[nodiscard]] bool packets() const override { return true; }

  void notify(Event e) { notify_(e); }
  void detach() { conn_ = nullptr; }

 private:
  UtpEndpoint& ep_;
  Conn* conn_;
  Notify notify_;
  std::string why_;
};

size_t UtpEndpoint::KeyHash::operator()(const Key& k) const noexcept {
  std::array<unsigned char, 20> in{};
  std::memcpy(in.data(), k.peer.ip.data(), 16);
  in[16] = static_cast<unsigned char>(k.peer.port >> 8);
  in[17] = static_cast<unsigned char>(k.peer.port);
  in[18] = static_cast<unsigned char>(k.id >> 8);
  in[19] = static_cast<unsigned char>(k.id);
  uint64_t out = 0;
  crypto_shorthash(reinterpret_cast<unsigned char*>(&out), in.data(), in.size(), hash_key().data());
  return static_cast<size_t>(out);
}

UtpEndpoint::UtpEndpoint(daemon::EventLoop& loop, SeedServer& seed,
                         std::shared_ptr<spdlog::logger> log)
    : loop_(loop), seed_(seed), log_(std::move(log)), timer_(loop, [this] { on_timer(); }) {
  // No Nagle: the seed writes whole messages and large batches, and a message held back to
  // share a packet can wait a round trip for nothing. It also keeps the BitTorrent handshake in
  // a packet of its own, apart from the messages after it, as Transmission 3.00 needs: it reads
  // nothing after the handshake in the packet that brought it until another packet comes.
  options_.nagle = false;
  out_mem_.resize(kBatch * kSlot);
  out_len_.resize(kBatch);
  out_to_.resize(kBatch);
  out_fd_.resize(kBatch);
}

UtpEndpoint::~UtpEndpoint() {
  stop();
}

Status UtpEndpoint::listen(const sockaddr_storage& addr, unsigned len, const std::string& label) {
  const int fd = ::socket(addr.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return Error(label + ": socket: " + std::strerror(errno));
  const int one = 1;
  if (addr.ss_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &kSocketBuffer, sizeof kSocketBuffer);
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &kSocketBuffer, sizeof kSocketBuffer);
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&addr), len) != 0) {
    const int e = errno;
    ::close(fd);
    return Error(label + ": cannot bind: " + std::strerror(e));
  }
  auto u = std::make_unique<Udp>();
  u->fd = fd;
  Udp* raw = u.get();
  u->watcher = std::make_unique<daemon::FdWatcher>(loop_, fd, daemon::FdWatcher::kRead,
                                                   [this, raw](short) { on_readable(*raw); });
  sockets_.push_back(std::move(u));
  return Ok{};
}

void UtpEndpoint::stop() {
  timer_.stop();
  for (auto& [k, c] : conns_) {
    if (c->stream != nullptr) c->stream->detach();
  }
  conns_.clear();
  deadlines_.clear();
  half_open_.clear();
  half_open_total_ = 0;
  touched_.clear();
  for (auto& u : sockets_) {
    u->watcher.reset();
    ::close(u->fd);
  }
  sockets_.clear();
}

void UtpEndpoint::on_readable(Udp& u) {
  std::array<std::array<char, kMaxDatagram>, kBatch> bufs;
  std::array<sockaddr_storage, kBatch> from{};
  std::array<iovec, kBatch> iov{};
  std::array<mmsghdr, kBatch> msgs{};
  in_batch_ = true;
  for (int round = 0; round < 4; ++round) {  // bounded: other sockets get their turn
    for (size_t i = 0; i < kBatch; ++i) {
      iov[i] = {bufs[i].data(), bufs[i].size()};
      msgs[i] = {};
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
      msgs[i].msg_hdr.msg_name = &from[i];
      msgs[i].msg_hdr.msg_namelen = sizeof from[i];
    }
    const int n = ::recvmmsg(u.fd, msgs.data(), kBatch, MSG_DONTWAIT, nullptr);
    if (n <= 0) break;
    const uint64_t now = now_us();
    for (int i = 0; i < n; ++i) {
      ++counters_.datagrams_in;
      if ((msgs[i].msg_hdr.msg_flags & MSG_TRUNC) != 0) {
        ++counters_.malformed;
        continue;
      }
      on_datagram(u, from[i], std::string_view(bufs[i].data(), msgs[i].msg_len), now);
    }
    if (static_cast<size_t>(n) < kBatch) break;
  }
  in_batch_ = false;
  // Each connection a datagram reached: its stream told once, its packets sent.
  const uint64_t now = now_us();
  std::vector<Conn*> touched;
  touched.swap(touched_);
  for (Conn* c : touched) {
    c->touched = false;
    service(*c, now);
  }
  flush_sends();
}

void UtpEndpoint::on_datagram(Udp& u, const sockaddr_storage& from, std::string_view bytes,
                              uint64_t now) {
  auto p = utp::parse_packet(bytes);
  if (!p) {
    ++counters_.malformed;
    log_->debug("uTP: a datagram of {} bytes from {} is not uTP: {}", bytes.size(),
                tracker::endpoint_of(from).to_string(), p.error().message);
    return;
  }
  const Key key{tracker::endpoint_of(from), utp::recv_id_of(p->header)};
  if (auto it = conns_.find(key); it != conns_.end()) {
    Conn& c = *it->second;
    c.sock.on_packet(*p, now);
    touch(c);
    return;
  }
  if (p->header.type == utp::Type::kSyn) return on_syn(u, from, key, *p, now);
  if (p->header.type == utp::Type::kReset) return;
  // Not a connection of ours (closed, or never was): a RESET, no larger than what came.
  std::string reset;
  if (!utp::put_reset(reset, p->header, static_cast<uint32_t>(now))) return;
  if (reset.size() > bytes.size() || reset.size() > kSlot) return;
  ++counters_.resets_sent;
  if (out_n_ == kBatch) flush_sends();
  std::memcpy(out_mem_.data() + out_n_ * kSlot, reset.data(), reset.size());
  out_len_[out_n_] = reset.size();
  out_to_[out_n_] = from;
  out_fd_[out_n_] = u.fd;
  ++out_n_;
}

void UtpEndpoint::on_syn(Udp& u, const sockaddr_storage& from, const Key& key, const utp::Packet& p,
                         uint64_t now) {
  auto per = half_open_.find(key.peer.ip);
  if (half_open_total_ >= kMaxHalfOpen ||
      (per != half_open_.end() && per->second >= kMaxHalfOpenPerAddress)) {
    ++counters_.refused;
    return;  // dropped: the peer sends its SYN again, or falls back to TCP
  }
  auto sock = utp::Socket::accept(p.header, now, options_,
                                  static_cast<uint16_t>(randombytes_uniform(65536)));
  auto c = std::make_unique<Conn>(key, &u, std::move(sock));
  c->addr = from;  // answered where the SYN came from
  Conn* raw = c.get();
  conns_.emplace(key, std::move(c));
  ++half_open_total_;
  ++half_open_[key.peer.ip];
  touch(*raw);
}

void UtpEndpoint::left_half_open(const Conn& c) {
  --half_open_total_;
  if (auto it = half_open_.find(c.key.peer.ip); it != half_open_.end() && --it->second <= 0) {
    half_open_.erase(it);
  }
}

void UtpEndpoint::touch(Conn& c) {
  if (in_batch_) {
    if (!c.touched) {
      c.touched = true;
      touched_.push_back(&c);
    }
    return;
  }
  schedule(c);
}

void UtpEndpoint::service(Conn& c, uint64_t now) {
  using State = utp::Socket::State;
  if (!c.taken && c.sock.state() == State::kConnected) {
    // The peer answered our STATE: its address is real. The seed's caps decide.
    c.taken = true;
    left_half_open(c);
    const bool ok = seed_.accept(c.key.peer, [this, &c](PeerStream::Notify notify) {
      auto s = std::make_unique<Stream>(*this, c, std::move(notify));
      c.stream = s.get();
      return s;
    });
    if (!ok) {
      ++counters_.refused;
      c.sock.abort(now);
    } else {
      ++counters_.accepted;
    }
  }
  if (c.stream != nullptr) {
    const bool ended = c.sock.state() == State::kFailed || c.sock.eof();
    if (!c.sock.readable().empty() || ended) c.stream->notify(PeerStream::Event::kReadable);
  }
  if (c.stream != nullptr && c.want_writable && c.sock.writable() > 0) {
    c.want_writable = false;
    c.stream->notify(PeerStream::Event::kWritable);
  }
  send_packets(c, now);
  const bool over = c.sock.state() == State::kClosed || c.sock.state() == State::kFailed;
  if (over && c.stream == nullptr) return remove(c);
  schedule(c);
}

void UtpEndpoint::send_packets(Conn& c, uint64_t now) {
  for (int n = 0; n < 1024; ++n) {  // bounded; the socket's windows bound it first
    if (out_n_ == kBatch) flush_sends();
    const size_t len = c.sock.next_packet(now, out_mem_.data() + out_n_ * kSlot, kSlot);
    if (len == 0) break;
    out_len_[out_n_] = len;
    out_to_[out_n_] = c.addr;
    out_fd_[out_n_] = c.udp->fd;
    ++out_n_;
  }
  if (!in_batch_) flush_sends();
}

// Sends the queued datagrams: one sendmmsg() per run of datagrams to the same socket, and
// within it, with UDP generic segmentation offload (UDP_SEGMENT), one message per run of
// datagrams to the same peer of the same size (the last may be shorter): the kernel cuts it
// into the datagrams, which costs far less than a trip through the stack for each (a uTP
// stream is ~770,000 datagrams a GiB). Where the kernel refuses GSO, one message a datagram.
void UtpEndpoint::flush_sends() {
  size_t i = 0;
  while (i < out_n_) {
    size_t end = i;
    while (end < out_n_ && out_fd_[end] == out_fd_[i])
      ++end;
    send_run(out_fd_[i], i, end);
    i = end;
  }
  out_n_ = 0;
}

void UtpEndpoint::send_run(int fd, size_t begin, size_t end) {
  std::array<mmsghdr, kBatch> msgs{};
  std::array<iovec, kBatch> iov{};
  std::array<size_t, kBatch> count{};  // datagrams in each message
  alignas(cmsghdr) std::array<char, kBatch * CMSG_SPACE(sizeof(uint16_t))> control{};
  size_t m = 0;
  for (size_t j = begin; j < end; ++m) {
    const size_t first = j;
    const size_t size = out_len_[j];
    auto same_peer = [&](size_t k) {
      return std::memcmp(&out_to_[k], &out_to_[first], sizeof(sockaddr_storage)) == 0;
    };
    // A GSO run: full-size datagrams to one peer; a shorter one may end it.
    ++j;
    while (gso_ && j < end && j - first < kMaxSegments && (j - first + 1) * size <= 60'000 &&
           same_peer(j) && out_len_[j - 1] == size && out_len_[j] <= size) {
      ++j;
    }
    for (size_t k = first; k < j; ++k)
      iov[k - begin] = {out_mem_.data() + k * kSlot, out_len_[k]};
    msghdr& h = msgs[m].msg_hdr;
    h.msg_iov = &iov[first - begin];
    h.msg_iovlen = j - first;
    h.msg_name = &out_to_[first];
    h.msg_namelen =
        out_to_[first].ss_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
    count[m] = j - first;
    if (j - first > 1) {
      char* space = control.data() + m * CMSG_SPACE(sizeof(uint16_t));
      h.msg_control = space;
      h.msg_controllen = CMSG_SPACE(sizeof(uint16_t));
      cmsghdr* cm = CMSG_FIRSTHDR(&h);
      cm->cmsg_level = SOL_UDP;
      cm->cmsg_type = UDP_SEGMENT;
      cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
      const auto seg = static_cast<uint16_t>(size);
      std::memcpy(CMSG_DATA(cm), &seg, sizeof seg);
    }
  }
  size_t done = 0;
  while (done < m) {
    const int r = ::sendmmsg(fd, msgs.data() + done, static_cast<unsigned>(m - done), MSG_DONTWAIT);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (gso_ && count[done] > 1 && (errno == EIO || errno == EINVAL || errno == ENOPROTOOPT)) {
        // No GSO on this path (an old kernel, a device that cannot): one message a datagram
        // from now on, starting with what is left of this run.
        log_->info(
            "uTP: the kernel refused UDP segmentation offload ({}): sending datagrams "
            "one by one",
            std::strerror(errno));
        gso_ = false;
        size_t from = begin;
        for (size_t k = 0; k < done; ++k)
          from += count[k];
        return send_run(fd, from, end);
      }
      break;  // a full socket buffer: the rest is lost, and uTP sends it again
    }
    for (int k = 0; k < r; ++k)
      counters_.datagrams_out += count[done + static_cast<size_t>(k)];
    done += static_cast<size_t>(r);
  }
}

void UtpEndpoint::schedule(Conn& c) {
  const uint64_t d = c.sock.deadline();
  if (c.scheduled) {
    if (c.when->first == d) return;
    deadlines_.erase(c.when);
    c.scheduled = false;
  }
  if (d != UINT64_MAX) {
    c.when = deadlines_.emplace(d, &c);
    c.scheduled = true;
  }
  arm();
}

// The timer set for the earliest deadline; restarted only when that changed (most packets move
// a connection's deadline, not the earliest).
void UtpEndpoint::arm() {
  if (deadlines_.empty()) {
    if (armed_ != UINT64_MAX) timer_.stop();
    armed_ = UINT64_MAX;
    return;
  }
  const uint64_t first = deadlines_.begin()->first;
  if (first == armed_) return;
  armed_ = first;
  const uint64_t now = now_us();
  timer_.start(std::chrono::milliseconds(first > now ? (first - now + 999) / 1000 : 0), false);
}

void UtpEndpoint::on_timer() {
  const uint64_t now = now_us();
  std::vector<Conn*> due;
  while (!deadlines_.empty() && deadlines_.begin()->first <= now) {
    Conn* c = deadlines_.begin()->second;
    deadlines_.erase(deadlines_.begin());
    c->scheduled = false;
    due.push_back(c);
  }
  armed_ = UINT64_MAX;
  for (Conn* c : due) {
    c->sock.on_tick(now);
    service(*c, now);
  }
  flush_sends();
  arm();
}

void UtpEndpoint::remove(Conn& c) {
  const utp::Socket::Stats st = c.sock.stats();
  log_->debug(
      "uTP {} ended ({}): {} bytes sent, {} acked, {} received, {} retransmits, {} "
      "timeouts, rtt {} us, cwnd {}",
      c.key.peer.to_string(),
      c.sock.state() == utp::Socket::State::kFailed ? c.sock.failure() : "closed", st.bytes_sent,
      st.bytes_acked, st.bytes_received, st.retransmits, st.timeouts, st.rtt_us, st.cwnd);
  if (c.scheduled) deadlines_.erase(c.when);
  if (!c.taken) left_half_open(c);
  if (c.stream != nullptr) c.stream->detach();
  conns_.erase(c.key);  // destroys c
}

}  // namespace evert::everseed
