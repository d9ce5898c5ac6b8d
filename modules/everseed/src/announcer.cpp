#include "announcer.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/util.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <sodium.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "announcer_internal.h"
#include "catalog.h"
#include "evert/bencode.h"
#include "evert/hash.h"

namespace evert::everseed {

using namespace announcer_detail;

namespace {

using tracker_client::Scheme;
using tracker_client::TrackerUrl;

constexpr const char* kDb = "announce";

std::string encode_row(const std::vector<std::vector<std::string>>& tiers) {
  bencode::List list;
  for (const auto& t : tiers) {
    bencode::List tier;
    for (const auto& u : t)
      tier.emplace_back(u);
    list.emplace_back(std::move(tier));
  }
  return bencode::encode(bencode::Value(std::move(list)));
}

// The tiers of a row; rows that do not parse give none.
std::vector<std::vector<std::string>> decode_row(const std::string& row) {
  std::vector<std::vector<std::string>> tiers;
  auto v = bencode::decode(row);
  if (!v || !v->is_list()) return tiers;
  for (const auto& t : v->as_list()) {
    if (!t.is_list()) continue;
    std::vector<std::string> tier;
    for (const auto& u : t.as_list())
      if (u.is_string()) tier.push_back(u.as_string());
    if (!tier.empty()) tiers.push_back(std::move(tier));
  }
  return tiers;
}

}  // namespace

Announcer::Announcer(daemon::EventLoop& loop, daemon::Store& store,
                     std::shared_ptr<spdlog::logger> log, Clock clock)
    : loop_(loop),
      store_(store),
      log_(std::move(log)),
      clock_(std::move(clock)),
      timer_(loop, [this] { tick(); }) {
  if (sodium_init() < 0) std::abort();
  key_ = randombytes_random();
  dns_ = evdns_base_new(loop_.base(),
                        EVDNS_BASE_INITIALIZE_NAMESERVERS | EVDNS_BASE_DISABLE_WHEN_INACTIVE);
  if (dns_ == nullptr) {
    // No usable resolv.conf: names in /etc/hosts still resolve.
    dns_ = evdns_base_new(loop_.base(), EVDNS_BASE_DISABLE_WHEN_INACTIVE);
    if (dns_ != nullptr) evdns_base_load_hosts(dns_, nullptr);
    log_->warn(
        "announcer: cannot read /etc/resolv.conf; tracker host names resolve only "
        "through /etc/hosts");
  }
}

Announcer::~Announcer() {
  stop_io();
  if (dns_ != nullptr) evdns_base_free(dns_, 0);
}

void Announcer::stop_io() {
  stopping_ = true;
  timer_.stop();
  // Connections are freed first: libevent then drops their requests without callbacks.
  for (auto& [id, f] : flights_) {
    if (f->conn != nullptr) evhttp_connection_free(f->conn);
    f->conn = nullptr;
  }
  for (evhttp_connection* c : http_graveyard_)
    evhttp_connection_free(c);
  http_graveyard_.clear();
  for (auto& [host, e] : dns_cache_) {
    // Cancelling calls the callback at once (EVUTIL_EAI_CANCEL), which sees stopping_.
    if (e->pending && e->request != nullptr) evdns_getaddrinfo_cancel(e->request);
  }
  flights_.clear();
  transactions_.clear();
  udp4_.reset();
  udp6_.reset();
}

void Announcer::set_options(const AnnouncerOptions& o) {
  options_ = o;
  options_.concurrency = std::max<size_t>(1, o.concurrency);
  schedule_.set_options(o.schedule);
  own_urls_.clear();
  for (const auto& u : o.own_trackers) {
    if (auto parsed = tracker_client::parse_tracker_url(u)) own_urls_.push_back(*parsed);
  }
  if (!stopping_) kick();
}

// --- Which trackers are ours ---------------------------------------------------------------

void Announcer::refresh_local_addresses(int64_t now) const {
  if (local_addresses_at_ >= 0 && now - local_addresses_at_ < 60) return;
  local_addresses_at_ = now;
  local_addresses_.clear();
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return;
  for (ifaddrs* i = list; i != nullptr; i = i->ifa_next) {
    if (i->ifa_addr == nullptr) continue;
    const int family = i->ifa_addr->sa_family;
    if (family != AF_INET && family != AF_INET6) continue;
    sockaddr_storage ss{};
    std::memcpy(&ss, i->ifa_addr, family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6));
    local_addresses_.push_back(tracker::endpoint_of(ss));
  }
  freeifaddrs(list);
}

