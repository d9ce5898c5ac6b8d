// The tracker module: HTTP and UDP listeners in front of one SwarmTable, persistence through
// the daemon's store (write-behind: the announce path queues a change, the store's group commit
// makes it durable), control-API routes and Prometheus metrics.
#include "evert/tracker/tracker_module.h"

#include <arpa/inet.h>
#include <malloc.h>
#include <sodium.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <map>
#include <nlohmann/json.hpp>

#include "evert/hash.h"
#include "evert/tracker/http_proto.h"
#include "evert/tracker/http_server.h"
#include "evert/tracker/swarm.h"
#include "evert/tracker/udp_proto.h"
#include "tracker_config.h"
#include "udp_server.h"

namespace evert::tracker {
namespace {

using daemon::ApiRequest;
using daemon::ApiResponse;
using nlohmann::json;

int64_t wall_seconds() {
  return static_cast<int64_t>(std::time(nullptr));
}

std::optional<InfoHash> parse_hex_hash(std::string_view hex) {
  if (hex.size() != 40) return std::nullopt;
  InfoHash ih;
  for (size_t i = 0; i < 20; ++i) {
    unsigned v = 0;
    for (int j = 0; j < 2; ++j) {
      const char c = hex[2 * i + j];
      v <<= 4;
      if (c >= '0' && c <= '9') {
        v |= static_cast<unsigned>(c - '0');
      } else if (c >= 'a' && c <= 'f') {
        v |= static_cast<unsigned>(c - 'a' + 10);
      } else if (c >= 'A' && c <= 'F') {
        v |= static_cast<unsigned>(c - 'A' + 10);
      } else {
        return std::nullopt;
      }
    }
    ih.bytes[i] = static_cast<uint8_t>(v);
  }
  return ih;
}

std::string ip_text(const Endpoint& e) {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(e.family == Family::kV4 ? AF_INET : AF_INET6, e.ip.data(), buf, sizeof buf);
  return buf;
}

size_t rss_bytes() {
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  unsigned long pages = 0;
  unsigned long rss = 0;
  if (std::fscanf(f, "%lu %lu", &pages, &rss) != 2) rss = 0;
  std::fclose(f);
  return rss * static_cast<size_t>(sysconf(_SC_PAGESIZE));
}

}  // namespace

struct TrackerModule::Impl {
  TrackerSection pending;
  TrackerSection cfg;
  daemon::ModuleContext* ctx = nullptr;
  std::unique_ptr<SwarmTable> swarms;
  std::unique_ptr<UdpTracker> udp_tracker;
  std::unique_ptr<HttpServer> http;
  std::unique_ptr<UdpServer> udp;
  std::unique_ptr<daemon::Timer> sweep_timer;
  std::unique_ptr<daemon::Timer> rate_timer;
  std::unique_ptr<daemon::Timer> persist_timer;
  std::vector<Endpoint> proxies;
  std::vector<Endpoint> metrics_allow;
  std::vector<InfoHash> config_whitelist;
  QueryLimits limits;
  AnnounceReply reply;  // reused by every HTTP announce
  std::vector<InfoHash> scrape_hashes;

  // Counters (stats and /metrics).
  uint64_t http_announces = 0;
  uint64_t http_scrapes = 0;
  std::map<std::string, uint64_t> failures;  // reason -> count, bounded
  uint64_t expired = 0;
  // Rates, sampled every few seconds.
  struct Sample {
    int64_t at = 0;
    uint64_t http_announces = 0, http_scrapes = 0, udp_announces = 0, udp_scrapes = 0;
  } last, rate;
  double rate_seconds = 1;

  // Write-behind persistence: snapshots of the swarms that changed go to the store, whose
  // group commit makes them durable (docs/storage.md).
  void persist() {
    size_t bytes = 0;
    swarms->take_dirty(wall_seconds(), [&](const InfoHash& ih, std::string blob) {
      bytes += blob.size();
      if (blob.empty()) {
        ctx->store.del("swarms", std::string(ih.view()));
      } else {
        ctx->store.put("swarms", std::string(ih.view()), std::move(blob));
      }
    });
    // Snapshots are large and short-lived: once the store has written them, give their pages
    // back instead of leaving them to fragment the heap of a daemon that lives for months.
    if (bytes >= (1u << 20)) {
      ctx->store.commit([this](const Status&) { ctx->loop.post([] { malloc_trim(0); }); });
    }
  }

