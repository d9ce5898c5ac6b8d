// The uTP socket (BEP 29), packet by packet: the handshake both ways, acks and selective acks,
// duplicates, forged packets, timestamps, Nagle, fast retransmit and the window cut, timeouts,
// keep-alives, FIN and RESET, and the bounds of its buffers. Whole transfers through a
// simulated network are in utp_transfer_test.cpp.
#include "evert/utp.h"

#include <gtest/gtest.h>

#include <initializer_list>
#include <random>
#include <string>
#include <vector>

namespace evert::utp {
namespace {

using State = Socket::State;

constexpr uint64_t kSecond = 1'000'000;

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

TEST(Utp, ResponderSendsItsStateAgainTwiceWhileTheInitiatorIsSilent) {
  // libtorrent sends its SYN again only after 3 s and has given up on uTP by then: a lost
  // STATE is resent 0.5 s and 1.5 s after the SYN, like a TCP listener's SYN-ACK.
  const uint64_t t0 = 1'000'000;
  Socket s = Socket::accept(syn_header(500, 100), t0, {}, 7000);
  EXPECT_EQ(drain(s, t0).size(), 1u);
  EXPECT_EQ(s.deadline(), t0 + 500'000);
  s.on_tick(t0 + 499'999);
  EXPECT_TRUE(drain(s, t0 + 499'999).empty());
  s.on_tick(t0 + 500'000);
  std::vector<std::string> out = drain(s, t0 + 500'000);
  ASSERT_EQ(out.size(), 1u);
  ASSERT_EQ(out[0].size(), kHeaderSize);
  EXPECT_EQ(parsed(out[0]).header.type, Type::kState);
  EXPECT_EQ(parsed(out[0]).header.ack_nr, 100);
  EXPECT_EQ(parsed(out[0]).header.seq_nr, 7000);
  EXPECT_EQ(s.deadline(), t0 + 1'500'000);
  s.on_tick(t0 + 1'500'000);
  EXPECT_EQ(drain(s, t0 + 1'500'000).size(), 1u);
  // Twice only: then nothing until the handshake times out.
  EXPECT_EQ(s.deadline(), t0 + Options{}.connect_timeout_us);
  s.on_tick(t0 + 5'000'000);
  EXPECT_TRUE(drain(s, t0 + 5'000'000).empty());
  EXPECT_EQ(s.state(), State::kSynReceived);
  s.on_tick(t0 + Options{}.connect_timeout_us);
  EXPECT_EQ(s.state(), State::kFailed);

  // A tick late past both resends sends one STATE, not two.
  Socket late = Socket::accept(syn_header(700, 300), t0, {}, 11000);
  EXPECT_EQ(drain(late, t0).size(), 1u);
  late.on_tick(t0 + 2'000'000);
  EXPECT_EQ(drain(late, t0 + 2'000'000).size(), 1u);
  EXPECT_EQ(late.deadline(), t0 + Options{}.connect_timeout_us);

  // An initiator that answers in time hears the STATE once.
  Socket quick = Socket::accept(syn_header(600, 200), t0, {}, 9000);
  EXPECT_EQ(drain(quick, t0).size(), 1u);
  quick.on_packet(parsed(from_peer(Type::kData, 600, 201, 8999, "hi")), t0 + 100'000);
  EXPECT_EQ(quick.state(), State::kConnected);
  quick.on_tick(t0 + 500'000);
  for (const std::string& d : drain(quick, t0 + 500'000)) {
    EXPECT_FALSE(parsed(d).header.type == Type::kState && parsed(d).header.ack_nr == 200);
  }
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
  for (uint64_t resend : {500'000u, 1'500'000u}) {  // the STATE again, twice
    EXPECT_EQ(s.deadline(), resend);
    s.on_tick(resend);
    EXPECT_EQ(drain(s, resend).size(), 1u);
  }
  const uint64_t d = s.deadline();
  EXPECT_EQ(d, Options{}.connect_timeout_us);
  s.on_tick(d - 1);
  EXPECT_EQ(s.state(), State::kSynReceived);
  s.on_tick(d);
  EXPECT_EQ(s.state(), State::kFailed);
  EXPECT_NE(s.failure().find("handshake timed out"), std::string::npos);
  EXPECT_TRUE(drain(s, d).empty());
}

TEST(Utp, RetransmittedSynGetsTheSameAnswerAndResetRefusesAConnect) {
  Socket s = Socket::connect(900, 0, {}, 10);
  ASSERT_EQ(drain(s, 0).size(), 1u);
  Header r;
  r.type = Type::kReset;
  r.connection_id = 900;
  r.ack_nr = 9;  // not our SYN's: ignored
  std::string d;
  put_packet(d, r);
  s.on_packet(parsed(d), 10);
  EXPECT_EQ(s.state(), State::kSynSent);
  r.ack_nr = 10;
  d.clear();
  put_packet(d, r);
  s.on_packet(parsed(d), 20);
  EXPECT_EQ(s.state(), State::kFailed);
  EXPECT_NE(s.failure().find("refused"), std::string::npos);
}

TEST(Utp, CloseBeforeTheHandshakeEndsResets) {
  Socket s = Socket::accept(syn_header(500, 100), 0, {}, 7000);
  s.close(5);
  EXPECT_EQ(s.state(), State::kClosed);
  std::vector<std::string> out = drain(s, 5);
  ASSERT_EQ(out.size(), 1u);  // the RESET replaces the SYN-ACK
  const Header h = parsed(out[0]).header;
  EXPECT_EQ(h.type, Type::kReset);
  EXPECT_EQ(h.connection_id, 500);
  EXPECT_EQ(h.ack_nr, 100);
  EXPECT_EQ(s.deadline(), UINT64_MAX);
}

// ---- receiving ------------------------------------------------------------------------------

TEST(Utp, OutOfOrderPacketsAreHeldAndSelectivelyAcked) {
  Accepted f;
  Socket& s = f.s;
  s.on_packet(parsed(from_peer(Type::kData, 500, 102, 6999, "B")), 2000);
  s.on_packet(parsed(from_peer(Type::kData, 500, 104, 6999, "D")), 2000);
  EXPECT_TRUE(s.readable().empty());
  std::vector<std::string> out = drain(s, 2000);
  ASSERT_EQ(out.size(), 1u);  // one ack for the burst
  Packet p = parsed(out[0]);
  EXPECT_EQ(p.header.type, Type::kState);
  EXPECT_EQ(p.header.ack_nr, 100);
  ASSERT_EQ(p.sack.size(), 4u);                   // BEP 29: a multiple of 4 bytes
  EXPECT_EQ(static_cast<uint8_t>(p.sack[0]), 5);  // bit 0: 102, bit 2: 104
  EXPECT_EQ(s.stats().recv_buffered, 2u);
  EXPECT_EQ(p.header.wnd_size, (1u << 20) - 2);

  s.on_packet(parsed(from_peer(Type::kData, 500, 101, 6999, "A")), 3000);
  EXPECT_EQ(s.readable(), "AB");
  out = drain(s, 3000);
  ASSERT_EQ(out.size(), 1u);
  p = parsed(out[0]);
  EXPECT_EQ(p.header.ack_nr, 102);
  ASSERT_EQ(p.sack.size(), 4u);
  EXPECT_EQ(static_cast<uint8_t>(p.sack[0]), 1);  // 104 = ack_nr + 2

  s.on_packet(parsed(from_peer(Type::kData, 500, 103, 6999, "C")), 4000);
  EXPECT_EQ(s.readable(), "ABCD");
  p = parsed(drain(s, 4000).at(0));
  EXPECT_EQ(p.header.ack_nr, 104);
  EXPECT_TRUE(p.sack.empty());
  EXPECT_EQ(s.stats().bytes_received, 4u);
}

TEST(Utp, DuplicatesAreAckedAgainAndDeliveredOnce) {
  Accepted f;
  Socket& s = f.s;
  for (int i = 0; i < 3; ++i) {
    s.on_packet(parsed(from_peer(Type::kData, 500, 101, 6999, "once")), 2000 + i);
    std::vector<std::string> out = drain(s, 2000 + i);
    ASSERT_EQ(out.size(), 1u);  // the peer may have lost our ack: it gets another
    EXPECT_EQ(parsed(out[0]).header.ack_nr, 101);
  }
  EXPECT_EQ(s.readable(), "once");
}

TEST(Utp, PacketsOfOtherConnectionsOrAckingTheFutureAreIgnored) {
  Accepted f;
  Socket& s = f.s;
  s.on_packet(parsed(from_peer(Type::kData, 600, 101, 6999, "other")), 2000);
  s.on_packet(parsed(from_peer(Type::kData, 500, 101, 7500, "forged")), 2000);
  s.on_packet(parsed(from_peer(Type::kReset, 500, 101, 7500, {})), 2000);
  EXPECT_TRUE(s.readable().empty());
  EXPECT_TRUE(drain(s, 2000).empty());
  EXPECT_EQ(s.state(), State::kConnected);
}

TEST(Utp, OurPacketsEchoTheDelayOfTheirs) {
  Accepted f;  // its last packet from the peer: timestamp 77 received at 1000
  ASSERT_EQ(f.s.write("x"), 1u);
  const Header h = parsed(drain(f.s, 5000).at(0)).header;
  EXPECT_EQ(h.timestamp_us, 5000u);
  EXPECT_EQ(h.timestamp_diff_us, 1000u - 77u);
}

TEST(Utp, FinOutOfOrderEndsTheStreamAfterWhatPrecedesIt) {
  Accepted f;
  Socket& s = f.s;
  s.on_packet(parsed(from_peer(Type::kFin, 500, 103, 6999, {})), 2000);
  EXPECT_FALSE(s.eof());
  EXPECT_EQ(parsed(drain(s, 2000).at(0)).header.ack_nr, 100);
  s.on_packet(parsed(from_peer(Type::kData, 500, 104, 6999, "after the FIN")), 2100);
  s.on_packet(parsed(from_peer(Type::kData, 500, 102, 6999, "B")), 2200);
  s.on_packet(parsed(from_peer(Type::kData, 500, 101, 6999, "A")), 2300);
  EXPECT_EQ(parsed(drain(s, 2300).at(0)).header.ack_nr, 103);  // the FIN acked
  EXPECT_EQ(s.readable(), "AB");
  EXPECT_FALSE(s.eof());  // not until everything is consumed
  s.consume(2);
  EXPECT_TRUE(s.eof());
}

TEST(Utp, BuffersStayBoundedUnderAFloodOfOutOfOrderPackets) {
  Options o;
  o.recv_buffer = 64 << 10;
  o.send_buffer = 256 << 10;
  Accepted f(o);
  Socket& s = f.s;
  std::mt19937 rng(5);
  uint64_t now = 2000;
  s.on_packet(parsed(from_peer(Type::kData, 500, 102, 6999, std::string(100, 'n'))), now);
  for (int i = 0; i < 20000; ++i) {
    const auto seq = static_cast<uint16_t>(102 + rng() % 3000);  // never 101, the next one
    const size_t size = rng() % 16 == 0 ? 60000 : 1 + rng() % 1400;
    s.on_packet(parsed(from_peer(Type::kData, 500, seq, 6999, std::string(size, 'o'))), ++now);
    ASSERT_LE(s.stats().recv_buffered, o.recv_buffer);
    if (i % 64 == 0) {
      for (const std::string& d : drain(s, now)) {
        const Packet p = parsed(d);
        EXPECT_LE(d.size(), kHeaderSize + 2 + 128);  // a STATE with at most a 128-byte sack
        EXPECT_LE(p.header.wnd_size, o.recv_buffer);
      }
    }
  }
  // The missing packet is taken even by a full buffer (the rest waits on it), once.
  s.on_packet(parsed(from_peer(Type::kData, 500, 101, 6999, std::string(1400, 'i'))), ++now);
  EXPECT_LE(s.stats().recv_buffered, o.recv_buffer + kMaxDatagram);
  EXPECT_GE(s.stats().bytes_received, 1500u);  // 101 and 102 at least
  // The send side: write() takes what the buffer holds, no more.
  EXPECT_EQ(s.write(std::string(10 << 20, 'w')), o.send_buffer);
  EXPECT_EQ(s.writable(), 0u);
  EXPECT_EQ(s.stats().send_buffered, o.send_buffer);
}

// ---- sending --------------------------------------------------------------------------------

TEST(Utp, NagleHoldsAPartialPacketOnlyWhileAnotherIsInFlight) {
  Accepted f;
  Socket& s = f.s;
  ASSERT_EQ(s.write("a"), 1u);
  std::vector<std::string> out = drain(s, 2000);  // nothing in flight: sent now
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(parsed(out[0]).payload, "a");
  ASSERT_EQ(s.write("b"), 1u);
  EXPECT_TRUE(drain(s, 2100).empty());  // "a" is a partial packet in flight
  ASSERT_EQ(s.write(std::string(2000, 'x')), 2000u);
  out = drain(s, 2200);
  ASSERT_EQ(out.size(), 1u);  // one full packet; the 621 bytes left wait
  Packet p = parsed(out[0]);
  EXPECT_EQ(p.header.seq_nr, 7001);
  EXPECT_EQ(p.payload.size(), 1380u);
  EXPECT_EQ(p.payload.substr(0, 2), "bx");
  s.on_packet(parsed(from_peer(Type::kState, 500, 101, 7000, {})), 3000);
  out = drain(s, 3000);
  ASSERT_EQ(out.size(), 1u);
  p = parsed(out[0]);
  EXPECT_EQ(p.header.seq_nr, 7002);
  EXPECT_EQ(p.payload.size(), 621u);
}

// The bitmask acking ack_nr + 2 + i for every i in `bits`.
std::string sack_of(std::initializer_list<int> bits) {
  std::string mask(4, '\0');
  for (int i : bits)
    mask[static_cast<size_t>(i / 8)] |= static_cast<char>(1 << (i % 8));
  return mask;
}

TEST(Utp, SelectiveAcksTriggerFastRetransmitAndOneWindowCut) {
  Options o;
  o.initial_window = 64 * 1380;
  Accepted f(o);
  Socket& s = f.s;
  ASSERT_EQ(s.write(std::string(30 * 1380, 'z')), 30u * 1380);
  ASSERT_EQ(drain(s, 2000).size(), 30u);  // 7000 .. 7029
  const uint32_t cwnd = s.stats().cwnd;
  // Everything arrived but 7001 and 7003: ack_nr 7000, sack 7002 and 7004 .. 7029.
  std::initializer_list<int> bits = {0,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14,
                                     15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27};
  s.on_packet(parsed(from_peer(Type::kState, 500, 101, 7000, {}, 1 << 20, sack_of(bits))), 100'000);
  std::vector<std::string> out = drain(s, 100'000);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(parsed(out[0]).header.seq_nr, 7001);
  EXPECT_EQ(parsed(out[1]).header.seq_nr, 7003);
  // Two losses in one window with no queuing delay behind them: random loss, sent again
  // without a cut (utp_congestion.h; more than 3 in a window would halve it once).
  EXPECT_EQ(s.stats().cwnd, cwnd);
  EXPECT_EQ(s.stats().retransmits, 2u);
  EXPECT_EQ(s.stats().timeouts, 0u);
  EXPECT_EQ(s.stats().in_flight, 2u * 1380);
  s.on_packet(parsed(from_peer(Type::kState, 500, 101, 7029, {})), 200'000);
  EXPECT_EQ(s.stats().in_flight, 0u);
  EXPECT_EQ(s.stats().bytes_acked, 30u * 1380);
  EXPECT_EQ(s.stats().send_buffered, 0u);
}

TEST(Utp, TimeoutResendsTheOldestWithAWindowOfOnePacketAndBacksOff) {
  Accepted f;
  Socket& s = f.s;
  ASSERT_EQ(s.write(std::string(3 * 1380, 'q')), 3u * 1380);
  ASSERT_EQ(drain(s, 2000).size(), 3u);  // the initial window
  // No RTT sample yet (the responder has none from the handshake): BEP 29's initial 1 s.
  uint64_t d = s.deadline();
  EXPECT_EQ(d, 2000 + 1'000'000u);
  s.on_tick(d);
  std::vector<std::string> out = drain(s, d);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(parsed(out[0]).header.seq_nr, 7000);
  EXPECT_EQ(s.stats().cwnd, 1380u);
  EXPECT_EQ(s.stats().timeouts, 1u);
  EXPECT_EQ(s.deadline(), d + 2'000'000);  // backed off
  // Nothing ever answers: the connection dies after max_timeouts more.
  while (s.state() == State::kConnected) {
    d = s.deadline();
    s.on_tick(d);
    drain(s, d);
  }
  EXPECT_EQ(s.state(), State::kFailed);
  EXPECT_NE(s.failure().find("timed out"), std::string::npos);
  EXPECT_EQ(s.stats().timeouts, Options{}.max_timeouts + 1);
  EXPECT_EQ(d, 2000 + 31'000'000u);  // 1 + 2 + 4 + 8 + 16 s
}

TEST(Utp, AnIdleConnectionSendsKeepAlives) {
  Accepted f;
  Socket& s = f.s;
  EXPECT_TRUE(drain(s, 2000).empty());  // the peer's STATE needs no ack
  const uint64_t d = s.deadline();
  EXPECT_EQ(d, Options{}.keepalive_us);  // since our SYN-ACK at 0
  s.on_tick(d);
  std::vector<std::string> out = drain(s, d);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].size(), kHeaderSize);
  EXPECT_EQ(parsed(out[0]).header.type, Type::kState);
  EXPECT_EQ(s.deadline(), 2 * d);
}

// ---- closing --------------------------------------------------------------------------------

TEST(Utp, CloseSendsAFinAfterTheDataAndEndsWhenBothFinsAreAcked) {
  Accepted f;
  Socket& s = f.s;
  ASSERT_EQ(s.write("bye"), 3u);
  s.close(2000);
  EXPECT_EQ(s.state(), State::kClosing);
  EXPECT_EQ(s.writable(), 0u);
  std::vector<std::string> out = drain(s, 2000);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(parsed(out[0]).payload, "bye");
  const Header fin = parsed(out[1]).header;
  EXPECT_EQ(fin.type, Type::kFin);
  EXPECT_EQ(fin.seq_nr, 7001);
  // libtorrent answers a FIN with its own, which acks ours (src/utp_stream.cpp line 2716).
  s.on_packet(parsed(from_peer(Type::kFin, 500, 101, 7001, {})), 3000);
  EXPECT_EQ(s.state(), State::kClosed);
  EXPECT_TRUE(s.eof());
  out = drain(s, 3000);
  ASSERT_EQ(out.size(), 1u);  // our ack of its FIN
  const Header ack = parsed(out[0]).header;
  EXPECT_EQ(ack.type, Type::kState);
  EXPECT_EQ(ack.ack_nr, 101);
  EXPECT_EQ(ack.seq_nr, 7001);  // the FIN's: libtorrent drops a STATE past it
  EXPECT_EQ(s.deadline(), UINT64_MAX);
}

TEST(Utp, AClosedSideWaitsBrieflyForThePeersFin) {
  Accepted f;
  Socket& s = f.s;
  s.close(2000);
  ASSERT_EQ(drain(s, 2000).size(), 1u);  // the FIN
  s.on_packet(parsed(from_peer(Type::kState, 500, 101, 7000, {})), 3000);
  EXPECT_EQ(s.state(), State::kClosing);
  const uint64_t d = s.deadline();
  EXPECT_LE(d, 3000 + 2 * 1'000'000u);
  s.on_tick(d);
  EXPECT_EQ(s.state(), State::kClosed);
}

TEST(Utp, ClosingAfterThePeersFinEndsEvenIfThePeerIsGone) {
  Accepted f;
  Socket& s = f.s;
  s.on_packet(parsed(from_peer(Type::kFin, 500, 101, 6999, {})), 2000);
  EXPECT_TRUE(s.eof());
  s.close(3000);
  std::vector<std::string> out = drain(s, 3000);
  ASSERT_EQ(out.size(), 1u);  // our FIN, acking theirs
  EXPECT_EQ(parsed(out[0]).header.type, Type::kFin);
  EXPECT_EQ(parsed(out[0]).header.ack_nr, 101);
  // libtorrent forgets a connection once its FIN is acked and answers nothing: after a few
  // tries our close is complete, not failed.
  while (s.state() == State::kClosing) {
    const uint64_t d = s.deadline();
    s.on_tick(d);
    drain(s, d);
  }
  EXPECT_EQ(s.state(), State::kClosed);
  EXPECT_LE(s.stats().timeouts, 3u);
}

TEST(Utp, ResetByThePeerFailsAndAbortResets) {
  Accepted f;
  f.s.on_packet(parsed(from_peer(Type::kReset, 500, 101, 6999, {})), 2000);
  EXPECT_EQ(f.s.state(), State::kFailed);
  EXPECT_EQ(f.s.failure(), "reset by peer");
  EXPECT_TRUE(drain(f.s, 2000).empty());

  Accepted g;
  ASSERT_EQ(g.s.write("unsent"), 6u);
  g.s.abort(2000);
  EXPECT_EQ(g.s.state(), State::kClosed);
  std::vector<std::string> out = drain(g.s, 2000);
  ASSERT_EQ(out.size(), 1u);
  const Header h = parsed(out[0]).header;
  EXPECT_EQ(h.type, Type::kReset);
  EXPECT_EQ(h.connection_id, 500);
  EXPECT_EQ(h.ack_nr, 100);
  EXPECT_EQ(g.s.stats().send_buffered, 0u);
}
}  // namespace
}  // namespace evert::utp
