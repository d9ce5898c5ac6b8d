// libFuzzer target: one UDP tracker datagram. The first 8 bytes of the input, when the input
// is long enough, are replaced by a valid connection id half of the time, so the fuzzer gets
// past the check into announce and scrape. A response is never larger than its buffer, and
// an unauthenticated one never larger than the request.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "evert/tracker/udp_proto.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace evert::tracker;
  SwarmOptions o;
  o.whitelist = false;
  static SwarmTable swarms(o);
  static UdpTracker udp(swarms, {});
  static std::vector<uint8_t> out(UdpTracker::kMaxResponse);
  Endpoint from;
  from.ip = {127, 0, 0, 1};
  from.port = 4242;
  std::vector<uint8_t> packet(data, data + size);
  bool authenticated = false;
  if (size >= 16 && (data[0] & 1)) {
    const uint64_t cid = udp.connection_id(from, 1000 / 60);
    for (int i = 0; i < 8; ++i)
      packet[i] = static_cast<uint8_t>(cid >> (56 - 8 * i));
    authenticated = true;
  }
  if (size >= 8) {    // the fuzzer may also have found a valid id on its own
    uint64_t id = 0;  // big-endian on the wire
    for (int i = 0; i < 8; ++i)
      id = id << 8 | packet[i];
    for (int64_t w = 1000 / 60 - 2; w <= 1000 / 60; ++w) {
      if (id == udp.connection_id(from, w)) authenticated = true;
    }
  }
  const size_t n = udp.handle(packet, from, 1000, out.data());
  if (n > UdpTracker::kMaxResponse) std::abort();
  const bool connect = size >= 16 && data[8] == 0 && data[9] == 0 && data[10] == 0 && data[11] == 0;
  if (!authenticated && !connect && n > size) {
    std::fprintf(stderr, "amplified: %zu bytes for %zu, action %u\n", n, size,
                 packet.size() >= 12 ? packet[11] : 0u);
    std::abort();
  }
  if (swarms.peer_count() > 10000) swarms.expire(1'000'000);
  return 0;
}
