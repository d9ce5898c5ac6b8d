#include "evert/magnet.h"

#include <gtest/gtest.h>

namespace evert {
namespace {

const std::string kV1Hex = "c12fe1c06bba254a9dc9f519b335aa7c1367a88a";
const std::string kV2Hex = "caf1e1c30e81cb361b9ee167c4aa64228a7fa4fa9f6105232b28ad099f3a302e";

TEST(Magnet, BuildAndParseRoundTrip) {
  Magnet g;
  g.info_hash_v1 = Sha1Digest::from_bytes(*from_hex(kV1Hex, 20));
  g.info_hash_v2 = Sha256Digest::from_bytes(*from_hex(kV2Hex, 32));
  g.name = "My File & more.iso";
  g.size = 1234;
  g.trackers = {"http://t.example/announce?x=1&y=2", "udp://u.example:6969"};
  g.web_seeds = {"https://ws.example/data/"};
  const std::string uri = to_uri(g);
  EXPECT_EQ(uri.rfind("magnet:?xt=urn:btih:" + kV1Hex + "&xt=urn:btmh:1220" + kV2Hex +
                          "&dn=My%20File%20%26%20more.iso&xl=1234&tr=http%3A%2F%2F",
                      0),
            0u)
      << uri;
  auto p = parse_magnet(uri);
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->info_hash_v1, g.info_hash_v1);
  EXPECT_EQ(p->info_hash_v2, g.info_hash_v2);
  EXPECT_EQ(p->name, g.name);
  EXPECT_EQ(p->size, g.size);
  EXPECT_EQ(p->trackers, g.trackers);
  EXPECT_EQ(p->web_seeds, g.web_seeds);
}

TEST(Magnet, Base32AndUppercaseHex) {
  // 32 base32 characters encode the same 20 bytes.
  auto p = parse_magnet("magnet:?xt=urn:btih:YEX6DQDLXISUVHOJ6UM3GNNKPQJWPKEK");
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(to_hex(*p->info_hash_v1), kV1Hex);
  auto q = parse_magnet("magnet:?xt=urn:btih:C12FE1C06BBA254A9DC9F519B335AA7C1367A88A&dn=x");
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(to_hex(*q->info_hash_v1), kV1Hex);
}

TEST(Magnet, V2OnlyAndSelectOnly) {
  auto p = parse_magnet("magnet:?xt=urn:btmh:1220" + kV2Hex + "&so=0,2,4-6&x.pe=10.0.0.1:6881");
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_FALSE(p->info_hash_v1);
  EXPECT_EQ(to_hex(*p->info_hash_v2), kV2Hex);
  EXPECT_EQ(p->select_only, "0,2,4-6");
  EXPECT_NE(to_uri(*p).find("&so=0,2,4-6"), std::string::npos);
  EXPECT_EQ(p->peers, (std::vector<std::string>{"10.0.0.1:6881"}));
}

TEST(Magnet, PlusIsNotASpace) {
  auto p = parse_magnet("magnet:?xt=urn:btih:" + kV1Hex + "&dn=a+b%20c");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->name, "a+b c");
}

TEST(Magnet, Malformed) {
  const std::pair<std::string, std::string> cases[] = {
      {"http://example.com", "not a magnet link"},
      {"magnet:?dn=x", "no BitTorrent info-hash"},
      {"magnet:?xt=urn:btih:1234", "40 hex or 32 base32"},
      {"magnet:?xt=urn:btih:" + std::string(40, 'g'), "40 hex or 32 base32"},
      {"magnet:?xt=urn:btmh:1114" + kV2Hex, "sha2-256 multihash"},
      {"magnet:?xt=urn:btmh:1220abcd", "64 hex"},
      {"magnet:?xt=urn:btih:" + kV1Hex + "&xl=12x", "xl: not a size"},
      {"magnet:?xt=urn:btih:" + kV1Hex + "&dn=%zz", "bad percent escape"},
      {"magnet:?xt=urn:btih:" + kV1Hex + "&dn=%4", "bad percent escape"},
      {"magnet:?xt=urn:btih:" + kV1Hex + "&dn", "without '='"},
      {"magnet:?xt=urn:btih:" + kV1Hex + "&so=1;2", "so: not a list of file indices"},
      {"magnet:?xt=urn:btih:" + kV1Hex + "&tr=" + std::string(70000, 'a'), "longer than 64 KiB"},
  };
  for (const auto& [uri, fragment] : cases) {
    auto p = parse_magnet(uri);
    ASSERT_FALSE(p.ok()) << uri.substr(0, 80);
    EXPECT_NE(p.error().message.find(fragment), std::string::npos)
        << uri.substr(0, 80) << ": " << p.error().message;
  }
}

TEST(Magnet, UnknownParametersAndOtherNamespacesIgnored) {
  auto p = parse_magnet("magnet:?xt=urn:ed2k:abc&xt=urn:btih:" + kV1Hex + "&foo=bar&&");
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(to_hex(*p->info_hash_v1), kV1Hex);
}

TEST(Magnet, PercentCoding) {
  EXPECT_EQ(percent_encode("a-b_c.d~e f/\xff"), "a-b_c.d~e%20f%2F%FF");
  EXPECT_EQ(percent_decode("a%20b%2f"), "a b/");
  EXPECT_FALSE(percent_decode("%"));
  EXPECT_FALSE(percent_decode("%g0"));
}

}  // namespace
}  // namespace evert
