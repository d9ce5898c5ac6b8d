// The uTP packet codec (BEP 29): round trips, every error, selective acks, extension chains,
// and the reset answering an unknown connection.
#include "evert/utp_packet.h"

#include <gtest/gtest.h>

#include <string>

namespace evert::utp {
namespace {

Header sample_header(Type t) {
  Header h;
  h.type = t;
  h.connection_id = 0xBEEF;
  h.timestamp_us = 0x01020304;
  h.timestamp_diff_us = 0xA0B0C0D0;
  h.wnd_size = 1 << 20;
  h.seq_nr = 65535;
  h.ack_nr = 7;
  return h;
}

void expect_same(const Header& a, const Header& b) {
  EXPECT_EQ(a.type, b.type);
  EXPECT_EQ(a.version, b.version);
  EXPECT_EQ(a.connection_id, b.connection_id);
  EXPECT_EQ(a.timestamp_us, b.timestamp_us);
  EXPECT_EQ(a.timestamp_diff_us, b.timestamp_diff_us);
  EXPECT_EQ(a.wnd_size, b.wnd_size);
  EXPECT_EQ(a.seq_nr, b.seq_nr);
  EXPECT_EQ(a.ack_nr, b.ack_nr);
}

TEST(UtpPacket, HeaderRoundTripsForEveryType) {
  for (Type t : {Type::kData, Type::kFin, Type::kState, Type::kReset, Type::kSyn}) {
    std::string out;
    put_packet(out, sample_header(t));
    ASSERT_EQ(out.size(), kHeaderSize);
    EXPECT_EQ(static_cast<uint8_t>(out[0]), static_cast<uint8_t>(t) << 4 | 1);
    EXPECT_EQ(out[1], 0);  // no extension
    auto p = parse_packet(out);
    ASSERT_TRUE(p.ok()) << p.error().describe();
    expect_same(p->header, sample_header(t));
    EXPECT_TRUE(p->sack.empty());
    EXPECT_TRUE(p->payload.empty());
  }
}

TEST(UtpPacket, FieldsAreBigEndianAtTheirOffsets) {
  std::string out;
  put_packet(out, sample_header(Type::kData), {}, "xyz");
  const std::string expected(
      "\x01\x00\xBE\xEF\x01\x02\x03\x04\xA0\xB0\xC0\xD0\x00\x10\x00\x00"
      "\xFF\xFF\x00\x07xyz",
      23);
  EXPECT_EQ(out, expected);
}

TEST(UtpPacket, SelectiveAckAndPayloadRoundTrip) {
  std::string out;
  const std::string sack("\x05\x00\x00\x80", 4);  // acks ack_nr + 2, + 4 and + 33
  put_packet(out, sample_header(Type::kState), sack, "payload");
  ASSERT_EQ(out.size(), kHeaderSize + 2 + 4 + 7);
  EXPECT_EQ(out[1], kExtensionSack);
  EXPECT_EQ(out[20], 0);  // the last extension
  EXPECT_EQ(out[21], 4);  // its length
  auto p = parse_packet(out);
  ASSERT_TRUE(p.ok()) << p.error().describe();
  EXPECT_EQ(p->sack, sack);
  EXPECT_EQ(p->payload, "payload");
  // BEP 29: bit 0 of byte 0 is ack_nr + 2, the most significant of the last byte ack_nr + 33.
  EXPECT_EQ(static_cast<uint8_t>(p->sack[0]) & 1, 1);
  EXPECT_EQ(static_cast<uint8_t>(p->sack[3]) >> 7, 1);
}

TEST(UtpPacket, SelectiveAckOfAnyLengthIsAcceptedAsLibtorrentWritesIt) {
  // libtorrent writes (bits + 7) / 8 bytes: 1, 2, 3... not only multiples of 4.
  for (size_t n : {1, 2, 3, 5, 255}) {
    std::string out;
    put_packet(out, sample_header(Type::kState), std::string(n, '\x01'));
    auto p = parse_packet(out);
    ASSERT_TRUE(p.ok()) << n;
    EXPECT_EQ(p->sack.size(), n);
  }
}

TEST(UtpPacket, UnknownExtensionsAreSkippedAlongTheChain) {
  std::string d;
  put_packet(d, sample_header(Type::kData));
  d[1] = 3;                                         // libtorrent's close reason first
  d += std::string("\x07\x04\x00\x00\x00\x05", 6);  // next: 7 (unknown), 4 bytes
  d += std::string("\x01\x02zz", 4);                // next: 1 (sack), 2 bytes
  d += std::string("\x00\x04\x0F\x00\x00\x00", 6);  // the sack, last
  d += "DATA";
  auto p = parse_packet(d);
  ASSERT_TRUE(p.ok()) << p.error().describe();
  EXPECT_EQ(p->sack, std::string("\x0F\x00\x00\x00", 4));
  EXPECT_EQ(p->payload, "DATA");
}

TEST(UtpPacket, EveryMalformedDatagramIsAnError) {
  std::string good;
  put_packet(good, sample_header(Type::kData), {}, "x");
  for (size_t n = 0; n < kHeaderSize; ++n) {
    EXPECT_FALSE(parse_packet(good.substr(0, n)).ok()) << n;
  }
  auto bad = [&](auto edit, const char* what) {
    std::string d = good;
    edit(d);
    auto p = parse_packet(d);
    ASSERT_FALSE(p.ok()) << what;
    EXPECT_NE(p.error().message.find(what), std::string::npos) << p.error().message;
  };
  bad([](std::string& d) { d[0] = 0x00; }, "version 0");
  bad([](std::string& d) { d[0] = 0x02; }, "version 2");
  bad([](std::string& d) { d[0] = 0x51; }, "type 5");
  bad([](std::string& d) { d[0] = static_cast<char>(0xF1); }, "type 15");
  bad(
      [](std::string& d) {
        d.resize(21);
        d[1] = 1;
      },
      "header past the end");
  bad(
      [](std::string& d) {
        d.resize(20);
        d[1] = 1;
        d += std::string("\x00\x08", 2) + "abc";
      },
      "past the end");
  bad(
      [](std::string& d) {
        d.resize(20);
        d[1] = 1;
        d += std::string("\x00\x00", 2);
      },
      "empty uTP selective ack");
  bad(
      [](std::string& d) {
        d.resize(20);
        d[1] = 1;
        d += std::string("\x01\x04\x01\x00\x00\x00\x00\x04\x01\x00\x00\x00", 12);
      },
      "two uTP selective acks");
}

TEST(UtpPacket, WriteRefusesABufferTooSmall) {
  char buf[30];
  EXPECT_EQ(write_packet(buf, 19, sample_header(Type::kState)), 0u);
  EXPECT_EQ(write_packet(buf, 20, sample_header(Type::kState)), 20u);
  EXPECT_EQ(write_packet(buf, 30, sample_header(Type::kData), {}, std::string(11, 'x')), 0u);
  EXPECT_EQ(write_packet(buf, 30, sample_header(Type::kData), {}, std::string(10, 'x')), 30u);
}

TEST(UtpPacket, ResetAnswersWithoutAmplifyingAndAsLibtorrentAcceptsIt) {
  Header cause = sample_header(Type::kData);
  std::string out;
  ASSERT_TRUE(put_reset(out, cause, 1234));
  ASSERT_EQ(out.size(), kHeaderSize);
  auto p = parse_packet(out);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->header.type, Type::kReset);
  EXPECT_EQ(p->header.connection_id, 0xBEEE);  // the initiator's recv_id
  EXPECT_EQ(p->header.timestamp_us, 1234u);
  EXPECT_EQ(p->header.ack_nr, cause.seq_nr);  // the DATA it answers
  // A STATE or FIN carries the next seq_nr, not sent yet: the reset names the one before.
  for (Type t : {Type::kState, Type::kFin}) {
    cause.type = t;
    cause.seq_nr = 0;
    out.clear();
    ASSERT_TRUE(put_reset(out, cause, 1));
    EXPECT_EQ(parse_packet(out)->header.ack_nr, 65535);
  }
  // Never a reset for a reset (two forgetful ends would ping-pong), nor for a SYN.
  out.clear();
  cause.type = Type::kReset;
  EXPECT_FALSE(put_reset(out, cause, 1));
  cause.type = Type::kSyn;
  EXPECT_FALSE(put_reset(out, cause, 1));
  EXPECT_TRUE(out.empty());
}

TEST(UtpPacket, ConnectionIdsAndSequenceNumbersWrap) {
  Header syn;
  syn.type = Type::kSyn;
  syn.connection_id = 65535;
  EXPECT_EQ(recv_id_of(syn), 0);  // the responder receives on id + 1
  syn.type = Type::kData;
  EXPECT_EQ(recv_id_of(syn), 65535);
  EXPECT_TRUE(seq_less(65535, 0));
  EXPECT_TRUE(seq_less(65000, 100));
  EXPECT_FALSE(seq_less(100, 65000));
  EXPECT_FALSE(seq_less(5, 5));
  EXPECT_TRUE(seq_less(5, 6));
}

}  // namespace
}  // namespace evert::utp
