#include <gtest/gtest.h>

#include <array>
#include <vector>

#include "choker.h"

namespace evert::everseed {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

struct Peers {
  std::vector<ChokeState> s;
  explicit Peers(size_t n) : s(n) {}
  std::vector<ChokeState*> ptrs() {
    std::vector<ChokeState*> p;
    for (auto& x : s)
      p.push_back(&x);
    return p;
  }
  void update(const ChokePolicy& pol, Clock::time_point now, ChokeStep step) {
    update_chokes(ptrs(), pol, now, step);
  }
  [[nodiscard]] size_t unchoked() const {
    size_t n = 0;
    for (const auto& x : s)
      n += x.unchoked ? 1 : 0;
    return n;
  }
  void interest(size_t i, Clock::time_point now) {
    s[i].interested = true;
    s[i].since = now;
  }
};

TEST(Choker, FreeSlotsGoAtOnceAndOnlyToInterestedPeers) {
  const ChokePolicy pol{2, false, seconds(10)};
  Peers p(4);
  Clock::time_point t{};
  p.update(pol, t, ChokeStep::kSettle);
  EXPECT_EQ(p.unchoked(), 0u);
  p.interest(0, t);
  p.update(pol, t, ChokeStep::kSettle);
  EXPECT_TRUE(p.s[0].unchoked);
  for (size_t i = 1; i < 4; ++i)
    p.interest(i, t + milliseconds(i));
  p.update(pol, t + milliseconds(5), ChokeStep::kSettle);
  EXPECT_EQ(p.unchoked(), 2u);
  EXPECT_TRUE(p.s[1].unchoked);  // waited longest of the others
  EXPECT_FALSE(p.s[2].unchoked);
  // Not interested any more: choked, and its slot goes to the next in line.
  p.s[0].interested = false;
  p.update(pol, t + seconds(1), ChokeStep::kSettle);
  EXPECT_FALSE(p.s[0].unchoked);
  EXPECT_TRUE(p.s[2].unchoked);
  EXPECT_FALSE(p.s[3].unchoked);
}

TEST(Choker, RotationGivesEveryInterestedPeerATurn) {
  // One slot, three peers: over three rotations each gets it once, in the order they waited.
  const ChokePolicy pol{1, false, seconds(10)};
  Peers p(3);
  Clock::time_point t{};
  for (size_t i = 0; i < 3; ++i)
    p.interest(i, t + milliseconds(i));
  p.update(pol, t, ChokeStep::kSettle);
  std::vector<size_t> order;
  for (int round = 1; round <= 6; ++round) {
    for (size_t i = 0; i < 3; ++i) {
      if (p.s[i].unchoked) order.push_back(i);
    }
    EXPECT_EQ(p.unchoked(), 1u);
    p.update(pol, t + seconds(10 * round), ChokeStep::kRotate);
  }
  EXPECT_EQ(order, (std::vector<size_t>{0, 1, 2, 0, 1, 2}));
}

TEST(Choker, ASlotJustGivenIsKeptAtTheNextRotation) {
  const ChokePolicy pol{1, false, seconds(10)};
  Peers p(2);
  Clock::time_point t{};
  p.interest(0, t);
  p.update(pol, t, ChokeStep::kSettle);
  // Peer 0 leaves its slot at 8 s; peer 1 gets it then and keeps it at the rotation at 10 s.
  p.interest(1, t + seconds(1));
  p.s[0].interested = false;
  p.update(pol, t + seconds(8), ChokeStep::kSettle);
  EXPECT_TRUE(p.s[1].unchoked);
  p.interest(0, t + seconds(9));
  p.update(pol, t + seconds(10), ChokeStep::kRotate);
  EXPECT_TRUE(p.s[1].unchoked);
  EXPECT_FALSE(p.s[0].unchoked);
  p.update(pol, t + seconds(20), ChokeStep::kRotate);
  EXPECT_TRUE(p.s[0].unchoked);
  EXPECT_FALSE(p.s[1].unchoked);
}

TEST(Choker, NoRotationWhenNobodyWaits) {
  const ChokePolicy pol{3, false, seconds(10)};
  Peers p(3);
  Clock::time_point t{};
  for (size_t i = 0; i < 3; ++i)
    p.interest(i, t);
  p.update(pol, t, ChokeStep::kSettle);
  const auto since = p.s[0].since;
  p.update(pol, t + seconds(60), ChokeStep::kRotate);
  EXPECT_EQ(p.unchoked(), 3u);
  EXPECT_EQ(p.s[0].since, since);
}

TEST(Choker, OptimisticSlotMovesOnItsOwn) {
  const ChokePolicy pol{1, true, seconds(10)};
  Peers p(4);
  Clock::time_point t{};
  for (size_t i = 0; i < 4; ++i)
    p.interest(i, t + milliseconds(i));
  p.update(pol, t + milliseconds(10), ChokeStep::kSettle);
  EXPECT_EQ(p.unchoked(), 2u);  // one regular slot and the optimistic one
  EXPECT_TRUE(p.s[0].unchoked && !p.s[0].optimistic);
  EXPECT_TRUE(p.s[1].optimistic);
  // A regular rotation leaves the optimistic peer alone.
  p.update(pol, t + seconds(10), ChokeStep::kRotate);
  EXPECT_TRUE(p.s[1].optimistic);
  EXPECT_TRUE(p.s[2].unchoked);  // peer 2 waited longest for the regular slot
  // The optimistic rotation moves it to the peer that waited longest (3), and 1 waits again.
  p.update(pol, t + seconds(30), ChokeStep::kRotateOptimistic);
  EXPECT_TRUE(p.s[3].optimistic);
  EXPECT_FALSE(p.s[1].unchoked);
  EXPECT_EQ(p.unchoked(), 2u);
  // Switched off on reload: the optimistic peer is choked.
  p.update(ChokePolicy{1, false, seconds(10)}, t + seconds(31), ChokeStep::kSettle);
  EXPECT_EQ(p.unchoked(), 1u);
  EXPECT_FALSE(p.s[3].unchoked);
}

TEST(Choker, FewerSlotsOnReloadChokeTheLongestHolders) {
  ChokePolicy pol{3, false, seconds(10)};
  Peers p(3);
  Clock::time_point t{};
  for (size_t i = 0; i < 3; ++i) {
    p.interest(i, t);
    p.update(pol, t + seconds(i), ChokeStep::kSettle);
  }
  pol.slots = 1;
  p.update(pol, t + seconds(5), ChokeStep::kSettle);
  EXPECT_EQ(p.unchoked(), 1u);
  EXPECT_TRUE(p.s[2].unchoked);  // got its slot last
}

TEST(TokenBucket, UnlimitedAlwaysReady) {
  TokenBucket b;
  const Clock::time_point t{};
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(b.ready(0, t));
    b.take(0, 1 << 20);
  }
  EXPECT_EQ(b.wait(0), Clock::duration::zero());
}

