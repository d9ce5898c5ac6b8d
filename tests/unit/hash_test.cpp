#include "evert/hash.h"

#include <gtest/gtest.h>

namespace evert {
namespace {

TEST(Hash, KnownSha1) {
  EXPECT_EQ(to_hex(Sha1::hash("")), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
  EXPECT_EQ(to_hex(Sha1::hash("abc")), "a9993e364706816aba3e25717850c26c9cd0d89d");
}

TEST(Hash, KnownSha256) {
  EXPECT_EQ(to_hex(Sha256::hash("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Hash, IncrementalEqualsOneShotAndResets) {
  Sha1 h;
  h.update("a");
  h.update("bc");
  EXPECT_EQ(h.final(), Sha1::hash("abc"));
  h.update("abc");  // final() reset the context
  EXPECT_EQ(h.final(), Sha1::hash("abc"));
  Sha256 s;
  s.update("ab");
  s.update("c");
  EXPECT_EQ(s.final(), Sha256::hash("abc"));
}

TEST(Hash, HashPairIsHashOfConcatenation) {
  const Sha256Digest a = Sha256::hash("a");
  const Sha256Digest b = Sha256::hash("b");
  EXPECT_EQ(Sha256::hash_pair(a, b), Sha256::hash(std::string(a.view()) + std::string(b.view())));
}

TEST(Hash, HexRoundTrip) {
  const std::string raw("\x00\x01\xab\xff", 4);
  EXPECT_EQ(to_hex(raw), "0001abff");
  EXPECT_EQ(from_hex("0001ABff", 4), raw);
  EXPECT_FALSE(from_hex("0001abf", 4));   // odd length
  EXPECT_FALSE(from_hex("0001abfg", 4));  // bad digit
  EXPECT_FALSE(from_hex("0001ab", 4));    // wrong size
}

TEST(Hash, Base32) {
  // RFC 4648 test vector "foobar" -> MZXW6YTBOI (unpadded).
  EXPECT_EQ(from_base32("MZXW6YTBOI"), "foobar");
  EXPECT_EQ(from_base32("mzxw6ytboi"), "foobar");
  EXPECT_FALSE(from_base32("MZXW6YTBO1"));  // '1' is not base32
}

TEST(Hash, DigestFromBytesAndCompare) {
  const Sha1Digest a = Sha1Digest::from_bytes(std::string(20, 'a'));
  const Sha1Digest b = Sha1Digest::from_bytes(std::string(20, 'b'));
  EXPECT_LT(a, b);
  EXPECT_FALSE(a.is_zero());
  EXPECT_TRUE(Sha1Digest{}.is_zero());
  EXPECT_TRUE(Sha1Digest::from_bytes("short").is_zero());
}

}  // namespace
}  // namespace evert
