// The swarm core: who is in which swarm, and which peers each announce gets back. Pure logic
// with an injected clock (every call takes `now`, in seconds): no sockets, no disk; HTTP and UDP
// announces both end in SwarmTable::announce (STYLE.md §2).
//
// Memory: a peer costs one packed record in a per-swarm array sorted by a 40-bit keyed hash of
// its peer id and IP address (its key), found by binary search; arrays grow by an eighth. A
// record is 14 bytes for IPv4 (26 for IPv6): the key (5), address and port (6, in the compact
// wire order), the client (1: an index into a table of peer-id prefixes, for `evertctl swarm`),
// and 16 bits holding an 8-second tick and the seeder/partial/completed flags. The full 20-byte
// peer id is kept only with SwarmOptions::keep_peer_ids (20 more bytes per peer), and only then
// does the dictionary model list peer ids. A key collision (see Identity) makes two peers one.
// Idle whitelisted torrents cost a hash-set entry and no swarm.
//
// Identity: a peer is its peer id at its IP address (as opentracker keys peers). Peer ids are
// no secret (every handshake shows them), so an announce with a known id from another address
// is another peer: it cannot stop, update or move the one already listed. A peer whose address
// changes is listed anew and its old record expires; one that comes back from the same address
// on another port (a client restarted) is the same peer, its port updated. With BEP 7 a peer's
// record in each family is keyed by its address in that family. The key's top 16 bits hash the
// address (an IPv6 /64), its other 24 the id and address: the peers of one address are
// neighbours in key order, so max_peers_per_address costs a binary search, no memory. Two
// peers of different addresses still collide about once in 2^40 pairs, of one address once in
// 2^24 (then they are one peer). A reply's walk in key order takes such neighbours together;
// each peer is as likely as before to be in it.
//
// Thread-safety: none; the tracker uses it from the loop thread only.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "evert/tracker/types.h"

