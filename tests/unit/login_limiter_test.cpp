#include "login_limiter.h"

#include <gtest/gtest.h>

namespace evert::web {
namespace {

using std::chrono::seconds;

struct FakeClock {
  std::chrono::steady_clock::time_point now{std::chrono::hours(1000)};
  LoginLimiter::Clock fn() {
    return [this] { return now; };
  }
};

TEST(LoginLimiter, FiveFailuresThenOneMorePerRefill) {
  FakeClock clock;
  LoginLimiter l({5, 30, 100}, clock.fn());
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(l.retry_after_seconds("192.0.2.1"), 0) << i;
    l.record_failure("192.0.2.1");
  }
  EXPECT_EQ(l.retry_after_seconds("192.0.2.1"), 30);
  EXPECT_EQ(l.retry_after_seconds("192.0.2.2"), 0);  // another address is not held back
  clock.now += seconds(29);
  EXPECT_EQ(l.retry_after_seconds("192.0.2.1"), 1);
  clock.now += seconds(1);
  EXPECT_EQ(l.retry_after_seconds("192.0.2.1"), 0);
  l.record_failure("192.0.2.1");
  EXPECT_EQ(l.retry_after_seconds("192.0.2.1"), 30);
  // A long pause refills the whole budget, and no more than it.
  clock.now += std::chrono::hours(10);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(l.retry_after_seconds("192.0.2.1"), 0) << i;
    l.record_failure("192.0.2.1");
  }
  EXPECT_GT(l.retry_after_seconds("192.0.2.1"), 0);
}

TEST(LoginLimiter, ASuccessGivesBackOnlyTheAttemptItWasChargedFor) {
  FakeClock clock;
  LoginLimiter l({2, 30, 100}, clock.fn());
  // The pattern an attacker with an account of its own would use: guess, log in, guess...
  l.record_failure("198.51.100.7");  // a wrong guess: 1 left
  l.record_failure("198.51.100.7");  // its own login, charged when it starts: 0 left
  l.record_success("198.51.100.7");  // ... and right: 1 left again
  EXPECT_EQ(l.retry_after_seconds("198.51.100.7"), 0);
  l.record_failure("198.51.100.7");  // another guess: 0 left
  EXPECT_EQ(l.retry_after_seconds("198.51.100.7"), 30);
  // Successes never fill more than the budget, and a full bucket is dropped.
  for (int i = 0; i < 5; ++i)
    l.record_success("198.51.100.7");
  EXPECT_EQ(l.size(), 0u);
  l.record_success("203.0.113.9");  // no bucket: nothing happens
  EXPECT_EQ(l.size(), 0u);
}

TEST(LoginLimiter, MemoryIsBoundedAndTheOldestBucketGoesFirst) {
  FakeClock clock;
  LoginLimiter l({1, 30, 3}, clock.fn());
  for (const char* a : {"10.0.0.1", "10.0.0.2", "10.0.0.3"}) {
    l.record_failure(a);
    clock.now += seconds(1);
  }
  l.record_failure("10.0.0.1");  // 10.0.0.1 is now the most recent
  EXPECT_EQ(l.size(), 3u);
  l.record_failure("10.0.0.4");  // drops 10.0.0.2, changed longest ago
  EXPECT_EQ(l.size(), 3u);
  EXPECT_EQ(l.retry_after_seconds("10.0.0.2"), 0);
  EXPECT_GT(l.retry_after_seconds("10.0.0.1"), 0);
  EXPECT_GT(l.retry_after_seconds("10.0.0.3"), 0);
  EXPECT_GT(l.retry_after_seconds("10.0.0.4"), 0);
  for (int i = 0; i < 10'000; ++i)
    l.record_failure("172.16." + std::to_string(i / 256) + "." + std::to_string(i % 256));
  EXPECT_EQ(l.size(), 3u);
}

TEST(LoginLimiter, IPv6AddressesCountPerSlash64) {
  EXPECT_EQ(LoginLimiter::key_of("2001:db8:1:2:aaaa:bbbb:cccc:dddd"), "2001:db8:1:2::/64");
  EXPECT_EQ(LoginLimiter::key_of("[2001:db8:1:2::1]"), "2001:db8:1:2::/64");
  EXPECT_EQ(LoginLimiter::key_of("fe80::1%eth0"), "fe80::/64");
  EXPECT_EQ(LoginLimiter::key_of("::1"), "::/64");
  EXPECT_EQ(LoginLimiter::key_of("::ffff:192.0.2.1"), "192.0.2.1");  // IPv4-mapped
  EXPECT_EQ(LoginLimiter::key_of("192.0.2.1"), "192.0.2.1");
  EXPECT_EQ(LoginLimiter::key_of("not an address"), "not an address");
  EXPECT_EQ(LoginLimiter::key_of(std::string(500, 'x')).size(), 64u);  // bounded

  FakeClock clock;
  LoginLimiter l({2, 30, 100}, clock.fn());
  l.record_failure("2001:db8:1:2::1");
  l.record_failure("2001:db8:1:2:ffff::2");  // the same /64
  EXPECT_GT(l.retry_after_seconds("2001:db8:1:2::3"), 0);
  EXPECT_EQ(l.retry_after_seconds("2001:db8:1:3::1"), 0);  // the next /64
  EXPECT_EQ(l.size(), 1u);
}

TEST(LoginLimiter, NewOptionsApplyToBucketsHeld) {
  FakeClock clock;
  LoginLimiter l({5, 30, 100}, clock.fn());
  l.record_failure("192.0.2.1");  // 4 left
  l.set_options({2, 10, 100});    // clamped to 2
  l.record_failure("192.0.2.1");
  l.record_failure("192.0.2.1");
  EXPECT_EQ(l.retry_after_seconds("192.0.2.1"), 10);
  l.set_options({0, 0, 0});  // nonsense is clamped to 1 attempt, 1 s, 1 address
  EXPECT_EQ(l.size(), 1u);
  EXPECT_EQ(l.retry_after_seconds("192.0.2.1"), 1);
}

}  // namespace
}  // namespace evert::web
