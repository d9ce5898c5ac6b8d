#include "evert/tracker/http_head.h"

#include <charconv>

namespace evert::tracker {
namespace {

// RFC 9110 §5.6.2: tchar.
bool is_tchar(unsigned char c) {
  if (c >= '0' && c <= '9') return true;
  if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return true;
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
      return true;
    default:
      return false;
  }
}

bool is_token(std::string_view s) {
  if (s.empty()) return false;
  for (const char c : s) {
    if (!is_tchar(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

// Field values: visible bytes, obs-text (0x80 and up), spaces and tabs; no other control byte
// (a lone CR or LF in a value is how requests are smuggled past proxies that read it otherwise).
bool is_field_value(std::string_view s) {
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if ((c < 0x20 && c != '\t') || c == 0x7f) return false;
  }
  return true;
}

// Request targets: no spaces, no control bytes. Bytes from 0x80 are let through (as nginx
// does): the handlers answer such paths (404), and must not fail on them.
bool is_target(std::string_view s) {
  if (s.empty()) return false;
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c <= 0x20 || c == 0x7f) return false;
  }
  return true;
}

HttpRefusal refuse(int status, std::string_view message) {
  return HttpRefusal{status, message};
}

}  // namespace

bool http_iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    const auto x = static_cast<unsigned char>(a[i]);
    const auto y = static_cast<unsigned char>(b[i]);
    if (x == y) continue;
    if ((x | 0x20) != (y | 0x20) || (x | 0x20) < 'a' || (x | 0x20) > 'z') return false;
  }
  return true;
}

std::string_view http_trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

HttpHeadResult parse_http_head(std::string_view buffer, size_t max_head) {
  // Empty lines before a request line are ignored (RFC 9112 §2.2).
  size_t start = 0;
  while (buffer.substr(start, 2) == "\r\n")
    start += 2;
  if (start > max_head) return refuse(431, "request head too large\n");
  const size_t end = buffer.find("\r\n\r\n", start);
  if (end == std::string_view::npos || end - start > max_head) {
    if (buffer.size() - start <= max_head) return HttpNeedMore{};
    return refuse(431, "request head too large\n");
  }
  HttpHead h;
  h.head = buffer.substr(start, end - start);
  h.size = end + 4;

  const size_t eol = h.head.find("\r\n");
  const std::string_view line = h.head.substr(0, eol);
  const size_t sp1 = line.find(' ');
  const size_t sp2 = line.rfind(' ');
  if (sp1 == std::string_view::npos || sp1 == sp2) return refuse(400, "malformed request line\n");
  const std::string_view version = line.substr(sp2 + 1);
  h.method = line.substr(0, sp1);
  h.target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  if (!is_token(h.method) || !is_target(h.target) || version.substr(0, 5) != "HTTP/") {
    return refuse(400, "malformed request line\n");
  }
  if (version != "HTTP/1.1" && version != "HTTP/1.0") {
    return refuse(505, "HTTP/1.0 or HTTP/1.1 only\n");
  }
  h.http10 = version == "HTTP/1.0";
  const size_t q = h.target.find('?');
  h.path = h.target.substr(0, q);
  h.query = q == std::string_view::npos ? std::string_view{} : h.target.substr(q + 1);

  bool conn_close = false;
  bool conn_keep = false;
  std::string_view rest = eol == std::string_view::npos ? "" : h.head.substr(eol + 2);
  while (!rest.empty()) {
    const size_t e = rest.find("\r\n");
    const std::string_view field = rest.substr(0, e);
    rest = e == std::string_view::npos ? std::string_view{} : rest.substr(e + 2);
    if (field.empty() || field.front() == ' ' || field.front() == '\t') {
      return refuse(400, "folded header lines are not accepted\n");
    }
    const size_t colon = field.find(':');
    if (colon == std::string_view::npos) return refuse(400, "malformed header line\n");
    const std::string_view name = field.substr(0, colon);
    if (!is_token(name)) return refuse(400, "malformed header name\n");
    const std::string_view raw = field.substr(colon + 1);
    if (!is_field_value(raw)) return refuse(400, "malformed header value\n");
    const std::string_view value = http_trim(raw);
    switch (name.size()) {
      case 5:
        if (http_iequals(name, "range")) h.range = value;
        break;
      case 6:
        if (http_iequals(name, "expect")) h.expect_continue = http_iequals(value, "100-continue");
        break;
      case 8:
        if (http_iequals(name, "if-range")) h.if_range = value;
        break;
      case 9:
        if (http_iequals(name, "x-real-ip")) h.x_real_ip = value;
        break;
      case 10:
        if (http_iequals(name, "connection")) {
          if (http_iequals(value, "close")) conn_close = true;
          if (http_iequals(value, "keep-alive")) conn_keep = true;
        }
        break;
      case 14:
        if (http_iequals(name, "content-length")) {
          uint64_t n = 0;
          auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
          if (value.empty() || value.front() < '0' || value.front() > '9' || ec != std::errc{} ||
              p != value.data() + value.size() || n > (uint64_t{1} << 62) ||
              (h.has_length && n != h.content_length)) {
            return refuse(400, "malformed Content-Length\n");
          }
          h.has_length = true;
          h.content_length = n;
        }
        break;
      case 15:
        if (http_iequals(name, "x-forwarded-for")) h.x_forwarded_for = value;
        break;
      case 17:
        if (http_iequals(name, "transfer-encoding")) h.chunked = true;
        break;
      default:
        break;
    }
  }
  h.keep_alive = h.http10 ? conn_keep && !conn_close : !conn_close;
  return h;
}

}  // namespace evert::tracker
