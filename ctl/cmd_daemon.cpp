// evertctl status and reload: the daemon's state, and re-reading its configuration.
#include <iostream>
#include <memory>

#include "cli.h"

namespace evert::ctl {

namespace {

struct DaemonArgs {
  CommonOptions common;
  DaemonOptions daemon;
};

std::string uptime_text(long long s) {
  if (s < 60) return std::to_string(s) + "s";
  if (s < 3600) return std::to_string(s / 60) + "m " + std::to_string(s % 60) + "s";
  if (s < 86400) return std::to_string(s / 3600) + "h " + std::to_string(s / 60 % 60) + "m";
  return std::to_string(s / 86400) + "d " + std::to_string(s / 3600 % 24) + "h";
}

int run_status(const DaemonArgs& a) {
  int code = kExitOk;
  auto j = call_daemon(a.common, a.daemon, "GET", "/v1/status", "", code);
  if (!j) return code;
  if (a.common.json) {
    print_json(*j);
    return kExitOk;
  }
  std::cout << "evertd " << j->value("version", "?") << " is running (pid " << j->value("pid", 0)
            << ", up " << uptime_text(j->value("uptime_seconds", 0LL)) << ")\n";
  std::cout << "State:    " << j->value("state_dir", "?") << '\n';
  const auto& mods = (*j)["modules"];
  if (mods.empty()) std::cout << "Modules:  none\n";
  for (size_t i = 0; i < mods.size(); ++i) {
    std::cout << (i == 0 ? "Modules:  " : "          ") << mods[i].value("name", "?") << " ("
              << mods[i].value("state", "?") << ")\n";
  }
  return kExitOk;
}

int run_reload(const DaemonArgs& a) {
  int code = kExitOk;
  auto j = call_daemon(a.common, a.daemon, "POST", "/v1/reload", "", code);
  if (!j) return code;
  if (a.common.json) {
    print_json(*j);
    return kExitOk;
  }
  const auto& applied = (*j)["applied"];
  const auto& restart = (*j)["restart_needed"];
  std::cout << "Configuration reloaded";
  if (applied.empty() && restart.empty()) std::cout << " (no changes)";
  std::cout << '\n';
  for (const auto& k : applied)
    std::cout << "  applied: " << k.get<std::string>() << '\n';
  for (const auto& k : restart) {
    std::cout << "  needs a restart: " << k.get<std::string>() << '\n';
  }
  return kExitOk;
}

}  // namespace

Command add_status(CLI::App& parent) {
  auto a = std::make_shared<DaemonArgs>();
  CLI::App* cmd = parent.add_subcommand("status", "Show whether evertd runs, and its modules");
  add_daemon_options(*cmd, a->daemon);
  add_common_options(*cmd, a->common);
  return {cmd, [a] { return run_status(*a); }};
}

Command add_reload(CLI::App& parent) {
  auto a = std::make_shared<DaemonArgs>();
  CLI::App* cmd = parent.add_subcommand(
      "reload", "Make evertd re-read its configuration (a bad file is refused; the old stays)");
  add_daemon_options(*cmd, a->daemon);
  add_common_options(*cmd, a->common);
  return {cmd, [a] { return run_reload(*a); }};
}

}  // namespace evert::ctl
