// Internal to MSE: the Diffie-Hellman group and the SHA-1 helpers the handshake is made of.
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string_view>

#include "evert/mse.h"

namespace evert::mse::detail {

using Key96 = std::array<uint8_t, kPublicKeySize>;
using PrivateKey = std::array<uint8_t, 20>;

// 2^x mod P, big-endian, zero-padded to 96 bytes. Throws std::bad_alloc when OpenSSL cannot
// allocate (as evert/hash.h does).
Key96 public_key(const PrivateKey& x);

// peer^x mod P; nullopt when `peer` is outside [2, P-2]: 0, 1 and P-1 (and anything >= P)
// would pin S to a value an eavesdropper knows.
std::optional<Key96> shared_secret(const PrivateKey& x, const Key96& peer);

// SHA-1 of the concatenation of `parts`.
Hash20 sha1(std::initializer_list<std::string_view> parts);

template <size_t N>
std::string_view view(const std::array<uint8_t, N>& a) {
  return {reinterpret_cast<const char*>(a.data()), N};
}

}  // namespace evert::mse::detail
