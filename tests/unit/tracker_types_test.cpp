// Addresses: which are public (what the everseed announces to by default), and what a
// per-address limit counts by.
#include <gtest/gtest.h>

#include "evert/tracker/types.h"

namespace evert::tracker {
namespace {

Endpoint ip(const char* text) {
  Endpoint e;
  EXPECT_TRUE(Endpoint::parse_ip(text, e)) << text;
  return e;
}

TEST(TrackerTypes, PublicAddresses) {
  for (const char* a : {"1.1.1.1", "8.8.8.8", "100.63.255.255", "100.128.0.0", "172.15.0.1",
                        "172.32.0.1", "192.169.0.1", "198.20.0.1", "223.255.255.255",
                        "2001:4860::8888", "2a00:1450::1", "64:ff9b::808:808", "2002:808:808::1"}) {
    EXPECT_TRUE(is_public_address(ip(a))) << a;
  }
}

TEST(TrackerTypes, AddressesThatAreNotPublic) {
  for (const char* a : {"0.0.0.0",
                        "0.1.2.3",
                        "10.0.0.5",
                        "10.255.255.255",
                        "100.64.0.1",
                        "100.127.255.255",
                        "127.0.0.1",
                        "127.1.2.3",
                        "169.254.169.254",
                        "172.16.0.1",
                        "172.31.255.255",
                        "192.168.1.1",
                        "192.0.0.8",
                        "198.18.0.1",
                        "198.19.255.255",
                        "224.0.0.1",
                        "239.255.255.250",
                        "240.0.0.1",
                        "255.255.255.255",
                        "::",
                        "::1",
                        "::ffff:127.0.0.1",
                        "::ffff:10.1.2.3",
                        "::127.0.0.1",
                        "fc00::1",
                        "fd12:3456::1",
                        "fe80::1",
                        "febf::1",
                        "fec0::1",
                        "ff02::1",
                        "64:ff9b::a00:1",
                        "64:ff9b::7f00:1",
                        "2002:a00:1::1",
                        "2002:7f00:1::"}) {
    EXPECT_FALSE(is_public_address(ip(a))) << a;
  }
}

TEST(TrackerTypes, AddressKeysCountIpv4ByAddressAndIpv6ByItsSlash64) {
  Endpoint a = ip("10.0.0.1");
  Endpoint b = a;
  b.port = 999;  // another connection of the same host
  EXPECT_EQ(address_key(a), address_key(b));
  EXPECT_EQ(address_key(ip("::ffff:10.0.0.1")), address_key(a));
  EXPECT_NE(address_key(ip("10.0.0.2")), address_key(a));
  EXPECT_EQ(address_key(ip("2001:db8:1:2::1")), address_key(ip("2001:db8:1:2:ffff::9")));
  EXPECT_NE(address_key(ip("2001:db8:1:2::1")), address_key(ip("2001:db8:1:3::1")));
}

}  // namespace
}  // namespace evert::tracker
