#include "evert/tracker/swarm.h"

#include <sodium.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <new>

namespace evert::tracker {
namespace {

// The 16 bits of meta: bits 0-11 the tick of the last announce, then the flags.
constexpr uint16_t kTickMask = 0x0FFF;
constexpr uint16_t kSeeder = 1u << 12;
constexpr uint16_t kPartial = 1u << 13;
constexpr uint16_t kCompleted = 1u << 14;

// Offsets in a record after the key (see swarm.h).
constexpr size_t port_at(size_t ips) {
  return kKeySize + ips;
}
constexpr size_t client_at(size_t ips) {
  return kKeySize + ips + 2;
}
constexpr size_t meta_at(size_t ips) {
  return kKeySize + ips + 3;
}

uint16_t load_meta(const uint8_t* rec, size_t ip_size) {
  uint16_t m;
  std::memcpy(&m, rec + meta_at(ip_size), 2);
  return m;
}
void store_meta(uint8_t* rec, size_t ip_size, uint16_t m) {
  std::memcpy(rec + meta_at(ip_size), &m, 2);
}

uint64_t load_key(const uint8_t* rec) {
  uint64_t k = 0;
  for (size_t i = 0; i < kKeySize; ++i)
    k = k << 8 | rec[i];
  return k;
}
void store_key(uint8_t* rec, uint64_t key) {
  for (size_t i = 0; i < kKeySize; ++i)
    rec[i] = static_cast<uint8_t>(key >> (8 * (kKeySize - 1 - i)));
}

// The part of a peer id that names its client (BEP 20): Azureus style "-XXnnnn-", aria2's
// "A2-m-nn-p-", Mainline style "Mn-n-n--"; zero when it is none of these.
std::array<uint8_t, 12> client_prefix(const PeerId& id) {
  std::array<uint8_t, 12> out{};
  const auto& b = id.bytes;
  size_t n = 0;
  if (b[0] == '-' && b[7] == '-') {
    n = 8;
  } else if (b[0] == 'A' && b[1] == '2' && b[2] == '-') {
    n = 12;
  } else if (std::isalpha(b[0]) && b[7] == '-') {
    n = 8;
  }
  for (size_t i = 0; i < n; ++i) {
    if (b[i] < 0x20 || b[i] > 0x7E) return {};
    out[i] = b[i];
  }
  return out;
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
    : data_(o.data_), size_(o.size_), cap_(o.cap_), rs_(o.rs_), family_(o.family_) {
  o.data_ = nullptr;
  o.size_ = o.cap_ = 0;
}

std::pair<uint32_t, bool> PeerArray::find(uint64_t key) const {
  uint32_t lo = 0;
  uint32_t hi = size_;
  while (lo < hi) {
    const uint32_t mid = lo + (hi - lo) / 2;
    const uint64_t k = load_key(data_ + size_t{mid} * rs_);
    if (k == key) return {mid, true};
    if (k < key) {
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
    // Grow by an eighth: the slack stays small for a structure that holds every peer (the
    // copies cost little: realloc of large blocks moves pages, not bytes).
    const uint32_t cap = cap_ < 8 ? cap_ + 2 : cap_ + cap_ / 8;
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
    const uint32_t cap = size_ + size_ / 8 + 1;
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

uint32_t PeerArray::count_address(uint64_t first, uint64_t end, const uint8_t* prefix, size_t n,
                                  uint32_t limit) const {
  uint32_t count = 0;
  for (uint32_t i = find(first).first; i < size_ && count < limit; ++i) {
    const uint8_t* rec = at(i);
    if (load_key(rec) >= end) break;
    count += std::memcmp(rec + kKeySize, prefix, n) == 0 ? 1 : 0;
  }
  return count;
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
  randombytes_buf(secret_.data(), secret_.size());
  clients_.push_back({});  // index 0: unknown
}

void SwarmTable::set_options(const SwarmOptions& options) {
  const bool ids = options_.keep_peer_ids;
  options_ = options;
  options_.keep_peer_ids = ids;
}

uint64_t SwarmTable::random() {
  // xorshift64*: peer selection needs speed and spread, not secrecy.
  rng_ ^= rng_ >> 12;
  rng_ ^= rng_ << 25;
  rng_ ^= rng_ >> 27;
  return rng_ * 0x2545F4914F6CDD1Dull;
}

uint64_t SwarmTable::key_of(const PeerId& id, const Endpoint& at) const {
  // SipHash keyed with a secret: peers cannot choose ids that collide with someone else's. The
  // address is part of the key: a peer id alone is public (swarm.h, Identity).
  std::array<uint8_t, 36> in;
  std::memcpy(in.data(), id.bytes.data(), 20);
  const size_t ips = ip_size_of(at.family);
  std::memcpy(in.data() + 20, at.ip.data(), ips);
  uint8_t h[crypto_shorthash_BYTES];
  crypto_shorthash(h, in.data(), 20 + ips, secret_.data());
  uint64_t k = 0;
  for (size_t i = 0; i < kKeySize - kAddressKeyBytes; ++i)
    k = k << 8 | h[i];
  return address_key(at) | k;
}

uint64_t SwarmTable::address_key(const Endpoint& at) const {
  // The top bits of a key: a hash of the address (IPv4) or its /64 (IPv6), so the peers of one
  // address lie together in key order and are counted by a binary search and a short walk.
  uint8_t h[crypto_shorthash_BYTES];
  crypto_shorthash(h, at.ip.data(), at.family == Family::kV4 ? 4 : 8, secret_.data());
  uint64_t k = 0;
  for (size_t i = 0; i < kAddressKeyBytes; ++i)
    k = k << 8 | h[i];
  return k << (8 * (kKeySize - kAddressKeyBytes));
}

uint8_t SwarmTable::intern_client(const uint8_t* prefix12) {
  if (prefix12[0] == 0) return 0;
  std::string k(reinterpret_cast<const char*>(prefix12), 12);
  if (auto it = client_index_.find(k); it != client_index_.end()) return it->second;
  if (clients_.size() > 255) return 0;
  std::array<uint8_t, 12> c{};
  std::memcpy(c.data(), prefix12, 12);
  clients_.push_back(c);
  const auto index = static_cast<uint8_t>(clients_.size() - 1);
  client_index_.emplace(std::move(k), index);
  return index;
}

uint32_t SwarmTable::age_seconds(uint16_t meta, int64_t now) const {
  return ((tick(now) - (meta & kTickMask)) & kTickMask) * 8u;
}

void SwarmTable::set_local_seed(std::optional<Endpoint> v4, std::optional<Endpoint> v6) {
  has_local4_ = v4.has_value();
  has_local6_ = v6.has_value();
  for (auto [e, rec] : {std::pair{v4, &local4_}, std::pair{v6, &local6_}}) {
    if (!e) continue;
    const size_t ips = ip_size_of(e->family);
    rec->fill(0);
    std::memcpy(rec->data() + kKeySize, e->ip.data(), ips);
    (*rec)[port_at(ips)] = static_cast<uint8_t>(e->port >> 8);
    (*rec)[port_at(ips) + 1] = static_cast<uint8_t>(e->port & 0xFF);
  }
}

SwarmCounts SwarmTable::counts_of(const Swarm& s) {
  SwarmCounts c;
  c.complete = s.seeders;
  c.incomplete = s.peers() - s.seeders;
  c.partial = s.partial;
  c.downloaded = s.downloaded;
  return c;
}

Swarm& SwarmTable::swarm_for(const InfoHash& ih) {
  return swarms_.try_emplace(ih, options_.keep_peer_ids).first->second;
}

Refusal SwarmTable::announce(const AnnounceRequest& request, int64_t now, AnnounceReply& reply) {
  reply.counts = {};
  reply.peers4.clear();
  reply.peers6.clear();
  reply.stored = true;
  reply.address_full = false;
  if (!allowed(request.info_hash)) return Refusal::kNotAllowed;

  auto it = swarms_.find(request.info_hash);
  if (it == swarms_.end()) {
    if (request.event == Event::kStopped) {  // nothing to remove
      reply.counts.complete = seeded_.contains(request.info_hash) ? 1 : 0;
      return Refusal::kNone;
    }
    if (options_.whitelist ? false : swarms_.size() >= options_.max_swarms) {
      return Refusal::kTooManySwarms;
    }
    it = swarms_.try_emplace(request.info_hash, options_.keep_peer_ids).first;
  }
  Swarm& swarm = it->second;

  if (request.event == Event::kStopped) {
    // Only the peer at this address (and, BEP 7, at its other one) stops; a stop that removes
    // nobody does not count as activity, so it cannot keep an empty swarm alive.
    bool removed = remove(swarm, request.info_hash, request.peer_id, request.endpoint);
    if (request.other) removed |= remove(swarm, request.info_hash, request.peer_id, *request.other);
    if (removed) swarm.last_activity = now;
    reply.counts = counts_of(swarm);
    reply.counts.complete += seeded_.contains(request.info_hash) ? 1 : 0;
    if (swarm.peers() == 0 && swarm.downloaded == 0) {
      if (track_dirty_ && !swarm.dirty) dirty_.push_back(request.info_hash);
      swarms_.erase(it);
    }
    return Refusal::kNone;
  }

  swarm.last_activity = now;
  uint32_t self4 = kNoIndex;
  uint32_t self6 = kNoIndex;
  (request.endpoint.family == Family::kV4 ? self4 : self6) =
      store(swarm, request.info_hash, key_of(request.peer_id, request.endpoint), request,
            request.endpoint, now, reply);
  if (request.other) {
    (request.other->family == Family::kV4 ? self4 : self6) =
        store(swarm, request.info_hash, key_of(request.peer_id, *request.other), request,
              *request.other, now, reply);
  }
  if (!reply.stored) ++(reply.address_full ? counters_.address_full : counters_.swarm_full);
  reply.counts = counts_of(swarm);
  const bool local = seeded_.contains(request.info_hash);
  reply.counts.complete += local ? 1 : 0;
  if (request.numwant > 0) select(swarm, request, self4, self6, local, reply);
  return Refusal::kNone;
}

void SwarmTable::mark(Swarm& swarm, const InfoHash& ih) {
  if (!track_dirty_ || swarm.dirty) return;
  swarm.dirty = true;
  dirty_.push_back(ih);
}

uint8_t* SwarmTable::place(Swarm& swarm, const Endpoint& at, uint64_t key, bool cap_address,
                           bool& found, uint32_t& index, Placed& why) {
  PeerArray& arr = at.family == Family::kV4 ? swarm.v4 : swarm.v6;
  auto [i, hit] = arr.find(key);
  index = i;
  found = hit;
  why = Placed::kOk;
  if (hit) return arr.at(i);
  if (arr.size() >= options_.max_peers_per_swarm) {
    why = Placed::kSwarmFull;
    return nullptr;
  }
  // Peers of one address, counted when a new one comes (never on a re-announce) and only in an
  // array big enough to hold more than the cap: they share the key's top bits, so it takes a
  // binary search and a walk over those keys (the address's peers and a few that share its
  // hash, told apart by their address). An IPv6 host usually has a whole /64, so that is what
  // counts as one address.
  const auto cap =
      static_cast<uint32_t>(std::min<size_t>(options_.max_peers_per_address, 0xFFFFFFFF));
  const uint64_t first = key & ~kIdKeyMask;
  if (cap_address && arr.size() >= cap &&
      arr.count_address(first, first + kIdKeyMask + 1, at.ip.data(),
                        at.family == Family::kV4 ? 4 : 8, cap) >= cap) {
    why = Placed::kAddressFull;
    return nullptr;
  }
  uint8_t* rec = arr.insert(i);
  store_key(rec, key);
  ++peers_;
  return rec;
}

uint32_t SwarmTable::store(Swarm& swarm, const InfoHash& ih, uint64_t key,
                           const AnnounceRequest& request, const Endpoint& endpoint, int64_t now,
                           AnnounceReply& reply) {
  const size_t ips = ip_size_of(endpoint.family);
  bool found = false;
  uint32_t index = 0;
  Placed why = Placed::kOk;
  uint8_t* rec = place(swarm, endpoint, key, true, found, index, why);
  if (rec == nullptr) {
    reply.stored = false;
    reply.address_full |= why == Placed::kAddressFull;
    return kNoIndex;
  }
  uint16_t meta = 0;
  bool changed = !found;
  if (found) {
    meta = load_meta(rec, ips);
  } else {
    rec[client_at(ips)] = intern_client(client_prefix(request.peer_id).data());
    if (options_.keep_peer_ids) {
      std::memcpy(rec + base_record_size(endpoint.family), request.peer_id.bytes.data(), 20);
    }
  }
  // A changed port is updated in place: a client restarted on a new port is the same peer (the
  // address is part of the key, so a found record has this address).
  const uint8_t port[2] = {static_cast<uint8_t>(endpoint.port >> 8),
                           static_cast<uint8_t>(endpoint.port & 0xFF)};
  if (found && (std::memcmp(rec + kKeySize, endpoint.ip.data(), ips) != 0 ||
                std::memcmp(rec + port_at(ips), port, 2) != 0)) {
    changed = true;
  }
  std::memcpy(rec + kKeySize, endpoint.ip.data(), ips);
  std::memcpy(rec + port_at(ips), port, 2);

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

bool SwarmTable::remove(Swarm& swarm, const InfoHash& ih, const PeerId& id, const Endpoint& at) {
  PeerArray& arr = at.family == Family::kV4 ? swarm.v4 : swarm.v6;
  auto [index, found] = arr.find(key_of(id, at));
  if (!found) return false;
  const uint16_t meta = load_meta(arr.at(index), ip_size_of(arr.family()));
  swarm.seeders -= (meta & kSeeder) ? 1 : 0;
  swarm.partial -= (meta & kPartial) ? 1 : 0;
  arr.erase(index);
  --peers_;
  mark(swarm, ih);
  return true;
}

void SwarmTable::select(const Swarm& swarm, const AnnounceRequest& request, uint32_t self4,
                        uint32_t self6, bool local, AnnounceReply& reply) {
  // Seeds and partial seeds (BEP 21) only want leechers; leechers take whatever comes, which
  // from a random starting point in key order (random order) is a proportional mix.
  const bool asker_seeds = request.left == 0 || request.event == Event::kPaused;
  uint32_t want = request.numwant;
  // Whoever asks about a torrent this daemon seeds gets the local seed first: it always has
  // it all. Also an asker that says it has everything (left=0): a client starting from a
  // magnet link may say so before it knows the size (aria2 1.36, download_helper.cc), and the
  // local seed is the one peer sure to have the metadata. Not a partial seed that paused.
  if (local && request.event != Event::kPaused) {
    const bool has4 = request.endpoint.family == Family::kV4 ||
                      (request.other && request.other->family == Family::kV4);
    const bool has6 = request.endpoint.family == Family::kV6 ||
                      (request.other && request.other->family == Family::kV6);
    if (has4 && has_local4_ && want > 0) {
      reply.peers4.push_back(PeerRef{local4_.data(), Family::kV4, false});
      --want;
    }
    if (has6 && has_local6_ && want > 0) {
      reply.peers6.push_back(PeerRef{local6_.data(), Family::kV6, false});
      --want;
    }
  }
  auto walk = [&](const PeerArray& arr, uint32_t self, std::vector<PeerRef>& out) {
    const uint32_t n = arr.size();
    if (n == 0 || want == 0) return;
    const size_t ips = ip_size_of(arr.family());
    const bool ids = arr.has_ids();
    const uint32_t start = static_cast<uint32_t>(random() % n);
    for (uint32_t k = 0; k < n && want > 0; ++k) {
      uint32_t i = start + k;
      if (i >= n) i -= n;
      if (i == self) continue;  // never the asker
      const uint8_t* rec = arr.at(i);
      if (asker_seeds && (load_meta(rec, ips) & (kSeeder | kPartial)) != 0) continue;
      out.push_back(PeerRef{rec, arr.family(), ids});
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
  const bool local = seeded_.contains(ih);
  auto it = swarms_.find(ih);
  if (it != swarms_.end()) counts = counts_of(it->second);
  counts.complete += local ? 1 : 0;
  return it != swarms_.end() || local || (options_.whitelist && allowed_.contains(ih));
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
    // A completed count is part of what scrape reports: kept for an allowed torrent, and for
    // any other as long as its swarm had activity within the expiry. Kept for good, made-up
    // info-hashes announced once with event=completed would fill max_swarms for good.
    if (s.peers() == 0 && (s.downloaded == 0 || (!listed(ih) && now - s.last_activity >= expiry))) {
      mark(s, ih);  // take_dirty() finds it gone and deletes its snapshot
      ++counters_.swarms_expired;
      it = swarms_.erase(it);
    } else {
      ++it;
    }
  }
  return dropped;
}

void SwarmTable::restore_peer(const InfoHash& ih, const PeerId& id, const PeerState& state,
                              int64_t now) {
  restore_record(ih, key_of(id, state.endpoint), &id, state, now);
}

void SwarmTable::restore_record(const InfoHash& ih, uint64_t key, const PeerId* id,
                                const PeerState& state, int64_t now) {
  if (now - state.last_seen >= static_cast<int64_t>(std::min(options_.expiry, kMaxExpiry))) {
    return;
  }
  Swarm& swarm = swarm_for(ih);
  swarm.last_activity = std::max(swarm.last_activity, state.last_seen);
  swarm.saved_at = now;
  const Family f = state.endpoint.family;
  const size_t ips = ip_size_of(f);
  bool found = false;
  uint32_t index = 0;
  Placed why = Placed::kOk;
  uint8_t* rec = place(swarm, state.endpoint, key, false, found, index, why);
  if (rec == nullptr || found) return;
  std::memcpy(rec + kKeySize, state.endpoint.ip.data(), ips);
  rec[port_at(ips)] = static_cast<uint8_t>(state.endpoint.port >> 8);
  rec[port_at(ips) + 1] = static_cast<uint8_t>(state.endpoint.port & 0xFF);
  rec[client_at(ips)] = intern_client(state.client.data());
  if (options_.keep_peer_ids) {
    // A peer saved without its id (ids were not kept then) is listed without one.
    std::memset(rec + base_record_size(f), 0, 20);
    if (id != nullptr) std::memcpy(rec + base_record_size(f), id->bytes.data(), 20);
  }
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

// Snapshot: version 3, downloaded (8), last activity (8, unix seconds), v4 count (4), v6 count
// (4), then per peer: key (5), address (4 or 16), port (2), flags (1: seeder, partial,
// completed, has peer id), last seen (4, unix seconds), client prefix (12), [peer id (20)].
// Integers big-endian (docs/storage.md). Version 2: no last activity, keys of the id alone.
namespace {
constexpr uint8_t kSnapshotVersion = 3;
constexpr uint8_t kSnapshotVersionIdKeys = 2;
constexpr size_t snapshot_head(uint8_t version) {
  return version == kSnapshotVersionIdKeys ? 17 : 25;
}
constexpr size_t snapshot_record(size_t ips, bool id) {
  return kKeySize + ips + 2 + 1 + 4 + 12 + (id ? 20 : 0);
}
}  // namespace

std::string SwarmTable::snapshot(const Swarm& swarm, int64_t now) const {
  const bool ids = options_.keep_peer_ids;
  std::string out;
  out.reserve(snapshot_head(kSnapshotVersion) + swarm.v4.size() * snapshot_record(4, ids) +
              swarm.v6.size() * snapshot_record(16, ids));
  out += static_cast<char>(kSnapshotVersion);
  put_be(out, swarm.downloaded, 8);
  put_be(out, static_cast<uint64_t>(swarm.last_activity), 8);
  put_be(out, swarm.v4.size(), 4);
  put_be(out, swarm.v6.size(), 4);
  for (const PeerArray* arr : {&swarm.v4, &swarm.v6}) {
    const size_t ips = ip_size_of(arr->family());
    const bool has_ids = arr->has_ids();
    for (uint32_t i = 0; i < arr->size(); ++i) {
      const uint8_t* rec = arr->at(i);
      out.append(reinterpret_cast<const char*>(rec), kKeySize + ips + 2);
      const uint16_t meta = load_meta(rec, ips);
      out += static_cast<char>(((meta & kSeeder) ? 1 : 0) | ((meta & kPartial) ? 2 : 0) |
                               ((meta & kCompleted) ? 4 : 0) | (has_ids ? 8 : 0));
      put_be(out, static_cast<uint64_t>(now - age_seconds(meta, now)), 4);
      out.append(reinterpret_cast<const char*>(clients_[rec[client_at(ips)]].data()), 12);
      if (has_ids) {
        out.append(reinterpret_cast<const char*>(rec + base_record_size(arr->family())), 20);
      }
    }
  }
  return out;
}

bool SwarmTable::restore_snapshot(const InfoHash& ih, std::string_view blob, int64_t now) {
  const auto* p = reinterpret_cast<const uint8_t*>(blob.data());
  if (blob.empty() || (p[0] != kSnapshotVersion && p[0] != kSnapshotVersionIdKeys)) return false;
  const uint8_t version = p[0];
  const size_t head = snapshot_head(version);
  if (blob.size() < head) return false;
  const uint64_t downloaded = get_be(p + 1, 8);
  // Version 2 kept no last activity: a restored count has the expiry from now.
  const auto last_activity =
      version == kSnapshotVersionIdKeys ? now : static_cast<int64_t>(get_be(p + 9, 8));
  const uint64_t n4 = get_be(p + head - 8, 4);
  const uint64_t n6 = get_be(p + head - 4, 4);
  // Check the whole blob before restoring any of it: records differ in size (peer ids).
  size_t off = head;
  for (uint64_t i = 0; i < n4 + n6; ++i) {
    const size_t ips = i >= n4 ? 16 : 4;
    if (blob.size() - off < snapshot_record(ips, false)) return false;
    const bool id = (p[off + kKeySize + ips + 2] & 8) != 0;
    if (blob.size() - off < snapshot_record(ips, id)) return false;
    off += snapshot_record(ips, id);
  }
  if (off != blob.size()) return false;
  off = head;
  for (uint64_t i = 0; i < n4 + n6; ++i) {
    const bool v6 = i >= n4;
    const size_t ips = v6 ? 16 : 4;
    const uint8_t* r = p + off;
    PeerState st;
    st.endpoint.family = v6 ? Family::kV6 : Family::kV4;
    std::memcpy(st.endpoint.ip.data(), r + kKeySize, ips);
    st.endpoint.port = static_cast<uint16_t>(get_be(r + kKeySize + ips, 2));
    const uint8_t flags = r[kKeySize + ips + 2];
    st.seeder = flags & 1;
    st.partial = flags & 2;
    st.completed = flags & 4;
    st.last_seen = static_cast<int64_t>(get_be(r + kKeySize + ips + 3, 4));
    std::memcpy(st.client.data(), r + kKeySize + ips + 7, 12);
    std::optional<PeerId> id;
    if (flags & 8) {
      id = PeerId::from({reinterpret_cast<const char*>(r + snapshot_record(ips, false)), 20});
    }
    off += snapshot_record(ips, (flags & 8) != 0);
    if (version == kSnapshotVersion) {
      restore_record(ih, load_key(r), id ? &*id : nullptr, st, now);
    } else if (id) {
      restore_record(ih, key_of(*id, st.endpoint), &*id, st, now);  // keyed anew
    }
  }
  if (downloaded > 0) {
    Swarm& swarm = swarm_for(ih);
    swarm.downloaded = downloaded;
    swarm.last_activity = std::max(swarm.last_activity, last_activity);
  }
  // A version 2 row is written again as version 3 at the first take_dirty() (start-up runs
  // before dirty tracking is on, hence by hand).
  if (auto it = swarms_.find(ih);
      version == kSnapshotVersionIdKeys && it != swarms_.end() && !it->second.dirty) {
    it->second.dirty = true;
    dirty_.push_back(ih);
  }
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
      const auto& client = clients_[rec[client_at(ips)]];
      PeerId prefix;  // the client prefix, padded: enough for describe_client
      std::memcpy(prefix.bytes.data(), client.data(), client.size());
      if (client[0] != 0) p.client = describe_client(prefix);
      if (arr->has_ids()) {
        p.id = PeerId::from(
            {reinterpret_cast<const char*>(rec + base_record_size(arr->family())), 20});
        if (*p.id == PeerId{}) p.id.reset();  // restored from a snapshot without ids
      }
      p.endpoint.family = arr->family();
      std::memcpy(p.endpoint.ip.data(), rec + kKeySize, ips);
      p.endpoint.port = static_cast<uint16_t>(rec[port_at(ips)] << 8 | rec[port_at(ips) + 1]);
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
