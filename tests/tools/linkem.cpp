// linkem: a userspace link emulator for the integration tests, because this kernel has no
// sch_netem (CONFIG_NET_SCH_NETEM is not set: `tc qdisc ... netem` fails with "Specified qdisc
// kind is unknown"). It joins two network namespaces by a point-to-point "wire" of two TUN
// devices and forwards the IP packets between them with a fixed one-way delay, random loss
// (from a seeded generator) and a bounded queue per direction:
//
//   namespace A                         linkem                          namespace B
//   kernel -> TUN a --read--> [loss? queue full? hold DELAY] --write--> TUN b -> kernel
//   kernel <- TUN a <--write-- [hold DELAY] <--read-- TUN b <- kernel
//
//   linkem --a NAME[@NETNS] --b NAME[@NETNS] [--delay-ms 50] [--loss 0.01] [--seed 1]
//          [--rate BYTES_PER_SECOND] [--queue-packets 1000] [--queue-bytes 4194304]
//          [--max-seconds 300]
//
// NETNS is a path such as /run/netns/NAME (the device is created in that namespace) or absent
// (the namespace linkem runs in). linkem creates both devices (IFF_TUN, IFF_NO_PI: raw IPv4 and
// IPv6 packets), prints "ready" on standard output and leaves addresses, links and routes to
// the caller (`ip -n NS addr add ...; ip -n NS link set NAME up`). The devices are not
// persistent: they vanish, with their addresses and routes, when linkem exits.
//
// Each packet read from one device is dropped with probability --loss, or when its direction
// already holds --queue-packets packets or --queue-bytes bytes (tail drop, as a router's
// queue), else written to the other device DELAY ms later. With --rate, a direction is also a
// link of that many bytes per second: a packet leaves after the ones before it have
// (serialisation), so a queue builds up as on a real bottleneck. The delay is the same for every
// packet, so a direction never reorders. Loss is independent per packet (Bernoulli), like
// netem's `loss 1%` without correlation.
//
// Each packet --loss drops is logged on standard error (the first 5,000), so that a test can
// tell a wait its client or seed caused from one the link did:
//   lost a_to_b t=<CLOCK_MONOTONIC seconds> udp 10.99.0.1:6881>10.98.1.2:6881 len=20 head=21010000
// (tcp adds flags=SA and the like; len is the payload's length; head its first 4 bytes in hex).
//
// Bounded: it exits after --max-seconds (at most 3600), on SIGTERM or SIGINT, or when its
// standard input closes (so it does not outlive the test that started it with a pipe); its
// memory is the two queues, at most 2 x --queue-bytes (at most 64 MiB each) plus a 64 KiB
// buffer. At exit it prints one JSON line of counters per direction and exits 0; it exits 1
// when it cannot set up (no /dev/net/tun, not root, a bad namespace, bad arguments), saying why
// on standard error.
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
using Micros = std::chrono::microseconds;

constexpr size_t kMaxPacket = 65536;  // a TUN device without GSO reads at most one MTU
constexpr double kMaxSeconds = 3600;
constexpr uint64_t kMaxQueueBytes = uint64_t{64} << 20;

volatile std::sig_atomic_t g_stop = 0;

void on_signal(int) {
  g_stop = 1;
}

struct Options {
  std::string a;  // NAME[@NETNS]
  std::string b;
  double delay_ms = 50;
  double loss = 0;
  uint64_t seed = 1;
  double rate = 0;  // bytes per second; 0: no limit
  size_t queue_packets = 1000;
  uint64_t queue_bytes = uint64_t{4} << 20;
  double max_seconds = 300;
};

struct Packet {
  Clock::time_point due;
  std::vector<uint8_t> bytes;
};

struct Counters {
  uint64_t packets = 0;  // forwarded
  uint64_t bytes = 0;
  uint64_t lost = 0;      // dropped by --loss
  uint64_t overflow = 0;  // dropped because the queue was full
  uint64_t write_errors = 0;
  uint64_t max_queued = 0;  // most packets held at once
};

