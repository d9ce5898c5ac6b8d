// evertctl swarms, swarm, stats: the tracker's state from evertd. evertctl probe: announce to
// or scrape any HTTP or UDP tracker and show the decoded answer, for operators who debug one.
#include <arpa/inet.h>
#include <netdb.h>
#include <poll.h>
#include <sodium.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <iomanip>
#include <iostream>
#include <memory>
#include <sstream>

#include "cli.h"
#include "evert/bencode.h"
#include "evert/big_endian.h"
#include "evert/hash.h"
#include "evert/magnet.h"

namespace evert::ctl {
namespace {

struct TrackerArgs {
  CommonOptions common;
  DaemonOptions daemon;
  std::string info_hash;
  size_t limit = 100;
};

std::string ago(long long seconds) {
  if (seconds < 0) return "-";
  if (seconds < 60) return std::to_string(seconds) + "s ago";
  if (seconds < 3600) return std::to_string(seconds / 60) + "m ago";
  if (seconds < 86400) return std::to_string(seconds / 3600) + "h ago";
  return std::to_string(seconds / 86400) + "d ago";
}
long long now_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int run_swarms(const TrackerArgs& a) {
  int code = kExitOk;
  auto j = call_daemon(a.common, a.daemon, "GET",
                       "/v1/tracker/swarms?limit=" + std::to_string(a.limit), "", code);
  if (!j) return code;
  if (a.common.json) {
    print_json(*j);
    return kExitOk;
  }
  const auto& list = (*j)["swarms"];
  std::cout << std::left << std::setw(42) << "INFO-HASH" << std::right << std::setw(9) << "SEEDERS"
            << std::setw(10) << "LEECHERS" << std::setw(11) << "COMPLETED"
            << "  LAST ACTIVITY\n";
  for (const auto& s : list) {
    std::cout << std::left << std::setw(42) << s.value("info_hash", "") << std::right
              << std::setw(9) << s.value("seeders", 0) << std::setw(10) << s.value("leechers", 0)
              << std::setw(11) << s.value("completed", 0) << "  "
              << ago(now_seconds() - s.value("last_activity", 0LL)) << '\n';
  }
  const size_t total = j->value("total", size_t{0});
  std::cout << total << " swarm" << (total == 1 ? "" : "s");
  if (total > list.size()) std::cout << " (the " << list.size() << " busiest shown; --limit N)";
  std::cout << '\n';
  return kExitOk;
}

bool valid_hex_hash(const std::string& h) {
  return h.size() == 40 && h.find_first_not_of("0123456789abcdefABCDEF") == std::string::npos;
}

int run_swarm(const TrackerArgs& a) {
  if (!valid_hex_hash(a.info_hash)) {
    return usage_error(a.common, "'" + a.info_hash + "' is not an info-hash (40 hex digits)");
  }
  int code = kExitOk;
  auto j = call_daemon(a.common, a.daemon, "GET", "/v1/tracker/swarm?info_hash=" + a.info_hash, "",
                       code);
  if (!j) return code;
  if (a.common.json) {
    print_json(*j);
    return kExitOk;
  }
  std::cout << "Info-hash:  " << j->value("info_hash", "") << '\n'
            << "Seeders:    " << j->value("seeders", 0) << '\n'
            << "Leechers:   " << j->value("leechers", 0) << '\n'
            << "Completed:  " << j->value("completed", 0) << '\n'
            << "Activity:   " << ago(now_seconds() - j->value("last_activity", 0LL)) << "\n\n";
  std::cout << std::left << std::setw(42) << "ADDRESS" << std::setw(24) << "CLIENT" << std::setw(9)
            << "STATE"
            << "LAST SEEN\n";
  for (const auto& p : (*j)["peers"]) {
    std::string addr = p.value("address", "");
    addr = (addr.find(':') != std::string::npos ? "[" + addr + "]" : addr) + ":" +
           std::to_string(p.value("port", 0));
    const std::string state = p.value("seeder", false)         ? "seed"
                              : p.value("partial_seed", false) ? "partial"
                                                               : "leech";
    std::cout << std::left << std::setw(42) << addr << std::setw(24) << p.value("client", "")
              << std::setw(9) << state << ago(p.value("last_seen_ago", 0LL)) << '\n';
  }
  return kExitOk;
}

int run_stats(const TrackerArgs& a) {
  int code = kExitOk;
  auto j = call_daemon(a.common, a.daemon, "GET", "/v1/tracker/stats", "", code);
  if (!j) return code;
  if (a.common.json) {
    print_json(*j);
    return kExitOk;
  }
  auto num = [](const nlohmann::json& v) {
    std::ostringstream s;
    s << std::fixed << std::setprecision(v.is_number_float() ? 1 : 0) << v.get<double>();
    return s.str();
  };
  const auto& ann = (*j)["announces"];
  const auto& scr = (*j)["scrapes"];
  const auto& aps = (*j)["announces_per_second"];
  const auto& sps = (*j)["scrapes_per_second"];
  std::cout << "Announces:  " << num(ann["http"]) << " HTTP, " << num(ann["udp"]) << " UDP  (now "
            << num(aps["http"]) << "/s HTTP, " << num(aps["udp"]) << "/s UDP)\n"
            << "Scrapes:    " << num(scr["http"]) << " HTTP, " << num(scr["udp"]) << " UDP  (now "
            << num(sps["http"]) << "/s HTTP, " << num(sps["udp"]) << "/s UDP)\n"
            << "Swarms:     " << num((*j)["swarms"]) << "  (" << num((*j)["whitelisted"])
            << " torrents whitelisted)\n"
            << "Peers:      " << num((*j)["peers"]) << "  (" << num((*j)["expired_peers"])
            << " expired so far)\n";
  if (j->contains("unlisted_announces")) {  // an older evertd has no such counters
    const auto& u = (*j)["unlisted_announces"];
    std::cout << "Unlisted:   " << num(u["swarm_full"]) << " announces (swarm full), "
              << num(u["address_full"]) << " (too many peers from one address)\n";
  }
  std::cout << "Memory:     " << num((*j)["memory"]["peer_records_bytes"])
            << " bytes of peer records, " << num((*j)["memory"]["resident_bytes"])
            << " bytes resident\n";
  std::cout << "Failures:\n";
  bool any = false;
  for (const auto& [why, n] : (*j)["failures"].items()) {
    if (n.get<uint64_t>() == 0) continue;
    any = true;
    std::cout << "  " << std::setw(8) << n.get<uint64_t>() << "  " << why << '\n';
  }
  if (!any) std::cout << "  none\n";
  return kExitOk;
}

// ---- probe ------------------------------------------------------------------------------------

struct ProbeArgs {
  CommonOptions common;
  std::string url;
  std::string info_hash;
  bool scrape = false;
  std::string event = "started";
  uint16_t port = 6881;
  uint64_t left = 0;
  int numwant = 50;
  int timeout = 10;
};

struct Url {
  std::string scheme, host, port, path;
};
std::optional<Url> parse_url(const std::string& s) {
  Url u;
  const size_t sep = s.find("://");
  if (sep == std::string::npos) return std::nullopt;
  u.scheme = s.substr(0, sep);
  std::string rest = s.substr(sep + 3);
  const size_t slash = rest.find('/');
  u.path = slash == std::string::npos ? "/" : rest.substr(slash);
  std::string hostport = rest.substr(0, slash);
  if (!hostport.empty() && hostport[0] == '[') {
    const size_t close = hostport.find(']');
    if (close == std::string::npos) return std::nullopt;
    u.host = hostport.substr(1, close - 1);
    if (close + 1 < hostport.size() && hostport[close + 1] == ':')
      u.port = hostport.substr(close + 2);
  } else {
    const size_t colon = hostport.rfind(':');
    u.host = hostport.substr(0, colon);
    if (colon != std::string::npos) u.port = hostport.substr(colon + 1);
  }
  if (u.port.empty()) u.port = u.scheme == "udp" ? "6969" : "80";
  if (u.host.empty() || (u.scheme != "http" && u.scheme != "udp")) return std::nullopt;
  return u;
}

// A connected socket to the URL's host, or an error message.
int connect_to(const Url& u, int type, std::string& why) {
  addrinfo hints{};
  hints.ai_socktype = type;
  addrinfo* res = nullptr;
  if (int rc = getaddrinfo(u.host.c_str(), u.port.c_str(), &hints, &res); rc != 0) {
    why = u.host + ": " + gai_strerror(rc);
    return -1;
  }
  int fd = -1;
  for (addrinfo* ai = res; ai != nullptr && fd < 0; ai = ai->ai_next) {
    fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
      why = u.host + ":" + u.port + ": " + std::strerror(errno);
      close(fd);
      fd = -1;
    }
  }
  freeaddrinfo(res);
  return fd;
}

bool wait_readable(int fd, int ms) {
  pollfd p{fd, POLLIN, 0};
  return poll(&p, 1, ms) > 0;
}

std::string random_peer_id() {
  std::string id = "-ET0010-";
  unsigned char r[12];
  randombytes_buf(r, sizeof r);
  for (unsigned char c : r)
    id += "0123456789abcdefghijklmnopqrstuvwxyz"[c % 36];
  return id;
}

nlohmann::json compact_peers(const std::string& bytes, size_t entry) {
  nlohmann::json out = nlohmann::json::array();
  for (size_t i = 0; i + entry <= bytes.size(); i += entry) {
    char buf[INET6_ADDRSTRLEN] = {};
    inet_ntop(entry == 6 ? AF_INET : AF_INET6, bytes.data() + i, buf, sizeof buf);
    const auto* p = reinterpret_cast<const unsigned char*>(bytes.data() + i + entry - 2);
    const std::string addr = entry == 6 ? std::string(buf) : "[" + std::string(buf) + "]";
    out.push_back(addr + ":" + std::to_string(p[0] << 8 | p[1]));
  }
  return out;
}

nlohmann::json to_json(const bencode::Value& v, const std::string& key = "") {
  if (v.is_int()) return v.as_int();
  if (v.is_string()) {
    const std::string& s = v.as_string();
    if (key == "peers") return compact_peers(s, 6);
    if (key == "peers6") return compact_peers(s, 18);
    if (key == "external ip" && (s.size() == 4 || s.size() == 16)) {  // BEP 24
      char buf[INET6_ADDRSTRLEN] = {};
      inet_ntop(s.size() == 4 ? AF_INET : AF_INET6, s.data(), buf, sizeof buf);
      return std::string(buf);
    }
    bool printable = true;
    for (unsigned char c : s)
      printable = printable && c >= 0x20 && c < 0x7f;
    return printable ? nlohmann::json(s) : nlohmann::json("hex:" + to_hex(s));
  }
  if (v.is_list()) {
    nlohmann::json a = nlohmann::json::array();
    for (const auto& e : v.as_list())
      a.push_back(to_json(e));
    return a;
  }
  nlohmann::json o = nlohmann::json::object();
  for (const auto& [k, e] : v.as_dict()) {
    bool printable = true;
    for (unsigned char c : k)
      printable = printable && c >= 0x20 && c < 0x7f;
    o[printable ? k : "hex:" + to_hex(k)] = to_json(e, k);
  }
  return o;
}

int probe_http(const ProbeArgs& a, const Url& u, const std::string& ih, nlohmann::json& out) {
  std::string path = u.path;
  if (a.scrape) {
    const size_t slash = path.rfind('/');
    if (path.compare(slash + 1, 8, "announce") != 0) {
      return fail(a.common, "usage",
                  "cannot scrape " + a.url +
                      ": its path has no 'announce' "
                      "to turn into 'scrape' (BEP 48)");
    }
    path.replace(slash + 1, 8, "scrape");
  }
  path += path.find('?') == std::string::npos ? "?" : "&";
  path += "info_hash=" + percent_encode(ih);
  if (!a.scrape) {
    path += "&peer_id=" + percent_encode(random_peer_id()) + "&port=" + std::to_string(a.port) +
            "&uploaded=0&downloaded=0&left=" + std::to_string(a.left) +
            "&compact=1&numwant=" + std::to_string(a.numwant) +
            (a.event.empty() ? "" : "&event=" + a.event);
  }
  std::string why;
  const int fd = connect_to(u, SOCK_STREAM, why);
  if (fd < 0) return fail(a.common, "connect", why);
  const std::string req = "GET " + path + " HTTP/1.1\r\nHost: " + u.host +
                          "\r\nUser-Agent: evertctl/" EVERT_VERSION "\r\nConnection: close\r\n\r\n";
  send(fd, req.data(), req.size(), MSG_NOSIGNAL);
  std::string resp;
  char buf[16384];
  while (resp.size() < (4u << 20) && wait_readable(fd, a.timeout * 1000)) {
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    resp.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  const size_t end = resp.find("\r\n\r\n");
  if (end == std::string::npos) return fail(a.common, "http", "no HTTP response from " + a.url);
  out["http_status"] = resp.substr(0, resp.find("\r\n"));
  std::string body = resp.substr(end + 4);
  if (resp.find("Transfer-Encoding: chunked") != std::string::npos ||
      resp.find("transfer-encoding: chunked") != std::string::npos) {
    std::string joined;
    for (size_t pos = 0; pos < body.size();) {
      const size_t eol = body.find("\r\n", pos);
      if (eol == std::string::npos) break;
      const size_t len = std::strtoul(body.substr(pos, eol - pos).c_str(), nullptr, 16);
      if (len == 0) break;
      joined += body.substr(eol + 2, len);
      pos = eol + 2 + len + 2;
    }
    body = joined;
  }
  auto v = bencode::decode(body);
  if (!v) {
    out["body"] = body.substr(0, 2000);
    out["error"] = "not bencoded: " + v.error().describe();
    return kExitOk;
  }
  out["response"] = to_json(*v);
  return kExitOk;
}

// One request, retried (UDP may drop it); the response whose transaction id matches.
std::optional<std::string> udp_exchange(int fd, const std::string& req, uint32_t tid, int tries,
                                        int timeout_ms) {
  for (int i = 0; i < tries; ++i) {
    send(fd, req.data(), req.size(), 0);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (std::chrono::steady_clock::now() < deadline) {
      if (!wait_readable(fd, 100)) continue;
      unsigned char buf[4096];
      const ssize_t n = recv(fd, buf, sizeof buf, 0);
      if (n >= 8 && be::load32(buf + 4) == tid) return std::string(reinterpret_cast<char*>(buf), n);
    }
  }
  return std::nullopt;
}

int probe_udp(const ProbeArgs& a, const Url& u, const std::string& ih, nlohmann::json& out) {
  std::string why;
  const int fd = connect_to(u, SOCK_DGRAM, why);
  if (fd < 0) return fail(a.common, "connect", why);
  sockaddr_storage peer{};
  socklen_t plen = sizeof peer;
  getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &plen);
  const size_t entry = peer.ss_family == AF_INET6 ? 18 : 6;
  uint32_t tid = 0;
  randombytes_buf(&tid, sizeof tid);
  std::string c;
  be::append64(c, 0x41727101980ull);
  be::append32(c, 0);
  be::append32(c, tid);
  const int per_try = std::max(1, a.timeout / 3) * 1000;
  auto r = udp_exchange(fd, c, tid, 3, per_try);
  if (!r || r->size() < 16 || be::load32(reinterpret_cast<const unsigned char*>(r->data())) != 0) {
    close(fd);
    return fail(a.common, "timeout", "no connect response from " + a.url);
  }
  const std::string cid = r->substr(8, 8);
  std::string q = cid;
  ++tid;
  if (a.scrape) {
    be::append32(q, 2);
    be::append32(q, tid);
    q += ih;
  } else {
    const std::string pid = random_peer_id();
    const uint32_t ev = a.event == "completed" ? 1
                        : a.event == "started" ? 2
                        : a.event == "stopped" ? 3
                                               : 0;
    be::append32(q, 1);
    be::append32(q, tid);
    q += ih + pid;
    be::append64(q, 0);
    be::append64(q, a.left);
    be::append64(q, 0);
    be::append32(q, ev);
    be::append32(q, 0);
    be::append32(q, tid);
    be::append32(q, static_cast<uint32_t>(a.numwant));
    q += static_cast<char>(a.port >> 8);
    q += static_cast<char>(a.port & 0xFF);
  }
  r = udp_exchange(fd, q, tid, 3, per_try);
  close(fd);
  if (!r) return fail(a.common, "timeout", "no response from " + a.url);
  const auto* b = reinterpret_cast<const unsigned char*>(r->data());
  const uint32_t action = be::load32(b);
  nlohmann::json resp;
  if (action == 3) {
    resp["failure reason"] = r->substr(8);
  } else if (action == 1 && r->size() >= 20) {
    resp = {{"interval", be::load32(b + 8)},
            {"leechers", be::load32(b + 12)},
            {"seeders", be::load32(b + 16)},
            {entry == 6 ? "peers" : "peers6", compact_peers(r->substr(20), entry)}};
  } else if (action == 2 && r->size() >= 20) {
    resp = {{"seeders", be::load32(b + 8)},
            {"completed", be::load32(b + 12)},
            {"leechers", be::load32(b + 16)}};
  } else {
    return fail(a.common, "protocol",
                "unexpected UDP response (action " + std::to_string(action) + ", " +
                    std::to_string(r->size()) + " bytes)");
  }
  out["response"] = resp;
  return kExitOk;
}

void print_value(const nlohmann::json& v, int indent) {
  const std::string pad(static_cast<size_t>(indent), ' ');
  for (const auto& [k, e] : v.items()) {
    if (e.is_object()) {
      std::cout << pad << k << ":\n";
      print_value(e, indent + 2);
    } else if (e.is_array()) {
      std::cout << pad << k << ": " << e.size() << (e.size() == 1 ? " entry" : " entries") << '\n';
      for (const auto& x : e)
        std::cout << pad << "  " << (x.is_string() ? x.get<std::string>() : json_text(x)) << '\n';
    } else {
      std::cout << pad << k << ": " << (e.is_string() ? e.get<std::string>() : json_text(e))
                << '\n';
    }
  }
}

int run_probe(const ProbeArgs& a) {
  if (sodium_init() < 0) return fail(a.common, "internal", "libsodium failed to initialise");
  auto u = parse_url(a.url);
  if (!u) {
    return usage_error(a.common, "'" + a.url + "' is not an http:// or udp:// tracker URL");
  }
  std::string ih = a.info_hash;
  if (ih.empty()) {
    ih.resize(20);
    randombytes_buf(ih.data(), ih.size());
  } else if (valid_hex_hash(ih)) {
    ih = *from_hex(ih, 20);
  } else {
    return usage_error(a.common, "'" + a.info_hash + "' is not an info-hash (40 hex digits)");
  }
  nlohmann::json out = {
      {"tracker", a.url}, {"request", a.scrape ? "scrape" : "announce"}, {"info_hash", to_hex(ih)}};
  const int rc = u->scheme == "udp" ? probe_udp(a, *u, ih, out) : probe_http(a, *u, ih, out);
  if (rc != kExitOk) return rc;
  if (a.common.json) {
    print_json(out);
  } else {
    print_value(out, 0);
  }
  return out.contains("response") && out["response"].contains("failure reason") ? kExitFailure
                                                                                : kExitOk;
}

}  // namespace

