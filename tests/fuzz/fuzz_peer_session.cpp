// libFuzzer target: the everseed's per-connection session (peer_session.h) fed any bytes in
// pieces, with the choke state the input chooses, as SeedServer feeds it. A step never reads
// past its input, stops at an interest change or a close, keeps the queue within its limit and
// queues only blocks within the torrent; every byte it sends is whole messages.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "peer_session.h"

using namespace evert;
using namespace evert::everseed;

namespace {

const Metainfo& meta() {
  static const Metainfo m = [] {
    Metainfo x;
    x.piece_length = 32768;
    x.stream_size = 20 * 32768 - 7;
    x.pieces = std::string(20 * 20, 'p');
    x.info_hash_v1 = Sha1Digest{};
    x.info_bytes = "d" + std::string(20'000, 'i') + "e";
    return x;
  }();
  return m;
}

void check_messages(std::string_view out) {
  while (!out.empty()) {
    const wire::Frame f = wire::parse_message(out, 1 << 20);
    if (f.status != wire::Frame::Status::kMessage) std::abort();
    out.remove_prefix(f.consumed);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  SessionLimits limits;
  limits.request_queue = 1 + data[0] % 16;
  limits.max_block = 16384;
  PeerSession s(meta(), (data[1] & 1) != 0, limits);
  const size_t step_size = 1 + data[1] % 97;
  const std::string_view input(reinterpret_cast<const char*>(data) + 2, size - 2);
  std::string buffer;
  bool unchoked = false;
  for (size_t at = 0; at < input.size(); at += step_size) {
    buffer.append(input.substr(at, step_size));
    for (int guard = 0; guard < 1000; ++guard) {
      const SessionStep st = s.read(buffer, unchoked);
      if (st.consumed > buffer.size()) std::abort();
      check_messages(st.send);
      if (s.queue().size() > limits.request_queue) std::abort();
      for (const Block& b : s.queue()) {
        if (b.index >= s.pieces() || b.length == 0 || b.length > limits.max_block ||
            uint64_t{b.begin} + b.length > piece_size(meta(), b.index)) {
          std::abort();
        }
      }
      buffer.erase(0, st.consumed);
      if (st.close) return 0;
      if (!st.interested) break;
      unchoked = *st.interested;  // the choker unchokes whoever is interested
    }
    if (s.queue().size() > 8) s.queue().clear();  // served
  }
  return 0;
}