// One direction of the wire: packets read from `from` wait in `queue` until due, then go to
// `to`.
struct Direction {
  const char* name = "";
  int from = -1;
  int to = -1;
  std::deque<Packet> queue;
  uint64_t queued_bytes = 0;
  Clock::time_point link_free;  // --rate: when the previous packet has left
  Counters c;
};

std::string setup_error;  // why setup failed, for main

bool fail(const std::string& why) {
  setup_error = why;
  return false;
}

std::optional<double> number(const char* text) {
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(text, &end);
  if (errno != 0 || end == text || *end != '\0' || !(v >= 0)) return std::nullopt;
  return v;
}

bool parse_options(int argc, char** argv, Options& o) {
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    if (i + 1 >= argc) return fail(k + " needs a value");
    const char* v = argv[++i];
    if (k == "--a") {
      o.a = v;
    } else if (k == "--b") {
      o.b = v;
    } else {
      const auto n = number(v);
      if (!n) return fail(k + ": not a number >= 0: " + v);
      if (k == "--delay-ms") {
        o.delay_ms = *n;
      } else if (k == "--loss") {
        o.loss = *n;
      } else if (k == "--seed") {
        o.seed = static_cast<uint64_t>(*n);
      } else if (k == "--rate") {
        o.rate = *n;
      } else if (k == "--queue-packets") {
        o.queue_packets = static_cast<size_t>(*n);
      } else if (k == "--queue-bytes") {
        o.queue_bytes = static_cast<uint64_t>(*n);
      } else if (k == "--max-seconds") {
        o.max_seconds = *n;
      } else {
        return fail("unknown option " + k);
      }
    }
  }
  if (o.a.empty() || o.b.empty()) return fail("--a and --b are needed");
  if (o.loss > 1) return fail("--loss is a probability, from 0 to 1");
  if (o.max_seconds <= 0 || o.max_seconds > kMaxSeconds) {
    return fail("--max-seconds must be above 0 and at most 3600");
  }
  if (o.queue_packets == 0 || o.queue_bytes < kMaxPacket || o.queue_bytes > kMaxQueueBytes) {
    return fail("--queue-packets must be at least 1, --queue-bytes from 65536 to 64 MiB");
  }
  if (o.delay_ms > 10000) return fail("--delay-ms is at most 10000");
  return true;
}

// Enters the network namespace at `path` (this thread, and linkem has no other).
bool enter_netns(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail("cannot open " + path + ": " + std::strerror(errno));
  const int r = ::setns(fd, CLONE_NEWNET);
  const int err = errno;
  ::close(fd);
  if (r != 0) return fail("setns " + path + ": " + std::strerror(err));
  return true;
}

// Creates the TUN device of "NAME[@NETNS]" in that namespace; returns its non-blocking fd or
// -1 (setup_error says why). The device lives as long as the fd.
int open_tun(const std::string& spec, int home_ns) {
  const size_t at = spec.find('@');
  const std::string name = spec.substr(0, at);
  if (name.empty() || name.size() >= IFNAMSIZ) {
    fail("bad device name in " + spec);
    return -1;
  }
  if (at != std::string::npos && !enter_netns(spec.substr(at + 1))) return -1;
  const int fd = ::open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    fail(std::string("cannot open /dev/net/tun: ") + std::strerror(errno));
    return -1;
  }
  ifreq ifr{};
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
  std::memcpy(ifr.ifr_name, name.data(), name.size());
  if (::ioctl(fd, TUNSETIFF, &ifr) != 0) {
    fail("TUNSETIFF " + name + ": " + std::strerror(errno));
    ::close(fd);
    return -1;
  }
  // Back home, so that the next device's namespace path is opened from where we started.
  if (::setns(home_ns, CLONE_NEWNET) != 0) {
    fail(std::string("setns back: ") + std::strerror(errno));
    ::close(fd);
    return -1;
  }
  return fd;
}

class Wire {
 public:
  Wire(const Options& o, int a, int b) : o_(o), rng_(o.seed), delay_(to_micros(o.delay_ms)) {
    ab_.name = "a_to_b";
    ba_.name = "b_to_a";
    ab_.from = a;
    ab_.to = b;
    ba_.from = b;
    ba_.to = a;
  }

