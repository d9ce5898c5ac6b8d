// The CPU cost of the uTP state machine (lib/include/evert/utp.h), without sockets: a sender
// and a receiver joined by a perfect link, in rounds of one window's worth of datagrams each.
// Prints GiB per CPU-second for each side (the glue's budget is ~1 GB/s on loopback; what
// these calls cost comes on top of the kernel's UDP work).
// Usage: utp_speed [MiB, default 2048]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "evert/utp.h"

namespace {

using Clock = std::chrono::steady_clock;
using evert::utp::Socket;

// Datagrams in flight from one side to the other, in one reused buffer.
struct Wire {
  std::vector<char> bytes = std::vector<char>(64 << 20);
  std::vector<std::pair<size_t, size_t>> packets;  // offset, size
  size_t used = 0;

  void drain(Socket& s, uint64_t now) {
    for (;;) {
      if (bytes.size() - used < evert::utp::kMaxDatagram) bytes.resize(bytes.size() * 2);
      const size_t n = s.next_packet(now, bytes.data() + used, bytes.size() - used);
      if (n == 0) return;
      packets.emplace_back(used, n);
      used += n;
    }
  }
  void deliver(Socket& s, uint64_t now) {
    for (auto [off, n] : packets) {
      auto p = evert::utp::parse_packet(std::string_view(bytes.data() + off, n));
      if (p.ok()) s.on_packet(*p, now);
    }
    packets.clear();
    used = 0;
  }
};

double seconds(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

}  // namespace

int main(int argc, char** argv) {
  const uint64_t total = uint64_t(argc > 1 ? std::atoll(argv[1]) : 2048) << 20;
  evert::utp::Options o;
  o.send_buffer = 4 << 20;
  o.recv_buffer = 4 << 20;
  uint64_t now = 1;
  Wire ab;
  Wire ba;
  Socket a = Socket::connect(1, now, o, 100);
  ab.drain(a, now);
  Socket b = Socket::accept(
      evert::utp::parse_packet(std::string_view(ab.bytes.data(), ab.packets[0].second))->header,
      now, o, 5000);
  ab.packets.clear();
  ab.used = 0;
  ba.drain(b, now);
  ba.deliver(a, now);

  const std::string chunk(256 << 10, 'x');
  uint64_t written = 0;
  uint64_t received = 0;
  uint64_t datagrams = 0;
  Clock::duration sender{};
  Clock::duration receiver{};
  while (received < total) {
    now += 50;  // a 50 µs round trip
    auto t = Clock::now();
    while (written < total && a.writable() > 0) {
      written += a.write(
          std::string_view(chunk).substr(0, std::min<uint64_t>(chunk.size(), total - written)));
    }
    ab.drain(a, now);
    datagrams += ab.packets.size();
    if (a.deadline() <= now) a.on_tick(now);
    auto t2 = Clock::now();
    sender += t2 - t;
    ab.deliver(b, now);
    for (auto r = b.readable(); !r.empty(); r = b.readable()) {
      received += r.size();
      b.consume(r.size());
    }
    ba.drain(b, now);
    if (b.deadline() <= now) b.on_tick(now);
    t = Clock::now();
    receiver += t - t2;
    ba.deliver(a, now);
    sender += Clock::now() - t;
  }
  const double gib = static_cast<double>(total) / (1 << 30);
  std::printf("%.1f GiB, %llu data packets of %zu bytes, %llu retransmits\n", gib,
              static_cast<unsigned long long>(datagrams), o.packet_size,
              static_cast<unsigned long long>(a.stats().retransmits));
  std::printf("sender:   %.3f s, %.2f GiB/s (write + next_packet + acks)\n", seconds(sender),
              gib / seconds(sender));
  std::printf("receiver: %.3f s, %.2f GiB/s (parse + on_packet + acks)\n", seconds(receiver),
              gib / seconds(receiver));
  return 0;
}
