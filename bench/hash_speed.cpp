// Single-core SHA-1 and SHA-256 throughput over 16 KiB blocks, the way the torrent creator
// calls them (one digest per v2 block, a reused context), for OpenSSL EVP and libsodium.
// It justifies the choice in lib/include/evert/hash.h. Usage: hash_speed [MiB]
#include <sodium.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "evert/hash.h"

namespace {

template <class F>
double gib_per_s(size_t bytes, F&& f) {
  const auto t0 = std::chrono::steady_clock::now();
  f();
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return static_cast<double>(bytes) / s / (1 << 30);
}

}  // namespace

int main(int argc, char** argv) {
  const size_t mib = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 512;
  constexpr size_t kBlock = 16 * 1024;
  std::vector<unsigned char> data(mib << 20, 0x5a);
  if (sodium_init() < 0) return 1;
  unsigned char out[32];
  evert::Sha256 sha256;
  evert::Sha1 sha1;
  const double ossl256 = gib_per_s(data.size(), [&] {
    for (size_t o = 0; o < data.size(); o += kBlock) {
      sha256.update(&data[o], kBlock);
      (void)sha256.final();
    }
  });
  const double sodium256 = gib_per_s(data.size(), [&] {
    for (size_t o = 0; o < data.size(); o += kBlock)
      crypto_hash_sha256(out, &data[o], kBlock);
  });
  const double ossl1 = gib_per_s(data.size(), [&] {
    sha1.update(data.data(), data.size());
    (void)sha1.final();
  });
  std::printf("sha1   openssl-evp  %.2f GiB/s\n", ossl1);
  std::printf("sha256 openssl-evp  %.2f GiB/s (16 KiB blocks)\n", ossl256);
  std::printf("sha256 libsodium    %.2f GiB/s (16 KiB blocks)\n", sodium256);
  return 0;
}
