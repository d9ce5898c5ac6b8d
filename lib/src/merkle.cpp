#include "evert/merkle.h"

#include <bit>
#include <cassert>

namespace evert::merkle {

uint64_t next_pow2(uint64_t n) {
  return n <= 1 ? 1 : std::bit_ceil(n);
}

int log2_exact(uint64_t pow2) {
  assert(std::has_single_bit(pow2));
  return std::countr_zero(pow2);
}

Sha256Digest pad_root(int levels) {
  Sha256Digest d;  // zero digest
  for (int i = 0; i < levels; ++i)
    d = Sha256::hash_pair(d, d);
  return d;
}

Sha256Digest root(std::span<const Sha256Digest> leaves, uint64_t width, int pad_levels) {
  assert(std::has_single_bit(width) && width >= leaves.size());
  std::vector<Sha256Digest> level(leaves.begin(), leaves.end());
  Sha256Digest pad = pad_root(pad_levels);
  if (level.empty()) level.push_back(pad);
  while (width > 1) {
    std::vector<Sha256Digest> up((level.size() + 1) / 2);
    for (size_t i = 0; i < up.size(); ++i) {
      const Sha256Digest& right = 2 * i + 1 < level.size() ? level[2 * i + 1] : pad;
      up[i] = Sha256::hash_pair(level[2 * i], right);
    }
    pad = Sha256::hash_pair(pad, pad);
    level = std::move(up);
    width /= 2;
  }
  return level[0];
}

Sha256Digest root_from_piece_layer(std::span<const Sha256Digest> pieces, uint64_t piece_length) {
  return root(pieces, next_pow2(pieces.size()), log2_exact(piece_length / kBlockSize));
}

}  // namespace evert::merkle
