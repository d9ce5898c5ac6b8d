// udp_load: a BEP 15 load generator for bench/tracker. One thread, one socket: connect, then
// keep a window of announces (or scrapes) in flight for a bounded time, counting only valid
// responses (the right action and a transaction id we sent). Loopback only.
//
//   udp_load --port P --hashes FILE [--host 127.0.0.1] [--seconds 10] [--window 256]
//            [--mode announce|scrape|fill] [--peers-per-torrent 1000] [--numwant 50]
//
// announce: random torrent from FILE (40-hex info-hashes, one per line), random peer id and
//           port, half of them seeds; prints "requests/s valid/s lost".
// fill:     announces torrent t, peer p for every t in FILE and p < peers-per-torrent exactly
//           once, round-robin over the torrents (numwant 0, distinct ports 1..N and peer ids), then
//           prints how many were acknowledged: the servers then hold that many peers.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

void put32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}
void put64(uint8_t* p, uint64_t v) {
  put32(p, static_cast<uint32_t>(v >> 32));
  put32(p + 4, static_cast<uint32_t>(v));
}
uint32_t get32(const uint8_t* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3];
}

[[noreturn]] void die(const std::string& why) {
  std::fprintf(stderr, "udp_load: %s\n", why.c_str());
  std::exit(1);
}

struct Options {
  std::string host = "127.0.0.1";
  int port = 0;
  std::string hashes;
  double seconds = 10;
  unsigned window = 256;
  std::string mode = "announce";
  unsigned peers_per_torrent = 1000;
  int numwant = 50;
};

