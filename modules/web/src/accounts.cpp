#include "accounts.h"

#include <sodium.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>

#include "evert/bencode.h"
#include "evert/hash.h"

namespace evert::web {
namespace {

using Code = AccountError::Code;

constexpr const char* kUsers = "users";
constexpr const char* kSessions = "sessions";
constexpr const char* kTokens = "tokens";
constexpr int64_t kRowFormat = 1;
constexpr size_t kSecretBytes = 32;  // of session ids and tokens: 256 random bits
constexpr std::string_view kTokenPrefix = "evt_";
constexpr size_t kTokenIdBytes = 8;
constexpr int64_t kLastUsedStep = 60;  // seconds: a token's use is written at most this often
constexpr auto kSweepInterval = std::chrono::hours(1);
// The most a stored hash may make each login cost: libsodium's "moderate" memory (256 MiB, in
// KiB as the hash string counts it) and passes. Hashes made by evertctl use "interactive"
// (64 MiB, 2 passes); a costlier one would let whoever sets it tie up the workers.
constexpr unsigned long long kMaxHashKiB = 262144;
constexpr unsigned long long kMaxHashPasses = 10;
constexpr int kB64 = sodium_base64_VARIANT_URLSAFE_NO_PADDING;

AccountError err(Code code, std::string message) {
  return AccountError{code, std::move(message)};
}

const unsigned char* bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

void init_sodium() {
  if (sodium_init() < 0) std::abort();  // idempotent and thread-safe
}

using detail::shown;

std::string random_bytes(size_t n) {
  std::string out(n, '\0');
  randombytes_buf(out.data(), out.size());
  return out;
}

std::string b64url(std::string_view raw) {
  std::string out(sodium_base64_ENCODED_LEN(raw.size(), kB64), '\0');
  sodium_bin2base64(out.data(), out.size(), bytes(raw), raw.size(), kB64);
  out.resize(out.size() - 1);  // the terminating NUL
  return out;
}

// Exactly `size` bytes written as unpadded base64url, or nullopt.
std::optional<std::string> from_b64url(std::string_view text, size_t size) {
  if (text.size() != sodium_base64_ENCODED_LEN(size, kB64) - 1) return std::nullopt;
  std::string out(size, '\0');
  size_t len = 0;
  const char* end = nullptr;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), text.data(),
                        text.size(), nullptr, &len, &end, kB64) != 0 ||
      len != size || end != text.data() + text.size()) {
    return std::nullopt;
  }
  return out;
}

// BLAKE2b-256: how session ids and tokens are keyed in the store.
std::string digest(std::string_view data, std::string_view key = {}) {
  std::string out(crypto_generichash_BYTES, '\0');
  crypto_generichash(reinterpret_cast<unsigned char*>(out.data()), out.size(), bytes(data),
                     data.size(), key.empty() ? nullptr : bytes(key), key.size());
  return out;
}

// A session's CSRF token: keyed by its id, so it needs no storage and reveals nothing of it.
std::string csrf_of(std::string_view raw_id) {
  return b64url(digest("evert csrf v1", raw_id));
}

