// The peer wire codec: handshake, framing with its limits, every message a seed meets, BEP 10
// and BEP 9 payloads.
#include "evert/peer_wire.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

namespace evert::wire {
namespace {

std::string be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}

// BEP 52: every torrent kind, with the initiator's hash and upgrade bit.
TEST(PeerWire, HandshakeAnswersFollowBep52ForEveryKindHashAndBit) {
  const Hash20 v1 = [] {
    Hash20 h;
    h.fill(0x11);
    return h;
  }();
  const Hash20 v2 = [] {
    Hash20 h;
    h.fill(0x22);
    return h;
  }();
  const Hash20 other = [] {
    Hash20 h;
    h.fill(0x33);
    return h;
  }();
  auto theirs = [](const Hash20& ih, bool bit) {
    std::string out;
    put_handshake(out, std::string_view(reinterpret_cast<const char*>(ih.data()), 20),
                  std::string(20, 'P'), bit);
    return *parse_handshake(out);
  };
  struct Case {
    const char* what;
    std::optional<Hash20> v1, v2;  // the torrent: v1, v2-only or hybrid
    Hash20 sent;
    bool bit;
    std::optional<Hash20> answered;
    bool upgraded;
  };
  const std::vector<Case> cases = {
      {"v1, v1 hash", v1, std::nullopt, v1, false, v1, false},
      {"v1, v1 hash and the bit (no v2 to upgrade to)", v1, std::nullopt, v1, true, v1, false},
      {"v1, another hash", v1, std::nullopt, other, false, std::nullopt, false},
      {"v2-only, v2 hash", std::nullopt, v2, v2, false, v2, true},
      {"v2-only, v2 hash and the bit", std::nullopt, v2, v2, true, v2, true},
      {"v2-only, another hash", std::nullopt, v2, v1, true, std::nullopt, false},
      {"hybrid, v1 hash: stays v1", v1, v2, v1, false, v1, false},
      {"hybrid, v1 hash and the bit: upgraded", v1, v2, v1, true, v2, true},
      {"hybrid, v2 hash", v1, v2, v2, false, v2, true},
      {"hybrid, v2 hash and the bit", v1, v2, v2, true, v2, true},
      {"hybrid, another hash and the bit", v1, v2, other, true, std::nullopt, false},
  };
  for (const Case& c : cases) {
    const auto a = answer_handshake(theirs(c.sent, c.bit), c.v1, c.v2);
    ASSERT_EQ(a.has_value(), c.answered.has_value()) << c.what;
    if (!a) continue;
    EXPECT_EQ(a->info_hash, *c.answered) << c.what;
    EXPECT_EQ(a->upgraded, c.upgraded) << c.what;
  }
  // A responder's own handshake never carries the bit.
  std::string out;
  put_handshake(out, std::string(20, 'I'), std::string(20, 'P'));
  EXPECT_FALSE(parse_handshake(out)->v2());
}

TEST(PeerWire, HandshakeRoundTripsAndNamesItsBits) {
  std::string out;
  put_handshake(out, std::string(20, 'I'), std::string(20, 'P'), true);
  ASSERT_EQ(out.size(), kHandshakeSize);
  auto h = parse_handshake(out);
  ASSERT_TRUE(h.ok());
  EXPECT_TRUE(h->extension_protocol());
  EXPECT_TRUE(h->fast());
  EXPECT_TRUE(h->v2());
  EXPECT_EQ(h->info_hash[0], 'I');
  EXPECT_EQ(h->peer_id[19], 'P');
  out[5] = 'X';
  EXPECT_FALSE(parse_handshake(out).ok());
  EXPECT_FALSE(parse_handshake(std::string("GET / HTTP/1.1\r\n") + std::string(60, 'x')).ok());
}

TEST(PeerWire, FramingWaitsForWholeMessagesAndChecksSizes) {
  std::string req;
  put_block_message(req, MsgId::kRequest, 7, 16384, 16384);
  ASSERT_EQ(req.size(), 17u);
  for (size_t n = 0; n < req.size(); ++n)
    EXPECT_EQ(parse_message(req.substr(0, n), 1 << 17).status, Frame::Status::kNeedMore) << n;
  Frame f = parse_message(req + "trailing", 1 << 17);
  ASSERT_EQ(f.status, Frame::Status::kMessage);
  EXPECT_EQ(f.consumed, 17u);
  EXPECT_EQ(f.message.id, MsgId::kRequest);
  EXPECT_EQ(f.message.index, 7u);
  EXPECT_EQ(f.message.begin, 16384u);
  EXPECT_EQ(f.message.length, 16384u);

  // A keep-alive.
  f = parse_message(be32(0), 10);
  ASSERT_EQ(f.status, Frame::Status::kMessage);
  EXPECT_TRUE(f.message.keep_alive);
  // Too long: refused from its length alone, before the rest arrives.
  f = parse_message(be32(1 << 20), 1 << 17);
  EXPECT_EQ(f.status, Frame::Status::kError);
  EXPECT_NE(f.error.find("at most 131072"), std::string::npos);
  // An unknown id, refused as soon as the id is there.
  f = parse_message(be32(100) + "\x63", 1 << 17);
  EXPECT_EQ(f.status, Frame::Status::kError);
  EXPECT_NE(f.error.find("unknown message id 99"), std::string::npos);
  // A fixed-size message of the wrong size.
  f = parse_message(be32(5) + std::string("\x06", 1) + "abcd", 1 << 17);
  EXPECT_EQ(f.status, Frame::Status::kError);
  f = parse_message(be32(2) + std::string("\x02", 1) + "x", 1 << 17);  // interested + 1 byte
  EXPECT_EQ(f.status, Frame::Status::kError);
}

TEST(PeerWire, EveryMessageASeedSendsParsesBack) {
  std::string out;
  put_simple(out, MsgId::kUnchoke);
  put_simple(out, MsgId::kHaveAll);
  put_have(out, 42);
  put_bitfield(out, "\xff\xe0");
  put_block_message(out, MsgId::kReject, 1, 2, 3);
  const size_t before = out.size();
  put_piece_head(out, 5, 16384, 4);
  EXPECT_EQ(out.size() - before, kPieceHeadSize);
  out += "data";
  put_extended(out, 3, "d1:ai1ee");
  HashRequest h;
  h.pieces_root.fill(0xAB);
  h.base_layer = 0;
  h.index = 512;
  h.length = 512;
  h.proof_layers = 2;
  put_hash_message(out, MsgId::kHashes, h, std::string(64, 'h'));
  put_keep_alive(out);

  std::string_view in = out;
  std::vector<Message> got;
  while (!in.empty()) {
    Frame f = parse_message(in, 1 << 17);
    ASSERT_EQ(f.status, Frame::Status::kMessage) << f.error;
    got.push_back(f.message);
    in.remove_prefix(f.consumed);
  }
  ASSERT_EQ(got.size(), 9u);
  EXPECT_EQ(got[0].id, MsgId::kUnchoke);
  EXPECT_EQ(got[1].id, MsgId::kHaveAll);
  EXPECT_EQ(got[2].index, 42u);
  EXPECT_EQ(got[3].payload, "\xff\xe0");
  EXPECT_EQ(got[4].id, MsgId::kReject);
  EXPECT_EQ(got[4].length, 3u);
  EXPECT_EQ(got[5].id, MsgId::kPiece);
  EXPECT_EQ(got[5].begin, 16384u);
  EXPECT_EQ(got[5].payload, "data");
  EXPECT_EQ(got[6].extended_id, 3);
  EXPECT_EQ(got[6].payload, "d1:ai1ee");
  EXPECT_EQ(got[7].id, MsgId::kHashes);
  EXPECT_EQ(got[7].hash.index, 512u);
  EXPECT_EQ(got[7].hash.proof_layers, 2u);
  EXPECT_EQ(got[7].hash.pieces_root[31], 0xAB);
  EXPECT_EQ(got[7].payload.size(), 64u);
  EXPECT_TRUE(got[8].keep_alive);
}

TEST(PeerWire, ExtensionHandshakeBothWays) {
  auto h = parse_extension_handshake("d1:md11:ut_metadatai3e6:ut_pexi1ee4:reqqi500e1:v4:test" +
                                     std::string("e"));
  ASSERT_TRUE(h.ok()) << h.error().message;
  EXPECT_EQ(h->ut_metadata, 3);
  EXPECT_EQ(h->reqq, 500u);
  EXPECT_EQ(h->client, "test");
  // ut_metadata 0 means the peer turned it off.
  h = parse_extension_handshake("d1:md11:ut_metadatai0eee");
  ASSERT_TRUE(h.ok());
  EXPECT_FALSE(h->ut_metadata.has_value());
  EXPECT_FALSE(parse_extension_handshake("d1:md11:ut_metadatai300eee").ok());
  EXPECT_FALSE(parse_extension_handshake("li1ee").ok());
  EXPECT_FALSE(parse_extension_handshake("d1:m").ok());

  OurExtensionHandshake ours;
  ours.client = "Evertorrent 0.1";
  ours.reqq = 250;
  ours.yourip = std::string("\x7f\x00\x00\x01", 4);
  ours.metadata_size = 31337;
  const std::string p = extension_handshake_payload(ours);
  EXPECT_EQ(p,
            "d1:md11:ut_metadatai2ee13:metadata_sizei31337e4:reqqi250e1:v15:Evertorrent "
            "0.16:yourip4:" +
                std::string("\x7f\x00\x00\x01", 4) + "e");
}

TEST(PeerWire, MetadataMessages) {
  auto m = parse_metadata_message("d8:msg_typei0e5:piecei2ee");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->type, MetadataMessage::Type::kRequest);
  EXPECT_EQ(m->piece, 2u);
  const std::string data =
      metadata_message_payload(MetadataMessage::Type::kData, 1, 20000, "raw bytes");
  m = parse_metadata_message(data);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->type, MetadataMessage::Type::kData);
  EXPECT_EQ(m->total_size, 20000u);
  EXPECT_EQ(m->data, "raw bytes");
  EXPECT_FALSE(parse_metadata_message("d8:msg_typei7e5:piecei0ee").ok());
  EXPECT_FALSE(parse_metadata_message("d8:msg_typei0ee").ok());
  EXPECT_FALSE(parse_metadata_message("d5:piecei-1e8:msg_typei0ee").ok());
  EXPECT_FALSE(parse_metadata_message("i3e").ok());
}

}  // namespace
}  // namespace evert::wire
