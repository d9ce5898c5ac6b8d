// The pure parts of the web seed (BEP 19): the Range and If-Range headers (RFC 9110 §14), the
// validators (ETag, Last-Modified) of a file, and the request path. No I/O: the unit tests and
// fuzzers call them alone.
//
// Thread-safety: pure functions, any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace evert::web {

// An inclusive byte range [first, last] of a representation.
struct ByteRange {
  uint64_t first = 0;
  uint64_t last = 0;
  friend bool operator==(const ByteRange&, const ByteRange&) = default;
};

struct RangeAnswer {
  enum class Kind {
    kFull,           // no Range, or one the server ignores (malformed, several ranges): 200
    kPartial,        // one satisfiable range: 206 with `range`
    kUnsatisfiable,  // no range overlaps the representation: 416, Content-Range bytes */SIZE
  };
  Kind kind = Kind::kFull;
  ByteRange range;
};

// What to answer to `header` (the Range header's value, empty when absent) for a representation
// of `size` bytes. RFC 9110 §14.2: a syntactically invalid Range (or one with a range whose last
// position is before its first) is ignored; an unknown unit is ignored. Several ranges are
// answered with the whole file (a server may ignore Range; BEP 19 clients ask for one), unless
// none of them is satisfiable (416). A suffix range longer than the file is the whole file; a
// last position past the end is clamped.
RangeAnswer parse_range(std::string_view header, uint64_t size);

// The strong entity tag of a file stamped with `size` and `mtime_ns`, quotes included.
std::string entity_tag(uint64_t size, int64_t mtime_ns);
// An IMF-fixdate (RFC 9110 §5.6.7) for `unix_seconds`: "Sun, 06 Nov 1994 08:49:37 GMT".
std::string http_date(int64_t unix_seconds);

// Whether a Range may be honoured given If-Range's value `if_range` (RFC 9110 §13.1.5): true
// when absent, or when it is the current strong `etag`, or exactly the current `last_modified`.
// A weak tag never matches.
bool if_range_matches(std::string_view if_range, std::string_view etag,
                      std::string_view last_modified);

// A web seed path "/data/<40 hex>/<name>[/<component>...]", split: the info-hash's 20 bytes and
// the percent-decoded components. nullopt when it is not one: another prefix, a bad hash, an
// empty, "." or ".." component, or one that decodes to a '/', a NUL or a bad %-escape.
struct SeedPath {
  std::string info_hash;  // 20 bytes
  std::vector<std::string> components;
};
std::optional<SeedPath> parse_seed_path(std::string_view path);

// Percent-decodes `s`; nullopt on a malformed escape.
std::optional<std::string> percent_decode(std::string_view s);

}  // namespace evert::web
