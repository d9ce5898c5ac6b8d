// libFuzzer target: the web seed's request parsers (modules/web/src/web_seed_http.h). The input
// is a path, a newline, a Range header, a newline, an If-Range header; every partial answer must
// lie inside the file, and every accepted path be free of escapes.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "web_seed_http.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  const size_t a = in.find('\n');
  const std::string_view path = in.substr(0, a);
  in = a == std::string_view::npos ? std::string_view{} : in.substr(a + 1);
  const size_t b = in.find('\n');
  const std::string_view range = in.substr(0, b);
  const std::string_view if_range = b == std::string_view::npos ? "" : in.substr(b + 1);
  if (auto p = evert::web::parse_seed_path(path)) {
    if (p->info_hash.size() != 20 || p->components.empty()) std::abort();
    for (const auto& c : p->components) {
      if (c.empty() || c == "." || c == ".." || c.find('/') != std::string::npos) std::abort();
    }
  }
  for (uint64_t file_size : {uint64_t{0}, uint64_t{1}, uint64_t{1000}, uint64_t{1} << 40}) {
    const auto r = evert::web::parse_range(range, file_size);
    if (r.kind == evert::web::RangeAnswer::Kind::kPartial &&
        (r.range.first > r.range.last || r.range.last >= file_size)) {
      std::abort();
    }
  }
  (void)evert::web::if_range_matches(if_range, "\"1-2\"", "Sun, 06 Nov 1994 08:49:37 GMT");
  return 0;
}
