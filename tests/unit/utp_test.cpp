// The uTP socket (BEP 29): the handshake both ways, in-order delivery through a lossy,
// reordering, duplicating, rate-limited simulated network (utp_sim.h), sequence numbers
// wrapping, FIN, RESET, timeouts, the congestion window, and the bounds of its buffers.
#include "evert/utp.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "utp_sim.h"

namespace evert::utp {
namespace {

using sim::LinkConfig;
using sim::Net;
using State = Socket::State;

constexpr uint64_t kSecond = 1'000'000;
constexpr uint64_t kMiB = 1 << 20;

Packet parsed(const std::string& d) {
  auto p = parse_packet(d);
  EXPECT_TRUE(p.ok()) << p.error().describe();
  return p.ok() ? *p : Packet{};
}

// The next datagram of `s`, or "" when it has nothing to send.
std::string next(Socket& s, uint64_t now) {
  std::string buf(kMaxDatagram, '\0');
  buf.resize(s.next_packet(now, buf.data(), buf.size()));
  return buf;
}

std::vector<std::string> drain(Socket& s, uint64_t now) {
  std::vector<std::string> out;
  for (std::string d = next(s, now); !d.empty(); d = next(s, now))
    out.push_back(d);
  return out;
}

Header syn_header(uint16_t conn_id, uint16_t seq) {
  Header h;
  h.type = Type::kSyn;
  h.connection_id = conn_id;
  h.seq_nr = seq;
  h.timestamp_us = 5;
  return h;
}

// A packet from the initiator of connection `conn_id` (its send id is conn_id + 1).
std::string from_peer(Type t, uint16_t conn_id, uint16_t seq, uint16_t ack, std::string_view data,
                      uint32_t wnd = 1 << 20, std::string_view sack = {}) {
  Header h;
  h.type = t;
  h.connection_id = static_cast<uint16_t>(conn_id + 1);
  h.seq_nr = seq;
  h.ack_nr = ack;
  h.wnd_size = wnd;
  h.timestamp_us = 77;
  std::string out;
  put_packet(out, h, sack, data);
  return out;
}

// A responder connected by hand: SYN (seq 100) from connection 500, our seq 7000.
struct Accepted {
  explicit Accepted(Options o = {}) : s(Socket::accept(syn_header(500, 100), 0, o, 7000)) {
    EXPECT_EQ(drain(s, 0).size(), 1u);  // the SYN-ACK
    s.on_packet(parsed(from_peer(Type::kState, 500, 101, 6999, {})), 1000);
    EXPECT_EQ(s.state(), State::kConnected);
  }
  Socket s;
};

// ---- handshake ------------------------------------------------------------------------------

TEST(Utp, ResponderAnswersASynWithOneTwentyByteState) {
  Socket s = Socket::accept(syn_header(500, 100), 1000, {}, 7000);
  EXPECT_EQ(s.state(), State::kSynReceived);
  EXPECT_EQ(s.recv_id(), 501);
  EXPECT_EQ(s.send_id(), 500);
  EXPECT_EQ(s.writable(), 0u);  // no data before the initiator speaks again
  EXPECT_EQ(s.write("early"), 0u);
  std::vector<std::string> out = drain(s, 1010);
  ASSERT_EQ(out.size(), 1u);
  ASSERT_EQ(out[0].size(), kHeaderSize);
  const Header h = parsed(out[0]).header;
  EXPECT_EQ(h.type, Type::kState);
  EXPECT_EQ(h.connection_id, 500);
  EXPECT_EQ(h.ack_nr, 100);                    // libtorrent requires the SYN's seq_nr here
  EXPECT_EQ(h.seq_nr, 7000);                   // and takes 6999 as the last one we sent
  EXPECT_EQ(h.timestamp_diff_us, 1000u - 5u);  // our delay sample of the SYN, echoed

  // A SYN again (our STATE lost): answered again, once.
  s.on_packet(parsed([] {
                std::string d;
                put_packet(d, syn_header(500, 100));
                return d;
              }()),
              1020);
  EXPECT_EQ(drain(s, 1020).size(), 1u);
  EXPECT_TRUE(drain(s, 1020).empty());
  // Packets that do not ack our STATE are ignored.
  s.on_packet(parsed(from_peer(Type::kData, 500, 101, 1234, "x")), 1030);
  EXPECT_EQ(s.state(), State::kSynReceived);
  // The initiator's first DATA (acking our STATE) connects us; our first DATA is seq 7000.
  s.on_packet(parsed(from_peer(Type::kData, 500, 101, 6999, "hello")), 1040);
  EXPECT_EQ(s.state(), State::kConnected);
  EXPECT_EQ(s.readable(), "hello");
  EXPECT_EQ(s.write("world"), 5u);
  out = drain(s, 1050);
  ASSERT_EQ(out.size(), 1u);
  const Packet p = parsed(out[0]);
  EXPECT_EQ(p.header.type, Type::kData);
  EXPECT_EQ(p.header.seq_nr, 7000);
  EXPECT_EQ(p.header.ack_nr, 101);
  EXPECT_EQ(p.payload, "world");
}

TEST(Utp, InitiatorSendsSynAndConnectsOnTheState) {
  Socket s = Socket::connect(900, 0, {}, 65535);
  EXPECT_EQ(s.state(), State::kSynSent);
  EXPECT_EQ(s.send_id(), 901);
  std::vector<std::string> out = drain(s, 0);
  ASSERT_EQ(out.size(), 1u);
  Header syn = parsed(out[0]).header;
  EXPECT_EQ(syn.type, Type::kSyn);
  EXPECT_EQ(syn.connection_id, 900);  // the id it wants answers on
  EXPECT_EQ(syn.seq_nr, 65535);
  EXPECT_EQ(s.write("x"), 0u);

  // The responder's STATE: ack_nr is the SYN's, seq_nr the one of its first DATA.
  Header st;
  st.type = Type::kState;
  st.connection_id = 900;
  st.seq_nr = 3000;
  st.ack_nr = 65535;
  st.wnd_size = 1 << 20;
  std::string d;
  put_packet(d, st);
  s.on_packet(parsed(d), 50'000);
  EXPECT_EQ(s.state(), State::kConnected);
  EXPECT_EQ(s.stats().rtt_us, 50'000u);
  ASSERT_EQ(s.write("abc"), 3u);
  out = drain(s, 50'000);
  ASSERT_EQ(out.size(), 1u);
  const Header h = parsed(out[0]).header;
  EXPECT_EQ(h.type, Type::kData);
  EXPECT_EQ(h.connection_id, 901);
  EXPECT_EQ(h.seq_nr, 0);  // wrapped past 65535
  EXPECT_EQ(h.ack_nr, 2999);
  // The responder's first DATA carries 3000: in order.
  st.type = Type::kData;
  st.ack_nr = 0;
  d.clear();
  put_packet(d, st, {}, "first");
  s.on_packet(parsed(d), 60'000);
  EXPECT_EQ(s.readable(), "first");
}

TEST(Utp, ConnectFailsWhenNoOneAnswers) {
  Options o;
  Socket s = Socket::connect(1, 0, o, 1);
  std::vector<uint64_t> syn_times;
  uint64_t now = 0;
  while (s.state() == State::kSynSent) {
    if (!drain(s, now).empty()) syn_times.push_back(now);
    now = s.deadline();
    ASSERT_NE(now, UINT64_MAX);
    s.on_tick(now);
  }
  EXPECT_EQ(s.state(), State::kFailed);
  EXPECT_NE(s.failure().find("connect timed out"), std::string::npos);
  EXPECT_EQ(now, o.connect_timeout_us);
  // Resent at the initial timeout, then backed off: 0, 1, 3, 7 s.
  EXPECT_EQ(syn_times, (std::vector<uint64_t>{0, kSecond, 3 * kSecond, 7 * kSecond}));
  EXPECT_EQ(s.deadline(), UINT64_MAX);
}

TEST(Utp, HalfOpenResponderTimesOut) {
  Socket s = Socket::accept(syn_header(1, 1), 0, {}, 1);
  EXPECT_EQ(drain(s, 0).size(), 1u);
  const uint64_t d = s.deadline();
  EXPECT_EQ(d, Options{}.connect_timeout_us);
  s.on_tick(d - 1);
  EXPECT_EQ(s.state(), State::kSynReceived);
  s.on_tick(d);
  EXPECT_EQ(s.state(), State::kFailed);
  EXPECT_NE(s.failure().find("handshake timed out"), std::string::npos);
  EXPECT_TRUE(drain(s, d).empty());
}

// ---- transfers through the simulated network ----------------------------------------------

void expect_clean(const Net& n) {
  EXPECT_FALSE(n.a_app.mismatch);
  EXPECT_FALSE(n.b_app.mismatch);
  // The responder said nothing but 20-byte STATEs (one per SYN) before the initiator's next
  // packet reached it: no amplification toward an unconfirmed address.
  EXPECT_EQ(n.b_bytes_before_confirmed, n.b_datagrams_before_confirmed * kHeaderSize);
  EXPECT_LE(n.b_datagrams_before_confirmed, n.syns_to_b);
}

TEST(Utp, SeveralMiBBothWaysThroughAHostileNetworkArriveByteExact) {
  LinkConfig l;
  l.delay_us = 20'000;
  l.loss = 0.03;
  l.duplicate = 0.02;
  l.jitter_us = 8'000;  // reorders packets a few ms apart
  l.rate_bytes_s = 4 * kMiB;
  Net n({}, {}, l, l, 7);
  n.a_app.to_send = 3 * kMiB;
  n.b_app.to_send = 3 * kMiB + 12345;
  ASSERT_TRUE(n.transfer(120 * kSecond)) << n.a_app.received << " " << n.b_app.received;
  expect_clean(n);
  EXPECT_EQ(n.b_app.received, n.a_app.to_send);
  EXPECT_EQ(n.a_app.received, n.b_app.to_send);
  EXPECT_GT(n.a->stats().retransmits, 0u);
  EXPECT_EQ(n.a->stats().bytes_acked, n.a_app.to_send);
}

TEST(Utp, SequenceNumbersWrapAroundOnBothSides) {
  LinkConfig l;
  l.delay_us = 5'000;
  l.loss = 0.02;
  l.jitter_us = 3'000;
  Net n({}, {}, l, l, 3, /*seq_a=*/65500, /*seq_b=*/65530);
  n.a_app.to_send = kMiB;  // ~760 packets: across 65535 -> 0
  n.b_app.to_send = kMiB;
  ASSERT_TRUE(n.transfer(60 * kSecond));
  expect_clean(n);
}

TEST(Utp, FullSizeDatagramsWhenTheApplicationHasTheBytes) {
  Net n({}, {}, {}, {});
  n.a_app.to_send = 2 * kMiB;
  ASSERT_TRUE(n.transfer(60 * kSecond));
  size_t full = 0;
  size_t data = 0;
  for (size_t size : n.a_app.datagram_sizes) {
    if (size > kHeaderSize) ++data;
    if (size == Options{}.packet_size) ++full;
  }
  // All data packets are full but the last (2 MiB is not a multiple of 1380).
  EXPECT_EQ(full, data - 1);
  EXPECT_EQ(data, (2 * kMiB + 1379) / 1380);
}

}  // namespace
}  // namespace evert::utp
