// Message Stream Encryption (MSE, also called PE), the obfuscation handshake BitTorrent clients
// wrap around the peer wire protocol, as I/O-free state machines (STYLE.md §5): the caller feeds
// received bytes in and sends what comes out. The spec is the Vuze wiki's "Message Stream
// Encryption" page; libtorrent and Transmission are the implementations to interoperate with.
//
//   1 A->B: Ya, PadA
//   2 B->A: Yb, PadB
//   3 A->B: HASH('req1', S), HASH('req2', SKEY) xor HASH('req3', S),
//           ENCRYPT(VC, crypto_provide, len(PadC), PadC, len(IA)), ENCRYPT(IA)
//   4 B->A: ENCRYPT(VC, crypto_select, len(PadD), PadD), ENCRYPT2(payload)
//   5 both: ENCRYPT2(payload)
//
// Y = 2^X mod P over the spec's 768-bit prime with 160-bit private keys X; S is the shared
// secret; Y and S are 96 bytes big-endian. HASH is SHA-1; SKEY is the torrent's info-hash (a v2
// torrent's SHA-256 hash truncated to 20 bytes). ENCRYPT is RC4 keyed with SHA1('keyA', S, SKEY)
// from A to B and SHA1('keyB', S, SKEY) from B to A, its first 1024 bytes dropped; VC is 8 zero
// bytes; IA is A's first payload bytes (its BitTorrent handshake). ENCRYPT2 is the method B
// selected: the same RC4 streams, or plaintext after step 4's fields (IA is RC4 either way).
//
// Threads: each object belongs to one connection and is used by one thread at a time. The
// process-wide state behind them (the prime, OpenSSL's RC4 in a private library context) is set
// up once, on first use, safely from any thread.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

struct evp_cipher_ctx_st;

namespace evert::mse {

// crypto_provide / crypto_select bits.
inline constexpr uint32_t kPlaintext = 0x01;
inline constexpr uint32_t kRc4 = 0x02;

inline constexpr size_t kPublicKeySize = 96;  // Ya, Yb (and S)
inline constexpr size_t kMaxPad = 512;        // PadA, PadB, PadC, PadD
inline constexpr size_t kRc4Drop = 1024;      // keystream bytes discarded by both sides

using Hash20 = std::array<uint8_t, 20>;

// SHA1('req2', skey): what an initiator's step 3 carries (xored with HASH('req3', S)) to name
// its torrent. A responder's caller keeps an index from this to the info-hash for FindSkey.
Hash20 req2_hash(const Hash20& skey);

// RC4 for one direction of a connection. apply() encrypts or decrypts in place (the same
// operation), continuing the keystream where the last call stopped.
//
// Backends: OpenSSL 3's RC4 lives in its "legacy" provider, which we load into a private library
// context (the default context, which the rest of the program uses, keeps only the default
// provider); when that provider cannot be loaded, a small implementation of our own takes over.
// bench/mse_speed: OpenSSL's ~690 MB/s and 1,455 heap bytes per cipher; ours ~300 MB/s and 303.
class Rc4 {
 public:
  enum class Backend : uint8_t { kOpenssl, kBuiltin };

  // RC4 keyed with `key` (1 to 256 bytes; MSE's keys are 20), its first `drop` keystream bytes
  // discarded. `backend`: the one to use when available; by default OpenSSL's when it loads.
  // Falls back to the builtin backend when OpenSSL's is absent or fails to initialise.
  explicit Rc4(std::span<const uint8_t> key, size_t drop = kRc4Drop,
               std::optional<Backend> backend = std::nullopt);
  ~Rc4();
  Rc4(const Rc4&) = delete;
  Rc4& operator=(const Rc4&) = delete;

  void apply(char* data, size_t n);
  void apply(uint8_t* data, size_t n) { apply(reinterpret_cast<char*>(data), n); }
  [[nodiscard]] Backend backend() const {
    return evp_ != nullptr ? Backend::kOpenssl : Backend::kBuiltin;
  }