  void fail(std::string_view why, HttpResponse& res) {
    std::string key(why.substr(0, why.find(" (")));
    if (failures.size() < 64 || failures.count(key)) {
      ++failures[key];
    } else {
      ++failures["other"];
    }
    res.body.clear();
    write_failure(why, res.body);
  }

  SwarmOptions swarm_options() const {
    SwarmOptions o;
    o.whitelist = cfg.mode == "whitelist";
    o.expiry = static_cast<uint32_t>(cfg.expiry);
    o.max_swarms = static_cast<size_t>(cfg.max_swarms);
    o.max_peers_per_swarm = static_cast<size_t>(cfg.max_peers_per_swarm);
    o.max_peers_per_address = static_cast<size_t>(cfg.max_peers_per_address);
    o.keep_peer_ids = cfg.keep_peer_ids;
    return o;
  }
  UdpTracker::Options udp_options() const {
    return {static_cast<uint32_t>(cfg.interval), static_cast<uint32_t>(cfg.numwant_default),
            static_cast<uint32_t>(cfg.numwant_max)};
  }
  void apply_live_settings() {
    swarms->set_options(swarm_options());
    udp_tracker->set_options(udp_options());
    limits.numwant_default = static_cast<uint32_t>(cfg.numwant_default);
    limits.numwant_max = static_cast<uint32_t>(cfg.numwant_max);
    limits.max_scrape = static_cast<size_t>(cfg.max_scrape);
    auto ips = [](const std::vector<std::string>& in) {
      std::vector<Endpoint> out;
      for (const auto& s : in) {
        Endpoint e;
        if (Endpoint::parse_ip(s, e)) out.push_back(e);
      }
      return out;
    };
    proxies = ips(cfg.trusted_proxies);
    metrics_allow = ips(cfg.metrics_allow);
    for (const auto& ih : config_whitelist)
      swarms->disallow(ih);
    config_whitelist.clear();
    for (const auto& h : cfg.whitelist) {
      if (auto ih = parse_hex_hash(h)) {
        config_whitelist.push_back(*ih);
        swarms->allow(*ih);
      }
    }
    if (http) http->set_options(http_options());
  }

  [[nodiscard]] HttpServer::Options http_options() const {
    HttpServer::Options o;
    o.timeout_seconds = cfg.http_timeout;
    o.max_connections = static_cast<size_t>(cfg.max_connections);
    o.max_per_address = static_cast<size_t>(cfg.max_per_address);
    o.exempt = proxies;
    return o;
  }

  static bool same_ip(const Endpoint& a, const Endpoint& b) {
    return a.family == b.family && std::memcmp(a.ip.data(), b.ip.data(), a.ip_size()) == 0;
  }
  bool listed(const std::vector<Endpoint>& list, const Endpoint& e) const {
    return std::any_of(list.begin(), list.end(), [&](const Endpoint& x) { return same_ip(x, e); });
  }

  // The client's address: the connection's, or what a trusted proxy says it is.
  Endpoint client_address(const HttpRequest& req) const {
    Endpoint e = req.peer;
    if (proxies.empty() || !listed(proxies, req.peer)) return e;
    Endpoint p;
    if (!req.x_real_ip.empty() && Endpoint::parse_ip(req.x_real_ip, p)) return p;
    std::string_view xff = req.x_forwarded_for;
    const size_t comma = xff.rfind(',');
    if (comma != std::string_view::npos) xff = xff.substr(comma + 1);
    while (!xff.empty() && xff.front() == ' ')
      xff.remove_prefix(1);
    if (!xff.empty() && Endpoint::parse_ip(xff, p)) return p;
    return e;
  }

