// The module host: reads the config, opens the store, serves the control API, starts the
// configured modules in order, handles signals (SIGTERM/SIGINT stop, SIGHUP reloads), commits
// the store on a timer, pings the systemd watchdog, and stops everything in reverse order.
#pragma once

#include <spdlog/logger.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "evert/daemon/config.h"
#include "evert/daemon/control_api.h"
#include "evert/daemon/event_loop.h"
#include "evert/daemon/fd_api.h"
#include "evert/daemon/module.h"
#include "evert/daemon/store.h"
#include "evert/daemon/systemd.h"
#include "evert/daemon/worker_pool.h"

struct event;

namespace evert::daemon {

struct ReloadReport {
  bool ok = false;
  std::string error;                 // why the new config was refused (the old one stays)
  std::vector<std::string> applied;  // changed keys now in effect
  std::vector<std::string> restart;  // changed keys that need a restart
};

class Daemon {
 public:
  Daemon(const ModuleRegistry& registry, std::string config_path, Config config);
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // Runs until stopped; returns the process exit code (0 after a graceful stop).
  int run();
  ReloadReport reload();
  void request_stop();

 private:
  Status start();
  void stop_modules();
  void register_routes();
  void schedule_commit();
  void setup_logging();
  nlohmann::json status_json() const;

  struct Running {
    const ModuleInfo* info;
    std::unique_ptr<Module> module;
    std::string state;  // "running", "stopped"
  };

  const ModuleRegistry& registry_;
  std::string config_path_;
  Config config_;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  std::shared_ptr<spdlog::logger> log_;
  std::vector<spdlog::sink_ptr> sinks_;

  EventLoop loop_;
  std::unique_ptr<WorkerPool> workers_;
  std::unique_ptr<WorkerPool> bulk_;  // long jobs (ModuleContext::bulk)
  std::unique_ptr<Store> store_;
  ControlApi api_{loop_};
  FdApi fd_api_{loop_};
  std::vector<Running> modules_;
  std::vector<std::unique_ptr<ModuleContext>> contexts_;
  std::map<std::string, int> inherited_fds_;
  Timer commit_timer_{loop_, [this] { schedule_commit(); }};
  Timer watchdog_timer_{loop_, [] { systemd::notify("WATCHDOG=1"); }};
  std::vector<event*> signals_;
  bool stopping_ = false;
};

// evertd's main: the command line (--config, --check-config, --print-default-config), then
// Daemon::run(). Tests pass a registry with test-only modules.
int daemon_main(int argc, char** argv, const ModuleRegistry& registry);

std::vector<ModuleSchema> schemas_of(const ModuleRegistry& registry);

}  // namespace evert::daemon
