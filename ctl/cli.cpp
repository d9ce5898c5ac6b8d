#include "cli.h"

#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <iostream>

#include "evert/control_client.h"

namespace evert::ctl {

void add_common_options(CLI::App& cmd, CommonOptions& common) {
  cmd.add_flag("--json", common.json, "Print machine-readable JSON on stdout");
  cmd.add_flag("-q,--quiet", common.quiet, "No progress bar and no warnings");
}

int fail(const std::string& message) {
  std::cerr << "evertctl: " << message << '\n';
  return kExitFailure;
}

int fail(const CommonOptions& common, const std::string& code, const std::string& message) {
  if (common.json) print_json({{"error", {{"code", code}, {"message", message}}}});
  return fail(message);
}

int usage_error(const CommonOptions& common, const std::string& message) {
  fail(common, "usage", message);
  std::cerr << "Run with --help for more information.\n";
  return kExitUsage;
}

std::string DaemonOptions::socket_path() const {
  if (!socket.empty()) return socket;
  if (const char* env = std::getenv("EVERT_SOCKET"); env != nullptr && *env != '\0') return env;
  return kDefaultControlSocket;
}

void add_daemon_options(CLI::App& cmd, DaemonOptions& daemon) {
  cmd.add_option("--socket", daemon.socket,
                 std::string("evertd's control socket (default: $EVERT_SOCKET, else ") +
                     kDefaultControlSocket + ")");
}

std::optional<nlohmann::json> call_daemon(const CommonOptions& common, const DaemonOptions& daemon,
                                          const std::string& method, const std::string& path,
                                          const std::string& body, int& exit_code,
                                          const std::string& module) {
  exit_code = kExitFailure;
  auto r = control_request(daemon.socket_path(), method, path, body);
  if (!r) {
    fail(common, "unreachable", r.error().message);
    return std::nullopt;
  }
  auto j = nlohmann::json::parse(r->body, nullptr, false);
  if (j.is_discarded()) {
    fail(common, "bad_answer",
         "evertd answered HTTP " + std::to_string(r->status) + " with something that is not JSON");
    return std::nullopt;
  }
  if (r->status >= 400) {
    const auto& e = j.contains("error") ? j["error"] : nlohmann::json::object();
    if (!module.empty() && r->status == 404 && e.value("code", "") == "not_found") {
      fail(common, "module_not_running",
           "evertd does not run the " + module + " module: add " + module +
               " to daemon.modules in evertd.yaml (evertd.yaml(5)) and restart evertd");
      return std::nullopt;
    }
    if (common.json) {
      print_json(j);
    }
    fail(e.value("message", "evertd answered HTTP " + std::to_string(r->status)));
    return std::nullopt;
  }
  exit_code = kExitOk;
  return j;
}

bool stderr_is_tty() {
  return isatty(STDERR_FILENO) == 1;
}

void print_json(const nlohmann::json& j) {
  // Torrent names and paths are bytes, not always UTF-8: replace invalid sequences instead of
  // throwing.
  std::cout << json_text(j, 2) << '\n';
}

namespace {
std::atomic<bool> g_interrupted{false};
void on_interrupt(int /*sig*/) {
  g_interrupted = true;
}
}  // namespace

std::atomic<bool>& interrupted() {
  return g_interrupted;
}

void catch_interrupts() {
  std::signal(SIGINT, on_interrupt);
  std::signal(SIGTERM, on_interrupt);
}

}  // namespace evert::ctl