  // Forwards until the deadline, a signal or the end of standard input.
  void run() {
    const Clock::time_point deadline =
        Clock::now() + Micros(static_cast<int64_t>(o_.max_seconds * 1e6));
    bool stdin_open = true;
    while (g_stop == 0) {
      const Clock::time_point now = Clock::now();
      if (now >= deadline) break;
      release(ab_, now);
      release(ba_, now);
      pollfd fds[3] = {{ab_.from, POLLIN, 0}, {ba_.from, POLLIN, 0}, {0, POLLIN, 0}};
      const timespec wait = until(std::min(deadline, next_due(deadline)), Clock::now());
      const int n = ::ppoll(fds, stdin_open ? 3 : 2, &wait, nullptr);
      if (n < 0 && errno != EINTR) break;
      if (n <= 0) continue;
      if ((fds[0].revents & POLLIN) != 0) take(ab_);
      if ((fds[1].revents & POLLIN) != 0) take(ba_);
      if (stdin_open && (fds[2].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
        char buf[256];
        if (::read(0, buf, sizeof buf) <= 0) break;  // the test that started us is gone
      }
      if (((fds[0].revents | fds[1].revents) & (POLLERR | POLLHUP | POLLNVAL)) != 0) break;
    }
  }

  void print_counters() const {
    std::printf("{\"a_to_b\": %s, \"b_to_a\": %s}\n", json(ab_.c).c_str(), json(ba_.c).c_str());
    std::fflush(stdout);
  }

 private:
  static Micros to_micros(double ms) { return Micros(static_cast<int64_t>(ms * 1000)); }

  static timespec until(Clock::time_point when, Clock::time_point now) {
    const int64_t us =
        when > now ? std::chrono::duration_cast<Micros>(when - now).count() + 1 : int64_t{0};
    return timespec{static_cast<time_t>(us / 1000000), static_cast<long>(us % 1000000) * 1000};
  }

  static std::string json(const Counters& c) {
    char buf[256];
    std::snprintf(buf, sizeof buf,
                  "{\"packets\": %llu, \"bytes\": %llu, \"lost\": %llu, \"overflow\": %llu, "
                  "\"write_errors\": %llu, \"max_queued\": %llu}",
                  static_cast<unsigned long long>(c.packets),
                  static_cast<unsigned long long>(c.bytes), static_cast<unsigned long long>(c.lost),
                  static_cast<unsigned long long>(c.overflow),
                  static_cast<unsigned long long>(c.write_errors),
                  static_cast<unsigned long long>(c.max_queued));
    return buf;
  }

  Clock::time_point next_due(Clock::time_point none) const {
    Clock::time_point t = none;
    if (!ab_.queue.empty()) t = std::min(t, ab_.queue.front().due);
    if (!ba_.queue.empty()) t = std::min(t, ba_.queue.front().due);
    return t;
  }

  // Reads every packet the device has now (at most 256, so the other direction and the clock
  // are not starved), each either dropped or queued with the time it is due.
  void take(Direction& d) {
    for (int n = 0; n < 256; ++n) {
      const ssize_t r = ::read(d.from, buf_, sizeof buf_);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) return;
      const Clock::time_point now = Clock::now();
      if (o_.loss > 0 && coin_(rng_) < o_.loss) {
        ++d.c.lost;
        log_loss(d, now, buf_, static_cast<size_t>(r));
        continue;
      }
      const auto size = static_cast<uint64_t>(r);
      if (d.queue.size() >= o_.queue_packets || d.queued_bytes + size > o_.queue_bytes) {
        ++d.c.overflow;
        continue;
      }
      Clock::time_point leaves = now;
      if (o_.rate > 0) {
        leaves = std::max(now, d.link_free) +
                 Micros(static_cast<int64_t>(static_cast<double>(size) * 1e6 / o_.rate));
        d.link_free = leaves;
      }
      d.queue.push_back(Packet{leaves + delay_, std::vector<uint8_t>(buf_, buf_ + r)});
      d.queued_bytes += size;
      d.c.max_queued = std::max<uint64_t>(d.c.max_queued, d.queue.size());
    }
  }