  void handle_http(const HttpRequest& req, HttpResponse& res) {
    if (req.path == "/announce") {
      announce(req, res);
    } else if (req.path == "/scrape") {
      scrape(req, res);
    } else if (req.path == "/metrics") {
      metrics(req, res);
    } else {
      res.status = 404;
      res.body = "not found: this is a BitTorrent tracker (/announce, /scrape)\n";
    }
  }

  void announce(const HttpRequest& req, HttpResponse& res) {
    auto parsed = parse_announce(req.query, limits);
    if (!parsed) return fail(parsed.error().message, res);
    HttpAnnounce& a = *parsed;
    const Endpoint client = client_address(req);
    a.request.endpoint.family = client.family;
    a.request.endpoint.ip = client.ip;
    if (cfg.allow_ip_param) {
      // The client's word for its address (BEP 3 ip=, BEP 7 ipv4=/ipv6=), when allowed.
      if (a.ip) {
        a.request.endpoint.family = a.ip->family;
        a.request.endpoint.ip = a.ip->ip;
      }
      const std::optional<Endpoint>& other =
          a.request.endpoint.family == Family::kV4 ? a.ipv6 : a.ipv4;
      const std::optional<Endpoint>& same =
          a.request.endpoint.family == Family::kV4 ? a.ipv4 : a.ipv6;
      if (same) {
        a.request.endpoint.ip = same->ip;
        if (same->port != 0) a.request.endpoint.port = same->port;
      }
      if (other) {
        a.request.other = *other;
        if (a.request.other->port == 0) a.request.other->port = a.request.endpoint.port;
      }
    }
    const Refusal r = swarms->announce(a.request, wall_seconds(), reply);
    if (r == Refusal::kNotAllowed) {
      return fail("unregistered torrent: this tracker only tracks torrents published on it", res);
    }
    if (r == Refusal::kTooManySwarms) {
      return fail("tracker full: too many swarms, try again later", res);
    }
    ++http_announces;
    AnnounceResponseOptions o;
    o.interval = static_cast<uint32_t>(cfg.interval);
    o.min_interval = static_cast<uint32_t>(cfg.min_interval);
    o.tracker_id = cfg.tracker_id;
    o.external_ip = client;
    if (reply.address_full) {
      o.warning =
          "too many peers from your address in this swarm: you get peers but are not listed";
    } else if (!reply.stored) {
      o.warning = "swarm full: you get peers but are not listed";
    }
    res.body.clear();
    write_announce_response(a, reply, o, res.body);
  }

  void scrape(const HttpRequest& req, HttpResponse& res) {
    auto parsed = parse_scrape(req.query, limits);
    if (!parsed) return fail(parsed.error().message, res);
    scrape_hashes = std::move(*parsed);
    res.body.clear();
    ScrapeWriter w(res.body);
    if (scrape_hashes.empty()) {
      if (!cfg.full_scrape) {
        return fail("full scrape is disabled: give one or more info_hash", res);
      }
      std::vector<std::pair<InfoHash, SwarmCounts>> all;
      swarms->for_each([&](const InfoHash& ih, const Swarm& s) {
        all.emplace_back(ih, SwarmTable::counts_of(s));
      });
      std::sort(all.begin(), all.end(),
                [](const auto& a, const auto& b) { return a.first < b.first; });
      for (const auto& [ih, c] : all)
        w.add(ih, c);
    } else {
      std::sort(scrape_hashes.begin(), scrape_hashes.end());
      scrape_hashes.erase(std::unique(scrape_hashes.begin(), scrape_hashes.end()),
                          scrape_hashes.end());
      for (const auto& ih : scrape_hashes) {
        SwarmCounts c;
        if (swarms->scrape(ih, c)) w.add(ih, c);
      }
    }
    w.finish(static_cast<uint32_t>(cfg.min_interval));
    ++http_scrapes;
  }

