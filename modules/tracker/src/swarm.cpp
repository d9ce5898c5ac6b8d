#include "evert/tracker/swarm.h"

#include <sodium.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>

namespace evert::tracker {
namespace {

// The 16 bits after the port: bits 0-11 the tick of the last announce, then the flags.
constexpr uint16_t kTickMask = 0x0FFF;
constexpr uint16_t kSeeder = 1u << 12;
constexpr uint16_t kPartial = 1u << 13;
constexpr uint16_t kCompleted = 1u << 14;

uint16_t load_meta(const uint8_t* rec, size_t ip_size) {
  uint16_t m;
  std::memcpy(&m, rec + 22 + ip_size, 2);
  return m;
}
void store_meta(uint8_t* rec, size_t ip_size, uint16_t m) {
  std::memcpy(rec + 22 + ip_size, &m, 2);
}
size_t ip_size_of(Family f) {
  return f == Family::kV4 ? 4 : 16;
}

// memcmp order over 20 bytes, decided in the first 8 in all but ~2^-64 of the cases.
inline int compare_id(const uint8_t* a, const uint8_t* b) {
  uint64_t x;
  uint64_t y;
  std::memcpy(&x, a, 8);
  std::memcpy(&y, b, 8);
  if (x != y) return __builtin_bswap64(x) < __builtin_bswap64(y) ? -1 : 1;
  return std::memcmp(a + 8, b + 8, 12);
}

void put_be(std::string& s, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i)
    s += static_cast<char>((v >> (8 * i)) & 0xFF);
}
uint64_t get_be(const uint8_t* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i)
    v = v << 8 | p[i];
  return v;
}

}  // namespace

// ---- PeerArray ------------------------------------------------------------------------------

PeerArray::~PeerArray() {
  std::free(data_);
}

PeerArray::PeerArray(PeerArray&& o) noexcept
    : data_(o.data_), size_(o.size_), cap_(o.cap_), family_(o.family_) {
  o.data_ = nullptr;
  o.size_ = o.cap_ = 0;
}

