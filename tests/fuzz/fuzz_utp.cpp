// libFuzzer target: uTP (BEP 29). The first byte picks a mode:
//  - parse: parse_packet() on the rest; a packet parsed must serialize back to one with the
//    same fields (unknown extensions aside), and a reset answering it is never larger.
//  - socket: one Socket (a responder, or an initiator) fed a script of arbitrary packets,
//    packets with plausible sequence numbers, ticks, writes, reads and closes. Whatever comes
//    in, every datagram it writes must parse and fit packet_size, its buffers must stay within
//    their bounds, and next_packet() must run dry.
//  - pair: two Sockets joined by a network the script controls (deliver, drop, duplicate,
//    reorder, advance time); every byte either side reads must be the byte the other wrote.
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <optional>
#include <string>
#include <string_view>

#include "evert/utp.h"

using namespace evert::utp;

namespace {

class Script {
 public:
  Script(const uint8_t* d, size_t n) : p_(reinterpret_cast<const char*>(d)), n_(n) {}
  [[nodiscard]] bool empty() const { return n_ == 0; }
  uint8_t byte() {
    if (n_ == 0) return 0;
    --n_;
    return static_cast<uint8_t>(*p_++);
  }
  uint16_t u16() { return static_cast<uint16_t>(byte() << 8 | byte()); }
  std::string_view bytes(size_t n) {
    n = std::min(n, n_);
    std::string_view s(p_, n);
    p_ += n;
    n_ -= n;
    return s;
  }
  std::string_view rest() { return bytes(n_); }