  void metrics(const HttpRequest& req, HttpResponse& res) {
    if (!cfg.metrics || !listed(metrics_allow, req.peer)) {
      res.status = cfg.metrics ? 403 : 404;
      res.body = cfg.metrics ? "metrics: address not allowed\n" : "metrics are disabled\n";
      return;
    }
    const UdpCounters& u = udp_tracker->counters();
    std::string& o = res.body;
    o.clear();
    auto line = [&](const std::string& name, const std::string& labels, uint64_t v) {
      o += name;
      if (!labels.empty()) o += "{" + labels + "}";
      o += " " + std::to_string(v) + "\n";
    };
    auto head = [&](const std::string& name, const char* type, const char* help) {
      o += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
    };
    head("evert_tracker_announces_total", "counter", "Announces answered");
    line("evert_tracker_announces_total", "transport=\"http\"", http_announces);
    line("evert_tracker_announces_total", "transport=\"udp\"", u.announces);
    head("evert_tracker_scrapes_total", "counter", "Scrapes answered");
    line("evert_tracker_scrapes_total", "transport=\"http\"", http_scrapes);
    line("evert_tracker_scrapes_total", "transport=\"udp\"", u.scrapes);
    head("evert_tracker_udp_connects_total", "counter", "UDP connect requests answered");
    line("evert_tracker_udp_connects_total", "", u.connects);
    head("evert_tracker_failures_total", "counter", "Requests answered with a failure");
    for (const auto& [why, n] : failures) {
      std::string label;
      for (char c : why)
        label += (c == '"' || c == '\\') ? '_' : c;
      line("evert_tracker_failures_total", "transport=\"http\",reason=\"" + label + "\"", n);
    }
    line("evert_tracker_failures_total", "transport=\"udp\",reason=\"error\"", u.errors);
    line("evert_tracker_failures_total", "transport=\"udp\",reason=\"bad connection id\"",
         u.bad_connection_id);
    const SwarmTable::Counters& sc = swarms->counters();
    head("evert_tracker_unlisted_announces_total", "counter",
         "Announces answered without listing the peer");
    line("evert_tracker_unlisted_announces_total", "reason=\"swarm full\"", sc.swarm_full);
    line("evert_tracker_unlisted_announces_total", "reason=\"address full\"", sc.address_full);
    head("evert_tracker_expired_swarms_total", "counter", "Swarms dropped with nothing left");
    line("evert_tracker_expired_swarms_total", "", sc.swarms_expired);
    head("evert_tracker_swarms", "gauge", "Swarms tracked");
    line("evert_tracker_swarms", "", swarms->swarm_count());
    head("evert_tracker_peers", "gauge", "Peers tracked");
    line("evert_tracker_peers", "", swarms->peer_count());
    head("evert_tracker_peer_bytes", "gauge", "Bytes held by peer records");
    line("evert_tracker_peer_bytes", "", swarms->peer_bytes());
    head("evert_tracker_expired_peers_total", "counter", "Peers dropped for not announcing");
    line("evert_tracker_expired_peers_total", "", expired);
    head("evert_process_resident_bytes", "gauge", "Resident memory of evertd");
    line("evert_process_resident_bytes", "", rss_bytes());
    res.content_type = "text/plain; version=0.0.4";
  }

  json stats_json() const {
    const UdpCounters& u = udp_tracker->counters();
    json fails = json::object();
    for (const auto& [why, n] : failures)
      fails[why] = n;
    fails["udp: error sent"] = u.errors;
    fails["udp: bad connection id"] = u.bad_connection_id;
    auto per_second = [&](uint64_t v) { return static_cast<double>(v) / rate_seconds; };
    return {
        {"announces", {{"http", http_announces}, {"udp", u.announces}}},
        {"scrapes", {{"http", http_scrapes}, {"udp", u.scrapes}}},
        {"announces_per_second",
         {{"http", per_second(rate.http_announces)}, {"udp", per_second(rate.udp_announces)}}},
        {"scrapes_per_second",
         {{"http", per_second(rate.http_scrapes)}, {"udp", per_second(rate.udp_scrapes)}}},
        {"udp_connects", u.connects},
        {"failures", fails},
        {"swarms", swarms->swarm_count()},
        {"peers", swarms->peer_count()},
        {"whitelisted", swarms->allowed_count()},
        {"expired_peers", expired},
        {"expired_swarms", swarms->counters().swarms_expired},
        {"unlisted_announces",
         {{"swarm_full", swarms->counters().swarm_full},
          {"address_full", swarms->counters().address_full}}},
        {"memory", {{"peer_records_bytes", swarms->peer_bytes()}, {"resident_bytes", rss_bytes()}}},
        {"http_connections", http ? http->connections() : 0},
        {"http_refused_per_address", http ? http->refused_per_address() : 0},
    };
  }

