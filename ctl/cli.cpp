#include "cli.h"

#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <vector>

#include "evert/control_client.h"

namespace evert::ctl {

namespace {
// Every command's options, for apply_global_options() (the program registers them once).
std::vector<CommonOptions*>& all_common() {
  static std::vector<CommonOptions*> v;
  return v;
}
std::vector<DaemonOptions*>& all_daemon() {
  static std::vector<DaemonOptions*> v;
  return v;
}
}  // namespace

void add_common_options(CLI::App& cmd, CommonOptions& common) {
  cmd.add_flag("--json", common.json, "Print machine-readable JSON on stdout");
  cmd.add_flag("-q,--quiet", common.quiet, "No progress bar and no warnings");
  all_common().push_back(&common);
}

void add_global_options(CLI::App& app, GlobalOptions& global) {
  app.add_option("--socket", global.socket,
                 "evertd's control socket, for every command that talks to evertd (also "
                 "accepted after the command)");
  app.add_flag("--json", global.json, "Print machine-readable JSON on stdout");
  app.add_flag("-q,--quiet", global.quiet, "No progress bar and no warnings");
}

void apply_global_options(const GlobalOptions& global) {
  for (CommonOptions* c : all_common()) {
    c->json = c->json || global.json;
    c->quiet = c->quiet || global.quiet;
  }
  for (DaemonOptions* d : all_daemon()) {
    if (d->socket.empty()) d->socket = global.socket;
  }
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
  all_daemon().push_back(&daemon);
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

size_t text_width(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s)
    n += (c & 0xC0) != 0x80 ? 1 : 0;  // continuation bytes add nothing
  return n;
}

namespace {
// The first `width` characters of `s`, the last one "~" when it was longer.
std::string cut(const std::string& s, size_t width) {
  if (text_width(s) <= width || width == 0) return s;
  size_t chars = 0;
  size_t i = 0;
  for (; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80 && chars++ == width - 1) break;
  }
  return s.substr(0, i) + "~";
}
}  // namespace

void Table::print(std::ostream& out) const {
  std::vector<std::vector<std::string>> cells;
  cells.reserve(rows_.size() + 1);
  std::vector<std::string> head;
  for (const Column& c : columns_)
    head.push_back(c.title);
  cells.push_back(std::move(head));
  for (const auto& r : rows_) {
    std::vector<std::string> row;
    for (size_t i = 0; i < columns_.size(); ++i)
      row.push_back(cut(i < r.size() ? r[i] : "", max_cell_));
    cells.push_back(std::move(row));
  }
  std::vector<size_t> width(columns_.size(), 0);
  for (const auto& row : cells) {
    for (size_t i = 0; i < row.size(); ++i)
      width[i] = std::max(width[i], text_width(row[i]));
  }
  for (const auto& row : cells) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      const std::string pad(width[i] - text_width(row[i]), ' ');
      if (i > 0) line += "  ";
      line += columns_[i].right ? pad + row[i] : row[i] + (i + 1 < row.size() ? pad : "");
    }
    out << line << '\n';
  }
}

}  // namespace evert::ctl
