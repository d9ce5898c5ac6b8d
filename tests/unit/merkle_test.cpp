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

// A file of `blocks` 16 KiB blocks (hashes made up) in pieces of `per_piece` blocks: its block
// hashes, its piece layer, and the root computed over every block.
struct File {
  std::vector<Sha256Digest> blocks;
  std::vector<Sha256Digest> pieces;
  Sha256Digest root;
  uint64_t piece_length = 0;
  uint64_t size = 0;
};

File make_file(size_t blocks, size_t per_piece) {
  File f;
  for (size_t i = 0; i < blocks; ++i)
    f.blocks.push_back(h("block " + std::to_string(i)));
  for (size_t p = 0; p * per_piece < blocks; ++p) {
    std::vector<Sha256Digest> sub(
        f.blocks.begin() + static_cast<long>(p * per_piece),
        f.blocks.begin() + static_cast<long>(std::min(p * per_piece + per_piece, blocks)));
    f.pieces.push_back(root(sub, per_piece));
  }
  f.root = root(f.blocks, next_pow2(blocks));
  f.piece_length = per_piece * kBlockSize;
  f.size = blocks * kBlockSize - 100;  // the last block is partial
  return f;
}

// What a downloader does with an answer: hash the requested nodes up to their subtree's top,
// then fold in the uncles by the position's bits; the result must be the node at that layer.
Sha256Digest fold(const std::vector<Sha256Digest>& got, const HashRange& r) {
  std::vector<Sha256Digest> base(got.begin(), got.begin() + r.length);
  Sha256Digest node = root(base, r.length);
  uint64_t pos = r.index / r.length;
  for (size_t u = r.length; u < got.size(); ++u, pos /= 2)
    node = pos % 2 == 0 ? Sha256::hash_pair(node, got[u]) : Sha256::hash_pair(got[u], node);
  return node;
}

TEST(PieceTree, LayersMatchTheTreeOverAllBlocks) {
  // 37 blocks in pieces of 4: 10 pieces (the last partial), 64 leaves, root at layer 6.
  const File f = make_file(37, 4);
  const PieceTree t(f.pieces, f.piece_length, f.size);
  EXPECT_EQ(t.piece_layer(), 2);
  EXPECT_EQ(t.root_layer(), 6);
  EXPECT_EQ(t.root(), f.root);
  EXPECT_EQ(t.width(2), 16u);
  EXPECT_EQ(t.node(2, 9), f.pieces[9]);
  EXPECT_EQ(t.node(2, 10), pad_root(2));  // past the last piece
  EXPECT_EQ(t.node(3, 7), pad_root(3));
  EXPECT_EQ(t.node(3, 4), Sha256::hash_pair(f.pieces[8], f.pieces[9]));
}

TEST(PieceTree, HashesProveTheirNodesUpToTheRoot) {
  const File f = make_file(37, 4);
  const PieceTree t(f.pieces, f.piece_length, f.size);
  // Every aligned range of every layer, with the most proof the root allows.
  for (uint32_t base = 2; base < 6; ++base) {
    for (uint32_t len = 1; len <= t.width(static_cast<int>(base)); len *= 2) {
      for (uint32_t index = 0; index < t.width(static_cast<int>(base)); index += len) {
        const HashRange r{base, index, len, 6 - base - 1};
        auto got = hashes_for(t, r, 512);
        ASSERT_TRUE(got.ok()) << got.error().message;
        const uint32_t uncles =
            std::max<int>(0, static_cast<int>(r.proof_layers) - log2_exact(len) + 1);
        ASSERT_EQ(got->size(), len + uncles);
        for (uint32_t i = 0; i < len; ++i)
          EXPECT_EQ((*got)[i], t.node(static_cast<int>(base), index + i));
        EXPECT_EQ(fold(*got, r), f.root) << base << " " << index << " " << len;
      }
    }
  }
  // What libtorrent asks from a magnet link: the whole piece layer (16 nodes, padded), with
  // proof layers it does not need; and one piece with two layers of proof.
  auto all = hashes_for(t, {2, 0, 16, 3}, 512);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 16u);
  auto one = hashes_for(t, {2, 9, 1, 1}, 512);
  ASSERT_TRUE(one.ok());
  ASSERT_EQ(one->size(), 3u);
  EXPECT_EQ((*one)[1], f.pieces[8]);                                  // the sibling
  EXPECT_EQ((*one)[2], Sha256::hash_pair(pad_root(2), pad_root(2)));  // the parent's sibling
  EXPECT_EQ(fold(*one, {2, 9, 1, 1}), t.node(4, 2));
}

TEST(PieceTree, BadRequestsAreRefused) {
  const File f = make_file(37, 4);
  const PieceTree t(f.pieces, f.piece_length, f.size);
  const HashRange bad[] = {
      {2, 0, 0, 0},           // no hashes
      {2, 0, 3, 0},           // not a power of two
      {2, 0, 1024, 0},        // over the limit
      {1, 0, 2, 0},           // below the piece layer
      {6, 0, 1, 0},           // the root's layer
      {0xFFFFFFFF, 0, 2, 0},  // far above
      {2, 2, 4, 0},           // not aligned
      {2, 16, 2, 0},          // past the layer
      {2, 0xFFFFFFFE, 2, 0},  // past it, where index + length would wrap in 32 bits
      {2, 0, 2, 4},           // proof up to the root
      {2, 0, 2, 0xFFFFFFFF},  // far past it
      {2, 0, 32, 0},          // wider than the layer
  };
  for (const HashRange& r : bad) {
    EXPECT_FALSE(hashes_for(t, r, 512).ok())
        << r.base_layer << " " << r.index << " " << r.length << " " << r.proof_layers;
  }
  EXPECT_TRUE(hashes_for(t, {2, 0, 2, 3}, 512).ok());
}

TEST(PieceTree, OneBlockPieces) {
  // piece length 16 KiB: the piece layer is the block layer.
  const File f = make_file(5, 1);
  const PieceTree t(f.pieces, f.piece_length, f.size);
  EXPECT_EQ(t.piece_layer(), 0);
  EXPECT_EQ(t.root_layer(), 3);
  EXPECT_EQ(t.root(), f.root);
  auto got = hashes_for(t, {0, 4, 2, 2}, 512);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(fold(*got, {0, 4, 2, 2}), f.root);
}

}  // namespace
}  // namespace evert::merkle
