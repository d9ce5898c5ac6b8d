#include "names.h"

#include <array>
#include <cstdio>

#include "text.h"

namespace evert::web {
namespace {

bool is_control(int32_t cp) {
  return cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F);
}

// The explicit embeddings, overrides and isolates of Unicode's bidirectional algorithm (UAX #9):
// in a file name they serve to disguise it ("invoice\u202Efdp.exe" shows as "invoiceexe.pdf").
// The implicit marks (U+200E, U+200F) and joiners, which real names use, are kept.
bool is_bidi_control(int32_t cp) {
  return (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069);
}

// `s` quoted for an error message: control characters, bad bytes, '"' and '\' escaped, and cut
// after about 60 bytes.
std::string quoted(std::string_view s) {
  constexpr size_t kMax = 60;
  std::string out = "\"";
  char buf[16];
  for (size_t i = 0; i < s.size();) {
    if (out.size() > kMax) {
      out += "...";
      break;
    }
    const size_t start = i;
    const int32_t cp = text::next_code_point(s, i);
    if (cp < 0 || cp < 0x20 || cp == 0x7F) {
      std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned char>(s[start]));
      out += buf;
    } else if (is_control(cp) || is_bidi_control(cp)) {
      std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(cp));
      out += buf;
    } else if (cp == '"' || cp == '\\') {
      out += '\\';
      out += static_cast<char>(cp);
    } else {
      out.append(s.substr(start, i - start));
    }
  }
  out += '"';
  return out;
}

Error name_error(std::string_view name, std::string_view what) {
  return Error("name " + quoted(name) + " " + std::string(what));
}

// Whether Windows would take `name` for a device: the part before the first dot, trailing
// spaces ignored, is a reserved device name in any case.
bool is_windows_device(std::string_view name) {
  std::string_view stem = name.substr(0, name.find('.'));
  while (!stem.empty() && stem.back() == ' ')
    stem.remove_suffix(1);
  static constexpr std::array<std::string_view, 6> kPlain = {"CON", "PRN",    "AUX",
                                                             "NUL", "CONIN$", "CONOUT$"};
  for (std::string_view d : kPlain) {
    if (text::iequals(stem, d)) return true;
  }
  for (std::string_view d : {std::string_view("COM"), std::string_view("LPT")}) {
    if (stem.size() < 4 || !text::iequals(stem.substr(0, 3), d)) continue;
    const std::string_view n = stem.substr(3);
    if (n.size() == 1 && n[0] >= '0' && n[0] <= '9') return true;
    // Windows also treats the superscript digits ¹ ² ³ (U+00B9, U+00B2, U+00B3) as port numbers.
    if (n == "\xC2\xB9" || n == "\xC2\xB2" || n == "\xC2\xB3") return true;
  }
  return false;
}

}  // namespace

Result<std::string> sanitise_name(std::string_view name) {
  for (size_t i = 0; i < name.size();) {
    const int32_t cp = text::next_code_point(name, i);
    if (cp < 0) return name_error(name, "is not valid UTF-8");
    if (is_control(cp)) return name_error(name, "contains a control character");
    if (is_bidi_control(cp)) {
      return name_error(name, "contains a bidirectional override character");
    }
    if (cp == '/') return name_error(name, "contains '/'");
    if (cp == '\\') return name_error(name, "contains '\\'");
  }
  if (name == "." || name == "..") return name_error(name, "is not allowed");
  std::string_view t = name;
  while (!t.empty() && t.front() == ' ')
    t.remove_prefix(1);
  while (!t.empty() && (t.back() == ' ' || t.back() == '.'))
    t.remove_suffix(1);
  if (t.empty()) {
    return name.empty() ? Error("name is empty")
                        : name_error(name,
                                     "is empty without its leading spaces and trailing "
                                     "dots and spaces");
  }
  std::string out;
  if (is_windows_device(t)) out += '_';
  out.append(t);
  if (out.size() > kMaxNameBytes) {
    return name_error(name, "is longer than " + std::to_string(kMaxNameBytes) + " bytes (" +
                                std::to_string(out.size()) + ")");
  }
  return out;
}

Result<std::vector<std::string>> sanitise_relative_path(std::string_view path) {
  if (path.empty()) return Error("path is empty");
  const std::string q = quoted(path);
  if (path.size() > kMaxPathBytes) {
    return Error("path " + q + " is longer than " + std::to_string(kMaxPathBytes) + " bytes");
  }
  if (path.front() == '/') return Error("path " + q + " is absolute");
  std::vector<std::string> out;
  size_t pos = 0;
  while (true) {
    const size_t slash = path.find('/', pos);
    const std::string_view component = path.substr(pos, slash - pos);
    if (component.empty()) return Error("path " + q + " has an empty component");
    if (out.size() == kMaxPathDepth) {
      return Error("path " + q + " has more than " + std::to_string(kMaxPathDepth) + " components");
    }
    auto name = sanitise_name(component);
    if (!name.ok()) {
      return Error("path " + q + ", component " + std::to_string(out.size() + 1) + ": " +
                   name.error().message);
    }
    out.push_back(std::move(*name));
    if (slash == std::string_view::npos) break;
    pos = slash + 1;
  }
  return out;
}

}  // namespace evert::web