bool Announcer::own_address(const TrackerUrl& u, const Endpoint& address) const {
  if (u.scheme == Scheme::kHttps) return false;  // this daemon's tracker speaks no TLS
  const bool udp = u.scheme == Scheme::kUdp;
  const Endpoint a = tracker::unmap(address);
  for (const OwnListener& l : own_listeners_) {
    if (l.udp != udp || l.address.port != u.port || l.address.family != a.family) continue;
    if (l.address.ip == a.ip) return true;
    if (!is_wildcard(l.address)) continue;
    if (is_wildcard(a) || is_loopback(a)) return true;
    refresh_local_addresses(clock_());
    for (const Endpoint& local : local_addresses_) {
      if (local.family == a.family && local.ip == a.ip) return true;
    }
  }
  return false;
}

std::optional<bool> Announcer::own_without_lookup(const TrackerUrl& u) const {
  const std::string key = u.endpoint_key();
  for (const TrackerUrl& o : own_urls_) {
    if (o.endpoint_key() == key) return true;
  }
  if (u.scheme == Scheme::kHttps) return false;
  auto literal = literal_address(u.host);
  if (!literal) return std::nullopt;
  literal->port = u.port;
  return own_address(u, *literal);
}

std::vector<std::vector<std::string>> Announcer::external(
    const std::vector<std::vector<std::string>>& tiers) const {
  std::vector<std::vector<std::string>> out(tiers.size());  // emptied tiers keep their place
  for (size_t t = 0; t < tiers.size(); ++t) {
    for (const auto& url : tiers[t]) {
      auto u = tracker_client::parse_tracker_url(url);
      if (!u) {
        log_->debug("announcer: tracker '{}' skipped: {}", url, u.error().message);
        continue;
      }
      if (own_without_lookup(*u).value_or(false)) continue;
      out[t].push_back(url);
    }
  }
  return out;
}

// --- Torrents in and out -------------------------------------------------------------------

void Announcer::schedule(const InfoHash& key, const std::vector<std::vector<std::string>>& tiers) {
  if (schedule_.add(key, external(tiers), clock_())) kick();
}

void Announcer::add(const InfoHash& key, const std::vector<std::vector<std::string>>& tiers) {
  store_.put(kDb, std::string(key.view()), encode_row(tiers));
  schedule(key, tiers);
}

void Announcer::remove(const InfoHash& key) {
  std::vector<AnnounceJob> stopped;
  schedule_.remove(key, &stopped);
  for (auto& j : stopped) {
    if (stopped_.size() < kMaxStoppedQueued) stopped_.push_back(std::move(j));
  }
  store_.del(kDb, std::string(key.view()));
  kick();
}

void Announcer::load(const Catalog& catalog) {
  size_t matched = 0;
  std::vector<std::string> orphans;
  store_.for_each(kDb, "", [&](const std::string& k, const std::string& v) {
    const Published* p = k.size() == 20 ? catalog.find(InfoHash::from(k)) : nullptr;
    if (p == nullptr || p->key != InfoHash::from(k)) {
      orphans.push_back(k);  // its torrent is no longer published
      return;
    }
    ++matched;
    schedule(p->key, decode_row(v));
  });
  for (auto& k : orphans)
    store_.del(kDb, std::move(k));
  size_t filled = 0;
  if (matched < catalog.size()) {
    // Torrents published before their announce list was kept: read it from the metainfo, once.
    catalog.for_each([&](const Published& p) {
      if (store_.get(kDb, std::string(p.key.view()))) return;
      auto bytes = catalog.torrent_bytes(p.key);
      auto meta = bytes ? parse_metainfo(*bytes) : Result<Metainfo>(Error("missing"));
      add(p.key, meta ? meta->trackers : std::vector<std::vector<std::string>>{});
      ++filled;
    });
  }
  log_->info("announcing {} of {} published torrents to {} external trackers{}",
             schedule_.torrents(), catalog.size(), schedule_.slots(),
             filled > 0 ? " (" + std::to_string(filled) + " announce lists read from metainfo)"
                        : std::string());
}

