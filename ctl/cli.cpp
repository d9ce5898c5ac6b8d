#include "cli.h"

#include <unistd.h>

#include <iostream>

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

bool stderr_is_tty() {
  return isatty(STDERR_FILENO) == 1;
}

void print_json(const nlohmann::json& j) {
  // Torrent names and paths are bytes, not always UTF-8: replace invalid sequences instead of
  // throwing.
  std::cout << j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
}

}  // namespace evert::ctl