  void sample_rates() {
    const int64_t now = wall_seconds();
    const UdpCounters& u = udp_tracker->counters();
    Sample s{now, http_announces, http_scrapes, u.announces, u.scrapes};
    if (last.at != 0 && now > last.at) {
      rate = {now, s.http_announces - last.http_announces, s.http_scrapes - last.http_scrapes,
              s.udp_announces - last.udp_announces, s.udp_scrapes - last.udp_scrapes};
      rate_seconds = static_cast<double>(now - last.at);
    }
    last = s;
  }

  void load_state() {
    // The secret of the peer-id keys lives with the snapshots that hold the keys.
    std::array<uint8_t, 16> secret{};
    if (auto v = ctx->store.get("meta", "tracker_key_secret"); v && v->size() == secret.size()) {
      std::memcpy(secret.data(), v->data(), secret.size());
    } else {
      randombytes_buf(secret.data(), secret.size());
      ctx->store.put("meta", "tracker_key_secret",
                     std::string(reinterpret_cast<const char*>(secret.data()), secret.size()));
    }
    swarms->set_key_secret(secret);
    const int64_t now = wall_seconds();
    size_t bad = 0;
    std::vector<std::string> gone;
    ctx->store.for_each("swarms", "", [&](const std::string& k, const std::string& v) {
      if (k.size() != 20 || !swarms->restore_snapshot(InfoHash::from(k), v, now)) {
        ++bad;
      } else if (swarms->find(InfoHash::from(k)) == nullptr) {
        gone.push_back(k);  // every peer expired while evertd was stopped
      }
    });
    for (auto& k : gone)
      ctx->store.del("swarms", std::move(k));
    if (bad > 0) ctx->log->warn("{} malformed swarm snapshots ignored", bad);
    ctx->log->info("restored {} peers in {} swarms", swarms->peer_count(), swarms->swarm_count());
  }

  ApiResponse route_swarms(const ApiRequest& r) const {
    size_t limit = 1000;
    if (auto l = daemon::query_param(r.query, "limit"); !l.empty()) {
      limit = static_cast<size_t>(std::strtoull(l.c_str(), nullptr, 10));
    }
    std::vector<std::pair<InfoHash, const Swarm*>> all;
    swarms->for_each([&](const InfoHash& ih, const Swarm& s) { all.emplace_back(ih, &s); });
    std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) {
      if (a.second->peers() != b.second->peers()) return a.second->peers() > b.second->peers();
      return a.first < b.first;
    });
    json list = json::array();
    for (size_t i = 0; i < all.size() && i < limit; ++i) {
      const SwarmCounts c = SwarmTable::counts_of(*all[i].second);
      list.push_back({{"info_hash", to_hex(all[i].first.view())},
                      {"seeders", c.complete},
                      {"leechers", c.incomplete},
                      {"completed", c.downloaded},
                      {"last_activity", all[i].second->last_activity}});
    }
    ApiResponse res;
    res.body = {{"swarms", list}, {"total", all.size()}};
    return res;
  }

  ApiResponse route_swarm(const ApiRequest& r) const {
    const std::string h = daemon::query_param(r.query, "info_hash");
    auto ih = parse_hex_hash(h);
    if (!ih) {
      return ApiResponse::error(400, "bad_request", "info_hash must be 40 hex digits");
    }
    const Swarm* s = swarms->find(*ih);
    if (s == nullptr) {
      return ApiResponse::error(404, "not_found", "no swarm for " + h + " on this tracker");
    }
    const int64_t now = wall_seconds();
    const SwarmCounts c = SwarmTable::counts_of(*s);
    json peers = json::array();
    for (const auto& p : swarms->peers_of(*ih, now)) {
      json j = {{"address", ip_text(p.endpoint)},
                {"port", p.endpoint.port},
                {"peer_id", p.id ? json(to_hex(p.id->view())) : json(nullptr)},
                {"client", p.client},
                {"seeder", p.seeder},
                {"partial_seed", p.partial},
                {"completed", p.completed},
                {"last_seen_ago", p.age}};
      j["last_seen"] = now - p.age;
      peers.push_back(j);
    }
    ApiResponse res;
    res.body = {{"info_hash", to_hex(ih->view())},   {"seeders", c.complete},
                {"leechers", c.incomplete},          {"completed", c.downloaded},
                {"last_activity", s->last_activity}, {"peers", peers}};
    return res;
  }
};

