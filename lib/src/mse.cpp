// The MSE handshake's two state machines. Each feed() walks the states while bytes last; a state
// reads one field into buf_ (fill), scans for a synchronisation point (find_sync) or decrypts a
// pad away (skip_pad). Nothing longer than Ya is ever held, IA apart.
#include "evert/mse.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cassert>
#include <cstdio>
#include <cstring>
#include <utility>

#include "evert/big_endian.h"
#include "mse_dh.h"

namespace evert::mse {

using detail::sha1;
using detail::view;

namespace {

constexpr size_t kMaxIa = 0xffff;  // len(IA) is 2 bytes
// VC, crypto_provide or crypto_select, len(PadC) or len(PadD).
constexpr size_t kCryptoHead = 8 + 4 + 2;

bool os_random(uint8_t* data, size_t n) {
  return RAND_bytes(data, static_cast<int>(n)) == 1;
}

uint16_t load16(const char* p) {
  return static_cast<uint16_t>(static_cast<uint8_t>(p[0]) << 8 | static_cast<uint8_t>(p[1]));
}

void append16(std::string& out, size_t v) {
  out += static_cast<char>(v >> 8);
  out += static_cast<char>(v & 0xff);
}

std::string hex32(uint32_t v) {
  char s[16];
  std::snprintf(s, sizeof(s), "0x%x", v);
  return s;
}

// VC, the method, len(pad), pad (zeros): the encrypted head of steps 3 and 4.
void append_crypto_head(std::string& out, uint32_t method, uint16_t pad) {
  out.append(8, '\0');
  be::append32(out, method);
  append16(out, pad);
  out.append(pad, '\0');
}

Hash20 xor20(const Hash20& a, const Hash20& b) {
  Hash20 r;
  for (size_t i = 0; i < r.size(); ++i)
    r[i] = static_cast<uint8_t>(a[i] ^ b[i]);
  return r;
}

}  // namespace

Hash20 req2_hash(const Hash20& skey) {
  return sha1({"req2", view(skey)});
}

// ---- Handshake ------------------------------------------------------------------------------

Handshake::Handshake(Options options) : options_(std::move(options)) {
  if (!options_.random) options_.random = os_random;
}

Handshake::~Handshake() {
  OPENSSL_cleanse(private_key_.data(), private_key_.size());
  OPENSSL_cleanse(secret_.data(), secret_.size());
}

bool Handshake::fill(std::string_view& in, size_t n) {
  const size_t take = std::min(n - buf_.size(), in.size());
  buf_.append(in.substr(0, take));
  in.remove_prefix(take);
  return buf_.size() == n;
}

bool Handshake::find_sync(std::string_view& in, std::span<const uint8_t> needle, size_t window,
                          const char* what) {
  // A byte at a time through a window of the needle's size, so nothing past the needle is
  // consumed and at most 20 bytes are held, whatever the pad.
  while (!in.empty()) {
    if (buf_.size() == needle.size()) buf_.erase(0, 1);
    buf_ += in.front();
    in.remove_prefix(1);
    ++scanned_;
    if (buf_.size() == needle.size() &&
        std::memcmp(buf_.data(), needle.data(), needle.size()) == 0) {
      buf_.clear();
      return true;
    }
    if (scanned_ == window) {
      return fail(std::string("no ") + what + " within " + std::to_string(window) +
                  " bytes after the public key");
    }
  }
  return false;
}

bool Handshake::skip_pad(std::string_view& in) {
  // The pad is decrypted only to keep the keystream in step; its content means nothing.
  char scratch[256];
  while (pad_len_ > 0 && !in.empty()) {
    const size_t n = std::min({in.size(), size_t{pad_len_}, sizeof(scratch)});
    std::memcpy(scratch, in.data(), n);
    decryptor_->apply(scratch, n);
    in.remove_prefix(n);
    pad_len_ = static_cast<uint16_t>(pad_len_ - n);
  }
  return pad_len_ == 0;
}

bool Handshake::fail(std::string message) {
  error_ = "MSE: " + std::move(message);
  step_ = Step::kError;
  buf_.clear();
  payload_.clear();
  encryptor_.reset();
  decryptor_.reset();
  return false;
}

bool Handshake::new_private_key() {
  return options_.random(private_key_.data(), private_key_.size()) || fail("no randomness");
}

bool Handshake::put_public_key(std::string& out) {
  uint16_t pad = 0;
  if (options_.dh_pad) {
    pad = std::min<uint16_t>(*options_.dh_pad, kMaxPad);
  } else {
    uint8_t r[2];
    if (!options_.random(r, sizeof(r))) return fail("no randomness");
    pad = static_cast<uint16_t>((r[0] << 8 | r[1]) % (kMaxPad + 1));
  }
  out.append(view(detail::public_key(private_key_)));
  const size_t at = out.size();
  out.resize(at + pad);
  if (!options_.random(reinterpret_cast<uint8_t*>(out.data() + at), pad)) {
    out.resize(at - kPublicKeySize);
    return fail("no randomness");
  }
  return true;
}

bool Handshake::compute_secret() {
  detail::Key96 peer;
  std::memcpy(peer.data(), buf_.data(), peer.size());
  buf_.clear();
  const auto s = detail::shared_secret(private_key_, peer);
  if (!s) return fail("the peer's public key is not in [2, P-2]");
  secret_ = *s;
  return true;
}

void Handshake::make_ciphers(const Hash20& skey, bool initiator) {
  Hash20 key_a = sha1({"keyA", view(secret_), view(skey)});
  Hash20 key_b = sha1({"keyB", view(secret_), view(skey)});
  OPENSSL_cleanse(secret_.data(), secret_.size());
  encryptor_ = std::make_unique<Rc4>(initiator ? key_a : key_b);
  decryptor_ = std::make_unique<Rc4>(initiator ? key_b : key_a);
  OPENSSL_cleanse(key_a.data(), key_a.size());
  OPENSSL_cleanse(key_b.data(), key_b.size());
}

void Handshake::finish(std::string_view rest) {
  step_ = Step::kDone;
  buf_.clear();
  buf_.shrink_to_fit();
  const size_t at = payload_.size();
  payload_.append(rest);
  if (selected_ == kRc4) {
    decryptor_->apply(payload_.data() + at, rest.size());
  } else {
    encryptor_.reset();
    decryptor_.reset();
  }
}

// ---- Responder ------------------------------------------------------------------------------

Responder::Responder(uint32_t allowed, bool prefer_rc4, FindSkey find_skey, Options options)
    : Handshake(std::move(options)),
      find_skey_(std::move(find_skey)),
      allowed_(allowed & (kPlaintext | kRc4)),
      prefer_rc4_(prefer_rc4) {
  assert(allowed_ != 0 && find_skey_);
}

Step Responder::feed(std::string_view in, std::string& out) {
  bool more = true;
  while (more && step_ == Step::kNeedMore) {
    switch (state_) {
      case State::kYa:
        more = read_ya(in, out);
        break;
      case State::kSync:
        more = find_sync(in, req1_, kMaxPad + req1_.size(), "HASH('req1', S)");
        if (more) state_ = State::kSkey;
        break;
      case State::kSkey:
        more = read_skey(in);
        break;
      case State::kProvide:
        more = read_provide(in, out);
        break;
      case State::kPadC:
        more = skip_pad(in);
        if (more) state_ = State::kIaLen;
        break;
      case State::kIaLen:
        more = read_ia_len(in);
        break;
      case State::kIa:
        more = read_ia(in);
        break;
    }
  }
  return step_;
}

bool Responder::read_ya(std::string_view& in, std::string& out) {
  if (!fill(in, kPublicKeySize)) return false;
  // Yb goes out at once (after a check of Ya): the initiator can send nothing more before it
  // has it. Transmission counts everything after Ya that came before our Yb as PadA, as we do.
  const bool ok = new_private_key() && compute_secret() && put_public_key(out);
  OPENSSL_cleanse(private_key_.data(), private_key_.size());
  if (!ok) return false;
  req1_ = sha1({"req1", view(secret_)});
  state_ = State::kSync;
  return true;
}

bool Responder::read_skey(std::string_view& in) {
  if (!fill(in, req1_.size())) return false;
  Hash20 sent;
  std::memcpy(sent.data(), buf_.data(), sent.size());
  buf_.clear();
  const auto skey =
      find_skey_ ? find_skey_(xor20(sent, sha1({"req3", view(secret_)}))) : std::optional<Hash20>();
  if (!skey) return fail("the peer asks for a torrent we do not serve (unknown SKEY)");
  skey_ = *skey;
  make_ciphers(skey_, /*initiator=*/false);
  state_ = State::kProvide;
  return true;
}

bool Responder::read_provide(std::string_view& in, std::string& out) {
  if (!fill(in, kCryptoHead)) return false;
  decryptor_->apply(buf_.data(), buf_.size());
  if (std::any_of(buf_.begin(), buf_.begin() + 8, [](char c) { return c != 0; })) {
    return fail("wrong verification constant (not the same S and SKEY)");
  }
  const uint32_t provide = be::load32(buf_.data() + 8);
  pad_len_ = load16(buf_.data() + 12);
  buf_.clear();
  if (pad_len_ > kMaxPad) return fail("len(PadC) " + std::to_string(pad_len_) + " over 512");
  const uint32_t common = provide & allowed_;
  if (common == 0) {
    return fail("no method in common: the peer provides " + hex32(provide) + ", we allow " +
                hex32(allowed_));
  }
  if (common == (kPlaintext | kRc4)) {
    selected_ = prefer_rc4_ ? kRc4 : kPlaintext;
  } else {
    selected_ = common;
  }
  // Step 4 goes out now rather than after IA (as libtorrent does; Transmission waits): nothing
  // later can fail, and the initiator may start on its side sooner.
  const uint16_t pad = std::min<uint16_t>(options_.crypto_pad, kMaxPad);
  const size_t at = out.size();
  append_crypto_head(out, selected_, pad);
  encryptor_->apply(out.data() + at, out.size() - at);
  state_ = State::kPadC;
  return true;
}

bool Responder::read_ia_len(std::string_view& in) {
  if (!fill(in, 2)) return false;
  decryptor_->apply(buf_.data(), buf_.size());
  ia_len_ = load16(buf_.data());
  buf_.clear();
  // No reserve(ia_len_): a peer that declares 65,535 bytes must send them to make us hold them.
  if (ia_len_ == 0) {
    finish(in);
  } else {
    state_ = State::kIa;
  }
  return true;
}

bool Responder::read_ia(std::string_view& in) {
  // IA is always RC4, whatever was selected; decrypted as it comes so it is never held twice.
  const size_t take = std::min(ia_len_ - payload_.size(), in.size());
  const size_t at = payload_.size();
  payload_.append(in.substr(0, take));
  in.remove_prefix(take);
  decryptor_->apply(payload_.data() + at, take);
  if (payload_.size() < ia_len_) return false;
  finish(in);
  return true;
}

// ---- Initiator ------------------------------------------------------------------------------

Initiator::Initiator(const Hash20& skey, uint32_t provide, std::string ia, Options options)
    : Handshake(std::move(options)), skey_(skey), ia_(std::move(ia)), provide_(provide) {}

Step Initiator::start(std::string& out) {
  if (state_ != State::kStart || step_ != Step::kNeedMore) {
    assert(false && "Initiator::start() called twice");
    return step_;
  }
  if ((provide_ & (kPlaintext | kRc4)) == 0) {
    fail("no method to provide in " + hex32(provide_));
  } else if (ia_.size() > kMaxIa) {
    fail("IA of " + std::to_string(ia_.size()) + " bytes, over 65535");
  } else if (new_private_key() && put_public_key(out)) {
    state_ = State::kYb;
  }
  return step_;
}

Step Initiator::feed(std::string_view in, std::string& out) {
  if (state_ == State::kStart && step_ == Step::kNeedMore) {
    assert(false && "Initiator::feed() before start()");
    fail("feed() before start()");
  }
  bool more = true;
  while (more && step_ == Step::kNeedMore) {
    switch (state_) {
      case State::kStart:
        more = false;
        break;
      case State::kYb:
        more = read_yb(in, out);
        break;
      case State::kSyncVc:
        more = find_sync(in, vc_sync_, kMaxPad + vc_sync_.size(), "ENCRYPT(VC)");
        if (more) state_ = State::kSelect;
        break;
      case State::kSelect:
        more = read_select(in);
        break;
      case State::kPadD:
        more = skip_pad(in);
        if (more) finish(in);
        break;
    }
  }
  return step_;
}

bool Initiator::read_yb(std::string_view& in, std::string& out) {
  if (!fill(in, kPublicKeySize)) return false;
  const bool ok = compute_secret();
  OPENSSL_cleanse(private_key_.data(), private_key_.size());
  if (!ok) return false;
  out.append(view(sha1({"req1", view(secret_)})));
  out.append(view(xor20(req2_hash(skey_), sha1({"req3", view(secret_)}))));
  make_ciphers(skey_, /*initiator=*/true);
  const size_t at = out.size();
  append_crypto_head(out, provide_ & (kPlaintext | kRc4),
                     std::min<uint16_t>(options_.crypto_pad, kMaxPad));
  append16(out, ia_.size());
  out += ia_;
  encryptor_->apply(out.data() + at, out.size() - at);
  std::string().swap(ia_);
  // B's step 4 starts with ENCRYPT(VC): the first 8 bytes of its keystream, which decrypting
  // 8 zero bytes both yields and consumes.
  decryptor_->apply(vc_sync_.data(), vc_sync_.size());
  state_ = State::kSyncVc;
  return true;
}

bool Initiator::read_select(std::string_view& in) {
  if (!fill(in, 4 + 2)) return false;
  decryptor_->apply(buf_.data(), buf_.size());
  const uint32_t select = be::load32(buf_.data());
  pad_len_ = load16(buf_.data() + 4);
  buf_.clear();
  // Exactly one method, and one we provided (libtorrent 2.0.8 would take 0x03 as plaintext).
  if ((select != kPlaintext && select != kRc4) || (select & provide_) == 0) {
    return fail("the peer selected " + hex32(select) + ", we provided " + hex32(provide_));
  }
  if (pad_len_ > kMaxPad) return fail("len(PadD) " + std::to_string(pad_len_) + " over 512");
  selected_ = select;
  state_ = State::kPadD;
  return true;
}

}  // namespace evert::mse
