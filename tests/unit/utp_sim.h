// A simulated network for uTP tests: two Sockets (an initiator and the responder it makes by
// its SYN) joined by two one-way links with delay, random loss, duplication, reordering
// (jitter) and a bandwidth limit in front of a drop-tail queue, on a virtual clock. Both
// applications write a known byte pattern and check every byte they read. Deterministic: the
// links draw from seeded generators.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <queue>
#include <random>
#include <string>
#include <vector>

#include "evert/utp.h"

namespace evert::utp::sim {

struct LinkConfig {
  uint64_t delay_us = 1000;
  double loss = 0;
  double duplicate = 0;
  uint64_t jitter_us = 0;          // a uniform extra delay per packet: reorders them
  uint64_t rate_bytes_s = 0;       // 0: no bandwidth limit
  size_t queue_bytes = 256 << 10;  // the bottleneck's buffer (drop-tail)
};

class Link {
 public:
  Link(const LinkConfig& c, uint64_t seed) : c_(c), rng_(seed) {}

  void send(uint64_t now, const char* p, size_t n) {
    ++sent_;
    if (chance(c_.loss)) return;
    uint64_t depart = now;
    if (c_.rate_bytes_s != 0) {
      const uint64_t start = std::max(now, busy_until_);
      const uint64_t backlog = (start - now) * c_.rate_bytes_s / 1'000'000;
      if (backlog + n > c_.queue_bytes) return;  // the queue is full: dropped
      busy_until_ = start + n * 1'000'000 / c_.rate_bytes_s;
      depart = busy_until_;
    }
    push(depart, std::string(p, n));
    if (chance(c_.duplicate)) push(depart, std::string(p, n));
  }
  [[nodiscard]] uint64_t next_time() const { return q_.empty() ? UINT64_MAX : q_.top().at; }
  // The next packet due at `now`, if any.
  std::optional<std::string> pop(uint64_t now) {
    if (q_.empty() || q_.top().at > now) return std::nullopt;
    std::string s = q_.top().bytes;
    q_.pop();
    return s;
  }
  void set(const LinkConfig& c) { c_ = c; }
  [[nodiscard]] uint64_t sent() const { return sent_; }

 private:
  struct InFlight {
    uint64_t at;
    uint64_t order;
    std::string bytes;
    bool operator>(const InFlight& o) const { return at != o.at ? at > o.at : order > o.order; }
  };
  bool chance(double p) { return p > 0 && std::uniform_real_distribution<>(0, 1)(rng_) < p; }
  void push(uint64_t depart, std::string bytes) {
    uint64_t at = depart + c_.delay_us;
    if (c_.jitter_us != 0) at += std::uniform_int_distribution<uint64_t>(0, c_.jitter_us)(rng_);
    q_.push(InFlight{at, order_++, std::move(bytes)});
  }

  LinkConfig c_;
  std::mt19937_64 rng_;
  uint64_t busy_until_ = 0;
  uint64_t order_ = 0;
  uint64_t sent_ = 0;
  std::priority_queue<InFlight, std::vector<InFlight>, std::greater<>> q_;
};

// The byte at `offset` of a side's stream: distinct per side and not periodic at packet sizes.
inline char pattern(int side, uint64_t offset) {
  return static_cast<char>((offset * 131 + offset / 977 + static_cast<uint64_t>(side) * 89) & 0xff);
}

// One application: writes `to_send` bytes of its pattern, reads and checks the peer's.
struct App {
  int side = 0;
  uint64_t to_send = 0;
  uint64_t written = 0;
  uint64_t received = 0;
  bool read = true;  // false: never consumes (a full receive window)
  bool close_when_done = false;
  bool mismatch = false;
  std::vector<size_t> datagram_sizes;  // every datagram its socket sent
};

class Net {
 public:
  Net(const Options& oa, const Options& ob, const LinkConfig& ab, const LinkConfig& ba,
      uint64_t seed = 1, uint16_t seq_a = 1000, uint16_t seq_b = 30000)
      : ob_(ob), ab_(ab, seed * 2 + 1), ba_(ba, seed * 2 + 2), seq_b_(seq_b) {
    a_app.side = 0;
    b_app.side = 1;
    a.emplace(Socket::connect(4242, now, oa, seq_a));
  }

