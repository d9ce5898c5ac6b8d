// libFuzzer target: the web module's parsers of uploads and forms (modules/web/src/multipart.h,
// form.h, names.h) and the feed's escaping (feed.h). The input is two bytes that drive the
// chunking (the largest chunk and a seed), a Content-Type line, a newline, and a body. The body
// is parsed as multipart/form-data whole and in random chunks, which must give the same parts
// and the same outcome; then as a urlencoded form, a Cookie header, a name, a relative path and
// a feed item's title, each checked for its promises.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "feed.h"
#include "form.h"
#include "multipart.h"
#include "names.h"
#include "text.h"

namespace {

using namespace evert::web;

void check(bool ok) {
  if (!ok) std::abort();
}

struct Seen {
  std::string name;
  std::optional<std::string> filename;
  std::string content_type;
  std::string data;
  bool ended = false;
  bool operator==(const Seen&) const = default;
};

struct Outcome {
  std::vector<Seen> parts;
  bool ok = true;
  std::string error;
  bool operator==(const Outcome&) const = default;
};

// Parses `body` in chunks of sizes from `next_size` (0 means the rest).
template <class NextSize>
Outcome parse_multipart(std::string_view body, const std::string& boundary, NextSize next_size) {
  Outcome out;
  MultipartCallbacks cb;
  cb.on_part_begin = [&](const MultipartPart& p) -> evert::Status {
    check(out.parts.empty() || out.parts.back().ended);
    out.parts.push_back({p.name, p.filename, p.content_type, {}, false});
    return evert::Ok{};
  };
  cb.on_part_data = [&](std::string_view d) -> evert::Status {
    check(!d.empty() && !out.parts.empty() && !out.parts.back().ended);
    out.parts.back().data.append(d);
    return evert::Ok{};
  };
  cb.on_part_end = [&]() -> evert::Status {
    check(!out.parts.empty() && !out.parts.back().ended);
    out.parts.back().ended = true;
    return evert::Ok{};
  };
  MultipartLimits limits;
  limits.max_head_bytes = 256;
  limits.max_parts = 16;
  limits.max_total_head_bytes = 1024;
  MultipartParser parser(boundary, limits, cb);
  evert::Status s = evert::Ok{};
  while (!body.empty() && s.ok()) {
    size_t n = next_size();
    if (n == 0 || n > body.size()) n = body.size();
    s = parser.feed(body.substr(0, n));
    body.remove_prefix(n);
  }
  if (s.ok()) s = parser.finish();
  check(parser.parts() == out.parts.size());
  if (!s.ok()) {
    out.ok = false;
    out.error = s.error().describe();
    // A failed parser stays failed.
    check(parser.feed("x").error().message == s.error().message);
  }
  return out;
}

bool valid_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    if (text::next_code_point(s, i) < 0) return false;
  }
  return true;
}

bool is_bidi_control(int32_t cp) {
  return (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069);
}

// An error message quotes names escaped: valid UTF-8 without control or bidirectional
// override characters.
void check_message(std::string_view m) {
  for (size_t i = 0; i < m.size();) {
    const int32_t cp = text::next_code_point(m, i);
    check(cp >= 0x20 && cp != 0x7F && !(cp >= 0x80 && cp <= 0x9F) && !is_bidi_control(cp));
  }
}

void check_name(std::string_view n) {
  check(!n.empty() && n.size() <= kMaxNameBytes && valid_utf8(n));
  check(n != "." && n != ".." && n.front() != ' ' && n.back() != ' ' && n.back() != '.');
  for (size_t i = 0; i < n.size();) {
    const int32_t cp = text::next_code_point(n, i);
    check(cp >= 0x20 && cp != 0x7F && !(cp >= 0x80 && cp <= 0x9F) && cp != '/' && cp != '\\');
    check(!is_bidi_control(cp));
  }
  auto again = sanitise_name(n);
  check(again.ok() && *again == n);
}

void fuzz_multipart(uint8_t max_chunk, uint8_t seed, std::string_view in) {
  const size_t nl = in.find('\n');
  const std::string_view content_type = in.substr(0, nl);
  const std::string_view body = nl == std::string_view::npos ? in : in.substr(nl + 1);
  const auto boundary = multipart_boundary(content_type);
  if (boundary) {
    check(!boundary->empty() && boundary->size() <= 70);
    check(boundary->find_first_of("\r\n\"") == std::string::npos);
  }
  const std::string b = boundary ? *boundary : "b";
  const Outcome whole = parse_multipart(body, b, [] { return size_t{0}; });
  uint32_t state = seed * 2654435761u + 1;
  const Outcome chunked = parse_multipart(body, b, [&] {
    state ^= state << 13;
    state ^= state >> 17;
    state ^= state << 5;
    return size_t{1} + state % (size_t{max_chunk} + 1);
  });
  check(whole == chunked);
}

void fuzz_forms(std::string_view s) {
  for (PlusMode mode : {PlusMode::kLiteral, PlusMode::kSpace}) {
    auto d = percent_decode(s, mode);
    if (d.ok()) check(d->size() <= s.size());
    if (!d.ok()) check(d.error().offset < s.size() && s[d.error().offset] == '%');
  }
  auto fields = parse_urlencoded(s);
  if (fields.ok()) {
    check(fields->size() <= FormLimits{}.max_fields);
    if (!fields->empty()) check(form_value(*fields, fields->front().first).has_value());
  }
  if (auto c = parse_cookie(s, "sid")) check(c->size() <= s.size());
  const std::string escaped = html_escape(s);
  check(escaped.find_first_of("<>\"'") == std::string::npos);
}

void fuzz_names(std::string_view s) {
  auto name = sanitise_name(s);
  if (name.ok()) {
    check_name(*name);
  } else {
    check_message(name.error().message);
  }
  auto path = sanitise_relative_path(s);
  if (path.ok()) {
    check(!path->empty() && path->size() <= kMaxPathDepth);
    for (const auto& c : *path)
      check_name(c);
  } else {
    check_message(path.error().message);
  }
}

// Whatever the text, the document is UTF-8 with only the characters XML 1.0 allows.
void fuzz_feed(std::string_view s) {
  FeedItem item;
  item.title = std::string(s);
  item.magnet = std::string(s);
  const std::string xml = render_rss({std::string(s), "l", "d", "u", std::nullopt}, {item});
  check(valid_utf8(xml));
  for (size_t i = 0; i < xml.size();) {
    const int32_t cp = text::next_code_point(xml, i);
    check(cp >= 0x20 || cp == '\t' || cp == '\n' || cp == '\r');
    check(cp != 0xFFFE && cp != 0xFFFF);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const std::string_view in(reinterpret_cast<const char*>(data) + 2, size - 2);
  fuzz_multipart(data[0], data[1], in);
  fuzz_forms(in);
  fuzz_names(in);
  fuzz_feed(in);
  return 0;
}
