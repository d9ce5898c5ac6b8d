#include "torrent_options.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <iostream>

#include "evert/units.h"

namespace evert::ctl {

void add_torrent_options(CLI::App& cmd, TorrentArgs& a) {
  auto* v1 = cmd.add_flag("--v1", a.v1, "BitTorrent v1 only (SHA-1 pieces)");
  auto* v2 = cmd.add_flag("--v2", a.v2, "BitTorrent v2 only (SHA-256 merkle trees, BEP 52)");
  auto* hy = cmd.add_flag("--hybrid", a.hybrid, "v1 and v2 in one torrent (the default)");
  v1->excludes(v2)->excludes(hy);
  v2->excludes(hy);
  cmd.add_option("--piece-size", a.piece_size,
                 "Piece size, a power of two from 16K to 64M, or 'auto' (the default: the "
                 "smallest from 16K to 16M giving at most 2048 pieces)");
  cmd.add_option("-t,--tracker", a.trackers, "Tracker URL, added to the current tier (repeat)");
  cmd.add_flag("--tier")->description(
      "Start a new tracker tier for the -t options after it (BEP 12)");
  cmd.add_option("-w,--web-seed", a.web_seeds, "Web seed URL (BEP 19; repeat)");
  cmd.add_flag("--private", a.is_private, "Private torrent: no DHT or peer exchange (BEP 27)");
  cmd.add_option("--source", a.source,
                 "Source tag (changes the info-hash; used by private trackers)");
  cmd.add_option("--comment", a.comment, "Comment");
  cmd.add_option("--name", a.name, "Torrent name (default: the file or folder name)");
  cmd.add_flag("--no-date", a.no_date, "Leave out the creation date (reproducible output)");
}

std::string torrent_options(CLI::App& cmd, const TorrentArgs& a, CreateOptions& o) {
  if (a.v1) o.version = TorrentVersion::kV1;
  if (a.v2) o.version = TorrentVersion::kV2;
  if (a.piece_size != "auto") {
    auto size = parse_size(a.piece_size);
    if (!size) return "--piece-size: not a size: '" + a.piece_size + "'";
    if (std::string why = check_piece_length(*size); !why.empty()) return "--piece-size: " + why;
    o.piece_length = *size;
  }
  o.trackers = tiers_from(cmd);
  o.web_seeds = a.web_seeds;
  o.is_private = a.is_private;
  o.source = a.source;
  o.comment = a.comment;
  o.name = a.name;
  o.created_by = "Evertorrent " EVERT_VERSION;
  if (!a.no_date) o.creation_date = static_cast<int64_t>(std::time(nullptr));
  return {};
}

Result<ScanResult> scan_input(const std::string& path, bool no_hidden, bool follow_symlinks,
                              bool quiet) {
  ScanOptions scan;
  scan.include_hidden = !no_hidden;
  scan.follow_symlinks = follow_symlinks;
  auto input = scan_path(path, scan);
  if (input && !quiet) {
    for (const auto& w : input->warnings)
      std::cerr << "evertctl: warning: " << w << '\n';
  }
  return input;
}

std::vector<std::vector<std::string>> tiers_from(CLI::App& cmd) {
  std::vector<std::vector<std::string>> tiers(1);
  size_t next = 0;
  const auto urls = cmd.get_option("--tracker")->as<std::vector<std::string>>();
  for (const CLI::Option* opt : cmd.parse_order()) {
    if (opt->get_name() == "--tier") {
      if (!tiers.back().empty()) tiers.emplace_back();
    } else if (opt->get_name() == "--tracker" && next < urls.size()) {
      tiers.back().push_back(urls[next++]);
    }
  }
  if (tiers.back().empty()) tiers.pop_back();
  return tiers;
}

Status write_output(const std::string& path, const std::string& bytes, bool force) {
  if (path == "-") {
    std::cout.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    std::cout.flush();
    return std::cout ? Status(Ok{}) : Status(Error("cannot write to standard output"));
  }
  const std::string tmp = path + ".tmp" + std::to_string(getpid());
  const int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return Error(path + ": cannot create: " + std::strerror(errno));
  size_t written = 0;
  while (written < bytes.size()) {
    const ssize_t n = write(fd, bytes.data() + written, bytes.size() - written);
    if (n < 0) {
      const int e = errno;
      close(fd);
      unlink(tmp.c_str());
      return Error(path + ": write failed: " + std::strerror(e));
    }
    written += static_cast<size_t>(n);
  }
  if (fsync(fd) != 0 || close(fd) != 0) {
    unlink(tmp.c_str());
    return Error(path + ": write failed: " + std::strerror(errno));
  }
  const int rc = force ? rename(tmp.c_str(), path.c_str()) : link(tmp.c_str(), path.c_str());
  const int e = errno;
  if (!force || rc != 0) unlink(tmp.c_str());
  if (rc != 0) {
    if (e == EEXIST) return Error(path + ": already exists (use --force to overwrite)");
    return Error(path + ": cannot write: " + std::strerror(e));
  }
  return Ok{};
}

}  // namespace evert::ctl
