#include "accounts.h"

#include <gtest/gtest.h>
#include <sodium.h>

#include <chrono>

#include "test_util.h"

namespace evert::web {
namespace {

using Code = AccountError::Code;
using namespace std::chrono_literals;

std::unique_ptr<daemon::Store> open_store(const std::string& dir) {
  daemon::StoreOptions o;
  o.dir = dir;
  o.map_size = 4 << 20;
  auto s = daemon::Store::open(o);
  EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().message);
  return s.ok() ? std::move(s).value() : nullptr;
}

// A valid argon2id hash that costs little to check: most tests need many.
std::string cheap_hash(const std::string& password) {
  EXPECT_GE(sodium_init(), 0);
  char out[crypto_pwhash_STRBYTES];
  EXPECT_EQ(crypto_pwhash_str_alg(
                out, password.data(), password.size(), crypto_pwhash_argon2id_OPSLIMIT_MIN,
                crypto_pwhash_argon2id_MEMLIMIT_MIN, crypto_pwhash_ALG_ARGON2ID13),
            0);
  return out;
}

// What evertctl sends: libsodium's interactive limits.
std::string real_hash(const std::string& password) {
  EXPECT_GE(sodium_init(), 0);
  char out[crypto_pwhash_STRBYTES];
  EXPECT_EQ(
      crypto_pwhash_str(out, password.data(), password.size(), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                        crypto_pwhash_MEMLIMIT_INTERACTIVE),
      0);
  return out;
}

// The store, a loop, two workers and the accounts, with a clock the test moves.
class AccountsTest : public ::testing::Test {
 protected:
  test::TempDir dir;
  daemon::EventLoop loop;
  std::unique_ptr<daemon::Store> store = open_store(dir / "state");
  daemon::WorkerPool workers{2};  // joined before the loop goes (declared after it)
  int64_t now = 1'800'000'000;
  std::unique_ptr<Accounts> accounts = make();

  std::unique_ptr<Accounts> make(Accounts::Options o = {}) {
    return std::make_unique<Accounts>(*store, loop, workers, o, [this] { return now; });
  }

  // Runs the loop until `done()` holds (bounded: a hang fails the test).
  template <class F>
  void run_until(F done) {
    daemon::Timer poll(loop, [&] {
      if (done()) loop.stop();
    });
    poll.start(1ms, true);
    daemon::Timer guard(loop, [&] {
      ADD_FAILURE() << "timed out";
      loop.stop();
    });
    guard.start(30s, false);
    loop.run();
  }

  std::optional<User> verify(const std::string& name, const std::string& password) {
    bool finished = false;
    std::optional<User> got;
    EXPECT_TRUE(accounts->verify_async(name, password, [&](std::optional<User> u) {
      got = std::move(u);
      finished = true;
    }));
    run_until([&] { return finished; });
    return got;
  }

  LoginResult login(const std::string& address, const std::string& name,
                    const std::string& password) {
    std::optional<LoginResult> got;
    accounts->login_async(address, name, password, [&](LoginResult r) { got = std::move(r); });
    run_until([&] { return got.has_value(); });
    return got.value_or(LoginResult{});
  }

