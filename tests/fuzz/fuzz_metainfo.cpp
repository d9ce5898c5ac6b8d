// libFuzzer target: .torrent parsing and validation. What it accepts must hold together.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "evert/metainfo.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  auto m = evert::parse_metainfo(input);
  if (!m.ok()) return 0;
  // Invariants of an accepted torrent.
  if (!m->has_v1() && !m->has_v2()) std::abort();
  if (m->has_v1() != !m->pieces.empty() && m->stream_size > 0) std::abort();
  if (m->has_v1() && m->pieces.size() / 20 * m->piece_length < m->stream_size) std::abort();
  if (m->total_size == 0 || m->piece_length == 0) std::abort();
  for (const auto& f : m->files) {
    if (f.path.empty()) std::abort();
    for (const auto& c : f.path) {
      if (c.empty() || c == "." || c == ".." || c.find('/') != std::string::npos) std::abort();
    }
  }
  if (input.find(m->info_bytes) == std::string_view::npos) std::abort();
  return 0;
}