namespace evert::tracker {

enum class Event : uint8_t { kNone, kStarted, kCompleted, kStopped, kPaused };

struct AnnounceRequest {
  InfoHash info_hash;
  PeerId peer_id;
  Endpoint endpoint;              // where other peers reach it
  std::optional<Endpoint> other;  // BEP 7: its address in the other family, when trusted
  uint64_t left = 0;
  uint64_t uploaded = 0;
  uint64_t downloaded = 0;
  Event event = Event::kNone;
  uint32_t numwant = 50;  // already defaulted and capped
};

// The record layout: key (5) | address (4 or 16) | port (2, BE) | client (1) | meta (2)
// [| peer id (20)].
inline constexpr size_t kKeySize = 5;
// A key's top 2 bytes hash the peer's address (IPv4) or /64 (IPv6), the other 3 its id and
// address: one address's peers are neighbours in a swarm's array (swarm.h, Identity).
inline constexpr size_t kAddressKeyBytes = 2;
inline constexpr uint64_t kIdKeyMask = (uint64_t{1} << (8 * (kKeySize - kAddressKeyBytes))) - 1;
inline constexpr size_t ip_size_of(Family f) {
  return f == Family::kV4 ? 4 : 16;
}
inline constexpr size_t base_record_size(Family f) {
  return kKeySize + ip_size_of(f) + 5;
}

// A peer as an announce reply lists it; points into the swarm, valid until the next change.
struct PeerRef {
  const uint8_t* record = nullptr;
  Family family = Family::kV4;
  bool has_id = false;
  // The peer id, or nullptr when the tracker does not keep peer ids.
  [[nodiscard]] const uint8_t* id() const {
    return has_id ? record + base_record_size(family) : nullptr;
  }
  [[nodiscard]] const uint8_t* ip() const { return record + kKeySize; }  // then the port
  [[nodiscard]] size_t ip_size() const { return ip_size_of(family); }
  [[nodiscard]] const uint8_t* port() const { return ip() + ip_size(); }  // 2 bytes, BE
};

struct SwarmCounts {
  uint32_t complete = 0;    // seeders
  uint32_t incomplete = 0;  // leechers (partial seeds included)
  uint32_t partial = 0;     // BEP 21 partial seeds (event=paused)
  uint64_t downloaded = 0;  // completed events, once per peer
};

struct AnnounceReply {
  SwarmCounts counts;
  std::vector<PeerRef> peers4;
  std::vector<PeerRef> peers6;
  bool stored = true;         // false: this peer was not added (the swarm or its address is full)
  bool address_full = false;  // not added because its address has max_peers_per_address peers
};

enum class Refusal : uint8_t { kNone, kNotAllowed, kTooManySwarms };

// A peer as restore_peer() takes it back (start-up, tests).
struct PeerState {
  Endpoint endpoint;
  std::array<uint8_t, 12> client{};  // the client prefix of its peer id (zero: unknown)
  int64_t last_seen = 0;             // unix seconds
  bool seeder = false;
  bool partial = false;
  bool completed = false;
};

struct SwarmOptions {
  bool whitelist = true;                 // only allowed info-hashes are tracked
  uint32_t expiry = 2700;                // seconds without announce before a peer is dropped
  size_t max_swarms = 1'000'000;         // open mode: new swarms past this are refused
  size_t max_peers_per_swarm = 100'000;  // per family; new peers past this are not stored
  // Per swarm and IPv4 address or IPv6 /64: new peers past this are answered, not stored. Many
  // real peers may share an address (NAT, carrier-grade NAT), so the cap is loose; it stops
  // one host filling a swarm's max_peers_per_swarm slots with made-up peers.
  size_t max_peers_per_address = 32;
  bool keep_peer_ids = false;  // fixed at construction: the record size depends on it
};

// The seconds an expiry can span: ticks are 8 s and wrap after 4096 of them (9.1 h); the
// sweep runs far more often than that.
inline constexpr uint32_t kMaxExpiry = 4 * 3600;

// Peers of one address family, sorted by key.
class PeerArray {
 public:
  PeerArray(Family f, bool ids)
      : rs_(static_cast<uint8_t>(base_record_size(f) + (ids ? 20 : 0))), family_(f) {}
  ~PeerArray();
  PeerArray(const PeerArray&) = delete;
  PeerArray& operator=(const PeerArray&) = delete;
  PeerArray(PeerArray&& o) noexcept;
  PeerArray& operator=(PeerArray&&) = delete;

  [[nodiscard]] size_t record_size() const { return rs_; }
  [[nodiscard]] bool has_ids() const { return rs_ > base_record_size(family_); }
  [[nodiscard]] uint32_t size() const { return size_; }
  [[nodiscard]] uint8_t* at(uint32_t i) const { return data_ + size_t{i} * rs_; }
  // The index of the record with `key` (40 bits), or where it would go (and false).
  [[nodiscard]] std::pair<uint32_t, bool> find(uint64_t key) const;
  uint8_t* insert(uint32_t index);  // an uninitialised record at `index`
  void erase(uint32_t index);
  // How many records with a key in [first, end) have an address starting with the `n` bytes at
  // `prefix`, counting no further than `limit`.
  [[nodiscard]] uint32_t count_address(uint64_t first, uint64_t end, const uint8_t* prefix,
                                       size_t n, uint32_t limit) const;
  // Keeps the records for which `keep` is true (one pass).
  size_t erase_if(const std::function<bool(const uint8_t*)>& remove);
  [[nodiscard]] size_t capacity_bytes() const { return size_t{cap_} * record_size(); }
  [[nodiscard]] Family family() const { return family_; }

 private:
  void shrink();  // gives memory back when much of it is unused
  uint8_t* data_ = nullptr;
  uint32_t size_ = 0;
  uint32_t cap_ = 0;
  uint8_t rs_;
  Family family_;
};

struct Swarm {
  explicit Swarm(bool ids) : v4(Family::kV4, ids), v6(Family::kV6, ids) {}
  PeerArray v4;
  PeerArray v6;
  uint32_t seeders = 0;  // records flagged seeder, both families
  uint32_t partial = 0;  // records flagged partial, both families
  uint64_t downloaded = 0;
  int64_t last_activity = 0;  // the last announce that was not a stop changing nothing
  int64_t saved_at = 0;       // when its snapshot was last taken
  bool dirty = false;         // changed since that snapshot
  [[nodiscard]] uint32_t peers() const { return v4.size() + v6.size(); }
};

class SwarmTable {
 public:
  explicit SwarmTable(SwarmOptions options);

