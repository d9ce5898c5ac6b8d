// The everseed's per-connection session (peer_session.h): bytes in, actions out. Requests are
// queued, dropped or rejected as BEP 3 and BEP 6 say; an interest change stops the step; the
// metadata is served in 16 KiB pieces (BEP 9); malformed input closes with a reason.
#include "peer_session.h"

#include <gtest/gtest.h>

#include <string>

namespace evert::everseed {
namespace {

// 10 pieces of 64 KiB, the last one 100 bytes short; a 40,000-byte info dictionary.
Metainfo meta() {
  Metainfo m;
  m.piece_length = 65536;
  m.stream_size = 10 * 65536 - 100;
  m.pieces = std::string(10 * 20, 'x');
  m.info_hash_v1 = Sha1Digest{};
  m.info_bytes = "d" + std::string(39'998, 'i') + "e";
  return m;
}

std::string request(uint32_t index, uint32_t begin, uint32_t length,
                    wire::MsgId id = wire::MsgId::kRequest) {
  std::string out;
  wire::put_block_message(out, id, index, begin, length);
  return out;
}

std::string simple(wire::MsgId id) {
  std::string out;
  wire::put_simple(out, id);
  return out;
}

std::string extended(uint8_t id, const std::string& payload) {
  std::string out;
  wire::put_extended(out, id, payload);
  return out;
}

TEST(PeerSession, RequestsAreQueuedWhenUnchoked) {
  const Metainfo m = meta();
  PeerSession s(m, /*fast=*/true, {});
  const std::string in = request(0, 0, 16384) + request(9, 65536 - 100 - 16384, 16384);
  SessionStep st = s.read(in, /*unchoked=*/true);
  EXPECT_EQ(st.consumed, in.size());
  EXPECT_TRUE(st.queued);
  EXPECT_FALSE(st.close);
  ASSERT_EQ(s.queue().size(), 2u);
  EXPECT_EQ(s.queue()[1], (Block{9, 65536 - 100 - 16384, 16384}));
  // A cancel takes a queued request back, and a fast peer hears of it (BEP 6).
  st = s.read(request(0, 0, 16384, wire::MsgId::kCancel), true);
  EXPECT_EQ(s.queue().size(), 1u);
  EXPECT_EQ(st.send, request(0, 0, 16384, wire::MsgId::kReject));
}

TEST(PeerSession, ChokedOrOutOfRangeRequestsAreRejectedOrDropped) {
  const Metainfo m = meta();
  PeerSession fast(m, true, {});
  SessionStep st = fast.read(request(1, 0, 16384), /*unchoked=*/false);
  EXPECT_EQ(st.send, request(1, 0, 16384, wire::MsgId::kReject));
  EXPECT_TRUE(fast.queue().empty());
  // Past the short last piece, past the last piece, over max_block: rejected (fast).
  for (const std::string& r : {request(9, 65536 - 16384, 16384), request(10, 0, 16384),
                               request(0, 0, 256 * 1024), request(0, 0, 0)}) {
    st = fast.read(r, true);
    EXPECT_EQ(st.send.size(), r.size());
    EXPECT_FALSE(st.close);
  }
  EXPECT_TRUE(fast.queue().empty());
  // Without the fast extension: choked requests are dropped, bad ones close the connection.
  PeerSession plain(m, false, {});
  st = plain.read(request(1, 0, 16384), false);
  EXPECT_TRUE(st.send.empty());
  EXPECT_FALSE(st.close);
  st = plain.read(request(10, 0, 16384), true);
  ASSERT_TRUE(st.close);
  EXPECT_NE(st.close->find("bad request"), std::string::npos);
}

TEST(PeerSession, TheQueueIsBounded) {
  const Metainfo m = meta();
  SessionLimits l;
  l.request_queue = 3;
  PeerSession s(m, true, l);
  std::string in;
  for (uint32_t i = 0; i < 5; ++i)
    in += request(i, 0, 16384);
  const SessionStep st = s.read(in, true);
  EXPECT_EQ(s.queue().size(), 3u);
  EXPECT_EQ(st.send, request(3, 0, 16384, wire::MsgId::kReject) +
                         request(4, 0, 16384, wire::MsgId::kReject));
}

TEST(PeerSession, AnInterestChangeStopsTheStep) {
  const Metainfo m = meta();
  PeerSession s(m, false, {});
  const std::string in = simple(wire::MsgId::kInterested) + request(0, 0, 16384);
  SessionStep st = s.read(in, false);
  ASSERT_TRUE(st.interested);
  EXPECT_TRUE(*st.interested);
  EXPECT_EQ(st.consumed, 5u);  // the request waits for the rechoke
  st = s.read(std::string_view(in).substr(st.consumed), /*unchoked now=*/true);
  EXPECT_TRUE(st.queued);
  // The same interest again changes nothing.
  st = s.read(simple(wire::MsgId::kInterested), true);
  EXPECT_FALSE(st.interested);
}

TEST(PeerSession, MetadataIsServedInPieces) {
  const Metainfo m = meta();
  PeerSession s(m, true, {});
  const std::string hs = "d1:md11:ut_metadatai3eee";
  SessionStep st = s.read(extended(0, hs), true);
  ASSERT_FALSE(st.close) << *st.close;
  ASSERT_EQ(s.ut_metadata(), std::optional<uint8_t>(3));
  const auto ask = [&](uint32_t piece) {
    return s.read(extended(wire::kUtMetadataId, wire::metadata_message_payload(
                                                    wire::MetadataMessage::Type::kRequest, piece)),
                  true);
  };
  st = ask(2);  // the last piece: 40,000 - 32,768 bytes
  EXPECT_EQ(st.metadata_pieces, 1u);
  EXPECT_EQ(st.send, extended(3, wire::metadata_message_payload(
                                     wire::MetadataMessage::Type::kData, 2, 40'000,
                                     std::string_view(m.info_bytes).substr(32768))));
  st = ask(3);  // past the end
  EXPECT_EQ(st.metadata_pieces, 0u);
  EXPECT_EQ(st.send,
            extended(3, wire::metadata_message_payload(wire::MetadataMessage::Type::kReject, 3)));
}

TEST(PeerSession, MalformedInputCloses) {
  const Metainfo m = meta();
  for (const std::string& in : {std::string("\xff\xff\xff\xff", 4),    // 4 GiB length
                                std::string("\0\0\0\x01\x63", 5),      // unknown id
                                std::string("\0\0\0\x02\x02\x00", 6),  // interested, too long
                                extended(0, "not bencode")}) {
    PeerSession s(m, true, {});
    const SessionStep st = s.read(in, true);
    EXPECT_TRUE(st.close) << testing::PrintToString(in);
  }
  // A piece sent to a seed.
  PeerSession s(m, true, {});
  EXPECT_TRUE(s.read(std::string("\0\0\0\x0d\x07", 5) + std::string(12, '\0'), true).close);
  // A message cut short waits for the rest.
  const std::string r = request(0, 0, 16384);
  const SessionStep st = s.read(std::string_view(r).substr(0, 10), true);
  EXPECT_EQ(st.consumed, 0u);
  EXPECT_FALSE(st.close);
}

// BEP 3: "Clients should drop the connection if they receive bitfields that are not of the
// correct size, or if the bitfield has any of the spare bits set." A have of a piece the
// torrent does not have is as broken.
TEST(PeerSession, WrongBitfieldsAndHavesClose) {
  const Metainfo m = meta();  // 10 pieces: 2 bytes, the last 6 bits spare
  auto bitfield = [](const std::string& bits) {
    std::string out = std::string("\0\0\0", 3) + static_cast<char>(bits.size() + 1) + '\x05';
    return out + bits;
  };
  auto have = [](uint32_t index) {
    std::string out("\0\0\0\x05\x04", 5);
    for (int shift = 24; shift >= 0; shift -= 8)
      out += static_cast<char>((index >> shift) & 0xFF);
    return out;
  };
  {
    PeerSession s(m, true, {});
    const SessionStep st = s.read(bitfield(std::string("\xff\xc0", 2)) + have(9), true);
    EXPECT_FALSE(st.close) << *st.close;
  }
  for (const std::string& in : {bitfield(std::string("\xff", 1)),        // too short
                                bitfield(std::string("\xff\xc0\0", 3)),  // too long
                                bitfield(std::string("\xff\xc1", 2)),    // a spare bit
                                have(10)}) {
    PeerSession s(m, true, {});
    EXPECT_TRUE(s.read(in, true).close) << testing::PrintToString(in);
  }
}

}  // namespace
}  // namespace evert::everseed
