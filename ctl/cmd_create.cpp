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
#include "torrent_options.h"

namespace evert::ctl {

namespace {

struct CreateArgs {
  CommonOptions common;
  TorrentArgs torrent;
  std::string path;
  std::string output;
  int threads = 0;
  bool force = false;
  bool no_hidden = false;
  bool follow_symlinks = false;
};

// Memory-mapped input turns a file truncated under us into SIGBUS; say what happened.
void on_sigbus(int /*sig*/) {
  static const char kMsg[] = "\nevertctl: a file was truncated while it was being hashed\n";
  (void)!write(STDERR_FILENO, kMsg, sizeof kMsg - 1);
  _exit(kExitFailure);
}

int run_create(CLI::App& cmd, const CreateArgs& a) {
  CreateOptions o;
  if (std::string why = torrent_options(cmd, a.torrent, o); !why.empty()) {
    return usage_error(a.common, why);
  }
  o.threads = a.threads;

  auto input = scan_input(a.path, a.no_hidden, a.follow_symlinks, a.common.quiet);
  if (!input) return fail(a.common, "input", input.error().message);

  const std::string name = o.name.empty() ? input->name : o.name;
  const std::string output = a.output.empty() ? name + ".torrent" : a.output;
  if (!a.force && output != "-" && access(output.c_str(), F_OK) == 0) {
    return fail(a.common, "exists", output + ": already exists (use --force to overwrite)");
  }

  ProgressBar bar("Hashing " + name, stderr_is_tty() && !a.common.quiet);
  o.progress = [&bar](uint64_t done, uint64_t total) { bar.update(done, total); };
  o.cancel = &interrupted();
  catch_interrupts();
  std::signal(SIGBUS, on_sigbus);
  auto created = create_torrent(*input, o);
  bar.finish();
  if (!created) {
    if (interrupted()) {
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
  add_torrent_options(*cmd, a->torrent);
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
