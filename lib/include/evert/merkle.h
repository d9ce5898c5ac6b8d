// BEP 52 merkle trees: SHA-256 over 16 KiB blocks, padded to a power of two.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "evert/hash.h"
#include "evert/result.h"

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

// A file's tree from its piece layer up to its root, every node kept: what a seed needs to
// answer BEP 52 hash requests without reading the file. Layers are numbered from the 16 KiB
// block layer (0) up; the piece layer is log2(piece_length / 16 KiB), the root's layer
// log2(next_pow2(blocks of the file)). Nodes past the end of the file are pad nodes: the root of
// an all-zero subtree of their height (BEP 52).
//
// Thread-safety: an ordinary value; const methods may be called from any thread.
class PieceTree {
 public:
  // `pieces`: the file's piece layer as in the torrent's "piece layers" (one hash per piece).
  // Preconditions: piece_length a power of two >= kBlockSize; file_size > piece_length (only
  // such files have a piece layer); pieces.size() == ceil(file_size / piece_length).
  PieceTree(std::span<const Sha256Digest> pieces, uint64_t piece_length, uint64_t file_size);

  [[nodiscard]] int piece_layer() const { return piece_layer_; }
  [[nodiscard]] int root_layer() const { return root_layer_; }
  [[nodiscard]] const Sha256Digest& root() const { return layers_.back().front(); }
  // Nodes in a layer, pad nodes included: 2^(root_layer - layer).
  [[nodiscard]] uint64_t width(int layer) const { return uint64_t{1} << (root_layer_ - layer); }
  // Precondition: piece_layer() <= layer <= root_layer(), index < width(layer).
  [[nodiscard]] const Sha256Digest& node(int layer, uint64_t index) const;

 private:
  int piece_layer_ = 0;
  int root_layer_ = 0;
  std::vector<std::vector<Sha256Digest>> layers_;  // from the piece layer up, without pad nodes
  std::vector<Sha256Digest> pads_;                 // the pad node of each of those layers
};

// A BEP 52 hash request's range: `length` nodes of layer `base_layer` from `index`, and
// `proof_layers` layers of proof above them.
struct HashRange {
  uint32_t base_layer = 0;
  uint32_t index = 0;
  uint32_t length = 0;
  uint32_t proof_layers = 0;
};

// The hashes answering a request (BEP 52 "hashes"): the `length` requested nodes, then the
// uncle hashes that tie them to the root, lowest layer first. The requested nodes form a subtree
// whose top is at layer base + log2(length); there is one uncle (the sibling of the ancestor)
// for each layer from that top up to base + proof_layers, so max(0, proof_layers - log2(length)
// + 1) of them, as libtorrent counts. Errors (the request is to be rejected): length not a power
// of two or over `max_length`, index not a multiple of length, a range past the layer's width,
// a base layer below the piece layer (this tree has no block hashes) or at or above the root,
// proof layers reaching the root (the peer has the root: it is the file's pieces root).
Result<std::vector<Sha256Digest>> hashes_for(const PieceTree& tree, const HashRange& range,
                                             uint32_t max_length);

}  // namespace evert::merkle