// A crypto_pwhash_str string (argon2id, "interactive" limits), or "" when hashing failed (it
// needs 64 MiB). Blocking (~70 ms): workers only.
std::string hash_password(std::string_view password) {
  char out[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str(out, password.data(), password.size(), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                        crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0) {
    return {};
  }
  return out;
}

// The hash a login for an unknown user is checked against, so that it costs the same time as
// one for a known user. Made once, on a worker (the constructor warms it up).
const std::string& dummy_hash() {
  static const std::string h = [] {
    init_sodium();
    return hash_password(random_bytes(16));
  }();
  return h;
}

// Wipes a copy of a password before it is freed (best effort: std::string may have moved it).
void wipe(std::string& s) {
  sodium_memzero(s.data(), s.size());
}

int64_t int_of(const bencode::Value& d, std::string_view key) {
  const bencode::Value* v = d.find(key);
  return v != nullptr && v->is_int() ? v->as_int() : 0;
}
std::string str_of(const bencode::Value& d, std::string_view key) {
  const bencode::Value* v = d.find(key);
  return v != nullptr && v->is_string() ? v->as_string() : std::string();
}

struct SessionRow {
  std::string user;
  int64_t created = 0;
  int64_t expires = 0;
};

std::string encode_session(const SessionRow& s) {
  bencode::Dict d;
  d["created"] = bencode::Value(s.created);
  d["expires"] = bencode::Value(s.expires);
  d["format"] = bencode::Value(kRowFormat);
  d["user"] = bencode::Value(s.user);
  return bencode::encode(bencode::Value(std::move(d)));
}

std::optional<SessionRow> decode_session(const std::string& value) {
  auto d = bencode::decode(value);
  if (!d || !d->is_dict()) return std::nullopt;
  SessionRow s{str_of(*d, "user"), int_of(*d, "created"), int_of(*d, "expires")};
  if (s.user.empty()) return std::nullopt;
  return s;
}

struct TokenRow {
  std::string user;
  std::string label;
  int64_t created = 0;
  int64_t used = 0;
};

std::string encode_token(const TokenRow& t) {
  bencode::Dict d;
  d["created"] = bencode::Value(t.created);
  d["format"] = bencode::Value(kRowFormat);
  d["label"] = bencode::Value(t.label);
  d["used"] = bencode::Value(t.used);
  d["user"] = bencode::Value(t.user);
  return bencode::encode(bencode::Value(std::move(d)));
}

std::optional<TokenRow> decode_token(const std::string& value) {
  auto d = bencode::decode(value);
  if (!d || !d->is_dict()) return std::nullopt;
  TokenRow t{str_of(*d, "user"), str_of(*d, "label"), int_of(*d, "created"), int_of(*d, "used")};
  if (t.user.empty()) return std::nullopt;
  return t;
}

TokenInfo info_of(const std::string& key, const TokenRow& t) {
  return {to_hex(std::string_view(key).substr(0, kTokenIdBytes)), t.user, t.label, t.created,
          t.used};
}

std::string no_user(std::string_view name) {
  return "no user named '" + shown(name) + "'";
}

}  // namespace

// --- Rules ---

std::string check_password_hash(std::string_view hash) {
  constexpr const char* kForm =
      "expected a libsodium crypto_pwhash_str string for argon2id "
      "($argon2id$v=19$m=65536,t=2,p=1$SALT$HASH), as evertctl makes";
  if (hash.size() >= crypto_pwhash_STRBYTES || hash.find('\0') != std::string_view::npos ||
      !hash.starts_with("$argon2id$")) {
    return kForm;
  }
  const std::string h(hash);
  if (crypto_pwhash_str_needs_rehash(h.c_str(), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                                     crypto_pwhash_MEMLIMIT_INTERACTIVE) == -1) {
    return std::string("not a valid password hash: ") + kForm;
  }
  unsigned long long m = 0, t = 0, p = 0;
  const size_t at = h.find("$m=");
  if (at == std::string::npos ||
      std::sscanf(h.c_str() + at, "$m=%llu,t=%llu,p=%llu", &m, &t, &p) != 3) {
    return std::string("not a valid password hash: ") + kForm;
  }
  if (m > kMaxHashKiB || t > kMaxHashPasses || p != 1) {
    return "the hash's cost (m=" + std::to_string(m) + ",t=" + std::to_string(t) +
           ",p=" + std::to_string(p) + ") is more than evertd pays at each login (m at most " +
           std::to_string(kMaxHashKiB) + ", t at most " + std::to_string(kMaxHashPasses) + ", p=1)";
  }
  return {};
}

std::string check_token_label(std::string_view label) {
  if (label.size() > kMaxTokenLabel) {
    return "a token label has at most " + std::to_string(kMaxTokenLabel) + " bytes";
  }
  for (const char c : label) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) return "a token label has no control characters";
  }
  return {};
}

std::string AccountError::code_name() const {
  switch (code) {
    case Code::kBadName:
      return "bad_name";
    case Code::kExists:
      return "exists";
    case Code::kUnknownUser:
      return "unknown_user";
    case Code::kBadHash:
      return "bad_hash";
    case Code::kWeakPassword:
      return "weak_password";
    case Code::kBadLabel:
      return "bad_label";
    case Code::kTooMany:
      return "too_many";
    case Code::kBadTokenId:
      return "bad_token_id";
    case Code::kUnknownToken:
      return "unknown_token";
    case Code::kBusy:
      return "busy";
    case Code::kInternal:
      break;
  }
  return "internal";
}

