// libFuzzer target: the MSE handshake. Random sources have fixed seeds, so every input replays
// the same. The first byte picks a scenario:
//   0  a Responder fed the input as it is, in chunks the input decides;
//   1  a real initiator's stream (steps 1 and 3, then payload), made in a clean handshake with
//      parameters from the input, then mutated by the input and fed to a Responder with the
//      same keys (so the fuzzer reaches the states past the SHA-1 synchronisation);
//   2  the same for an Initiator, fed a real responder's stream, mutated;
//   3  an Initiator fed the input after its start.
// Checked: no crash or sanitizer report; a clean handshake always completes with the method the
// rules give; kDone/kError are final; what one feed sends is bounded by the steps; junk is
// refused within the spec's windows (628 bytes for a responder, 96 + 520 for an initiator).
#include <openssl/bn.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <string_view>

#include "evert/hash.h"
#include "evert/mse.h"

using namespace evert::mse;
using evert::Sha1;
using evert::Sha1Digest;

namespace {

class Input {
 public:
  Input(const uint8_t* data, size_t size) : p_(data), n_(size) {}
  uint8_t byte() {
    if (n_ == 0) return 0;
    --n_;
    return *p_++;
  }
  uint16_t u16() { return static_cast<uint16_t>(byte() << 8 | byte()); }
  std::string take(size_t k) {
    k = std::min(k, n_);
    std::string s(reinterpret_cast<const char*>(p_), k);
    p_ += k;
    n_ -= k;
    return s;
  }
  std::string rest() { return take(n_); }
  [[nodiscard]] bool empty() const { return n_ == 0; }

