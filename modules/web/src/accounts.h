// The web module's accounts: users with argon2id password hashes, login sessions with a CSRF
// token each, API tokens, and the brake on password guessing (login_limiter.h). Everything is
// kept in the daemon's store (databases `users`, `sessions`, `tokens`; docs/storage.md).
//
// Secrets never reach the store in a usable form: passwords as libsodium `crypto_pwhash_str`
// strings (argon2id), session ids and API tokens as their BLAKE2b hash, so a copy of the
// database holds no live cookie or token. A session's CSRF token is derived from its id (keyed
// BLAKE2b) and not stored at all.
//
// Password hashing and verification take 50-100 ms and 64 MiB each (argon2id, libsodium's
// "interactive" limits): they run on the worker pool, never on the loop, and at most
// kMaxHashesInFlight at once (more are refused as busy, not queued without bound). A login for
// an unknown user verifies against a dummy hash, so it takes as long as one for a known user
// and names cannot be found out by timing.
//
// Changes go into the store's pending batch (durable after the next group commit, like every
// other write: docs/storage.md).
//
// Thread-safety: loop thread only. Callbacks run on the loop thread; those still pending when
// the object is destroyed are dropped.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "evert/account_rules.h"
#include "evert/daemon/event_loop.h"
#include "evert/daemon/store.h"
#include "evert/daemon/worker_pool.h"
#include "evert/result.h"
#include "login_limiter.h"

namespace evert::web {

inline constexpr size_t kMaxTokenLabel = 100;  // bytes
inline constexpr size_t kMaxTokensPerUser = 100;
inline constexpr size_t kMaxSessionsPerUser = 32;  // the oldest ends when a newer one would pass it
inline constexpr int kMaxHashesInFlight = 8;

// check_user_name and check_password (plaintext) are in evert/account_rules.h, shared with
// evertctl.

// "" when `hash` is a password hash evertd accepts, else why not: a libsodium crypto_pwhash_str
// string for argon2id ("$argon2id$v=19$m=65536,t=2,p=1$SALT$HASH") with a cost evertd is willing
// to pay at each login (m at most 262144 KiB, t at most 10, p = 1).
std::string check_password_hash(std::string_view hash);
// "" when `label` (of an API token) is acceptable (at most 100 bytes, no control characters).
std::string check_token_label(std::string_view label);

// Why an operation failed: a stable code (the control API's error code) and a message for
// people that names the user or token.
struct AccountError {
  enum class Code {
    kBadName,       // the user name breaks the rule
    kExists,        // a user of that name exists
    kUnknownUser,   // no such user
    kBadHash,       // not an acceptable password hash
    kWeakPassword,  // a plaintext password that breaks the rule
    kBadLabel,      // a token label that breaks the rule
    kTooMany,       // the user has kMaxTokensPerUser tokens
    kBadTokenId,    // not the form of a token id
    kUnknownToken,  // no token has that id
    kBusy,          // kMaxHashesInFlight hashes are running: try again shortly
    kInternal,      // hashing failed (out of memory)
  };
  Code code = Code::kInternal;
  std::string message;

