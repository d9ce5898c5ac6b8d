// When the everseed announces which torrent to which tracker: the state of every (torrent,
// external tracker) pair and one time-ordered queue over all of them (DESIGN.md, "Every
// torrent, forever"). Pure logic with an injected clock (every call takes `now`, unix seconds):
// no sockets, no timers; the Announcer drives it and does the I/O.
//
// BEP 12 tiers: every tier is announced to (the everseed wants to be listed in every swarm the
// torrent names), but within a tier the trackers are alternatives: one at a time, in order; when
// one fails the next is tried at once, when the whole tier failed the first is retried after a
// backoff, and a tracker that answers moves to the front of its tier.
//
// Timing: after an answer, the tracker's interval clamped to [min_interval, max_interval], but
// never shorter than the tracker's own "min interval"; after a failure, retry_min * 2^(failures-1)
// capped at max_interval. A tracker that failed kBreakerFailures times in a row at the network
// level (no answer at all) is not contacted again before its own backoff passes: the announces due
// in that time fail at once with its last error, so a dead tracker named by a million torrents
// costs a few probes, not a million timeouts.
//
// Memory: a torrent with external trackers costs an index entry, a 20-byte key, a vector of
// 32-byte slots (one per tracker) and a 12-byte queue item per tier; tracker URLs and messages
// are interned once, shared by every torrent that names them. Torrents without external
// trackers are not here at all.
//
// Thread-safety: none; the loop thread only.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "evert/tracker/types.h"
#include "evert/tracker_client.h"

namespace evert::everseed {

using tracker::InfoHash;

struct ScheduleOptions {
  uint32_t min_interval = 300;       // seconds: the shortest interval honoured
  uint32_t max_interval = 3600;      // seconds: the longest; also the cap of the backoff
  uint32_t retry_min = 60;           // seconds to the first retry after a failure
  uint32_t default_interval = 1800;  // when a reply gives no interval (UDP always does)
};

// Strings shared by many slots (tracker URLs, error messages), with reference counts; id 0 is
// "none".
class Interner {
 public:
  uint32_t acquire(std::string_view s);  // the id of `s`, one more reference
  // One reference less; true when that was the last and the id is now free (0: no-op).
  bool release(uint32_t id);
  [[nodiscard]] const std::string& get(uint32_t id) const { return items_[id].text; }
  [[nodiscard]] size_t size() const { return index_.size(); }

 private:
  struct Item {
    std::string text;
    uint32_t refs = 0;
  };
  std::vector<Item> items_ = {Item{}};
  std::vector<uint32_t> free_;
  std::unordered_map<std::string, uint32_t> index_;
};

// One announce to make: which torrent, which tracker, with which event.
struct AnnounceJob {
  static constexpr uint32_t kNoEntry = UINT32_MAX;
  uint32_t entry = kNoEntry;  // kNoEntry: a stopped announce of a torrent no longer scheduled
  uint32_t tracker = 0;       // the URL's id while the slot exists
  InfoHash key;
  tracker_client::Event event = tracker_client::Event::kNone;
  std::string url;
};

// What GET /v1/torrent shows of one tracker of a torrent.
struct SlotView {
  std::string url;
  unsigned tier = 0;      // its tier's index in the torrent's announce list
  std::string state;      // working, failing, announcing, waiting, standby
  int64_t last = 0;       // unix seconds of the last answer or failure; 0: none yet
  int64_t next = 0;       // unix seconds of the next announce; 0: none scheduled
  uint32_t interval = 0;  // the interval in use after the last answer
  int64_t seeders = -1;   // as the tracker last said; -1: unknown
  int64_t leechers = -1;
  unsigned failures = 0;  // in a row
  std::string error;      // the last failure, when the last outcome was one
  std::string warning;    // the tracker's warning message of the last answer
};

class AnnounceSchedule {
 public:
  static constexpr uint16_t kBreakerFailures = 3;

  explicit AnnounceSchedule(ScheduleOptions o = {}) : options_(o) {}
  void set_options(const ScheduleOptions& o) { options_ = o; }
  [[nodiscard]] const ScheduleOptions& options() const { return options_; }

  // Schedules a torrent's tiers (URLs already checked and filtered of this daemon's own
  // tracker; a tier may be left empty, so the others keep their numbers), every tier due at
  // `now`. A URL repeated is kept once; tiers past the 255th are ignored. Returns false, keeping
  // nothing, when no URL is left; a torrent already scheduled is left as it is (true).
  bool add(const InfoHash& key, const std::vector<std::vector<std::string>>& tiers, int64_t now);
  // Forgets a torrent; appends to `stopped` an event=stopped announce for each tracker that
  // lists it (its last announce was answered). False when it was not scheduled.
  bool remove(const InfoHash& key, std::vector<AnnounceJob>* stopped);
  [[nodiscard]] bool contains(const InfoHash& key) const { return index_.count(key) != 0; }

