// libFuzzer target: the HTTP tracker's query parsers and the responses built from what they
// accept (through a real swarm), which must be valid bencode.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "evert/bencode.h"
#include "evert/tracker/http_proto.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view q(reinterpret_cast<const char*>(data), size);
  evert::tracker::QueryLimits limits;
  (void)evert::tracker::url_decode(q);
  (void)evert::tracker::parse_scrape(q, limits);
  auto a = evert::tracker::parse_announce(q, limits);
  if (!a.ok()) return 0;
  evert::tracker::SwarmOptions o;
  o.whitelist = false;
  static evert::tracker::SwarmTable swarms(o);
  a->request.endpoint.ip = {127, 0, 0, 1};
  evert::tracker::AnnounceReply reply;
  swarms.announce(a->request, 1000, reply);
  std::string out;
  evert::tracker::write_announce_response(*a, reply, {}, out);
  if (!evert::bencode::decode(out).ok()) std::abort();
  if (swarms.peer_count() > 10000) swarms.expire(1'000'000);
  return 0;
}
