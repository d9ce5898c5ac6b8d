// BEP 52 merkle trees: SHA-256 over 16 KiB blocks, padded to a power of two.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "evert/hash.h"

namespace evert::merkle {

inline constexpr uint64_t kBlockSize = 16 * 1024;

// Smallest power of two >= n (n >= 1).
uint64_t next_pow2(uint64_t n);

// The root of a tree of 2^levels leaves that are all zero digests (the padding BEP 52 uses
// beyond the end of a file). pad_root(0) is the zero digest itself.
Sha256Digest pad_root(int levels);

// The root over `leaves`, conceptually extended to `width` leaves (a power of two,
// >= leaves.size()) with copies of `pad`, a subtree of height `pad_levels` whose root is
// pad_root(pad_levels). Used both for whole-file roots (leaves = block hashes, pad_levels 0)
// and for roots from a piece layer (leaves = piece hashes, pad_levels = log2(blocks per piece)).
Sha256Digest root(std::span<const Sha256Digest> leaves, uint64_t width, int pad_levels = 0);

// Pieces root of a file from its piece layer (files larger than one piece).
Sha256Digest root_from_piece_layer(std::span<const Sha256Digest> pieces, uint64_t piece_length);

// log2 of a power of two.
int log2_exact(uint64_t pow2);

}  // namespace evert::merkle
