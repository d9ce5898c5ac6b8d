// MSE's Diffie-Hellman over OpenSSL's BIGNUM, and its SHA-1 helpers.
//
// Cost: a handshake is two 768-bit exponentiations with 160-bit exponents per side, on the
// daemon's event loop. The Montgomery form of P is computed once per process and each thread
// keeps one BN_CTX, so an exponentiation allocates nothing. 2^x uses BN_mod_exp_mont_word
// (squarings and doublings, no multiplications by a big base): ~53 us against ~80 us for the
// constant-time ladder; peer^x uses the plain sliding window (~58 us against ~79 us).
// Constant time buys nothing here: each private key is random, used for exactly these two
// exponentiations and then wiped, so a timing observer gets one or two samples per key, far
// from what recovering an exponent takes; and MSE has no authentication, so an active attacker
// simply runs the handshake with each side instead.
#include "mse_dh.h"

#include <openssl/bn.h>
#include <openssl/crypto.h>

#include <memory>
#include <new>

#include "evert/hash.h"

namespace evert::mse::detail {

namespace {

// The MSE spec's P: the 768-bit MODP prime of RFC 2409 (Oakley group 1).
constexpr const char* kPrimeHex =
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A0879"
    "8E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A63A3621"
    "0000000000090563";
constexpr unsigned long kGenerator = 2;

struct Group {
  BIGNUM* p = nullptr;
  BIGNUM* p_minus_1 = nullptr;
  BN_MONT_CTX* mont = nullptr;
};

// Built once, read-only afterwards (BN_mod_exp_mont takes the Montgomery context as const), so
// any thread may use it; it lives as long as the process.
const Group& group() {
  static const Group g = [] {
    Group r;
    BN_CTX* ctx = BN_CTX_new();
    r.mont = BN_MONT_CTX_new();
    r.p_minus_1 = BN_new();
    if (ctx == nullptr || r.mont == nullptr || r.p_minus_1 == nullptr ||
        BN_hex2bn(&r.p, kPrimeHex) == 0 || BN_MONT_CTX_set(r.mont, r.p, ctx) != 1 ||
        BN_copy(r.p_minus_1, r.p) == nullptr || BN_sub_word(r.p_minus_1, 1) != 1) {
      throw std::bad_alloc();
    }
    BN_CTX_free(ctx);
    return r;
  }();
  return g;
}

struct CtxFree {
  void operator()(BN_CTX* c) const { BN_CTX_free(c); }
};

// Scratch numbers for the exponentiations: BN_CTX keeps its BIGNUMs between calls.
BN_CTX* thread_ctx() {
  thread_local const std::unique_ptr<BN_CTX, CtxFree> ctx(BN_CTX_new());
  if (ctx == nullptr) throw std::bad_alloc();
  return ctx.get();
}

// Frames BN_CTX_start/BN_CTX_end and wipes the numbers taken (they hold key material).
class Frame {
 public:
  explicit Frame(BN_CTX* ctx) : ctx_(ctx) { BN_CTX_start(ctx_); }
  ~Frame() {
    for (int i = 0; i < n_; ++i)
      BN_clear(taken_[i]);
    BN_CTX_end(ctx_);
  }
  Frame(const Frame&) = delete;
  Frame& operator=(const Frame&) = delete;
  BIGNUM* get() {
    BIGNUM* b = BN_CTX_get(ctx_);
    if (b == nullptr) throw std::bad_alloc();
    taken_[n_++] = b;
    return b;
  }

 private:
  BN_CTX* ctx_;
  BIGNUM* taken_[3] = {};
  int n_ = 0;
};

Key96 export_key(const BIGNUM* n) {
  Key96 out{};
  BN_bn2binpad(n, out.data(), static_cast<int>(out.size()));
  return out;
}

}  // namespace

Key96 public_key(const PrivateKey& x) {
  const Group& g = group();
  BN_CTX* ctx = thread_ctx();
  Frame f(ctx);
  BIGNUM* bx = f.get();
  BIGNUM* y = f.get();
  if (BN_bin2bn(x.data(), static_cast<int>(x.size()), bx) == nullptr ||
      BN_mod_exp_mont_word(y, kGenerator, bx, g.p, ctx, g.mont) != 1) {
    throw std::bad_alloc();
  }
  return export_key(y);
}

std::optional<Key96> shared_secret(const PrivateKey& x, const Key96& peer) {
  const Group& g = group();
  BN_CTX* ctx = thread_ctx();
  Frame f(ctx);
  BIGNUM* y = f.get();
  BIGNUM* bx = f.get();
  BIGNUM* s = f.get();
  if (BN_bin2bn(peer.data(), static_cast<int>(peer.size()), y) == nullptr ||
      BN_bin2bn(x.data(), static_cast<int>(x.size()), bx) == nullptr) {
    throw std::bad_alloc();
  }
  if (BN_cmp(y, BN_value_one()) <= 0 || BN_cmp(y, g.p_minus_1) >= 0) return std::nullopt;
  if (BN_mod_exp_mont(s, y, bx, g.p, ctx, g.mont) != 1) throw std::bad_alloc();
  return export_key(s);
}

Hash20 sha1(std::initializer_list<std::string_view> parts) {
  thread_local Sha1 h;
  for (std::string_view p : parts)
    h.update(p);
  return h.final().bytes;
}

}  // namespace evert::mse::detail
