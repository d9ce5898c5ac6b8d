#include "evert/daemon/daemon.h"

#include <event2/event.h>
#include <signal.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/sinks/systemd_sink.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <iostream>
#include <thread>

#include "evert/control_client.h"
#include "evert/daemon/systemd.h"

namespace evert::daemon {

using nlohmann::json;

std::vector<ModuleSchema> schemas_of(const ModuleRegistry& registry) {
  std::vector<ModuleSchema> out;
  for (const auto& m : registry)
    out.push_back({m.name, m.description, m.print_defaults, m.default_on});
  return out;
}

Daemon::Daemon(const ModuleRegistry& registry, std::string config_path, Config config)
    : registry_(registry), config_path_(std::move(config_path)), config_(std::move(config)) {
  setup_logging();
}

Daemon::~Daemon() {
  for (event* e : signals_)
    event_free(e);
}

void Daemon::setup_logging() {
  const bool journal = config_.log.target == "journal" ||
                       (config_.log.target == "auto" && systemd::stderr_is_journal());
  if (journal) {
    sinks_.push_back(std::make_shared<spdlog::sinks::systemd_sink_mt>("evertd"));
  } else {
    auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    sink->set_pattern("%Y-%m-%d %H:%M:%S.%e %l [%n] %v");
    sinks_.push_back(sink);
  }
  log_ = std::make_shared<spdlog::logger>("evertd", sinks_.begin(), sinks_.end());
  log_->set_level(spdlog::level::from_str(config_.log.level));
  log_->flush_on(spdlog::level::info);
  set_callback_error_handler([log = log_](const char* where, const char* what) {
    log->error("{} failed and was stopped; the daemon goes on: {}", where, what);
  });
}

void Daemon::request_stop() {
  if (stopping_) return;
  stopping_ = true;
  loop_.stop();
}

void Daemon::schedule_commit() {
  if (store_->pending() == 0) return;
  store_->commit([this](const Status& s) {
    if (!s) loop_.post([this, e = s.error().message] { log_->error("store: {}", e); });
  });
}

json Daemon::status_json() const {
  json mods = json::array();
  for (const auto& r : modules_) {
    json m = {{"name", r.info->name}, {"state", r.state}};
    m["status"] = r.module->status();
    mods.push_back(std::move(m));
  }
  const auto uptime =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started_);
  return {{"version", EVERT_VERSION},
          {"pid", getpid()},
          {"uptime_seconds", uptime.count()},
          {"callback_errors", callback_errors()},
          {"config_files", config_.files},
          {"state_dir", config_.daemon.state_dir},
          {"modules", mods},
          {"store", {{"pending_changes", store_->pending()}, {"map_size", store_->map_size()}}}};
}

void Daemon::register_routes() {
  api_.on_mutation = [this](const ApiRequest& r) {
    log_->info("control: {} {} by pid {} uid {} gid {}", r.method, r.path, r.peer.pid, r.peer.uid,
               r.peer.gid);
  };
  api_.route("GET", "/v1/status", [this](const ApiRequest&) {
    ApiResponse r;
    r.body = status_json();
    return r;
  });
  api_.route("POST", "/v1/reload", [this](const ApiRequest&) {
    const ReloadReport rep = reload();
    if (!rep.ok) return ApiResponse::error(422, "config_invalid", rep.error);
    ApiResponse r;
    r.body = {{"ok", true}, {"applied", rep.applied}, {"restart_needed", rep.restart}};
    return r;
  });
}