  std::string stored_hash(const std::string& name) {
    auto v = store->get("users", name);
    if (!v) return {};
    const size_t at = v->find("$argon2id$");
    return at == std::string::npos ? std::string() : v->substr(at);
  }
};

// --- Rules ---

TEST(AccountRules, UserNames) {
  for (const char* good : {"alice", "a", "a.b-c_9", "0", "..."})
    EXPECT_EQ(check_user_name(good), "") << good;
  EXPECT_EQ(check_user_name(std::string(64, 'x')), "");
  for (const std::string& bad :
       std::vector<std::string>{"", "Alice", "al ice", "al/ice", "caf\xc3\xa9", ".", "..", "a\nb",
                                "a:b", std::string(65, 'x')}) {
    const std::string why = check_user_name(bad);
    EXPECT_NE(why, "") << bad;
    EXPECT_EQ(why.find('\n'), std::string::npos) << why;  // control bytes are escaped
  }
  EXPECT_NE(check_user_name("Alice").find("not 'A'"), std::string::npos);
}

TEST(AccountRules, Passwords) {
  EXPECT_EQ(check_password("12345678"), "");
  EXPECT_EQ(check_password("correct horse battery staple"), "");
  EXPECT_EQ(check_password("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"), "");
  EXPECT_EQ(check_password(""), "the password is empty");
  EXPECT_NE(check_password("1234567").find("at least 8"), std::string::npos);
  // 7 characters in 14 bytes: characters count, not bytes.
  EXPECT_NE(check_password("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"), "");
  EXPECT_EQ(check_password(std::string(1024, 'x')), "");
  EXPECT_NE(check_password(std::string(1025, 'x')), "");
}

TEST(AccountRules, PasswordHashes) {
  const std::string good = real_hash("password one");
  EXPECT_EQ(check_password_hash(good), "");
  EXPECT_EQ(check_password_hash(cheap_hash("password one")), "");

  char argon2i[crypto_pwhash_STRBYTES];
  ASSERT_EQ(crypto_pwhash_argon2i_str(argon2i, "pw", 2, crypto_pwhash_argon2i_OPSLIMIT_MIN,
                                      crypto_pwhash_argon2i_MEMLIMIT_MIN),
            0);
  std::string tampered = good;
  tampered[tampered.size() - 5] = '*';  // not base64
  std::string costly = good;
  costly.replace(costly.find("m=65536"), 7, "m=4194304");  // 4 GiB per login
  std::string parallel = good;
  parallel.replace(parallel.find("p=1"), 3, "p=4");
  for (const std::string& bad :
       std::vector<std::string>{std::string(), std::string("hunter22"), std::string(argon2i),
                                good.substr(0, good.size() - 10), tampered, costly, parallel,
                                std::string("$argon2id$"), good + std::string(1, '\0') + "x",
                                "$7$C6..../....SodiumChloride$kBGj9fHznVYFQMEn/qDCfrDev"}) {
    EXPECT_NE(check_password_hash(bad), "") << bad;
  }
  EXPECT_NE(check_password_hash(costly).find("cost"), std::string::npos);
}

TEST(AccountRules, TokenLabels) {
  EXPECT_EQ(check_token_label(""), "");
  EXPECT_EQ(check_token_label("CI on build.example.org \xe2\x9c\x93"), "");
  EXPECT_NE(check_token_label("a\tb"), "");
  EXPECT_NE(check_token_label(std::string(101, 'x')), "");
}

// --- Users ---

TEST_F(AccountsTest, AddListGetAndDeleteUsers) {
  auto bob = accounts->add_user("bob", cheap_hash("bob's password"), false);
  ASSERT_TRUE(bob.ok()) << bob.error().message;
  EXPECT_EQ(bob->created, now);
  ASSERT_TRUE(accounts->add_user("alice", cheap_hash("alice's password"), true).ok());
  auto all = accounts->users();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].name, "alice");  // by name
  EXPECT_TRUE(all[0].admin);
  EXPECT_EQ(all[1].name, "bob");
  EXPECT_FALSE(all[1].admin);
  EXPECT_EQ(accounts->user("alice")->name, "alice");
  EXPECT_FALSE(accounts->user("carol"));

  auto again = accounts->add_user("bob", cheap_hash("other password"), true);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, Code::kExists);
  EXPECT_EQ(again.error().code_name(), "exists");
  EXPECT_EQ(again.error().message, "user 'bob' exists");

  ASSERT_TRUE(accounts->set_admin("bob", true).ok());
  EXPECT_TRUE(accounts->user("bob")->admin);
  EXPECT_EQ(accounts->set_admin("carol", true).error().code, Code::kUnknownUser);

  ASSERT_TRUE(accounts->delete_user("bob").ok());
  EXPECT_FALSE(accounts->user("bob"));
  EXPECT_EQ(accounts->users().size(), 1u);
  auto gone = accounts->delete_user("bob");
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.error().code, Code::kUnknownUser);
  EXPECT_EQ(gone.error().message, "no user named 'bob'");
}

