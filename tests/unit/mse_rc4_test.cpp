// MSE's RC4: both backends against RFC 6229's keystreams, against each other, and the 1024-byte
// drop MSE asks for.
#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "evert/hash.h"
#include "evert/mse.h"

namespace evert::mse {
namespace {

struct Vector {
  std::string key;
  std::vector<std::pair<size_t, std::string>> at;  // offset, 16 keystream bytes
};

std::vector<Vector> rfc6229() {
  std::ifstream in(std::string(EVERT_TEST_DATA) + "/mse/rfc6229.txt");
  std::vector<Vector> out;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    std::string a, b;
    fields >> a >> b;
    if (a == "key") {
      out.push_back({from_hex(b, b.size() / 2).value_or(""), {}});
    } else if (!out.empty()) {
      out.back().at.emplace_back(std::stoul(a, nullptr, 16), from_hex(b, 16).value_or(""));
    }
  }
  return out;
}

std::span<const uint8_t> bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

std::vector<Rc4::Backend> backends() {
  std::vector<Rc4::Backend> b{Rc4::Backend::kBuiltin};
  if (Rc4::openssl_available()) b.push_back(Rc4::Backend::kOpenssl);
  return b;
}

const char* name(Rc4::Backend b) {
  return b == Rc4::Backend::kOpenssl ? "openssl" : "builtin";
}

TEST(MseRc4, OpensslsLegacyProviderIsTheDefaultWhenItLoads) {
  // Debian 12 ships legacy.so in libssl3; the fallback is for systems without it.
  const Rc4 rc4(bytes("key"));
  EXPECT_EQ(rc4.backend(),
            Rc4::openssl_available() ? Rc4::Backend::kOpenssl : Rc4::Backend::kBuiltin);
  EXPECT_EQ(Rc4(bytes("key"), 0, Rc4::Backend::kBuiltin).backend(), Rc4::Backend::kBuiltin);
  RecordProperty("openssl_rc4", Rc4::openssl_available() ? "yes" : "no");
}

TEST(MseRc4, BothBackendsGiveRfc6229Keystreams) {
  const auto vectors = rfc6229();
  ASSERT_EQ(vectors.size(), 7u);
  for (const Rc4::Backend backend : backends()) {
    for (const Vector& v : vectors) {
      ASSERT_EQ(v.at.size(), 18u);
      Rc4 rc4(bytes(v.key), 0, backend);
      ASSERT_EQ(rc4.backend(), backend);
      std::string stream(4112, '\0');
      rc4.apply(stream.data(), stream.size());
      for (const auto& [offset, expected] : v.at) {
        EXPECT_EQ(to_hex(stream.substr(offset, 16)), to_hex(expected))
            << name(backend) << " key " << to_hex(v.key) << " offset " << offset;
      }
    }
  }
}

TEST(MseRc4, TheDropSkipsExactlyThatMuchKeystream) {
  // RFC 6229 gives offset 1024 (0x400) and 1520 (0x5f0): after MSE's drop they come first, and
  // 496 bytes on.
  for (const Rc4::Backend backend : backends()) {
    for (const Vector& v : rfc6229()) {
      Rc4 rc4(bytes(v.key), kRc4Drop, backend);
      std::string stream(512, '\0');
      rc4.apply(stream.data(), stream.size());
      EXPECT_EQ(stream.substr(0, 16), v.at[9].second) << name(backend) << " " << to_hex(v.key);
      EXPECT_EQ(stream.substr(0x5f0 - 0x400, 16), v.at[10].second);
    }
  }
}

TEST(MseRc4, BackendsAgreeWhateverTheChunking) {
  if (!Rc4::openssl_available()) GTEST_SKIP() << "no legacy provider here";
  std::mt19937 rng(7);
  for (int round = 0; round < 50; ++round) {
    std::string key(20, '\0');
    for (auto& c : key)
      c = static_cast<char>(rng());
    std::string data(1 + rng() % 5000, '\0');
    for (auto& c : data)
      c = static_cast<char>(rng());
    Rc4 a(bytes(key), kRc4Drop, Rc4::Backend::kOpenssl);
    Rc4 b(bytes(key), kRc4Drop, Rc4::Backend::kBuiltin);
    std::string x = data;
    std::string y = data;
    a.apply(x.data(), x.size());  // one call
    for (size_t at = 0; at < y.size();) {
      const size_t n = std::min<size_t>(y.size() - at, rng() % 300);
      b.apply(y.data() + at, n);  // many, some empty
      at += n;
    }
    ASSERT_EQ(to_hex(x), to_hex(y)) << "round " << round;
    ASSERT_NE(x, data);
    // Applying it again with a fresh cipher decrypts.
    Rc4 c(bytes(key), kRc4Drop, Rc4::Backend::kBuiltin);
    c.apply(x.data(), x.size());
    EXPECT_EQ(x, data);
  }
}

TEST(MseRc4, LongKeysAndAOneByteKey) {
  // RC4 takes 1 to 256 key bytes; both backends must treat the extremes alike.
  if (!Rc4::openssl_available()) GTEST_SKIP() << "no legacy provider here";
  for (size_t len : {size_t{1}, size_t{20}, size_t{255}, size_t{256}}) {
    std::string key(len, '\0');
    for (size_t i = 0; i < len; ++i)
      key[i] = static_cast<char>(i * 7 + 3);
    std::string x(100, 'x');
    std::string y(100, 'x');
    Rc4(bytes(key), 0, Rc4::Backend::kOpenssl).apply(x.data(), x.size());
    Rc4(bytes(key), 0, Rc4::Backend::kBuiltin).apply(y.data(), y.size());
    EXPECT_EQ(to_hex(x), to_hex(y)) << len;
  }
}

}  // namespace
}  // namespace evert::mse