TEST(TokenBucket, LongRunRateIsTheLimit) {
  // 100 KiB/s, 16 KiB blocks, over 10 simulated seconds in 1 ms steps.
  const uint64_t rate = 100 * 1024;
  TokenBucket b;
  Clock::time_point t{};
  uint64_t sent = 0;
  for (int ms = 0; ms <= 10'000; ++ms) {
    const auto now = t + milliseconds(ms);
    while (b.ready(rate, now)) {
      b.take(rate, 16384);
      sent += 16384;
    }
  }
  // A quarter second of burst and one block of debt at most on top of 10 s of the rate.
  EXPECT_GE(sent, 10 * rate);
  EXPECT_LE(sent, 10 * rate + rate / 4 + 16384);
}

TEST(TokenBucket, DebtIsWaitedOff) {
  const uint64_t rate = 1000;
  TokenBucket b;
  Clock::time_point t{};
  ASSERT_TRUE(b.ready(rate, t));  // starts with a quarter second: 250 bytes
  b.take(rate, 16384);            // a block bigger than the burst still goes
  EXPECT_FALSE(b.ready(rate, t));
  const auto w = b.wait(rate);
  EXPECT_GT(w, seconds(16));
  EXPECT_LT(w, seconds(17));
  EXPECT_FALSE(b.ready(rate, t + seconds(15)));
  EXPECT_TRUE(b.ready(rate, t + seconds(17)));
}

}  // namespace
}  // namespace evert::everseed
