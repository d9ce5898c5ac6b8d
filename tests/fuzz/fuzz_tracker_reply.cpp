// libFuzzer target: what trackers send the everseed's announcer (lib/tracker_client): an HTTP
// announce reply body, a UDP datagram, or a tracker URL from a torrent, by the first byte.
// Whatever is accepted is bounded: texts at most kMaxMessage printable bytes, URLs ASCII.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "evert/tracker_client.h"

namespace {
void check_text(const std::string& s) {
  if (s.size() > evert::tracker_client::kMaxMessage) std::abort();
  for (unsigned char c : s)
    if (c < 0x20 || c >= 0x7f) std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace evert::tracker_client;
  if (size == 0) return 0;
  const std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  switch (data[0] % 3) {
    case 0:
      if (auto r = parse_http_reply(rest)) {
        check_text(r->failure);
        check_text(r->warning);
      }
      break;
    case 1:
      if (auto r = parse_udp_response({data + 1, size - 1})) check_text(r->reply.failure);
      break;
    default:
      if (auto u = parse_tracker_url(rest)) {
        if (u->host.empty() || u->port == 0 || u->target.empty()) std::abort();
        // What we would send to it is well-formed too.
        AnnounceRequest a;
        const std::string t = http_announce_target(*u, a);
        if (t.find(' ') != std::string::npos || t[0] != '/') std::abort();
      }
      break;
  }
  return 0;
}
