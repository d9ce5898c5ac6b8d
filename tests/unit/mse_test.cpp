// MSE handshakes in memory: every combination of methods, pads and IA, in every chunking, the
// payload both ways afterwards; then hostile peers, each ending in a clean error.
#include "evert/mse.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

#include "mse_test_util.h"

namespace evert::mse {
namespace {

using test::connect;
using test::Outcome;
using test::Scenario;

// Whatever the setup, when both sides finish: the same method, each app gets the other's
// stream intact, and RC4 leaves no plaintext on the wire.
void expect_flows(const Scenario& s, const Outcome& o, uint32_t selected) {
  ASSERT_EQ(o.a.step, Step::kDone) << o.a_error;
  ASSERT_EQ(o.b.step, Step::kDone) << o.b_error;
  EXPECT_EQ(o.a_selected, selected);
  EXPECT_EQ(o.b_selected, selected);
  EXPECT_EQ(o.b.received, s.ia + s.a_after);
  EXPECT_EQ(o.a.received, s.b_after);
  EXPECT_EQ(o.a.enc != nullptr, selected == kRc4);
  EXPECT_EQ(o.a.dec != nullptr, selected == kRc4);
  EXPECT_EQ(o.b.enc != nullptr, selected == kRc4);
  EXPECT_EQ(o.b.dec != nullptr, selected == kRc4);
  std::string a_wire;
  for (const auto& w : o.wire_a_to_b)
    a_wire += w;
  std::string b_wire;
  for (const auto& w : o.wire_b_to_a)
    b_wire += w;
  // IA is RC4 whatever the choice; what follows is plaintext only when that was selected.
  if (!s.ia.empty()) {
    EXPECT_EQ(a_wire.find(s.ia), std::string::npos);
  }
  EXPECT_EQ(b_wire.find(s.b_after) != std::string::npos, selected == kPlaintext);
  EXPECT_EQ(a_wire.find(s.a_after) != std::string::npos, selected == kPlaintext);
}

TEST(MseHandshake, EveryCombinationOfProvidedAndAllowedMethods) {
  for (uint32_t provide : {kPlaintext, kRc4, kPlaintext | kRc4}) {
    for (uint32_t allowed : {kPlaintext, kRc4, kPlaintext | kRc4}) {
      for (bool prefer_rc4 : {false, true}) {
        SCOPED_TRACE("provide " + std::to_string(provide) + " allowed " + std::to_string(allowed) +
                     " prefer_rc4 " + std::to_string(prefer_rc4));
        Scenario s;
        s.provide = provide;
        s.allowed = allowed;
        s.prefer_rc4 = prefer_rc4;
        const Outcome o = connect(s);
        const uint32_t common = provide & allowed;
        if (common == 0) {
          // The responder refuses; the initiator, which never gets step 4, is still waiting
          // when the glue closes the connection.
          EXPECT_EQ(o.b.step, Step::kError);
          EXPECT_NE(o.b_error.find("no method in common"), std::string::npos) << o.b_error;
          EXPECT_EQ(o.a.step, Step::kNeedMore);
          continue;
        }
        const uint32_t expected =
            common == (kPlaintext | kRc4) ? (prefer_rc4 ? kRc4 : kPlaintext) : common;
        expect_flows(s, o, expected);
      }
    }
  }
}

TEST(MseHandshake, PadsOfZeroAndMaxAndIaOfZeroAnd68InEveryChunking) {
  const std::vector<std::pair<const char*, test::Chunker>> chunkers = {
      {"whole", test::whole()},
      {"bytewise", test::bytewise()},
      {"random 1", test::random_splits(1)},
      {"random 2", test::random_splits(2)},
  };
  for (int bits = 0; bits < 32; ++bits) {
    for (const auto& [name, chunker] : chunkers) {
      Scenario s;
      s.pad_a = (bits & 1) ? kMaxPad : 0;
      s.pad_b = (bits & 2) ? kMaxPad : 0;
      s.pad_c = (bits & 4) ? kMaxPad : 0;
      s.pad_d = (bits & 8) ? kMaxPad : 0;
      if (bits & 16) s.ia.clear();
      s.provide = (bits & 1) ? kPlaintext | kRc4 : kRc4;
      s.prefer_rc4 = (bits & 2) != 0;
      s.seed = static_cast<uint32_t>(bits);
      s.chunker = chunker;
      SCOPED_TRACE(std::string(name) + " bits " + std::to_string(bits));
      const Outcome o = connect(s);
      expect_flows(s, o, s.provide == kRc4 || s.prefer_rc4 ? kRc4 : kPlaintext);
      // Step 1 is Ya and PadA, step 2 Yb and PadB: the sizes a DPI box sees.
      ASSERT_FALSE(o.wire_a_to_b.empty());
      EXPECT_EQ(o.wire_a_to_b[0].size(), kPublicKeySize + *s.pad_a);
      // What one feed appends stays within a step: Yb and PadB, or step 4.
      EXPECT_LE(o.b.max_out, kPublicKeySize + kMaxPad);
    }
  }
}

TEST(MseHandshake, RandomPadLengthsFromTheRandomSource) {
  std::set<size_t> first_sizes;
  for (uint32_t seed = 0; seed < 40; ++seed) {
    Scenario s;
    s.pad_a = std::nullopt;
    s.pad_b = std::nullopt;
    s.seed = seed;
    s.chunker = test::random_splits(seed);
    const Outcome o = connect(s);
    expect_flows(s, o, kRc4);
    ASSERT_FALSE(o.wire_a_to_b.empty());
    EXPECT_LE(o.wire_a_to_b[0].size(), kPublicKeySize + kMaxPad);
    first_sizes.insert(o.wire_a_to_b[0].size());
  }
  EXPECT_GT(first_sizes.size(), 30u);  // the lengths do vary
}

TEST(MseHandshake, DefaultOptionsUseOpensslRandomness) {
  Initiator a(test::test_skey(), kRc4, test::bt_handshake('A'));
  Responder b(kRc4, true, test::knows_test_skey());
  std::string ab, ba, ab2, ba2, rest;
  ASSERT_EQ(a.start(ab), Step::kNeedMore);
  EXPECT_GE(ab.size(), kPublicKeySize);
  EXPECT_LE(ab.size(), kPublicKeySize + kMaxPad);
  ASSERT_EQ(b.feed(ab, ba), Step::kNeedMore) << b.error();
  ASSERT_EQ(a.feed(ba, ab2), Step::kNeedMore) << a.error();
  ASSERT_EQ(b.feed(ab2, ba2), Step::kDone) << b.error();
  ASSERT_EQ(a.feed(ba2, rest), Step::kDone) << a.error();
  EXPECT_EQ(b.take_payload(), test::bt_handshake('A'));
  EXPECT_EQ(b.skey(), test::test_skey());
  // Two handshakes never share keys.
  Initiator c(test::test_skey(), kRc4, "");
  std::string cd;
  c.start(cd);
  EXPECT_NE(cd.substr(0, kPublicKeySize), ab.substr(0, kPublicKeySize));
}

TEST(MseHandshake, LargePayloadsBothWaysAfterTheHandshake) {
  for (uint32_t provide : {kRc4, kPlaintext}) {
    Scenario s;
    s.provide = provide;
    s.a_after = std::string(1 << 20, 'a');
    s.b_after.assign(1 << 20, 'b');
    for (size_t i = 0; i < s.a_after.size(); i += 997)
      s.a_after[i] = static_cast<char>(i);
    s.chunker = test::random_splits(3);
    expect_flows(s, connect(s), provide);
  }
}

TEST(MseHandshake, TheLargestIaFits) {
  Scenario s;
  s.ia = std::string(65535, 'i');
  s.chunker = test::random_splits(4);
  expect_flows(s, connect(s), kRc4);
  // One byte more cannot be said in len(IA): start() refuses it.
  Initiator a(test::test_skey(), kRc4, std::string(65536, 'i'));
  std::string out;
  EXPECT_EQ(a.start(out), Step::kError);
  EXPECT_NE(a.error().find("over 65535"), std::string::npos);
  EXPECT_TRUE(out.empty());
  Initiator none(test::test_skey(), 0x04, "");
  EXPECT_EQ(none.start(out), Step::kError);
  EXPECT_NE(none.error().find("no method"), std::string::npos);
}

TEST(MseHandshake, AResponderSelectionTheInitiatorDidNotProvideIsRefused) {
  // Two initiators with the same random source send the same Ya and so share S with the
  // responder: one provides both methods and the responder picks plaintext, the other gets that
  // step 4 though it provided RC4 only.
  Initiator both(test::test_skey(), kPlaintext | kRc4, "", test::options(9, 0, 0));
  Initiator rc4_only(test::test_skey(), kRc4, "", test::options(9, 0, 0));
  Responder b(kPlaintext | kRc4, false, test::knows_test_skey(), test::options(10, 0, 0));
  std::string s1, s1b, s2, s3, s3b, s4;
  both.start(s1);
  rc4_only.start(s1b);
  ASSERT_EQ(s1, s1b);
  ASSERT_EQ(b.feed(s1, s2), Step::kNeedMore);
  ASSERT_EQ(both.feed(s2, s3), Step::kNeedMore);
  ASSERT_EQ(rc4_only.feed(s2, s3b), Step::kNeedMore);
  ASSERT_EQ(b.feed(s3, s4), Step::kDone);
  EXPECT_EQ(b.selected(), kPlaintext);
  std::string nothing;
  EXPECT_EQ(rc4_only.feed(s4, nothing), Step::kError);
  EXPECT_NE(rc4_only.error().find("the peer selected 0x1, we provided 0x2"), std::string::npos)
      << rc4_only.error();
  EXPECT_EQ(both.feed(s4, nothing), Step::kDone);
}

TEST(MseHandshake, FeedingAfterTheEndChangesNothing) {
  Scenario s;
  Outcome o = connect(s);
  ASSERT_EQ(o.b.step, Step::kDone);
  Responder b(kRc4, true, test::knows_test_skey(), test::options(1, 0, 0));
  std::string out;
  ASSERT_EQ(b.feed(std::string(700, 'x'), out), Step::kError);
  const std::string error = b.error();
  out.clear();
  EXPECT_EQ(b.feed("more", out), Step::kError);
  EXPECT_EQ(b.error(), error);
  EXPECT_TRUE(out.empty());
}

TEST(MseHandshake, Req2HashIsSha1OfReq2AndTheSkey) {
  const Hash20 skey = test::test_skey();
  EXPECT_EQ(test::view(req2_hash(skey)), std::string(Sha1::hash("req2" + test::view(skey)).view()));
}

}  // namespace
}  // namespace evert::mse