  // Writes the packets that are due. A TUN write hands the packet to the kernel's stack and
  // does not wait; a failed one (the device went down) counts as a write error.
  // One line on standard error for a packet --loss dropped (IPv4 UDP and TCP in detail).
  void log_loss(const Direction& d, Clock::time_point now, const uint8_t* p, size_t n) {
    if (++losses_logged_ > 5000) return;
    const double t =
        static_cast<double>(std::chrono::duration_cast<Micros>(now.time_since_epoch()).count()) /
        1e6;
    char what[200] = "other";
    if (n >= 20 && (p[0] >> 4) == 4) {
      const size_t ihl = size_t{p[0] & 0x0Fu} * 4;
      const uint8_t proto = p[9];
      if ((proto == 17 || proto == 6) && n >= ihl + (proto == 17 ? 8 : 20)) {
        const uint8_t* l4 = p + ihl;
        const unsigned sport = (unsigned{l4[0]} << 8) | l4[1];
        const unsigned dport = (unsigned{l4[2]} << 8) | l4[3];
        const size_t hdr = proto == 17 ? 8 : size_t{static_cast<uint8_t>(l4[12] >> 4)} * 4;
        const uint8_t* body = l4 + std::min(hdr, n - ihl);
        const size_t len = n - ihl - std::min(hdr, n - ihl);
        char head[9] = "";
        for (size_t i = 0; i < std::min<size_t>(len, 4); ++i) {
          std::snprintf(head + 2 * i, 3, "%02x", body[i]);
        }
        char flags[8] = "";
        if (proto == 6) {
          size_t k = 0;
          const char names[] = "FSRPAU";
          for (int b = 0; b < 6; ++b) {
            if ((l4[13] >> b) & 1) flags[k++] = names[b];
          }
          flags[k] = '\0';
        }
        std::snprintf(what, sizeof what, "%s %u.%u.%u.%u:%u>%u.%u.%u.%u:%u len=%zu head=%s%s%s",
                      proto == 17 ? "udp" : "tcp", p[12], p[13], p[14], p[15], sport, p[16], p[17],
                      p[18], p[19], dport, len, head, proto == 6 ? " flags=" : "", flags);
      }
    }
    std::fprintf(stderr, "lost %s t=%.6f %s\n", d.name, t, what);
  }

  static void release(Direction& d, Clock::time_point now) {
    while (!d.queue.empty() && d.queue.front().due <= now) {
      const Packet& p = d.queue.front();
      if (::write(d.to, p.bytes.data(), p.bytes.size()) == static_cast<ssize_t>(p.bytes.size())) {
        ++d.c.packets;
        d.c.bytes += p.bytes.size();
      } else {
        ++d.c.write_errors;
      }
      d.queued_bytes -= p.bytes.size();
      d.queue.pop_front();
    }
  }

  const Options& o_;
  std::mt19937_64 rng_;
  std::uniform_real_distribution<double> coin_{0.0, 1.0};
  Micros delay_;
  uint64_t losses_logged_ = 0;
  Direction ab_;
  Direction ba_;
  uint8_t buf_[kMaxPacket];
};

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (!parse_options(argc, argv, o)) {
    std::fprintf(stderr, "linkem: %s\n", setup_error.c_str());
    return 1;
  }
  const int home = ::open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  if (home < 0) {
    std::fprintf(stderr, "linkem: cannot open /proc/self/ns/net: %s\n", std::strerror(errno));
    return 1;
  }
  const int a = open_tun(o.a, home);
  const int b = a < 0 ? -1 : open_tun(o.b, home);
  if (a < 0 || b < 0) {
    std::fprintf(stderr, "linkem: %s\n", setup_error.c_str());
    return 1;
  }
  std::signal(SIGTERM, on_signal);
  std::signal(SIGINT, on_signal);
  std::signal(SIGPIPE, SIG_IGN);
  std::printf("ready\n");
  std::fflush(stdout);
  auto wire = std::make_unique<Wire>(o, a, b);  // its 64 KiB buffer is not for the stack
  wire->run();
  wire->print_counters();
  ::close(a);
  ::close(b);
  ::close(home);
  return 0;
}