TEST_F(AccountsTest, BadNamesAndHashesAreRefused) {
  auto r = accounts->add_user("Bob", cheap_hash("password"), false);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Code::kBadName);
  r = accounts->add_user("bob", "hunter22", false);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Code::kBadHash);
  EXPECT_TRUE(accounts->users().empty());
  EXPECT_EQ(accounts->delete_user("../etc").error().code, Code::kUnknownUser);
}

TEST_F(AccountsTest, VerifyRightWrongAndUnknownUsers) {
  ASSERT_TRUE(accounts->add_user("alice", cheap_hash("correct horse"), false).ok());
  const std::string before = stored_hash("alice");
  EXPECT_FALSE(verify("alice", "wrong horse"));
  EXPECT_FALSE(verify("nobody", "correct horse"));
  EXPECT_FALSE(verify("Not A Name", "correct horse"));
  EXPECT_FALSE(verify("alice", "correct horse" + std::string(2000, 'x')));
  auto u = verify("alice", "correct horse");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->name, "alice");
  // The cheap hash was replaced by one with the current cost, and still verifies.
  const std::string after = stored_hash("alice");
  EXPECT_NE(after, before);
  EXPECT_NE(after.find("m=65536,t=2,p=1"), std::string::npos) << after;
  EXPECT_TRUE(verify("alice", "correct horse"));
}

TEST_F(AccountsTest, AnUnknownUserCostsAsMuchTimeAsAKnownOne) {
  ASSERT_TRUE(accounts->add_user("alice", real_hash("correct horse"), false).ok());
  verify("nobody", "warm up the dummy hash");
  auto time_of = [&](const std::string& name) {
    auto best = std::chrono::steady_clock::duration::max();
    for (int i = 0; i < 3; ++i) {  // the fastest of three: the machine is shared
      const auto t0 = std::chrono::steady_clock::now();
      EXPECT_FALSE(verify(name, "wrong horse"));
      best = std::min(best, std::chrono::steady_clock::now() - t0);
    }
    return std::chrono::duration<double>(best).count();
  };
  const double known = time_of("alice");
  const double unknown = time_of("nobody");
  EXPECT_GT(unknown, 0.4 * known) << "known " << known << " s, unknown " << unknown << " s";
  EXPECT_GT(known, 0.4 * unknown) << "known " << known << " s, unknown " << unknown << " s";
}

TEST_F(AccountsTest, PlaintextPasswordsAreHashedOnWorkers) {
  std::optional<AccountResult<User>> added;
  ASSERT_TRUE(
      accounts
          ->add_user_async("carol", "carol's password", true, [&](auto r) { added = std::move(r); })
          .ok());
  EXPECT_FALSE(accounts->user("carol"));  // not yet: the hash is being made
  run_until([&] { return added.has_value(); });
  ASSERT_TRUE(added->ok()) << added->error().message;
  EXPECT_TRUE(accounts->user("carol")->admin);
  EXPECT_TRUE(verify("carol", "carol's password"));

  auto nope = [](auto) { ADD_FAILURE() << "called back after an immediate error"; };
  EXPECT_EQ(accounts->add_user_async("carol", "another password", false, nope).error().code,
            Code::kExists);
  EXPECT_EQ(accounts->add_user_async("dave", "short", false, nope).error().code,
            Code::kWeakPassword);
  EXPECT_EQ(accounts->add_user_async("Dave", "long enough", false, nope).error().code,
            Code::kBadName);

  // A new password ends the other sessions and keeps the one asked for.
  auto keep = accounts->create_session("carol");
  auto other = accounts->create_session("carol");
  ASSERT_TRUE(keep.ok() && other.ok());
  std::optional<AccountResult<Ended>> changed;
  ASSERT_TRUE(accounts
                  ->set_password_async("carol", "carol's new password", keep->id,
                                       [&](auto r) { changed = std::move(r); })
                  .ok());
  run_until([&] { return changed.has_value(); });
  ASSERT_TRUE(changed->ok());
  EXPECT_EQ(changed->value().sessions, 1u);
  EXPECT_TRUE(accounts->session(keep->id));
  EXPECT_FALSE(accounts->session(other->id));
  EXPECT_FALSE(verify("carol", "carol's password"));
  EXPECT_TRUE(verify("carol", "carol's new password"));
  EXPECT_EQ(accounts->set_password_async("nobody", "long enough", "", nope).error().code,
            Code::kUnknownUser);
}

