#include "evert/merkle.h"

#include <bit>
#include <cassert>
#include <string>

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

PieceTree::PieceTree(std::span<const Sha256Digest> pieces, uint64_t piece_length,
                     uint64_t file_size) {
  assert(std::has_single_bit(piece_length) && piece_length >= kBlockSize);
  piece_layer_ = log2_exact(piece_length / kBlockSize);
  root_layer_ = log2_exact(next_pow2((file_size + kBlockSize - 1) / kBlockSize));
  assert(root_layer_ > piece_layer_ && !pieces.empty());
  layers_.emplace_back(pieces.begin(), pieces.end());
  pads_.push_back(pad_root(piece_layer_));
  for (int layer = piece_layer_ + 1; layer <= root_layer_; ++layer) {
    const std::vector<Sha256Digest>& below = layers_.back();
    const Sha256Digest& pad = pads_.back();
    std::vector<Sha256Digest> up((below.size() + 1) / 2);
    for (size_t i = 0; i < up.size(); ++i) {
      up[i] = Sha256::hash_pair(below[2 * i], 2 * i + 1 < below.size() ? below[2 * i + 1] : pad);
    }
    pads_.push_back(Sha256::hash_pair(pad, pad));
    layers_.push_back(std::move(up));
  }
}

const Sha256Digest& PieceTree::node(int layer, uint64_t index) const {
  assert(layer >= piece_layer_ && layer <= root_layer_ && index < width(layer));
  const auto& l = layers_[static_cast<size_t>(layer - piece_layer_)];
  return index < l.size() ? l[index] : pads_[static_cast<size_t>(layer - piece_layer_)];
}

Result<std::vector<Sha256Digest>> hashes_for(const PieceTree& tree, const HashRange& r,
                                             uint32_t max_length) {
  // Every field is the peer's: check each bound before any shift or index uses it.
  if (r.length == 0 || !std::has_single_bit(r.length) || r.length > max_length) {
    return Error("length " + std::to_string(r.length) + " is not a power of two up to " +
                 std::to_string(max_length));
  }
  if (r.base_layer < static_cast<uint32_t>(tree.piece_layer())) {
    return Error("base layer " + std::to_string(r.base_layer) + " is below the piece layer");
  }
  if (r.base_layer >= static_cast<uint32_t>(tree.root_layer())) {
    return Error("base layer " + std::to_string(r.base_layer) + " is not below the root");
  }
  const int base = static_cast<int>(r.base_layer);
  const uint64_t width = tree.width(base);
  if (r.index % r.length != 0 || uint64_t{r.index} + r.length > width) {
    return Error("nodes " + std::to_string(r.index) + "+" + std::to_string(r.length) +
                 " are not an aligned range of the layer's " + std::to_string(width));
  }
  if (r.proof_layers >= static_cast<uint32_t>(tree.root_layer() - base)) {
    return Error(std::to_string(r.proof_layers) + " proof layers reach the root");
  }
  std::vector<Sha256Digest> out;
  out.reserve(r.length + r.proof_layers);
  for (uint64_t i = r.index; i < uint64_t{r.index} + r.length; ++i)
    out.push_back(tree.node(base, i));
  // The requested nodes hash up to their own subtree's top; from there each layer needs the
  // sibling of the ancestor, up to base + proof_layers (at most the root's children).
  const int top = base + log2_exact(r.length);
  for (int layer = top; layer <= base + static_cast<int>(r.proof_layers); ++layer) {
    const uint64_t ancestor = uint64_t{r.index} >> (layer - base);
    out.push_back(tree.node(layer, ancestor ^ 1));
  }
  return out;
}

}  // namespace evert::merkle
