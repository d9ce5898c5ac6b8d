#include "evert/units.h"

#include <array>
#include <cctype>
#include <charconv>
#include <cstdio>

namespace evert {

std::optional<uint64_t> parse_size(std::string_view text) {
  uint64_t n = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc() || ptr == text.data()) return std::nullopt;
  std::string suffix(ptr, text.data() + text.size());
  for (auto& c : suffix)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (suffix.size() > 1 && suffix.back() == 'b' && suffix != "b") suffix.pop_back();  // "kb"
  if (suffix.size() > 1 && suffix.back() == 'i') suffix.pop_back();                   // "ki"
  int shift = 0;
  if (suffix.empty() || suffix == "b") {
    shift = 0;
  } else if (suffix == "k") {
    shift = 10;
  } else if (suffix == "m") {
    shift = 20;
  } else if (suffix == "g") {
    shift = 30;
  } else if (suffix == "t") {
    shift = 40;
  } else {
    return std::nullopt;
  }
  if (shift > 0 && n > (UINT64_MAX >> shift)) return std::nullopt;
  return n << shift;
}

std::string format_size(uint64_t bytes) {
  static constexpr std::array<const char*, 6> kUnits = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  if (bytes < 1024) return std::to_string(bytes) + " B";
  double v = static_cast<double>(bytes);
  size_t u = 0;
  while (v >= 1024 && u + 1 < kUnits.size()) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f %s", v, kUnits[u]);
  return buf;
}

}  // namespace evert
