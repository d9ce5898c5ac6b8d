// The web module's brake on password guessing: a failure budget per client address.
//
// Each address (an IPv6 one counts as its /64: one host usually holds the whole prefix) has a
// bucket of `failures` attempts that refills by one every `refill_seconds`: five wrong passwords
// in a row, then one more every 30 s by default. Accounts::login_async charges an attempt when
// it starts, so concurrent guesses from one address cannot overtake the budget, and gives it back
// when the password was right; a success never gives back more than its own attempt took, so
// logging into one's own account does not buy guesses at another's.
//
// Memory is bounded: at most `max_addresses` buckets (about 100 bytes each), the one changed
// longest ago dropped first. An attacker holding more prefixes than that can push its own
// buckets out; the limit on hashes in flight (Accounts) still bounds its rate overall.
//
// Pure logic, no I/O; the clock is injectable for tests. Thread-safety: one thread (the loop).
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <list>
#include <string>
#include <string_view>
#include <unordered_map>

namespace evert::web {

struct LoginLimiterOptions {
  int failures = 5;         // the budget of a fresh address (at least 1)
  int refill_seconds = 30;  // one attempt back per this many seconds (at least 1)
  size_t max_addresses = 10'000;
};

class LoginLimiter {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;
  using Options = LoginLimiterOptions;

  explicit LoginLimiter(Options options = {}, Clock clock = {});

  // New limits (reload). Buckets keep what they hold, clamped to the new budget.
  void set_options(const Options& options);

  // Seconds until `address` may try again; 0 when it may now.
  [[nodiscard]] int retry_after_seconds(std::string_view address) const;
  // Takes one attempt from the address's budget (a failed login, or one that starts).
  void record_failure(std::string_view address);
  // Gives back the one attempt a successful login was charged, never more than the budget.
  // Does nothing for an address that has no bucket (never failed, or dropped).
  void record_success(std::string_view address);

  // Buckets held (tests, status).
  [[nodiscard]] size_t size() const { return index_.size(); }

  // The key an address is counted under: an IPv4 address as it is ("::ffff:a.b.c.d" as
  // "a.b.c.d"), an IPv6 one as its /64 ("2001:db8:1:2::/64"; brackets and a zone are ignored),
  // anything else (not an address) as its first 64 bytes.
  [[nodiscard]] static std::string key_of(std::string_view address);

 private:
  struct Bucket {
    std::string key;
    double tokens = 0;  // attempts left, refilled lazily from `updated`
    std::chrono::steady_clock::time_point updated;
  };
  [[nodiscard]] double tokens_now(const Bucket& b) const;

  Options options_;
  Clock clock_;
  std::list<Bucket> order_;  // most recently changed first
  std::unordered_map<std::string, std::list<Bucket>::iterator> index_;
};

}  // namespace evert::web