  // Applies a new configuration (reload). Lowering caps does not drop stored peers;
  // keep_peer_ids keeps the value given at construction.
  void set_options(const SwarmOptions& options);
  // The secret of the peers' keys. Persisted by the tracker, so restored peers keep their keys;
  // set it before restoring or announcing.
  void set_key_secret(const std::array<uint8_t, 16>& secret) { secret_ = secret; }
  [[nodiscard]] const SwarmOptions& options() const { return options_; }
  // Persistence is write-behind, by swarm: a swarm whose peers, their state or its completed
  // count changed is dirty (a peer's mere re-announce makes it dirty only when its snapshot is
  // older than a quarter of the expiry, so restored peers are at most that much older).
  // take_dirty() hands out a snapshot of each dirty swarm (an empty string: the swarm is gone)
  // for the store; restore_snapshot() takes one back at start-up.
  void set_track_dirty(bool on) { track_dirty_ = on; }
  void take_dirty(int64_t now, const std::function<void(const InfoHash&, std::string)>& fn);
  [[nodiscard]] std::string snapshot(const Swarm& swarm, int64_t now) const;
  // Restores a snapshot, dropping the peers expired by `now`. False when it is malformed. A
  // version 2 snapshot (keys of the peer id alone) is taken too: its peers are keyed anew from
  // their ids when it holds them; those saved without ids are dropped (they come back with
  // their next announce).
  bool restore_snapshot(const InfoHash& ih, std::string_view blob, int64_t now);

  // The whitelist: published torrents and those listed in the config. Live.
  void allow(const InfoHash& ih) { allowed_.insert(ih); }
  void disallow(const InfoHash& ih) { allowed_.erase(ih); }
  [[nodiscard]] bool allowed(const InfoHash& ih) const {
    return !options_.whitelist || allowed_.contains(ih) || seeded_.contains(ih);
  }

  // This daemon's own seed (the everseed): the torrents it seeds are tracked in any mode, count
  // one more seeder, and every leecher's peer list starts with the seed's address in its
  // family. Costs a hash-set entry per torrent, no peer record and no announce.
  void set_local_seed(std::optional<Endpoint> v4, std::optional<Endpoint> v6);
  void add_seeded(const InfoHash& ih) { seeded_.insert(ih); }
  void remove_seeded(const InfoHash& ih) { seeded_.erase(ih); }
  [[nodiscard]] bool seeded(const InfoHash& ih) const { return seeded_.contains(ih); }

  // Records the announce and fills `reply` (cleared first) with counts and up to numwant
  // peers: never the asker; a seed gets leechers only; each family's list goes to a requester
  // with an address in that family. A refused announce changes nothing.
  Refusal announce(const AnnounceRequest& request, int64_t now, AnnounceReply& reply);

  // Counts for one swarm; false when nothing is known of it (not allowed or never seen).
  bool scrape(const InfoHash& ih, SwarmCounts& counts) const;

  // Drops peers not heard from for options().expiry seconds and swarms left with nothing. A
  // swarm left with only a completed count is kept while its torrent is allowed (whitelisted
  // or published: allow(), add_seeded()); any other (open mode) is dropped once it has had no
  // activity for options().expiry seconds, so made-up info-hashes with event=completed do not
  // fill max_swarms for good. Dropped swarms are deleted from the store (take_dirty()).
  // Returns how many peers were dropped.
  size_t expire(int64_t now);

  // Restores state saved earlier (start-up); expired peers are ignored.
  void restore_peer(const InfoHash& ih, const PeerId& id, const PeerState& state, int64_t now);

  // Announces answered without storing the peer, by cause (stats and metrics).
  struct Counters {
    uint64_t swarm_full = 0;    // max_peers_per_swarm reached
    uint64_t address_full = 0;  // max_peers_per_address reached
    uint64_t swarms_expired = 0;
  };
  [[nodiscard]] const Counters& counters() const { return counters_; }

