// evertctl create: a .torrent from a file or a folder, offline.
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstring>
#include <ctime>
#include <iostream>
#include <memory>

#include "cli.h"
#include "describe.h"
#include "evert/create.h"
#include "evert/units.h"
#include "progress.h"

namespace evert::ctl {

namespace {

struct CreateArgs {
  CommonOptions common;
  std::string path;
  std::string output;
  bool v1 = false, v2 = false, hybrid = false;
  std::string piece_size = "auto";
  std::vector<std::string> trackers;
  std::vector<std::string> web_seeds;
  bool is_private = false;
  std::string source, comment, name;
  bool no_date = false;
  int threads = 0;
  bool force = false;
  bool no_hidden = false;
  bool follow_symlinks = false;
};

std::atomic<bool> g_cancel{false};

void on_interrupt(int /*sig*/) {
  g_cancel = true;
}

// Memory-mapped input turns a file truncated under us into SIGBUS; say what happened.
void on_sigbus(int /*sig*/) {
  static const char kMsg[] = "\nevertctl: a file was truncated while it was being hashed\n";
  (void)!write(STDERR_FILENO, kMsg, sizeof kMsg - 1);
  _exit(kExitFailure);
}

// Tiers from the command line, in order: -t adds a tracker to the current tier, --tier starts a
// new one.
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

// Writes `bytes` to `path` atomically (temporary file + rename); without `force`, an existing
// file is never replaced, even one that appeared while hashing.
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

int run_create(CLI::App& cmd, const CreateArgs& a) {
  CreateOptions o;
  if (a.v1) o.version = TorrentVersion::kV1;
  if (a.v2) o.version = TorrentVersion::kV2;
  if (a.piece_size != "auto") {
    auto size = parse_size(a.piece_size);
    if (!size) return usage_error(a.common, "--piece-size: not a size: '" + a.piece_size + "'");
    if (std::string why = check_piece_length(*size); !why.empty()) {
      return usage_error(a.common, "--piece-size: " + why);
    }
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
  o.threads = a.threads;

  ScanOptions scan;
  scan.include_hidden = !a.no_hidden;
  scan.follow_symlinks = a.follow_symlinks;
  auto input = scan_path(a.path, scan);
  if (!input) return fail(a.common, "input", input.error().message);
  if (!a.common.quiet) {
    for (const auto& w : input->warnings)
      std::cerr << "evertctl: warning: " << w << '\n';
  }

  const std::string name = a.name.empty() ? input->name : a.name;
  const std::string output = a.output.empty() ? name + ".torrent" : a.output;
  if (!a.force && output != "-" && access(output.c_str(), F_OK) == 0) {
    return fail(a.common, "exists", output + ": already exists (use --force to overwrite)");
  }

  ProgressBar bar("Hashing " + name, stderr_is_tty() && !a.common.quiet);
  o.progress = [&bar](uint64_t done, uint64_t total) { bar.update(done, total); };
  o.cancel = &g_cancel;
  std::signal(SIGINT, on_interrupt);
  std::signal(SIGTERM, on_interrupt);
  std::signal(SIGBUS, on_sigbus);
  auto created = create_torrent(*input, o);
  bar.finish();
  if (!created) {
    if (g_cancel) {
      fail("cancelled; nothing was written");
      return kExitInterrupted;
    }
    return fail(a.common, "create", created.error().message);
  }
  if (auto s = write_output(output, created->bytes, a.force); !s) {
    return fail(a.common, "write", s.error().message);
  }

  const Metainfo& m = created->metainfo;
  if (a.common.json) {
    auto j = to_json(m, false);
    j["torrent_file"] = output;
    print_json(j);
  } else {
    std::ostream& out = output == "-" ? std::cerr : std::cout;
    out << "Created " << (output == "-" ? "torrent" : output) << ": " << to_string(m.version())
        << ", " << format_size(m.total_size) << " in " << m.real_file_count() << " file(s), "
        << m.piece_count() << " pieces of " << format_size(m.piece_length) << '\n';
    print_hashes(out, m);
  }
  return kExitOk;
}

}  // namespace

Command add_create(CLI::App& parent) {
  auto a = std::make_shared<CreateArgs>();
  CLI::App* cmd = parent.add_subcommand("create", "Create a .torrent from a file or a folder");
  cmd->add_option("PATH", a->path, "File or folder to make a torrent of")->required();
  cmd->add_option("-o,--output", a->output,
                  "Where to write the .torrent ('-': standard output; "
                  "default: NAME.torrent here)");
  auto* v1 = cmd->add_flag("--v1", a->v1, "BitTorrent v1 only (SHA-1 pieces)");
  auto* v2 = cmd->add_flag("--v2", a->v2, "BitTorrent v2 only (SHA-256 merkle trees, BEP 52)");
  auto* hy = cmd->add_flag("--hybrid", a->hybrid, "v1 and v2 in one torrent (the default)");
  v1->excludes(v2)->excludes(hy);
  v2->excludes(hy);
  cmd->add_option("--piece-size", a->piece_size,
                  "Piece size, a power of two from 16K to 64M, or 'auto' (the default: the "
                  "smallest from 16K to 16M giving at most 2048 pieces)");
  cmd->add_option("-t,--tracker", a->trackers, "Tracker URL, added to the current tier (repeat)");
  cmd->add_flag("--tier")->description(
      "Start a new tracker tier for the -t options after it (BEP 12)");
  cmd->add_option("-w,--web-seed", a->web_seeds, "Web seed URL (BEP 19; repeat)");
  cmd->add_flag("--private", a->is_private, "Private torrent: no DHT or peer exchange (BEP 27)");
  cmd->add_option("--source", a->source,
                  "Source tag (changes the info-hash; used by private trackers)");
  cmd->add_option("--comment", a->comment, "Comment");
  cmd->add_option("--name", a->name, "Torrent name (default: the file or folder name)");
  cmd->add_flag("--no-date", a->no_date, "Leave out the creation date (reproducible output)");
  cmd->add_option("--threads", a->threads, "Hashing threads (default: one per core)")
      ->check(CLI::Range(1, 256));
  cmd->add_flag("-f,--force", a->force, "Overwrite the output file if it exists");
  cmd->add_flag("--no-hidden", a->no_hidden,
                "Leave out files and folders whose name starts with '.'");
  cmd->add_flag("--follow-symlinks", a->follow_symlinks,
                "Follow symbolic links inside the folder (default: skip them)");
  add_common_options(*cmd, a->common);
  return {cmd, [cmd, a] { return run_create(*cmd, *a); }};
}

}  // namespace evert::ctl
