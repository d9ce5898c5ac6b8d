// libFuzzer target: the peer wire codec (handshake, message framing, BEP 10 extension
// handshake, BEP 9 ut_metadata), and BEP 52 hash requests answered from a merkle tree as the
// everseed answers them. Every message parsed must re-serialize to the same bytes where the
// codec has a writer for it, an answer must have the size its request implies, and nothing may
// read past the buffer.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "evert/merkle.h"
#include "evert/peer_wire.h"

using namespace evert::wire;

namespace {

// A file of 1,000 pieces of 64 KiB (4 blocks each), the last one partial: root at layer 12.
const evert::merkle::PieceTree& tree() {
  static const evert::merkle::PieceTree t = [] {
    std::vector<evert::Sha256Digest> pieces(1000);
    for (size_t i = 0; i < pieces.size(); ++i)
      pieces[i] = evert::Sha256::hash(std::to_string(i));
    return evert::merkle::PieceTree(pieces, 65536, 999 * 65536 + 100);
  }();
  return t;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  if (in.size() >= kHandshakeSize) {
    (void)parse_handshake(in);
    in.remove_prefix(kHandshakeSize);
  }
  for (int n = 0; n < 10'000 && !in.empty(); ++n) {
    const Frame f = parse_message(in, 1 << 17);
    if (f.status != Frame::Status::kMessage) break;
    if (f.consumed == 0 || f.consumed > in.size()) std::abort();
    const Message& m = f.message;
    std::string again;
    if (m.keep_alive) {
      put_keep_alive(again);
    } else if (m.id == MsgId::kRequest || m.id == MsgId::kCancel || m.id == MsgId::kReject) {
      put_block_message(again, m.id, m.index, m.begin, m.length);
    } else if (m.id == MsgId::kHave) {
      put_have(again, m.index);
    } else if (m.id == MsgId::kBitfield) {
      put_bitfield(again, m.payload);
    } else if (m.id == MsgId::kExtended) {
      put_extended(again, m.extended_id, m.payload);
      if (m.extended_id == 0) {
        (void)parse_extension_handshake(m.payload);
      } else if (auto md = parse_metadata_message(m.payload); md.ok()) {
        if (md->data.size() > m.payload.size()) std::abort();
      }
    } else if (m.id == MsgId::kHashRequest || m.id == MsgId::kHashReject) {
      put_hash_message(again, m.id, m.hash, {});
      const evert::merkle::HashRange r{m.hash.base_layer, m.hash.index, m.hash.length,
                                       m.hash.proof_layers};
      if (auto h = evert::merkle::hashes_for(tree(), r, 512); h.ok()) {
        const int top = static_cast<int>(r.base_layer) + evert::merkle::log2_exact(r.length);
        const int uncles = std::max(0, static_cast<int>(r.base_layer + r.proof_layers) - top + 1);
        if (h->size() != r.length + static_cast<size_t>(uncles)) std::abort();
      }
    }
    if (!again.empty() && again != in.substr(0, f.consumed)) std::abort();
    in.remove_prefix(f.consumed);
  }
  return 0;
}
