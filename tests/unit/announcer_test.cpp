// The everseed's announcer with its real event loop and store, against a UDP tracker in the
// same process (this project's own UdpTracker codec on a loopback socket): which URLs are this
// daemon's own, BEP 15 retransmission and connection-id reuse, event=stopped on removal and at
// stop, and the announce lists kept in the store (filled from the metainfo when missing).
#include "announcer.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <functional>

#include "catalog.h"
#include "evert/create.h"
#include "evert/file_list.h"
#include "evert/tracker/udp_proto.h"
#include "test_util.h"

namespace evert::everseed {
namespace {

using tracker::Endpoint;

int64_t wall() {
  return static_cast<int64_t>(std::time(nullptr));
}

tracker::Endpoint endpoint(const char* ip, uint16_t port) {
  Endpoint e;
  EXPECT_TRUE(Endpoint::parse_ip(ip, e));
  e.port = port;
  return e;
}

// A UDP tracker on 127.0.0.1:0 served by tracker::UdpTracker inside the test's loop; it can
// be told to ignore the first connect requests.
class FakeUdpTracker {
 public:
  explicit FakeUdpTracker(daemon::EventLoop& loop)
      : swarms_(open_mode()), udp_(swarms_, {}), out_(tracker::UdpTracker::kMaxResponse) {
    fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    port_ = tracker::local_port(fd_);
    watcher_ = std::make_unique<daemon::FdWatcher>(loop, fd_, daemon::FdWatcher::kRead,
                                                   [this](short) { on_readable(); });
  }
  ~FakeUdpTracker() {
    watcher_.reset();
    ::close(fd_);
  }
  [[nodiscard]] std::string url() const { return "udp://127.0.0.1:" + std::to_string(port_); }
  uint32_t seeders(const InfoHash& ih) const {
    tracker::SwarmCounts c;
    swarms_.scrape(ih, c);
    return c.complete;
  }

  int drop_connects = 0;
  int connects = 0;
  int announces = 0;
  int stopped = 0;

 private:
  static tracker::SwarmOptions open_mode() {
    tracker::SwarmOptions o;
    o.whitelist = false;
    return o;
  }
  void on_readable() {
    uint8_t buf[2048];
    sockaddr_storage from{};
    socklen_t len = sizeof from;
    const ssize_t n = ::recvfrom(fd_, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len);
    if (n < 16) return;
    const uint32_t action = buf[11];
    if (action == 0) {
      ++connects;
      if (drop_connects > 0) {
        --drop_connects;
        return;
      }
    } else if (action == 1 && n >= 98) {
      ++announces;
      if (buf[83] == 3) ++stopped;
    }
    const size_t m =
        udp_.handle({buf, static_cast<size_t>(n)}, tracker::endpoint_of(from), wall(), out_.data());
    if (m > 0) ::sendto(fd_, out_.data(), m, 0, reinterpret_cast<sockaddr*>(&from), len);
  }
  tracker::SwarmTable swarms_;
  tracker::UdpTracker udp_;
  std::vector<uint8_t> out_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::unique_ptr<daemon::FdWatcher> watcher_;
};

// An HTTP "tracker" on 127.0.0.1:0 inside the test's loop: it answers by the request's path
// (/ok, /refuse, /404, /junk, /close, /hang), and keeps the request lines it saw.
class FakeHttpTracker {
 public:
  explicit FakeHttpTracker(daemon::EventLoop& loop) : loop_(loop) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(::listen(fd_, 16), 0);
    port_ = tracker::local_port(fd_);
    watcher_ = std::make_unique<daemon::FdWatcher>(loop, fd_, daemon::FdWatcher::kRead,
                                                   [this](short) { accept_one(); });
  }
  ~FakeHttpTracker() {
    conns_.clear();
    watcher_.reset();
    ::close(fd_);
  }
  [[nodiscard]] std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  std::vector<std::string> requests;

