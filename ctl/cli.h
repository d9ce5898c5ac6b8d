// Shared pieces of evertctl's commands: exit codes, output mode, errors.
#pragma once

#include <CLI/CLI.hpp>
#include <atomic>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "evert/json_text.h"

namespace evert::ctl {

// Exit codes (evertctl(1)).
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitInterrupted = 130;

// Options every command has.
struct CommonOptions {
  bool json = false;   // machine-readable output on stdout
  bool quiet = false;  // no progress and no warnings
};

// Options of commands that talk to evertd.
struct DaemonOptions {
  std::string socket;  // --socket; else $EVERT_SOCKET; else the default
  [[nodiscard]] std::string socket_path() const;
};
void add_daemon_options(CLI::App& cmd, DaemonOptions& daemon);

// Sends a request to evertd and parses its JSON answer. On failure (no daemon, no access, an
// error answer) prints the message and returns nullopt with `exit_code` set. With `module`, a
// daemon that has no such route is reported as not running that module, with what to do.
std::optional<nlohmann::json> call_daemon(const CommonOptions& common, const DaemonOptions& daemon,
                                          const std::string& method, const std::string& path,
                                          const std::string& body, int& exit_code,
                                          const std::string& module = {});

// Adds --json and --quiet to a command.
void add_common_options(CLI::App& cmd, CommonOptions& common);

// --socket, --json and --quiet given before the command (`evertctl --socket S status`): added
// to the top-level app, and applied after parsing to every command's options that were not
// given after it (an option after the command wins).
struct GlobalOptions {
  std::string socket;
  bool json = false;
  bool quiet = false;
};
void add_global_options(CLI::App& app, GlobalOptions& global);
void apply_global_options(const GlobalOptions& global);

// "evertctl: <message>" on stderr; returns kExitFailure for `return fail(...)`.
int fail(const std::string& message);
// With --json, errors are also JSON on stdout: {"error":{"code":..., "message":...}}.
int fail(const CommonOptions& common, const std::string& code, const std::string& message);

// A bad option value found after parsing: reported like fail(), but returns kExitUsage.
int usage_error(const CommonOptions& common, const std::string& message);

// Whether stderr is a terminal (progress bars) and stdout (colour-free human tables anyway).
bool stderr_is_tty();

// Set by SIGINT and SIGTERM once catch_interrupts() ran: long commands (create, publish)
// stop cleanly instead of dying half way.
std::atomic<bool>& interrupted();
void catch_interrupts();

// A table for people: each column as wide as its widest cell, counted in terminal columns
// (wcwidth(): not bytes; a CJK character takes two), columns two spaces apart, right-aligned
// columns (numbers, sizes) ending at the same place. Cells wider than `max_cell` columns are
// cut, with "~"; control characters in them (terminal escapes in a published name) show as "?".
class Table {
 public:
  struct Column {
    std::string title;
    bool right = false;
  };
  explicit Table(std::vector<Column> columns, size_t max_cell = 60)
      : columns_(std::move(columns)), max_cell_(max_cell) {}
  void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  void print(std::ostream& out) const;

 private:
  std::vector<Column> columns_;
  size_t max_cell_;
  std::vector<std::vector<std::string>> rows_;
};
// Terminal columns of UTF-8 text (wcwidth() in C.UTF-8); an invalid byte counts one.
size_t text_width(std::string_view s);

// Prints a JSON document on stdout, indented.
void print_json(const nlohmann::json& j);

// A registered command: its CLI11 subcommand and what runs it after parsing.
struct Command {
  CLI::App* app = nullptr;
  std::function<int()> run;
};

Command add_create(CLI::App& parent);
Command add_inspect(CLI::App& parent);
Command add_status(CLI::App& parent);
Command add_reload(CLI::App& parent);
Command add_swarms(CLI::App& parent);
Command add_swarm(CLI::App& parent);
Command add_stats(CLI::App& parent);
Command add_probe(CLI::App& parent);
// publish, job, list, show, unpublish, torrent, magnet, verify (cmd_publish.cpp).
std::vector<Command> add_publishing(CLI::App& parent);
// user add/del/passwd/list, token create/list/revoke (cmd_accounts.cpp).
std::vector<Command> add_accounts(CLI::App& parent);

}  // namespace evert::ctl
