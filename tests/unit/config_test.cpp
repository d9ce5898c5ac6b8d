#include "evert/daemon/config.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "test_util.h"

namespace evert::daemon {
namespace {

// "tracker" is on by default, "probe" only when listed.
const std::vector<ModuleSchema> kModules = {
    {"probe", "a test module",
     [](const std::string& p) { return p + "probe:\n" + p + "  x: 1\n"; }},
    {"tracker", "the tracker", {}, /*default_on=*/true}};

Result<Config> parse(const std::string& text) {
  return parse_config_text(text, "t.yaml", kModules);
}

void expect_error(const std::string& text, const std::string& message) {
  auto r = parse(text);
  ASSERT_FALSE(r.ok()) << "accepted:\n" << text;
  EXPECT_EQ(r.error().message, message);
}

TEST(Config, EmptyFileGivesDefaults) {
  auto c = parse("");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->daemon.state_dir, "/var/lib/evert");
  EXPECT_EQ(c->log.level, "info");
  EXPECT_EQ(c->control.socket, "/run/evert/evertd.sock");
  EXPECT_EQ(c->control.socket_mode, 0660u);
  EXPECT_EQ(c->store.commit_interval, 200);
}

TEST(Config, DefaultModulesAreTheOnesOnByDefault) {
  auto c = parse("");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->daemon.modules, std::vector<std::string>{"tracker"});
  EXPECT_EQ(default_config(kModules).daemon.modules, std::vector<std::string>{"tracker"});
  // A registry without the tracker (a test binary) has its own defaults, and they load.
  const std::vector<ModuleSchema> only_probe = {kModules[0]};
  auto p = parse_config_text(print_default_config(only_probe, false), "p.yaml", only_probe);
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_TRUE(p->daemon.modules.empty());
  auto listed = parse("daemon:\n  modules: [probe, tracker]\n");
  ASSERT_TRUE(listed.ok()) << listed.error().message;
  EXPECT_EQ(listed->daemon.modules, (std::vector<std::string>{"probe", "tracker"}));
}

TEST(Config, PrintedDefaultsParseBackToDefaults) {
  const std::string printed = print_default_config(kModules, false);
  auto c = parse(printed);
  ASSERT_TRUE(c.ok()) << c.error().message << "\n" << printed;
  EXPECT_TRUE(diff_configs(default_config(kModules), *c).size() ==
              1);  // only the module section, now present
  EXPECT_EQ(print_default_config(kModules, false), printed);
  const Config d = default_config(kModules);
  EXPECT_EQ(c->daemon.state_dir, d.daemon.state_dir);
  EXPECT_EQ(c->daemon.worker_threads, d.daemon.worker_threads);
  EXPECT_EQ(c->control.max_body, d.control.max_body);
  EXPECT_EQ(c->control.socket_mode, d.control.socket_mode);
  EXPECT_EQ(c->store.map_size, d.store.map_size);
}

TEST(Config, ShippedFileIsTheCommentedDefaults) {
  std::ifstream in(std::string(EVERT_SOURCE_DIR) + "/etc/evertd.yaml");
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string shipped = ss.str();
  // The shipped file = a header of comments + the commented defaults of evertd and its
  // built-in modules, as the real binary prints them.
  std::string body;
  FILE* p = popen(EVERTD " --print-default-config --commented", "r");
  ASSERT_NE(p, nullptr);
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;)
    body.append(buf, n);
  ASSERT_EQ(pclose(p), 0);
  ASSERT_NE(body.find("\n#tracker:\n"), std::string::npos);
  ASSERT_GE(shipped.size(), body.size());
  EXPECT_EQ(shipped.substr(shipped.size() - body.size()), body)
      << "etc/evertd.yaml is out of date: regenerate it with evertd --print-default-config "
         "--commented";
  // Commented out, it is also a valid (empty) configuration.
  EXPECT_TRUE(parse(shipped).ok());
}

TEST(Config, Values) {
  auto c = parse(
      "daemon:\n  state_dir: /srv/x\n  modules: [probe]\n  worker_threads: 4\n"
      "log:\n  level: debug\ncontrol:\n  socket_mode: \"0600\"\n  max_body: 64K\n"
      "store:\n  commit_interval: 50\n  map_size: 2G\nprobe:\n  x: 5\n");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->daemon.state_dir, "/srv/x");
  EXPECT_EQ(c->daemon.modules, std::vector<std::string>{"probe"});
  EXPECT_EQ(c->daemon.worker_threads, 4);
  EXPECT_EQ(c->log.level, "debug");
  EXPECT_EQ(c->control.socket_mode, 0600u);
  EXPECT_EQ(c->control.max_body, 64u << 10);
  EXPECT_EQ(c->store.map_size, 2ull << 30);
  EXPECT_EQ(c->modules.at("probe")["x"].as<int>(), 5);
}