TEST_F(AccountsTest, SettingAHashEndsTheUsersSessions) {
  ASSERT_TRUE(accounts->add_user("alice", cheap_hash("first password"), false).ok());
  auto s1 = accounts->create_session("alice");
  auto s2 = accounts->create_session("alice");
  ASSERT_TRUE(s1.ok() && s2.ok());
  EXPECT_EQ(accounts->set_password_hash("alice", "nope").error().code, Code::kBadHash);
  EXPECT_TRUE(accounts->session(s1->id));  // a refused change ends nothing
  auto r = accounts->set_password_hash("alice", cheap_hash("second password"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->sessions, 2u);
  EXPECT_FALSE(accounts->session(s1->id));
  EXPECT_FALSE(accounts->session(s2->id));
  EXPECT_FALSE(verify("alice", "first password"));
  EXPECT_TRUE(verify("alice", "second password"));
  EXPECT_EQ(accounts->set_password_hash("bob", cheap_hash("x")).error().code, Code::kUnknownUser);
}

TEST_F(AccountsTest, HashesInFlightAreBounded) {
  ASSERT_TRUE(accounts->add_user("alice", cheap_hash("correct horse"), false).ok());
  int answered = 0;
  for (int i = 0; i < kMaxHashesInFlight; ++i) {
    ASSERT_TRUE(accounts->verify_async("alice", "wrong", [&](auto) { ++answered; }));
  }
  EXPECT_FALSE(accounts->verify_async("alice", "correct horse",
                                      [](auto) { ADD_FAILURE() << "called back when busy"; }));
  std::optional<LoginResult> busy;
  accounts->login_async("192.0.2.1", "alice", "correct horse", [&](LoginResult r) { busy = r; });
  run_until([&] { return answered == kMaxHashesInFlight && busy.has_value(); });
  EXPECT_EQ(busy->outcome, LoginResult::Outcome::kBusy);
  EXPECT_EQ(accounts->limiter().retry_after_seconds("192.0.2.1"), 0);  // not charged
  EXPECT_TRUE(verify("alice", "correct horse"));                       // room again
}

TEST_F(AccountsTest, LoginsAreLimitedPerAddressAndMakeSessions) {
  accounts = make({14, 2, 30});
  ASSERT_TRUE(accounts->add_user("alice", cheap_hash("correct horse"), true).ok());
  EXPECT_EQ(login("192.0.2.1", "alice", "wrong").outcome, LoginResult::Outcome::kWrong);
  EXPECT_EQ(login("192.0.2.1", "nobody", "wrong").outcome, LoginResult::Outcome::kWrong);
  auto limited = login("192.0.2.1", "alice", "correct horse");
  EXPECT_EQ(limited.outcome, LoginResult::Outcome::kLimited);
  EXPECT_EQ(limited.retry_after, 30);
  EXPECT_FALSE(limited.user);

  EXPECT_EQ(login("192.0.2.2", "alice", "wrong").outcome, LoginResult::Outcome::kWrong);
  auto ok = login("192.0.2.2", "alice", "correct horse");
  ASSERT_EQ(ok.outcome, LoginResult::Outcome::kOk);
  EXPECT_EQ(ok.user->name, "alice");
  auto s = accounts->session(ok.session.id);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->user, "alice");
  EXPECT_TRUE(s->admin);
  EXPECT_EQ(s->csrf, ok.session.csrf);
  EXPECT_EQ(ok.session.expires, now + 14 * 86400);
  // The successful login gave back what it was charged and no more: the earlier failure still
  // counts, so one more wrong password uses up 192.0.2.2's budget.
  EXPECT_EQ(login("192.0.2.2", "alice", "wrong").outcome, LoginResult::Outcome::kWrong);
  EXPECT_EQ(login("192.0.2.2", "alice", "correct horse").outcome, LoginResult::Outcome::kLimited);
}

