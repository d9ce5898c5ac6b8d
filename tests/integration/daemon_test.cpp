// The real evertd (with a test-only module) on a temporary state directory and socket: readiness
// and status over a NOTIFY_SOCKET the test owns, reload good and bad, SIGTERM, kill -9, socket
// activation, the watchdog, and the shipped unit and package.
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>

#include "evert/control_client.h"
#include "process.h"

namespace evert::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string read_file(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A datagram socket standing in for systemd's notify socket.
class NotifySocket {
 public:
  explicit NotifySocket(const std::string& path) : path_(path) {
    fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
    bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
  }
  ~NotifySocket() { close(fd_); }
  // Waits (bounded) for a message containing `needle`; returns it, or "" on timeout. Messages
  // seen on the way are kept in `seen`.
  std::string wait_for(const std::string& needle, int timeout_ms = 10'000) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      char buf[4096];
      const ssize_t n = recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) continue;
      std::string msg(buf, static_cast<size_t>(n));
      seen.push_back(msg);
      if (msg.find(needle) != std::string::npos) return msg;
    }
    return {};
  }
  std::vector<std::string> seen;

 private:
  std::string path_;
  int fd_ = -1;
};

class Daemon : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "evertd-test-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    socket_ = (dir_ / "run/evertd.sock").string();
    events_ = (dir_ / "events.txt").string();
    notify_ = std::make_unique<NotifySocket>((dir_ / "notify.sock").string());
    write_config();
  }
  void TearDown() override {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      wait_process(pid_, 10'000);
    }
    fs::remove_all(dir_);
  }

  void write_config(const std::string& extra = "", const std::string& greeting = "hello",
                    const std::string& probe_extra = "") {
    std::ofstream(dir_ / "evertd.yaml")
        << "daemon:\n  state_dir: " << (dir_ / "state").string()
        << "\n  modules: [probe, probe2]\n  shutdown_timeout: 5\n"
        << "control:\n  socket: " << socket_ << "\n  socket_group: \"\"\n"
        << "store:\n  commit_interval: 20\n"
        << "probe:\n  greeting: " << greeting << "\n  events_file: " << events_ << "\n"
        << probe_extra << "probe2:\n  events_file: " << events_ << "\n"
        << extra;
  }

  void start(std::vector<std::string> extra_env = {}, std::vector<std::string> prefix = {}) {
    std::vector<std::string> argv = prefix;
    argv.push_back(EVERTD_PROBE);
    argv.push_back("--config");
    argv.push_back((dir_ / "evertd.yaml").string());
    extra_env.push_back("NOTIFY_SOCKET=" + (dir_ / "notify.sock").string());
    pid_ = spawn_process(argv, (dir_ / "stdout.txt").string(), (dir_ / "stderr.txt").string(),
                         extra_env);
    ASSERT_GT(pid_, 0);
  }

  void start_ready(std::vector<std::string> extra_env = {}) {
    start(std::move(extra_env));
    ASSERT_NE(notify_->wait_for("READY=1"), "") << read_file(dir_ / "stderr.txt");
  }

  json api(const std::string& method, const std::string& path, const std::string& body = "",
           int* status = nullptr) {
    auto r = control_request(socket_, method, path, body, 10'000);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
    if (!r.ok()) return {};
    if (status != nullptr) *status = r->status;
    return json::parse(r->body);
  }

  int stop(int sig = SIGTERM) {
    kill(pid_, sig);
    bool timed_out = false;
    const int code = wait_process(pid_, 15'000, &timed_out);
    EXPECT_FALSE(timed_out);
    pid_ = -1;
    return code;
  }

  fs::path dir_;
  std::string socket_, events_;
  std::unique_ptr<NotifySocket> notify_;
  int pid_ = -1;
};

TEST_F(Daemon, ReadyAfterListenersAndStatusOverTheSocket) {
  start_ready();
  // READY=1 comes only after the control socket is bound: it must answer at once.
  const json s = api("GET", "/v1/status");
  EXPECT_EQ(s["version"], "0.1.0");
  EXPECT_EQ(s["pid"], pid_);
  ASSERT_EQ(s["modules"].size(), 2u);
  EXPECT_EQ(s["modules"][0]["name"], "probe");
  EXPECT_EQ(s["modules"][0]["state"], "running");
  EXPECT_EQ(s["modules"][0]["status"]["greeting"], "hello");
  bool status_line = false;
  for (const auto& m : notify_->seen)
    status_line |= m.find("STATUS=Running") != std::string::npos;
  EXPECT_TRUE(status_line);
  // The same through evertctl and through curl.
  auto ctl = run_process({EVERT_CTL, "status", "--socket", socket_});
  EXPECT_EQ(ctl.exit_code, 0) << ctl.err;
  EXPECT_NE(ctl.out.find("probe2 (running)"), std::string::npos) << ctl.out;
  auto curl = run_process({"curl", "-sS", "--unix-socket", socket_, "http://localhost/v1/status"});
  EXPECT_EQ(curl.exit_code, 0) << curl.err;
  EXPECT_EQ(json::parse(curl.out)["pid"], pid_);
  // Errors are JSON with fitting codes.
  int code = 0;
  EXPECT_EQ(api("GET", "/v1/nowhere", "", &code)["error"]["code"], "not_found");
  EXPECT_EQ(code, 404);
  EXPECT_EQ(api("PUT", "/v1/probe/value", "{oops", &code)["error"]["code"], "bad_json");
  EXPECT_EQ(code, 400);
  // One byte over control.max_body (1M): refused with a JSON error.
  auto big = control_request(socket_, "PUT", "/v1/probe/value", std::string((1 << 20) + 1, ' '));
  ASSERT_TRUE(big.ok()) << big.error().message;
  EXPECT_EQ(big->status, 413);
  EXPECT_EQ(json::parse(big->body)["error"]["code"], "body_too_large");
  // Far over it: libevent refuses before reading; still a 413.
  auto huge = control_request(socket_, "PUT", "/v1/probe/value", std::string(8 << 20, ' '));
  ASSERT_TRUE(huge.ok()) << huge.error().message;
  EXPECT_EQ(huge->status, 413);
}

TEST_F(Daemon, SighupReloadAppliesLiveKeysAndNamesTheRest) {
  start_ready();
  // log.level and the greeting apply live; probe.restart_key needs a restart.
  write_config("log:\n  level: debug\n", "bonjour", "  restart_key: b\n");
  kill(pid_, SIGHUP);
  const std::string reloading = notify_->wait_for("RELOADING=1");
  ASSERT_NE(reloading, "");
  EXPECT_TRUE(std::regex_search(reloading, std::regex("MONOTONIC_USEC=[0-9]+")));
  ASSERT_NE(notify_->wait_for("READY=1"), "");
  EXPECT_EQ(api("GET", "/v1/status")["modules"][0]["status"]["greeting"], "bonjour");
  EXPECT_NE(read_file(dir_ / "stderr.txt").find("need a restart: probe.restart_key"),
            std::string::npos)
      << read_file(dir_ / "stderr.txt");

  // Through the API (and evertctl): what was applied, what needs a restart.
  write_config("log:\n  level: warn\ncontrol:\n  max_body: 2M\n  socket_mode: \"0600\"\n", "hallo",
               "  restart_key: b\n");
  const json r = api("POST", "/v1/reload");
  EXPECT_EQ(r["ok"], true);
  EXPECT_EQ(r["applied"], json({"log.level", "control.max_body", "probe"}));
  // Still b: the restart_key change is pending since the first reload, control.socket_mode new.
  EXPECT_EQ(r["restart_needed"], json({"control.socket_mode", "probe.restart_key"}));
  EXPECT_EQ(api("GET", "/v1/status")["modules"][0]["status"]["greeting"], "hallo");
  write_config("", "hallo", "  restart_key: b\n");
  auto ctl = run_process({EVERT_CTL, "reload", "--socket", socket_});
  EXPECT_EQ(ctl.exit_code, 0) << ctl.err;
  EXPECT_NE(ctl.out.find("applied: log.level"), std::string::npos) << ctl.out;
}

TEST_F(Daemon, BadReloadKeepsRunningWithTheOldConfig) {
  start_ready();
  std::ofstream(dir_ / "evertd.yaml", std::ios::app) << "log:\n  level: loud\n";
  int code = 0;
  const json r = api("POST", "/v1/reload", "", &code);
  EXPECT_EQ(code, 422);
  EXPECT_EQ(r["error"]["code"], "config_invalid");
  EXPECT_TRUE(std::regex_search(r["error"]["message"].get<std::string>(),
                                std::regex("evertd\\.yaml:[0-9]+:10: log\\.level: must be one of")))
      << r;
  auto ctl = run_process({EVERT_CTL, "reload", "--socket", socket_});
  EXPECT_EQ(ctl.exit_code, 1);
  EXPECT_NE(ctl.err.find("log.level: must be one of"), std::string::npos) << ctl.err;
  kill(pid_, SIGHUP);
  ASSERT_NE(notify_->wait_for("Reload failed"), "");
  // Still serving, with the old configuration.
  EXPECT_EQ(api("GET", "/v1/status")["modules"][0]["status"]["greeting"], "hello");
  // A module refusing its new section also keeps the old configuration.
  write_config("probe2:\n  bogus: 1\n");
  EXPECT_EQ(api("POST", "/v1/reload", "", &code)["error"]["code"], "config_invalid");
  EXPECT_EQ(code, 422);
}

TEST_F(Daemon, SigtermStopsModulesInReverseAndExitsZero) {
  start_ready();
  EXPECT_EQ(stop(SIGTERM), 0) << read_file(dir_ / "stderr.txt");
  EXPECT_NE(notify_->wait_for("STOPPING=1", 2000), "");
  EXPECT_EQ(read_file(events_), "probe start\nprobe2 start\nprobe2 stop\nprobe stop\n");
  EXPECT_FALSE(fs::exists(socket_));
}

TEST_F(Daemon, AModuleThatFailsToStartStopsTheDaemon) {
  write_config("probe2:\n  fail_start: true\n");
  // The probe2 section now appears twice; rewrite it cleanly.
  std::ofstream(dir_ / "evertd.yaml")
      << "daemon:\n  state_dir: " << (dir_ / "state").string()
      << "\n  modules: [probe, probe2]\ncontrol:\n  socket: " << socket_
      << "\n  socket_group: \"\"\nprobe:\n  events_file: " << events_
      << "\nprobe2:\n  fail_start: true\n  events_file: " << events_ << "\n";
  start();
  bool timed_out = false;
  const int code = wait_process(pid_, 15'000, &timed_out);
  pid_ = -1;
  EXPECT_EQ(code, 1);
  EXPECT_NE(read_file(dir_ / "stderr.txt").find("module probe2 failed to start: asked to fail"),
            std::string::npos)
      << read_file(dir_ / "stderr.txt");
  EXPECT_EQ(read_file(events_), "probe start\nprobe2 start\nprobe stop\n");
}

TEST_F(Daemon, CommittedDataSurvivesKillNine) {
  start_ready();
  api("PUT", "/v1/probe/value", R"({"key":"k1","value":"survives"})");
  // Wait (bounded) until the group commit has made it durable.
  for (int i = 0; i < 200 && api("GET", "/v1/status")["store"]["pending_changes"] != 0; ++i) {
    usleep(10'000);
  }
  ASSERT_EQ(api("GET", "/v1/status")["store"]["pending_changes"], 0);
  EXPECT_EQ(stop(SIGKILL), 128 + SIGKILL);
  start_ready();  // the stale socket left by the killed daemon is replaced
  EXPECT_EQ(api("GET", "/v1/probe/value?key=k1")["value"], "survives");
}

TEST_F(Daemon, SocketActivationByName) {
  // systemd-socket-activate binds the socket and passes it as FileDescriptorName=control.
  start({}, {"systemd-socket-activate", "-l", socket_, "--fdname=control"});
  // It execs evertd on the first connection; the request then succeeds.
  auto r = control_request(socket_, "GET", "/v1/status", "", 10'000);
  for (int i = 0; i < 100 && !r.ok(); ++i) {  // until the activator has bound the socket
    usleep(20'000);
    r = control_request(socket_, "GET", "/v1/status", "", 10'000);
  }
  ASSERT_TRUE(r.ok()) << r.error().message << read_file(dir_ / "stderr.txt");
  EXPECT_EQ(r->status, 200);
  EXPECT_NE(read_file(dir_ / "stderr.txt").find("on the socket passed by systemd"),
            std::string::npos);
}

TEST_F(Daemon, WatchdogPingsAtHalfTheInterval) {
  start_ready({"WATCHDOG_USEC=200000"});
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_NE(notify_->wait_for("WATCHDOG=1", 2000), "");
  ASSERT_NE(notify_->wait_for("WATCHDOG=1", 2000), "");
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
          .count();
  EXPECT_LT(ms, 1000);  // two pings well within five intervals
}

TEST_F(Daemon, CheckAndPrintConfig) {
  auto ok =
      run_process({EVERTD_PROBE, "--config", (dir_ / "evertd.yaml").string(), "--check-config"});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_NE(ok.out.find("configuration OK"), std::string::npos);
  std::ofstream(dir_ / "evertd.yaml", std::ios::app) << "store:\n  colour: red\n";
  auto bad =
      run_process({EVERTD_PROBE, "--config", (dir_ / "evertd.yaml").string(), "--check-config"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_TRUE(std::regex_search(bad.err, std::regex("evertd\\.yaml:[0-9]+:3: store\\.colour: "
                                                    "unknown key")))
      << bad.err;
  auto defaults = run_process({EVERTD_PROBE, "--print-default-config"});
  EXPECT_EQ(defaults.exit_code, 0);
  std::ofstream(dir_ / "defaults.yaml") << defaults.out;
  auto parsed =
      run_process({EVERTD_PROBE, "--config", (dir_ / "defaults.yaml").string(), "--check-config"});
  EXPECT_EQ(parsed.exit_code, 0) << parsed.err;
  EXPECT_EQ(run_process({EVERTD_PROBE, "--frobnicate"}).exit_code, 2);
}

TEST(Packaging, ShippedUnitScoresAtMostTwo) {
  auto r = run_process({"systemd-analyze", "security", "--offline=true",
                        std::string(EVERT_SOURCE_DIR) + "/packaging/evertd.service"});
  std::smatch m;
  const std::string all = r.out + r.err;
  ASSERT_TRUE(std::regex_search(all, m,
                                std::regex("Overall exposure level for evertd.service: "
                                           "([0-9.]+)")))
      << all;
  EXPECT_LE(std::stod(m[1]), 2.0);
}

TEST(Packaging, UnitsVerifyAndDebBuilds) {
  const fs::path tmp = fs::temp_directory_path() / ("evert-pkg-" + std::to_string(getpid()));
  fs::create_directories(tmp);
  // Installed into a staging root (DESTDIR), never into the machine's /usr.
  auto staged = run_process({"env", "DESTDIR=" + (tmp / "root").string(), "cmake", "--install",
                             EVERT_BINARY_DIR, "--prefix", "/usr"},
                            120'000);
  ASSERT_EQ(staged.exit_code, 0) << staged.err;
  // systemd-analyze verify checks that ExecStart= exists: point it at the staged binary.
  const std::string unit_text = read_file(tmp / "root/usr/lib/systemd/system/evertd.service");
  const std::string unit = (tmp / "evertd.service").string();
  std::ofstream(unit) << std::regex_replace(unit_text, std::regex("/usr/sbin/evertd"),
                                            (tmp / "root/usr/sbin/evertd").string());
  auto verify = run_process({"systemd-analyze", "verify", "--man=no", unit});
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;

  auto pack = run_process(
      {"cpack", "-G", "DEB", "--config", std::string(EVERT_BINARY_DIR) + "/CPackConfig.cmake", "-B",
       (tmp / "deb").string()},
      300'000);
  ASSERT_EQ(pack.exit_code, 0) << pack.out << pack.err;
  fs::path deb;
  for (const auto& e : fs::directory_iterator(tmp / "deb")) {
    if (e.path().extension() == ".deb") deb = e.path();
  }
  ASSERT_FALSE(deb.empty());
  auto contents = run_process({"dpkg-deb", "--contents", deb.string()});
  for (const char* f :
       {"./usr/sbin/evertd", "./usr/bin/evertctl", "./usr/lib/systemd/system/evertd.service",
        "./usr/lib/systemd/system/evertd.socket", "./usr/lib/sysusers.d/evert.conf",
        "./usr/lib/tmpfiles.d/evert.conf", "./etc/evert/evertd.yaml",
        "./usr/share/man/man8/evertd.8", "./usr/share/man/man5/evertd.yaml.5",
        "./usr/share/man/man1/evertctl.1"}) {
    EXPECT_NE(contents.out.find(f), std::string::npos) << f << " missing from\n" << contents.out;
  }
  auto info = run_process({"dpkg-deb", "--info", deb.string()});
  EXPECT_NE(info.out.find("conffiles"), std::string::npos);
  EXPECT_NE(info.out.find("postinst"), std::string::npos);
  fs::remove_all(tmp);
}

}  // namespace
}  // namespace evert::test
