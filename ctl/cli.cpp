#include "cli.h"

#include <locale.h>
#include <unistd.h>
#include <wchar.h>

#include <algorithm>
#include <clocale>
#include <csignal>
#include <cstdlib>
#include <cwchar>
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

namespace {
// C.UTF-8 for wcwidth(), without touching the program's locale; null when the system has none
// (then every character counts one column).
locale_t utf8_locale() {
  static const locale_t loc = newlocale(LC_CTYPE_MASK, "C.UTF-8", locale_t{});
  return loc;
}

// Columns of the next character of `s` at `i` (advancing `i` past it): wcwidth() of it, one for
// an invalid byte or a character wcwidth() does not know.
size_t next_width(std::string_view s, size_t& i) {
  const locale_t loc = utf8_locale();
  if (loc == locale_t{}) {
    ++i;
    while (i < s.size() && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80)
      ++i;
    return 1;
  }
  const locale_t old = uselocale(loc);
  std::mbstate_t st{};
  wchar_t wc = 0;
  const size_t n = std::mbrtowc(&wc, s.data() + i, s.size() - i, &st);
  size_t w = 1;
  if (n == static_cast<size_t>(-1) || n == static_cast<size_t>(-2) || n == 0) {
    ++i;
  } else {
    i += n;
    const int cw = ::wcwidth(wc);
    w = cw < 0 ? 1 : static_cast<size_t>(cw);
  }
  uselocale(old);
  return w;
}

// A cell as it may reach a terminal: control characters (C0, DEL, C1: escape sequences, carriage
// returns, tabs) become "?".
std::string printable(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7F) {
      out += '?';
    } else if (c == 0xC2 && i + 1 < s.size() && static_cast<unsigned char>(s[i + 1]) >= 0x80 &&
               static_cast<unsigned char>(s[i + 1]) <= 0x9F) {
      out += '?';
      ++i;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}
}  // namespace

size_t text_width(std::string_view s) {
  size_t w = 0;
  for (size_t i = 0; i < s.size();)
    w += next_width(s, i);
  return w;
}

namespace {
// The first `width` columns of `s`, the last one "~" when it was wider.
std::string cut(const std::string& s, size_t width) {
  if (width == 0 || text_width(s) <= width) return s;
  size_t used = 0;
  size_t i = 0;
  while (i < s.size()) {
    size_t next = i;
    const size_t w = next_width(s, next);
    if (used + w > width - 1) break;
    used += w;
    i = next;
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
      row.push_back(cut(printable(i < r.size() ? r[i] : ""), max_cell_));
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
