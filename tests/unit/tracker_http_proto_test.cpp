// The HTTP tracker codec: query parsing (percent-decoding per RFC 3986, every rejection) and
// bencoded responses.
#include <gtest/gtest.h>

#include "evert/bencode.h"
#include "evert/tracker/http_proto.h"

namespace evert::tracker {
namespace {

const std::string kIh = "%124Vx%9A%BC%DE%F1%23Eg%89%AB%CD%EF%124Vx%9A";  // 20 bytes
const std::string kPid = "-qB4500-abcdefghijkl";

std::string good(const std::string& extra = "") {
  return "info_hash=" + kIh + "&peer_id=" + kPid + "&port=6881&uploaded=1&downloaded=2&left=3" +
         extra;
}

TEST(HttpProto, UrlDecodeIsRfc3986) {
  EXPECT_EQ(url_decode("a+b%20c%2B"), "a+b c+");
  EXPECT_EQ(url_decode("%00%ff"), std::string("\x00\xff", 2));
  EXPECT_FALSE(url_decode("%"));
  EXPECT_FALSE(url_decode("%4"));
  EXPECT_FALSE(url_decode("%zz"));
}

TEST(HttpProto, ParsesAnAnnounce) {
  QueryLimits l;
  auto a = parse_announce(good("&event=completed&numwant=500&compact=0&no_peer_id=1&key=k1"), l);
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_EQ(a->request.info_hash.bytes[0], 0x12);
  EXPECT_EQ(a->request.peer_id.view(), kPid);
  EXPECT_EQ(a->request.endpoint.port, 6881);
  EXPECT_EQ(a->request.uploaded, 1u);
  EXPECT_EQ(a->request.downloaded, 2u);
  EXPECT_EQ(a->request.left, 3u);
  EXPECT_EQ(a->request.event, Event::kCompleted);
  EXPECT_EQ(a->request.numwant, l.numwant_max);  // capped
  EXPECT_FALSE(a->compact);
  EXPECT_TRUE(a->no_peer_id);
  EXPECT_EQ(a->key, "k1");
  auto b = parse_announce(good("&ipv6=%5B2001%3Adb8%3A%3A1%5D%3A7000&ip=1.2.3.4&event=paused"), l);
  ASSERT_TRUE(b.ok());
  ASSERT_TRUE(b->ipv6);
  EXPECT_EQ(b->ipv6->port, 7000);
  ASSERT_TRUE(b->ip);
  EXPECT_EQ(b->ip->family, Family::kV4);
  EXPECT_EQ(b->request.event, Event::kPaused);
  EXPECT_EQ(b->request.numwant, l.numwant_default);
  // '+' inside info_hash is the byte 0x2b.
  auto c = parse_announce("info_hash=++++++++++++++++++++&peer_id=" + kPid + "&port=1&left=0", l);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->request.info_hash.bytes[5], '+');
}

TEST(HttpProto, RejectsWithAReason) {
  QueryLimits l;
  const std::pair<std::string, std::string> cases[] = {
      {"peer_id=" + kPid + "&port=1&left=0", "missing info_hash"},
      {"info_hash=abc&peer_id=" + kPid + "&port=1&left=0", "info_hash must be 20 bytes (got 3)"},
      {"info_hash=" + kIh + "&info_hash=" + kIh + "&peer_id=" + kPid + "&port=1&left=0",
       "info_hash given twice"},
      {"info_hash=" + kIh + "&port=1&left=0", "missing peer_id"},
      {"info_hash=" + kIh + "&peer_id=" + kPid + "&left=0", "missing port"},
      {"info_hash=" + kIh + "&peer_id=" + kPid + "&port=0&left=0", "port must be from 1 to 65535"},
      {"info_hash=" + kIh + "&peer_id=" + kPid + "&port=65536&left=0", "port must be from 1"},
      {"info_hash=" + kIh + "&peer_id=" + kPid + "&port=1", "missing left"},
      {good("&left=-5").replace(good().find("left=3"), 6, ""), "left is negative"},
      {good("&uploaded=x"), "uploaded is not a number"},
      {good("&downloaded=18446744073709551616"), "downloaded is too large"},
      {good("&event=bogus"), "unknown event"},
      {good("&key=%zz"), "key has a malformed percent-escape"},
      {good("&key=" + std::string(200, 'k')), "key is too long"},
  };
  for (const auto& [query, reason] : cases) {
    auto r = parse_announce(query, l);
    ASSERT_FALSE(r.ok()) << query;
    EXPECT_NE(r.error().message.find(reason), std::string::npos)
        << query << " -> " << r.error().message;
  }
  std::string many;
  for (int i = 0; i < 100; ++i)
    many += "&x" + std::to_string(i) + "=1";
  EXPECT_NE(parse_announce(good(many), l).error().message.find("too many parameters"),
            std::string::npos);
}

TEST(HttpProto, Scrape) {
  QueryLimits l;
  l.max_scrape = 2;
  auto s = parse_scrape("info_hash=" + kIh + "&x=1&info_hash=" + kIh, l);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->size(), 2u);
  EXPECT_TRUE(parse_scrape("", l)->empty());  // full scrape asked
  EXPECT_NE(parse_scrape("info_hash=" + kIh + "&info_hash=" + kIh + "&info_hash=" + kIh, l)
                .error()
                .message.find("too many info_hash values (at most 2)"),
            std::string::npos);
  EXPECT_FALSE(parse_scrape("info_hash=short", l).ok());
}

