#include "announce_schedule.h"

#include <algorithm>

namespace evert::everseed {
namespace {

uint32_t to_u32(int64_t t) {
  return static_cast<uint32_t>(std::clamp<int64_t>(t, 1, UINT32_MAX));
}

}  // namespace

uint32_t Interner::acquire(std::string_view s) {
  if (auto it = index_.find(std::string(s)); it != index_.end()) {
    ++items_[it->second].refs;
    return it->second;
  }
  uint32_t id = 0;
  if (!free_.empty()) {
    id = free_.back();
    free_.pop_back();
  } else {
    id = static_cast<uint32_t>(items_.size());
    items_.emplace_back();
  }
  items_[id].text = std::string(s);
  items_[id].refs = 1;
  index_.emplace(items_[id].text, id);
  return id;
}

bool Interner::release(uint32_t id) {
  if (id == 0 || id >= items_.size() || items_[id].refs == 0) return false;
  if (--items_[id].refs > 0) return false;
  index_.erase(items_[id].text);
  std::string().swap(items_[id].text);
  free_.push_back(id);
  return true;
}

uint32_t AnnounceSchedule::backoff(unsigned failures) const {
  const unsigned shift = failures == 0 ? 0 : failures - 1;
  uint64_t d = options_.retry_min;
  d = shift >= 32 ? UINT64_MAX : d << shift;
  return static_cast<uint32_t>(std::min<uint64_t>(d, options_.max_interval));
}

bool AnnounceSchedule::add(const InfoHash& key, const std::vector<std::vector<std::string>>& tiers,
                           int64_t now) {
  if (index_.count(key) != 0) return true;
  Entry e;
  e.key = key;
  // Tiers keep their number in the torrent's announce list, so the ones emptied by filtering
  // (this daemon's tracker, URLs that are no trackers) leave gaps.
  for (size_t t = 0; t < tiers.size() && t < UINT8_MAX; ++t) {
    for (const auto& u : tiers[t]) {
      const uint32_t id = urls_.acquire(u);
      const bool repeated = std::any_of(e.slots.begin(), e.slots.end(),
                                        [id](const Slot& s) { return s.tracker == id; });
      if (repeated) {
        urls_.release(id);
        continue;
      }
      Slot s;
      s.tracker = id;
      s.tier = static_cast<uint8_t>(t);
      e.slots.push_back(s);
    }
  }
  if (e.slots.empty()) return false;
  e.slots.shrink_to_fit();
  uint32_t idx = 0;
  if (!free_entries_.empty()) {
    idx = free_entries_.back();
    free_entries_.pop_back();
    entries_[idx] = std::move(e);
  } else {
    idx = static_cast<uint32_t>(entries_.size());
    entries_.push_back(std::move(e));
  }
  index_.emplace(key, idx);
  Entry& added = entries_[idx];
  slot_count_ += added.slots.size();
  for (size_t i = 0; i < added.slots.size(); ++i) {
    if (i == 0 || added.slots[i].tier != added.slots[i - 1].tier) queue(idx, added.slots[i], now);
  }
  return true;
}

bool AnnounceSchedule::remove(const InfoHash& key, std::vector<AnnounceJob>* stopped) {
  auto it = index_.find(key);
  if (it == index_.end()) return false;
  const uint32_t idx = it->second;
  for (const Slot& s : entries_[idx].slots) {
    if (stopped != nullptr && (s.flags & kListed) != 0) {
      AnnounceJob j;
      j.key = key;
      j.tracker = s.tracker;
      j.event = tracker_client::Event::kStopped;
      j.url = urls_.get(s.tracker);
      stopped->push_back(std::move(j));
    }
  }
  erase_entry(idx);
  return true;
}

void AnnounceSchedule::erase_entry(uint32_t idx) {
  Entry& e = entries_[idx];
  for (Slot& s : e.slots)
    release_slot(s);
  slot_count_ -= e.slots.size();
  index_.erase(e.key);
  e = Entry{};
  free_entries_.push_back(idx);
  // Its queue items go stale and are skipped when they come up.
}

void AnnounceSchedule::release_url(uint32_t id) {
  if (!urls_.release(id)) return;
  if (auto h = health_.find(id); h != health_.end()) {
    messages_.release(h->second.last_error);
    health_.erase(h);
  }
}

void AnnounceSchedule::release_slot(Slot& s) {
  messages_.release(s.message);
  s.message = 0;
  release_url(s.tracker);
}

bool AnnounceSchedule::stale(const Item& it) const {
  if (it.entry >= entries_.size()) return true;
  for (const Slot& s : entries_[it.entry].slots) {
    if (s.tracker == it.tracker) return s.next != it.due || (s.flags & kInFlight) != 0;
  }
  return true;
}

void AnnounceSchedule::queue(uint32_t entry, Slot& s, int64_t due) {
  s.next = to_u32(due);
  heap_.push_back({s.next, entry, s.tracker});
  std::push_heap(heap_.begin(), heap_.end(), Later{});
}

std::optional<int64_t> AnnounceSchedule::next_due() {
  while (!heap_.empty() && stale(heap_.front())) {
    std::pop_heap(heap_.begin(), heap_.end(), Later{});
    heap_.pop_back();
  }
  if (heap_.empty()) return std::nullopt;
  return heap_.front().due;
}

std::optional<AnnounceJob> AnnounceSchedule::pop(int64_t now) {
  while (!heap_.empty() && heap_.front().due <= now) {
    const Item it = heap_.front();
    std::pop_heap(heap_.begin(), heap_.end(), Later{});
    heap_.pop_back();
    if (stale(it)) continue;
    Entry& e = entries_[it.entry];
    Slot& s = *std::find_if(e.slots.begin(), e.slots.end(),
                            [&](const Slot& x) { return x.tracker == it.tracker; });
    s.next = 0;
    if (auto h = health_.find(s.tracker); h != health_.end() && now < h->second.blocked_until) {
      // The breaker: fail without I/O; the tier's next tracker, or a backoff, follows.
      const std::string why = messages_.get(h->second.last_error) +
                              " (not retried yet: " + std::to_string(h->second.streak) +
                              " failures in a row)";
      fail_slot(it.entry, s, why, now);
      continue;
    }
    s.flags |= kInFlight;
    AnnounceJob job;
    job.entry = it.entry;
    job.tracker = s.tracker;
    job.key = e.key;
    job.event =
        (s.flags & kListed) != 0 ? tracker_client::Event::kNone : tracker_client::Event::kStarted;
    job.url = urls_.get(s.tracker);
    return job;
  }
  return std::nullopt;
}

AnnounceSchedule::Slot* AnnounceSchedule::find(const AnnounceJob& job) {
  if (job.entry >= entries_.size()) return nullptr;
  Entry& e = entries_[job.entry];
  if (e.key != job.key) return nullptr;
  for (Slot& s : e.slots) {
    if (s.tracker == job.tracker) return (s.flags & kInFlight) != 0 ? &s : nullptr;
  }
  return nullptr;
}

AnnounceSchedule::TrackerHealth& AnnounceSchedule::health(uint32_t tracker) {
  return health_[tracker];
}

void AnnounceSchedule::set_message(Slot& s, std::string_view text, bool warning) {
  const uint32_t id = text.empty() ? 0 : messages_.acquire(text);
  messages_.release(s.message);
  s.message = id;
  s.flags = static_cast<uint8_t>(warning ? s.flags | kWarning : s.flags & ~kWarning);
}

void AnnounceSchedule::succeeded(const AnnounceJob& job, const tracker_client::AnnounceReply& r,
                                 int64_t now) {
  Slot* s = find(job);
  if (s == nullptr) return;
  if (auto h = health_.find(s->tracker); h != health_.end()) {
    messages_.release(h->second.last_error);
    health_.erase(h);
  }
  s->flags = static_cast<uint8_t>((s->flags & ~kInFlight) | kListed | kAnswered);
  s->failures = 0;
  s->last = to_u32(now);
  s->seeders = r.seeders.value_or(kUnknown);
  s->leechers = r.leechers.value_or(kUnknown);
  // The tracker's interval within our bounds, but never below its own "min interval": a
  // tracker may refuse announces that come sooner (capped at a day against nonsense).
  const uint32_t asked = r.interval != 0 ? r.interval : options_.default_interval;
  s->interval = std::max(std::clamp(asked, options_.min_interval, options_.max_interval),
                         std::min<uint32_t>(r.min_interval, 86400));
  set_message(*s, r.warning, true);
  // BEP 12: a tracker that answers moves to the front of its tier.
  Entry& e = entries_[job.entry];
  auto pos = e.slots.begin() + (s - e.slots.data());
  auto first = std::find_if(e.slots.begin(), pos, [&](const Slot& x) { return x.tier == s->tier; });
  std::rotate(first, pos, pos + 1);
  queue(job.entry, *first, now + first->interval);
}

void AnnounceSchedule::failed(const AnnounceJob& job, std::string_view why, bool unreachable,
                              int64_t now) {
  Slot* s = find(job);
  if (s == nullptr) return;
  if (unreachable) {
    TrackerHealth& h = health(s->tracker);
    h.streak = static_cast<uint16_t>(std::min<unsigned>(h.streak + 1u, UINT16_MAX));
    const uint32_t id = messages_.acquire(why);
    messages_.release(h.last_error);
    h.last_error = id;
    if (h.streak >= kBreakerFailures) {
      h.blocked_until = to_u32(now + backoff(h.streak - kBreakerFailures + 1u));
    }
  } else if (auto h = health_.find(s->tracker); h != health_.end()) {
    messages_.release(h->second.last_error);  // it answered: it is reachable
    health_.erase(h);
  }
  fail_slot(job.entry, *s, why, now);
}

void AnnounceSchedule::fail_slot(uint32_t entry, Slot& s, std::string_view why, int64_t now) {
  s.failures = static_cast<uint16_t>(std::min<unsigned>(s.failures + 1u, UINT16_MAX));
  s.last = to_u32(now);
  s.flags = static_cast<uint8_t>(s.flags & ~(kInFlight | kListed));
  set_message(s, why, false);
  Entry& e = entries_[entry];
  const size_t i = static_cast<size_t>(&s - e.slots.data());
  if (i + 1 < e.slots.size() && e.slots[i + 1].tier == s.tier) {
    queue(entry, e.slots[i + 1], now);  // BEP 12: the tier's next tracker, at once
    return;
  }
  // The whole tier failed: back to its first tracker after a backoff.
  size_t first = i;
  unsigned fewest = s.failures;
  while (first > 0 && e.slots[first - 1].tier == s.tier) {
    --first;
    fewest = std::min<unsigned>(fewest, e.slots[first].failures);
  }
  queue(entry, e.slots[first], now + backoff(std::max(fewest, 1u)));
}

void AnnounceSchedule::drop(const AnnounceJob& job, int64_t now) {
  Slot* s = find(job);
  if (s == nullptr) return;
  Entry& e = entries_[job.entry];
  const size_t i = static_cast<size_t>(s - e.slots.data());
  const uint8_t tier = s->tier;
  release_slot(*s);
  e.slots.erase(e.slots.begin() + static_cast<ptrdiff_t>(i));
  --slot_count_;
  if (e.slots.empty()) {
    erase_entry(job.entry);
    return;
  }
  // The tier goes on with its next tracker, or its first when this was the last.
  size_t next = i < e.slots.size() && e.slots[i].tier == tier ? i : e.slots.size();
  if (next == e.slots.size()) {
    for (size_t k = 0; k < e.slots.size(); ++k) {
      if (e.slots[k].tier == tier) {
        next = k;
        break;
      }
    }
  }
  if (next < e.slots.size()) queue(job.entry, e.slots[next], now);
}

std::vector<SlotView> AnnounceSchedule::describe(const InfoHash& key) const {
  std::vector<SlotView> out;
  auto it = index_.find(key);
  if (it == index_.end()) return out;
  for (const Slot& s : entries_[it->second].slots) {
    SlotView v;
    v.url = urls_.get(s.tracker);
    v.tier = s.tier;
    v.last = s.last;
    v.next = s.next;
    v.interval = s.interval;
    v.seeders = s.seeders == kUnknown ? -1 : static_cast<int64_t>(s.seeders);
    v.leechers = s.leechers == kUnknown ? -1 : static_cast<int64_t>(s.leechers);
    v.failures = s.failures;
    if (s.message != 0)
      ((s.flags & kWarning) != 0 ? v.warning : v.error) = messages_.get(s.message);
    if ((s.flags & kInFlight) != 0) {
      v.state = "announcing";
    } else if (s.failures > 0) {
      v.state = "failing";
    } else if ((s.flags & kAnswered) != 0) {
      v.state = "working";
    } else {
      v.state = s.next != 0 ? "waiting" : "standby";
    }
    out.push_back(std::move(v));
  }
  return out;
}

void AnnounceSchedule::for_each_listed(
    const std::function<bool(const InfoHash&, const std::string&)>& fn) const {
  for (const auto& [key, idx] : index_) {
    for (const Slot& s : entries_[idx].slots) {
      if ((s.flags & kListed) != 0 && !fn(key, urls_.get(s.tracker))) return;
    }
  }
}

}  // namespace evert::everseed