// --- The queue -----------------------------------------------------------------------------

void Announcer::kick() {
  if (!stopping_) timer_.start(std::chrono::milliseconds(0), false);
}

void Announcer::tick() {
  if (stopping_) return;
  for (evhttp_connection* c : http_graveyard_)
    evhttp_connection_free(c);
  http_graveyard_.clear();
  const int64_t now = clock_();
  udp_timeouts(now);
  while (flights_.size() < options_.concurrency) {
    if (!stopped_.empty()) {
      AnnounceJob j = std::move(stopped_.front());
      stopped_.pop_front();
      start(std::move(j));
      continue;
    }
    auto job = schedule_.pop(now);
    if (!job) break;
    start(std::move(*job));
  }
  arm();
}

void Announcer::arm() {
  if (stopping_) return;
  const int64_t now = clock_();
  std::optional<int64_t> wake;
  auto sooner = [&](int64_t t) { wake = wake ? std::min(*wake, t) : t; };
  if (!http_graveyard_.empty()) sooner(now);
  if (flights_.size() < options_.concurrency) {
    if (!stopped_.empty()) sooner(now);
    if (auto due = schedule_.next_due()) sooner(*due);
  }
  for (const auto& [id, f] : flights_) {
    if (f->deadline != 0) sooner(f->deadline);
  }
  if (!wake) {
    timer_.stop();
    return;
  }
  const int64_t ms = std::max<int64_t>(0, *wake - now) * 1000;
  timer_.start(std::chrono::milliseconds(ms), false);
}

tracker_client::AnnounceRequest Announcer::request_for(const AnnounceJob& job) const {
  tracker_client::AnnounceRequest a;
  a.info_hash = Sha1Digest::from_bytes(job.key.view());
  a.peer_id = identity_.peer_id;
  a.port = identity_.port;
  a.left = 0;  // a seed
  a.event = job.event;
  a.key = key_;
  a.numwant = 0;  // the everseed needs no peers: peers come to it
  a.ip = identity_.ip;
  Endpoint e;
  if (!identity_.ip.empty() && Endpoint::parse_ip(identity_.ip, e) && e.family == Family::kV4) {
    std::array<uint8_t, 4> v4{};
    std::memcpy(v4.data(), e.ip.data(), 4);
    a.ipv4 = v4;
  }
  return a;
}

void Announcer::start(AnnounceJob job) {
  auto f = std::make_unique<Flight>();
  f->owner = this;
  f->id = next_flight_++;
  f->job = std::move(job);
  auto url = tracker_client::parse_tracker_url(f->job.url);
  const uint64_t id = f->id;
  Flight& ref = *f;
  flights_.emplace(id, std::move(f));
  if (!url) {  // cannot happen for URLs that went through external(); kept safe anyway
    complete(id, nullptr, "not a tracker URL: " + url.error().message, false);
    return;
  }
  ref.url = std::move(*url);
  if (ref.url.scheme == Scheme::kHttps) {
    complete(id, nullptr, "https:// trackers are not supported yet", false);
    return;
  }
  if (auto literal = literal_address(ref.url.host)) {
    proceed(ref, *literal);
    return;
  }
  resolve(ref);
}

// --- Outcomes ------------------------------------------------------------------------------

