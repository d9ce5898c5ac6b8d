// Whole uTP transfers (BEP 29) between two Sockets through the simulated network of
// utp_sim.h: byte-exact delivery through loss, reordering and duplication, sequence numbers
// wrapping, the rates that prove slow start, fast retransmit and LEDBAT work, closing, reset,
// a peer that disappears, and a receiver that stops reading.
#include <gtest/gtest.h>

#include "evert/utp.h"
#include "utp_sim.h"

namespace evert::utp {
namespace {

using sim::LinkConfig;
using sim::Net;
using State = Socket::State;

constexpr uint64_t kSecond = 1'000'000;
constexpr uint64_t kMiB = 1 << 20;

void expect_clean(const Net& n) {
  EXPECT_FALSE(n.a_app.mismatch);
  EXPECT_FALSE(n.b_app.mismatch);
  // The responder said nothing but 20-byte STATEs (one per SYN, and at most two resent
  // unasked) before the initiator's next packet reached it: toward an unconfirmed address,
  // never more than 60 bytes per 20-byte SYN.
  EXPECT_EQ(n.b_bytes_before_confirmed, n.b_datagrams_before_confirmed * kHeaderSize);
  EXPECT_LE(n.b_datagrams_before_confirmed, n.syns_to_b + 2);
}

// Bytes per second of `bytes` sent from time 0 to now.
double rate(const Net& n, uint64_t bytes) {
  return static_cast<double>(bytes) * 1e6 / static_cast<double>(n.now);
}

TEST(UtpTransfer, SeveralMiBBothWaysThroughAHostileNetworkArriveByteExact) {
  LinkConfig l;
  l.delay_us = 20'000;
  l.loss = 0.03;
  l.duplicate = 0.02;
  l.jitter_us = 8'000;  // reorders packets a few ms apart
  l.rate_bytes_s = 4 * kMiB;
  Net n({}, {}, l, l, 7);
  n.a_app.to_send = 3 * kMiB;
  n.b_app.to_send = 3 * kMiB + 12345;
  ASSERT_TRUE(n.transfer(120 * kSecond)) << n.a_app.received << " " << n.b_app.received;
  expect_clean(n);
  EXPECT_EQ(n.b_app.received, n.a_app.to_send);
  EXPECT_EQ(n.a_app.received, n.b_app.to_send);
  EXPECT_GT(n.a->stats().retransmits, 0u);
  EXPECT_EQ(n.a->stats().bytes_acked, n.a_app.to_send);
}

TEST(UtpTransfer, SequenceNumbersWrapAroundOnBothSides) {
  LinkConfig l;
  l.delay_us = 5'000;
  l.loss = 0.02;
  l.jitter_us = 3'000;
  Net n({}, {}, l, l, 3, /*seq_a=*/65500, /*seq_b=*/65530);
  n.a_app.to_send = kMiB;  // ~760 packets: across 65535 -> 0
  n.b_app.to_send = kMiB;
  ASSERT_TRUE(n.transfer(60 * kSecond));
  expect_clean(n);
}

TEST(UtpTransfer, FullSizeDatagramsWhenTheApplicationHasTheBytes) {
  Net n({}, {}, {}, {});
  n.a_app.to_send = 2 * kMiB;
  ASSERT_TRUE(n.transfer(60 * kSecond));
  size_t full = 0;
  size_t data = 0;
  for (size_t size : n.a_app.datagram_sizes) {
    if (size > kHeaderSize) ++data;
    if (size == Options{}.packet_size) ++full;
  }
  // All data packets are full but the last (2 MiB is not a multiple of 1380).
  EXPECT_EQ(full, data - 1);
  EXPECT_EQ(data, (2 * kMiB + 1379) / 1380);
}

TEST(UtpTransfer, TheResponderSaysOnlyTwentyBytesPerSynAndTwoResendsUntilTheInitiatorAnswers) {
  LinkConfig dead;
  dead.delay_us = 30'000;
  dead.loss = 1.0;  // the responder's STATEs are lost: the initiator resends its SYN
  Net n({}, {}, LinkConfig{30'000}, dead);
  n.a_app.to_send = 100'000;
  n.b_app.to_send = 100'000;  // wants to talk, but may not yet
  ASSERT_TRUE(n.run([&] { return n.syns_to_b >= 3; }, 10 * kSecond));
  EXPECT_EQ(n.b->state(), State::kSynReceived);
  EXPECT_EQ(n.b_datagrams_before_confirmed, 3u + 2u);  // 3 SYNs answered, 2 resent unasked
  n.ba().set(LinkConfig{30'000});
  ASSERT_TRUE(n.transfer(n.now + 10 * kSecond));
  expect_clean(n);
}

TEST(UtpTransfer, SlowStartFillsALongPathInAFewRoundTrips) {
  LinkConfig l;
  l.delay_us = 50'000;  // 100 ms round trip, no bandwidth limit, no loss
  Net n({}, {}, l, l);
  n.a_app.to_send = 8 * kMiB;
  ASSERT_TRUE(n.transfer(60 * kSecond));
  expect_clean(n);
  // Doubling per round trip reaches the 1 MiB send buffer (10 MiB/s here) in about ten round
  // trips; LEDBAT's linear growth alone (3000 bytes per round trip) would take 7.5 s.
  EXPECT_LT(n.now, 2500 * 1000u);
  EXPECT_EQ(n.a->stats().retransmits, 0u);
}

TEST(UtpTransfer, OnePercentLossOnALongPathKeepsATcpLikeRate) {
  // 50 ms each way, 1% loss each way, a 4 MiB/s bottleneck. TCP Reno's rate here is about
  // MSS / RTT * 1.22 / sqrt(p) = 170 KB/s (Mathis et al.) and BEP 29's halving per lossy
  // window kept uTP near it (about 300 KB/s); random loss told from congestion
  // (utp_congestion.h) and pacing reach 2.5 to 3.5 MB/s, as Linux's TCP does over such a link.
  // Also with no bandwidth limit (netem on loopback): a window leaves in one burst and comes
  // back acked by one packet, whose loss the tail loss probe must cover.
  for (uint64_t seed : {1, 2, 3, 4}) {
    LinkConfig l;
    l.delay_us = 50'000;
    l.loss = 0.01;
    l.rate_bytes_s = seed % 2 == 1 ? 4 * kMiB : 0;
    Net n({}, {}, l, l, seed);
    n.a_app.to_send = 6 * kMiB;
    ASSERT_TRUE(n.transfer(200 * kSecond));
    expect_clean(n);
    const Socket::Stats s = n.a->stats();
    EXPECT_GT(rate(n, n.a_app.to_send), 2e6) << "seed " << seed;
    EXPECT_GT(s.retransmits, 20u);
    EXPECT_LE(s.timeouts, 1u) << "seed " << seed;
  }
}

TEST(UtpTransfer, LedbatKeepsTheBottleneckQueueNearItsTarget) {
  // A 1 MiB/s link with a one-second queue: a loss-based sender fills the queue (a second of
  // delay for everyone behind it); LEDBAT holds it near 100 ms and still uses the link.
  LinkConfig l;
  l.delay_us = 50'000;
  l.rate_bytes_s = kMiB;
  l.queue_bytes = kMiB;
  Net n({}, {}, l, l);
  n.a_app.to_send = 24 * kMiB;
  ASSERT_TRUE(n.transfer(100 * kSecond));
  expect_clean(n);
  EXPECT_GT(rate(n, n.a_app.to_send), 0.9 * kMiB);
  EXPECT_LT(n.a->stats().rtt_us, 100'000u + 100'000u + 50'000u);
  EXPECT_EQ(n.a->stats().retransmits, 0u);
}

TEST(UtpTransfer, AShallowQueueThatOverflowsIsCongestionNotRandomLoss) {
  // A 1 MiB/s link whose queue holds 30 ms: it drops before the delay reaches the target, so
  // only the share of a window lost says congestion (utp_congestion.h). The sender must still
  // use the link and keep its losses to a few percent, not push at the queue's tail forever.
  LinkConfig l;
  l.delay_us = 20'000;
  l.rate_bytes_s = kMiB;
  l.queue_bytes = 30 * 1024;
  Net n({}, {}, l, l, 5);
  n.a_app.to_send = 16 * kMiB;
  ASSERT_TRUE(n.transfer(100 * kSecond));
  expect_clean(n);
  EXPECT_GT(rate(n, n.a_app.to_send), 0.8 * kMiB);
  const Socket::Stats s = n.a->stats();
  const double packets = static_cast<double>(n.a_app.to_send) / 1380;
  EXPECT_LT(static_cast<double>(s.retransmits), 0.05 * packets);
}

TEST(UtpTransfer, CloseAfterDataDeliversEverythingThenBothSidesClose) {
  LinkConfig l;
  l.delay_us = 10'000;
  l.loss = 0.05;
  Net n({}, {}, l, l, 11);
  n.a_app.to_send = kMiB;
  n.a_app.close_when_done = true;
  ASSERT_TRUE(n.run([&] { return n.b && n.b->eof(); }, 60 * kSecond));
  EXPECT_EQ(n.b_app.received, kMiB);
  n.b->close(n.now);
  ASSERT_TRUE(
      n.run([&] { return n.a->state() == State::kClosed && n.b->state() == State::kClosed; },
            n.now + 60 * kSecond));
  expect_clean(n);
  EXPECT_EQ(n.a->stats().bytes_acked, kMiB);
}

TEST(UtpTransfer, AbortResetsThePeer) {
  Net n({}, {}, {}, {});
  n.a_app.to_send = kMiB;
  n.b_app.to_send = kMiB;
  ASSERT_TRUE(n.run([&] { return n.b_app.received > 100'000; }, 10 * kSecond));
  n.a->abort(n.now);
  ASSERT_TRUE(n.run([&] { return n.b->state() == State::kFailed; }, n.now + kSecond));
  EXPECT_EQ(n.b->failure(), "reset by peer");
  EXPECT_EQ(n.a->state(), State::kClosed);
}

TEST(UtpTransfer, APeerThatDisappearsFailsTheConnectionWithinItsTimeout) {
  LinkConfig l;
  l.delay_us = 20'000;
  Net n({}, {}, l, l);
  n.a_app.to_send = 64 * kMiB;
  n.b_app.to_send = 64 * kMiB;
  ASSERT_TRUE(n.run([&] { return n.b_app.received > 2 * kMiB; }, 30 * kSecond));
  LinkConfig gone = l;
  gone.loss = 1.0;
  n.ab().set(gone);
  n.ba().set(gone);
  const uint64_t cut = n.now;
  ASSERT_TRUE(
      n.run([&] { return n.a->state() == State::kFailed && n.b->state() == State::kFailed; },
            cut + 60 * kSecond));
  EXPECT_NE(n.a->failure().find("timed out"), std::string::npos) << n.a->failure();
  // A probe, then timeouts from 500 ms doubling: 0.5 + 1 + 2 + 4 + 8 s, and the fifth kills.
  EXPECT_LT(n.now - cut, 17 * kSecond);
  EXPECT_GT(n.now - cut, 14 * kSecond);
}

TEST(UtpTransfer, AReceiverThatStopsReadingStopsTheSenderAndResumesIt) {
  Options small;
  small.recv_buffer = 64 << 10;
  LinkConfig l;
  l.delay_us = 10'000;
  Net n({}, small, l, l);
  n.a_app.to_send = 4 * kMiB;
  n.b_app.read = false;
  ASSERT_FALSE(n.run([&] { return n.b_app.received == n.a_app.to_send; }, 10 * kSecond));
  EXPECT_LE(n.b->stats().recv_buffered, small.recv_buffer);
  EXPECT_LE(n.a->stats().bytes_acked, small.recv_buffer);
  EXPECT_EQ(n.a->state(), State::kConnected);  // probing a closed window is not a failure
  n.b_app.read = true;
  ASSERT_TRUE(n.transfer(n.now + 30 * kSecond));
  expect_clean(n);
}

}  // namespace
}  // namespace evert::utp
