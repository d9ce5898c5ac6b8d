#include "evert/utp_congestion.h"

#include <algorithm>
#include <climits>

namespace evert::utp::detail {
namespace {

// Delay samples are differences of two unsynchronised 32-bit clocks: they wrap, and only their
// differences mean something (BEP 29).
bool wrap_less(uint32_t a, uint32_t b) {
  return static_cast<int32_t>(a - b) < 0;
}

constexpr int64_t kOne = int64_t{1} << 16;  // 1.0 in the window's fixed point
// No window beyond 1 GiB: the send buffer bounds what is in flight long before that.
constexpr int64_t kMaxCwnd = (int64_t{1} << 30) * kOne;

}  // namespace

Congestion::Congestion(const CongestionParams& p)
    : p_(p), cwnd_(int64_t{std::max(p.initial_window, p.mss)} * kOne), rto_(p.initial_timeout_us) {}

void Congestion::on_rtt_sample(uint32_t rtt_us) {
  // RFC 6298 section 2.
  if (!have_rtt_ || rtt_us < min_rtt_) min_rtt_ = rtt_us;
  if (!have_rtt_) {
    srtt_ = rtt_us;
    rttvar_ = rtt_us / 2;
    have_rtt_ = true;
  } else {
    const uint32_t err = srtt_ > rtt_us ? srtt_ - rtt_us : rtt_us - srtt_;
    rttvar_ = static_cast<uint32_t>((uint64_t{rttvar_} * 3 + err) / 4);
    srtt_ = static_cast<uint32_t>((uint64_t{srtt_} * 7 + rtt_us) / 8);
  }
  const uint64_t rto = uint64_t{srtt_} + 4 * uint64_t{rttvar_};
  rto_ = static_cast<uint32_t>(std::clamp<uint64_t>(rto, p_.min_timeout_us, p_.max_timeout_us));
}

uint64_t Congestion::rto_us() const {
  const uint64_t rto = uint64_t{rto_} << std::min<int>(back_off_, 20);
  return std::min<uint64_t>(rto, p_.max_timeout_us);
}

uint64_t Congestion::probe_timeout_us() const {
  if (!have_rtt_) return 0;
  return std::max<uint64_t>(2 * uint64_t{srtt_}, 10'000);
}

void Congestion::on_delay_sample(uint32_t diff_us, uint64_t now_us) {
  // 0 means the peer has no sample yet (BEP 29); uTorrent sometimes sends INT_MAX for an
  // uninitialised one (libtorrent src/utp_stream.cpp line 2533).
  if (diff_us == 0 || diff_us == INT_MAX) return;
  if (!have_base_) {
    base_.fill(diff_us);
    recent_.fill(diff_us);
    bucket_start_us_ = now_us;
    have_base_ = true;
    return;
  }
  if (now_us - bucket_start_us_ >= kBucketUs) {
    // Step over every bucket that elapsed, so the base forgets what is two minutes old even
    // after a silence.
    const uint64_t steps = std::min<uint64_t>((now_us - bucket_start_us_) / kBucketUs, kBuckets);
    for (uint64_t i = 0; i < steps; ++i) {
      bucket_ = static_cast<uint8_t>((bucket_ + 1) % kBuckets);
      base_[bucket_] = diff_us;
    }
    bucket_start_us_ = now_us;
  } else if (wrap_less(diff_us, base_[bucket_])) {
    base_[bucket_] = diff_us;
  }
  recent_[recent_next_] = diff_us;
  recent_next_ = static_cast<uint8_t>((recent_next_ + 1) % recent_.size());
}

uint32_t Congestion::queuing_delay_us() const {
  if (!have_base_) return 0;
  uint32_t base = base_[0];
  for (uint32_t b : base_) {
    if (wrap_less(b, base)) base = b;
  }
  // The minimum of the last samples filters out the jitter of single packets (as libtorrent
  // does, src/utp_stream.cpp line 2820).
  uint32_t recent = recent_[0];
  for (uint32_t r : recent_) {
    if (wrap_less(r, recent)) recent = r;
  }
  const auto d = static_cast<int32_t>(recent - base);
  return d > 0 ? static_cast<uint32_t>(d) : 0;
}

void Congestion::on_ack(uint32_t acked, uint32_t in_flight, uint32_t rtt_us, bool saturated) {
  if (acked == 0) return;
  const int64_t target = std::max<uint32_t>(p_.target_delay_us, 1);
  int64_t delay = queuing_delay_us();
  if (rtt_us != 0 && delay > rtt_us) delay = rtt_us;
  if (delay >= target && slow_start_) {
    // The queue is at the target: doubling again would overshoot it (libtorrent line 3103).
    slow_start_ = false;
    ssthresh_ = std::max(cwnd() / 2, 2 * p_.mss);
  }
  // BEP 29: scaled_gain = gain * delay_factor * window_factor, in 16-bit fixed point. The
  // delay factor is bounded below so that an absurd delay cannot overflow the product.
  const int64_t window_factor = (int64_t{acked} * kOne) / std::max(in_flight, acked);
  const int64_t delay_factor = std::max(((target - delay) * kOne) / target, -4 * kOne);
  // The gain per round trip: BEP 29's fixed `gain`, or an eighth of the window when that is
  // more. A fixed gain takes minutes to grow a window of megabytes back after a cut (3000 bytes
  // per 100 ms round trip); in proportion to the window, the controller still settles where
  // the queuing delay meets the target (it is FAST TCP's proportional update), only faster.
  const int64_t gain = std::max<int64_t>(p_.gain, cwnd() / 8);
  const int64_t linear = ((window_factor * delay_factor) >> 16) * gain;
  int64_t step = 0;
  if (saturated) {
    step = linear;
    if (slow_start_) {
      const int64_t exponential = int64_t{acked} * kOne;
      if (ssthresh_ != 0 && ((cwnd_ + exponential) >> 16) > ssthresh_) {
        slow_start_ = false;
      } else {
        step = std::max(exponential, linear);
      }
    }
  } else if (linear < 0) {
    step = linear;  // a window the sender does not fill still yields to a queue
  }
  cwnd_ = std::clamp(cwnd_ + step, int64_t{p_.mss} * kOne, kMaxCwnd);
}

void Congestion::on_loss(bool new_window, uint32_t window_packets) {
  if (new_window) {
    episode_losses_ = 0;
    episode_packets_ = std::max<uint32_t>(window_packets, 1);
    episode_cwnd_ = cwnd_;
    episode_congestive_ = false;
  }
  ++episode_losses_;
  if (episode_congestive_) return;  // the window was cut for this one already
  const bool queued = queuing_delay_us() >= p_.target_delay_us;
  const bool many = episode_losses_ > std::max<uint32_t>(3, episode_packets_ * 3 / 100);
  if (queued || many) {
    // Congestion (BEP 29): half the window the losses began in, and no more slow start.
    episode_congestive_ = true;
    cwnd_ = std::max(episode_cwnd_ / 2, int64_t{p_.mss} * kOne);
    ssthresh_ = cwnd();
    slow_start_ = false;
  }
}

void Congestion::on_timeout(uint32_t in_flight) {
  // RFC 5681 section 3.1: ssthresh = max(FlightSize / 2, 2 * SMSS), then one segment.
  ssthresh_ = std::max(std::max(in_flight, cwnd()) / 2, 2 * p_.mss);
  cwnd_ = int64_t{p_.mss} * kOne;
  slow_start_ = true;
  if (back_off_ < 20) ++back_off_;
}

}  // namespace evert::utp::detail
