// Base64 (RFC 4648, with padding) for .torrent files carried in JSON. Header-only over
// libsodium, which the daemon and evertctl link; libevert itself does not need it.
#pragma once

#include <sodium.h>

#include <optional>
#include <string>
#include <string_view>

namespace evert {

inline std::string to_base64(std::string_view bytes) {
  std::string out(sodium_base64_ENCODED_LEN(bytes.size(), sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(bytes.data()),
                    bytes.size(), sodium_base64_VARIANT_ORIGINAL);
  out.resize(out.size() - 1);  // the terminating NUL
  return out;
}

// Whitespace (line breaks, spaces) is ignored; nullopt when it is not base64.
inline std::optional<std::string> from_base64(std::string_view text) {
  std::string out(text.size(), '\0');
  size_t len = 0;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), text.data(),
                        text.size(), "\n\r ", &len, nullptr, sodium_base64_VARIANT_ORIGINAL) != 0) {
    return std::nullopt;
  }
  out.resize(len);
  return out;
}

}  // namespace evert