  [[nodiscard]] size_t swarm_count() const { return swarms_.size(); }
  [[nodiscard]] size_t peer_count() const { return peers_; }
  [[nodiscard]] size_t allowed_count() const { return allowed_.size(); }
  // Bytes held by peer arrays (their capacity), for stats.
  [[nodiscard]] size_t peer_bytes() const;
  [[nodiscard]] const Swarm* find(const InfoHash& ih) const;
  void for_each(const std::function<void(const InfoHash&, const Swarm&)>& fn) const;
  // Every peer of a swarm with its flags and age, for the control API.
  struct PeerInfo {
    std::optional<PeerId> id;  // when peer ids are kept
    std::string client;        // decoded from its peer id's prefix, or empty
    Endpoint endpoint;
    bool seeder = false;
    bool partial = false;
    bool completed = false;
    uint32_t age = 0;  // seconds since its last announce (8 s precision)
  };
  std::vector<PeerInfo> peers_of(const InfoHash& ih, int64_t now) const;
  static SwarmCounts counts_of(const Swarm& s);

 private:
  static uint16_t tick(int64_t now) { return static_cast<uint16_t>((now >> 3) & 0xFFF); }
  // The key of a peer id at an address (its IP; the port is not part of it).
  [[nodiscard]] uint64_t key_of(const PeerId& id, const Endpoint& at) const;
  [[nodiscard]] uint64_t address_key(const Endpoint& at) const;  // the key's top bits
  [[nodiscard]] bool listed(const InfoHash& ih) const {
    return allowed_.contains(ih) || seeded_.contains(ih);
  }
  uint8_t intern_client(const uint8_t* prefix12);
  enum class Placed : uint8_t { kOk, kSwarmFull, kAddressFull };
  // Inserts or finds the record for `key` at `at` (its address is not written); nullptr when
  // the family's array is full or, with `cap_address`, the address has its share of it.
  uint8_t* place(Swarm& swarm, const Endpoint& at, uint64_t key, bool cap_address, bool& found,
                 uint32_t& index, Placed& why);
  [[nodiscard]] uint32_t age_seconds(uint16_t meta, int64_t now) const;
  // Records the peer in its family's array; returns its index there (or kNoIndex).
  uint32_t store(Swarm& swarm, const InfoHash& ih, uint64_t key, const AnnounceRequest& request,
                 const Endpoint& endpoint, int64_t now, AnnounceReply& reply);
  // Removes the peer `id` at `at` from its family's array; false when it is not there.
  bool remove(Swarm& swarm, const InfoHash& ih, const PeerId& id, const Endpoint& at);
  void restore_record(const InfoHash& ih, uint64_t key, const PeerId* id, const PeerState& state,
                      int64_t now);
  Swarm& swarm_for(const InfoHash& ih);
  void select(const Swarm& swarm, const AnnounceRequest& request, uint32_t self4, uint32_t self6,
              bool local, AnnounceReply& reply);
  void mark(Swarm& swarm, const InfoHash& ih);
  static constexpr uint32_t kNoIndex = 0xFFFFFFFF;
  uint64_t random();

  SwarmOptions options_;
  bool track_dirty_ = false;
  std::vector<InfoHash> dirty_;
  std::unordered_set<InfoHash, Id20Hash> allowed_;
  std::unordered_set<InfoHash, Id20Hash> seeded_;
  // The local seed as records (key zero, no client), so replies list it like any peer.
  std::array<uint8_t, 26> local4_{};
  std::array<uint8_t, 26> local6_{};
  bool has_local4_ = false;
  bool has_local6_ = false;
  std::unordered_map<InfoHash, Swarm, Id20Hash> swarms_;
  size_t peers_ = 0;
  Counters counters_;
  uint64_t rng_;
  std::array<uint8_t, 16> secret_{};
  // Client prefixes (index 0: unknown); at most 255, then new clients count as unknown.
  std::vector<std::array<uint8_t, 12>> clients_;
  std::unordered_map<std::string, uint8_t> client_index_;
};

}  // namespace evert::tracker
