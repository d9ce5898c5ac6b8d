#include "evert/merkle.h"

#include <gtest/gtest.h>

namespace evert::merkle {
namespace {

Sha256Digest h(const std::string& s) {
  return Sha256::hash(s);
}

TEST(Merkle, NextPow2AndLog2) {
  EXPECT_EQ(next_pow2(0), 1u);
  EXPECT_EQ(next_pow2(1), 1u);
  EXPECT_EQ(next_pow2(3), 4u);
  EXPECT_EQ(next_pow2(1024), 1024u);
  EXPECT_EQ(log2_exact(16384), 14);
}

TEST(Merkle, PadRoot) {
  EXPECT_TRUE(pad_root(0).is_zero());
  EXPECT_EQ(pad_root(1), Sha256::hash_pair(Sha256Digest{}, Sha256Digest{}));
  EXPECT_EQ(pad_root(2), Sha256::hash_pair(pad_root(1), pad_root(1)));
}

TEST(Merkle, RootPadsWithZeroLeaves) {
  const std::vector<Sha256Digest> leaves = {h("a"), h("b"), h("c")};
  const auto expected = Sha256::hash_pair(Sha256::hash_pair(leaves[0], leaves[1]),
                                          Sha256::hash_pair(leaves[2], Sha256Digest{}));
  EXPECT_EQ(root(leaves, 4), expected);
  EXPECT_EQ(root(std::vector{leaves[0]}, 1), leaves[0]);
}

TEST(Merkle, RootFromPieceLayerEqualsRootOverAllBlocks) {
  // 3 pieces of 4 blocks (piece length 64 KiB), the last one partial: 10 blocks in all.
  std::vector<Sha256Digest> blocks;
  for (int i = 0; i < 10; ++i)
    blocks.push_back(h(std::to_string(i)));
  const Sha256Digest full = root(blocks, next_pow2(blocks.size()));
  std::vector<Sha256Digest> pieces;
  for (size_t p = 0; p < 3; ++p) {
    std::vector<Sha256Digest> sub(
        blocks.begin() + static_cast<long>(p * 4),
        blocks.begin() + static_cast<long>(std::min<size_t>(p * 4 + 4, 10)));
    pieces.push_back(root(sub, 4));
  }
  EXPECT_EQ(root_from_piece_layer(pieces, 4 * kBlockSize), full);
  pieces[1].bytes[0] ^= 1;
  EXPECT_NE(root_from_piece_layer(pieces, 4 * kBlockSize), full);
}

}  // namespace
}  // namespace evert::merkle
