// Helpers for the MSE tests: deterministic random sources, chunkers, an in-memory connection
// between an Initiator and a Responder, and a hand-driven peer that can send anything.
#pragma once

#include <openssl/bn.h>

#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "evert/hash.h"
#include "evert/mse.h"

namespace evert::mse::test {

inline Hash20 hash20(std::string_view s) {
  Hash20 h{};
  std::memcpy(h.data(), Sha1::hash(s).bytes.data(), h.size());
  return h;
}

inline const Hash20& test_skey() {
  static const Hash20 k = hash20("the torrent");
  return k;
}

// The responder's lookup: knows test_skey() only.
inline Responder::FindSkey knows_test_skey() {
  return [](const Hash20& req2) -> std::optional<Hash20> {
    if (req2 == req2_hash(test_skey())) return test_skey();
    return std::nullopt;
  };
}

// Deterministic pseudo-random bytes.
inline RandomSource seeded(uint32_t seed) {
  return [rng = std::mt19937(seed)](uint8_t* out, size_t n) mutable {
    for (size_t i = 0; i < n; ++i)
      out[i] = static_cast<uint8_t>(rng());
    return true;
  };
}

inline Options options(uint32_t seed, std::optional<uint16_t> dh_pad, uint16_t crypto_pad) {
  Options o;
  o.random = seeded(seed);
  o.dh_pad = dh_pad;
  o.crypto_pad = crypto_pad;
  return o;
}

inline std::string bt_handshake(char who) {
  std::string h =
      "\x13"
      "BitTorrent protocol";
  h.append(8, '\0');
  h.append(reinterpret_cast<const char*>(test_skey().data()), 20);
  h.append(20, who);
  return h;
}

// How bytes are split on their way: returns the sizes of the pieces of an n-byte send.
using Chunker = std::function<std::vector<size_t>(size_t n)>;

inline Chunker whole() {
  return [](size_t n) { return std::vector<size_t>{n}; };
}
inline Chunker bytewise() {
  return [](size_t n) { return std::vector<size_t>(n, 1); };
}
inline Chunker random_splits(uint32_t seed) {
  return [rng = std::make_shared<std::mt19937>(seed)](size_t n) {
    std::vector<size_t> sizes;
    while (n > 0) {
      const size_t k = std::min<size_t>(n, (*rng)() % 200);  // 0: an empty feed
      sizes.push_back(k);
      n -= k;
    }
    return sizes;
  };
}

// One side of an in-memory connection: the handshake, then the application stream it leads to.
struct Side {
  std::function<Step(std::string_view, std::string&)> feed;
  Handshake* handshake = nullptr;
  Step step = Step::kNeedMore;
  bool app = false;            // handshake over, its payload and ciphers taken
  std::unique_ptr<Rc4> enc;    // what the app sends
  std::unique_ptr<Rc4> dec;    // what the app receives
  std::string received;        // the app's stream, decrypted
  std::string send_when_done;  // the app's first bytes (sent encrypted if RC4 was chosen)
  size_t max_out = 0;          // the most the handshake appended in one feed