std::vector<std::array<uint8_t, 20>> read_hashes(const std::string& path) {
  std::ifstream in(path);
  if (!in) die("cannot read " + path);
  std::vector<std::array<uint8_t, 20>> out;
  for (std::string line; std::getline(in, line);) {
    if (line.size() < 40) continue;
    std::array<uint8_t, 20> h{};
    for (size_t i = 0; i < 20; ++i)
      h[i] = static_cast<uint8_t>(std::stoul(line.substr(2 * i, 2), nullptr, 16));
    out.push_back(h);
  }
  if (out.empty()) die("no info-hashes in " + path);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) die(a + " needs a value");
      return argv[++i];
    };
    if (a == "--host")
      o.host = next();
    else if (a == "--port")
      o.port = std::atoi(next().c_str());
    else if (a == "--hashes")
      o.hashes = next();
    else if (a == "--seconds")
      o.seconds = std::atof(next().c_str());
    else if (a == "--window")
      o.window = static_cast<unsigned>(std::atoi(next().c_str()));
    else if (a == "--mode")
      o.mode = next();
    else if (a == "--peers-per-torrent")
      o.peers_per_torrent = static_cast<unsigned>(std::atoi(next().c_str()));
    else if (a == "--numwant")
      o.numwant = std::atoi(next().c_str());
    else
      die("unknown argument " + a);
  }
  if (o.port <= 0 || o.hashes.empty()) die("--port and --hashes are required");
  if (o.seconds <= 0 || o.seconds > 600) die("--seconds must be in (0, 600]");
  const auto hashes = read_hashes(o.hashes);

  const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(o.port));
  if (inet_pton(AF_INET, o.host.c_str(), &addr.sin_addr) != 1) die("bad --host");
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) die("connect failed");
  const int buf = 8 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);

  // Connect (retried: UDP may drop it).
  uint64_t cid = 0;
  for (int attempt = 0; attempt < 10 && cid == 0; ++attempt) {
    uint8_t req[16];
    put64(req, 0x41727101980ull);
    put32(req + 8, 0);
    put32(req + 12, 0xC0FFEE);
    send(fd, req, sizeof req, 0);
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 500) <= 0) continue;
    uint8_t resp[64];
    const ssize_t n = recv(fd, resp, sizeof resp, 0);
    if (n >= 16 && get32(resp) == 0 && get32(resp + 4) == 0xC0FFEE) {
      std::memcpy(&cid, resp + 8, 8);  // kept in network order, sent back as is
    }
  }
  if (cid == 0) die("no connect response from " + o.host + ":" + std::to_string(o.port));

  std::mt19937_64 rng(12345);
  const bool fill = o.mode == "fill";
  const bool scrape = o.mode == "scrape";
  const uint64_t fill_total = uint64_t{hashes.size()} * o.peers_per_torrent;
  uint64_t fill_next = 0;
  uint32_t next_tid = 1;
  uint64_t sent = 0, valid = 0, lost = 0;
  unsigned inflight = 0;
  auto last_progress = Clock::now();
  const auto start = Clock::now();
  const auto deadline = start + std::chrono::duration<double>(fill ? 600 : o.seconds);
  uint8_t out[128][100];
  iovec siov[128];
  mmsghdr smsgs[128];
  uint8_t in[128][4096];
  iovec riov[128];
  mmsghdr rmsgs[128];

  while (Clock::now() < deadline) {
    if (fill && fill_next >= fill_total && inflight == 0) break;
    // Send up to the window.
    unsigned batch = 0;
    while (inflight + batch < o.window && batch < 128 && !(fill && fill_next >= fill_total)) {
      uint8_t* p = out[batch];
      size_t len = 0;
      std::memcpy(p, &cid, 8);
      put32(p + 12, next_tid++);
      if (scrape) {
        put32(p + 8, 2);
        std::memcpy(p + 16, hashes[rng() % hashes.size()].data(), 20);
        len = 36;
      } else {
        put32(p + 8, 1);
        uint64_t t = 0, peer = 0;
        if (fill) {
          // Interleaved, as peers arrive in real swarms: every torrent grows at once.
          t = fill_next % hashes.size();
          peer = fill_next / hashes.size();
          ++fill_next;
        } else {
          t = rng() % hashes.size();
          peer = rng();
        }
        std::memcpy(p + 16, hashes[t].data(), 20);
        std::snprintf(reinterpret_cast<char*>(p + 36), 21, "-UL0001-%06x%06x",
                      static_cast<unsigned>(t & 0xFFFFFF), static_cast<unsigned>(peer & 0xFFFFFF));
        put64(p + 56, 0);                                    // downloaded
        put64(p + 64, fill ? 1000 : (peer & 1 ? 0 : 1000));  // left: half seeds
        put64(p + 72, 0);                                    // uploaded
        put32(p + 80, 2);                                    // started
        put32(p + 84, 0);                                    // ip
        put32(p + 88, static_cast<uint32_t>(peer));          // key
        put32(p + 92, static_cast<uint32_t>(fill ? 0 : o.numwant));
        const uint16_t port =
            fill ? static_cast<uint16_t>(1 + peer) : static_cast<uint16_t>(1 + peer % 65000);
        p[96] = static_cast<uint8_t>(port >> 8);
        p[97] = static_cast<uint8_t>(port);
        len = 98;
      }
      siov[batch] = {p, len};
      smsgs[batch] = {};
      smsgs[batch].msg_hdr.msg_iov = &siov[batch];
      smsgs[batch].msg_hdr.msg_iovlen = 1;
      ++batch;
    }
    if (batch > 0) {
      const int m = sendmmsg(fd, smsgs, batch, 0);
      if (m > 0) {
        inflight += static_cast<unsigned>(m);
        sent += static_cast<unsigned>(m);
        if (fill && static_cast<unsigned>(m) < batch) fill_next -= batch - static_cast<unsigned>(m);
      }
    }
    // Receive what has come back.
    pollfd pfd{fd, POLLIN, 0};
    if (poll(&pfd, 1, inflight >= o.window || (fill && fill_next >= fill_total) ? 20 : 0) > 0) {
      for (unsigned i = 0; i < 128; ++i) {
        riov[i] = {in[i], sizeof in[i]};
        rmsgs[i] = {};
        rmsgs[i].msg_hdr.msg_iov = &riov[i];
        rmsgs[i].msg_hdr.msg_iovlen = 1;
      }
      const int n = recvmmsg(fd, rmsgs, 128, MSG_DONTWAIT, nullptr);
      for (int i = 0; i < n; ++i) {
        const uint8_t* r = in[i];
        const unsigned len = rmsgs[i].msg_len;
        const uint32_t want = scrape ? 2 : 1;
        if (len >= 8 && get32(r) == want && get32(r + 4) < next_tid &&
            (scrape ? len >= 20 : len >= 20)) {
          ++valid;
        }
        if (inflight > 0) --inflight;
        last_progress = Clock::now();
      }
    }
    // Requests unanswered for a second are lost (UDP): free their window slots.
    if (inflight > 0 && Clock::now() - last_progress > std::chrono::seconds(1)) {
      lost += inflight;
      inflight = 0;
      last_progress = Clock::now();
    }
  }
  const double secs = std::chrono::duration<double>(Clock::now() - start).count();
  if (fill) {
    std::printf("acknowledged %llu of %llu in %.2f s\n", static_cast<unsigned long long>(valid),
                static_cast<unsigned long long>(fill_total), secs);
  } else {
    std::printf("%.0f requests/s, %.0f valid responses/s, %llu lost\n",
                static_cast<double>(sent) / secs, static_cast<double>(valid) / secs,
                static_cast<unsigned long long>(lost));
  }
  close(fd);
  return 0;
}
