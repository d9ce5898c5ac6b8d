// The client side of the tracker protocols (lib/tracker_client): URLs, the HTTP announce query
// and reply, UDP connect/announce/error datagrams. Requests are checked by handing them to this
// project's own tracker codecs (modules/tracker), so both sides agree byte for byte.
#include "evert/tracker_client.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "evert/tracker/http_proto.h"
#include "evert/tracker/udp_proto.h"

namespace evert::tracker_client {
namespace {

AnnounceRequest seed_request() {
  AnnounceRequest a;
  for (size_t i = 0; i < 20; ++i) {
    a.info_hash.bytes[i] = static_cast<uint8_t>(i * 13);  // bytes that need escaping
    a.peer_id[i] = static_cast<uint8_t>('A' + i);
  }
  std::memcpy(a.peer_id.data(), "-ET0001-", 8);
  a.port = 51413;
  a.left = 0;
  a.uploaded = 12345;
  a.event = Event::kStarted;
  a.key = 0xDEADBEEF;
  a.numwant = 0;
  return a;
}

std::span<const uint8_t> bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

TEST(TrackerUrl, ParsesTheForms) {
  auto u = parse_tracker_url("http://Tracker.Example.ORG/announce");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->scheme, Scheme::kHttp);
  EXPECT_EQ(u->host, "tracker.example.org");
  EXPECT_EQ(u->port, 80);
  EXPECT_EQ(u->target, "/announce");
  EXPECT_EQ(u->endpoint_key(), "http://tracker.example.org:80");

  u = parse_tracker_url("https://t.example:8443/a/announce?passkey=abc");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->scheme, Scheme::kHttps);
  EXPECT_EQ(u->port, 8443);
  EXPECT_EQ(u->target, "/a/announce?passkey=abc");

  u = parse_tracker_url("udp://[2001:DB8::1]:6969");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->scheme, Scheme::kUdp);
  EXPECT_EQ(u->host, "2001:db8::1");
  EXPECT_EQ(u->target, "/");
  EXPECT_EQ(u->endpoint_key(), "udp://[2001:db8::1]:6969");

  u = parse_tracker_url("HTTP://1.2.3.4:6969?x=1");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->target, "/?x=1");
  EXPECT_EQ(parse_tracker_url("https://h")->port, 443);
}

TEST(TrackerUrl, RejectsWhatIsNoTracker) {
  for (const char* bad :
       {"", "tracker.example.org/announce", "ftp://h/announce", "http:///announce",
        "udp://h/announce", "http://h:0/", "http://h:65536/", "http://h:12x/", "http://u:p@h/",
        "http://[::1/", "http://[::1]x/", "http://[zz]:1/", "http://h /", "http://h/\x01",
        "http://h\xc3\xa9/", "http://a:b:c/"}) {
    EXPECT_FALSE(parse_tracker_url(bad)) << bad;
  }
  EXPECT_FALSE(parse_tracker_url("http://h/" + std::string(3000, 'a')));
}