  // Bytes from the wire; appends what to send.
  void on_bytes(std::string_view bytes, std::string& out) {
    if (step == Step::kError) return;  // the glue would have closed the connection
    if (app) {
      std::string b(bytes);
      if (dec) dec->apply(b.data(), b.size());
      received += b;
      return;
    }
    const size_t before = out.size();
    step = feed(bytes, out);
    max_out = std::max(max_out, out.size() - before);
    if (step != Step::kDone) return;
    app = true;
    received = handshake->take_payload();
    enc = handshake->take_encryptor();
    dec = handshake->take_decryptor();
    std::string s = send_when_done;
    if (enc) enc->apply(s.data(), s.size());
    out += s;
  }
};

struct Scenario {
  uint32_t provide = kPlaintext | kRc4;
  uint32_t allowed = kPlaintext | kRc4;
  bool prefer_rc4 = true;
  std::optional<uint16_t> pad_a = 0;
  std::optional<uint16_t> pad_b = 0;
  uint16_t pad_c = 0;
  uint16_t pad_d = 0;
  std::string ia = bt_handshake('A');
  std::string a_after = "A's first messages";  // sent by A's app once its handshake is done
  std::string b_after = bt_handshake('B');     // sent by B's app once its handshake is done
  uint32_t seed = 1;
  Chunker chunker = whole();
};

struct Outcome {
  Side a;
  Side b;
  std::string a_error;
  std::string b_error;
  uint32_t a_selected = 0;
  uint32_t b_selected = 0;
  std::vector<std::string> wire_a_to_b;  // every send, as on the wire
  std::vector<std::string> wire_b_to_a;
};

// Runs a whole connection in memory: A's start, then both directions until nothing is left.
inline Outcome connect(const Scenario& s) {
  Outcome o;
  Initiator a(test_skey(), s.provide, s.ia, options(s.seed, s.pad_a, s.pad_c));
  Responder b(s.allowed, s.prefer_rc4, knows_test_skey(), options(s.seed + 1000, s.pad_b, s.pad_d));
  o.a.feed = [&a](std::string_view in, std::string& out) { return a.feed(in, out); };
  o.a.handshake = &a;
  o.a.send_when_done = s.a_after;
  o.b.feed = [&b](std::string_view in, std::string& out) { return b.feed(in, out); };
  o.b.handshake = &b;
  o.b.send_when_done = s.b_after;
  std::string a_to_b;
  std::string b_to_a;
  o.a.step = a.start(a_to_b);
  auto deliver = [&](std::string& pending, Side& to, std::string& reply,
                     std::vector<std::string>& wire) {
    const std::string bytes = std::move(pending);
    pending.clear();
    if (!bytes.empty()) wire.push_back(bytes);
    size_t at = 0;
    for (size_t n : s.chunker(bytes.size())) {
      to.on_bytes(std::string_view(bytes).substr(at, n), reply);
      at += n;
    }
  };
  for (int round = 0; round < 10 && (!a_to_b.empty() || !b_to_a.empty()); ++round) {
    deliver(a_to_b, o.b, b_to_a, o.wire_a_to_b);
    deliver(b_to_a, o.a, a_to_b, o.wire_b_to_a);
  }
  o.a_error = a.error();
  o.b_error = b.error();
  o.a_selected = a.selected();
  o.b_selected = b.selected();
  o.a.feed = nullptr;
  o.b.feed = nullptr;
  o.a.handshake = nullptr;
  o.b.handshake = nullptr;
  return o;
}

// A peer driven by hand, for bytes our own Initiator and Responder would never send: the DH by
// OpenSSL directly, the fields built by the test.
class ManualPeer {
 public:
  explicit ManualPeer(uint32_t seed) {
    auto r = seeded(seed);
    r(x_.data(), x_.size());
  }
  [[nodiscard]] std::string public_key() const { return exp(nullptr); }
  // S from the other side's public key.
  void set_peer_key(std::string_view y) { secret_ = exp(&y); }
  [[nodiscard]] std::string hash(std::string_view tag) const {
    return std::string(Sha1::hash(std::string(tag) + secret_).view());
  }
  // RC4 for one direction: 'A' (initiator to responder) or 'B'.
  [[nodiscard]] std::unique_ptr<Rc4> cipher(char direction, const Hash20& skey) const {
    const std::string key = std::string("key") + direction + secret_ +
                            std::string(reinterpret_cast<const char*>(skey.data()), 20);
    const Sha1Digest d = Sha1::hash(key);
    return std::make_unique<Rc4>(std::span<const uint8_t>(d.bytes));
  }
  [[nodiscard]] const std::string& secret() const { return secret_; }

 private:
  // 2^x, or y^x, mod P as 96 bytes.
  std::string exp(const std::string_view* y) const {
    BN_CTX* ctx = BN_CTX_new();
    BIGNUM* p = nullptr;
    BN_hex2bn(&p,
              "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22"
              "514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6"
              "F44C42E9A63A36210000000000090563");
    BIGNUM* base = BN_new();
    if (y != nullptr) {
      BN_bin2bn(reinterpret_cast<const uint8_t*>(y->data()), static_cast<int>(y->size()), base);
    } else {
      BN_set_word(base, 2);
    }
    BIGNUM* x = BN_bin2bn(x_.data(), static_cast<int>(x_.size()), nullptr);
    BIGNUM* r = BN_new();
    BN_mod_exp(r, base, x, p, ctx);
    std::string out(96, '\0');
    BN_bn2binpad(r, reinterpret_cast<uint8_t*>(out.data()), 96);
    BN_free(r);
    BN_free(x);
    BN_free(base);
    BN_free(p);
    BN_CTX_free(ctx);
    return out;
  }

  std::array<uint8_t, 20> x_{};
  std::string secret_;
};

inline std::string be16(size_t v) {
  return {static_cast<char>(v >> 8), static_cast<char>(v & 0xff)};
}
inline std::string be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}
inline std::string view(const Hash20& h) {
  return {reinterpret_cast<const char*>(h.data()), h.size()};
}
inline std::string xor_str(std::string a, std::string_view b) {
  for (size_t i = 0; i < a.size(); ++i)
    a[i] = static_cast<char>(a[i] ^ b[i]);
  return a;
}

}  // namespace evert::mse::test
