// Network byte order for the wire formats (peer wire, UDP tracker protocol): read from and
// write to raw bytes, or append to a message being built.
#pragma once

#include <cstdint>
#include <string>

namespace evert::be {

inline uint32_t load32(const uint8_t* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3];
}
inline uint32_t load32(const char* p) {
  return load32(reinterpret_cast<const uint8_t*>(p));
}
inline uint64_t load64(const uint8_t* p) {
  return uint64_t{load32(p)} << 32 | load32(p + 4);
}
inline void store32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}
inline void store64(uint8_t* p, uint64_t v) {
  store32(p, static_cast<uint32_t>(v >> 32));
  store32(p + 4, static_cast<uint32_t>(v));
}
inline void append32(std::string& out, uint32_t v) {
  const char b[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16),
                     static_cast<char>(v >> 8), static_cast<char>(v)};
  out.append(b, 4);
}
inline void append64(std::string& out, uint64_t v) {
  append32(out, static_cast<uint32_t>(v >> 32));
  append32(out, static_cast<uint32_t>(v));
}

}  // namespace evert::be
