#include "form.h"

#include <cassert>

#include "text.h"

namespace evert::web {
namespace {

// RFC 7230 tchar.
bool is_tchar(char c) {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  for (char t : std::string_view("!#$%&'*+-.^_`|~")) {
    if (c == t) return true;
  }
  return false;
}

[[maybe_unused]] bool is_token(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!is_tchar(c)) return false;
  }
  return true;
}

// RFC 6265 §4.1.1 cookie-octet, which Path's value also keeps to here.
[[maybe_unused]] bool is_cookie_text(std::string_view s) {
  for (char c : s) {
    if (c <= 0x20 || c >= 0x7F || c == '"' || c == ',' || c == ';' || c == '\\') return false;
  }
  return true;
}

}  // namespace

Result<std::string> percent_decode(std::string_view s, PlusMode plus) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '+' && plus == PlusMode::kSpace) {
      out += ' ';
    } else if (c != '%') {
      out += c;
    } else {
      const int hi = i + 1 < s.size() ? text::hex_value(s[i + 1]) : -1;
      const int lo = i + 2 < s.size() ? text::hex_value(s[i + 2]) : -1;
      if (hi < 0 || lo < 0) return Error("malformed %-escape", i);
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    }
  }
  return out;
}

Result<FormFields> parse_urlencoded(std::string_view body, const FormLimits& limits) {
  FormFields fields;
  size_t pos = 0;
  while (pos <= body.size()) {
    const size_t amp = std::min(body.find('&', pos), body.size());
    const std::string_view field = body.substr(pos, amp - pos);
    if (!field.empty()) {
      if (fields.size() == limits.max_fields) {
        return Error("form: more than " + std::to_string(limits.max_fields) + " fields", pos);
      }
      const size_t eq = std::min(field.find('='), field.size());
      auto name = percent_decode(field.substr(0, eq), PlusMode::kSpace);
      if (!name.ok()) return Error("form: malformed %-escape", pos + name.error().offset);
      const size_t value_at = std::min(eq + 1, field.size());
      auto value = percent_decode(field.substr(value_at), PlusMode::kSpace);
      if (!value.ok()) {
        return Error("form: malformed %-escape", pos + value_at + value.error().offset);
      }
      fields.emplace_back(std::move(*name), std::move(*value));
    }
    pos = amp + 1;
  }
  return fields;
}

std::optional<std::string_view> form_value(const FormFields& fields, std::string_view name) {
  for (const auto& [n, v] : fields) {
    if (n == name) return std::string_view(v);
  }
  return std::nullopt;
}

std::optional<std::string> parse_cookie(std::string_view header, std::string_view name) {
  size_t pos = 0;
  while (pos <= header.size()) {
    const size_t semi = std::min(header.find(';', pos), header.size());
    const std::string_view pair = header.substr(pos, semi - pos);
    pos = semi + 1;
    const size_t eq = pair.find('=');
    if (eq == std::string_view::npos || text::trim_ows(pair.substr(0, eq)) != name) continue;
    std::string_view value = text::trim_ows(pair.substr(eq + 1));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
      value = value.substr(1, value.size() - 2);
    }
    return std::string(value);
  }
  return std::nullopt;
}

std::string set_cookie(std::string_view name, std::string_view value,
                       const CookieOptions& options) {
  assert(is_token(name));
  assert(is_cookie_text(value));
  assert(is_cookie_text(options.path));
  std::string out;
  out.append(name).append("=").append(value);
  if (!options.path.empty()) out.append("; Path=").append(options.path);
  if (options.max_age) out.append("; Max-Age=").append(std::to_string(*options.max_age));
  if (options.secure) out.append("; Secure");
  if (options.http_only) out.append("; HttpOnly");
  out.append(options.same_site_strict ? "; SameSite=Strict" : "; SameSite=Lax");
  return out;
}

std::string html_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

}  // namespace evert::web