TEST(Config, ErrorsNameFileLineColumnAndKey) {
  expect_error("nonsense:\n  a: 1\n", "t.yaml:1:1: nonsense: unknown section");
  expect_error("log:\n  colour: red\n", "t.yaml:2:3: log.colour: unknown key");
  expect_error("log:\n  level: loud\n",
               "t.yaml:2:10: log.level: must be one of trace, debug, info, warn, error (got "
               "'loud')");
  expect_error("daemon:\n  worker_threads: many\n",
               "t.yaml:2:19: daemon.worker_threads: expected an integer");
  expect_error("daemon:\n  worker_threads: 0\n",
               "t.yaml:2:19: daemon.worker_threads: must be from 1 to 64 (got 0)");
  expect_error("daemon:\n  state_dir: relative/path\n",
               "t.yaml:2:14: daemon.state_dir: must be an absolute path (got 'relative/path')");
  expect_error("daemon:\n  state_dir: [a]\n", "t.yaml:2:14: daemon.state_dir: expected a string");
  expect_error("daemon:\n  modules: probe\n",
               "t.yaml:2:12: daemon.modules: expected a list of module names");
  expect_error("daemon:\n  modules: [probe, probe]\n",
               "t.yaml:2:12: daemon.modules: module 'probe' listed twice");
  expect_error("daemon:\n  modules: [seeder]\n",
               "t.yaml: daemon.modules: unknown module 'seeder' (built-in: probe, tracker)");
  expect_error("control:\n  socket_mode: rwx\n",
               "t.yaml:2:16: control.socket_mode: expected an octal mode such as 0660");
  expect_error("control:\n  max_body: lots\n",
               "t.yaml:2:13: control.max_body: expected a size such as 1048576, 512K or 64M (got "
               "'lots')");
  expect_error("control:\n  max_body: 1T\n",
               "t.yaml:2:13: control.max_body: must be from 1.00 KiB to 64.00 MiB");
  expect_error("log: [1, 2]\n", "t.yaml:1:6: log: expected a mapping");
  expect_error("- a\n- b\n", "t.yaml:1:1: expected a mapping of sections");
  expect_error("probe: 3\n", "t.yaml:1:8: probe: expected a mapping");
  auto r = parse("log:\n  level: [unclosed\n");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message.rfind("t.yaml:3:1: invalid YAML", 0), 0u) << r.error().message;
}

TEST(Config, DropInsApplyInNameOrder) {
  test::TempDir d;
  test::write_file(d / "evertd.yaml", "log:\n  level: warn\nstore:\n  commit_interval: 10\n");
  test::write_file(d / "evertd.yaml.d/20-b.yaml", "log:\n  level: debug\n");
  test::write_file(d / "evertd.yaml.d/10-a.yaml", "log:\n  level: error\nprobe:\n  x: 1\n");
  test::write_file(d / "evertd.yaml.d/30-c.yaml", "probe:\n  y: 2\n");
  test::write_file(d / "evertd.yaml.d/ignored.txt", "not: yaml: at all");
  auto c = load_config(d / "evertd.yaml", kModules);
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->log.level, "debug");         // 20-b wins over 10-a
  EXPECT_EQ(c->store.commit_interval, 10);  // untouched by drop-ins
  EXPECT_EQ(c->modules.at("probe")["x"].as<int>(), 1);
  EXPECT_EQ(c->modules.at("probe")["y"].as<int>(), 2);
  EXPECT_EQ(c->files.size(), 4u);

  test::write_file(d / "evertd.yaml.d/40-bad.yaml", "store:\n  commit_interval: -5\n");
  auto bad = load_config(d / "evertd.yaml", kModules);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("40-bad.yaml:2:20: store.commit_interval: must be from 1"),
            std::string::npos)
      << bad.error().message;
  EXPECT_NE(load_config(d / "missing.yaml", kModules).error().message.find("cannot read"),
            std::string::npos);
}

TEST(Config, DiffSaysWhatReloadCanApply) {
  auto a = parse("log:\n  level: info\n");
  auto b = parse("log:\n  level: debug\ncontrol:\n  socket: /tmp/other.sock\nprobe:\n  x: 2\n");
  ASSERT_TRUE(a.ok() && b.ok());
  const auto changes = diff_configs(*a, *b);
  ASSERT_EQ(changes.size(), 3u);
  EXPECT_EQ(changes[0].key, "log.level");
  EXPECT_TRUE(changes[0].reloadable);
  EXPECT_EQ(changes[1].key, "control.socket");
  EXPECT_FALSE(changes[1].reloadable);
  EXPECT_EQ(changes[2].key, "probe");
  EXPECT_TRUE(diff_configs(*a, *a).empty());
}

}  // namespace
}  // namespace evert::daemon
