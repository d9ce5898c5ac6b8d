// Internal to evert/utp.h (its Socket holds one by value): the congestion window and the
// retransmission timeout of one uTP connection, with no clock and no I/O.
//
//  - Round-trip time and timeout as TCP's (RFC 6298): srtt, rttvar, rto = srtt + 4 rttvar,
//    at least min_timeout (500 ms: BEP 29 "timeouts", libtorrent's utp_min_timeout), doubled
//    per consecutive timeout up to max_timeout.
//  - LEDBAT (BEP 29 "congestion control"): the peer echoes the one-way delay of our packets;
//    the base delay is its minimum over the last two minutes (in 10 s buckets), the queuing
//    delay is a sample minus the base, and every ack moves the window by
//    gain * (target - delay) / target * acked / in_flight, where the gain per round trip is
//    BEP 29's 3000 bytes or an eighth of the window, whichever is more: a fixed gain takes
//    minutes to grow a window of megabytes back after a cut on a 100 ms path, and in proportion
//    to the window the controller still settles where the queuing delay meets the target
//    (FAST TCP's proportional update), only sooner. A decrease is at most half the window a
//    round trip.
//  - Slow start like libtorrent's (src/utp_stream.cpp do_ledbat, line 3075): the window grows
//    by the bytes acked (doubling per RTT) until the delay reaches the target, a congestive
//    loss, or the threshold one left.
//  - Loss, told apart by its cause. BEP 29 halves the window on every loss "to mimic TCP"; on a
//    long path with random loss (radio links, busy Wi-Fi; 100 ms and 1% here) that kept uTP at
//    a tenth of what Linux's TCP gets over the same link (measured: 0.16 against 4.9 MiB/s).
//    LEDBAT has a congestion signal of its own, the queuing delay, so a loss counts as
//    congestion when it comes with one (the queuing delay at the target or more: a receiver busy
//    for a few dozen milliseconds shows as delay too), or when
//    a window loses more than max(3, 3%) of its packets (a queue that overflows without
//    delaying first: a shallow buffer). Congestion halves the window the losses began in and
//    ends slow start (BEP 29); other losses are only sent again. BBRv2 draws its line at 2%
//    loss a round trip for the same reason, and TCP Veno tells random from congestive loss by
//    the backlog the delay shows. The caller reports every lost packet, saying which start a
//    new window (its once-per-window rule). A timeout drops the window to one packet and
//    starts slow start again.
#pragma once

#include <array>
#include <cstdint>

namespace evert::utp::detail {

struct CongestionParams {
  uint32_t mss = 1380;  // the payload of a full packet: the window's unit
  uint32_t initial_window = 4380;
  uint32_t target_delay_us = 100'000;
  uint32_t gain = 3000;  // bytes per RTT at zero queuing delay
  uint32_t initial_timeout_us = 1'000'000;
  uint32_t min_timeout_us = 500'000;
  uint32_t max_timeout_us = 60'000'000;
};

class Congestion {
 public:
  explicit Congestion(const CongestionParams& p);

  // The window in bytes of payload (at least one mss).
  [[nodiscard]] uint32_t cwnd() const { return static_cast<uint32_t>(cwnd_ >> 16); }
  [[nodiscard]] bool slow_start() const { return slow_start_; }
  [[nodiscard]] uint32_t ssthresh() const { return ssthresh_; }

  // A round-trip sample of a packet sent once (Karn: never of a retransmitted one).
  void on_rtt_sample(uint32_t rtt_us);
  [[nodiscard]] uint32_t srtt_us() const { return srtt_; }
  [[nodiscard]] uint32_t min_rtt_us() const { return min_rtt_; }
  // The tail loss probe's timeout (RFC 8985 section 7.2: two round trips), 0 before any RTT
  // sample.
  [[nodiscard]] uint64_t probe_timeout_us() const;
  // The retransmission timeout, backed off by consecutive timeouts.
  [[nodiscard]] uint64_t rto_us() const;
  void reset_back_off() { back_off_ = 0; }

  // A packet of the peer carried `diff_us`, its one-way delay sample of our packets (0: none).
  void on_delay_sample(uint32_t diff_us, uint64_t now_us);
  // The queuing delay now (the minimum of the last three samples minus the base), 0 if none.
  [[nodiscard]] uint32_t queuing_delay_us() const;

  // `acked` bytes newly acked out of `in_flight` before the ack; `rtt_us` (0: unknown) bounds
  // the delay (a one-way delay cannot exceed the round trip). `saturated`: the sender was
  // limited by the window, so growing it is meaningful.
  void on_ack(uint32_t acked, uint32_t in_flight, uint32_t rtt_us, bool saturated);
  // A packet deemed lost. `new_window`: the first loss among the packets sent since the last
  // window's first loss (the caller's once-per-window rule); `window_packets`: how many
  // packets were in flight then.
  void on_loss(bool new_window, uint32_t window_packets);
  // Whether the last window's losses were taken as congestion (tests, stats).
  [[nodiscard]] bool congestive_loss() const { return episode_congestive_; }
  void on_timeout(uint32_t in_flight);

 private:
  CongestionParams p_;
  int64_t cwnd_;  // bytes, 16 bits of fraction: LEDBAT's per-ack steps are often below a byte
  uint32_t ssthresh_ = 0;  // 0: none yet
  bool slow_start_ = true;
  // The loss window being counted: its losses, its size, the window before its first loss.
  uint32_t episode_losses_ = 0;
  uint32_t episode_packets_ = 0;
  int64_t episode_cwnd_ = 0;
  bool episode_congestive_ = false;
  bool have_rtt_ = false;
  uint8_t back_off_ = 0;
  uint32_t srtt_ = 0;
  uint32_t rttvar_ = 0;
  uint32_t min_rtt_ = 0;
  uint32_t rto_;

  // Base delay: the minimum per 10 s bucket over the last two minutes (BEP 29).
  static constexpr int kBuckets = 12;
  static constexpr uint64_t kBucketUs = 10'000'000;
  std::array<uint32_t, kBuckets> base_{};
  uint64_t bucket_start_us_ = 0;
  uint8_t bucket_ = 0;
  bool have_base_ = false;
  std::array<uint32_t, 3> recent_{};  // the last samples, minus the base when taken
  uint8_t recent_next_ = 0;
};

}  // namespace evert::utp::detail
