// Hostile or broken peers, driven by hand: each must end in a clean kError with a message,
// after a bounded number of bytes, having sent nothing it should not have.
#include <gtest/gtest.h>

#include <string>

#include "evert/mse.h"
#include "mse_test_util.h"

namespace evert::mse {
namespace {

using test::be16;
using test::be32;
using test::ManualPeer;

const std::string kP = *from_hex(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A0879"
    "8E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A63A3621"
    "0000000000090563",
    96);

// P + delta as 96 bytes (delta small, P's low byte being 0x63).
std::string p_plus(int delta) {
  std::string p = kP;
  p[95] = static_cast<char>(static_cast<uint8_t>(p[95]) + delta);
  return p;
}

std::string number(uint8_t low) {
  std::string y(96, '\0');
  y[95] = static_cast<char>(low);
  return y;
}

Responder responder(uint32_t allowed = kPlaintext | kRc4) {
  return Responder(allowed, true, test::knows_test_skey(), test::options(3, 0, 0));
}

// Step 3 as an initiator would send it, every field chosen by the caller.
struct Step3 {
  std::string pad_a;
  Hash20 skey = test::test_skey();
  std::string vc = std::string(8, '\0');
  uint32_t provide = kRc4;
  size_t pad_c_len = 0;  // as declared
  std::string pad_c;     // as sent
  size_t ia_len = 0;     // as declared
  std::string ia;        // as sent
};

// Runs a Responder against a hand-made initiator; returns the last step, `sent` what the
// responder sent.
Step run_responder(Responder& b, const Step3& f, std::string& sent) {
  ManualPeer m(77);
  if (b.feed(m.public_key() + f.pad_a, sent) != Step::kNeedMore) return Step::kError;
  m.set_peer_key(sent.substr(0, kPublicKeySize));
  std::string step3 = m.hash("req1") + test::xor_str(test::view(req2_hash(f.skey)), m.hash("req3"));
  std::string tail = f.vc + be32(f.provide) + be16(f.pad_c_len) + f.pad_c + be16(f.ia_len) + f.ia;
  m.cipher('A', f.skey)->apply(tail.data(), tail.size());
  return b.feed(step3 + tail, sent);
}

TEST(MseHostile, GarbageNeverContainingTheReq1HashFailsAt628Bytes) {
  // 96 bytes of Ya, then 512 of PadA and the 20 of the hash at the latest.
  const std::string junk = test::bt_handshake('X') + std::string(1000, 'j');
  Responder b = responder();
  std::string out;
  size_t fed = 0;
  Step step = Step::kNeedMore;
  while (step == Step::kNeedMore && fed < junk.size())
    step = b.feed(junk.substr(fed++, 1), out);
  EXPECT_EQ(step, Step::kError);
  EXPECT_EQ(fed, kPublicKeySize + kMaxPad + 20);
  EXPECT_NE(b.error().find("no HASH('req1', S) within 532 bytes"), std::string::npos) << b.error();
  EXPECT_EQ(out.size(), kPublicKeySize);  // Yb (PadB of 0 here) and nothing else
  // Whole, the same.
  Responder c = responder();
  out.clear();
  EXPECT_EQ(c.feed(junk, out), Step::kError);
  EXPECT_EQ(c.error(), b.error());
}

TEST(MseHostile, DegeneratePublicKeysAreRefusedBeforeWeAnswer) {
  for (const std::string& y :
       {number(0), number(1), p_plus(-1), kP, p_plus(1), std::string(96, '\xff')}) {
    Responder b = responder();
    std::string out;
    EXPECT_EQ(b.feed(y, out), Step::kError) << to_hex(y);
    EXPECT_NE(b.error().find("not in [2, P-2]"), std::string::npos);
    EXPECT_TRUE(out.empty());
  }
  for (const std::string& y : {number(2), p_plus(-2)}) {
    Responder b = responder();
    std::string out;
    EXPECT_EQ(b.feed(y, out), Step::kNeedMore) << to_hex(y);
    EXPECT_EQ(out.size(), kPublicKeySize);
  }
}

TEST(MseHostile, PadAOfMaxIsFoundOneByteMoreIsNot) {
  Step3 f;
  f.pad_a = std::string(kMaxPad, 'p');
  f.ia_len = 3;
  f.ia = "abc";
  Responder b = responder();
  std::string sent;
  EXPECT_EQ(run_responder(b, f, sent), Step::kDone) << b.error();
  EXPECT_EQ(b.take_payload(), "abc");
  f.pad_a += 'p';
  Responder c = responder();
  EXPECT_EQ(run_responder(c, f, sent), Step::kError);
  EXPECT_NE(c.error().find("HASH('req1', S)"), std::string::npos) << c.error();
}

TEST(MseHostile, AnUnknownSkeyIsRefused) {
  Step3 f;
  f.skey = test::hash20("some other torrent");
  Responder b = responder();
  std::string sent;
  EXPECT_EQ(run_responder(b, f, sent), Step::kError);
  EXPECT_NE(b.error().find("unknown SKEY"), std::string::npos) << b.error();
  EXPECT_EQ(sent.size(), kPublicKeySize);  // no step 4
}

TEST(MseHostile, AWrongVerificationConstantIsRefused) {
  Step3 f;
  f.vc[7] = 1;
  Responder b = responder();
  std::string sent;
  EXPECT_EQ(run_responder(b, f, sent), Step::kError);
  EXPECT_NE(b.error().find("wrong verification constant"), std::string::npos) << b.error();
  EXPECT_EQ(sent.size(), kPublicKeySize);
}

TEST(MseHostile, NoAcceptableMethodIsRefused) {
  for (uint32_t provide : {0u, 0x04u, 0xfffffffcu, kPlaintext}) {
    Step3 f;
    f.provide = provide;
    Responder b = responder(kRc4);
    std::string sent;
    EXPECT_EQ(run_responder(b, f, sent), Step::kError) << provide;
    EXPECT_NE(b.error().find("no method in common"), std::string::npos) << b.error();
    EXPECT_EQ(sent.size(), kPublicKeySize);
  }
  // Unknown bits beside a known one are ignored.
  Step3 f;
  f.provide = 0xf0000002;
  Responder b = responder(kRc4);
  std::string sent;
  EXPECT_EQ(run_responder(b, f, sent), Step::kDone) << b.error();
  EXPECT_EQ(b.selected(), kRc4);
}

TEST(MseHostile, PadCLengthOverMaxIsRefusedMaxIsRead) {
  Step3 f;
  f.pad_c_len = kMaxPad;
  f.pad_c = std::string(kMaxPad, '\0');
  Responder b = responder();
  std::string sent;
  EXPECT_EQ(run_responder(b, f, sent), Step::kDone) << b.error();
  f.pad_c_len = kMaxPad + 1;
  f.pad_c += '\0';
  Responder c = responder();
  EXPECT_EQ(run_responder(c, f, sent), Step::kError);
  EXPECT_NE(c.error().find("len(PadC) 513 over 512"), std::string::npos) << c.error();
  Step3 g;
  g.pad_c_len = 0xffff;
  Responder d = responder();
  EXPECT_EQ(run_responder(d, g, sent), Step::kError);
}

TEST(MseHostile, IaWaitsForAllItsBytesAndKeepsNoMore) {
  // len(IA) says 65535 but the peer sends 10 bytes: we wait, holding those 10 only.
  Step3 f;
  f.ia_len = 0xffff;
  f.ia = "0123456789";
  Responder b = responder();
  std::string sent;
  EXPECT_EQ(run_responder(b, f, sent), Step::kNeedMore) << b.error();
  EXPECT_GT(sent.size(), kPublicKeySize);  // step 4 went out with crypto_provide
}

// ---- against our Initiator --------------------------------------------------------------

struct Step4 {
  std::string yb;  // empty: a valid public key
  std::string pad_b;
  std::string vc = std::string(8, '\0');
  uint32_t select = kRc4;
  size_t pad_d_len = 0;
  std::string pad_d;
};

Step run_initiator(Initiator& a, const Step4& f, std::string& sent) {
  ManualPeer m(78);
  if (a.start(sent) != Step::kNeedMore) return Step::kError;
  m.set_peer_key(sent.substr(0, kPublicKeySize));
  const Step step = a.feed((f.yb.empty() ? m.public_key() : f.yb) + f.pad_b, sent);
  if (step != Step::kNeedMore) return step;
  std::string step4 = f.vc + be32(f.select) + be16(f.pad_d_len) + f.pad_d;
  m.cipher('B', test::test_skey())->apply(step4.data(), step4.size());
  return a.feed(step4, sent);
}

Initiator initiator(uint32_t provide = kPlaintext | kRc4) {
  return Initiator(test::test_skey(), provide, test::bt_handshake('A'), test::options(4, 0, 0));
}

TEST(MseHostile, InitiatorRefusesADegenerateYb) {
  for (const std::string& y : {number(1), p_plus(-1), std::string(96, '\xff')}) {
    Step4 f;
    f.yb = y;
    Initiator a = initiator();
    std::string sent;
    EXPECT_EQ(run_initiator(a, f, sent), Step::kError);
    EXPECT_NE(a.error().find("not in [2, P-2]"), std::string::npos);
    EXPECT_EQ(sent.size(), kPublicKeySize);  // no step 3
  }
}

TEST(MseHostile, InitiatorFindsVcAfterPadBOfMaxNotAfterMore) {
  Step4 f;
  f.pad_b = std::string(kMaxPad, 'q');
  Initiator a = initiator();
  std::string sent;
  EXPECT_EQ(run_initiator(a, f, sent), Step::kDone) << a.error();
  f.pad_b += 'q';
  Initiator b = initiator();
  EXPECT_EQ(run_initiator(b, f, sent), Step::kError);
  EXPECT_NE(b.error().find("no ENCRYPT(VC) within 520 bytes"), std::string::npos) << b.error();
}

TEST(MseHostile, InitiatorJunkAfterYbFailsAt520Bytes) {
  Initiator a = initiator();
  ManualPeer m(79);
  std::string sent;
  ASSERT_EQ(a.start(sent), Step::kNeedMore);
  const std::string junk = m.public_key() + std::string(2000, '\0');
  size_t fed = 0;
  Step step = Step::kNeedMore;
  while (step == Step::kNeedMore)
    step = a.feed(junk.substr(fed++, 1), sent);
  EXPECT_EQ(step, Step::kError);
  EXPECT_EQ(fed, kPublicKeySize + kMaxPad + 8);
}

TEST(MseHostile, InitiatorRefusesSelectionsItDidNotOffer) {
  struct Case {
    uint32_t provide;
    uint32_t select;
  };
  for (const Case c :
       {Case{kPlaintext | kRc4, 0}, Case{kPlaintext | kRc4, 3}, Case{kPlaintext | kRc4, 4},
        Case{kRc4, kPlaintext}, Case{kPlaintext, kRc4}, Case{kRc4, 0x102}}) {
    Step4 f;
    f.select = c.select;
    Initiator a = initiator(c.provide);
    std::string sent;
    EXPECT_EQ(run_initiator(a, f, sent), Step::kError) << c.provide << " " << c.select;
    EXPECT_NE(a.error().find("the peer selected"), std::string::npos) << a.error();
  }
}

TEST(MseHostile, InitiatorRefusesPadDOverMax) {
  Step4 f;
  f.pad_d_len = kMaxPad;
  f.pad_d = std::string(kMaxPad, '\0');
  Initiator a = initiator();
  std::string sent;
  EXPECT_EQ(run_initiator(a, f, sent), Step::kDone) << a.error();
  f.pad_d_len = kMaxPad + 1;
  Initiator b = initiator();
  EXPECT_EQ(run_initiator(b, f, sent), Step::kError);
  EXPECT_NE(b.error().find("len(PadD) 513 over 512"), std::string::npos) << b.error();
}

TEST(MseHostile, NoRandomnessIsACleanError) {
  Options o;
  o.random = [](uint8_t*, size_t) { return false; };
  Initiator a(test::test_skey(), kRc4, "", o);
  std::string out;
  EXPECT_EQ(a.start(out), Step::kError);
  EXPECT_NE(a.error().find("no randomness"), std::string::npos);
  Responder b(kRc4, true, test::knows_test_skey(), o);
  EXPECT_EQ(b.feed(number(5), out), Step::kError);
}

}  // namespace
}  // namespace evert::mse