Status Daemon::start() {
  inherited_fds_ = systemd::listen_fds();
  workers_ = std::make_unique<WorkerPool>(config_.daemon.worker_threads);
  bulk_ = std::make_unique<WorkerPool>(config_.daemon.bulk_threads);
  StoreOptions so;
  so.dir = config_.daemon.state_dir;
  so.map_size = config_.store.map_size;
  auto store = Store::open(so);
  if (!store) return store.error();
  store_ = std::move(store).value();

  register_routes();
  ControlApi::Options ao;
  ao.socket_path = config_.control.socket;
  ao.socket_mode = config_.control.socket_mode;
  ao.socket_group = config_.control.socket_group;
  ao.max_body = config_.control.max_body;
  if (auto it = inherited_fds_.find("control"); it != inherited_fds_.end()) {
    ao.inherited_fd = it->second;
    log_->info("control API on the socket passed by systemd");
  }
  if (auto s = api_.start(ao); !s) return Error("control API: " + s.error().message);
  FdApi::Options fo;
  fo.socket_path = fd_socket_path(config_.control.socket);
  fo.socket_mode = config_.control.socket_mode;
  fo.socket_group = config_.control.socket_group;
  if (auto it = inherited_fds_.find("fds"); it != inherited_fds_.end()) {
    fo.inherited_fd = it->second;
  }
  if (auto s = fd_api_.start(fo); !s) return Error("descriptor socket: " + s.error().message);

  for (const auto& name : config_.daemon.modules) {
    const ModuleInfo* info = nullptr;
    for (const auto& m : registry_) {
      if (m.name == name) info = &m;
    }
    Running r{info, info->create(), "starting"};
    auto section = config_.modules.count(name) ? config_.modules.at(name) : YAML::Node();
    if (auto s = r.module->configure(section); !s) {
      return Error("module " + name + ": " + s.error().message);
    }
    auto ctx = std::make_unique<ModuleContext>(ModuleContext{
        loop_, *store_, *workers_,
        std::make_shared<spdlog::logger>(name, sinks_.begin(), sinks_.end()),
        [this](const std::string& m, const std::string& p, ApiHandler h) {
          api_.route(m, p, std::move(h));
        },
        [this](const std::string& fd_name) {
          auto it = inherited_fds_.find(fd_name);
          return it == inherited_fds_.end() ? -1 : it->second;
        },
        [this](const std::string& module_name) -> Module* {
          for (auto& running : modules_) {
            if (running.info->name == module_name) return running.module.get();
          }
          return nullptr;
        },
        [this](const std::string& op, FdHandler h) { fd_api_.route(op, std::move(h)); },
        config_.daemon.state_dir, bulk_.get(),
        [this](ApiRequest& req) { return api_.dispatch(req); }});
    ctx->log->set_level(log_->level());
    if (auto s = r.module->start(*ctx); !s) {
      return Error("module " + name + " failed to start: " + s.error().message);
    }
    r.state = "running";
    log_->info("module {} started", name);
    modules_.push_back(std::move(r));
    contexts_.push_back(std::move(ctx));
  }
  return Ok{};
}

void Daemon::stop_modules() {
  for (auto it = modules_.rbegin(); it != modules_.rend(); ++it) {
    if (it->state != "running") continue;
    it->module->stop();
    it->state = "stopped";
    log_->info("module {} stopped", it->info->name);
  }
}

ReloadReport Daemon::reload() {
  ReloadReport rep;
  systemd::notify_reloading();
  auto fresh = load_config(config_path_, schemas_of(registry_));
  if (!fresh) {
    rep.error = fresh.error().message;
    log_->error("reload refused, keeping the running configuration: {}", rep.error);
    systemd::notify("READY=1\nSTATUS=Reload failed: " + rep.error);
    return rep;
  }
  const Config& next = *fresh;
  // Validate every module's new section before anything changes.
  size_t configured = 0;
  for (; configured < modules_.size(); ++configured) {
    const std::string& n = modules_[configured].info->name;
    auto section = next.modules.count(n) ? next.modules.at(n) : YAML::Node();
    if (auto s = modules_[configured].module->configure(section); !s) {
      rep.error = "module " + n + ": " + s.error().message;
      break;
    }
  }
  if (!rep.error.empty()) {
    for (size_t i = 0; i < configured; ++i) {  // give back the old sections
      const std::string& n = modules_[i].info->name;
      (void)modules_[i].module->configure(config_.modules.count(n) ? config_.modules.at(n)
                                                                   : YAML::Node());
    }
    log_->error("reload refused, keeping the running configuration: {}", rep.error);
    systemd::notify("READY=1\nSTATUS=Reload failed: " + rep.error);
    return rep;
  }

  const auto changes = diff_configs(config_, next);
  Config applied = config_;
  applied.files = next.files;
  applied.daemon.shutdown_timeout = next.daemon.shutdown_timeout;
  applied.log.level = next.log.level;
  applied.control.max_body = next.control.max_body;
  applied.store.commit_interval = next.store.commit_interval;
  applied.modules = next.modules;
  log_->set_level(spdlog::level::from_str(applied.log.level));
  for (auto& c : contexts_)
    c->log->set_level(log_->level());
  api_.set_max_body(applied.control.max_body);
  commit_timer_.start(std::chrono::milliseconds(applied.store.commit_interval), true);

  for (const auto& c : changes)
    (c.reloadable ? rep.applied : rep.restart).push_back(c.key);
  for (auto& r : modules_) {
    for (const auto& key : r.module->reload())
      rep.restart.push_back(r.info->name + "." + key);
  }
  config_ = std::move(applied);
  rep.ok = true;
  std::string summary = "reloaded";
  for (const auto& k : rep.applied)
    summary += " " + k;
  if (!rep.restart.empty()) {
    std::string keys;
    for (const auto& k : rep.restart)
      keys += (keys.empty() ? "" : ", ") + k;
    log_->warn("reload: these changes need a restart: {}", keys);
  }
  log_->info("{}", summary);
  systemd::notify("READY=1\nSTATUS=Running (reloaded)");
  return rep;
}