// --- Sessions ---

TEST_F(AccountsTest, SessionsLookUpExpireAndEnd) {
  ASSERT_TRUE(accounts->add_user("alice", cheap_hash("password"), false).ok());
  auto s = accounts->create_session("alice");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->id.size(), 43u);
  EXPECT_EQ(s->csrf.size(), 43u);
  EXPECT_NE(s->id, s->csrf);
  auto found = accounts->session(s->id);
  ASSERT_TRUE(found);
  EXPECT_EQ(found->user, "alice");
  EXPECT_FALSE(found->admin);
  EXPECT_EQ(found->created, now);
  EXPECT_EQ(found->expires, now + 14 * 86400);
  ASSERT_TRUE(accounts->set_admin("alice", true).ok());
  EXPECT_TRUE(accounts->session(s->id)->admin);  // the flag as it is now

  EXPECT_EQ(accounts->create_session("nobody").error().code, Code::kUnknownUser);
  std::string flipped = s->id;
  flipped[0] = flipped[0] == 'A' ? 'B' : 'A';
  for (const std::string& bad :
       std::vector<std::string>{std::string(), std::string("x"), s->id + "A", flipped,
                                s->id.substr(0, 42) + "*", s->csrf}) {
    EXPECT_FALSE(accounts->session(bad)) << bad;
  }

  // Expiry: the session is gone at its time, and its row with it.
  now += 14 * 86400 - 1;
  EXPECT_TRUE(accounts->session(s->id));
  now += 1;
  EXPECT_FALSE(accounts->session(s->id));
  size_t rows = 0;
  store->for_each("sessions", "", [&](const auto&, const auto&) { ++rows; });
  EXPECT_EQ(rows, 0u);

  auto t = accounts->create_session("alice");
  ASSERT_TRUE(t.ok());
  EXPECT_TRUE(accounts->end_session(t->id));
  EXPECT_FALSE(accounts->session(t->id));
  EXPECT_FALSE(accounts->end_session(t->id));
  EXPECT_FALSE(accounts->end_session("garbage"));
}

TEST_F(AccountsTest, CsrfTokensAreCheckedExactly) {
  ASSERT_TRUE(accounts->add_user("alice", cheap_hash("password"), false).ok());
  auto a = accounts->create_session("alice");
  auto b = accounts->create_session("alice");
  ASSERT_TRUE(a.ok() && b.ok());
  auto sa = accounts->session(a->id);
  ASSERT_TRUE(sa);
  EXPECT_TRUE(Accounts::check_csrf(*sa, a->csrf));
  EXPECT_FALSE(Accounts::check_csrf(*sa, b->csrf));  // another session's
  EXPECT_FALSE(Accounts::check_csrf(*sa, ""));
  EXPECT_FALSE(Accounts::check_csrf(*sa, a->csrf.substr(0, 42)));
  EXPECT_FALSE(Accounts::check_csrf(*sa, a->csrf + "x"));
  EXPECT_FALSE(Accounts::check_csrf(*sa, a->id));
  Session empty;
  EXPECT_FALSE(Accounts::check_csrf(empty, ""));
  // Derived from the id: the same after a restart.
  accounts = make();
  EXPECT_EQ(accounts->session(a->id)->csrf, a->csrf);
}

