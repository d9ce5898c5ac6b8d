// libFuzzer target: the peer wire codec (handshake, message framing, BEP 10 extension
// handshake, BEP 9 ut_metadata). Every message parsed must re-serialize to the same bytes where
// the codec has a writer for it, and nothing may read past the buffer.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "evert/peer_wire.h"

using namespace evert::wire;

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
    }
    if (!again.empty() && again != in.substr(0, f.consumed)) std::abort();
    in.remove_prefix(f.consumed);
  }
  return 0;
}