  // Whether OpenSSL's legacy provider and its RC4 could be loaded (tried once per process).
  [[nodiscard]] static bool openssl_available();

 private:
  struct State;  // the builtin backend's permutation and indices
  evp_cipher_ctx_st* evp_ = nullptr;
  std::unique_ptr<State> own_;
};

// Fills `n` bytes at `data` with random bytes; false when no randomness can be had (the
// handshake then fails).
using RandomSource = std::function<bool(uint8_t* data, size_t n)>;

struct Options {
  // Where private keys and pads come from. Empty: OpenSSL's RAND_bytes. Tests pass a fixed
  // source. Each side draws, in order: its 20-byte private key; 2 bytes for the length of its
  // PadA/PadB when `dh_pad` is not set; that pad's bytes.
  RandomSource random;
  // Length of PadA (initiator) or PadB (responder), at most kMaxPad. Unset: random, 0 to 512,
  // as libtorrent and Transmission both do, so the first packets have no fixed size.
  std::optional<uint16_t> dh_pad;
  // Length of PadC (initiator) or PadD (responder), at most kMaxPad; zeros, as the spec asks of
  // padding (it is encrypted). 0 by default, as Transmission sends (libtorrent sends 0 to 512).
  uint16_t crypto_pad = 0;
};

enum class Step : uint8_t {
  kNeedMore,  // feed more of the peer's bytes
  kDone,      // the handshake is over: take the payload and the ciphers
  kError,     // the peer's bytes are not an acceptable MSE handshake: error() says why
};

// What both sides share: the outcome of the handshake.
class Handshake {
 public:
  // Why the handshake failed (after kError); empty otherwise.
  [[nodiscard]] const std::string& error() const { return error_; }
  // After kDone: kPlaintext or kRc4.
  [[nodiscard]] uint32_t selected() const { return selected_; }
  // After kDone: the start of the peer's BitTorrent stream, decrypted: for a responder the
  // initiator's IA (normally its 68-byte BitTorrent handshake) followed by whatever came after
  // it in the bytes fed; for an initiator whatever came after PadD. Moves it out.
  std::string take_payload() { return std::move(payload_); }
  // After kDone: the ciphers for the rest of the connection, what we send and what we receive;
  // both null when plaintext was selected. Each can be taken once.
  std::unique_ptr<Rc4> take_encryptor() { return std::move(encryptor_); }
  std::unique_ptr<Rc4> take_decryptor() { return std::move(decryptor_); }

 protected:
  explicit Handshake(Options options);
  ~Handshake();
  Handshake(const Handshake&) = delete;
  Handshake& operator=(const Handshake&) = delete;

  // Moves bytes from the front of `in` into buf_ until it holds `n`; whether it does.
  bool fill(std::string_view& in, size_t n);
  // Scans `in` a byte at a time for `needle` ending within `window` bytes (the pad, then the
  // needle): true when found (buf_ cleared, `in` just past it); false when `in` ran out first;
  // an error when the window is exhausted.
  bool find_sync(std::string_view& in, std::span<const uint8_t> needle, size_t window,
                 const char* what);
  // Decrypts and drops the next pad_len_ bytes of `in`; whether the pad is over.
  bool skip_pad(std::string_view& in);
  bool fail(std::string message);
  // Draws our private key; false (with the error set) on no randomness.
  bool new_private_key();
  // Appends our public key and its pad; false on no randomness.
  bool put_public_key(std::string& out);
  // S from the peer's public key in buf_; false (with the error set) for a degenerate key.
  bool compute_secret();
  // The RC4 pair from S and SKEY: keyA encrypts A's direction, keyB B's. Wipes S.
  void make_ciphers(const Hash20& skey, bool initiator);
  // kDone: appends `rest` to the payload (decrypted when RC4 was selected).
  void finish(std::string_view rest);

