// The everseed's announce schedule (modules/everseed/src/announce_schedule): one queue over every
// (torrent, tracker), BEP 12 tiers, intervals clamped, exponential backoff, the per-tracker
// breaker, removal with event=stopped, this daemon's own tracker dropped. Virtual time only.
#include "announce_schedule.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

namespace evert::everseed {
namespace {

using tracker_client::AnnounceReply;
using tracker_client::Event;

constexpr int64_t kT0 = 1'700'000'000;

InfoHash hash_of(int i) {
  InfoHash h;
  h.bytes.fill(0);
  h.bytes[0] = static_cast<uint8_t>(i);
  h.bytes[1] = static_cast<uint8_t>(i >> 8);
  h.bytes[2] = static_cast<uint8_t>(i >> 16);
  h.bytes[19] = 1;
  return h;
}

AnnounceReply reply(uint32_t interval, uint32_t min_interval = 0) {
  AnnounceReply r;
  r.interval = interval;
  r.min_interval = min_interval;
  r.seeders = 7;
  r.leechers = 2;
  return r;
}

ScheduleOptions options() {
  ScheduleOptions o;
  o.min_interval = 300;
  o.max_interval = 3600;
  o.retry_min = 60;
  return o;
}

// Every job due at `now`.
std::vector<AnnounceJob> pop_all(AnnounceSchedule& s, int64_t now) {
  std::vector<AnnounceJob> jobs;
  while (auto j = s.pop(now))
    jobs.push_back(*j);
  return jobs;
}

TEST(AnnounceSchedule, NothingKeptWithoutTrackers) {
  AnnounceSchedule s(options());
  EXPECT_FALSE(s.add(hash_of(1), {}, kT0));
  EXPECT_FALSE(s.add(hash_of(1), {{}, {}}, kT0));
  EXPECT_EQ(s.torrents(), 0u);
  EXPECT_EQ(s.slots(), 0u);
  EXPECT_FALSE(s.next_due());
  EXPECT_FALSE(s.pop(kT0 + 1'000'000));
}

TEST(AnnounceSchedule, EveryTierAtOnceOneTrackerPerTier) {
  AnnounceSchedule s(options());
  ASSERT_TRUE(s.add(hash_of(1), {{"http://a/announce", "http://b/announce"}, {"udp://c:1"}}, kT0));
  EXPECT_TRUE(s.add(hash_of(1), {{"http://z/announce"}}, kT0));  // idempotent: unchanged
  EXPECT_EQ(s.slots(), 3u);
  EXPECT_EQ(s.next_due(), kT0);
  EXPECT_FALSE(s.pop(kT0 - 1));
  auto jobs = pop_all(s, kT0);
  ASSERT_EQ(jobs.size(), 2u);  // a (tier 0) and c (tier 1); b waits behind a
  std::vector<std::string> urls = {jobs[0].url, jobs[1].url};
  std::sort(urls.begin(), urls.end());
  EXPECT_EQ(urls, (std::vector<std::string>{"http://a/announce", "udp://c:1"}));
  for (const auto& j : jobs)
    EXPECT_EQ(j.event, Event::kStarted);
  auto view = s.describe(hash_of(1));
  ASSERT_EQ(view.size(), 3u);
  EXPECT_EQ(view[0].state, "announcing");
  EXPECT_EQ(view[1].state, "standby");
  EXPECT_EQ(view[1].tier, 0u);
  EXPECT_EQ(view[2].tier, 1u);
  EXPECT_EQ(view[1].seeders, -1);  // unknown until a tracker says
  EXPECT_EQ(view[1].leechers, -1);
}

TEST(AnnounceSchedule, IntervalsAreClampedAndTheNextAnnounceHasNoEvent) {
  AnnounceSchedule s(options());
  s.add(hash_of(1), {{"http://a/"}}, kT0);
  auto j = s.pop(kT0);
  ASSERT_TRUE(j);
  s.succeeded(*j, reply(5), kT0);  // too short: min_interval
  EXPECT_EQ(s.next_due(), kT0 + 300);
  auto v = s.describe(hash_of(1)).at(0);
  EXPECT_EQ(v.state, "working");
  EXPECT_EQ(v.seeders, 7);
  EXPECT_EQ(v.leechers, 2);
  EXPECT_EQ(v.last, kT0);
  EXPECT_EQ(v.next, kT0 + 300);
  EXPECT_EQ(v.interval, 300u);

  j = s.pop(kT0 + 300);
  ASSERT_TRUE(j);
  EXPECT_EQ(j->event, Event::kNone);
  s.succeeded(*j, reply(1'000'000), kT0 + 300);  // too long: max_interval
  EXPECT_EQ(s.next_due(), kT0 + 300 + 3600);

  j = s.pop(kT0 + 3900);
  s.succeeded(*j, reply(400, 900), kT0 + 3900);  // min interval above interval wins
  EXPECT_EQ(s.next_due(), kT0 + 3900 + 900);

  j = s.pop(kT0 + 4800);
  s.succeeded(*j, reply(0), kT0 + 4800);  // none given: the default
  EXPECT_EQ(s.next_due(), kT0 + 4800 + options().default_interval);

  j = s.pop(kT0 + 6600);
  s.succeeded(*j, reply(1800, 7200), kT0 + 6600);  // the tracker's minimum beats our maximum
  EXPECT_EQ(s.next_due(), kT0 + 6600 + 7200);
}

TEST(AnnounceSchedule, FailuresBackOffExponentiallyUpToTheMaximum) {
  AnnounceSchedule s(options());
  s.add(hash_of(1), {{"http://a/"}}, kT0);
  int64_t now = kT0;
  const std::vector<int64_t> waits = {60, 120, 240, 480, 960, 1920, 3600, 3600};
  for (size_t i = 0; i < waits.size(); ++i) {
    auto j = s.pop(now);
    ASSERT_TRUE(j) << i;
    EXPECT_EQ(j->event, Event::kStarted);  // never answered: still "started"
    s.failed(*j, "refused: nope", /*unreachable=*/false, now);
    ASSERT_EQ(s.next_due(), now + waits[i]) << i;
    auto v = s.describe(hash_of(1)).at(0);
    EXPECT_EQ(v.state, "failing");
    EXPECT_EQ(v.failures, i + 1);
    EXPECT_EQ(v.error, "refused: nope");
    now += waits[i];
  }
  auto j = s.pop(now);
  s.succeeded(*j, reply(1800), now);
  auto v = s.describe(hash_of(1)).at(0);
  EXPECT_EQ(v.failures, 0u);
  EXPECT_TRUE(v.error.empty());
  EXPECT_EQ(v.state, "working");
}

TEST(AnnounceSchedule, Bep12TierFailsOverAndTheWorkingTrackerMovesToTheFront) {
  AnnounceSchedule s(options());
  s.add(hash_of(1), {{"http://a/", "http://b/", "http://c/"}}, kT0);
  auto j = s.pop(kT0);
  ASSERT_EQ(j->url, "http://a/");
  s.failed(*j, "down", true, kT0);
  j = s.pop(kT0);  // the next of the tier at once
  ASSERT_TRUE(j);
  ASSERT_EQ(j->url, "http://b/");
  s.succeeded(*j, reply(1800), kT0);
  auto v = s.describe(hash_of(1));
  ASSERT_EQ(v.size(), 3u);
  EXPECT_EQ(v[0].url, "http://b/");  // moved to the front
  EXPECT_EQ(v[1].url, "http://a/");
  EXPECT_EQ(v[2].url, "http://c/");
  EXPECT_EQ(v[1].state, "failing");
  EXPECT_EQ(v[2].state, "standby");
  EXPECT_FALSE(s.pop(kT0 + 1799));
  j = s.pop(kT0 + 1800);
  EXPECT_EQ(j->url, "http://b/");
  // b fails, a fails again, c fails: the whole tier waits, then starts over at its front.
  s.failed(*j, "x", false, kT0 + 1800);
  j = s.pop(kT0 + 1800);
  EXPECT_EQ(j->url, "http://a/");
  s.failed(*j, "x", false, kT0 + 1800);
  j = s.pop(kT0 + 1800);
  EXPECT_EQ(j->url, "http://c/");
  s.failed(*j, "x", false, kT0 + 1800);
  EXPECT_FALSE(s.pop(kT0 + 1800));
  EXPECT_EQ(s.next_due(), kT0 + 1800 + 60);  // the fewest failures in the tier: one
  j = s.pop(kT0 + 1860);
  EXPECT_EQ(j->url, "http://b/");
}

TEST(AnnounceSchedule, ABreakerSparesADeadTrackerAndOthersGoOn) {
  AnnounceSchedule s(options());
  constexpr int kTorrents = 50;
  for (int i = 0; i < kTorrents; ++i)
    s.add(hash_of(i), {{"udp://dead:1"}, {"http://alive/"}}, kT0);
  EXPECT_EQ(s.trackers(), 2u);  // URLs are kept once
  // Three announces to the dead tracker get no answer; the rest due now fail without I/O.
  int returned_dead = 0, returned_alive = 0;
  while (auto j = s.pop(kT0)) {
    if (j->url == "udp://dead:1") {
      ++returned_dead;
      s.failed(*j, "no answer from 10.0.0.1:1 after 3 tries", true, kT0);
    } else {
      ++returned_alive;
      s.succeeded(*j, reply(1800), kT0);
    }
  }
  EXPECT_EQ(returned_alive, kTorrents);
  EXPECT_EQ(returned_dead, static_cast<int>(AnnounceSchedule::kBreakerFailures));
  auto v = s.describe(hash_of(kTorrents - 1));
  EXPECT_EQ(v[0].state, "failing");
  EXPECT_NE(v[0].error.find("not retried yet"), std::string::npos) << v[0].error;
  EXPECT_EQ(v[1].state, "working");
  // After the breaker's backoff, the dead tracker is tried again.
  const int64_t later = kT0 + s.backoff(1);
  auto j = s.pop(later);
  ASSERT_TRUE(j);
  EXPECT_EQ(j->url, "udp://dead:1");
  // It answers: the breaker resets and everyone may announce again.
  s.succeeded(*j, reply(1800), later);
  int back = 0;
  for (int64_t t = later; t <= later + 1800; t += 60) {
    while (auto k = s.pop(t)) {
      if (k->url == "udp://dead:1") ++back;
      s.succeeded(*k, reply(1800), t);
    }
  }
  EXPECT_EQ(back, kTorrents - 1 + kTorrents);  // the others, then everyone's next interval
}

TEST(AnnounceSchedule, RefusalsDoNotTripTheBreaker) {
  AnnounceSchedule s(options());
  for (int i = 0; i < 10; ++i)
    s.add(hash_of(i), {{"http://private/"}}, kT0);
  int returned = 0;
  while (auto j = s.pop(kT0)) {
    ++returned;
    s.failed(*j, "refused: unregistered torrent", false, kT0);
  }
  EXPECT_EQ(returned, 10);
}

TEST(AnnounceSchedule, RemoveSaysStoppedWhereListedAndForgetsEverything) {
  AnnounceSchedule s(options());
  s.add(hash_of(1), {{"http://a/"}, {"http://b/"}, {"http://c/"}}, kT0);
  auto jobs = pop_all(s, kT0);
  ASSERT_EQ(jobs.size(), 3u);
  for (const auto& j : jobs) {
    if (j.url == "http://a/") s.succeeded(j, reply(1800), kT0);
    if (j.url == "http://b/") s.failed(j, "x", false, kT0);
    // c stays in flight
  }
  std::vector<AnnounceJob> stopped;
  EXPECT_TRUE(s.remove(hash_of(1), &stopped));
  EXPECT_FALSE(s.remove(hash_of(1), &stopped));
  ASSERT_EQ(stopped.size(), 1u);
  EXPECT_EQ(stopped[0].url, "http://a/");
  EXPECT_EQ(stopped[0].event, Event::kStopped);
  EXPECT_EQ(stopped[0].entry, AnnounceJob::kNoEntry);
  EXPECT_EQ(s.torrents(), 0u);
  EXPECT_EQ(s.slots(), 0u);
  EXPECT_EQ(s.trackers(), 0u);
  EXPECT_TRUE(s.describe(hash_of(1)).empty());
  // The job in flight finishes after the torrent is gone: ignored.
  for (const auto& j : jobs)
    if (j.url == "http://c/") s.succeeded(j, reply(1800), kT0 + 1);
  EXPECT_FALSE(s.next_due());  // its queued items are stale and skipped
  EXPECT_FALSE(s.pop(kT0 + 100'000));

  // A new torrent reuses the entry: the old job does not touch it.
  s.add(hash_of(2), {{"http://c/"}}, kT0 + 2);
  for (const auto& j : jobs)
    if (j.url == "http://c/") s.failed(j, "late", true, kT0 + 3);
  auto v = s.describe(hash_of(2));
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].failures, 0u);
  EXPECT_EQ(s.pop(kT0 + 2)->key, hash_of(2));
}

TEST(AnnounceSchedule, OwnTrackerIsDroppedAndTheTierGoesOn) {
  AnnounceSchedule s(options());
  s.add(hash_of(1), {{"http://ours/", "http://theirs/"}}, kT0);
  auto j = s.pop(kT0);
  ASSERT_EQ(j->url, "http://ours/");
  s.drop(*j, kT0);
  EXPECT_EQ(s.slots(), 1u);
  j = s.pop(kT0);
  ASSERT_TRUE(j);
  EXPECT_EQ(j->url, "http://theirs/");
  s.drop(*j, kT0);  // the last one: the torrent has no state left
  EXPECT_EQ(s.torrents(), 0u);
  EXPECT_EQ(s.trackers(), 0u);
  EXPECT_FALSE(s.pop(kT0 + 100'000));
}

TEST(AnnounceSchedule, RepeatedUrlsAreKeptOnce) {
  AnnounceSchedule s(options());
  s.add(hash_of(1), {{"http://a/", "http://a/"}, {"http://a/"}, {"http://b/"}}, kT0);
  EXPECT_EQ(s.slots(), 2u);
  auto v = s.describe(hash_of(1));
  EXPECT_EQ(v[0].tier, 0u);
  EXPECT_EQ(v[1].tier, 2u);  // tiers keep their numbers in the torrent
}

TEST(AnnounceSchedule, ListedTrackersForStop) {
  AnnounceSchedule s(options());
  s.add(hash_of(1), {{"udp://a:1"}, {"udp://b:1"}}, kT0);
  for (const auto& j : pop_all(s, kT0)) {
    if (j.url == "udp://a:1") s.succeeded(j, reply(1800), kT0);
  }
  std::vector<std::string> listed;
  s.for_each_listed([&](const InfoHash& k, const std::string& url) {
    EXPECT_EQ(k, hash_of(1));
    listed.push_back(url);
    return true;
  });
  EXPECT_EQ(listed, std::vector<std::string>{"udp://a:1"});
}

// Many torrents: the queue pops in time order and nothing is lost or announced twice.
TEST(AnnounceSchedule, HundredThousandTorrentsInOrder) {
  AnnounceSchedule s(options());
  constexpr int kN = 100'000;
  for (int i = 0; i < kN; ++i)
    ASSERT_TRUE(s.add(hash_of(i), {{"http://a/"}, {"udp://b:1"}}, kT0 + i % 1000));
  EXPECT_EQ(s.torrents(), static_cast<size_t>(kN));
  EXPECT_EQ(s.slots(), static_cast<size_t>(2 * kN));
  EXPECT_EQ(s.trackers(), 2u);
  int64_t last = 0;
  size_t n = 0;
  for (int64_t t = kT0; t <= kT0 + 1000; t += 10) {
    while (auto j = s.pop(t)) {
      ++n;
      s.succeeded(*j, reply(1800), t);
      last = t;
    }
  }
  EXPECT_EQ(n, static_cast<size_t>(2 * kN));
  EXPECT_EQ(last, kT0 + 1000);
  EXPECT_EQ(s.queued(), static_cast<size_t>(2 * kN));  // one item per tier, no stale ones
  EXPECT_EQ(s.next_due(), kT0 + 1800);
}

}  // namespace
}  // namespace evert::everseed
