#include "login_limiter.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cmath>
#include <cstring>

namespace evert::web {

LoginLimiter::LoginLimiter(Options options, Clock clock) : clock_(std::move(clock)) {
  if (!clock_) clock_ = [] { return std::chrono::steady_clock::now(); };
  set_options(options);
}

void LoginLimiter::set_options(const Options& options) {
  options_ = options;
  options_.failures = std::max(options_.failures, 1);
  options_.refill_seconds = std::max(options_.refill_seconds, 1);
  options_.max_addresses = std::max<size_t>(options_.max_addresses, 1);
  for (Bucket& b : order_)
    b.tokens = std::min(b.tokens, static_cast<double>(options_.failures));
  while (order_.size() > options_.max_addresses) {
    index_.erase(order_.back().key);
    order_.pop_back();
  }
}

double LoginLimiter::tokens_now(const Bucket& b) const {
  const double elapsed = std::chrono::duration<double>(clock_() - b.updated).count();
  const double refilled = b.tokens + std::max(elapsed, 0.0) / options_.refill_seconds;
  return std::min(refilled, static_cast<double>(options_.failures));
}

int LoginLimiter::retry_after_seconds(std::string_view address) const {
  auto it = index_.find(key_of(address));
  if (it == index_.end()) return 0;
  const double tokens = tokens_now(*it->second);
  if (tokens >= 1) return 0;
  return std::max(1, static_cast<int>(std::ceil((1 - tokens) * options_.refill_seconds)));
}

void LoginLimiter::record_failure(std::string_view address) {
  std::string key = key_of(address);
  auto it = index_.find(key);
  if (it == index_.end()) {
    order_.push_front(Bucket{std::move(key), static_cast<double>(options_.failures), clock_()});
    index_.emplace(order_.front().key, order_.begin());
    while (order_.size() > options_.max_addresses) {
      index_.erase(order_.back().key);
      order_.pop_back();
    }
  } else {
    order_.splice(order_.begin(), order_, it->second);
  }
  Bucket& b = order_.front();
  b.tokens = std::max(tokens_now(b) - 1, 0.0);
  b.updated = clock_();
}

void LoginLimiter::record_success(std::string_view address) {
  auto it = index_.find(key_of(address));
  if (it == index_.end()) return;
  Bucket& b = *it->second;
  b.tokens = std::min(tokens_now(b) + 1, static_cast<double>(options_.failures));
  b.updated = clock_();
  if (b.tokens >= options_.failures) {  // a full bucket is the same as none
    order_.erase(it->second);
    index_.erase(it);
  }
}

std::string LoginLimiter::key_of(std::string_view address) {
  constexpr size_t kMaxKey = 64;
  std::string a(address.substr(0, 128));
  if (a.size() >= 2 && a.front() == '[' && a.back() == ']') a = a.substr(1, a.size() - 2);
  if (const size_t zone = a.find('%'); zone != std::string::npos) a.resize(zone);
  in_addr v4{};
  if (inet_pton(AF_INET, a.c_str(), &v4) == 1) {
    char text[INET_ADDRSTRLEN];
    return inet_ntop(AF_INET, &v4, text, sizeof text);
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, a.c_str(), &v6) == 1) {
    static const unsigned char kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(v6.s6_addr, kMapped, sizeof kMapped) == 0) {
      std::memcpy(&v4, v6.s6_addr + 12, 4);
      char text[INET_ADDRSTRLEN];
      return inet_ntop(AF_INET, &v4, text, sizeof text);
    }
    std::memset(v6.s6_addr + 8, 0, 8);
    char text[INET6_ADDRSTRLEN];
    return std::string(inet_ntop(AF_INET6, &v6, text, sizeof text)) + "/64";
  }
  return std::string(address.substr(0, kMaxKey));
}

}  // namespace evert::web
