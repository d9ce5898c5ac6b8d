#include "multipart.h"

#include <algorithm>
#include <cassert>
#include <cstring>
#include <utility>
#include <vector>

#include "form.h"
#include "text.h"

namespace evert::web {
namespace {

using text::iequals;
using text::trim_ows;

struct Param {
  std::string_view name;
  std::string value;
};

void skip_ows(std::string_view s, size_t& i) {
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t'))
    ++i;
}

// A quoted-string's content starting after the opening quote at s[i]; advances `i` past the
// closing quote. A backslash escapes only '"' and '\': browsers send other backslashes (a
// Windows-ish file name) literally. nullopt when the quote is not closed.
std::optional<std::string> quoted_string(std::string_view s, size_t& i) {
  std::string value;
  while (i < s.size()) {
    const char c = s[i++];
    if (c == '"') return value;
    if (c == '\\' && i < s.size() && (s[i] == '"' || s[i] == '\\')) {
      value += s[i++];
      continue;
    }
    value += c;
  }
  return std::nullopt;
}

// Splits a header value of the form `type *( ";" name "=" ( token / quoted-string ) )`, as
// Content-Type and Content-Disposition are. Empty parameters (";;", a trailing ';') are skipped.
// False when malformed.
bool split_params(std::string_view s, std::string_view& type, std::vector<Param>& params) {
  size_t i = s.find(';');
  type = trim_ows(s.substr(0, i));
  if (i == std::string_view::npos) return true;
  ++i;
  while (true) {
    skip_ows(s, i);
    if (i == s.size()) return true;
    if (s[i] == ';') {
      ++i;
      continue;
    }
    size_t eq = i;
    while (eq < s.size() && s[eq] != '=' && s[eq] != ';')
      ++eq;
    if (eq == s.size() || s[eq] != '=') return false;
    const std::string_view name = trim_ows(s.substr(i, eq - i));
    if (name.empty()) return false;
    i = eq + 1;
    skip_ows(s, i);
    std::string value;
    if (i < s.size() && s[i] == '"') {
      ++i;
      auto q = quoted_string(s, i);
      if (!q) return false;
      value = std::move(*q);
      skip_ows(s, i);
      if (i < s.size() && s[i] != ';') return false;
    } else {
      const size_t end = std::min(s.find(';', i), s.size());
      value = std::string(trim_ows(s.substr(i, end - i)));
      i = end;
    }
    params.push_back({name, std::move(value)});
  }
}

const std::string* find_param(const std::vector<Param>& params, std::string_view name) {
  for (const auto& p : params) {
    if (iequals(p.name, name)) return &p.value;
  }
  return nullptr;
}

// RFC 2046 §5.1.1 bchars.
bool is_bchar(char c) {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  return std::strchr("'()+_,-./:=? ", c) != nullptr && c != '\0';
}

// Undoes the HTML standard's escaping of field names and file names in multipart/form-data:
// browsers send '"' as %22, CR as %0D and LF as %0A, and escape nothing else (so a name that
// really held "%22" is ambiguous; the standard accepts that).
std::string unescape_html_form(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      const char a = s[i + 1];
      const char b = static_cast<char>(s[i + 2] | 0x20);
      if (a == '2' && s[i + 2] == '2') {
        out += '"';
        i += 2;
        continue;
      }
      if (a == '0' && (b == 'a' || b == 'd')) {
        out += b == 'a' ? '\n' : '\r';
        i += 2;
        continue;
      }
    }
    out += s[i];
  }
  return out;
}

// An RFC 8187 ext-value ("UTF-8''%e2%82%ac%20rates.txt") as UTF-8; nullopt when malformed, in
// an unknown charset or not valid in its charset (the plain `filename` is then used).
std::optional<std::string> ext_value(std::string_view v) {
  const size_t q1 = v.find('\'');
  if (q1 == std::string_view::npos) return std::nullopt;
  const size_t q2 = v.find('\'', q1 + 1);
  if (q2 == std::string_view::npos) return std::nullopt;
  const std::string_view charset = v.substr(0, q1);
  const std::string_view encoded = v.substr(q2 + 1);
  auto decoded = percent_decode(encoded, PlusMode::kLiteral);
  if (!decoded.ok()) return std::nullopt;
  const std::string& bytes = *decoded;
  if (iequals(charset, "UTF-8")) {
    for (size_t i = 0; i < bytes.size();) {
      if (text::next_code_point(bytes, i) < 0) return std::nullopt;
    }
    return bytes;
  }
  if (iequals(charset, "ISO-8859-1")) {
    std::string out;
    for (char c : bytes)
      text::append_utf8(out, static_cast<unsigned char>(c));
    return out;
  }
  return std::nullopt;
}

