#include "accounts_api.h"

#include <gtest/gtest.h>
#include <sodium.h>
#include <spdlog/sinks/null_sink.h>

#include "test_util.h"

namespace evert::web {
namespace {

using daemon::ApiRequest;
using daemon::ApiResponse;
using nlohmann::json;

std::string cheap_hash(const std::string& password) {
  EXPECT_GE(sodium_init(), 0);
  char out[crypto_pwhash_STRBYTES];
  EXPECT_EQ(crypto_pwhash_str_alg(
                out, password.data(), password.size(), crypto_pwhash_argon2id_OPSLIMIT_MIN,
                crypto_pwhash_argon2id_MEMLIMIT_MIN, crypto_pwhash_ALG_ARGON2ID13),
            0);
  return out;
}

class AccountsApiTest : public ::testing::Test {
 protected:
  test::TempDir dir;
  daemon::EventLoop loop;
  std::unique_ptr<daemon::Store> store;
  daemon::WorkerPool workers{1};
  std::unique_ptr<Accounts> accounts;
  daemon::ControlApi api{loop};

  AccountsApiTest() {
    daemon::StoreOptions o;
    o.dir = dir / "state";
    o.map_size = 1 << 20;
    store = std::move(daemon::Store::open(o)).value();
    accounts = std::make_unique<Accounts>(*store, loop, workers, Accounts::Options{});
    auto log =
        std::make_shared<spdlog::logger>("test", std::make_shared<spdlog::sinks::null_sink_mt>());
    register_account_routes([this](const std::string& m, const std::string& p,
                                   daemon::ApiHandler h) { api.route(m, p, std::move(h)); },
                            *accounts, log);
  }

  ApiResponse call(const std::string& method, const std::string& target, const json& body = {}) {
    ApiRequest r;
    r.method = method;
    const size_t q = target.find('?');
    r.path = target.substr(0, q);
    r.query = q == std::string::npos ? "" : target.substr(q + 1);
    r.body = body.is_null() ? "" : body.dump();
    return api.dispatch(r);
  }