 private:
  struct Conn {
    int fd = -1;
    std::string in;
    std::unique_ptr<daemon::FdWatcher> watcher;
    ~Conn() {
      watcher.reset();
      ::close(fd);
    }
  };
  void accept_one() {
    const int c = ::accept4(fd_, nullptr, nullptr, SOCK_NONBLOCK);
    if (c < 0) return;
    auto conn = std::make_unique<Conn>();
    conn->fd = c;
    Conn* raw = conn.get();
    conn->watcher = std::make_unique<daemon::FdWatcher>(loop_, c, daemon::FdWatcher::kRead,
                                                        [this, raw](short) { on_data(*raw); });
    conns_.push_back(std::move(conn));
  }
  void on_data(Conn& c) {
    char buf[4096];
    const ssize_t n = ::read(c.fd, buf, sizeof buf);
    if (n <= 0) {
      c.watcher->stop();
      return;
    }
    c.in.append(buf, static_cast<size_t>(n));
    if (c.in.find("\r\n\r\n") == std::string::npos) return;
    const std::string line = c.in.substr(0, c.in.find("\r\n"));
    requests.push_back(line);
    std::string body, head = "HTTP/1.1 200 OK";
    if (line.find(" /ok") != std::string::npos) {
      body = "d8:completei5e10:incompletei2e8:intervali900e5:peers0:e";
    } else if (line.find(" /refuse") != std::string::npos) {
      body = "d14:failure reason22:torrent not registerede";
    } else if (line.find(" /404") != std::string::npos) {
      head = "HTTP/1.1 404 Not Found";
      body = "<html>no</html>";
    } else if (line.find(" /junk") != std::string::npos) {
      body = "<html>a captive portal</html>";
    } else if (line.find(" /hang") != std::string::npos) {
      return;  // never answers
    }
    c.watcher->stop();
    if (line.find(" /close") == std::string::npos) {
      const std::string out = head + "\r\nContent-Length: " + std::to_string(body.size()) +
                              "\r\nConnection: close\r\n\r\n" + body;
      EXPECT_EQ(::write(c.fd, out.data(), out.size()), static_cast<ssize_t>(out.size()));
    }
    ::shutdown(c.fd, SHUT_RDWR);
  }
  daemon::EventLoop& loop_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::unique_ptr<daemon::FdWatcher> watcher_;
  std::vector<std::unique_ptr<Conn>> conns_;
};

struct AnnouncerTest : ::testing::Test {
  test::TempDir dir;
  std::unique_ptr<daemon::Store> store;
  daemon::EventLoop loop;
  std::shared_ptr<spdlog::logger> log = std::make_shared<spdlog::logger>("announcer-test");
  std::unique_ptr<Announcer> announcer;

  void SetUp() override {
    daemon::StoreOptions o;
    o.dir = dir / "state";
    auto s = daemon::Store::open(o);
    ASSERT_TRUE(s) << s.error().message;
    store = std::move(*s);
    announcer = make();
  }
  void TearDown() override {
    if (announcer) announcer->stop();
  }
  std::unique_ptr<Announcer> make() {
    auto a = std::make_unique<Announcer>(loop, *store, log, wall);
    AnnouncerOptions o;
    o.announce_private = true;  // the test trackers are on 127.0.0.1
    o.udp_timeout = 1;          // BEP 15 says 15 s; the test does not wait that long
    a->set_options(o);
    AnnounceIdentity id;
    id.peer_id.fill('p');
    id.port = 51413;
    a->set_identity(id);
    return a;
  }
  // Runs the loop until `done` holds or `seconds` pass; returns whether it held.
  bool run_until(const std::function<bool()>& done, int seconds = 10) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
    bool held = false;
    daemon::Timer poll(loop, [&] {
      held = done();
      if (held || std::chrono::steady_clock::now() > deadline) loop.stop();
    });
    poll.start(std::chrono::milliseconds(10), true);
    loop.run();
    return held;
  }
  std::string state_of(const InfoHash& key, size_t i = 0) {
    const auto t = announcer->describe(key);
    return t.size() > i ? t[i]["state"].get<std::string>() : "";
  }
  static InfoHash hash(uint8_t b) {
    InfoHash h;
    h.bytes.fill(b);
    return h;
  }
};

TEST_F(AnnouncerTest, OwnTrackerRule) {
  announcer->set_own_listeners({{false, endpoint("0.0.0.0", 6969)},
                                {true, endpoint("127.0.0.1", 6970)},
                                {false, endpoint("::1", 7000)}});
  AnnouncerOptions o;
  o.announce_private = true;  // the test trackers are on 127.0.0.1
  o.own_trackers = {"http://Tracker.Example.org/announce"};
  announcer->set_options(o);
  auto own = [&](const char* url) {
    auto u = tracker_client::parse_tracker_url(url);
    EXPECT_TRUE(u) << url;
    return announcer->own_without_lookup(*u);
  };
  EXPECT_EQ(own("http://127.0.0.1:6969/announce"), true);  // wildcard listener, loopback
  EXPECT_EQ(own("http://localhost:6969/announce"), true);
  EXPECT_EQ(own("http://0.0.0.0:6969/"), true);
  EXPECT_EQ(own("udp://127.0.0.1:6970"), true);
  EXPECT_EQ(own("udp://127.0.0.2:6970"), false);    // that socket is bound to 127.0.0.1 only
  EXPECT_EQ(own("http://127.0.0.1:6970/"), false);  // 6970 is a UDP port here
  EXPECT_EQ(own("udp://127.0.0.1:6969"), false);    // and 6969 a TCP one
  EXPECT_EQ(own("http://[::1]:6969/"), false);      // the wildcard is IPv4's
  EXPECT_EQ(own("http://[::1]:7000/"), true);
  EXPECT_EQ(own("http://203.0.113.5:6969/"), false);              // not an address of this machine
  EXPECT_EQ(own("http://tracker.example.org/other/path"), true);  // own_trackers, any path
  EXPECT_EQ(own("https://tracker.example.org/"), false);
  EXPECT_EQ(own("http://tracker.example.org:8080/"), std::nullopt);  // needs a lookup
  // An address of one of this machine's interfaces counts like the loopback.
  auto u = tracker_client::parse_tracker_url("http://x:6969/");
  EXPECT_TRUE(announcer->own_address(*u, endpoint("127.0.0.1", 6969)));
  EXPECT_FALSE(announcer->own_address(*u, endpoint("192.0.2.1", 6969)));

  // A torrent whose trackers are all this daemon's has no state.
  announcer->add(hash(1), {{"http://127.0.0.1:6969/announce"}, {"udp://localhost:6970"}});
  EXPECT_EQ(announcer->status()["torrents"], 0);
  EXPECT_TRUE(announcer->describe(hash(1)).empty());
  EXPECT_TRUE(store->get("announce", std::string(hash(1).view())));  // its list is kept
}