// --- Accounts ---

struct Accounts::Row {
  User user;
  std::string hash;
};

namespace {

LoginLimiter::Options limits_of(const Accounts::Options& o) {
  LoginLimiter::Options l;
  l.failures = o.login_failures;
  l.refill_seconds = o.login_refill_seconds;
  return l;
}

}  // namespace

Accounts::Accounts(daemon::Store& store, daemon::EventLoop& loop, daemon::WorkerPool& workers,
                   Options options, Clock clock)
    : store_(store),
      loop_(loop),
      workers_(workers),
      options_(options),
      clock_(std::move(clock)),
      limiter_(limits_of(options)),
      sweep_timer_(loop, [this] { sweep_sessions(); }) {
  init_sodium();
  if (!clock_) clock_ = [] { return static_cast<int64_t>(std::time(nullptr)); };
  workers_.submit([] { (void)dummy_hash(); });
  sweep_sessions();
  sweep_timer_.start(std::chrono::duration_cast<std::chrono::milliseconds>(kSweepInterval), true);
}

Accounts::~Accounts() = default;

void Accounts::set_options(const Options& options) {
  options_ = options;
  limiter_.set_options(limits_of(options));
}

void Accounts::post(std::function<void()> fn) {
  std::weak_ptr<bool> alive = alive_;
  loop_.post([alive, fn = std::move(fn)] {
    if (!alive.expired()) fn();
  });
}

void Accounts::run_hashing(std::function<void()> work, std::function<void()> then) {
  ++hashes_in_flight_;
  std::weak_ptr<bool> alive = alive_;
  // The worker touches only what it captured: the loop outlives the pool's threads, this object
  // maybe not.
  workers_.submit([this, alive, loop = &loop_, work = std::move(work), then = std::move(then)] {
    work();
    loop->post([this, alive, then] {
      if (alive.expired()) return;
      --hashes_in_flight_;
      then();
    });
  });
}

std::optional<Accounts::Row> Accounts::load_user(std::string_view name) const {
  if (!check_user_name(name).empty()) return std::nullopt;
  auto v = store_.get(kUsers, std::string(name));
  if (!v) return std::nullopt;
  auto d = bencode::decode(*v);
  if (!d || !d->is_dict()) return std::nullopt;
  Row r{User{std::string(name), int_of(*d, "admin") != 0, int_of(*d, "created")},
        str_of(*d, "hash")};
  if (r.hash.empty()) return std::nullopt;
  return r;
}

void Accounts::store_user(const Row& r) {
  bencode::Dict d;
  d["admin"] = bencode::Value(int64_t{r.user.admin ? 1 : 0});
  d["created"] = bencode::Value(r.user.created);
  d["format"] = bencode::Value(kRowFormat);
  d["hash"] = bencode::Value(r.hash);
  store_.put(kUsers, r.user.name, bencode::encode(bencode::Value(std::move(d))));
}

AccountResult<User> Accounts::add_user(std::string_view name, std::string_view password_hash,
                                       bool admin) {
  if (std::string why = check_user_name(name); !why.empty()) return err(Code::kBadName, why);
  if (std::string why = check_password_hash(password_hash); !why.empty()) {
    return err(Code::kBadHash, why);
  }
  if (load_user(name)) return err(Code::kExists, "user '" + std::string(name) + "' exists");
  Row r{User{std::string(name), admin, clock_()}, std::string(password_hash)};
  store_user(r);
  return r.user;
}

AccountResult<Ok> Accounts::add_user_async(std::string_view name, std::string_view password,
                                           bool admin,
                                           std::function<void(AccountResult<User>)> done) {
  if (std::string why = check_user_name(name); !why.empty()) return err(Code::kBadName, why);
  if (std::string why = check_password(password); !why.empty()) {
    return err(Code::kWeakPassword, why);
  }
  if (load_user(name)) return err(Code::kExists, "user '" + std::string(name) + "' exists");
  if (hashing_busy()) return err(Code::kBusy, "too many passwords being hashed; try again");
  auto hashed = std::make_shared<std::string>();
  run_hashing(
      [hashed, pw = std::string(password)]() mutable {
        *hashed = hash_password(pw);
        wipe(pw);
      },
      [this, hashed, n = std::string(name), admin, done = std::move(done)] {
        if (hashed->empty()) {
          done(err(Code::kInternal, "cannot hash the password (out of memory?)"));
          return;
        }
        done(add_user(n, *hashed, admin));
      });
  return Ok{};
}