  // When the next announce is due (unix seconds), or nullopt when nothing is queued.
  std::optional<int64_t> next_due();
  // The next announce due at `now` or earlier, marked in flight, or nullopt. Announces to a
  // tracker inside its breaker backoff are failed here, without I/O, and never returned.
  std::optional<AnnounceJob> pop(int64_t now);

  // Outcomes of a job pop() returned. A job whose torrent was removed meanwhile is ignored.
  void succeeded(const AnnounceJob& job, const tracker_client::AnnounceReply& reply, int64_t now);
  // `unreachable`: no answer at all (DNS, connect, timeout), which counts against the tracker;
  // else the tracker answered with a refusal, which counts against this torrent only.
  void failed(const AnnounceJob& job, std::string_view why, bool unreachable, int64_t now);
  // The job's tracker is this daemon's own: forget that slot (and the torrent when it was the
  // last), schedule the next tracker of its tier.
  void drop(const AnnounceJob& job, int64_t now);

  [[nodiscard]] std::vector<SlotView> describe(const InfoHash& key) const;
  // Calls fn(key, url) for each tracker that lists a torrent (its last announce was answered),
  // until fn returns false.
  void for_each_listed(
      const std::function<bool(const InfoHash& key, const std::string& url)>& fn) const;
  [[nodiscard]] size_t torrents() const { return index_.size(); }
  [[nodiscard]] size_t slots() const { return slot_count_; }
  [[nodiscard]] size_t queued() const { return heap_.size(); }
  [[nodiscard]] size_t trackers() const { return urls_.size(); }
  // The seconds of backoff after `failures` failures in a row (failures >= 1).
  [[nodiscard]] uint32_t backoff(unsigned failures) const;

 private:
  static constexpr uint32_t kUnknown = UINT32_MAX;
  enum Flags : uint8_t {
    kInFlight = 1,
    kListed = 2,    // the last announce was answered: the tracker lists us
    kWarning = 4,   // `message` is a warning of an answer, not an error
    kAnswered = 8,  // the tracker answered at least once
  };
  struct Slot {
    uint32_t tracker = 0;   // urls_ id
    uint32_t next = 0;      // due, unix seconds; 0: not queued (in flight or standby)
    uint32_t last = 0;      // unix seconds of the last outcome; 0: none yet
    uint32_t interval = 0;  // after the last answer
    uint32_t seeders = kUnknown;
    uint32_t leechers = kUnknown;
    uint32_t message = 0;  // messages_ id: the last error, or a warning (kWarning)
    uint16_t failures = 0;
    uint8_t tier = 0;
    uint8_t flags = 0;
  };
  static_assert(sizeof(Slot) == 32);
  struct Entry {
    InfoHash key;
    std::vector<Slot> slots;  // grouped by tier, in tier order
  };
  struct Item {  // a queue entry: the slot of `tracker` in `entry` is due at `due`
    uint32_t due;
    uint32_t entry;
    uint32_t tracker;
  };
  struct Later {
    bool operator()(const Item& a, const Item& b) const { return a.due > b.due; }
  };
  struct TrackerHealth {
    uint16_t streak = 0;  // network failures in a row
    uint32_t blocked_until = 0;
    uint32_t last_error = 0;  // messages_ id
  };

  Slot* find(const AnnounceJob& job);
  void queue(uint32_t entry, Slot& s, int64_t due);
  void set_message(Slot& s, std::string_view text, bool warning);
  void fail_slot(uint32_t entry, Slot& s, std::string_view why, int64_t now);
  void release_slot(Slot& s);
  void release_url(uint32_t id);
  void erase_entry(uint32_t entry);
  TrackerHealth& health(uint32_t tracker);
  [[nodiscard]] bool stale(const Item& it) const;

  ScheduleOptions options_;
  std::vector<Entry> entries_;
  std::vector<uint32_t> free_entries_;
  std::unordered_map<InfoHash, uint32_t, tracker::Id20Hash> index_;
  std::vector<Item> heap_;
  Interner urls_;
  Interner messages_;
  std::unordered_map<uint32_t, TrackerHealth> health_;  // trackers that failed lately
  size_t slot_count_ = 0;
};

}  // namespace evert::everseed