Command add_swarms(CLI::App& parent) {
  auto a = std::make_shared<TrackerArgs>();
  CLI::App* cmd = parent.add_subcommand(
      "swarms", "List the tracker's swarms, busiest first: seeders, leechers, completed");
  cmd->add_option("--limit", a->limit, "Show at most N swarms (default 100)")
      ->check(CLI::Range(1, 1'000'000));
  add_daemon_options(*cmd, a->daemon);
  add_common_options(*cmd, a->common);
  return {cmd, [a] { return run_swarms(*a); }};
}

Command add_swarm(CLI::App& parent) {
  auto a = std::make_shared<TrackerArgs>();
  CLI::App* cmd = parent.add_subcommand(
      "swarm", "One swarm: its counts and every peer (address, client, state, last seen)");
  cmd->add_option("INFO_HASH", a->info_hash, "The swarm's info-hash, 40 hex digits")->required();
  add_daemon_options(*cmd, a->daemon);
  add_common_options(*cmd, a->common);
  return {cmd, [a] { return run_swarm(*a); }};
}

Command add_stats(CLI::App& parent) {
  auto a = std::make_shared<TrackerArgs>();
  CLI::App* cmd = parent.add_subcommand(
      "stats", "Tracker statistics: announces and scrapes (HTTP/UDP), failures, swarms, memory");
  add_daemon_options(*cmd, a->daemon);
  add_common_options(*cmd, a->common);
  return {cmd, [a] { return run_stats(*a); }};
}