 private:
  const char* p_;
  size_t n_;
};

void check(bool ok) {
  if (!ok) std::abort();
}

void fuzz_parse(std::string_view in) {
  auto p = parse_packet(in);
  if (!p.ok()) return;
  std::string again;
  put_packet(again, p->header, p->sack, p->payload);
  auto q = parse_packet(again);
  check(q.ok());
  const Header& a = p->header;
  const Header& b = q->header;
  check(a.type == b.type && a.version == b.version && a.connection_id == b.connection_id &&
        a.timestamp_us == b.timestamp_us && a.timestamp_diff_us == b.timestamp_diff_us &&
        a.wnd_size == b.wnd_size && a.seq_nr == b.seq_nr && a.ack_nr == b.ack_nr);
  check(q->sack == p->sack && q->payload == p->payload);
  std::string reset;
  if (put_reset(reset, a, 1)) check(reset.size() == kHeaderSize && reset.size() <= in.size());
}

Options options(Script& s) {
  Options o;
  o.packet_size = 150 + s.byte() * 8;
  // Within the bounds Socket clamps options to, so that the checks below use the real ones.
  o.send_buffer = 4096 + s.byte() * 256;
  o.recv_buffer = 16384 + s.byte() * 512;
  o.nagle = (s.byte() & 1) != 0;
  return o;
}

// Sends everything `sock` has now; checks each datagram.
template <class Sink>
void drain(Socket& sock, uint64_t now, const Options& o, Sink sink) {
  char buf[kMaxDatagram];
  for (int n = 0;; ++n) {
    check(n < 100'000);  // next_packet() must run dry
    const size_t size = sock.next_packet(now, buf, sizeof buf);
    if (size == 0) return;
    check(size <= o.packet_size);
    auto p = parse_packet(std::string_view(buf, size));
    check(p.ok());
    check(p->header.connection_id == sock.send_id() || p->header.type == Type::kSyn);
    sink(std::string_view(buf, size));
  }
}

void check_bounds(const Socket& sock, const Options& o) {
  const Socket::Stats st = sock.stats();
  check(st.send_buffered <= o.send_buffer);
  check(st.recv_buffered <= o.recv_buffer + kMaxDatagram);
  check(st.in_flight <= st.send_buffered);
}

// A packet of the peer with sequence numbers near the ones in use, so that the script
// reaches acks, selective acks, reordering and FINs rather than only the ignored cases.
std::string plausible(Script& s, const Socket& sock, uint16_t peer_seq, uint16_t our_seq) {
  Header h;
  h.type = static_cast<Type>(s.byte() % 5);
  h.connection_id = sock.recv_id();
  h.timestamp_us = s.u16() * 977u;
  h.timestamp_diff_us = (s.byte() & 1) != 0 ? s.u16() * 31u : 0;
  h.wnd_size = s.u16() * 64u;
  h.seq_nr = static_cast<uint16_t>(peer_seq + static_cast<int8_t>(s.byte()));
  h.ack_nr = static_cast<uint16_t>(our_seq + s.u16() % 512 - 8);
  const std::string_view sack = s.bytes(s.byte() % 12);
  const std::string_view payload = s.bytes(s.u16() % 1600);
  std::string d;
  put_packet(d, h, sack, payload);
  return d;
}

void fuzz_socket(Script& s) {
  const Options o = options(s);
  uint64_t now = 1000;
  constexpr uint16_t kOurSeq = 65000;  // wraps soon
  const uint16_t peer_seq = s.u16();
  std::optional<Socket> sock;
  if ((s.byte() & 1) != 0) {
    Header syn;
    syn.type = Type::kSyn;
    syn.connection_id = 700;
    syn.seq_nr = peer_seq;
    sock.emplace(Socket::accept(syn, now, o, kOurSeq));
  } else {
    sock.emplace(Socket::connect(700, now, o, static_cast<uint16_t>(kOurSeq - 1)));
  }
  uint16_t peer = static_cast<uint16_t>(peer_seq + 1);
  for (int step = 0; step < 2000 && !s.empty(); ++step) {
    const uint8_t op = s.byte();
    switch (op % 8) {
      case 0: {  // an arbitrary datagram
        auto p = parse_packet(s.bytes(s.u16() % 1600));
        if (p.ok()) sock->on_packet(*p, now);
        break;
      }
      case 1:
      case 2: {
        const std::string d = plausible(s, *sock, peer, kOurSeq);
        sock->on_packet(*parse_packet(d), now);
        if (op & 0x80) ++peer;
        break;
      }
      case 3:
        now += s.byte() * 997u;
        break;
      case 4:
        now = std::max(now, sock->deadline() == UINT64_MAX ? now : sock->deadline());
        sock->on_tick(now);
        break;
      case 5: {
        const std::string data(s.u16() % 20000, 'w');
        check(sock->write(data) <= data.size());
        break;
      }
      case 6:
        sock->consume(s.u16());
        break;
      case 7:
        if (op & 0x80) {
          sock->abort(now);
        } else {
          sock->close(now);
        }
        break;
    }
    drain(*sock, now, o, [](std::string_view) {});
    check_bounds(*sock, o);
    if (sock->state() != Socket::State::kClosed && sock->state() != Socket::State::kFailed) {
      check(sock->deadline() != UINT64_MAX);
    }
  }
}

struct Side {
  std::optional<Socket> sock;
  std::deque<std::string> wire;  // datagrams on their way to the other side
  uint64_t written = 0;
  uint64_t read = 0;
};

char pattern(int side, uint64_t i) {
  return static_cast<char>((i * 7 + i / 251 + static_cast<uint64_t>(side) * 3) & 0xff);
}

void fuzz_pair(Script& s) {
  const Options o = options(s);
  uint64_t now = 1;
  Side side[2];
  side[0].sock.emplace(Socket::connect(9, now, o, s.u16()));
  const uint16_t b_seq = s.u16();
  for (int step = 0; step < 5000 && !s.empty(); ++step) {
    for (int i = 0; i < 2; ++i) {
      Side& me = side[i];
      if (!me.sock) continue;
      drain(*me.sock, now, o, [&](std::string_view d) {
        if (me.wire.size() < 4096) me.wire.emplace_back(d);
      });
      check_bounds(*me.sock, o);
      for (std::string_view r = me.sock->readable(); !r.empty(); r = me.sock->readable()) {
        for (size_t k = 0; k < r.size(); ++k)
          check(r[k] == pattern(1 - i, me.read + k));
        me.read += r.size();
        me.sock->consume(r.size());
      }
    }
    const uint8_t op = s.byte();
    Side& from = side[op & 1];
    Side& to = side[1 - (op & 1)];
    switch (op >> 1 & 7) {
      case 0:
      case 1:
      case 2:  // deliver the oldest datagram
        if (!from.wire.empty()) {
          auto p = parse_packet(from.wire.front());
          check(p.ok());
          if (!to.sock && p->header.type == Type::kSyn) {
            to.sock.emplace(Socket::accept(p->header, now, o, b_seq));
          } else if (to.sock) {
            to.sock->on_packet(*p, now);
          }
          from.wire.pop_front();
        }
        break;
      case 3:  // lose it
        if (!from.wire.empty()) from.wire.pop_front();
        break;
      case 4:  // duplicate it
        if (!from.wire.empty() && from.wire.size() < 4096) from.wire.push_back(from.wire.front());
        break;
      case 5:  // reorder: it goes last
        if (!from.wire.empty()) {
          from.wire.push_back(from.wire.front());
          from.wire.pop_front();
        }
        break;
      case 6:  // time passes
        now += uint64_t{s.byte()} * 4099;
        for (Side& x : side) {
          if (x.sock && x.sock->deadline() <= now) x.sock->on_tick(now);
        }
        break;
      case 7: {  // the application writes
        if (!from.sock) break;
        std::string data(s.u16() % 8192, '\0');
        const int who = &from == &side[0] ? 0 : 1;
        for (size_t k = 0; k < data.size(); ++k)
          data[k] = pattern(who, from.written + k);
        from.written += from.sock->write(data);
        break;
      }
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Script s(data, size);
  switch (s.byte() % 3) {
    case 0:
      fuzz_parse(s.rest());
      break;
    case 1:
      fuzz_socket(s);
      break;
    default:
      fuzz_pair(s);
      break;
  }
  return 0;
}