TEST(HttpAnnounce, TheTrackerReadsWhatWeSend) {
  const AnnounceRequest a = seed_request();
  auto url = parse_tracker_url("http://h:1/announce?passkey=p%20k");
  ASSERT_TRUE(url);
  const std::string target = http_announce_target(*url, a);
  ASSERT_EQ(target.rfind("/announce?passkey=p%20k&info_hash=", 0), 0u) << target;
  const std::string query = target.substr(target.find('?') + 1);
  tracker::QueryLimits limits;
  auto parsed = tracker::parse_announce(query, limits);
  ASSERT_TRUE(parsed) << parsed.error().message;
  EXPECT_EQ(parsed->request.info_hash.view(), a.info_hash.view());
  EXPECT_EQ(std::memcmp(parsed->request.peer_id.bytes.data(), a.peer_id.data(), 20), 0);
  EXPECT_EQ(parsed->request.endpoint.port, 51413);
  EXPECT_EQ(parsed->request.left, 0u);
  EXPECT_EQ(parsed->request.uploaded, 12345u);
  EXPECT_EQ(parsed->request.event, tracker::Event::kStarted);
  EXPECT_EQ(parsed->request.numwant, 0u);
  EXPECT_TRUE(parsed->compact);
  EXPECT_EQ(parsed->key, "DEADBEEF");

  AnnounceRequest b = a;
  b.event = Event::kStopped;
  b.ip = "203.0.113.9";
  b.numwant = -1;
  const std::string t2 = http_announce_target(*parse_tracker_url("http://h/announce"), b);
  EXPECT_NE(t2.find("/announce?info_hash="), std::string::npos);
  EXPECT_NE(t2.find("&event=stopped"), std::string::npos);
  EXPECT_NE(t2.find("&ip=203.0.113.9"), std::string::npos);
  EXPECT_EQ(t2.find("numwant"), std::string::npos);
}

TEST(HttpReply, ReadsOurTrackersAnswer) {
  tracker::HttpAnnounce req;
  tracker::AnnounceReply reply;
  reply.counts.complete = 3;
  reply.counts.incomplete = 5;
  tracker::AnnounceResponseOptions o;
  o.interval = 1234;
  o.min_interval = 99;
  o.warning = "be nice";
  std::string body;
  tracker::write_announce_response(req, reply, o, body);
  auto r = parse_http_reply(body);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_TRUE(r->failure.empty());
  EXPECT_EQ(r->interval, 1234u);
  EXPECT_EQ(r->min_interval, 99u);
  EXPECT_EQ(r->seeders, 3u);
  EXPECT_EQ(r->leechers, 5u);
  EXPECT_EQ(r->warning, "be nice");

  body.clear();
  tracker::write_failure("torrent not registered", body);
  r = parse_http_reply(body);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->failure, "torrent not registered");
}

TEST(HttpReply, IsLenientWithRealTrackersButNotWithGarbage) {
  // Unsorted keys, a repeated key (the last wins) and a newline after the dictionary.
  auto r =
      parse_http_reply("d8:intervali900e8:completei2e10:incompletei1e8:completei4e5:peers0:e\n");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->interval, 900u);
  EXPECT_EQ(r->seeders, 4u);
  EXPECT_EQ(r->leechers, 1u);
  EXPECT_FALSE(r->min_interval);
  // Numbers out of range are clamped or ignored; texts are made printable and cut.
  r = parse_http_reply(
      "d8:intervali99999999999e8:completei-5e15:warning message3:a\x01\xff"
      "e");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->interval, UINT32_MAX);
  EXPECT_FALSE(r->seeders);
  EXPECT_EQ(r->warning, "a??");
  r = parse_http_reply("d14:failure reason" + std::to_string(kMaxMessage + 50) + ":" +
                       std::string(kMaxMessage + 50, 'x') + "e");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->failure.size(), kMaxMessage);
  r = parse_http_reply("d14:failure reason0:e");
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->failure.empty());
  for (const char* bad :
       {"", "<html>502 Bad Gateway</html>", "li1ee", "d5:peers0:e", "d8:interval", "i5e"}) {
    EXPECT_FALSE(parse_http_reply(bad)) << bad;
  }
}

