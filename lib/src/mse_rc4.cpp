// RC4 for MSE: OpenSSL's (from the legacy provider, in a private library context) or our own.
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/provider.h>

#include <algorithm>
#include <cassert>
#include <utility>

#include "evert/mse.h"

namespace evert::mse {

namespace {

// OpenSSL 3 moved RC4 to the "legacy" provider. Loading it into the default library context
// would make every other algorithm fetch in the program consider legacy implementations too,
// so it goes into a context of its own, used for nothing but this fetch. Loaded once; the
// context, the provider and the cipher live as long as the process.
const EVP_CIPHER* openssl_rc4() {
  static const EVP_CIPHER* const cipher = []() -> const EVP_CIPHER* {
    OSSL_LIB_CTX* libctx = OSSL_LIB_CTX_new();
    if (libctx == nullptr) return nullptr;
    EVP_CIPHER* c = nullptr;
    if (OSSL_PROVIDER_load(libctx, "legacy") != nullptr)
      c = EVP_CIPHER_fetch(libctx, "RC4", nullptr);
    if (c == nullptr) {
      OSSL_LIB_CTX_free(libctx);
      ERR_clear_error();  // a missing legacy.so is expected; leave no error behind for others
    }
    return c;
  }();
  return cipher;
}

// EVP_CipherUpdate counts in int.
constexpr size_t kMaxChunk = size_t{1} << 30;

}  // namespace

struct Rc4::State {
  std::array<uint8_t, 256> s{};
  uint8_t i = 0;
  uint8_t j = 0;

  explicit State(std::span<const uint8_t> key) {
    for (size_t n = 0; n < s.size(); ++n)
      s[n] = static_cast<uint8_t>(n);
    uint8_t k = 0;
    for (size_t n = 0; n < s.size(); ++n) {
      k = static_cast<uint8_t>(k + s[n] + key[n % key.size()]);
      std::swap(s[n], s[k]);
    }
  }

  void apply(uint8_t* data, size_t len) {
    uint8_t x = i;
    uint8_t y = j;
    for (size_t n = 0; n < len; ++n) {
      x = static_cast<uint8_t>(x + 1);
      const uint8_t sx = s[x];
      y = static_cast<uint8_t>(y + sx);
      const uint8_t sy = s[y];
      s[x] = sy;
      s[y] = sx;
      data[n] ^= s[static_cast<uint8_t>(sx + sy)];
    }
    i = x;
    j = y;
  }
};

bool Rc4::openssl_available() {
  return openssl_rc4() != nullptr;
}

Rc4::Rc4(std::span<const uint8_t> key, size_t drop, std::optional<Backend> backend) {
  assert(!key.empty() && key.size() <= 256);
  const EVP_CIPHER* cipher = backend == Backend::kBuiltin ? nullptr : openssl_rc4();
  if (cipher != nullptr) {
    evp_ = EVP_CIPHER_CTX_new();
    // RC4's key length is variable; the cipher's default (16) must be changed before the key.
    if (evp_ == nullptr || EVP_CipherInit_ex2(evp_, cipher, nullptr, nullptr, 1, nullptr) != 1 ||
        EVP_CIPHER_CTX_set_key_length(evp_, static_cast<int>(key.size())) != 1 ||
        EVP_CipherInit_ex2(evp_, nullptr, key.data(), nullptr, 1, nullptr) != 1) {
      EVP_CIPHER_CTX_free(evp_);
      evp_ = nullptr;
      ERR_clear_error();
    }
  }
  if (evp_ == nullptr) own_ = std::make_unique<State>(key);
  char scratch[256] = {};
  while (drop > 0) {
    const size_t n = std::min(drop, sizeof(scratch));
    apply(scratch, n);
    drop -= n;
  }
}

Rc4::~Rc4() {
  EVP_CIPHER_CTX_free(evp_);
}

void Rc4::apply(char* data, size_t n) {
  auto* p = reinterpret_cast<unsigned char*>(data);
  if (evp_ == nullptr) {
    own_->apply(p, n);
    return;
  }
  while (n > 0) {
    const size_t chunk = std::min(n, kMaxChunk);
    int out = 0;
    // In place is allowed for stream ciphers; RC4 cannot fail once initialised.
    EVP_CipherUpdate(evp_, p, &out, p, static_cast<int>(chunk));
    p += chunk;
    n -= chunk;
  }
}

}  // namespace evert::mse