AccountResult<Ended> Accounts::delete_user(std::string_view name) {
  if (!load_user(name)) return err(Code::kUnknownUser, no_user(name));
  Ended e;
  e.sessions = end_sessions_of(name, {});
  std::vector<std::string> keys;
  store_.for_each(kTokens, "", [&](const std::string& key, const std::string& value) {
    auto t = decode_token(value);
    if (t && t->user == name) keys.push_back(key);
  });
  for (auto& k : keys)
    store_.del(kTokens, std::move(k));
  e.tokens = keys.size();
  store_.del(kUsers, std::string(name));
  return e;
}

AccountResult<Ended> Accounts::set_password_hash(std::string_view name,
                                                 std::string_view password_hash) {
  auto row = load_user(name);
  if (!row) return err(Code::kUnknownUser, no_user(name));
  if (std::string why = check_password_hash(password_hash); !why.empty()) {
    return err(Code::kBadHash, why);
  }
  row->hash = std::string(password_hash);
  store_user(*row);
  return Ended{end_sessions_of(name, {}), 0};
}

AccountResult<Ok> Accounts::set_password_async(std::string_view name, std::string_view password,
                                               std::string_view keep_session,
                                               std::function<void(AccountResult<Ended>)> done) {
  if (!load_user(name)) return err(Code::kUnknownUser, no_user(name));
  if (std::string why = check_password(password); !why.empty()) {
    return err(Code::kWeakPassword, why);
  }
  if (hashing_busy()) return err(Code::kBusy, "too many passwords being hashed; try again");
  std::string keep_key;
  if (auto raw = from_b64url(keep_session, kSecretBytes)) keep_key = digest(*raw);
  auto hashed = std::make_shared<std::string>();
  run_hashing(
      [hashed, pw = std::string(password)]() mutable {
        *hashed = hash_password(pw);
        wipe(pw);
      },
      [this, hashed, n = std::string(name), keep_key, done = std::move(done)] {
        if (hashed->empty()) {
          done(err(Code::kInternal, "cannot hash the password (out of memory?)"));
          return;
        }
        auto row = load_user(n);
        if (!row) {
          done(err(Code::kUnknownUser, no_user(n)));
          return;
        }
        row->hash = *hashed;
        store_user(*row);
        done(Ended{end_sessions_of(n, keep_key), 0});
      });
  return Ok{};
}

AccountResult<User> Accounts::set_admin(std::string_view name, bool admin) {
  auto row = load_user(name);
  if (!row) return err(Code::kUnknownUser, no_user(name));
  row->user.admin = admin;
  store_user(*row);
  return row->user;
}

std::vector<User> Accounts::users() const {
  std::vector<std::string> names;
  store_.for_each(kUsers, "",
                  [&](const std::string& key, const std::string&) { names.push_back(key); });
  std::vector<User> out;
  for (const auto& n : names) {
    if (auto r = load_user(n)) out.push_back(std::move(r->user));
  }
  return out;
}

std::optional<User> Accounts::user(std::string_view name) const {
  auto r = load_user(name);
  if (!r) return std::nullopt;
  return r->user;
}

// --- Passwords and login ---