  // "bad_name", "exists", "unknown_user", ... (docs/control-api.md).
  [[nodiscard]] std::string code_name() const;
};

// A value or an AccountError (Result<T> with a code).
template <class T>
class [[nodiscard]] AccountResult {
 public:
  AccountResult(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit
  AccountResult(AccountError error) : v_(std::in_place_index<1>, std::move(error)) {}  // NOLINT
  [[nodiscard]] bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() { return std::get<0>(v_); }
  const T& value() const { return std::get<0>(v_); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() { return value(); }
  [[nodiscard]] const AccountError& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, AccountError> v_;
};

struct User {
  std::string name;
  bool admin = false;
  int64_t created = 0;  // unix seconds
};

// A live session, as session() finds it.
struct Session {
  std::string user;
  bool admin = false;  // the user's flag now
  std::string csrf;    // the token forms must carry (check_csrf)
  int64_t created = 0;
  int64_t expires = 0;  // unix seconds
};

// A session just created: `id` goes into the cookie and is never stored.
struct NewSession {
  std::string id;    // 43 characters: base64url of 32 random bytes
  std::string csrf;  // 43 characters
  int64_t expires = 0;
};

// An API token as listed (its secret is not kept).
struct TokenInfo {
  std::string id;  // 16 hex digits: the first 8 bytes of the token's hash
  std::string user;
  std::string label;
  int64_t created = 0;
  int64_t last_used = 0;  // 0: never; updated at most once a minute
};

// A token just created: `token` is shown once and never stored.
struct NewToken {
  std::string token;  // "evt_" and 43 characters: base64url of 32 random bytes
  std::string id;
};

// What deleting a user or setting a password ended.
struct Ended {
  size_t sessions = 0;
  size_t tokens = 0;
};

struct LoginResult {
  enum class Outcome {
    kOk,       // `user` and `session` are set
    kWrong,    // unknown user or wrong password (the same answer for both)
    kLimited,  // this address must wait `retry_after` seconds
    kBusy,     // too many hashes in flight: try again shortly (HTTP 503)
  };
  Outcome outcome = Outcome::kWrong;
  int retry_after = 0;  // seconds, for kLimited
  std::optional<User> user;
  NewSession session;
};

class Accounts {
 public:
  struct Options {
    int session_days = 14;  // a session's lifetime from its creation (not sliding)
    int login_failures = 5;
    int login_refill_seconds = 30;
  };
  using Clock = std::function<int64_t()>;  // unix seconds

  // Starts the hourly sweep of expired sessions and sweeps once. `clock` (tests) defaults to
  // the system clock. The store, loop and pool must outlive the object, and the pool must be
  // joined before the loop is destroyed (as evertd does), since workers post to the loop.
  Accounts(daemon::Store& store, daemon::EventLoop& loop, daemon::WorkerPool& workers,
           Options options, Clock clock = {});
  ~Accounts();
  Accounts(const Accounts&) = delete;
  Accounts& operator=(const Accounts&) = delete;

  // New options (reload): new sessions get the new lifetime, the limiter the new budget.
  void set_options(const Options& options);

  // --- Users ---
  // Adds a user with a ready hash (check_password_hash). Errors: kBadName, kBadHash, kExists.
  AccountResult<User> add_user(std::string_view name, std::string_view password_hash, bool admin);
  // Adds a user with a plaintext password hashed on a worker. Returns an error at once
  // (kBadName, kWeakPassword, kExists, kBusy; then `done` is never called), or Ok and calls
  // `done` later with the user or an error (kExists when one was added meanwhile, kInternal).
  AccountResult<Ok> add_user_async(std::string_view name, std::string_view password, bool admin,
                                   std::function<void(AccountResult<User>)> done);
  // Deletes a user, its sessions and its tokens. Error: kUnknownUser.
  AccountResult<Ended> delete_user(std::string_view name);
  // Replaces a user's password hash and ends its sessions (not its tokens). Errors:
  // kUnknownUser, kBadHash.
  AccountResult<Ended> set_password_hash(std::string_view name, std::string_view password_hash);
  // The same with a plaintext password hashed on a worker; ends the user's sessions but
  // `keep_session` (an id; empty: none), so a user who changes their own password stays logged
  // in. Immediate errors as add_user_async (kUnknownUser instead of kExists); `done` gets the
  // outcome (kUnknownUser when the user was deleted meanwhile).
  AccountResult<Ok> set_password_async(std::string_view name, std::string_view password,
                                       std::string_view keep_session,
                                       std::function<void(AccountResult<Ended>)> done);
  // Grants or withdraws admin rights. Error: kUnknownUser.
  AccountResult<User> set_admin(std::string_view name, bool admin);
  // Every user, by name.
  [[nodiscard]] std::vector<User> users() const;
  [[nodiscard]] std::optional<User> user(std::string_view name) const;

  // --- Passwords and login ---
  // Checks `password` on a worker and calls `done` on the loop with the user when it is right,
  // nullopt when it is wrong or the user unknown (same time either way). Returns false (and
  // never calls `done`) when kMaxHashesInFlight hashes are running. A right password whose hash
  // has older cost parameters is rehashed with the current ones (on the worker) and stored.
  bool verify_async(std::string_view name, std::string_view password,
                    std::function<void(std::optional<User>)> done);
  // A whole login from `address` (the client's IP): the limiter's check, the password's, and a
  // new session when it is right. Always calls `done` once, later, on the loop (unless the
  // object is destroyed first).
  void login_async(std::string_view address, std::string_view name, std::string_view password,
                   std::function<void(LoginResult)> done);
  LoginLimiter& limiter() { return limiter_; }

  // --- Sessions ---
  // A new session of `name`, expiring in session_days; ends the user's oldest when it has
  // kMaxSessionsPerUser. Error: kUnknownUser.
  AccountResult<NewSession> create_session(std::string_view name);
  // The live session of a cookie value; nullopt when unknown, malformed or expired (an
  // expired one is deleted).
  std::optional<Session> session(std::string_view id);
  // Ends a session (logout); false when there was none.
  bool end_session(std::string_view id);
  // Deletes every expired session (hourly, and at start); returns how many.
  size_t sweep_sessions();
  // Whether `token` is the session's CSRF token (constant time).
  [[nodiscard]] static bool check_csrf(const Session& session, std::string_view token);

  // --- API tokens ---
  // A new token of `name` labelled `label`. Errors: kUnknownUser, kBadLabel, kTooMany.
  AccountResult<NewToken> create_token(std::string_view name, std::string_view label);
  // The user a token belongs to; nullopt when unknown or malformed. Records its use.
  std::optional<User> token_user(std::string_view token);
  // Tokens of `name` (every token when empty), oldest first.
  [[nodiscard]] std::vector<TokenInfo> tokens(std::string_view name = {}) const;
  // Revokes a token by id (TokenInfo::id). Errors: kBadTokenId, kUnknownToken. Returns it.
  AccountResult<TokenInfo> revoke_token(std::string_view id);

 private:
  struct Row;  // a user's row: the User and its hash
  [[nodiscard]] std::optional<Row> load_user(std::string_view name) const;
  void store_user(const Row& row);
  size_t end_sessions_of(std::string_view name, std::string_view keep_key);
  [[nodiscard]] bool hashing_busy() const { return hashes_in_flight_ >= kMaxHashesInFlight; }
  // Runs `work` (hashing) on a worker, then `then` on the loop while this object lives; both
  // count against kMaxHashesInFlight.
  void run_hashing(std::function<void()> work, std::function<void()> then);
  // Runs `fn` on the loop soon, while this object lives (results that are known at once).
  void post(std::function<void()> fn);

  daemon::Store& store_;
  daemon::EventLoop& loop_;
  daemon::WorkerPool& workers_;
  Options options_;
  Clock clock_;
  LoginLimiter limiter_;
  int hashes_in_flight_ = 0;
  daemon::Timer sweep_timer_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace evert::web
