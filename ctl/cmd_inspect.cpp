// evertctl inspect: what a .torrent file or a magnet link contains.
#include <iostream>
#include <memory>

#include "cli.h"
#include "describe.h"
#include "evert/magnet.h"
#include "evert/metainfo.h"

namespace evert::ctl {

namespace {

struct InspectArgs {
  CommonOptions common;
  std::string target;
  bool files = false;
};

int run_inspect(const InspectArgs& a) {
  if (a.target.rfind("magnet:", 0) == 0) {
    auto g = parse_magnet(a.target);
    if (!g) return fail(a.common, "invalid_magnet", "invalid magnet link: " + g.error().message);
    if (a.common.json) {
      print_json(to_json(*g));
    } else {
      print_human(std::cout, *g);
    }
    return kExitOk;
  }
  auto m = load_metainfo(a.target);
  if (!m) return fail(a.common, "invalid_torrent", m.error().message);
  if (a.common.json) {
    print_json(to_json(*m, a.files));
  } else {
    print_human(std::cout, *m, a.files);
  }
  return kExitOk;
}

}  // namespace

Command add_inspect(CLI::App& parent) {
  auto a = std::make_shared<InspectArgs>();
  CLI::App* cmd =
      parent.add_subcommand("inspect", "Show what a .torrent file or magnet link holds");
  cmd->add_option("TARGET", a->target, "A .torrent file or a magnet: link")->required();
  cmd->add_flag("--files", a->files, "List every file with its size");
  add_common_options(*cmd, a->common);
  return {cmd, [a] { return run_inspect(*a); }};
}

}  // namespace evert::ctl
