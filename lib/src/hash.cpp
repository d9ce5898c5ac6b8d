#include "evert/hash.h"

#include <openssl/evp.h>

#include <cstdlib>
#include <new>

namespace evert {

namespace {

// Fetching the algorithm once avoids OpenSSL 3's implicit fetch on every DigestInit, which is
// measurable when hashing 16 KiB blocks one by one.
const EVP_MD* sha1_md() {
  static EVP_MD* md = EVP_MD_fetch(nullptr, "SHA1", nullptr);
  return md;
}
const EVP_MD* sha256_md() {
  static EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  return md;
}

EVP_MD_CTX* new_ctx(const EVP_MD* md) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  if (ctx == nullptr || md == nullptr || EVP_DigestInit_ex2(ctx, md, nullptr) != 1) {
    throw std::bad_alloc();  // OpenSSL fails here only when out of memory or misinstalled
  }
  return ctx;
}

template <class D>
D finish(EVP_MD_CTX* ctx, const EVP_MD* md) {
  D d;
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx, d.bytes.data(), &len);
  EVP_DigestInit_ex2(ctx, md, nullptr);
  return d;
}

}  // namespace

std::string to_hex(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

std::optional<std::string> from_hex(std::string_view hex, size_t size) {
  if (hex.size() != size * 2) return std::nullopt;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out(size, '\0');
  for (size_t i = 0; i < size; ++i) {
    const int hi = nibble(hex[2 * i]);
    const int lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out[i] = static_cast<char>((hi << 4) | lo);
  }
  return out;
}

std::optional<std::string> from_base32(std::string_view text) {
  std::string out;
  uint32_t buffer = 0;
  int bits = 0;
  for (char c : text) {
    int v = -1;
    if (c >= 'A' && c <= 'Z') v = c - 'A';
    if (c >= 'a' && c <= 'z') v = c - 'a';
    if (c >= '2' && c <= '7') v = c - '2' + 26;
    if (v < 0) return std::nullopt;
    buffer = (buffer << 5) | static_cast<uint32_t>(v);
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((buffer >> bits) & 0xff);
    }
  }
  return out;
}

Sha1::Sha1() : ctx_(new_ctx(sha1_md())) {}
Sha1::~Sha1() {
  EVP_MD_CTX_free(ctx_);
}
void Sha1::update(const void* data, size_t len) {
  EVP_DigestUpdate(ctx_, data, len);
}
Sha1Digest Sha1::final() {
  return finish<Sha1Digest>(ctx_, sha1_md());
}
Sha1Digest Sha1::hash(std::string_view s) {
  thread_local Sha1 h;
  h.update(s);
  return h.final();
}

Sha256::Sha256() : ctx_(new_ctx(sha256_md())) {}
Sha256::~Sha256() {
  EVP_MD_CTX_free(ctx_);
}
void Sha256::update(const void* data, size_t len) {
  EVP_DigestUpdate(ctx_, data, len);
}
Sha256Digest Sha256::final() {
  return finish<Sha256Digest>(ctx_, sha256_md());
}
Sha256Digest Sha256::hash(std::string_view s) {
  thread_local Sha256 h;
  h.update(s);
  return h.final();
}
Sha256Digest Sha256::hash_pair(const Sha256Digest& left, const Sha256Digest& right) {
  thread_local Sha256 h;
  h.update(left.bytes.data(), left.bytes.size());
  h.update(right.bytes.data(), right.bytes.size());
  return h.final();
}

}  // namespace evert