// A part's header lines (each ending in CRLF) as a MultipartPart (RFC 7578 §4.2: a
// Content-Disposition of type form-data with a name is required). Obsolete line folding is
// unfolded; headers other than Content-Disposition and Content-Type are ignored (RFC 7578 §4.7
// deprecates Content-Transfer-Encoding); of a repeated header the first counts.
Result<MultipartPart> parse_head(std::string_view lines) {
  std::vector<std::pair<std::string_view, std::string>> headers;
  while (!lines.empty()) {
    const size_t eol = lines.find("\r\n");
    const std::string_view line = lines.substr(0, eol);
    lines.remove_prefix(eol == std::string_view::npos ? lines.size() : eol + 2);
    if (line.empty()) continue;
    if (line.front() == ' ' || line.front() == '\t') {
      if (headers.empty()) return Error("multipart: malformed header line in a part head");
      headers.back().second += ' ';
      headers.back().second += trim_ows(line);
      continue;
    }
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0 ||
        line.substr(0, colon).find_first_of(" \t") != std::string_view::npos) {
      return Error("multipart: malformed header line in a part head");
    }
    headers.emplace_back(line.substr(0, colon), trim_ows(line.substr(colon + 1)));
  }
  const std::string* disposition = nullptr;
  MultipartPart part;
  bool have_type = false;
  for (const auto& [name, value] : headers) {
    if (disposition == nullptr && iequals(name, "Content-Disposition")) disposition = &value;
    if (!have_type && iequals(name, "Content-Type")) {
      part.content_type = value;
      have_type = true;
    }
  }
  std::string_view type;
  std::vector<Param> params;
  if (disposition == nullptr) return Error("multipart: part without a Content-Disposition");
  if (!split_params(*disposition, type, params)) {
    return Error("multipart: malformed Content-Disposition");
  }
  if (!iequals(type, "form-data")) {
    return Error("multipart: Content-Disposition is not form-data");
  }
  const std::string* name = find_param(params, "name");
  if (name == nullptr) return Error("multipart: part without a name");
  part.name = unescape_html_form(*name);
  if (const std::string* ext = find_param(params, "filename*")) part.filename = ext_value(*ext);
  if (!part.filename) {
    if (const std::string* f = find_param(params, "filename")) {
      part.filename = unescape_html_form(*f);
    }
  }
  return part;
}

// "8 KiB", "64 MiB", "1000 bytes".
std::string size_text(size_t n) {
  constexpr size_t kMiB = size_t{1} << 20;
  if (n != 0 && n % kMiB == 0) return std::to_string(n / kMiB) + " MiB";
  if (n != 0 && n % 1024 == 0) return std::to_string(n / 1024) + " KiB";
  return std::to_string(n) + " bytes";
}

}  // namespace

std::optional<std::string> multipart_boundary(std::string_view content_type) {
  std::string_view type;
  std::vector<Param> params;
  if (!split_params(content_type, type, params)) return std::nullopt;
  if (!iequals(type, "multipart/form-data")) return std::nullopt;
  const std::string* b = find_param(params, "boundary");
  if (b == nullptr || b->empty() || b->size() > 70 || b->back() == ' ') return std::nullopt;
  if (!std::all_of(b->begin(), b->end(), is_bchar)) return std::nullopt;
  return *b;
}

MultipartParser::MultipartParser(std::string boundary, MultipartLimits limits,
                                 MultipartCallbacks callbacks)
    : delimiter_("\r\n--" + boundary),
      limits_(limits),
      callbacks_(std::move(callbacks)),
      held_("\r\n") {
  // scan_for_boundary() relies on the delimiter holding a single CR.
  assert(!boundary.empty() && boundary.find('\r') == std::string::npos);
}

Status MultipartParser::feed(std::string_view chunk) {
  if (error_) return *error_;
  fed_ += chunk.size();
  while (!chunk.empty()) {
    Status s = step(chunk);
    if (!s.ok()) {
      error_ = s.error();
      return s;
    }
  }
  return Ok{};
}

Status MultipartParser::finish() {
  if (error_) return *error_;
  if (state_ == State::kEpilogue) return Ok{};
  const bool none = state_ == State::kPreamble;
  error_ = Error(none ? "multipart: body ended before the first boundary"
                      : "multipart: body ended before the closing boundary",
                 fed_);
  return *error_;
}

Status MultipartParser::fail(std::string message, size_t left) {
  return Error(std::move(message), fed_ - left);
}

Status MultipartParser::step(std::string_view& in) {
  switch (state_) {
    case State::kPreamble:
    case State::kBody:
      return scan_for_boundary(in);
    case State::kAfterBoundary:
      return after_boundary(in);
    case State::kHead:
      return head(in);
    case State::kEpilogue:
      in = {};
      return Ok{};
  }
  return Ok{};
}