  static std::string code_of(const ApiResponse& r) {
    return r.body.contains("error") ? r.body["error"].value("code", "") : "";
  }
};

TEST_F(AccountsApiTest, UsersAddListPasswordAndDelete) {
  auto r = call("POST", "/v1/users",
                {{"name", "alice"}, {"password_hash", cheap_hash("pw one")}, {"admin", true}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body["user"]["name"], "alice");
  EXPECT_EQ(r.body["user"]["admin"], true);
  r = call("POST", "/v1/users", {{"name", "bob"}, {"password_hash", cheap_hash("pw two")}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body["user"]["admin"], false);

  r = call("GET", "/v1/users");
  ASSERT_EQ(r.status, 200);
  ASSERT_EQ(r.body["users"].size(), 2u);
  EXPECT_EQ(r.body["users"][0]["name"], "alice");
  EXPECT_TRUE(r.body["users"][0]["created"].is_number_integer());
  EXPECT_FALSE(r.body["users"][0].contains("password_hash"));

  // Refusals, each with its status and code.
  struct Case {
    json body;
    int status;
    std::string code;
  };
  const std::string h = cheap_hash("pw");
  for (const Case& c : std::vector<Case>{
           {{{"name", "alice"}, {"password_hash", h}}, 409, "exists"},
           {{{"name", "Alice"}, {"password_hash", h}}, 400, "bad_name"},
           {{{"name", "carol"}, {"password_hash", "hunter22"}}, 400, "bad_hash"},
           {{{"name", "carol"}}, 400, "bad_request"},
           {{{"name", 7}, {"password_hash", h}}, 400, "bad_request"},
           {{{"name", "carol"}, {"password_hash", h}, {"admin", "yes"}}, 400, "bad_request"},
           {json::array(), 400, "bad_request"},
       }) {
    r = call("POST", "/v1/users", c.body);
    EXPECT_EQ(r.status, c.status) << c.body;
    EXPECT_EQ(code_of(r), c.code) << c.body;
    EXPECT_FALSE(r.body["error"].value("message", "").empty());
  }
  r = call("POST", "/v1/users");  // no body at all
  EXPECT_EQ(r.status, 400);

  auto s = accounts->create_session("bob");
  ASSERT_TRUE(s.ok());
  r = call("POST", "/v1/users/password", {{"name", "bob"}, {"password_hash", cheap_hash("new")}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body["sessions_ended"], 1);
  r = call("POST", "/v1/users/password", {{"name", "carol"}, {"password_hash", h}});
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(code_of(r), "unknown_user");
  r = call("POST", "/v1/users/password", {{"name", "bob"}, {"password_hash", "$argon2id$x"}});
  EXPECT_EQ(code_of(r), "bad_hash");

  ASSERT_TRUE(accounts->create_token("bob", "ci").ok());
  r = call("DELETE", "/v1/users?name=bob");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body["deleted"], "bob");
  EXPECT_EQ(r.body["tokens_revoked"], 1);
  r = call("DELETE", "/v1/users?name=bob");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(code_of(r), "unknown_user");
  EXPECT_EQ(call("DELETE", "/v1/users").status, 400);
  EXPECT_EQ(call("GET", "/v1/users").body["users"].size(), 1u);
}

TEST_F(AccountsApiTest, TokensCreateListAndRevoke) {
  ASSERT_TRUE(accounts->add_user("alice", cheap_hash("pw"), false).ok());
  auto r = call("POST", "/v1/tokens", {{"user", "alice"}, {"label", "laptop"}});
  ASSERT_EQ(r.status, 200) << r.body;
  const std::string token = r.body["token"];
  const std::string id = r.body["id"];
  EXPECT_TRUE(token.starts_with("evt_"));
  EXPECT_EQ(accounts->token_user(token)->name, "alice");
  r = call("POST", "/v1/tokens", {{"user", "alice"}});  // the label is optional
  ASSERT_EQ(r.status, 200) << r.body;

  r = call("GET", "/v1/tokens?user=alice");
  ASSERT_EQ(r.status, 200);
  ASSERT_EQ(r.body["tokens"].size(), 2u);
  // Both were made in the same second: in either order.
  const bool first = r.body["tokens"][0]["id"] == id;
  const json& laptop = r.body["tokens"][first ? 0 : 1];
  EXPECT_EQ(laptop["id"], id);
  EXPECT_EQ(laptop["user"], "alice");
  EXPECT_EQ(laptop["label"], "laptop");
  EXPECT_FALSE(laptop["last_used"].is_null());  // used just above
  EXPECT_TRUE(r.body["tokens"][first ? 1 : 0]["last_used"].is_null());
  EXPECT_EQ(r.body.dump().find(token), std::string::npos);  // secrets are never listed
  EXPECT_EQ(call("GET", "/v1/tokens").body["tokens"].size(), 2u);
  r = call("GET", "/v1/tokens?user=nobody");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(code_of(r), "unknown_user");

  EXPECT_EQ(code_of(call("POST", "/v1/tokens", {{"user", "nobody"}})), "unknown_user");
  EXPECT_EQ(code_of(call("POST", "/v1/tokens", {{"user", "alice"}, {"label", "a\tb"}})),
            "bad_label");
  EXPECT_EQ(code_of(call("POST", "/v1/tokens", {{"label", "x"}})), "bad_request");

  r = call("DELETE", "/v1/tokens?id=" + id);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body["revoked"], id);
  EXPECT_EQ(r.body["user"], "alice");
  EXPECT_FALSE(accounts->token_user(token));
  r = call("DELETE", "/v1/tokens?id=" + id);
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(code_of(r), "unknown_token");
  r = call("DELETE", "/v1/tokens?id=nothex");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(code_of(r), "bad_token_id");
  EXPECT_EQ(call("DELETE", "/v1/tokens").status, 400);
}

}  // namespace
}  // namespace evert::web
