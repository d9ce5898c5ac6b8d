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
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <string_view>

#include "evert/mse.h"

using namespace evert::mse;

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

// Feeds `bytes` in chunks the input decides; checks what a feed may do. Returns the last step.
template <class H>
Step feed_chunked(H& h, std::string_view bytes, Input& in, size_t max_out, size_t& fed) {
  Step step = Step::kNeedMore;
  while (!bytes.empty()) {
    const size_t n = std::min<size_t>(bytes.size(), in.empty() ? bytes.size() : in.byte());
    std::string out;
    const Step before = step;
    step = h.feed(bytes.substr(0, n), out);
    if (before != Step::kNeedMore) check(step == before && out.empty());
    check(out.size() <= max_out);
    check(step != Step::kError || !h.error().empty());
    if (step == Step::kNeedMore) fed += n;
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

constexpr size_t kResponderMaxOut = kPublicKeySize + kMaxPad;  // Yb and PadB; step 4 is less

void raw_responder(Input& in) {
  const uint8_t flags = in.byte();
  Responder r(1 + flags % 3, (flags & 4) != 0, find_skey(), Options{seeded(3), {}, 0});
  const std::string junk = in.take(in.u16() % 4096);
  size_t fed = 0;
  const Step step = feed_chunked(r, junk, in, kResponderMaxOut, fed);
  // Without S no junk holds HASH('req1', S): refused by the end of the window.
  if (junk.size() >= kPublicKeySize + kMaxPad + 20) check(step == Step::kError);
  check(fed < kPublicKeySize + kMaxPad + 20);
}

void raw_initiator(Input& in) {
  Initiator a(skey(), 1 + in.byte() % 3, in.take(in.byte()), Options{seeded(4), {}, 0});
  std::string out;
  check(a.start(out) == Step::kNeedMore && out.size() <= kPublicKeySize + kMaxPad);
  const std::string junk = in.take(in.u16() % 4096);
  size_t fed = 0;
  const Step step = feed_chunked(a, junk, in, 20 + 20 + 14 + kMaxPad + 2 + 255, fed);
  if (junk.size() >= kPublicKeySize + kMaxPad + 8) check(step == Step::kError);
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
  size_t fed = 0;
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
  size_t fed = 0;
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