Command add_probe(CLI::App& parent) {
  auto a = std::make_shared<ProbeArgs>();
  CLI::App* cmd = parent.add_subcommand(
      "probe", "Announce to or scrape any HTTP or UDP tracker and show the decoded answer");
  cmd->add_option("URL", a->url, "Tracker URL: http://HOST:PORT/announce or udp://HOST:PORT")
      ->required();
  cmd->add_option("INFO_HASH", a->info_hash, "Info-hash, 40 hex digits (default: a random one)");
  cmd->add_flag("--scrape", a->scrape, "Scrape instead of announcing");
  cmd->add_option("--event", a->event, "Announce event (default started)")
      ->check(CLI::IsMember({"", "started", "completed", "stopped", "paused"}));
  cmd->add_option("--port", a->port, "Port to announce (default 6881)")
      ->check(CLI::Range(1, 65535));
  cmd->add_option("--left", a->left, "Bytes left to announce (default 0: a seed)");
  cmd->add_option("--numwant", a->numwant, "Peers wanted (default 50)")->check(CLI::Range(0, 1000));
  cmd->add_option("--timeout", a->timeout, "Seconds to wait for the tracker (default 10)")
      ->check(CLI::Range(1, 300));
  add_common_options(*cmd, a->common);
  return {cmd, [a] { return run_probe(*a); }};
}

}  // namespace evert::ctl
