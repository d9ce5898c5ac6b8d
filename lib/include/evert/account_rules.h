// The rules for web accounts that evertd and evertctl both check: user names, and passwords
// (evertctl checks them before hashing, since evertd only ever sees the hash; evertd checks the
// ones web pages send). Header-only and pure.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace evert {

inline constexpr size_t kMaxUserName = 64;
inline constexpr size_t kMinPassword = 8;     // characters (UTF-8 code points)
inline constexpr size_t kMaxPassword = 1024;  // bytes

namespace detail {
// A name as it may be shown in a message: non-printable bytes as \xNN, at most 80 bytes.
inline std::string shown(std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (const char ch : s.substr(0, 80)) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c >= 0x7f) {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += ch;
    }
  }
  return s.size() > 80 ? out + "..." : out;
}
}  // namespace detail

// "" when `name` is a valid user name: 1 to 64 of a-z 0-9 _ . - (not "." or "..", which mean
// something in paths); else why not, naming it.
inline std::string check_user_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxUserName) {
    return "a user name has 1 to 64 characters (a-z, 0-9, _, . and -); '" + detail::shown(name) +
           "' has " + std::to_string(name.size());
  }
  for (const char c : name) {
    const bool ok =
        (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
    if (!ok) {
      return "user name '" + detail::shown(name) +
             "': only a-z, 0-9, _, . and - are allowed, not '" +
             detail::shown(std::string_view(&c, 1)) + "'";
    }
  }
  if (name == "." || name == "..") return "'" + std::string(name) + "' is not a user name";
  return {};
}

// "" when `password` is acceptable: at least 8 characters, at most 1024 bytes; else why not.
inline std::string check_password(std::string_view password) {
  if (password.empty()) return "the password is empty";
  if (password.size() > kMaxPassword) {
    return "a password has at most " + std::to_string(kMaxPassword) + " bytes";
  }
  size_t chars = 0;
  for (const char c : password)
    chars += (static_cast<unsigned char>(c) & 0xc0) != 0x80 ? 1 : 0;  // UTF-8 lead bytes
  if (chars < kMinPassword) {
    return "the password is too weak: use at least " + std::to_string(kMinPassword) + " characters";
  }
  return {};
}

}  // namespace evert