TrackerModule::TrackerModule() : impl_(std::make_unique<Impl>()) {}
TrackerModule::~TrackerModule() = default;

std::string TrackerModule::name() const {
  return "tracker";
}

Status TrackerModule::configure(const YAML::Node& section) {
  TrackerSection s;
  if (auto st = daemon::parse_module_section("tracker", section, tracker_table(), s); !st) {
    return st;
  }
  if (s.min_interval > s.interval) {
    return Error("tracker.min_interval (" + std::to_string(s.min_interval) +
                 ") must not exceed tracker.interval (" + std::to_string(s.interval) + ")");
  }
  if (s.numwant_default > s.numwant_max) {
    return Error("tracker.numwant_default must not exceed tracker.numwant_max");
  }
  if (s.http_listen.empty() && s.udp_listen.empty()) {
    return Error("tracker: http_listen and udp_listen are both empty: nothing to serve");
  }
  impl_->pending = s;
  return Ok{};
}

Status TrackerModule::start(daemon::ModuleContext& ctx) {
  Impl& m = *impl_;
  m.ctx = &ctx;
  m.cfg = m.pending;
  m.swarms = std::make_unique<SwarmTable>(m.swarm_options());
  m.udp_tracker = std::make_unique<UdpTracker>(*m.swarms, m.udp_options());
  m.apply_live_settings();
  if (m.cfg.persist) {
    m.load_state();
    m.swarms->set_track_dirty(true);
  }

  m.http = std::make_unique<HttpServer>(
      ctx.loop, [&m](const HttpRequest& req, HttpResponse& res) { m.handle_http(req, res); },
      m.http_options());
  for (const auto& l : m.cfg.http_listen) {
    sockaddr_storage ss{};
    unsigned len = 0;
    std::string why;
    if (!parse_listen(l, ss, len, why)) return Error("http_listen " + l + ": " + why);
    if (auto s = m.http->listen(ss, len, "HTTP " + l); !s) return s;
  }
  m.udp = std::make_unique<UdpServer>(ctx.loop, *m.udp_tracker, wall_seconds);
  for (const auto& l : m.cfg.udp_listen) {
    sockaddr_storage ss{};
    unsigned len = 0;
    std::string why;
    if (!parse_listen(l, ss, len, why)) return Error("udp_listen " + l + ": " + why);
    if (auto s = m.udp->listen(ss, len, "UDP " + l); !s) return s;
  }
  std::string ports;
  for (auto p : m.http->ports())
    ports += " http:" + std::to_string(p);
  for (auto p : m.udp->ports())
    ports += " udp:" + std::to_string(p);
  ctx.log->info("tracker listening on{} ({} mode)", ports, m.cfg.mode);

  m.sweep_timer = std::make_unique<daemon::Timer>(
      ctx.loop, [&m] { m.expired += m.swarms->expire(wall_seconds()); });
  m.sweep_timer->start(std::chrono::seconds(30), true);
  if (m.cfg.persist) {
    m.persist_timer = std::make_unique<daemon::Timer>(ctx.loop, [&m] { m.persist(); });
    m.persist_timer->start(std::chrono::milliseconds(m.cfg.persist_interval), true);
  }
  m.rate_timer = std::make_unique<daemon::Timer>(ctx.loop, [&m] { m.sample_rates(); });
  m.rate_timer->start(std::chrono::seconds(5), true);
  m.sample_rates();

  ctx.route("GET", "/v1/tracker/swarms", [&m](const ApiRequest& r) { return m.route_swarms(r); });
  ctx.route("GET", "/v1/tracker/swarm", [&m](const ApiRequest& r) { return m.route_swarm(r); });
  ctx.route("GET", "/v1/tracker/stats", [&m](const ApiRequest&) {
    ApiResponse res;
    res.body = m.stats_json();
    return res;
  });
  return Ok{};
}

