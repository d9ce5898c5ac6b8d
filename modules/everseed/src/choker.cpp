#include "choker.h"

#include <algorithm>
#include <vector>

namespace evert::everseed {

void update_chokes(std::span<ChokeState* const> peers, const ChokePolicy& policy,
                   Clock::time_point now, ChokeStep step) {
  for (ChokeState* s : peers) {
    if (!s->interested) {
      s->unchoked = false;
      s->optimistic = false;
    }
    // The optimistic peer goes to the back of the queue: it waits from now.
    if (s->optimistic && (step == ChokeStep::kRotateOptimistic || !policy.optimistic)) {
      s->optimistic = false;
      s->unchoked = false;
      s->since = now;
    }
  }

  // Regular slots. Rank the interested peers: those that got a slot less than half a rotation
  // ago (or any holder, when not rotating) keep it; then the waiting peers, longest waiting
  // first; then the holders due for rotation, the one that held its slot longest last.
  std::vector<ChokeState*> ranked;
  for (ChokeState* s : peers) {
    if (s->interested && !s->optimistic) ranked.push_back(s);
  }
  auto group = [&](const ChokeState* s) {
    if (!s->unchoked) return 1;
    if (step != ChokeStep::kRotate || now - s->since < policy.rotation / 2) return 0;
    return 2;
  };
  std::stable_sort(ranked.begin(), ranked.end(), [&](const ChokeState* a, const ChokeState* b) {
    const int ga = group(a);
    const int gb = group(b);
    if (ga != gb) return ga < gb;
    return ga == 1 ? a->since < b->since : a->since > b->since;
  });
  const size_t slots = static_cast<size_t>(std::max(policy.slots, 0));
  for (size_t i = 0; i < ranked.size(); ++i) {
    ChokeState* s = ranked[i];
    if (i < slots && !s->unchoked) {
      s->unchoked = true;
      s->since = now;
    } else if (i >= slots && s->unchoked) {
      s->unchoked = false;
      s->since = now;
    }
  }

  // The optimistic slot, when free: the peer that waited longest.
  if (!policy.optimistic) return;
  ChokeState* next = nullptr;
  for (ChokeState* s : peers) {
    if (s->optimistic) return;
    if (s->interested && !s->unchoked && (next == nullptr || s->since < next->since)) next = s;
  }
  if (next != nullptr) {
    next->unchoked = true;
    next->optimistic = true;
    next->since = now;
  }
}

bool TokenBucket::ready(uint64_t rate, Clock::time_point now) {
  if (rate == 0) return true;
  // A quarter of a second of traffic may go out at once after a pause.
  const double burst = static_cast<double>(rate) / 4;
  if (!started_) {
    started_ = true;
    tokens_ = burst;
  } else if (now > at_) {
    const double seconds = std::chrono::duration<double>(now - at_).count();
    tokens_ = std::min(burst, tokens_ + seconds * static_cast<double>(rate));
  }
  at_ = now;
  return tokens_ > 0;
}

void TokenBucket::take(uint64_t rate, uint64_t bytes) {
  if (rate != 0) tokens_ -= static_cast<double>(bytes);
}

Clock::duration TokenBucket::wait(uint64_t rate) const {
  if (rate == 0 || tokens_ > 0) return Clock::duration::zero();
  const double seconds = (1 - tokens_) / static_cast<double>(rate);
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
}

}  // namespace evert::everseed
