// The control-API routes of the web module's accounts (docs/control-api.md): users and API
// tokens, for evertctl user/token. Control handlers answer at once, so passwords arrive hashed
// (evertctl hashes them with libsodium); evertd checks the hash strings.
//
// Thread-safety: loop thread only (the handlers run there).
#pragma once

#include <spdlog/logger.h>

#include <functional>
#include <memory>
#include <string>

#include "accounts.h"
#include "evert/daemon/control_api.h"
#include "evert/daemon/module.h"

namespace evert::web {

using RouteFn = std::function<void(const std::string& method, const std::string& path,
                                   daemon::ApiHandler handler)>;

// Registers GET/POST/DELETE /v1/users, POST /v1/users/password, GET/POST/DELETE /v1/tokens.
// `accounts` must outlive the routes; `log` records each change with the caller's uid.
void register_account_routes(const RouteFn& route, Accounts& accounts,
                             std::shared_ptr<spdlog::logger> log);

// The web module's accounts over its context's store, loop and workers, with their routes
// registered (WebModule::start). The context must outlive the object.
std::unique_ptr<Accounts> start_accounts(daemon::ModuleContext& ctx,
                                         const Accounts::Options& options);

}  // namespace evert::web