Status MultipartParser::deliver(std::string_view data) {
  if (state_ != State::kBody || data.empty() || !callbacks_.on_part_data) return Ok{};
  return callbacks_.on_part_data(data);
}

// Looks for delimiter_ ("\r\n--boundary"), handing on the bytes before it. The delimiter holds a
// CR only at its start (bchars have none), so a candidate starts at a CR and a failed candidate
// hides no other: every byte can be handed on as soon as it cannot start a delimiter, and only
// a proper prefix of the delimiter at a chunk's end is held back.
Status MultipartParser::scan_for_boundary(std::string_view& in) {
  const std::string_view delim = delimiter_;
  if (!held_.empty()) {
    const size_t need = delim.size() - held_.size();
    const size_t n = std::min(need, in.size());
    if (in.substr(0, n) == delim.substr(held_.size(), n)) {
      in.remove_prefix(n);
      if (n < need) {
        held_.append(in.data() - n, n);
        return Ok{};
      }
      held_.clear();
      return boundary_found();
    }
    const std::string held = std::exchange(held_, {});
    if (Status s = deliver(held); !s.ok()) return s;
  }
  size_t from = 0;
  while (true) {
    const void* cr = std::memchr(in.data() + from, '\r', in.size() - from);
    if (cr == nullptr) break;
    const size_t i = static_cast<size_t>(static_cast<const char*>(cr) - in.data());
    const std::string_view rest = in.substr(i);
    if (rest.size() < delim.size()) {
      if (rest == delim.substr(0, rest.size())) {
        if (Status s = deliver(in.substr(0, i)); !s.ok()) return s;
        held_.assign(rest);
        in = {};
        return Ok{};
      }
    } else if (rest.substr(0, delim.size()) == delim) {
      if (Status s = deliver(in.substr(0, i)); !s.ok()) return s;
      in.remove_prefix(i + delim.size());
      return boundary_found();
    }
    from = i + 1;
  }
  Status s = deliver(in);
  in = {};
  return s;
}

Status MultipartParser::boundary_found() {
  const bool in_part = state_ == State::kBody;
  state_ = State::kAfterBoundary;
  after_ = 0;
  if (in_part && callbacks_.on_part_end) return callbacks_.on_part_end();
  return Ok{};
}

// After "--boundary": "--" closes the body; otherwise optional transport padding (spaces and
// tabs, RFC 2046 §5.1.1) and CRLF open a part's head.
Status MultipartParser::after_boundary(std::string_view& in) {
  while (!in.empty()) {
    const char c = in.front();
    const bool space = c == ' ' || c == '\t';
    if (after_ == 0 && c == '-') {
      after_ = '-';
    } else if (after_ == '-' && c == '-') {
      in.remove_prefix(1);
      state_ = State::kEpilogue;
      return Ok{};
    } else if ((after_ == 0 || after_ == ' ') && (space || c == '\r')) {
      after_ = space ? ' ' : '\r';
    } else if (after_ == '\r' && c == '\n') {
      in.remove_prefix(1);
      state_ = State::kHead;
      head_ = "\r\n";
      return Ok{};
    } else {
      return fail("multipart: boundary not followed by CRLF or \"--\"", in.size());
    }
    in.remove_prefix(1);
  }
  return Ok{};
}

// Buffers a part's head up to the blank line that ends it. head_ starts with a CRLF so that an
// empty header block (the boundary line directly followed by a blank line) is found the same way.
Status MultipartParser::head(std::string_view& in) {
  const size_t old = head_.size();
  const size_t cap = limits_.max_head_bytes + 2;
  const size_t take = std::min(in.size(), cap - old);
  head_.append(in.substr(0, take));
  const size_t end = head_.find("\r\n\r\n", old >= 3 ? old - 3 : 0);
  if (end == std::string::npos) {
    in.remove_prefix(take);
    if (head_.size() >= cap) {
      return fail("multipart: part head longer than " + size_text(limits_.max_head_bytes),
                  in.size());
    }
    return Ok{};
  }
  in.remove_prefix(end + 4 - old);
  head_.resize(end + 4);
  total_head_bytes_ += head_.size() - 2;
  if (total_head_bytes_ > limits_.max_total_head_bytes) {
    return fail("multipart: part heads longer than " + size_text(limits_.max_total_head_bytes) +
                    " in total",
                in.size());
  }
  if (parts_ == limits_.max_parts) {
    return fail("multipart: more than " + std::to_string(limits_.max_parts) + " parts", in.size());
  }
  // The header lines, each with its CRLF.
  Result<MultipartPart> part = parse_head(std::string_view(head_).substr(2, end));
  head_.clear();
  if (!part.ok()) return fail(part.error().message, in.size());
  state_ = State::kBody;
  ++parts_;
  if (callbacks_.on_part_begin) return callbacks_.on_part_begin(*part);
  return Ok{};
}

}  // namespace evert::web