std::pair<uint32_t, bool> PeerArray::find(const PeerId& id) const {
  uint32_t lo = 0;
  uint32_t hi = size_;
  const size_t rs = record_size();
  while (lo < hi) {
    const uint32_t mid = lo + (hi - lo) / 2;
    const int c = compare_id(data_ + size_t{mid} * rs, id.bytes.data());
    if (c == 0) return {mid, true};
    if (c < 0) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return {lo, false};
}

uint8_t* PeerArray::insert(uint32_t index) {
  const size_t rs = record_size();
  if (size_ == cap_) {
    // Grow by a quarter: the slack stays small for a structure that holds every peer.
    const uint32_t cap = cap_ < 4 ? 4 : cap_ + cap_ / 4;
    auto* p = static_cast<uint8_t*>(std::realloc(data_, size_t{cap} * rs));
    if (p == nullptr) throw std::bad_alloc();
    data_ = p;
    cap_ = cap;
  }
  uint8_t* at = data_ + size_t{index} * rs;
  std::memmove(at + rs, at, size_t{size_ - index} * rs);
  ++size_;
  return at;
}

void PeerArray::shrink() {
  if (size_ == 0) {
    std::free(data_);
    data_ = nullptr;
    cap_ = 0;
  } else if (size_ < cap_ / 2 && cap_ > 16) {
    const uint32_t cap = size_ + size_ / 4 + 1;
    if (auto* p = static_cast<uint8_t*>(std::realloc(data_, size_t{cap} * record_size()))) {
      data_ = p;
      cap_ = cap;
    }
  }
}

void PeerArray::erase(uint32_t index) {
  const size_t rs = record_size();
  uint8_t* at = data_ + size_t{index} * rs;
  std::memmove(at, at + rs, size_t{size_ - index - 1} * rs);
  --size_;
  shrink();
}

size_t PeerArray::erase_if(const std::function<bool(const uint8_t*)>& remove) {
  const size_t rs = record_size();
  uint32_t out = 0;
  for (uint32_t i = 0; i < size_; ++i) {
    const uint8_t* rec = data_ + size_t{i} * rs;
    if (remove(rec)) continue;
    if (out != i) std::memcpy(data_ + size_t{out} * rs, rec, rs);
    ++out;
  }
  const size_t removed = size_ - out;
  size_ = out;
  shrink();
  return removed;
}

// ---- SwarmTable -----------------------------------------------------------------------------

SwarmTable::SwarmTable(SwarmOptions options) : options_(options) {
  randombytes_buf(&rng_, sizeof rng_);
  rng_ |= 1;
}

uint64_t SwarmTable::random() {
  // xorshift64*: peer selection needs speed and spread, not secrecy.
  rng_ ^= rng_ >> 12;
  rng_ ^= rng_ << 25;
  rng_ ^= rng_ >> 27;
  return rng_ * 0x2545F4914F6CDD1Dull;
}

uint32_t SwarmTable::age_seconds(uint16_t meta, int64_t now) const {
  return ((tick(now) - (meta & kTickMask)) & kTickMask) * 8u;
}

SwarmCounts SwarmTable::counts_of(const Swarm& s) {
  SwarmCounts c;
  c.complete = s.seeders;
  c.incomplete = s.peers() - s.seeders;
  c.partial = s.partial;
  c.downloaded = s.downloaded;
  return c;
}

Refusal SwarmTable::announce(const AnnounceRequest& request, int64_t now, AnnounceReply& reply) {
  reply.counts = {};
  reply.peers4.clear();
  reply.peers6.clear();
  reply.stored = true;
  if (!allowed(request.info_hash)) return Refusal::kNotAllowed;

  auto it = swarms_.find(request.info_hash);
  if (it == swarms_.end()) {
    if (request.event == Event::kStopped) return Refusal::kNone;  // nothing to remove
    if (options_.whitelist ? false : swarms_.size() >= options_.max_swarms) {
      return Refusal::kTooManySwarms;
    }
    it = swarms_.try_emplace(request.info_hash).first;
  }
  Swarm& swarm = it->second;
  swarm.last_activity = now;

  if (request.event == Event::kStopped) {
    remove(swarm, request.info_hash, request.peer_id);
    reply.counts = counts_of(swarm);
    if (swarm.peers() == 0 && swarm.downloaded == 0) {
      if (track_dirty_ && !swarm.dirty) dirty_.push_back(request.info_hash);
      swarms_.erase(it);
    }
    return Refusal::kNone;
  }

  bool stored = true;
  uint32_t self4 = kNoIndex;
  uint32_t self6 = kNoIndex;
  (request.endpoint.family == Family::kV4 ? self4 : self6) =
      store(swarm, request.info_hash, request, request.endpoint, now, stored);
  if (request.other) {
    (request.other->family == Family::kV4 ? self4 : self6) =
        store(swarm, request.info_hash, request, *request.other, now, stored);
  }
  reply.stored = stored;
  reply.counts = counts_of(swarm);
  if (request.numwant > 0) select(swarm, request, self4, self6, reply);
  return Refusal::kNone;
}

void SwarmTable::mark(Swarm& swarm, const InfoHash& ih) {
  if (!track_dirty_ || swarm.dirty) return;
  swarm.dirty = true;
  dirty_.push_back(ih);
}

uint32_t SwarmTable::store(Swarm& swarm, const InfoHash& ih, const AnnounceRequest& request,
                           const Endpoint& endpoint, int64_t now, bool& stored) {
  PeerArray& arr = endpoint.family == Family::kV4 ? swarm.v4 : swarm.v6;
  const size_t ips = ip_size_of(endpoint.family);
  auto [index, found] = arr.find(request.peer_id);
  uint8_t* rec = nullptr;
  uint16_t meta = 0;
  bool changed = !found;
  if (found) {
    rec = arr.at(index);
    meta = load_meta(rec, ips);
  } else {
    if (arr.size() >= options_.max_peers_per_swarm) {
      stored = false;
      return kNoIndex;
    }
    rec = arr.insert(index);
    std::memcpy(rec, request.peer_id.bytes.data(), 20);
    ++peers_;
  }
  // A changed address or port is updated in place.
  const uint8_t port[2] = {static_cast<uint8_t>(endpoint.port >> 8),
                           static_cast<uint8_t>(endpoint.port & 0xFF)};
  if (found && (std::memcmp(rec + 20, endpoint.ip.data(), ips) != 0 ||
                std::memcmp(rec + 20 + ips, port, 2) != 0)) {
    changed = true;
  }
  std::memcpy(rec + 20, endpoint.ip.data(), ips);
  std::memcpy(rec + 20 + ips, port, 2);

  const bool was_seeder = (meta & kSeeder) != 0;
  const bool was_partial = (meta & kPartial) != 0;
  const bool seeder = request.left == 0;
  // BEP 21: a partial seed says event=paused and stays one until it announces otherwise.
  const bool partial = !seeder && (request.event == Event::kPaused ||
                                   (was_partial && request.event == Event::kNone));
  bool completed = (meta & kCompleted) != 0;
  if (request.event == Event::kCompleted && !completed) {
    completed = true;  // counted once per peer and torrent
    ++swarm.downloaded;
  }
  swarm.seeders += static_cast<uint32_t>(seeder) - static_cast<uint32_t>(was_seeder);
  swarm.partial += static_cast<uint32_t>(partial) - static_cast<uint32_t>(was_partial);
  const uint16_t flags = static_cast<uint16_t>((seeder ? kSeeder : 0) | (partial ? kPartial : 0) |
                                               (completed ? kCompleted : 0));
  if (flags != (meta & ~kTickMask)) changed = true;
  store_meta(rec, ips, static_cast<uint16_t>(tick(now) | flags));
  if (changed || now - swarm.saved_at >= options_.expiry / 4) mark(swarm, ih);
  return index;
}

void SwarmTable::remove(Swarm& swarm, const InfoHash& ih, const PeerId& id) {
  for (PeerArray* arr : {&swarm.v4, &swarm.v6}) {
    auto [index, found] = arr->find(id);
    if (!found) continue;
    const uint16_t meta = load_meta(arr->at(index), ip_size_of(arr->family()));
    swarm.seeders -= (meta & kSeeder) ? 1 : 0;
    swarm.partial -= (meta & kPartial) ? 1 : 0;
    arr->erase(index);
    --peers_;
    mark(swarm, ih);
  }
}

void SwarmTable::select(const Swarm& swarm, const AnnounceRequest& request, uint32_t self4,
                        uint32_t self6, AnnounceReply& reply) {
  // Seeds and partial seeds (BEP 21) only want leechers; leechers take whatever comes, which
  // from a random starting point in peer-id order (random order) is a proportional mix.
  const bool asker_seeds = request.left == 0 || request.event == Event::kPaused;
  uint32_t want = request.numwant;
  auto walk = [&](const PeerArray& arr, uint32_t self, std::vector<PeerRef>& out) {
    const uint32_t n = arr.size();
    if (n == 0 || want == 0) return;
    const size_t ips = ip_size_of(arr.family());
    const uint32_t start = static_cast<uint32_t>(random() % n);
    for (uint32_t k = 0; k < n && want > 0; ++k) {
      uint32_t i = start + k;
      if (i >= n) i -= n;
      if (i == self) continue;  // never the asker
      const uint8_t* rec = arr.at(i);
      if (asker_seeds && (load_meta(rec, ips) & (kSeeder | kPartial)) != 0) continue;
      out.push_back(PeerRef{rec, arr.family()});
      --want;
    }
  };
  // Each family's peers go to an asker that has an address in that family, its own first.
  const bool has4 = request.endpoint.family == Family::kV4 ||
                    (request.other && request.other->family == Family::kV4);
  const bool has6 = request.endpoint.family == Family::kV6 ||
                    (request.other && request.other->family == Family::kV6);
  if (request.endpoint.family == Family::kV4) {
    walk(swarm.v4, self4, reply.peers4);
    if (has6) walk(swarm.v6, self6, reply.peers6);
  } else {
    walk(swarm.v6, self6, reply.peers6);
    if (has4) walk(swarm.v4, self4, reply.peers4);
  }
}

bool SwarmTable::scrape(const InfoHash& ih, SwarmCounts& counts) const {
  counts = {};
  auto it = swarms_.find(ih);
  if (it != swarms_.end()) {
    counts = counts_of(it->second);
    return true;
  }
  return options_.whitelist && allowed_.contains(ih);
}

size_t SwarmTable::expire(int64_t now) {
  size_t dropped = 0;
  const uint32_t expiry = std::min(options_.expiry, kMaxExpiry);
  for (auto it = swarms_.begin(); it != swarms_.end();) {
    Swarm& s = it->second;
    const InfoHash& ih = it->first;
    const size_t before = dropped;
    for (PeerArray* arr : {&s.v4, &s.v6}) {
      const size_t ips = ip_size_of(arr->family());
      dropped += arr->erase_if([&](const uint8_t* rec) {
        const uint16_t meta = load_meta(rec, ips);
        if (age_seconds(meta, now) < expiry) return false;
        s.seeders -= (meta & kSeeder) ? 1 : 0;
        s.partial -= (meta & kPartial) ? 1 : 0;
        --peers_;
        return true;
      });
    }
    if (dropped != before) mark(s, ih);
    // A swarm with a completed count is kept: the count is part of what scrape reports.
    if (s.peers() == 0 && s.downloaded == 0) {
      it = swarms_.erase(it);
    } else {
      ++it;
    }
  }
  return dropped;
}

void SwarmTable::restore_peer(const InfoHash& ih, const PeerId& id, const PeerState& state,
                              int64_t now) {
  if (now - state.last_seen >= static_cast<int64_t>(std::min(options_.expiry, kMaxExpiry))) {
    return;
  }
  Swarm& swarm = swarms_[ih];
  swarm.last_activity = std::max(swarm.last_activity, state.last_seen);
  swarm.saved_at = now;
  PeerArray& arr = state.endpoint.family == Family::kV4 ? swarm.v4 : swarm.v6;
  const size_t ips = ip_size_of(state.endpoint.family);
  auto [index, found] = arr.find(id);
  if (found) return;
  uint8_t* rec = arr.insert(index);
  ++peers_;
  std::memcpy(rec, id.bytes.data(), 20);
  std::memcpy(rec + 20, state.endpoint.ip.data(), ips);
  rec[20 + ips] = static_cast<uint8_t>(state.endpoint.port >> 8);
  rec[21 + ips] = static_cast<uint8_t>(state.endpoint.port & 0xFF);
  const uint16_t meta =
      static_cast<uint16_t>(tick(state.last_seen) | (state.seeder ? kSeeder : 0) |
                            (state.partial ? kPartial : 0) | (state.completed ? kCompleted : 0));
  store_meta(rec, ips, meta);
  swarm.seeders += state.seeder ? 1 : 0;
  swarm.partial += state.partial ? 1 : 0;
}

void SwarmTable::take_dirty(int64_t now,
                            const std::function<void(const InfoHash&, std::string)>& fn) {
  std::vector<InfoHash> list;
  list.swap(dirty_);
  for (const InfoHash& ih : list) {
    auto it = swarms_.find(ih);
    if (it == swarms_.end()) {
      fn(ih, {});
      continue;
    }
    Swarm& s = it->second;
    if (!s.dirty) continue;  // listed twice (erased, then back): already written
    s.dirty = false;
    s.saved_at = now;
    fn(ih, snapshot(s, now));
  }
}

// Snapshot: version 1, downloaded (8), v4 count (4), v6 count (4), then per peer: id (20),
// address (4 or 16), port (2), flags (1: seeder, partial, completed), last seen (4, unix
// seconds). All integers big-endian (docs/storage.md).
std::string SwarmTable::snapshot(const Swarm& swarm, int64_t now) const {
  std::string out;
  out.reserve(17 + swarm.v4.size() * 31 + swarm.v6.size() * 43);
  out += '\x01';
  put_be(out, swarm.downloaded, 8);
  put_be(out, swarm.v4.size(), 4);
  put_be(out, swarm.v6.size(), 4);
  for (const PeerArray* arr : {&swarm.v4, &swarm.v6}) {
    const size_t ips = ip_size_of(arr->family());
    for (uint32_t i = 0; i < arr->size(); ++i) {
      const uint8_t* rec = arr->at(i);
      out.append(reinterpret_cast<const char*>(rec), 22 + ips);
      const uint16_t meta = load_meta(rec, ips);
      out += static_cast<char>(((meta & kSeeder) ? 1 : 0) | ((meta & kPartial) ? 2 : 0) |
                               ((meta & kCompleted) ? 4 : 0));
      put_be(out, static_cast<uint64_t>(now - age_seconds(meta, now)), 4);
    }
  }
  return out;
}

bool SwarmTable::restore_snapshot(const InfoHash& ih, std::string_view blob, int64_t now) {
  const auto* p = reinterpret_cast<const uint8_t*>(blob.data());
  if (blob.size() < 17 || p[0] != 1) return false;
  const uint64_t downloaded = get_be(p + 1, 8);
  const uint64_t n4 = get_be(p + 9, 4);
  const uint64_t n6 = get_be(p + 13, 4);
  if (blob.size() != 17 + n4 * 31 + n6 * 43) return false;
  size_t off = 17;
  for (uint64_t i = 0; i < n4 + n6; ++i) {
    const bool v6 = i >= n4;
    const size_t ips = v6 ? 16 : 4;
    PeerState st;
    st.endpoint.family = v6 ? Family::kV6 : Family::kV4;
    std::memcpy(st.endpoint.ip.data(), p + off + 20, ips);
    st.endpoint.port = static_cast<uint16_t>(get_be(p + off + 20 + ips, 2));
    const uint8_t flags = p[off + 22 + ips];
    st.seeder = flags & 1;
    st.partial = flags & 2;
    st.completed = flags & 4;
    st.last_seen = static_cast<int64_t>(get_be(p + off + 23 + ips, 4));
    restore_peer(ih, PeerId::from(blob.substr(off, 20)), st, now);
    off += 27 + ips;
  }
  if (downloaded > 0) swarms_[ih].downloaded = downloaded;
  return true;
}

size_t SwarmTable::peer_bytes() const {
  size_t n = 0;
  for (const auto& [ih, s] : swarms_)
    n += s.v4.capacity_bytes() + s.v6.capacity_bytes();
  return n;
}

const Swarm* SwarmTable::find(const InfoHash& ih) const {
  auto it = swarms_.find(ih);
  return it == swarms_.end() ? nullptr : &it->second;
}

void SwarmTable::for_each(const std::function<void(const InfoHash&, const Swarm&)>& fn) const {
  for (const auto& [ih, s] : swarms_)
    fn(ih, s);
}

std::vector<SwarmTable::PeerInfo> SwarmTable::peers_of(const InfoHash& ih, int64_t now) const {
  std::vector<PeerInfo> out;
  const Swarm* s = find(ih);
  if (s == nullptr) return out;
  for (const PeerArray* arr : {&s->v4, &s->v6}) {
    const size_t ips = ip_size_of(arr->family());
    for (uint32_t i = 0; i < arr->size(); ++i) {
      const uint8_t* rec = arr->at(i);
      PeerInfo p;
      p.id = PeerId::from({reinterpret_cast<const char*>(rec), 20});
      p.endpoint.family = arr->family();
      std::memcpy(p.endpoint.ip.data(), rec + 20, ips);
      p.endpoint.port = static_cast<uint16_t>(rec[20 + ips] << 8 | rec[21 + ips]);
      const uint16_t meta = load_meta(rec, ips);
      p.seeder = (meta & kSeeder) != 0;
      p.partial = (meta & kPartial) != 0;
      p.completed = (meta & kCompleted) != 0;
      p.age = age_seconds(meta, now);
      out.push_back(p);
    }
  }
  return out;
}

}  // namespace evert::tracker
