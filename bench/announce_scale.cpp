// The everseed's announce schedule at DESIGN.md's scale ("Every torrent, forever"): memory per
// torrent with external trackers, and how fast the one queue hands out and takes back
// announces. No network: the schedule is pure logic; what the network costs is the trackers'.
//
//   build/bench/announce_scale [TORRENTS [TIERS [DISTINCT_TRACKERS]]]
//
// Defaults: 1,000,000 torrents, 2 tiers of one tracker each, drawn from 1,000 distinct URLs.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "announce_schedule.h"

namespace {

long rss_kib() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
  }
  return 0;
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

int main(int argc, char** argv) {
  using namespace evert::everseed;
  const long n = argc > 1 ? std::atol(argv[1]) : 1'000'000;
  const long tiers = argc > 2 ? std::atol(argv[2]) : 2;
  const long distinct = argc > 3 ? std::atol(argv[3]) : 1000;
  if (n <= 0 || tiers <= 0 || distinct <= 0) {
    std::fprintf(stderr, "usage: announce_scale [TORRENTS [TIERS [DISTINCT_TRACKERS]]]\n");
    return 2;
  }
  std::vector<std::string> urls;
  for (long i = 0; i < distinct; ++i)
    urls.push_back("udp://tracker-" + std::to_string(i) + ".example.org:6969/announce");

  const int64_t t0 = 1'700'000'000;
  const long before = rss_kib();
  AnnounceSchedule s;
  auto start = std::chrono::steady_clock::now();
  for (long i = 0; i < n; ++i) {
    InfoHash h;
    for (int b = 0; b < 8; ++b)
      h.bytes[b] = static_cast<uint8_t>(i >> (8 * b));
    std::vector<std::vector<std::string>> t;
    for (long k = 0; k < tiers; ++k)
      t.push_back({urls[static_cast<size_t>((i * 7 + k * 13) % distinct)]});
    s.add(h, t, t0 + i % 1800);  // spread over half an hour, as a running daemon has them
  }
  const double add_s = seconds_since(start);
  const long after = rss_kib();

  // Every announce once: pop, answer with a 1800 s interval.
  start = std::chrono::steady_clock::now();
  evert::tracker_client::AnnounceReply reply;
  reply.interval = 1800;
  reply.seeders = 3;
  reply.leechers = 1;
  size_t done = 0;
  for (int64_t now = t0; now < t0 + 1800; ++now) {
    while (auto j = s.pop(now)) {
      s.succeeded(*j, reply, now);
      ++done;
    }
  }
  const double run_s = seconds_since(start);
  const long after_run = rss_kib();

  std::printf("announce schedule: %ld torrents x %ld tiers, %ld distinct trackers\n", n, tiers,
              distinct);
  std::printf("  slots %zu, queue items %zu, interned URLs %zu\n", s.slots(), s.queued(),
              s.trackers());
  std::printf("  memory: %.1f MiB for the torrents, %.0f bytes per torrent (%.0f per slot)\n",
              static_cast<double>(after - before) / 1024.0,
              static_cast<double>(after - before) * 1024.0 / static_cast<double>(n),
              static_cast<double>(after - before) * 1024.0 / static_cast<double>(s.slots()));
  std::printf("  after one announce each: %.1f MiB (%.0f bytes per torrent)\n",
              static_cast<double>(after_run - before) / 1024.0,
              static_cast<double>(after_run - before) * 1024.0 / static_cast<double>(n));
  std::printf("  add: %.2f s (%.0f torrents/s); pop + answer: %zu announces in %.2f s (%.0f/s)\n",
              add_s, static_cast<double>(n) / add_s, done, run_s,
              static_cast<double>(done) / run_s);
  return done == s.slots() ? 0 : 1;
}