TEST_F(AccountsTest, SessionsAreSweptAndBoundedPerUser) {
  ASSERT_TRUE(accounts->add_user("alice", cheap_hash("password"), false).ok());
  ASSERT_TRUE(accounts->add_user("bob", cheap_hash("password"), false).ok());
  for (int i = 0; i < 3; ++i)
    ASSERT_TRUE(accounts->create_session("alice").ok());
  now += 15 * 86400;
  EXPECT_EQ(accounts->sweep_sessions(), 3u);
  EXPECT_EQ(accounts->sweep_sessions(), 0u);

  ASSERT_TRUE(accounts->create_session("bob").ok());
  now += 15 * 86400;
  accounts = make();  // sweeps at start
  size_t rows = 0;
  store->for_each("sessions", "", [&](const auto&, const auto&) { ++rows; });
  EXPECT_EQ(rows, 0u);

  // At most kMaxSessionsPerUser each: a new one ends the oldest.
  std::vector<NewSession> made;
  for (size_t i = 0; i < kMaxSessionsPerUser + 2; ++i) {
    made.push_back(accounts->create_session("alice").value());
    now += 1;
  }
  auto bob = accounts->create_session("bob");
  EXPECT_FALSE(accounts->session(made[0].id));
  EXPECT_FALSE(accounts->session(made[1].id));
  for (size_t i = 2; i < made.size(); ++i)
    EXPECT_TRUE(accounts->session(made[i].id)) << i;
  EXPECT_TRUE(accounts->session(bob->id));

  // A reload's lifetime applies to new sessions.
  accounts->set_options({1, 5, 30});
  EXPECT_EQ(accounts->create_session("bob")->expires, now + 86400);
}

TEST_F(AccountsTest, NoSecretIsStoredAsItIs) {
  ASSERT_TRUE(accounts->add_user("alice", cheap_hash("password"), false).ok());
  auto s = accounts->create_session("alice");
  auto t = accounts->create_token("alice", "ci");
  ASSERT_TRUE(s.ok() && t.ok());
  ASSERT_TRUE(store->flush().ok());
  for (const char* db : {"sessions", "tokens", "users"}) {
    store->for_each(db, "", [&](const std::string& k, const std::string& v) {
      for (const std::string& secret : {s->id, s->csrf, t->token, t->token.substr(4)}) {
        EXPECT_EQ(k.find(secret), std::string::npos) << db;
        EXPECT_EQ(v.find(secret), std::string::npos) << db;
      }
    });
  }
}

// --- Tokens ---

TEST_F(AccountsTest, TokensCreateLookUpListAndRevoke) {
  ASSERT_TRUE(accounts->add_user("alice", cheap_hash("password"), false).ok());
  ASSERT_TRUE(accounts->add_user("bob", cheap_hash("password"), true).ok());
  auto t1 = accounts->create_token("alice", "laptop");
  now += 10;
  auto t2 = accounts->create_token("bob", "");
  ASSERT_TRUE(t1.ok() && t2.ok());
  EXPECT_TRUE(t1->token.starts_with("evt_"));
  EXPECT_EQ(t1->token.size(), 47u);
  EXPECT_EQ(t1->id.size(), 16u);
  EXPECT_NE(t1->token, t2->token);

  EXPECT_EQ(accounts->token_user(t1->token)->name, "alice");
  EXPECT_TRUE(accounts->token_user(t2->token)->admin);
  for (const std::string& bad :
       std::vector<std::string>{std::string(), t1->token.substr(0, 46), t1->token + "x",
                                "evt_" + std::string(43, 'A'), t1->id}) {
    EXPECT_FALSE(accounts->token_user(bad)) << bad;
  }

  auto all = accounts->tokens();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].id, t1->id);  // oldest first
  EXPECT_EQ(all[0].user, "alice");
  EXPECT_EQ(all[0].label, "laptop");
  EXPECT_EQ(all[0].created, now - 10);
  EXPECT_EQ(all[0].last_used, now);  // used above
  ASSERT_EQ(accounts->tokens("bob").size(), 1u);
  EXPECT_EQ(accounts->tokens("bob")[0].id, t2->id);
  EXPECT_TRUE(accounts->tokens("carol").empty());

  // Uses are written at most once a minute.
  now += 30;
  accounts->token_user(t1->token);
  EXPECT_EQ(accounts->tokens("alice")[0].last_used, now - 30);
  now += 30;
  accounts->token_user(t1->token);
  EXPECT_EQ(accounts->tokens("alice")[0].last_used, now);

  std::string upper = t1->id;
  for (auto& c : upper)
    c = static_cast<char>(std::toupper(c));
  auto revoked = accounts->revoke_token(upper);
  ASSERT_TRUE(revoked.ok()) << revoked.error().message;
  EXPECT_EQ(revoked->user, "alice");
  EXPECT_FALSE(accounts->token_user(t1->token));
  EXPECT_EQ(accounts->revoke_token(t1->id).error().code, Code::kUnknownToken);
  EXPECT_EQ(accounts->revoke_token("xyz").error().code, Code::kBadTokenId);
  EXPECT_EQ(accounts->revoke_token(std::string(16, 'g')).error().code, Code::kBadTokenId);
  EXPECT_TRUE(accounts->token_user(t2->token));

  EXPECT_EQ(accounts->create_token("carol", "x").error().code, Code::kUnknownUser);
  EXPECT_EQ(accounts->create_token("alice", "a\nb").error().code, Code::kBadLabel);
  for (size_t i = accounts->tokens("alice").size(); i < kMaxTokensPerUser; ++i)
    ASSERT_TRUE(accounts->create_token("alice", "n").ok());
  EXPECT_EQ(accounts->create_token("alice", "one more").error().code, Code::kTooMany);
  EXPECT_TRUE(accounts->create_token("bob", "bob has room").ok());
}