TEST_F(AnnouncerTest, UdpRetransmitsReusesConnectionIdsAndSaysStopped) {
  FakeUdpTracker t(loop);
  t.drop_connects = 1;  // the first connect is lost: sent again after udp_timeout
  const auto started = std::chrono::steady_clock::now();
  announcer->add(hash(1), {{t.url()}});
  ASSERT_TRUE(run_until([&] { return state_of(hash(1)) == "working"; }))
      << announcer->describe(hash(1)).dump();
  EXPECT_GE(std::chrono::steady_clock::now() - started, std::chrono::milliseconds(900));
  EXPECT_EQ(t.connects, 2);
  EXPECT_EQ(t.announces, 1);
  EXPECT_EQ(t.seeders(hash(1)), 1u);
  const auto d = announcer->describe(hash(1)).at(0);
  EXPECT_EQ(d["seeders"], 1);
  EXPECT_EQ(d["leechers"], 0);
  EXPECT_EQ(d["interval"], 1800);

  // A second torrent within the minute: no new connect.
  announcer->add(hash(2), {{t.url()}});
  ASSERT_TRUE(run_until([&] { return state_of(hash(2)) == "working"; }));
  EXPECT_EQ(t.connects, 2);
  EXPECT_EQ(t.announces, 2);

  // Unpublished: event=stopped goes out and the tracker drops it.
  announcer->remove(hash(1));
  ASSERT_TRUE(run_until([&] { return t.stopped == 1; }));
  EXPECT_EQ(t.seeders(hash(1)), 0u);
  EXPECT_TRUE(announcer->describe(hash(1)).empty());
  EXPECT_FALSE(store->get("announce", std::string(hash(1).view())));
  EXPECT_EQ(announcer->status()["stopped_sent"], 1);

  // The daemon stops: one datagram for the torrent still listed, no loop needed.
  announcer->stop();
  announcer.reset();
  ASSERT_TRUE(run_until([&] { return t.stopped == 2; }));
  EXPECT_EQ(t.seeders(hash(2)), 0u);
}

TEST_F(AnnouncerTest, AnUnansweredTrackerFailsAfterItsTries) {
  FakeUdpTracker t(loop);
  t.drop_connects = 1000;
  AnnouncerOptions o;
  o.announce_private = true;  // the test trackers are on 127.0.0.1
  o.udp_timeout = 1;
  o.udp_tries = 2;  // 1 s, then 2 s
  o.schedule.retry_min = 100;
  announcer->set_options(o);
  announcer->add(hash(3), {{t.url()}});
  ASSERT_TRUE(run_until([&] { return state_of(hash(3)) == "failing"; }, 10));
  EXPECT_EQ(t.connects, 2);
  const auto d = announcer->describe(hash(3)).at(0);
  EXPECT_NE(d["error"].get<std::string>().find("no answer from 127.0.0.1:"), std::string::npos)
      << d.dump();
  EXPECT_EQ(d["failures"], 1);
  EXPECT_EQ(d["next_announce"].get<int64_t>() - d["last_announce"].get<int64_t>(), 100);
}

