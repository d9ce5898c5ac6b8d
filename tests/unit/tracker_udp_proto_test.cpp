// The UDP tracker codec (BEP 15, 41): connect, announce, scrape, errors, forged and expired
// connection ids, no amplification, malformed datagrams.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "evert/tracker/udp_proto.h"

namespace evert::tracker {
namespace {

void put32(std::vector<uint8_t>& v, uint32_t x) {
  for (int i = 3; i >= 0; --i)
    v.push_back(static_cast<uint8_t>(x >> (8 * i)));
}
void put64(std::vector<uint8_t>& v, uint64_t x) {
  put32(v, static_cast<uint32_t>(x >> 32));
  put32(v, static_cast<uint32_t>(x));
}
uint32_t get32(const uint8_t* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3];
}

struct Fixture : ::testing::Test {
  SwarmOptions opts() {
    SwarmOptions o;
    o.whitelist = true;
    return o;
  }
  SwarmTable swarms{opts()};
  UdpTracker udp{swarms, {}};
  std::vector<uint8_t> out = std::vector<uint8_t>(UdpTracker::kMaxResponse);
  Endpoint from;
  InfoHash ih;
  const int64_t now = 1'000'000;

  void SetUp() override {
    from.ip = {127, 0, 0, 1};
    from.port = 40000;
    ih.bytes.fill(7);
    swarms.allow(ih);
  }
  size_t send(const std::vector<uint8_t>& p, int64_t at, const Endpoint& f) {
    return udp.handle(p, f, at, out.data());
  }
  size_t send(const std::vector<uint8_t>& p) { return send(p, now, from); }
  uint64_t connect(int64_t at = 1'000'000) {
    std::vector<uint8_t> p;
    put64(p, kUdpProtocolId);
    put32(p, 0);
    put32(p, 99);
    EXPECT_EQ(send(p, at, from), 16u);
    EXPECT_EQ(get32(out.data()), 0u);
    EXPECT_EQ(get32(out.data() + 4), 99u);
    return uint64_t{get32(out.data() + 8)} << 32 | get32(out.data() + 12);
  }
  std::vector<uint8_t> announce(uint64_t cid, char peer, uint16_t port, uint64_t left,
                                uint32_t event = 2, int32_t numwant = -1) {
    std::vector<uint8_t> p;
    put64(p, cid);
    put32(p, 1);
    put32(p, 5);
    p.insert(p.end(), ih.bytes.begin(), ih.bytes.end());
    for (int i = 0; i < 20; ++i)
      p.push_back(static_cast<uint8_t>(peer));
    put64(p, 0);
    put64(p, left);
    put64(p, 0);
    put32(p, event);
    put32(p, 0);
    put32(p, 0);
    put32(p, static_cast<uint32_t>(numwant));
    p.push_back(static_cast<uint8_t>(port >> 8));
    p.push_back(static_cast<uint8_t>(port));
    return p;
  }
};

TEST_F(Fixture, ConnectAnnounceScrape) {
  const uint64_t cid = connect();
  ASSERT_EQ(send(announce(cid, 'a', 6881, 0)), 20u);
  EXPECT_EQ(get32(out.data()), 1u);
  EXPECT_EQ(get32(out.data() + 4), 5u);
  EXPECT_EQ(get32(out.data() + 8), 1800u);
  EXPECT_EQ(get32(out.data() + 16), 1u);  // seeders
  Endpoint other = from;
  other.port = 40001;
  const size_t n = udp.handle(announce(cid, 'b', 6882, 10), other, now, out.data());
  // The connection id is bound to the address and port it was given to.
  EXPECT_EQ(get32(out.data()), 3u);
  EXPECT_LE(n, 98u);
  ASSERT_EQ(send(announce(cid, 'b', 6882, 10)), 26u);
  EXPECT_EQ(out[20], 127);
  EXPECT_EQ(out[24] << 8 | out[25], 6881);

  std::vector<uint8_t> s;
  put64(s, cid);
  put32(s, 2);
  put32(s, 8);
  s.insert(s.end(), ih.bytes.begin(), ih.bytes.end());
  for (int i = 0; i < 20; ++i)
    s.push_back(1);
  ASSERT_EQ(send(s), 8u + 24u);
  EXPECT_EQ(get32(out.data() + 8), 1u);   // seeders
  EXPECT_EQ(get32(out.data() + 16), 1u);  // leechers
  EXPECT_EQ(get32(out.data() + 20), 0u);  // the unknown torrent
  EXPECT_EQ(udp.counters().announces, 2u);
  EXPECT_EQ(udp.counters().scrapes, 1u);
}

TEST_F(Fixture, ConnectionIdsExpireAndCannotBeForged) {
  const uint64_t cid = connect(now);
  EXPECT_EQ(send(announce(cid, 'a', 1, 0), now + 119, from), 20u);  // within two minutes
  EXPECT_EQ(send(announce(cid, 'a', 1, 0), now + 200, from), 29u);  // expired: an error
  EXPECT_EQ(get32(out.data()), 3u);
  const auto forged = announce(0x1234, 'a', 1, 0);
  const size_t n = send(forged);
  EXPECT_EQ(get32(out.data()), 3u);
  EXPECT_LE(n, forged.size());  // never amplified
  // A tiny datagram with a bad id gets an error cut to its own size.
  std::vector<uint8_t> tiny;
  put64(tiny, 1);
  put32(tiny, 2);
  put32(tiny, 3);
  EXPECT_LE(send(tiny), 16u);
  EXPECT_GE(udp.counters().bad_connection_id, 3u);
}

TEST_F(Fixture, MalformedDatagramsAreDroppedOrAnswered) {
  EXPECT_EQ(send(std::vector<uint8_t>(10, 0)), 0u);  // too short
  std::vector<uint8_t> p;
  put64(p, 42);  // not the protocol id
  put32(p, 0);
  put32(p, 1);
  EXPECT_EQ(send(p), 0u);
  const uint64_t cid = connect();
  std::vector<uint8_t> unknown;
  put64(unknown, cid);
  put32(unknown, 9);
  put32(unknown, 1);
  EXPECT_EQ(send(unknown), 0u);
  auto a = announce(cid, 'a', 1, 0);
  a.resize(60);
  EXPECT_EQ(send(a), 8u + std::strlen("announce too short"));
  EXPECT_EQ(send(announce(cid, 'a', 0, 0)), 8u + std::strlen("port must not be 0"));
  EXPECT_EQ(send(announce(cid, 'a', 1, 0, 77)), 8u + std::strlen("unknown event"));
  InfoHash other;
  other.bytes.fill(9);
  auto b = announce(cid, 'a', 1, 0);
  std::memcpy(b.data() + 16, other.bytes.data(), 20);
  EXPECT_GT(send(b), 8u);
  EXPECT_EQ(get32(out.data()), 3u);  // not tracked here
}

TEST_F(Fixture, UrlDataOptionsAreParsedWithBounds) {
  const uint64_t cid = connect();
  auto a = announce(cid, 'a', 1, 0);
  const uint8_t opts[] = {1, 2, 3, '/', 'a', 'b', 2, 2, '?', 'x', 1, 0, 2, 9};
  a.insert(a.end(), opts, opts + sizeof opts);
  EXPECT_EQ(send(a), 20u);
  EXPECT_EQ(udp.last_url_data(), "/ab?x");
  auto b = announce(cid, 'a', 1, 0);
  const uint8_t bad[] = {2, 200, 'x'};  // a length past the end
  b.insert(b.end(), bad, bad + sizeof bad);
  EXPECT_EQ(send(b), 20u);
  EXPECT_EQ(udp.last_url_data(), "");
}

}  // namespace
}  // namespace evert::tracker
