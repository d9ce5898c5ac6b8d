#include "accounts_api.h"

#include "evert/magnet.h"

namespace evert::web {
namespace {

using daemon::ApiRequest;
using daemon::ApiResponse;
using nlohmann::json;
using Code = AccountError::Code;

int status_of(Code code) {
  switch (code) {
    case Code::kBadName:
    case Code::kBadHash:
    case Code::kWeakPassword:
    case Code::kBadLabel:
    case Code::kBadTokenId:
      return 400;
    case Code::kUnknownUser:
    case Code::kUnknownToken:
      return 404;
    case Code::kExists:
    case Code::kTooMany:
      return 409;
    case Code::kBusy:
      return 503;
    case Code::kInternal:
      break;
  }
  return 500;
}

ApiResponse error_of(const AccountError& e) {
  return ApiResponse::error(status_of(e.code), e.code_name(), e.message);
}

json user_json(const User& u) {
  return {{"name", u.name}, {"admin", u.admin}, {"created", u.created}};
}

json token_json(const TokenInfo& t) {
  return {{"id", t.id},
          {"user", t.user},
          {"label", t.label},
          {"created", t.created},
          {"last_used", t.last_used == 0 ? json() : json(t.last_used)}};
}

// The decoded value of a query parameter ("" when absent or malformed).
std::string param(const ApiRequest& r, const std::string& key) {
  return percent_decode(daemon::query_param(r.query, key)).value_or("");
}

// The string member `key` of the body, or an error naming it.
std::optional<ApiResponse> string_member(const ApiRequest& r, const char* key, std::string& out,
                                         bool required = true) {
  if (!r.json.is_object()) {
    return ApiResponse::error(400, "bad_request", "expected a JSON object");
  }
  if (!r.json.contains(key)) {
    if (!required) return std::nullopt;
    return ApiResponse::error(400, "bad_request", std::string("missing \"") + key + "\"");
  }
  if (!r.json[key].is_string()) {
    return ApiResponse::error(400, "bad_request",
                              std::string("\"") + key + "\": expected a string");
  }
  out = r.json[key].get<std::string>();
  return std::nullopt;
}

class AccountRoutes {
 public:
  AccountRoutes(Accounts& accounts, std::shared_ptr<spdlog::logger> log)
      : accounts_(accounts), log_(std::move(log)) {}

  ApiResponse list_users(const ApiRequest&) const {
    json list = json::array();
    for (const User& u : accounts_.users())
      list.push_back(user_json(u));
    ApiResponse res;
    res.body = {{"users", list}};
    return res;
  }

  ApiResponse add_user(const ApiRequest& r) const {
    std::string name, hash;
    if (auto e = string_member(r, "name", name)) return *e;
    if (auto e = string_member(r, "password_hash", hash)) return *e;
    bool admin = false;
    if (r.json.contains("admin")) {
      if (!r.json["admin"].is_boolean()) {
        return ApiResponse::error(400, "bad_request", "\"admin\": expected true or false");
      }
      admin = r.json["admin"].get<bool>();
    }
    auto u = accounts_.add_user(name, hash, admin);
    if (!u) return error_of(u.error());
    log_->info("user {} added{} by uid {}", name, admin ? " (admin)" : "", r.peer.uid);
    ApiResponse res;
    res.body = {{"user", user_json(*u)}};
    return res;
  }

  ApiResponse delete_user(const ApiRequest& r) const {
    const std::string name = param(r, "name");
    if (name.empty()) return ApiResponse::error(400, "bad_request", "missing ?name=USER");
    auto e = accounts_.delete_user(name);
    if (!e) return error_of(e.error());
    log_->info("user {} deleted ({} sessions ended, {} tokens revoked) by uid {}", name,
               e->sessions, e->tokens, r.peer.uid);
    ApiResponse res;
    res.body = {{"deleted", name}, {"sessions_ended", e->sessions}, {"tokens_revoked", e->tokens}};
    return res;
  }

  ApiResponse set_password(const ApiRequest& r) const {
    std::string name, hash;
    if (auto e = string_member(r, "name", name)) return *e;
    if (auto e = string_member(r, "password_hash", hash)) return *e;
    auto e = accounts_.set_password_hash(name, hash);
    if (!e) return error_of(e.error());
    log_->info("password of user {} set ({} sessions ended) by uid {}", name, e->sessions,
               r.peer.uid);
    ApiResponse res;
    res.body = {{"name", name}, {"sessions_ended", e->sessions}};
    return res;
  }

  ApiResponse list_tokens(const ApiRequest& r) const {
    const std::string name = param(r, "user");
    if (!name.empty() && !accounts_.user(name)) {
      return ApiResponse::error(404, "unknown_user", "no user named '" + name + "'");
    }
    json list = json::array();
    for (const TokenInfo& t : accounts_.tokens(name))
      list.push_back(token_json(t));
    ApiResponse res;
    res.body = {{"tokens", list}};
    return res;
  }

  ApiResponse create_token(const ApiRequest& r) const {
    std::string name, label;
    if (auto e = string_member(r, "user", name)) return *e;
    if (auto e = string_member(r, "label", label, /*required=*/false)) return *e;
    auto t = accounts_.create_token(name, label);
    if (!t) return error_of(t.error());
    log_->info("token {} of user {} created by uid {}", t->id, name, r.peer.uid);
    ApiResponse res;
    res.body = {{"token", t->token}, {"id", t->id}, {"user", name}, {"label", label}};
    return res;
  }

  ApiResponse revoke_token(const ApiRequest& r) const {
    const std::string id = param(r, "id");
    if (id.empty()) return ApiResponse::error(400, "bad_request", "missing ?id=TOKEN_ID");
    auto t = accounts_.revoke_token(id);
    if (!t) return error_of(t.error());
    log_->info("token {} of user {} revoked by uid {}", t->id, t->user, r.peer.uid);
    ApiResponse res;
    res.body = {{"revoked", t->id}, {"user", t->user}, {"label", t->label}};
    return res;
  }

 private:
  Accounts& accounts_;
  std::shared_ptr<spdlog::logger> log_;
};

}  // namespace

void register_account_routes(const RouteFn& route, Accounts& accounts,
                             std::shared_ptr<spdlog::logger> log) {
  auto r = std::make_shared<AccountRoutes>(accounts, std::move(log));
  auto bind = [r](ApiResponse (AccountRoutes::*fn)(const ApiRequest&) const) {
    return [r, fn](const ApiRequest& req) { return ((*r).*fn)(req); };
  };
  route("GET", "/v1/users", bind(&AccountRoutes::list_users));
  route("POST", "/v1/users", bind(&AccountRoutes::add_user));
  route("DELETE", "/v1/users", bind(&AccountRoutes::delete_user));
  route("POST", "/v1/users/password", bind(&AccountRoutes::set_password));
  route("GET", "/v1/tokens", bind(&AccountRoutes::list_tokens));
  route("POST", "/v1/tokens", bind(&AccountRoutes::create_token));
  route("DELETE", "/v1/tokens", bind(&AccountRoutes::revoke_token));
}

std::unique_ptr<Accounts> start_accounts(daemon::ModuleContext& ctx,
                                         const Accounts::Options& options) {
  auto accounts = std::make_unique<Accounts>(ctx.store, ctx.loop, ctx.workers, options);
  register_account_routes(ctx.route, *accounts, ctx.log);
  const size_t users = accounts->users().size();
  ctx.log->info("accounts: {} user{}", users, users == 1 ? "" : "s");
  return accounts;
}

}  // namespace evert::web
