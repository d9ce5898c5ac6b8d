// A module of evertd (the tracker, the everseed, the web interface): a small interface the host
// drives, and a context through which the module reaches the loop, the store, the logger and the
// control API (STYLE.md §3) instead of globals.
#pragma once

#include <spdlog/logger.h>
#include <yaml-cpp/yaml.h>

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "evert/daemon/config.h"
#include "evert/daemon/control_api.h"
#include "evert/daemon/event_loop.h"
#include "evert/daemon/fd_api.h"
#include "evert/daemon/store.h"
#include "evert/daemon/worker_pool.h"
#include "evert/result.h"

namespace evert::daemon {

// What the host hands a module at start. Everything lives at least until the module stops.
struct ModuleContext {
  EventLoop& loop;
  Store& store;
  WorkerPool& workers;
  std::shared_ptr<spdlog::logger> log;  // named after the module
  // Registers a control-API route (also served later by the web module under /api/v1/).
  std::function<void(const std::string& method, const std::string& path, ApiHandler)> route;
  // A listening socket passed by systemd under this FileDescriptorName, or -1.
  std::function<int(const std::string& name)> inherited_fd;
  // A module started before this one, by name, or nullptr. Modules talk through the narrow
  // interfaces they implement (dynamic_cast to it), never through globals (DESIGN.md).
  std::function<class Module*(const std::string& name)> module = [](const std::string&) {
    return static_cast<class Module*>(nullptr);
  };
  // Registers an operation on the descriptor socket (fd_api.h): requests that hand evertd
  // files opened by the client.
  std::function<void(const std::string& op, FdHandler)> fd_route = [](const std::string&,
                                                                      FdHandler) {};
  std::string state_dir;  // daemon.state_dir: the store, and the content store below it
  // Threads for jobs that take seconds to minutes (publishing: copying, hashing, verifying),
  // apart from `workers`, whose work someone is waiting for now (a peer's block, a login):
  // two large publishes used to hold every worker and freeze seeding and logins (issue 15).
  // nullptr (tests): `workers` does both.
  WorkerPool* bulk = nullptr;
  WorkerPool& bulk_pool() const { return bulk != nullptr ? *bulk : workers; }
  // Calls a control-API route as the Unix socket would (the web module's /api/v1/ and pages:
  // one implementation of each operation, two front ends).
  std::function<ApiResponse(ApiRequest&)> call = [](ApiRequest&) {
    return ApiResponse::error(503, "unavailable", "no control API");
  };
};

class Module {
 public:
  virtual ~Module() = default;
  [[nodiscard]] virtual std::string name() const = 0;
  // Validates the module's config section (null when absent). Called before start and, with
  // the new section, before reload; an error keeps the old configuration.
  virtual Status configure(const YAML::Node& section) = 0;
  // Starts: binds listeners, registers routes. An error stops the daemon with a message
  // naming the module.
  virtual Status start(ModuleContext& context) = 0;
  // Applies the section last given to configure(); returns the keys that need a restart.
  virtual std::vector<std::string> reload() { return {}; }
  // Stops accepting and finishes (bounded by the host's shutdown timeout).
  virtual void stop() = 0;
  // A JSON object for GET /v1/status.
  [[nodiscard]] virtual nlohmann::json status() const { return nlohmann::json::object(); }
};

// A built-in module: its name, a one-line description, its config defaults, and a factory.
struct ModuleInfo {
  std::string name;
  std::string description;
  std::function<std::unique_ptr<Module>()> create;
  std::function<std::string(const std::string& prefix)> print_defaults;  // may be empty
  bool default_on = false;  // in daemon.modules when the config does not list modules
};

using ModuleRegistry = std::vector<ModuleInfo>;

// The registry of evertd's built-in modules.
const ModuleRegistry& builtin_modules();

}  // namespace evert::daemon