int Daemon::run() {
  if (auto s = start(); !s) {
    log_->critical("cannot start: {}", s.error().message);
    systemd::notify("STATUS=Failed: " + s.error().message);
    stop_modules();
    api_.stop();
    fd_api_.stop();
    return 1;
  }
  auto on_signal = [](evutil_socket_t sig, short, void* self) {
    auto* d = static_cast<Daemon*>(self);
    if (sig == SIGHUP) {
      d->reload();
    } else {
      d->log_->info("{} received, stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
      d->request_stop();
    }
  };
  for (int sig : {SIGTERM, SIGINT, SIGHUP}) {
    event* e = evsignal_new(loop_.base(), sig, on_signal, this);
    event_add(e, nullptr);
    signals_.push_back(e);
  }
  commit_timer_.start(std::chrono::milliseconds(config_.store.commit_interval), true);
  if (const auto wd = systemd::watchdog_interval(); wd.count() > 0) {
    watchdog_timer_.start(std::chrono::duration_cast<std::chrono::milliseconds>(wd / 2), true);
  }
  log_->info("evertd {} ready: control API on {}", EVERT_VERSION, config_.control.socket);
  systemd::notify("READY=1\nSTATUS=Running: " + std::to_string(modules_.size()) + " module(s)");

  loop_.run();

  // Graceful stop, bounded: if it takes longer than shutdown_timeout, exit anyway.
  systemd::notify("STOPPING=1\nSTATUS=Stopping");
  const int timeout = config_.daemon.shutdown_timeout;
  std::thread([timeout, log = log_] {
    std::this_thread::sleep_for(std::chrono::seconds(timeout));
    log->error("stop took longer than {} s (daemon.shutdown_timeout); exiting", timeout);
    _exit(1);
  }).detach();
  api_.stop();
  fd_api_.stop();
  stop_modules();
  bulk_->shutdown();
  workers_->shutdown();
  if (auto s = store_->flush(); !s)
    log_->error("store: final commit failed: {}", s.error().message);
  log_->info("stopped");
  return 0;
}

int daemon_main(int argc, char** argv, const ModuleRegistry& registry) {
  CLI::App app{"evertd: the Evertorrent daemon (tracker and permanent seed). See evertd(8)."};
  std::string config_path = kDefaultConfigPath;
  bool check = false, print_defaults = false, commented = false;
  app.add_option("-c,--config", config_path, "Configuration file")->capture_default_str();
  app.add_flag("--check-config", check, "Validate the configuration and exit");
  app.add_flag("--print-default-config", print_defaults, "Print every key at its default and exit");
  app.add_flag("--commented", commented, "With --print-default-config: comment every line out");
  app.set_version_flag("-V,--version", "evertd " EVERT_VERSION);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  const auto schemas = schemas_of(registry);
  if (print_defaults) {
    std::cout << print_default_config(schemas, commented);
    return 0;
  }
  auto config = load_config(config_path, schemas);
  if (!config) {
    std::cerr << "evertd: " << config.error().message << '\n';
    return 1;
  }
  if (check) {
    std::string files;
    for (const auto& f : config->files)
      files += (files.empty() ? "" : ", ") + f;
    std::cout << "configuration OK: " << files << '\n';
    return 0;
  }
  signal(SIGPIPE, SIG_IGN);
  // Every peer connection and every file of a torrent being served is a descriptor: the soft
  // limit (often 1,024) goes up to the hard one (systemd's default is 524,288).
  if (rlimit rl{}; getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  Daemon d(registry, config_path, std::move(config).value());
  return d.run();
}

}  // namespace evert::daemon