bool Accounts::verify_async(std::string_view name, std::string_view password,
                            std::function<void(std::optional<User>)> done) {
  if (hashing_busy()) return false;
  const std::optional<Row> row = load_user(name);
  struct Verdict {
    bool right = false;
    std::string rehash;  // the password hashed with the current parameters, when it was right
  };
  auto verdict = std::make_shared<Verdict>();
  const std::string hash = row ? row->hash : std::string();
  // A longer password than any accepted is checked all the same (as its first bytes) and fails:
  // the answer takes the same time.
  run_hashing(
      [verdict, hash, known = row.has_value(),
       pw = std::string(password.substr(0, kMaxPassword + 1))]() mutable {
        const std::string& h = known ? hash : dummy_hash();
        const bool right = crypto_pwhash_str_verify(h.c_str(), pw.data(), pw.size()) == 0;
        verdict->right = known && right && pw.size() <= kMaxPassword;
        if (verdict->right &&
            crypto_pwhash_str_needs_rehash(h.c_str(), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                                           crypto_pwhash_MEMLIMIT_INTERACTIVE) == 1) {
          verdict->rehash = hash_password(pw);
        }
        wipe(pw);
      },
      [this, verdict, hash, n = std::string(name), done = std::move(done)] {
        if (!verdict->right) {
          done(std::nullopt);
          return;
        }
        auto now = load_user(n);
        if (!now || now->hash != hash) {  // deleted, or given another password meanwhile
          done(std::nullopt);
          return;
        }
        if (!verdict->rehash.empty()) {
          now->hash = verdict->rehash;
          store_user(*now);
        }
        done(now->user);
      });
  return true;
}

void Accounts::login_async(std::string_view address, std::string_view name,
                           std::string_view password, std::function<void(LoginResult)> done) {
  LoginResult r;
  if (const int wait = limiter_.retry_after_seconds(address); wait > 0) {
    r.outcome = LoginResult::Outcome::kLimited;
    r.retry_after = wait;
    post([r, done = std::move(done)] { done(r); });
    return;
  }
  // Charged now, given back when the password was right (login_limiter.h).
  limiter_.record_failure(address);
  const bool started = verify_async(
      name, password, [this, addr = std::string(address), done](std::optional<User> u) {
        LoginResult res;
        if (!u) {
          done(res);
          return;
        }
        limiter_.record_success(addr);
        auto s = create_session(u->name);
        if (!s) {
          done(res);
          return;
        }
        res.outcome = LoginResult::Outcome::kOk;
        res.user = std::move(u);
        res.session = std::move(s.value());
        done(res);
      });
  if (!started) {
    limiter_.record_success(address);  // not tried: nothing to charge
    r.outcome = LoginResult::Outcome::kBusy;
    post([r, done = std::move(done)] { done(r); });
  }
}

// --- Sessions ---

AccountResult<NewSession> Accounts::create_session(std::string_view name) {
  if (!load_user(name)) return err(Code::kUnknownUser, no_user(name));
  const int64_t now = clock_();
  // The user's live sessions, oldest first; expired ones (anyone's) go on the way.
  std::vector<std::pair<int64_t, std::string>> mine;
  std::vector<std::string> expired;
  store_.for_each(kSessions, "", [&](const std::string& key, const std::string& value) {
    auto s = decode_session(value);
    if (!s || s->expires <= now) {
      expired.push_back(key);
    } else if (s->user == name) {
      mine.emplace_back(s->created, key);
    }
  });
  for (auto& k : expired)
    store_.del(kSessions, std::move(k));
  std::sort(mine.begin(), mine.end());
  for (size_t i = 0; i + kMaxSessionsPerUser <= mine.size(); ++i)
    store_.del(kSessions, mine[i].second);

  const std::string raw = random_bytes(kSecretBytes);
  SessionRow row{std::string(name), now, now + int64_t{options_.session_days} * 86400};
  store_.put(kSessions, digest(raw), encode_session(row));
  return NewSession{b64url(raw), csrf_of(raw), row.expires};
}

std::optional<Session> Accounts::session(std::string_view id) {
  auto raw = from_b64url(id, kSecretBytes);
  if (!raw) return std::nullopt;
  const std::string key = digest(*raw);
  auto v = store_.get(kSessions, key);
  if (!v) return std::nullopt;
  auto row = decode_session(*v);
  auto u = row ? load_user(row->user) : std::nullopt;
  if (!row || !u || row->expires <= clock_()) {
    store_.del(kSessions, key);
    return std::nullopt;
  }
  return Session{u->user.name, u->user.admin, csrf_of(*raw), row->created, row->expires};
}

bool Accounts::end_session(std::string_view id) {
  auto raw = from_b64url(id, kSecretBytes);
  if (!raw) return false;
  std::string key = digest(*raw);
  if (!store_.get(kSessions, key)) return false;
  store_.del(kSessions, std::move(key));
  return true;
}

