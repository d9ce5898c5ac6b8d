// The torrent options shared by `evertctl create` and `evertctl publish` (version, piece size,
// trackers and tiers, web seeds, private, source, comment, name, date), and writing a .torrent.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "evert/create.h"
#include "evert/file_list.h"
#include "evert/result.h"

namespace evert::ctl {

struct TorrentArgs {
  bool v1 = false, v2 = false, hybrid = false;
  std::string piece_size = "auto";
  std::vector<std::string> trackers;
  std::vector<std::string> web_seeds;
  bool is_private = false;
  std::string source, comment, name;
  bool no_date = false;
};

void add_torrent_options(CLI::App& cmd, TorrentArgs& a);

// Fills `o` from the parsed options; returns why an option is refused, or an empty string.
std::string torrent_options(CLI::App& cmd, const TorrentArgs& a, CreateOptions& o);

// Lists PATH for a torrent (scan_path), printing what was skipped unless `quiet`.
Result<ScanResult> scan_input(const std::string& path, bool no_hidden, bool follow_symlinks,
                              bool quiet);

// Tiers from the command line, in order: -t adds a tracker to the current tier, --tier starts a
// new one.
std::vector<std::vector<std::string>> tiers_from(CLI::App& cmd);

// Writes `bytes` to `path` atomically (temporary file + rename); without `force`, an existing
// file is never replaced, even one that appeared while hashing. "-": standard output.
Status write_output(const std::string& path, const std::string& bytes, bool force);

}  // namespace evert::ctl