 private:
  const uint8_t* p_;
  size_t n_;
};

RandomSource seeded(uint32_t seed) {
  return [rng = std::minstd_rand(seed)](uint8_t* out, size_t n) mutable {
    for (size_t i = 0; i < n; ++i)
      out[i] = static_cast<uint8_t>(rng() >> 7);
    return true;
  };
}

const Hash20& skey() {
  static const Hash20 k = [] {
    Hash20 h{};
    for (size_t i = 0; i < h.size(); ++i)
      h[i] = static_cast<uint8_t>(i * 13 + 1);
    return h;
  }();
  return k;
}

Responder::FindSkey find_skey() {
  return [](const Hash20& req2) -> std::optional<Hash20> {
    if (req2 == req2_hash(skey())) return skey();
    return std::nullopt;
  };
}

void check(bool ok) {
  if (!ok) std::abort();
}

// The parameters of a handshake, from the input.
struct Params {
  uint32_t provide;
  uint32_t allowed;
  bool prefer_rc4;
  Options a;
  Options b;
  std::string ia;
};

Params params(Input& in) {
  Params p;
  const uint8_t flags = in.byte();
  p.provide = 1 + flags % 3;
  p.allowed = 1 + (flags / 3) % 3;
  p.prefer_rc4 = (flags & 0x80) != 0;
  p.a.random = seeded(1);
  p.b.random = seeded(2);
  p.a.dh_pad = static_cast<uint16_t>(in.u16() % 600);  // past 512: clamped
  p.b.dh_pad = static_cast<uint16_t>(in.u16() % 600);
  p.a.crypto_pad = static_cast<uint16_t>(in.u16() % 600);
  p.b.crypto_pad = static_cast<uint16_t>(in.u16() % 600);
  p.ia = in.take(in.byte() % 100);
  return p;
}

// Where a feed sequence ended: the step became final in the chunk [fed, ended_at).
struct Progress {
  size_t fed = 0;
  size_t ended_at = 0;
  // Whether the step became final with the byte at `offset` (counted from 1).
  [[nodiscard]] bool ended_with_byte(size_t offset) const {
    return fed < offset && offset <= ended_at;
  }
};

// Feeds `bytes` in chunks the input decides; checks what a feed may do, and that all it sent
// is at most `max_out`. Returns the last step.
template <class H>
Step feed_chunked(H& h, std::string_view bytes, Input& in, size_t max_out, Progress& p) {
  Step step = Step::kNeedMore;
  std::string out;
  while (!bytes.empty()) {
    const size_t n = std::min<size_t>(bytes.size(), in.empty() ? bytes.size() : in.byte());
    const Step before = step;
    const size_t sent = out.size();
    step = h.feed(bytes.substr(0, n), out);
    if (before != Step::kNeedMore) check(step == before && out.size() == sent);
    check(out.size() <= max_out);
    check(step != Step::kError || !h.error().empty());
    if (before == Step::kNeedMore) {
      if (step == Step::kNeedMore) p.fed += n;
      p.ended_at = p.fed + n;
    }
    bytes.remove_prefix(n);
  }
  return step;
}

void check_done(Handshake& h) {
  check(h.selected() == kPlaintext || h.selected() == kRc4);
  auto enc = h.take_encryptor();
  auto dec = h.take_decryptor();
  check((enc != nullptr) == (h.selected() == kRc4) && (dec != nullptr) == (enc != nullptr));
}

// Yb and PadB, then step 4: ENCRYPT(VC, crypto_select, len(PadD), PadD).
constexpr size_t kResponderMaxOut = kPublicKeySize + kMaxPad + 8 + 4 + 2 + kMaxPad;

// The fuzzer's own DH, independent of the library's: S from the first 20 bytes `seed` draws
// (the private key) and the peer's public key; empty when that key is outside [2, P-2].
std::string secret(uint32_t seed, std::string_view peer) {
  uint8_t x[20];
  seeded(seed)(x, sizeof(x));
  BN_CTX* ctx = BN_CTX_new();
  BIGNUM* p = nullptr;
  BN_hex2bn(&p,
            "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A"
            "08798E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9"
            "A63A36210000000000090563");
  BIGNUM* y = BN_bin2bn(reinterpret_cast<const uint8_t*>(peer.data()), 96, nullptr);
  BIGNUM* bx = BN_bin2bn(x, sizeof(x), nullptr);
  BIGNUM* s = BN_new();
  std::string out;
  BN_sub_word(p, 1);
  const bool ok = BN_cmp(y, BN_value_one()) > 0 && BN_cmp(y, p) < 0;
  BN_add_word(p, 1);
  if (ok && BN_mod_exp(s, y, bx, p, ctx) == 1) {
    out.resize(96);
    BN_bn2binpad(s, reinterpret_cast<uint8_t*>(out.data()), 96);
  }
  BN_free(s);
  BN_free(bx);
  BN_free(y);
  BN_free(p);
  BN_CTX_free(ctx);
  return out;
}

// Where `needle` ends in `junk` after the public key, scanning at most `window` bytes; npos
// when not there.
size_t sync_end(std::string_view junk, std::string_view needle, size_t window) {
  const std::string_view area = junk.substr(kPublicKeySize, window);
  const size_t at = area.find(needle);
  return at == std::string_view::npos ? at : kPublicKeySize + at + needle.size();
}

void raw_responder(Input& in) {
  const uint8_t flags = in.byte();
  Responder r(1 + flags % 3, (flags & 4) != 0, find_skey(), Options{seeded(3), {}, 0});
  const std::string junk = in.take(in.u16() % 4096);
  Progress fed;
  const Step step = feed_chunked(r, junk, in, kResponderMaxOut, fed);
  if (junk.size() < kPublicKeySize) return check(step == Step::kNeedMore);
  const std::string s = secret(3, junk);
  if (s.empty()) return check(step == Step::kError && fed.ended_with_byte(kPublicKeySize));
  // Junk (unless the fuzzer planted HASH('req1', S), which it does, seeing memcmp's operands)
  // is refused exactly at the end of the window: PadA's 512 bytes, then the hash's 20.
  const size_t window = kMaxPad + 20;
  if (sync_end(junk, std::string(Sha1::hash("req1" + s).view()), window) != std::string::npos) {
    return;
  }
  if (junk.size() >= kPublicKeySize + window) {
    check(step == Step::kError && fed.ended_with_byte(kPublicKeySize + window));
  } else {
    check(step == Step::kNeedMore);
  }
}

void raw_initiator(Input& in) {
  Initiator a(skey(), 1 + in.byte() % 3, in.take(in.byte()), Options{seeded(4), {}, 0});
  std::string out;
  check(a.start(out) == Step::kNeedMore && out.size() <= kPublicKeySize + kMaxPad);
  const std::string junk = in.take(in.u16() % 4096);
  Progress fed;
  const Step step = feed_chunked(a, junk, in, 20 + 20 + 14 + kMaxPad + 2 + 255, fed);
  if (junk.size() < kPublicKeySize) return check(step == Step::kNeedMore);
  const std::string s = secret(4, junk);
  if (s.empty()) return check(step == Step::kError && fed.ended_with_byte(kPublicKeySize));
  // ENCRYPT(VC): the first 8 bytes of B's keystream.
  const Hash20& k = skey();
  const Sha1Digest key_b =
      Sha1::hash("keyB" + s + std::string(reinterpret_cast<const char*>(k.data()), k.size()));
  std::string vc(8, '\0');
  Rc4(key_b.bytes).apply(vc.data(), vc.size());
  const size_t window = kMaxPad + 8;
  if (sync_end(junk, vc, window) != std::string::npos) return;
  if (junk.size() >= kPublicKeySize + window) {
    check(step == Step::kError && fed.ended_with_byte(kPublicKeySize + window));
  } else {
    check(step == Step::kNeedMore);
  }
}

// Applies the input's mutations: flipped bytes, a cut, bytes inserted.
void mutate(std::string& s, Input& in) {
  const int n = in.byte() % 8;
  for (int i = 0; i < n && !s.empty(); ++i) {
    const size_t at = in.u16() % s.size();
    switch (in.byte() % 4) {
      case 0:
        s.resize(at);
        break;
      case 1:
        s.insert(at, in.take(in.byte() % 16));
        break;
      default:
        s[at] = static_cast<char>(s[at] ^ (in.byte() | 1));
        break;
    }
  }
}

// A clean handshake with `p`; returns the bytes each side sent.
void clean_run(Params& p, std::string& a_stream, std::string& b_stream) {
  Initiator a(skey(), p.provide, p.ia, p.a);
  Responder b(p.allowed, p.prefer_rc4, find_skey(), p.b);
  std::string s1, s2, s3, s4;
  check(a.start(s1) == Step::kNeedMore);
  check(b.feed(s1, s2) == Step::kNeedMore);
  check(a.feed(s2, s3) == Step::kNeedMore);
  const Step b_step = b.feed(s3, s4);
  const uint32_t common = p.provide & p.allowed;
  a_stream = s1 + s3;
  b_stream = s2 + s4;
  if (common == 0) {
    check(b_step == Step::kError && s4.empty());
    return;
  }
  check(b_step == Step::kDone && b.take_payload() == p.ia);
  const uint32_t expected = common == 3 ? (p.prefer_rc4 ? kRc4 : kPlaintext) : common;
  check(b.selected() == expected);
  std::string nothing;
  check(a.feed(s4, nothing) == Step::kDone && nothing.empty() && a.selected() == expected);
}

void mutated_responder(Input& in) {
  Params p = params(in);
  std::string a_stream, b_stream;
  clean_run(p, a_stream, b_stream);
  a_stream += in.take(in.byte());  // payload after IA
  mutate(a_stream, in);
  Responder b(p.allowed, p.prefer_rc4, find_skey(), Options{seeded(2), p.b.dh_pad, p.b.crypto_pad});
  Progress fed;
  if (feed_chunked(b, a_stream, in, kResponderMaxOut, fed) == Step::kDone) {
    check(b.take_payload().size() <= a_stream.size());
    check_done(b);
  }
}

void mutated_initiator(Input& in) {
  Params p = params(in);
  std::string a_stream, b_stream;
  clean_run(p, a_stream, b_stream);
  b_stream += in.take(in.byte());
  mutate(b_stream, in);
  Initiator a(skey(), p.provide, p.ia, Options{seeded(1), p.a.dh_pad, p.a.crypto_pad});
  std::string out;
  check(a.start(out) == Step::kNeedMore);
  Progress fed;
  if (feed_chunked(a, b_stream, in, 20 + 20 + 14 + kMaxPad + 2 + 100, fed) == Step::kDone) {
    check(a.take_payload().size() <= b_stream.size());
    check_done(a);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Input in(data, size);
  switch (in.byte() % 4) {
    case 0:
      raw_responder(in);
      break;
    case 1:
      mutated_responder(in);
      break;
    case 2:
      mutated_initiator(in);
      break;
    default:
      raw_initiator(in);
      break;
  }
  return 0;
}
