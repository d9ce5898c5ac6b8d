// uTP's congestion window and timeouts (evert/utp_congestion.h): RFC 6298's timeout, slow
// start, LEDBAT's gain around its target delay (BEP 29), the two-minute base delay, loss and
// timeout.
#include "evert/utp_congestion.h"

#include <gtest/gtest.h>

#include <cstdint>

namespace evert::utp::detail {
namespace {

constexpr uint32_t kMss = 1000;
constexpr uint64_t kSecond = 1'000'000;

CongestionParams params() {
  CongestionParams p;
  p.mss = kMss;
  p.initial_window = 4 * kMss;
  p.target_delay_us = 100'000;
  p.gain = 3000;
  return p;
}

TEST(UtpCongestion, TimeoutFollowsRfc6298WithAFloorAndBackOff) {
  Congestion c(params());
  EXPECT_EQ(c.rto_us(), 1'000'000u);  // BEP 29: 1 s before any sample
  EXPECT_EQ(c.probe_timeout_us(), 0u);
  c.on_rtt_sample(200'000);
  // srtt 200 ms, rttvar 100 ms: 200 + 4 * 100 = 600 ms.
  EXPECT_EQ(c.srtt_us(), 200'000u);
  EXPECT_EQ(c.rto_us(), 600'000u);
  EXPECT_EQ(c.probe_timeout_us(), 400'000u);
  for (int i = 0; i < 50; ++i)
    c.on_rtt_sample(10'000);
  EXPECT_EQ(c.rto_us(), 500'000u);  // the floor (BEP 29, libtorrent)
  EXPECT_EQ(c.min_rtt_us(), 10'000u);
  c.on_timeout(0);
  EXPECT_EQ(c.rto_us(), 1'000'000u);
  for (int i = 0; i < 30; ++i)
    c.on_timeout(0);
  EXPECT_EQ(c.rto_us(), 60'000'000u);  // the ceiling
  c.reset_back_off();
  EXPECT_EQ(c.rto_us(), 500'000u);
}

TEST(UtpCongestion, SlowStartDoublesUntilTheDelayReachesTheTarget) {
  Congestion c(params());
  c.on_delay_sample(5000, 0);  // the base
  uint32_t cwnd = c.cwnd();
  c.on_ack(cwnd, cwnd, 50'000, true);  // a whole window acked at zero queuing delay
  EXPECT_EQ(c.cwnd(), 2 * cwnd);
  EXPECT_TRUE(c.slow_start());
  // Not limited by the window (the application had less to send): no growth.
  c.on_ack(kMss, kMss, 50'000, false);
  EXPECT_EQ(c.cwnd(), 2 * cwnd);
  // The queue reached the target: slow start ends, the threshold is half the window.
  for (int i = 0; i < 3; ++i)
    c.on_delay_sample(5000 + 120'000, kSecond);
  cwnd = c.cwnd();
  c.on_ack(kMss, cwnd, 500'000, true);
  EXPECT_FALSE(c.slow_start());
  EXPECT_EQ(c.ssthresh(), cwnd / 2);
  EXPECT_LT(c.cwnd(), cwnd);  // 20 ms over the target: a small decrease
}

TEST(UtpCongestion, LedbatGainsAtMostItsGainPerRoundTripScaledByTheDelay) {
  Congestion c(params());
  for (int i = 0; i < 4; ++i)  // more than 3 lost in a window: congestion, out of slow start
    c.on_loss(i == 0, 4);
  ASSERT_TRUE(c.congestive_loss());
  const uint32_t start = c.cwnd();
  ASSERT_EQ(start, 2 * kMss);
  c.on_delay_sample(1000, 0);
  // A window's worth acked, at zero queuing delay: + gain.
  c.on_ack(start, start, 0, true);
  EXPECT_EQ(c.cwnd(), start + 3000);
  // At half the target: + gain / 2.
  for (int i = 0; i < 3; ++i)
    c.on_delay_sample(1000 + 50'000, 1000);
  uint32_t w = c.cwnd();
  c.on_ack(w, w, 0, true);
  EXPECT_EQ(c.cwnd(), w + 1500);
  // At twice the target: - gain; never below one packet.
  for (int i = 0; i < 3; ++i)
    c.on_delay_sample(1000 + 200'000, 2000);
  w = c.cwnd();
  c.on_ack(w, w, 0, false);  // a decrease applies even to a window not filled
  EXPECT_EQ(c.cwnd(), w - 3000);
  for (int i = 0; i < 100; ++i)
    c.on_ack(kMss, kMss, 0, true);
  EXPECT_EQ(c.cwnd(), kMss);
  // The delay is bounded by the round trip it came back within.
  w = c.cwnd();
  c.on_ack(w, w, 10'000, true);
  EXPECT_GT(c.cwnd(), w);
}

TEST(UtpCongestion, TheBaseDelayIsTheMinimumOfTheLastTwoMinutes) {
  Congestion c(params());
  // Clocks differ by ~4e9 µs: samples wrap around 2^32, only differences count.
  const uint32_t base = 0xFFFF'0000u;
  c.on_delay_sample(base, 0);
  c.on_delay_sample(base + 30'000, 1 * kSecond);
  c.on_delay_sample(base + 30'000, 2 * kSecond);
  c.on_delay_sample(base + 30'000, 3 * kSecond);
  EXPECT_EQ(c.queuing_delay_us(), 30'000u);
  // The route got longer by 40 ms for good: after two minutes that is the new base.
  uint64_t t = 3 * kSecond;
  for (; t < 100 * kSecond; t += kSecond)
    c.on_delay_sample(base + 40'000, t);
  EXPECT_EQ(c.queuing_delay_us(), 40'000u);
  for (; t < 125 * kSecond; t += kSecond)
    c.on_delay_sample(base + 40'000, t);
  EXPECT_EQ(c.queuing_delay_us(), 0u);
  // The minimum of the last three samples filters a single late packet.
  c.on_delay_sample(base + 140'000, t);
  EXPECT_EQ(c.queuing_delay_us(), 0u);
}

TEST(UtpCongestion, RandomLossIsResentCongestionHalvesTimeoutRestartsSlowStart) {
  Congestion c(params());
  c.on_delay_sample(1, 0);
  for (int i = 0; i < 4; ++i)
    c.on_ack(c.cwnd(), c.cwnd(), 0, true);
  EXPECT_EQ(c.cwnd(), 64 * kMss);
  // Up to 3 losses in a window with no queue behind them: random, no cut, slow start goes on.
  c.on_loss(true, 64);
  c.on_loss(false, 64);
  c.on_loss(false, 64);
  EXPECT_FALSE(c.congestive_loss());
  EXPECT_EQ(c.cwnd(), 64 * kMss);
  EXPECT_TRUE(c.slow_start());
  c.on_ack(c.cwnd(), c.cwnd(), 0, true);
  EXPECT_EQ(c.cwnd(), 128 * kMss);
  // A fourth in that window: the window it began in is halved, slow start ends.
  c.on_loss(false, 64);
  EXPECT_TRUE(c.congestive_loss());
  EXPECT_EQ(c.cwnd(), 32 * kMss);
  EXPECT_FALSE(c.slow_start());
  EXPECT_EQ(c.ssthresh(), 32 * kMss);
  c.on_loss(false, 64);  // once per window
  EXPECT_EQ(c.cwnd(), 32 * kMss);
  // A loss with the queue at the target: congestion at once.
  for (int i = 0; i < 3; ++i)
    c.on_delay_sample(1 + 100'000, kSecond);
  c.on_loss(true, 32);
  EXPECT_TRUE(c.congestive_loss());
  EXPECT_EQ(c.cwnd(), 16 * kMss);
  // In a large window, more than 3% of its packets.
  for (int i = 0; i < 3; ++i)
    c.on_delay_sample(1, 2 * kSecond);
  c.on_loss(true, 400);
  for (int i = 0; i < 11; ++i)
    c.on_loss(false, 400);
  EXPECT_FALSE(c.congestive_loss());
  EXPECT_EQ(c.cwnd(), 16 * kMss);
  c.on_loss(false, 400);
  EXPECT_TRUE(c.congestive_loss());
  EXPECT_EQ(c.cwnd(), 8 * kMss);

  c.on_timeout(32 * kMss);
  EXPECT_EQ(c.cwnd(), kMss);
  EXPECT_TRUE(c.slow_start());
  EXPECT_EQ(c.ssthresh(), 16 * kMss);
  // Slow start again, up to the threshold, then linear.
  for (int i = 0; i < 10; ++i)
    c.on_ack(c.cwnd(), c.cwnd(), 0, true);
  EXPECT_FALSE(c.slow_start());
  EXPECT_LT(c.cwnd(), 16 * kMss + 10 * 3000);
}

}  // namespace
}  // namespace evert::utp::detail