void Announcer::complete(uint64_t id, const tracker_client::AnnounceReply* reply,
                         const std::string& error, bool unreachable) {
  auto it = flights_.find(id);
  if (it == flights_.end()) return;
  std::unique_ptr<Flight> f = std::move(it->second);
  flights_.erase(it);
  if (f->conn != nullptr) {
    if (f->in_callback) {
      http_graveyard_.push_back(f->conn);  // libevent still uses it until its callback returns
    } else {
      evhttp_connection_free(f->conn);
    }
  }
  if (f->transaction != 0) transactions_.erase(f->transaction);
  const int64_t now = clock_();
  const AnnounceJob& job = f->job;
  const bool ok = reply != nullptr && reply->failure.empty();
  if (job.entry == AnnounceJob::kNoEntry) {
    if (ok) ++counters_.stopped_sent;
  } else if (ok) {
    ++counters_.announces;
    schedule_.succeeded(job, *reply, now);
    log_->debug("announced {} to {}: {} seeders, {} leechers, interval {}", to_hex(job.key.view()),
                job.url, reply->seeders.value_or(0), reply->leechers.value_or(0), reply->interval);
  } else {
    ++counters_.failures;
    const std::string why = reply != nullptr ? "refused: " + reply->failure : error;
    schedule_.failed(job, why, reply == nullptr && unreachable, now);
    log_->debug("announce of {} to {} failed: {}", to_hex(job.key.view()), job.url, why);
  }
  kick();
}

// --- Stop and views ------------------------------------------------------------------------

void Announcer::stop(bool say_stopped) {
  if (stopping_) return;
  // event=stopped where it costs one datagram: UDP trackers whose connection id is fresh.
  const int64_t now = clock_();
  size_t sent = 0;
  if (say_stopped)
    schedule_.for_each_listed([&](const InfoHash& key, const std::string& url) {
      auto u = tracker_client::parse_tracker_url(url);
      if (!u || u->scheme != Scheme::kUdp) return true;
      std::optional<Endpoint> a = literal_address(u->host);
      if (!a) {
        auto d = dns_cache_.find(u->host);
        if (d == dns_cache_.end() || d->second->addresses.empty()) return true;
        a = d->second->addresses.front();
      }
      a = tracker::unmap(*a);
      a->port = u->port;
      auto cid = connection_ids_.find({a->ip, a->port});
      if (cid == connection_ids_.end() || now - cid->second.obtained >= kConnectionIdLife) {
        return true;
      }
      UdpSocket* sock = a->family == Family::kV4 ? udp4_.get() : udp6_.get();
      if (sock == nullptr) return true;
      AnnounceJob job;
      job.key = key;
      job.event = tracker_client::Event::kStopped;
      const std::string_view data = u->target == "/" ? std::string_view() : u->target;
      const std::string packet = tracker_client::udp_announce_request(
          cid->second.id, randombytes_random(), request_for(job), data);
      socklen_t len = 0;
      const sockaddr_storage to = to_sockaddr(*a, len);
      if (::sendto(sock->fd, packet.data(), packet.size(), 0,
                   reinterpret_cast<const sockaddr*>(&to), len) >= 0) {
        ++sent;
      }
      return sent < kMaxStoppedAtExit;
    });
  if (sent > 0) log_->info("told {} UDP trackers that the everseed stops", sent);
  stop_io();
}

nlohmann::json Announcer::describe(const InfoHash& key) const {
  nlohmann::json list = nlohmann::json::array();
  auto opt = [](int64_t v) { return v > 0 ? nlohmann::json(v) : nlohmann::json(nullptr); };
  for (const SlotView& v : schedule_.describe(key)) {
    nlohmann::json j = {{"url", v.url},
                        {"tier", v.tier},
                        {"state", v.state},
                        {"last_announce", opt(v.last)},
                        {"next_announce", opt(v.next)},
                        {"interval", opt(v.interval)},
                        {"seeders", v.seeders >= 0 ? nlohmann::json(v.seeders) : nullptr},
                        {"leechers", v.leechers >= 0 ? nlohmann::json(v.leechers) : nullptr},
                        {"failures", v.failures}};
    if (!v.error.empty()) j["error"] = v.error;
    if (!v.warning.empty()) j["warning"] = v.warning;
    list.push_back(std::move(j));
  }
  return list;
}

nlohmann::json Announcer::status() const {
  return {{"torrents", schedule_.torrents()},
          {"slots", schedule_.slots()},
          {"trackers", schedule_.trackers()},
          {"in_flight", flights_.size()},
          {"queued", schedule_.queued()},
          {"announces", counters_.announces},
          {"failures", counters_.failures},
          {"stopped_sent", counters_.stopped_sent},
          {"own_dropped", counters_.own_dropped},
          {"bad_datagrams", counters_.bad_datagrams},
          {"private_refused", counters_.private_refused}};
}

}  // namespace evert::everseed