  // Runs until `done()` or the virtual clock passes `limit_us`; false on the limit.
  template <class Done>
  bool run(Done done, uint64_t limit_us) {
    for (;;) {
      step_apps();
      if (done()) return true;
      uint64_t t = std::min(ab_.next_time(), ba_.next_time());
      if (a) t = std::min(t, a->deadline());
      if (b) t = std::min(t, b->deadline());
      if (t == UINT64_MAX || t > limit_us) return false;
      now = std::max(now, t);
      deliver(ab_, /*to_b=*/true);
      deliver(ba_, /*to_b=*/false);
      if (a && a->deadline() <= now) a->on_tick(now);
      if (b && b->deadline() <= now) b->on_tick(now);
    }
  }

  // Until both sides have sent and received everything asked of them.
  bool transfer(uint64_t limit_us) {
    return run(
        [&] {
          return b && a_app.received == b_app.to_send && b_app.received == a_app.to_send &&
                 a->stats().send_buffered == 0 && b->stats().send_buffered == 0;
        },
        limit_us);
  }

  uint64_t now = 0;
  std::optional<Socket> a;  // the initiator
  std::optional<Socket> b;  // the responder, once a SYN reached it
  App a_app;
  App b_app;
  uint64_t b_bytes_before_confirmed = 0;  // what b sent before a packet of a other than a SYN
  uint64_t b_datagrams_before_confirmed = 0;
  uint64_t syns_to_b = 0;
  bool b_confirmed = false;
  Link& ab() { return ab_; }
  Link& ba() { return ba_; }

 private:
  void step_apps() {
    app_io(a, a_app);
    app_io(b, b_app);
    pump(a, a_app, ab_, false);
    pump(b, b_app, ba_, true);
  }

  void app_io(std::optional<Socket>& s, App& app) {
    if (!s) return;
    while (app.written < app.to_send && s->writable() > 0) {
      char buf[4096];
      const size_t n = std::min<uint64_t>({sizeof buf, app.to_send - app.written, s->writable()});
      for (size_t i = 0; i < n; ++i)
        buf[i] = pattern(app.side, app.written + i);
      app.written += s->write(std::string_view(buf, n));
    }
    if (app.close_when_done && app.written == app.to_send &&
        s->state() == Socket::State::kConnected) {
      s->close(now);
    }
    while (app.read && !s->readable().empty()) {
      const std::string_view r = s->readable();
      for (size_t i = 0; i < r.size(); ++i) {
        if (r[i] != pattern(1 - app.side, app.received + i)) app.mismatch = true;
      }
      app.received += r.size();
      s->consume(r.size());
    }
  }

  void pump(std::optional<Socket>& s, App& app, Link& link, bool is_b) {
    if (!s) return;
    char buf[kMaxDatagram];
    while (size_t n = s->next_packet(now, buf, sizeof buf)) {
      app.datagram_sizes.push_back(n);
      if (is_b && !b_confirmed) {
        b_bytes_before_confirmed += n;
        ++b_datagrams_before_confirmed;
      }
      link.send(now, buf, n);
    }
  }

  void deliver(Link& link, bool to_b) {
    while (auto d = link.pop(now)) {
      auto p = parse_packet(*d);
      ASSERT_TRUE(p.ok()) << p.error().describe();
      if (!to_b) {
        if (a) a->on_packet(*p, now);
        continue;
      }
      if (p->header.type == Type::kSyn) ++syns_to_b;
      if (p->header.type != Type::kSyn && b) b_confirmed = true;
      if (!b && p->header.type == Type::kSyn) {
        b.emplace(Socket::accept(p->header, now, ob_, seq_b_));
      } else if (b) {
        b->on_packet(*p, now);
      }
    }
  }

  Options ob_;
  Link ab_;
  Link ba_;
  uint16_t seq_b_;
};

}  // namespace evert::utp::sim
