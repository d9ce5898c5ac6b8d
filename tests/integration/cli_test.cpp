// evertctl as a user meets it: exit codes, messages, overwrite protection, output modes,
// tracker tiers, and Ctrl-C while hashing.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "evert/metainfo.h"
#include "process.h"

namespace evert::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const std::string kCtl = EVERT_CTL;

class Cli : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "evert-cli-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    write(dir_ / "data/a.txt", std::string(70'000, 'a'));
    write(dir_ / "data/b/c.bin", std::string(5'000, 'c'));
  }
  void TearDown() override { fs::remove_all(dir_); }

  static void write(const fs::path& p, const std::string& s) {
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << s;
  }
  static std::string read(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
  }
  ProcessResult ctl(std::vector<std::string> args) {
    args.insert(args.begin(), kCtl);
    return run_process(args);
  }

  fs::path dir_;
};

TEST_F(Cli, UsageErrorsExitTwo) {
  EXPECT_EQ(ctl({}).exit_code, 2);
  EXPECT_EQ(ctl({"frobnicate"}).exit_code, 2);
  EXPECT_EQ(ctl({"create"}).exit_code, 2);
  auto r = ctl({"create", dir_ / "data", "--v1", "--v2"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("excludes"), std::string::npos) << r.err;
  r = ctl({"create", dir_ / "data", "--piece-size", "3M"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--piece-size: piece size must be a power of two"), std::string::npos);
  EXPECT_EQ(ctl({"create", dir_ / "data", "--piece-size", "lots"}).exit_code, 2);
  EXPECT_EQ(ctl({"create", dir_ / "data", "--threads", "0"}).exit_code, 2);
  EXPECT_FALSE(fs::exists("data.torrent"));
}

TEST_F(Cli, HelpAndVersionExitZero) {
  for (auto args : std::vector<std::vector<std::string>>{
           {"--help"}, {"create", "--help"}, {"inspect", "--help"}, {"--version"}}) {
    auto r = ctl(args);
    EXPECT_EQ(r.exit_code, 0) << args[0];
    EXPECT_FALSE(r.out.empty());
  }
  EXPECT_NE(ctl({"create", "--help"}).out.find("--piece-size"), std::string::npos);
}

TEST_F(Cli, CreateWritesAndRefusesToOverwrite) {
  const std::string out = dir_ / "x.torrent";
  auto r = ctl({"create", dir_ / "data", "-o", out, "-t", "http://t.example/announce"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("Info-hash v1:"), std::string::npos);
  EXPECT_NE(r.out.find("Info-hash v2:"), std::string::npos);
  EXPECT_NE(r.out.find("magnet:?xt=urn:btih:"), std::string::npos);
  const std::string first = read(out);
  ASSERT_TRUE(load_metainfo(out).ok());

  r = ctl({"create", dir_ / "data", "-o", out, "--comment", "second"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("already exists (use --force to overwrite)"), std::string::npos) << r.err;
  EXPECT_EQ(read(out), first);

  r = ctl({"create", dir_ / "data", "-o", out, "--comment", "second", "--force"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(load_metainfo(out)->comment, "second");
  // No temporary files are left next to the output.
  int entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir_))
    ++entries;
  EXPECT_EQ(entries, 2);  // data/ and x.torrent
}

TEST_F(Cli, DefaultOutputIsNameDotTorrentInTheCurrentFolder) {
  const fs::path old = fs::current_path();
  fs::current_path(dir_);
  auto r = ctl({"create", "data", "--name", "renamed", "-q"});
  fs::current_path(old);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto m = load_metainfo(dir_ / "renamed.torrent");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->name, "renamed");
}

TEST_F(Cli, StandardOutput) {
  auto r = ctl({"create", dir_ / "data", "-o", "-", "--no-date"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto m = parse_metainfo(r.out);
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(m->name, "data");
  EXPECT_NE(r.err.find("Info-hash v1:"), std::string::npos);  // the summary moved to stderr
  EXPECT_FALSE(m->creation_date);
}

TEST_F(Cli, JsonOutput) {
  const std::string out = dir_ / "j.torrent";
  auto r = ctl({"create", dir_ / "data", "-o", out, "--json", "--v2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json j = json::parse(r.out);
  EXPECT_EQ(j["version"], "v2");
  EXPECT_TRUE(j["info_hash_v1"].is_null());
  EXPECT_EQ(j["info_hash_v2"].get<std::string>().size(), 64u);
  EXPECT_EQ(j["torrent_file"], out);
  EXPECT_EQ(j["total_size"], 75'000);

  r = ctl({"inspect", out, "--json", "--files"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json k = json::parse(r.out);
  EXPECT_EQ(k["info_hash_v2"], j["info_hash_v2"]);
  ASSERT_EQ(k["files"].size(), 2u);
  EXPECT_EQ(k["files"][0]["path"], "a.txt");
  EXPECT_EQ(k["files"][1]["path"], "b/c.bin");
  EXPECT_EQ(k["files"][1]["length"], 5000);
}

TEST_F(Cli, TrackerTiers) {
  const std::string out = dir_ / "t.torrent";
  auto r = ctl({"create", dir_ / "data", "-o", out, "-t", "http://a/announce", "-t", "udp://b:6969",
                "--tier", "-t", "http://c/announce", "-w", "http://ws/"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto m = load_metainfo(out);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->trackers, (std::vector<std::vector<std::string>>{
                             {"http://a/announce", "udp://b:6969"}, {"http://c/announce"}}));
  EXPECT_EQ(m->web_seeds, std::vector<std::string>{"http://ws/"});
  r = ctl({"inspect", out});
  EXPECT_NE(r.out.find("tier 2: http://c/announce"), std::string::npos) << r.out;
}

TEST_F(Cli, ErrorsNameTheFileAndReason) {
  auto r = ctl({"create", dir_ / "missing"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find((dir_ / "missing").string() + ": cannot read"), std::string::npos) << r.err;

  write(dir_ / "bad.torrent", "d4:infod4:name1:xee");
  r = ctl({"inspect", dir_ / "bad.torrent"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find((dir_ / "bad.torrent").string() + ": info: missing key 'piece length'"),
            std::string::npos)
      << r.err;
  r = ctl({"inspect", dir_ / "bad.torrent", "--json"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(json::parse(r.out)["error"]["code"], "invalid_torrent");

  r = ctl({"inspect", "magnet:?dn=nohash"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("invalid magnet link"), std::string::npos);
}

// Issue 16: --socket, --json and --quiet before the command, as after it (an option after the
// command wins).
TEST_F(Cli, GlobalOptionsComeBeforeTheCommandToo) {
  const std::string before = dir_ / "before.sock";
  const std::string after = dir_ / "after.sock";
  auto r = ctl({"--socket", before, "status"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find(before), std::string::npos) << r.err;
  r = ctl({"--socket", before, "--json", "list"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(json::parse(r.out)["error"]["code"], "unreachable") << r.out;
  r = ctl({"--socket", before, "status", "--socket", after});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find(after), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find(before), std::string::npos) << r.err;
  r = ctl({"--json", "inspect", dir_ / "missing.torrent"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(json::parse(r.out).contains("error")) << r.out;
}

TEST_F(Cli, InspectMagnet) {
  const std::string uri =
      "magnet:?xt=urn:btih:c12fe1c06bba254a9dc9f519b335aa7c1367a88a&dn=Some%20Name&xl=42"
      "&tr=udp%3A%2F%2Ft.example%3A6969";
  auto r = ctl({"inspect", uri});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("Some Name"), std::string::npos);
  EXPECT_NE(r.out.find("udp://t.example:6969"), std::string::npos);
  r = ctl({"inspect", uri, "--json"});
  const json j = json::parse(r.out);
  EXPECT_EQ(j["info_hash_v1"], "c12fe1c06bba254a9dc9f519b335aa7c1367a88a");
  EXPECT_EQ(j["total_size"], 42);
}

TEST_F(Cli, InterruptWritesNothing) {
  // A large sparse file takes seconds to hash on one thread; SIGINT must stop it cleanly.
  const fs::path big = dir_ / "sparse.bin";
  { std::ofstream(big, std::ios::binary); }
  fs::resize_file(big, 16ull << 30);
  const std::string out = dir_ / "sparse.torrent";
  const int pid = spawn_process({kCtl, "create", big, "-o", out, "--threads", "1", "--v1"}, "",
                                dir_ / "stderr.txt");
  ASSERT_GT(pid, 0);
  usleep(300'000);
  kill(pid, SIGINT);
  bool timed_out = false;
  const int code = wait_process(pid, 30'000, &timed_out);
  EXPECT_FALSE(timed_out);
  EXPECT_EQ(code, 130) << read(dir_ / "stderr.txt");
  EXPECT_NE(read(dir_ / "stderr.txt").find("cancelled; nothing was written"), std::string::npos);
  EXPECT_FALSE(fs::exists(out));
}

}  // namespace
}  // namespace evert::test