TEST_F(AccountsTest, DeletingAUserEndsItsSessionsAndTokens) {
  ASSERT_TRUE(accounts->add_user("alice", cheap_hash("password"), false).ok());
  ASSERT_TRUE(accounts->add_user("bob", cheap_hash("password"), false).ok());
  auto as1 = accounts->create_session("alice");
  auto as2 = accounts->create_session("alice");
  auto at1 = accounts->create_token("alice", "one");
  auto at2 = accounts->create_token("alice", "two");
  auto bs = accounts->create_session("bob");
  auto bt = accounts->create_token("bob", "");
  ASSERT_TRUE(store->flush().ok());  // some committed, some pending: both are found
  auto at3 = accounts->create_token("alice", "three");
  auto ended = accounts->delete_user("alice");
  ASSERT_TRUE(ended.ok());
  EXPECT_EQ(ended->sessions, 2u);
  EXPECT_EQ(ended->tokens, 3u);
  EXPECT_FALSE(accounts->session(as1->id));
  EXPECT_FALSE(accounts->session(as2->id));
  EXPECT_FALSE(accounts->token_user(at1->token));
  EXPECT_FALSE(accounts->token_user(at3->token));
  EXPECT_TRUE(accounts->tokens("alice").empty());
  EXPECT_TRUE(accounts->session(bs->id));
  EXPECT_TRUE(accounts->token_user(bt->token));
  // A new alice starts with nothing of the old one.
  ASSERT_TRUE(accounts->add_user("alice", cheap_hash("password"), false).ok());
  EXPECT_FALSE(accounts->session(as1->id));
  EXPECT_FALSE(accounts->token_user(at2->token));
}

TEST_F(AccountsTest, EverythingSurvivesReopeningTheStore) {
  ASSERT_TRUE(accounts->add_user("alice", cheap_hash("correct horse"), true).ok());
  auto s = accounts->create_session("alice");
  auto t = accounts->create_token("alice", "ci");
  ASSERT_TRUE(s.ok() && t.ok());
  accounts.reset();
  store.reset();  // commits what is pending
  store = open_store(dir / "state");
  accounts = make();
  auto alice = accounts->user("alice");
  ASSERT_TRUE(alice);
  EXPECT_TRUE(alice->admin);
  EXPECT_EQ(alice->created, now);
  EXPECT_EQ(accounts->session(s->id)->user, "alice");
  EXPECT_EQ(accounts->token_user(t->token)->name, "alice");
  EXPECT_EQ(accounts->tokens()[0].label, "ci");
  EXPECT_TRUE(verify("alice", "correct horse"));
}

}  // namespace
}  // namespace evert::web
