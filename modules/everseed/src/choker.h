// Who may download from the everseed (BEP 3 choking), and how fast: pure logic over peer states
// and a clock passed in, so tests drive it without sockets or waiting (STYLE.md §5, §14).
//
// A seed has nothing to gain from tit-for-tat, so its slots are a queue: each torrent has
// `slots` regular upload slots given round-robin over time (every rotation, the interested peers
// that waited longest get the slots of those that held one longest), plus one optimistic slot
// that moves to the next waiting peer on its own, slower, rotation. A slot freed between
// rotations (a peer done or gone) goes at once to the peer that waited longest.
//
// Thread-safety: plain values and functions; the server calls them on the loop thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <span>

namespace evert::everseed {

using Clock = std::chrono::steady_clock;

// One peer's state as the choker sees it (kept in the server's connection).
struct ChokeState {
  bool interested = false;
  bool unchoked = false;
  bool optimistic = false;  // unchoked by the optimistic slot
  // unchoked: when it got its slot; choked and interested: when it began to wait.
  Clock::time_point since{};
};

struct ChokePolicy {
  int slots = 8;           // regular upload slots per torrent
  bool optimistic = true;  // one optimistic slot besides
  // A regular slot held for at least half of this is given up at a rotation when peers wait
  // (half: a slot given between two rotations does not count as a full turn).
  Clock::duration rotation = std::chrono::seconds(10);
};

enum class ChokeStep : uint8_t {
  kSettle,            // an interest changed or a peer left: fill free slots, take none away
  kRotate,            // the regular rotation
  kRotateOptimistic,  // the optimistic slot moves on
};

// Updates `unchoked`, `optimistic` and `since` of one torrent's peers; the caller compares
// `unchoked` before and after and sends choke / unchoke. Peers that are not interested end up
// choked. At most policy.slots regular and one optimistic peer end up unchoked.
void update_chokes(std::span<ChokeState* const> peers, const ChokePolicy& policy,
                   Clock::time_point now, ChokeStep step);

// A token bucket for an upload rate limit. Tokens refill from the clock each time the bucket is
// asked, so a bucket costs nothing while nobody uses it (no timer of its own). A send is allowed
// while the bucket is not in debt and takes its bytes even if that puts the bucket in debt, so
// a block bigger than the burst still goes out and the long-run rate stays the limit.
class TokenBucket {
 public:
  // Whether a send may start now at `rate` bytes per second (0: unlimited, always).
  bool ready(uint64_t rate, Clock::time_point now);
  // Takes `bytes` (after ready() said yes).
  void take(uint64_t rate, uint64_t bytes);
  // How long until ready() says yes at `rate` (zero when it already does).
  [[nodiscard]] Clock::duration wait(uint64_t rate) const;

 private:
  double tokens_ = 0;
  Clock::time_point at_{};
  bool started_ = false;
};

}  // namespace evert::everseed