TEST(Udp, ConnectAndAnnounceAgainstOurTracker) {
  tracker::SwarmOptions so;
  so.whitelist = false;
  tracker::SwarmTable swarms(so);
  tracker::UdpTracker server(swarms, {});
  std::vector<uint8_t> out(tracker::UdpTracker::kMaxResponse);
  tracker::Endpoint from;
  from.ip = {127, 0, 0, 1};
  from.port = 40000;
  const int64_t now = 1'000'000;

  const std::string c = udp_connect_request(77);
  ASSERT_EQ(c.size(), kUdpConnectSize);
  size_t n = server.handle(bytes(c), from, now, out.data());
  auto r = parse_udp_response({out.data(), n});
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->kind, UdpResponse::Kind::kConnect);
  EXPECT_EQ(r->transaction, 77u);
  EXPECT_EQ(r->connection_id, server.connection_id(from, now / 60));
  const uint64_t cid = r->connection_id;

  const AnnounceRequest a = seed_request();
  const std::string ann = udp_announce_request(cid, 78, a, "/announce?k=v");
  n = server.handle(bytes(ann), from, now, out.data());
  r = parse_udp_response({out.data(), n});
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(r->kind, UdpResponse::Kind::kAnnounce);
  EXPECT_EQ(r->transaction, 78u);
  EXPECT_EQ(r->reply.interval, 1800u);
  EXPECT_EQ(r->reply.seeders, 1u);  // us: left=0
  EXPECT_EQ(r->reply.leechers, 0u);
  EXPECT_EQ(server.last_url_data(), "/announce?k=v");  // BEP 41
  tracker::SwarmCounts counts;
  swarms.scrape(tracker::InfoHash::from(a.info_hash.view()), counts);
  EXPECT_EQ(counts.complete, 1u);

  // event=stopped takes us out again.
  AnnounceRequest s = a;
  s.event = Event::kStopped;
  n = server.handle(bytes(udp_announce_request(cid, 79, s, "")), from, now, out.data());
  auto stopped = parse_udp_response({out.data(), n});
  ASSERT_TRUE(stopped);
  EXPECT_EQ(stopped->kind, UdpResponse::Kind::kAnnounce) << stopped->reply.failure;
  swarms.scrape(tracker::InfoHash::from(a.info_hash.view()), counts);
  EXPECT_EQ(counts.complete, 0u);

  // A made-up connection id gets an error, which we read as a refusal.
  n = server.handle(bytes(udp_announce_request(12345, 80, a, "")), from, now, out.data());
  r = parse_udp_response({out.data(), n});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->kind, UdpResponse::Kind::kError);
  EXPECT_EQ(r->transaction, 80u);
  EXPECT_NE(r->reply.failure.find("connection id"), std::string::npos);
}

TEST(Udp, UrlDataIsCutIntoOptions) {
  const std::string long_path = "/" + std::string(600, 'p');
  const std::string p = udp_announce_request(1, 2, seed_request(), long_path);
  ASSERT_GT(p.size(), 98u);
  EXPECT_EQ(p[98], '\x02');
  EXPECT_EQ(static_cast<uint8_t>(p[99]), 255);
  EXPECT_EQ(p.back(), '\x00');
  EXPECT_EQ(p.size(), 98 + 3 * 2 + 601 + 1);
  EXPECT_EQ(udp_announce_request(1, 2, seed_request(), "").size(), 98u);
  EXPECT_LE(udp_announce_request(1, 2, seed_request(), std::string(5000, 'x')).size(),
            98 + kUdpMaxUrlData + 2 * 5 + 1);
}

TEST(Udp, MalformedDatagramsAreErrors) {
  const uint8_t short_connect[] = {0, 0, 0, 0, 0, 0, 0, 1, 0, 0};
  const uint8_t short_announce[] = {0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 5};
  const uint8_t scrape[] = {0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  const uint8_t unknown[] = {0, 0, 0, 9, 0, 0, 0, 1};
  const uint8_t tiny[] = {0, 0, 0};
  EXPECT_FALSE(parse_udp_response(short_connect));
  EXPECT_FALSE(parse_udp_response(short_announce));
  EXPECT_FALSE(parse_udp_response(scrape));
  EXPECT_FALSE(parse_udp_response(unknown));
  EXPECT_FALSE(parse_udp_response(tiny));
  const uint8_t empty_error[] = {0, 0, 0, 3, 0, 0, 0, 1};
  auto r = parse_udp_response(empty_error);
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->reply.failure.empty());
}

}  // namespace
}  // namespace evert::tracker_client
