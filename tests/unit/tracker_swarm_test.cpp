// The swarm rules with an injected clock: expiry, stopped, completed once, smart peer lists,
// families apart, peers bound to their address, caps, whitelist, snapshots.
#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <set>
#include <string>

#include "evert/tracker/swarm.h"

namespace evert::tracker {
namespace {

InfoHash ih(uint8_t b) {
  InfoHash h;
  h.bytes.fill(b);
  return h;
}
PeerId pid(int n) {
  PeerId p;
  p.bytes.fill(static_cast<uint8_t>('a'));
  p.bytes[0] = static_cast<uint8_t>(n >> 8);
  p.bytes[19] = static_cast<uint8_t>(n);
  return p;
}
Endpoint v4(uint8_t last, uint16_t port) {
  Endpoint e;
  e.family = Family::kV4;
  e.ip[0] = 10;
  e.ip[3] = last;
  e.port = port;
  return e;
}
Endpoint v6(uint8_t last, uint16_t port) {
  Endpoint e;
  e.family = Family::kV6;
  e.ip[0] = 0x20;
  e.ip[15] = last;
  e.port = port;
  return e;
}
AnnounceRequest req(const InfoHash& h, int peer, Endpoint e, uint64_t left, Event ev = Event::kNone,
                    uint32_t numwant = 50) {
  AnnounceRequest r;
  r.info_hash = h;
  r.peer_id = pid(peer);
  r.endpoint = e;
  r.left = left;
  r.event = ev;
  r.numwant = numwant;
  return r;
}
uint16_t port_of(const PeerRef& p) {
  return static_cast<uint16_t>(p.port()[0] << 8 | p.port()[1]);
}

SwarmOptions open_mode() {
  SwarmOptions o;
  o.whitelist = false;
  o.expiry = 600;
  return o;
}

TEST(Swarm, NeverTheAskerAndCounts) {
  SwarmTable t(open_mode());
  AnnounceReply r;
  ASSERT_EQ(t.announce(req(ih(1), 1, v4(1, 1001), 0), 1000, r), Refusal::kNone);
  EXPECT_TRUE(r.peers4.empty());
  EXPECT_EQ(r.counts.complete, 1u);
  t.announce(req(ih(1), 2, v4(2, 1002), 5), 1000, r);
  ASSERT_EQ(r.peers4.size(), 1u);
  EXPECT_EQ(port_of(r.peers4[0]), 1001);
  EXPECT_EQ(r.counts.complete, 1u);
  EXPECT_EQ(r.counts.incomplete, 1u);
  EXPECT_EQ(t.peer_count(), 2u);
}

TEST(Swarm, SeedsGetLeechersOnlyAndLeechersAMix) {
  SwarmTable t(open_mode());
  AnnounceReply r;
  for (int i = 0; i < 10; ++i)
    t.announce(req(ih(1), i, v4(1, 2000 + i), i < 5 ? 0 : 9), 1000, r);
  t.announce(req(ih(1), 100, v4(9, 3000), 0), 1000, r);  // a seed asks
  ASSERT_EQ(r.peers4.size(), 5u);
  for (const auto& p : r.peers4)
    EXPECT_GE(port_of(p), 2005);
  t.announce(req(ih(1), 101, v4(9, 3001), 7), 1000, r);  // a leecher asks
  EXPECT_EQ(r.peers4.size(), 11u);
  t.announce(req(ih(1), 101, v4(9, 3001), 7, Event::kNone, 4), 1000, r);
  EXPECT_EQ(r.peers4.size(), 4u);
}

TEST(Swarm, SelectionIsFairOverManyAnnounces) {
  SwarmTable t(open_mode());
  AnnounceReply r;
  for (int i = 0; i < 100; ++i)
    t.announce(req(ih(1), i, v4(static_cast<uint8_t>(i), 2000 + i), 1), 1000, r);
  std::map<uint16_t, int> seen;
  for (int k = 0; k < 2000; ++k) {
    t.announce(req(ih(1), 500, v4(2, 9000), 1, Event::kNone, 10), 1000, r);
    for (const auto& p : r.peers4)
      ++seen[port_of(p)];
  }
  ASSERT_EQ(seen.size(), 100u);  // everybody gets a turn
  for (const auto& [port, n] : seen) {
    EXPECT_GT(n, 100) << port;  // 200 expected each
    EXPECT_LT(n, 300) << port;
  }
}

TEST(Swarm, StoppedRemovesAndCompletedCountsOnce) {
  SwarmTable t(open_mode());
  AnnounceReply r;
  t.announce(req(ih(1), 1, v4(1, 1), 5, Event::kStarted), 1000, r);
  t.announce(req(ih(1), 1, v4(1, 1), 0, Event::kCompleted), 1001, r);
  t.announce(req(ih(1), 1, v4(1, 1), 0, Event::kCompleted), 1002, r);
  EXPECT_EQ(r.counts.downloaded, 1u);
  EXPECT_EQ(r.counts.complete, 1u);
  t.announce(req(ih(1), 2, v4(2, 2), 0, Event::kCompleted), 1003, r);
  EXPECT_EQ(r.counts.downloaded, 2u);
  t.announce(req(ih(1), 1, v4(1, 1), 0, Event::kStopped), 1004, r);
  EXPECT_EQ(r.counts.complete, 1u);
  EXPECT_EQ(t.peer_count(), 1u);
  // The completed count outlives the peers: the swarm stays for scrape.
  t.announce(req(ih(1), 2, v4(2, 2), 0, Event::kStopped), 1005, r);
  SwarmCounts c;
  ASSERT_TRUE(t.scrape(ih(1), c));
  EXPECT_EQ(c.downloaded, 2u);
  EXPECT_EQ(c.complete + c.incomplete, 0u);
}

TEST(Swarm, AChangedPortIsUpdatedNotDuplicated) {
  SwarmTable t(open_mode());
  AnnounceReply r;
  t.announce(req(ih(1), 1, v4(1, 1000), 5), 1000, r);
  t.announce(req(ih(1), 1, v4(1, 1700), 5), 1010, r);  // restarted on another port
  EXPECT_EQ(t.peer_count(), 1u);
  t.announce(req(ih(1), 2, v4(2, 2000), 5), 1020, r);
  ASSERT_EQ(r.peers4.size(), 1u);
  EXPECT_EQ(r.peers4[0].ip()[3], 1);
  EXPECT_EQ(port_of(r.peers4[0]), 1700);
}

// Peer ids are public (every handshake shows them): one from another address is another peer,
// which cannot stop, update or move the peer listed under that id.
TEST(Swarm, APeerIdFromAnotherAddressIsAnotherPeer) {
  SwarmTable t(open_mode());
  AnnounceReply r;
  t.announce(req(ih(1), 1, v4(1, 1000), 5), 1000, r);
  // A stop in its name from elsewhere stops nobody.
  t.announce(req(ih(1), 1, v4(66, 1000), 5, Event::kStopped), 1010, r);
  EXPECT_EQ(t.peer_count(), 1u);
  EXPECT_EQ(r.counts.incomplete, 1u);
  // An announce in its name from elsewhere neither moves nor changes it: a second peer.
  t.announce(req(ih(1), 1, v4(66, 6666), 0, Event::kCompleted), 1020, r);
  EXPECT_EQ(t.peer_count(), 2u);
  SwarmCounts c;
  ASSERT_TRUE(t.scrape(ih(1), c));
  EXPECT_EQ(c.complete, 1u);
  EXPECT_EQ(c.incomplete, 1u);
  EXPECT_EQ(c.downloaded, 1u);
  std::set<std::pair<uint8_t, uint16_t>> at;
  for (const auto& p : t.peers_of(ih(1), 1020))
    at.emplace(p.endpoint.ip[3], p.endpoint.port);
  EXPECT_EQ(at, (std::set<std::pair<uint8_t, uint16_t>>{{1, 1000}, {66, 6666}}));
  // Each stops itself only.
  t.announce(req(ih(1), 1, v4(66, 6666), 0, Event::kStopped), 1030, r);
  EXPECT_EQ(r.counts.complete, 0u);
  EXPECT_EQ(r.counts.incomplete, 1u);
  ASSERT_EQ(t.peers_of(ih(1), 1030).size(), 1u);
  EXPECT_EQ(t.peers_of(ih(1), 1030)[0].endpoint, v4(1, 1000));
  t.announce(req(ih(1), 1, v4(1, 1000), 5, Event::kStopped), 1040, r);
  EXPECT_EQ(t.peer_count(), 0u);

  // BEP 7: a peer listed in both families stops in both, from its own addresses only.
  auto both = req(ih(2), 7, v4(7, 7000), 5);
  both.other = v6(7, 7000);
  t.announce(both, 1050, r);
  EXPECT_EQ(t.peer_count(), 2u);
  auto spoof = req(ih(2), 7, v4(8, 7000), 5, Event::kStopped);
  spoof.other = v6(8, 7000);
  t.announce(spoof, 1060, r);
  EXPECT_EQ(t.peer_count(), 2u);
  both.event = Event::kStopped;
  t.announce(both, 1070, r);
  EXPECT_EQ(t.peer_count(), 0u);
}

TEST(Swarm, FamiliesAreKeptApart) {
  SwarmTable t(open_mode());
  AnnounceReply r;
  t.announce(req(ih(1), 1, v4(1, 1), 5), 1000, r);
  t.announce(req(ih(1), 2, v6(2, 2), 5), 1000, r);
  EXPECT_TRUE(r.peers4.empty());  // a v6-only asker gets no v4 peers
  EXPECT_TRUE(r.peers6.empty());
  t.announce(req(ih(1), 3, v6(3, 3), 5), 1000, r);
  ASSERT_EQ(r.peers6.size(), 1u);
  EXPECT_EQ(r.peers6[0].ip()[15], 2);
  // BEP 7: an asker with both addresses gets both lists, and is stored in both.
  auto both = req(ih(1), 4, v4(4, 4), 5);
  both.other = v6(4, 4);
  t.announce(both, 1000, r);
  EXPECT_EQ(r.peers4.size(), 1u);
  EXPECT_EQ(r.peers6.size(), 2u);
  EXPECT_EQ(t.peer_count(), 5u);
}

TEST(Swarm, PartialSeedsAreCountedApart) {
  SwarmTable t(open_mode());
  AnnounceReply r;
  t.announce(req(ih(1), 1, v4(1, 1), 5, Event::kPaused), 1000, r);
  t.announce(req(ih(1), 2, v4(2, 2), 5), 1000, r);
  SwarmCounts c;
  ASSERT_TRUE(t.scrape(ih(1), c));
  EXPECT_EQ(c.incomplete, 2u);
  EXPECT_EQ(c.partial, 1u);
  // A partial seed, like a seed, is given leechers only.
  t.announce(req(ih(1), 1, v4(1, 1), 5, Event::kPaused), 1000, r);
  ASSERT_EQ(r.peers4.size(), 1u);
  EXPECT_EQ(port_of(r.peers4[0]), 2);
}

TEST(Swarm, PeersExpireWithTheClock) {
  SwarmOptions o = open_mode();
  o.expiry = 100;
  SwarmTable t(o);
  AnnounceReply r;
  t.announce(req(ih(1), 1, v4(1, 1), 5), 1000, r);
  t.announce(req(ih(1), 2, v4(2, 2), 5), 1050, r);
  EXPECT_EQ(t.expire(1090), 0u);
  EXPECT_EQ(t.expire(1110), 1u);  // peer 1: 110 s old
  EXPECT_EQ(t.peer_count(), 1u);
  EXPECT_EQ(t.expire(1160), 1u);
  EXPECT_EQ(t.swarm_count(), 0u);  // nothing left, no completed count: gone
}

TEST(Swarm, WhitelistAndCaps) {
  SwarmOptions o;
  o.whitelist = true;
  SwarmTable t(o);
  AnnounceReply r;
  EXPECT_EQ(t.announce(req(ih(1), 1, v4(1, 1), 5), 1000, r), Refusal::kNotAllowed);
  t.allow(ih(1));
  EXPECT_EQ(t.announce(req(ih(1), 1, v4(1, 1), 5), 1000, r), Refusal::kNone);
  t.disallow(ih(1));
  EXPECT_EQ(t.announce(req(ih(1), 1, v4(1, 1), 5), 1000, r), Refusal::kNotAllowed);

  SwarmOptions open = open_mode();
  open.max_swarms = 2;
  open.max_peers_per_swarm = 2;
  SwarmTable u(open);
  EXPECT_EQ(u.announce(req(ih(1), 1, v4(1, 1), 5), 1000, r), Refusal::kNone);
  EXPECT_EQ(u.announce(req(ih(2), 1, v4(1, 1), 5), 1000, r), Refusal::kNone);
  EXPECT_EQ(u.announce(req(ih(3), 1, v4(1, 1), 5), 1000, r), Refusal::kTooManySwarms);
  u.announce(req(ih(1), 2, v4(2, 2), 5), 1000, r);
  u.announce(req(ih(1), 3, v4(3, 3), 5), 1000, r);
  EXPECT_FALSE(r.stored);  // the swarm is full: peers given, not kept
  EXPECT_EQ(r.peers4.size(), 2u);
  EXPECT_EQ(u.peer_count(), 3u);
}

// Defaults: one host cannot fill a swarm with made-up peers (32 per address).
TEST(Swarm, OneAddressCannotFillASwarm) {
  SwarmTable t(open_mode());
  AnnounceReply r;
  for (int i = 0; i < 40; ++i)
    t.announce(req(ih(1), i, v4(1, static_cast<uint16_t>(1000 + i)), 5), 1000, r);
  EXPECT_FALSE(r.stored);
  EXPECT_EQ(r.peers4.size(), 32u);  // answered all the same
  EXPECT_EQ(t.peer_count(), 32u);
  t.announce(req(ih(1), 100, v4(2, 1000), 5), 1000, r);  // another address is welcome
  EXPECT_TRUE(r.stored);
  EXPECT_EQ(t.peer_count(), 33u);
  t.announce(req(ih(2), 1, v4(1, 1000), 5), 1000, r);  // and so is the same one elsewhere
  EXPECT_TRUE(r.stored);
}

TEST(Swarm, PeersPerAddressAreCappedByIpv4AddressAndIpv6Slash64) {
  SwarmOptions o = open_mode();
  o.max_peers_per_address = 3;
  SwarmTable t(o);
  AnnounceReply r;
  for (int i = 0; i < 3; ++i) {
    t.announce(req(ih(1), i, v4(1, static_cast<uint16_t>(i + 1)), 5), 1000, r);
    EXPECT_TRUE(r.stored);
  }
  t.announce(req(ih(1), 3, v4(1, 4), 5), 1000, r);
  EXPECT_FALSE(r.stored);
  EXPECT_TRUE(r.address_full);
  EXPECT_EQ(r.peers4.size(), 3u);
  t.announce(req(ih(1), 0, v4(1, 1), 5), 1010, r);  // a listed peer re-announces as ever
  EXPECT_TRUE(r.stored);
  EXPECT_FALSE(r.address_full);
  // IPv6: a host has a /64, so addresses within one count together.
  for (int i = 0; i < 4; ++i) {
    Endpoint e = v6(static_cast<uint8_t>(i), 1);
    e.ip[8] = static_cast<uint8_t>(i);  // the interface part differs
    t.announce(req(ih(1), 10 + i, e, 5), 1000, r);
  }
  EXPECT_FALSE(r.stored);
  EXPECT_TRUE(r.address_full);
  Endpoint other64 = v6(9, 1);
  other64.ip[7] = 1;
  t.announce(req(ih(1), 20, other64, 5), 1000, r);
  EXPECT_TRUE(r.stored);
  EXPECT_EQ(t.peer_count(), 7u);
  // A full swarm is told apart from a full address.
  o.max_peers_per_swarm = 3;  // the IPv4 peers there are
  t.set_options(o);
  t.announce(req(ih(1), 30, v4(30, 1), 5), 1000, r);
  EXPECT_FALSE(r.stored);
  EXPECT_FALSE(r.address_full);
  EXPECT_EQ(t.counters().address_full, 2u);
  EXPECT_EQ(t.counters().swarm_full, 1u);
}

// An open-mode swarm left with only a completed count used to stay for good: made-up
// info-hashes announced once with event=completed filled max_swarms. It now goes once idle
// for the expiry, from memory and from the store; an allowed torrent keeps its count.
TEST(Swarm, CompletedOnlySwarmsExpireUnlessAllowed) {
  SwarmOptions o = open_mode();
  o.expiry = 100;
  SwarmTable t(o);
  t.set_track_dirty(true);
  AnnounceReply r;
  t.allow(ih(2));  // listed (config whitelist or published): its count is kept
  for (uint8_t h : {1, 2, 3}) {
    t.announce(req(ih(h), 1, v4(1, 1), 0, Event::kCompleted), 1000, r);
  }
  t.announce(req(ih(3), 1, v4(1, 1), 0, Event::kStopped), 1050, r);
  std::map<InfoHash, std::string> saved;
  auto take = [&](int64_t now) {
    saved.clear();
    t.take_dirty(now, [&](const InfoHash& h, std::string blob) { saved[h] = std::move(blob); });
  };
  take(1060);
  ASSERT_EQ(saved.size(), 3u);
  const std::string completed_only = saved[ih(3)];  // no peers, downloaded 1
  EXPECT_EQ(t.expire(1090), 0u);
  EXPECT_EQ(t.swarm_count(), 3u);
  EXPECT_EQ(t.expire(1110), 2u);  // the peers of ih(1) and ih(2); ih(3) idle for 60 s only
  take(1110);
  EXPECT_EQ(t.swarm_count(), 2u);  // ih(1): idle for 110 s and not listed
  EXPECT_FALSE(t.find(ih(1)));
  ASSERT_EQ(saved.count(ih(1)), 1u);
  EXPECT_TRUE(saved[ih(1)].empty());  // deleted from the store
  t.expire(1160);
  take(1160);
  EXPECT_EQ(t.swarm_count(), 1u);
  ASSERT_EQ(saved.count(ih(3)), 1u);
  EXPECT_TRUE(saved[ih(3)].empty());
  SwarmCounts c;
  EXPECT_FALSE(t.scrape(ih(3), c));
  ASSERT_TRUE(t.scrape(ih(2), c));  // allowed: kept
  EXPECT_EQ(c.downloaded, 1u);
  t.expire(100'000);
  EXPECT_EQ(t.swarm_count(), 1u);
  t.disallow(ih(2));
  t.expire(100'001);
  EXPECT_EQ(t.swarm_count(), 0u);

  // A restart does not bring it back for good: the snapshot keeps its last activity.
  SwarmTable u(o);
  ASSERT_TRUE(u.restore_snapshot(ih(3), completed_only, 1070));
  ASSERT_TRUE(u.scrape(ih(3), c));
  EXPECT_EQ(c.downloaded, 1u);
  u.expire(1160);
  EXPECT_EQ(u.swarm_count(), 0u);
  // A stop from a peer that is not there is no activity: it cannot keep a swarm alive.
  SwarmTable v(o);
  v.announce(req(ih(4), 1, v4(1, 1), 0, Event::kCompleted), 1000, r);
  v.announce(req(ih(4), 1, v4(1, 1), 0, Event::kStopped), 1000, r);
  v.announce(req(ih(4), 9, v4(9, 9), 0, Event::kStopped), 1090, r);
  v.expire(1100);
  EXPECT_EQ(v.swarm_count(), 0u);
}

TEST(Swarm, SnapshotsRoundTripAndDropExpiredPeers) {
  SwarmOptions o = open_mode();
  o.expiry = 1000;
  const std::array<uint8_t, 16> secret = {1, 2, 3};
  SwarmTable t(o);
  t.set_key_secret(secret);
  t.set_track_dirty(true);
  AnnounceReply r;
  t.announce(req(ih(1), 1, v4(1, 1), 0, Event::kCompleted), 10'000, r);
  t.announce(req(ih(1), 2, v6(2, 2), 5), 10'500, r);
  t.announce(req(ih(2), 3, v4(3, 3), 5), 10'500, r);
  std::map<InfoHash, std::string> saved;
  t.take_dirty(10'600, [&](const InfoHash& h, std::string blob) { saved[h] = std::move(blob); });
  ASSERT_EQ(saved.size(), 2u);
  std::map<InfoHash, std::string> again;
  t.take_dirty(10'601, [&](const InfoHash& h, std::string blob) { again[h] = std::move(blob); });
  EXPECT_TRUE(again.empty());  // nothing changed since

  SwarmTable u(o);
  u.set_key_secret(secret);  // the tracker keeps it in the store with the snapshots
  for (const auto& [h, blob] : saved)
    ASSERT_TRUE(u.restore_snapshot(h, blob, 11'200));
  EXPECT_EQ(u.peer_count(), 2u);  // peer 1 (seen at 10,000) expired by 11,200
  SwarmCounts c;
  ASSERT_TRUE(u.scrape(ih(1), c));
  EXPECT_EQ(c.downloaded, 1u);
  EXPECT_EQ(c.incomplete, 1u);
  auto peers = u.peers_of(ih(1), 11'200);
  ASSERT_EQ(peers.size(), 1u);
  EXPECT_EQ(peers[0].endpoint, v6(2, 2));
  // The restored peer is the same peer: its re-announce updates it.
  u.announce(req(ih(1), 2, v6(2, 9), 5), 11'300, r);
  EXPECT_EQ(u.peer_count(), 2u);
  EXPECT_EQ(u.peers_of(ih(1), 11'300).at(0).endpoint, v6(2, 9));
  EXPECT_FALSE(u.restore_snapshot(ih(3), "junk", 11'200));
  EXPECT_FALSE(u.restore_snapshot(ih(3), saved[ih(1)].substr(0, 20), 11'200));

  // A swarm that empties is deleted from the store (an empty snapshot).
  t.announce(req(ih(2), 3, v4(3, 3), 5, Event::kStopped), 10'700, r);
  t.take_dirty(10'701, [&](const InfoHash& h, std::string blob) { again[h] = std::move(blob); });
  ASSERT_EQ(again.count(ih(2)), 1u);
  EXPECT_TRUE(again[ih(2)].empty());
}

// Version 2 snapshots keyed peers by their id alone: a peer saved with its id is keyed anew
// (its next announce finds it), one saved without is dropped rather than listed twice.
TEST(Swarm, VersionTwoSnapshotsAreKeyedAnew) {
  std::string blob(1, '\x02');
  auto be = [&](uint64_t v, int n) {
    for (int i = n - 1; i >= 0; --i)
      blob += static_cast<char>((v >> (8 * i)) & 0xFF);
  };
  be(3, 8);  // downloaded
  be(2, 4);  // IPv4 peers
  be(0, 4);  // IPv6 peers
  for (int n : {1, 2}) {
    be(0x0102030400ull + static_cast<uint64_t>(n), 5);  // the old key: not what key_of gives
    blob.append(reinterpret_cast<const char*>(v4(static_cast<uint8_t>(n), 0).ip.data()), 4);
    be(static_cast<uint64_t>(1000 + n), 2);
    blob += static_cast<char>(n == 1 ? 8 : 0);  // peer 1 saved with its id
    be(10'000, 4);
    blob.append(12, '\0');
    if (n == 1) blob.append(reinterpret_cast<const char*>(pid(1).bytes.data()), 20);
  }
  SwarmTable t(open_mode());
  ASSERT_TRUE(t.restore_snapshot(ih(1), blob, 10'100));
  EXPECT_EQ(t.peer_count(), 1u);
  AnnounceReply r;
  t.announce(req(ih(1), 1, v4(1, 1001), 5), 10'200, r);
  EXPECT_EQ(t.peer_count(), 1u);  // found, not listed twice
  EXPECT_EQ(r.counts.downloaded, 3u);
  // The row is written again in the current version.
  std::string again;
  t.take_dirty(10'300, [&](const InfoHash&, std::string b) { again = std::move(b); });
  ASSERT_FALSE(again.empty());
  EXPECT_EQ(again[0], '\x03');
}

TEST(Swarm, PeerIdsAreKeptOnlyWhenAskedAndClientsAlways) {
  PeerId qb = PeerId::from("-qB4650-abcdefghijkl");
  PeerId aria = PeerId::from("A2-1-36-0-abcdefghij");
  for (bool keep : {false, true}) {
    SwarmOptions o = open_mode();
    o.keep_peer_ids = keep;
    SwarmTable t(o);
    t.set_track_dirty(true);
    AnnounceReply r;
    AnnounceRequest a = req(ih(1), 1, v4(1, 1), 5);
    a.peer_id = qb;
    t.announce(a, 1000, r);
    a.peer_id = aria;
    a.endpoint = v4(2, 2);
    t.announce(a, 1000, r);
    ASSERT_EQ(r.peers4.size(), 1u);
    EXPECT_EQ(r.peers4[0].id() != nullptr, keep);
    if (keep) {
      EXPECT_EQ(std::memcmp(r.peers4[0].id(), qb.bytes.data(), 20), 0);
    }
    auto check = [&](const SwarmTable& table) {
      std::set<std::string> clients;
      for (const auto& p : table.peers_of(ih(1), 1000)) {
        clients.insert(p.client);
        EXPECT_EQ(p.id.has_value(), keep);
        if (keep) {
          EXPECT_TRUE(*p.id == qb || *p.id == aria);
        }
      }
      EXPECT_EQ(clients, (std::set<std::string>{"qBittorrent 4.6.5.0", "aria2 1.36.0"}));
    };
    check(t);
    // Snapshots carry the clients, and the ids when kept.
    SwarmTable u(o);
    t.take_dirty(1000, [&](const InfoHash& h, std::string blob) {
      ASSERT_TRUE(u.restore_snapshot(h, blob, 1000));
    });
    check(u);
  }
}

TEST(Swarm, ARecordIsFourteenBytesPerIpv4Peer) {
  SwarmTable t(open_mode());
  AnnounceReply r;
  for (int i = 0; i < 10'000; ++i) {
    Endpoint e = v4(static_cast<uint8_t>(i), static_cast<uint16_t>(i));
    e.ip[2] = static_cast<uint8_t>(i >> 8);  // a peer per address
    t.announce(req(ih(1), i, e, 5), 1000, r);
  }
  EXPECT_EQ(t.peer_count(), 10'000u);
  EXPECT_LE(t.peer_bytes(), 10'000u * 14 * 9 / 8);  // growth by an eighth at most
}

TEST(Swarm, TheLocalSeedIsCountedAndListedFirst) {
  SwarmTable t(SwarmOptions{});  // whitelist mode, nothing listed
  t.set_local_seed(v4(200, 6881), v6(200, 6881));
  AnnounceReply r;
  EXPECT_EQ(t.announce(req(ih(1), 1, v4(1, 1), 5), 1000, r), Refusal::kNotAllowed);
  t.add_seeded(ih(1));  // published: tracked in any mode, no announce needed
  SwarmCounts c;
  ASSERT_TRUE(t.scrape(ih(1), c));
  EXPECT_EQ(c.complete, 1u);
  ASSERT_EQ(t.announce(req(ih(1), 1, v4(1, 1), 5), 1000, r), Refusal::kNone);
  EXPECT_EQ(r.counts.complete, 1u);
  EXPECT_EQ(r.counts.incomplete, 1u);
  ASSERT_EQ(r.peers4.size(), 1u);
  EXPECT_EQ(r.peers4[0].ip()[3], 200);
  EXPECT_TRUE(r.peers6.empty());  // an IPv4-only asker gets no IPv6 list
  EXPECT_EQ(r.peers4[0].id(), nullptr);
  // An asker with nothing left gets leechers, and the local seed first too: a magnet client
  // may say left=0 before it has the metadata, which the local seed is sure to have.
  t.announce(req(ih(1), 2, v4(2, 2), 0), 1000, r);
  ASSERT_EQ(r.peers4.size(), 2u);
  EXPECT_EQ(r.peers4[0].ip()[3], 200);
  EXPECT_EQ(r.peers4[1].ip()[3], 1);
  EXPECT_EQ(r.counts.complete, 2u);
  t.remove_seeded(ih(1));
  EXPECT_EQ(t.announce(req(ih(3), 1, v4(1, 1), 5), 1000, r), Refusal::kNotAllowed);
}

}  // namespace
}  // namespace evert::tracker