std::vector<std::string> TrackerModule::reload() {
  Impl& m = *impl_;
  std::vector<std::string> restart;
  const auto& table = tracker_table();
  for (const auto& f : table) {
    if (!f.reloadable && f.show(m.cfg) != f.show(m.pending)) restart.push_back("tracker." + f.key);
  }
  const TrackerSection keep = m.cfg;
  m.cfg = m.pending;
  // What needs a restart keeps its running value.
  m.cfg.http_listen = keep.http_listen;
  m.cfg.udp_listen = keep.udp_listen;
  m.cfg.persist = keep.persist;
  m.cfg.keep_peer_ids = keep.keep_peer_ids;
  m.apply_live_settings();
  if (m.persist_timer) {
    m.persist_timer->start(std::chrono::milliseconds(m.cfg.persist_interval), true);
  }
  return restart;
}

void TrackerModule::stop() {
  Impl& m = *impl_;
  if (m.http) m.http->stop();
  if (m.udp) m.udp->stop();
  m.sweep_timer.reset();
  m.rate_timer.reset();
  m.persist_timer.reset();
  if (m.cfg.persist && m.swarms) m.persist();  // the store is flushed after the modules stop
}

nlohmann::json TrackerModule::status() const {
  const Impl& m = *impl_;
  json j = {{"mode", m.cfg.mode}};
  if (m.swarms) {
    j["swarms"] = m.swarms->swarm_count();
    j["peers"] = m.swarms->peer_count();
  }
  if (m.http) j["http_ports"] = m.http->ports();
  if (m.udp) j["udp_ports"] = m.udp->ports();
  return j;
}

SwarmTable* TrackerModule::swarms() {
  return impl_->swarms.get();
}

std::vector<TrackerModule::Listener> TrackerModule::listeners() const {
  std::vector<Listener> out;
  if (impl_->http) {
    for (const Endpoint& e : impl_->http->addresses())
      out.push_back({false, e});
  }
  if (impl_->udp) {
    for (const Endpoint& e : impl_->udp->addresses())
      out.push_back({true, e});
  }
  return out;
}

std::vector<std::string> TrackerModule::announce_urls() const {
  const Impl& m = *impl_;
  if (!m.cfg.public_urls.empty() || !m.http) return m.cfg.public_urls;
  std::vector<std::string> out;
  auto add = [&out](const std::string& scheme, const std::vector<std::string>& listen,
                    const std::vector<uint16_t>& ports) {
    for (size_t i = 0; i < listen.size(); ++i) {
      sockaddr_storage ss{};
      unsigned len = 0;
      std::string why;
      if (!parse_listen(listen[i], ss, len, why)) continue;
      Endpoint e = endpoint_of(ss);
      if (e.port == 0 && i < ports.size()) e.port = ports[i];
      std::string host;
      if (e.ip == Endpoint{}.ip) {
        char name[256] = {};
        if (gethostname(name, sizeof name - 1) != 0) continue;
        host = name;
      } else {
        host = e.to_string();
        host = host.substr(0, host.rfind(':'));  // "1.2.3.4:80" / "[::1]:80" without the port
      }
      const std::string url = scheme + "://" + host + ":" + std::to_string(e.port) + "/announce";
      if (std::find(out.begin(), out.end(), url) == out.end()) out.push_back(url);
    }
  };
  add("http", m.cfg.http_listen, m.http->ports());
  if (m.udp) add("udp", m.cfg.udp_listen, m.udp->ports());
  return out;
}

daemon::ModuleInfo TrackerModule::info() {
  return {"tracker", "HTTP and UDP BitTorrent tracker (BEP 3, 15, 23, 7, 48)",
          [] { return std::make_unique<TrackerModule>(); }, print_tracker_defaults,
          /*default_on=*/true};
}

}  // namespace evert::tracker