size_t Accounts::end_sessions_of(std::string_view name, std::string_view keep_key) {
  std::vector<std::string> keys;
  store_.for_each(kSessions, "", [&](const std::string& key, const std::string& value) {
    auto s = decode_session(value);
    if (s && s->user == name && key != keep_key) keys.push_back(key);
  });
  for (auto& k : keys)
    store_.del(kSessions, std::move(k));
  return keys.size();
}

size_t Accounts::sweep_sessions() {
  const int64_t now = clock_();
  std::vector<std::string> keys;
  store_.for_each(kSessions, "", [&](const std::string& key, const std::string& value) {
    auto s = decode_session(value);
    if (!s || s->expires <= now) keys.push_back(key);
  });
  for (auto& k : keys)
    store_.del(kSessions, std::move(k));
  return keys.size();
}

bool Accounts::check_csrf(const Session& session, std::string_view token) {
  return !session.csrf.empty() && token.size() == session.csrf.size() &&
         sodium_memcmp(session.csrf.data(), token.data(), token.size()) == 0;
}

// --- API tokens ---

AccountResult<NewToken> Accounts::create_token(std::string_view name, std::string_view label) {
  if (!load_user(name)) return err(Code::kUnknownUser, no_user(name));
  if (std::string why = check_token_label(label); !why.empty()) return err(Code::kBadLabel, why);
  if (tokens(name).size() >= kMaxTokensPerUser) {
    return err(Code::kTooMany, "user '" + std::string(name) + "' has " +
                                   std::to_string(kMaxTokensPerUser) +
                                   " tokens, the most a user may have: revoke one first");
  }
  const std::string token = std::string(kTokenPrefix) + b64url(random_bytes(kSecretBytes));
  const std::string key = digest(token);
  TokenRow row{std::string(name), std::string(label), clock_(), 0};
  store_.put(kTokens, key, encode_token(row));
  return NewToken{token, info_of(key, row).id};
}

std::optional<User> Accounts::token_user(std::string_view token) {
  if (token.size() != kTokenPrefix.size() + sodium_base64_ENCODED_LEN(kSecretBytes, kB64) - 1 ||
      !token.starts_with(kTokenPrefix)) {
    return std::nullopt;
  }
  const std::string key = digest(token);
  auto v = store_.get(kTokens, key);
  if (!v) return std::nullopt;
  auto row = decode_token(*v);
  auto u = row ? load_user(row->user) : std::nullopt;
  if (!u) return std::nullopt;
  const int64_t now = clock_();
  if (now - row->used >= kLastUsedStep) {
    row->used = now;
    store_.put(kTokens, key, encode_token(*row));
  }
  return u->user;
}

std::vector<TokenInfo> Accounts::tokens(std::string_view name) const {
  std::vector<TokenInfo> out;
  store_.for_each(kTokens, "", [&](const std::string& key, const std::string& value) {
    auto t = decode_token(value);
    if (t && (name.empty() || t->user == name)) out.push_back(info_of(key, *t));
  });
  std::stable_sort(out.begin(), out.end(),
                   [](const TokenInfo& a, const TokenInfo& b) { return a.created < b.created; });
  return out;
}

AccountResult<TokenInfo> Accounts::revoke_token(std::string_view id) {
  std::string lower(id);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](char c) { return static_cast<char>(c >= 'A' && c <= 'F' ? c + 32 : c); });
  auto prefix = lower.size() == 2 * kTokenIdBytes ? from_hex(lower, kTokenIdBytes) : std::nullopt;
  if (!prefix) {
    return err(Code::kBadTokenId,
               "'" + shown(id) + "' is not a token id (16 hex digits, as token lists show)");
  }
  std::vector<std::pair<std::string, TokenRow>> found;
  store_.for_each(kTokens, *prefix, [&](const std::string& key, const std::string& value) {
    if (!key.starts_with(*prefix)) return;
    if (auto t = decode_token(value)) found.emplace_back(key, std::move(*t));
  });
  if (found.empty()) return err(Code::kUnknownToken, "no token has the id " + lower);
  if (found.size() > 1) {  // 2^-64 per pair of tokens; never silently revoke the wrong one
    return err(Code::kUnknownToken, "several tokens have the id " + lower);
  }
  store_.del(kTokens, found[0].first);
  return info_of(found[0].first, found[0].second);
}

}  // namespace evert::web