TEST(HttpProto, ResponsesAreValidBencode) {
  HttpAnnounce a;
  AnnounceReply reply;
  reply.counts = {3, 4, 1, 9};
  // key (5) | address | port | client | meta | peer id
  const uint8_t rec4[34] = {1,   2, 3, 4, 5, 10, 0, 0, 1, 0x1A, 0xE1, 0, 0, 0, 'p', 'e', 'e',
                            'r', 0, 0, 0, 0, 0,  0, 0, 0, 0,    0,    0, 0, 0, 0,   0,   0};
  reply.peers4.push_back(PeerRef{rec4, Family::kV4, true});
  AnnounceResponseOptions o;
  o.tracker_id = "t1";
  o.warning = "careful";
  Endpoint ext;
  ext.ip = {127, 0, 0, 1};
  o.external_ip = ext;
  std::string out;
  write_announce_response(a, reply, o, out);
  auto v = bencode::decode(out);
  ASSERT_TRUE(v.ok()) << out;
  const bencode::Value& d = *v;
  EXPECT_EQ(d.find("complete")->as_int(), 3);
  EXPECT_EQ(d.find("incomplete")->as_int(), 4);
  EXPECT_EQ(d.find("downloaded")->as_int(), 9);
  EXPECT_EQ(d.find("peers")->as_string(), std::string("\x0a\x00\x00\x01\x1a\xe1", 6));
  EXPECT_EQ(d.find("external ip")->as_string(), std::string("\x7f\x00\x00\x01", 4));
  EXPECT_EQ(d.find("tracker id")->as_string(), "t1");
  EXPECT_EQ(d.find("warning message")->as_string(), "careful");

  a.compact = false;
  out.clear();
  write_announce_response(a, reply, o, out);
  auto w = bencode::decode(out);
  ASSERT_TRUE(w.ok()) << out;
  const bencode::Value& p = w->find("peers")->as_list().at(0);
  EXPECT_EQ(p.find("ip")->as_string(), "10.0.0.1");
  EXPECT_EQ(p.find("port")->as_int(), 6881);
  EXPECT_EQ(p.find("peer id")->as_string().substr(0, 4), "peer");

  // A tracker that does not keep peer ids lists address and port only (as with no_peer_id).
  reply.peers4[0].has_id = false;
  out.clear();
  write_announce_response(a, reply, o, out);
  auto x = bencode::decode(out);
  ASSERT_TRUE(x.ok()) << out;
  const bencode::Value& q = x->find("peers")->as_list().at(0);
  EXPECT_EQ(q.find("port")->as_int(), 6881);
  EXPECT_EQ(q.find("peer id"), nullptr);

  out.clear();
  write_failure("no such torrent", out);
  EXPECT_EQ(out, "d14:failure reason15:no such torrente");

  out.clear();
  ScrapeWriter sw(out);
  InfoHash h;
  h.bytes.fill('A');
  sw.add(h, reply.counts);
  sw.finish(60);
  auto sc = bencode::decode(out);
  ASSERT_TRUE(sc.ok()) << out;
  const bencode::Value& f = *sc->find("files")->find(std::string(20, 'A'));
  EXPECT_EQ(f.find("downloaders")->as_int(), 3);
}

}  // namespace
}  // namespace evert::tracker