  Options options_;
  std::string buf_;  // the bytes of the field being read
  std::string payload_;
  std::unique_ptr<Rc4> encryptor_;
  std::unique_ptr<Rc4> decryptor_;
  std::string error_;
  std::array<uint8_t, 20> private_key_{};
  std::array<uint8_t, kPublicKeySize> secret_{};
  uint32_t selected_ = 0;
  uint16_t pad_len_ = 0;  // what is left of PadC / PadD
  uint16_t scanned_ = 0;  // bytes find_sync has looked at
  Step step_ = Step::kNeedMore;
};

// The responder: the side that accepted the connection (the everseed).
class Responder : public Handshake {
 public:
  // Given HASH('req2', SKEY) from the peer's step 3 (HASH('req3', S) already xored out),
  // returns the SKEY (info-hash) of a torrent we serve, or nullopt when we serve none such.
  // Called from feed(), on its thread, at most once per handshake.
  using FindSkey = std::function<std::optional<Hash20>(const Hash20& req2)>;

  // `allowed`: the methods we accept (kRc4, or kPlaintext | kRc4, or kPlaintext); other bits
  // are ignored. `prefer_rc4`: which one to select when the peer provides both and we allow
  // both. Preconditions: `allowed` has a known bit and `find_skey` is set (else every
  // handshake fails).
  Responder(uint32_t allowed, bool prefer_rc4, FindSkey find_skey, Options options = {});

  // Feeds bytes received from the peer, in any chunking (byte by byte works), and appends what
  // to send to `out` (Yb and PadB once Ya is in; step 4 once crypto_provide is in). Errors:
  // Ya outside [2, P-2]; no HASH('req1', S) within 512 + 20 bytes after Ya; an unknown SKEY;
  // a wrong VC; no acceptable method provided; len(PadC) over 512. Bounded: holds at most
  // 96 bytes of handshake fields (Ya), plus IA (at most 65,535 bytes, what len(IA) can say).
  // Once it returned kDone or kError it consumes nothing more and returns the same again.
  Step feed(std::string_view in, std::string& out);

  // After kDone: the SKEY find_skey returned.
  [[nodiscard]] const Hash20& skey() const { return skey_; }

 private:
  enum class State : uint8_t { kYa, kSync, kSkey, kProvide, kPadC, kIaLen, kIa };
  bool read_ya(std::string_view& in, std::string& out);
  bool read_skey(std::string_view& in);
  bool read_provide(std::string_view& in, std::string& out);
  bool read_ia_len(std::string_view& in);
  bool read_ia(std::string_view& in);

  FindSkey find_skey_;
  Hash20 skey_{};
  Hash20 req1_{};
  uint32_t allowed_;
  uint16_t ia_len_ = 0;
  bool prefer_rc4_;
  State state_ = State::kYa;
};

// The initiator: the side that opened the connection (a downloader; the tests' counterpart).
class Initiator : public Handshake {
 public:
  // `skey`: the torrent's info-hash. `provide`: the methods we accept (kRc4 and/or kPlaintext).
  // `ia`: the initial payload, sent encrypted in step 3 (our BitTorrent handshake; at most
  // 65,535 bytes). An invalid `provide` or `ia` makes start() fail with an error.
  Initiator(const Hash20& skey, uint32_t provide, std::string ia, Options options = {});

  // Appends Ya and PadA to `out`. Call once, before feed().
  Step start(std::string& out);
  // Feeds bytes received from the peer, in any chunking, and appends what to send to `out`
  // (step 3, once Yb is in). Errors: Yb outside [2, P-2]; no ENCRYPT(VC) within 512 + 8 bytes
  // after Yb; a crypto_select that is not exactly one of the methods we provided; len(PadD)
  // over 512. Once it returned kDone or kError it consumes nothing more and returns the same.
  Step feed(std::string_view in, std::string& out);

 private:
  enum class State : uint8_t { kStart, kYb, kSyncVc, kSelect, kPadD };
  bool read_yb(std::string_view& in, std::string& out);
  bool read_select(std::string_view& in);

  Hash20 skey_;
  std::string ia_;
  std::array<uint8_t, 8> vc_sync_{};  // ENCRYPT(VC) as B sends it: where PadB ends
  uint32_t provide_;
  State state_ = State::kStart;
};

}  // namespace evert::mse
