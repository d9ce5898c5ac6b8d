// evertctl: the Evertorrent client. A thin shell: each verb lives in its own cmd_*.cpp.
#include <exception>
#include <string>
#include <vector>

#include "cli.h"

int main(int argc, char** argv) {
  using namespace evert::ctl;
  CLI::App app{"evertctl: create, inspect and publish BitTorrent torrents with Evertorrent.\n"};
  app.set_version_flag("-V,--version", "evertctl " EVERT_VERSION);
  app.require_subcommand(1, 1);
  app.footer("Run 'evertctl COMMAND --help' for a command's options. See evertctl(1).");
  GlobalOptions global;
  add_global_options(app, global);

  std::vector<Command> commands = {add_create(app), add_inspect(app)};
  for (auto& c : add_publishing(app))
    commands.push_back(std::move(c));
  for (auto& c : add_accounts(app))
    commands.push_back(std::move(c));
  for (auto c : {add_status(app), add_reload(app), add_swarms(app), add_swarm(app), add_stats(app),
                 add_probe(app)})
    commands.push_back(std::move(c));
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);  // prints the message and the hint
    return kExitUsage;
  }
  apply_global_options(global);
  // A command's own errors are reported by the command; this is the last word on anything
  // else (a library's exception), instead of std::terminate's abort and core dump.
  try {
    for (const auto& c : commands) {
      if (c.app->parsed()) return c.run();
    }
  } catch (const std::exception& e) {
    return fail(std::string("internal error: ") + e.what());
  }
  return kExitUsage;
}