TEST_F(AnnouncerTest, StartUpReadsTheStoreAndFillsMissingListsFromMetainfo) {
  FakeUdpTracker t(loop);
  // A published torrent whose announce list was never recorded (as before the announcer).
  const std::string file = dir / "payload.bin";
  test::write_file(file, test::random_bytes(40000, 7));
  auto scan = scan_path(file);
  ASSERT_TRUE(scan);
  CreateOptions co;
  co.trackers = {{"http://127.0.0.1:1/announce", t.url()}};
  auto created = create_torrent(*scan, co);
  ASSERT_TRUE(created) << created.error().message;
  Catalog catalog(*store);
  bool added = false;
  auto p = catalog.add(created->bytes, created->metainfo, file, true, wall(), added);
  ASSERT_TRUE(p);
  const InfoHash key = (*p)->key;
  // A row left behind by a torrent no longer published.
  store->put("announce", std::string(hash(9).view()), "ll22:udp://127.0.0.1:9999ee");

  AnnouncerOptions o;
  o.announce_private = true;  // the test trackers are on 127.0.0.1
  o.udp_timeout = 1;
  o.own_trackers = {"http://127.0.0.1:1/"};  // the first URL of the tier is "ours"
  announcer->set_options(o);
  announcer->load(catalog);
  EXPECT_TRUE(store->get("announce", std::string(key.view())));
  EXPECT_FALSE(store->get("announce", std::string(hash(9).view())));
  ASSERT_TRUE(run_until([&] { return state_of(key) == "working"; }));
  ASSERT_EQ(announcer->describe(key).size(), 1u);
  EXPECT_EQ(announcer->describe(key)[0]["url"], t.url());

  // A restart reads the row back and announces again with event=started.
  announcer->stop(/*say_stopped=*/false);
  announcer = make();
  announcer->set_options(o);
  announcer->load(catalog);
  ASSERT_TRUE(run_until([&] { return state_of(key) == "working"; }));
  EXPECT_EQ(t.announces, 2);
}

TEST_F(AnnouncerTest, HttpAnswersRefusalsAndErrors) {
  FakeHttpTracker t(loop);
  AnnouncerOptions o;
  o.announce_private = true;  // the test trackers are on 127.0.0.1
  o.http_timeout = 2;
  announcer->set_options(o);
  // A port nothing listens on.
  const int probe = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(probe, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  const std::string closed =
      "http://127.0.0.1:" + std::to_string(tracker::local_port(probe)) + "/announce";
  ::close(probe);
  const std::vector<std::pair<std::string, std::string>> cases = {
      {t.url("/ok/announce?passkey=x"), ""},
      {t.url("/refuse/announce"), "refused: torrent not registered"},
      {t.url("/404/announce"), "HTTP 404 Not Found"},
      {t.url("/junk/announce"), "the reply is not bencoded"},
      {t.url("/close/announce"), "127.0.0.1:"},
      {t.url("/hang/announce"), "timed out"},
      {closed, "(refused or unreachable)"},
  };
  for (size_t i = 0; i < cases.size(); ++i)
    announcer->add(hash(static_cast<uint8_t>(10 + i)), {{cases[i].first}});
  auto settled = [&] {
    for (size_t i = 0; i < cases.size(); ++i) {
      const std::string st = state_of(hash(static_cast<uint8_t>(10 + i)));
      if (st != "working" && st != "failing") return false;
    }
    return true;
  };
  ASSERT_TRUE(run_until(settled, 15));
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto d = announcer->describe(hash(static_cast<uint8_t>(10 + i))).at(0);
    if (cases[i].second.empty()) {
      EXPECT_EQ(d["state"], "working") << d.dump();
      EXPECT_EQ(d["seeders"], 5);
      EXPECT_EQ(d["leechers"], 2);
      EXPECT_EQ(d["interval"], 900);  // within [300, 3600]: as asked
    } else {
      EXPECT_EQ(d["state"], "failing") << d.dump();
      EXPECT_NE(d["error"].get<std::string>().find(cases[i].second), std::string::npos) << d.dump();
    }
  }
  // What the tracker was sent: a seed's started announce, after the URL's own query.
  bool seen = false;
  for (const auto& r : t.requests) {
    if (r.find("GET /ok/announce?passkey=x&info_hash=") != 0) continue;
    seen = true;
    for (const char* p : {"&port=51413", "&left=0", "&event=started", "&numwant=0", "&compact=1"})
      EXPECT_NE(r.find(p), std::string::npos) << r;
  }
  EXPECT_TRUE(seen);
  EXPECT_EQ(announcer->status()["failures"], 6);
}

TEST_F(AnnouncerTest, StoppingWithAnnouncesInFlight) {
  FakeHttpTracker t(loop);
  FakeUdpTracker u(loop);
  u.drop_connects = 1000;
  announcer->add(hash(1), {{t.url("/hang/announce")}, {u.url()}});
  ASSERT_TRUE(run_until([&] { return !t.requests.empty() && u.connects > 0; }));
  EXPECT_EQ(announcer->status()["in_flight"], 2);
  announcer->stop();  // frees the HTTP connection and forgets the UDP transaction
  announcer.reset();
  EXPECT_FALSE(run_until([] { return false; }, 1));  // nothing fires into a dead announcer
}

}  // namespace
}  // namespace evert::everseed
