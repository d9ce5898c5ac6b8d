#include "web_seed_http.h"

#include <charconv>
#include <cstdio>
#include <ctime>

#include "evert/hash.h"
#include "text.h"

namespace evert::web {
namespace {

// A non-empty run of digits that fits 64 bits.
std::optional<uint64_t> number(std::string_view s) {
  if (s.empty()) return std::nullopt;
  for (char ch : s) {
    if (ch < '0' || ch > '9') return std::nullopt;
  }
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || p != s.data() + s.size()) return std::nullopt;
  return v;
}

// One byte-range-spec or suffix-range: nullopt when invalid (the whole header is then ignored).
// `ok` false: valid but unsatisfiable for `size`.
std::optional<ByteRange> one_range(std::string_view spec, uint64_t size, bool& ok) {
  const size_t dash = spec.find('-');
  if (dash == std::string_view::npos) return std::nullopt;
  const std::string_view a = spec.substr(0, dash);
  const std::string_view b = spec.substr(dash + 1);
  ok = true;
  if (a.empty()) {  // suffix-range: the last N bytes
    auto n = number(b);
    if (!n) return std::nullopt;
    if (*n == 0 || size == 0) {
      ok = false;
      return ByteRange{};
    }
    return ByteRange{*n >= size ? 0 : size - *n, size - 1};
  }
  auto first = number(a);
  if (!first) return std::nullopt;
  uint64_t last = UINT64_MAX;
  if (!b.empty()) {
    auto l = number(b);
    if (!l || *l < *first) return std::nullopt;
    last = *l;
  }
  if (*first >= size) {
    ok = false;
    return ByteRange{};
  }
  return ByteRange{*first, std::min(last, size - 1)};
}

}  // namespace

RangeAnswer parse_range(std::string_view header, uint64_t size) {
  RangeAnswer full;
  header = text::trim_ows(header);
  const size_t eq = header.find('=');
  if (eq == std::string_view::npos || !text::iequals(text::trim_ows(header.substr(0, eq)), "bytes"))
    return full;
  std::string_view rest = header.substr(eq + 1);
  size_t count = 0;
  size_t satisfiable = 0;
  ByteRange first_ok;
  while (true) {
    const size_t comma = rest.find(',');
    const std::string_view spec = text::trim_ows(rest.substr(0, comma));
    // RFC 9110 §5.6.1: empty list elements are allowed and ignored.
    if (!spec.empty()) {
      bool ok = false;
      auto r = one_range(spec, size, ok);
      if (!r) return full;
      ++count;
      if (ok && satisfiable++ == 0) first_ok = *r;
    }
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  if (count == 0) return full;
  if (satisfiable == 0) return {RangeAnswer::Kind::kUnsatisfiable, {}};
  if (count > 1) return full;
  return {RangeAnswer::Kind::kPartial, first_ok};
}

std::string entity_tag(uint64_t size, int64_t mtime_ns) {
  char buf[64];
  const int n =
      std::snprintf(buf, sizeof buf, "\"%llx-%llx\"", static_cast<unsigned long long>(size),
                    static_cast<unsigned long long>(mtime_ns));
  return std::string(buf, static_cast<size_t>(n));
}

std::string http_date(int64_t unix_seconds) {
  const auto t = static_cast<time_t>(unix_seconds);
  tm g{};
  gmtime_r(&t, &g);
  char buf[40];
  const size_t n = std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &g);
  return std::string(buf, n);
}

bool if_range_matches(std::string_view if_range, std::string_view etag,
                      std::string_view last_modified) {
  if_range = text::trim_ows(if_range);
  if (if_range.empty()) return true;
  if (if_range.front() == '"') return if_range == etag;
  if (if_range.substr(0, 2) == "W/") return false;
  return if_range == last_modified;
}

std::optional<std::string> percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    if (i + 2 >= s.size()) return std::nullopt;
    auto byte = from_hex(s.substr(i + 1, 2), 1);
    if (!byte) return std::nullopt;
    out += (*byte)[0];
    i += 2;
  }
  return out;
}

std::optional<SeedPath> parse_seed_path(std::string_view path) {
  constexpr std::string_view kPrefix = "/data/";
  if (path.substr(0, kPrefix.size()) != kPrefix) return std::nullopt;
  path.remove_prefix(kPrefix.size());
  const size_t slash = path.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  auto hash = from_hex(path.substr(0, slash), 20);
  if (!hash) return std::nullopt;
  SeedPath out{*hash, {}};
  std::string_view rest = path.substr(slash + 1);
  while (true) {
    const size_t e = rest.find('/');
    auto c = percent_decode(rest.substr(0, e));
    if (!c || c->empty() || *c == "." || *c == ".." ||
        c->find_first_of(std::string_view("/\0", 2)) != std::string::npos) {
      return std::nullopt;
    }
    out.components.push_back(std::move(*c));
    if (e == std::string_view::npos) break;
    rest.remove_prefix(e + 1);
  }
  return out;
}

}  // namespace evert::web
