// libFuzzer target: magnet link parsing. What it accepts must survive a round trip.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "evert/magnet.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  auto g = evert::parse_magnet(input);
  if (!g.ok()) return 0;
  auto again = evert::parse_magnet(evert::to_uri(*g));
  if (!again.ok()) std::abort();
  if (again->info_hash_v1 != g->info_hash_v1 || again->info_hash_v2 != g->info_hash_v2 ||
      again->name != g->name || again->trackers != g->trackers || again->size != g->size ||
      again->web_seeds != g->web_seeds || again->peers != g->peers ||
      again->select_only != g->select_only) {
    std::abort();
  }
  return 0;
}
