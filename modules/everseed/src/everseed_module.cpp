#include "evert/everseed/everseed_module.h"

#include <netinet/in.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "announcer_wiring.h"
#include "catalog.h"
#include "everseed_config.h"
#include "evert/hash.h"
#include "evert/tracker/swarm.h"
#include "evert/tracker/tracker_module.h"
#include "publisher.h"
#include "seed_server.h"
#include "utp_endpoint.h"

namespace evert::everseed {

using daemon::ApiRequest;
using nlohmann::json;

struct EverseedModule::Impl {
  daemon::ModuleContext* ctx = nullptr;
  EverseedSection cfg;
  EverseedSection pending;
  std::unique_ptr<Catalog> catalog;
  std::unique_ptr<SeedServer> server;
  std::unique_ptr<UtpEndpoint> utp;       // null when everseed.utp is off
  std::unique_ptr<Announcer> announcer;   // null when everseed.announce is off
  tracker::SwarmTable* swarms = nullptr;  // this daemon's tracker, when it runs one
  std::unique_ptr<Publisher> publisher;
  std::unique_ptr<daemon::Timer> counter_timer;
  std::string web_seed_base;  // set by the web module
  uint64_t uploads = 0;       // upload folders handed out (new_upload_dir)

  void tell_tracker(const Published& p, bool seeded) {
    if (swarms == nullptr) return;
    for (const auto* h : {&p.key, p.alt ? &*p.alt : nullptr}) {
      if (h == nullptr) continue;
      if (seeded) {
        swarms->add_seeded(*h);
      } else {
        swarms->remove_seeded(*h);
      }
    }
  }

  // The addresses the tracker hands out for the seed.
  void set_local_seed() {
    if (swarms == nullptr) return;
    std::optional<tracker::Endpoint> v4;
    std::optional<tracker::Endpoint> v6;
    const auto ports = server->ports();
    const auto& list = cfg.public_address.empty() ? cfg.listen : cfg.public_address;
    for (size_t i = 0; i < list.size(); ++i) {
      sockaddr_storage ss{};
      unsigned len = 0;
      std::string why;
      if (!tracker::parse_listen(list[i], ss, len, why)) continue;
      tracker::Endpoint e = tracker::endpoint_of(ss);
      if (e.ip == tracker::Endpoint{}.ip) continue;  // a wildcard is no address to give out
      if (e.port == 0 && cfg.public_address.empty() && i < ports.size()) e.port = ports[i];
      (e.family == tracker::Family::kV4 ? v4 : v6) = e;
    }
    swarms->set_local_seed(v4, v6);
  }

  json describe(const Published& p) const {
    const char* state = !p.ready ? "publishing" : p.problem.empty() ? "seeding" : "stopped";
    json j = {{"name", p.name},         {"info_hash", to_hex(p.key.view())},
              {"size", p.size},         {"data", p.data_path},
              {"in_place", p.in_place}, {"published", p.published},
              {"uploaded", p.uploaded}, {"state", state}};
    if (p.alt) j["info_hash_v2_truncated"] = to_hex(p.alt->view());
    if (!p.problem.empty()) j["problem"] = p.problem;
    j["trackers"] = announcer ? announcer->describe(p.key) : json::array();
    if (swarms != nullptr) {
      tracker::SwarmCounts c;
      swarms->scrape(p.key, c);
      j["seeders"] = c.complete;
      j["leechers"] = c.incomplete;
      j["completed"] = c.downloaded;
    }
    return j;
  }
};

EverseedModule::EverseedModule() : impl_(std::make_unique<Impl>()) {}
EverseedModule::~EverseedModule() = default;

std::string EverseedModule::name() const {
  return "everseed";
}

Status EverseedModule::configure(const YAML::Node& section) {
  EverseedSection s;
  if (auto st = daemon::parse_module_section("everseed", section, everseed_table(), s); !st) {
    return st;
  }
  if (s.listen.empty()) return Error("everseed.listen is empty: peers could not connect");
  if (s.announce_min_interval > s.announce_max_interval) {
    return Error("everseed.announce_min_interval must not exceed everseed.announce_max_interval");
  }
  impl_->pending = s;
  return Ok{};
}

Status EverseedModule::start(daemon::ModuleContext& ctx) {
  Impl& m = *impl_;
  m.ctx = &ctx;
  m.cfg = m.pending;
  m.catalog = std::make_unique<Catalog>(ctx.store);
  m.catalog->set_workers(ctx.loop, ctx.workers);
  if (const size_t bad = m.catalog->load(); bad > 0) {
    ctx.log->warn("{} malformed rows in the torrents database ignored", bad);
  }
  m.server = std::make_unique<SeedServer>(ctx.loop, ctx.workers, *m.catalog, ctx.log);
  m.server->set_options(m.cfg);
  if (m.cfg.utp) m.utp = std::make_unique<UtpEndpoint>(ctx.loop, *m.server, ctx.log);
  for (const auto& l : m.cfg.listen) {
    sockaddr_storage ss{};
    unsigned len = 0;
    std::string why;
    if (!tracker::parse_listen(l, ss, len, why)) return Error("listen " + l + ": " + why);
    if (auto s = m.server->listen(ss, len, "peer wire " + l); !s) return s;
    if (!m.utp) continue;
    // uTP on the same port number (BEP 29), also when the TCP port was chosen by the kernel.
    const uint16_t port = m.server->ports().back();
    if (ss.ss_family == AF_INET) {
      reinterpret_cast<sockaddr_in*>(&ss)->sin_port = htons(port);
    } else {
      reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port = htons(port);
    }
    if (auto s = m.utp->listen(ss, len, "uTP " + l); !s) return s;
  }
  if (auto* t = dynamic_cast<tracker::TrackerModule*>(ctx.module("tracker"))) {
    m.swarms = t->swarms();
  }
  m.set_local_seed();
  m.catalog->for_each([&m](const Published& p) { m.tell_tracker(p, true); });
  m.server->on_stopped([&m](const InfoHash& key) {
    if (const Published* p = m.catalog->find(key)) m.tell_tracker(*p, false);
  });
  m.server->check_published();
  ctx.log->info("seeding {} published torrents", m.catalog->size());
  m.announcer = start_announcer(ctx, m.cfg, *m.server, *m.catalog);
  m.counter_timer =
      std::make_unique<daemon::Timer>(ctx.loop, [&m] { m.catalog->flush_counters(); });
  m.counter_timer->start(std::chrono::seconds(5), true);

  Publisher::Hooks hooks;
  hooks.seeded = [&m](const Published& p, bool seeded) { m.tell_tracker(p, seeded); };
  hooks.describe = [&m](const Published& p) { return m.describe(p); };
  hooks.published = [&m](const Published& p, const Metainfo& meta) {
    if (m.announcer) m.announcer->add(p.key, meta.trackers);
  };
  hooks.unpublished = [&m](const InfoHash& key) {
    if (m.announcer) m.announcer->remove(key);
  };
  hooks.drop_peers = [&m](const InfoHash& key) {
    m.server->drop_torrent(key);
    if (const Published* p = m.catalog->find(key)) m.tell_tracker(*p, false);
  };
  auto* tracker_module = dynamic_cast<tracker::TrackerModule*>(ctx.module("tracker"));
  hooks.own_trackers = [tracker_module] {
    return tracker_module != nullptr ? tracker_module->announce_urls() : std::vector<std::string>{};
  };
  hooks.web_seed_base = [&m] { return m.web_seed_base; };
  m.publisher = std::make_unique<Publisher>(ctx, *m.catalog, std::move(hooks));
  return m.publisher->start();
}

std::vector<std::string> EverseedModule::reload() {
  Impl& m = *impl_;
  std::vector<std::string> restart;
  for (const auto& f : everseed_table()) {
    if (!f.reloadable && f.show(m.cfg) != f.show(m.pending)) restart.push_back("everseed." + f.key);
  }
  const EverseedSection before = m.cfg;
  m.cfg = m.pending;
  m.cfg.listen = before.listen;
  if (m.server) m.server->set_options(m.cfg);
  if (m.server) reload_announcer(m.announcer, *m.ctx, before, m.cfg, *m.server, *m.catalog);
  m.set_local_seed();
  return restart;
}

void EverseedModule::stop() {
  Impl& m = *impl_;
  if (m.publisher) m.publisher->stop();
  if (m.announcer) m.announcer->stop();
  if (m.utp) m.utp->stop();
  if (m.server) m.server->stop();
  m.counter_timer.reset();
  if (m.catalog) m.catalog->flush_counters();
}

nlohmann::json EverseedModule::status() const {
  const Impl& m = *impl_;
  json j = json::object();
  if (m.catalog) {
    j["torrents"] = m.catalog->size();
    j["opened_on_workers"] = m.catalog->opened_on_workers();
    j["metainfo_parsed_on_workers"] = m.catalog->parsed_on_workers();
  }
  if (m.server) {
    const SeedCounters& c = m.server->counters();
    j["ports"] = m.server->ports();
    j["connections"] = m.server->connections();
    j["bytes_sent"] = c.bytes;
    j["blocks_sent"] = c.blocks;
    j["disk_reads"] = c.disk_reads;
    j["peers_dropped"] = c.dropped;
    j["peers_refused"] = c.refused;
    j["peers_encrypted"] = c.encrypted;
    j["peers_rc4"] = c.encrypted_rc4;
    j["peers_unchoked"] = m.server->unchoked();
    j["peers_waiting_for_bandwidth"] = m.server->waiting_for_bandwidth();
    j["hash_requests_answered"] = c.hashes;
    if (m.utp) {
      const UtpCounters& u = m.utp->counters();
      j["utp"] = {{"connections", m.utp->connections()},
                  {"accepted", u.accepted},
                  {"refused", u.refused},
                  {"datagrams_in", u.datagrams_in},
                  {"datagrams_out", u.datagrams_out},
                  {"malformed", u.malformed},
                  {"resets_sent", u.resets_sent}};
    }
    j["hash_requests_rejected"] = c.hashes_rejected;
  }
  if (m.announcer) j["announce"] = m.announcer->status();
  return j;
}

void EverseedModule::set_web_seed_base(std::string url) {
  impl_->web_seed_base = std::move(url);
}

std::string EverseedModule::new_upload_dir() {
  Impl& m = *impl_;
  if (!m.publisher) return "";
  return m.publisher->content().upload_dir(++m.uploads);
}

std::string EverseedModule::content_dir() const {
  return impl_->publisher ? impl_->publisher->content().dir() : "";
}

Result<uint64_t> EverseedModule::publish_upload(std::string name, std::string dir,
                                                const nlohmann::json& options) {
  Impl& m = *impl_;
  if (!m.publisher) return Error("not started");
  auto opts = create_options_from_json(options);
  if (!opts) return opts.error();
  auto a = m.publisher->publish_upload(std::move(name), std::move(dir), std::move(*opts));
  if (a.error) return Error(a.error->body["error"]["message"].get<std::string>());
  return a.job;
}

std::optional<std::string> EverseedModule::torrent_file(const InfoHash& hash) const {
  const Impl& m = *impl_;
  if (!m.catalog) return std::nullopt;
  const Published* p = m.catalog->find(hash);
  if (p == nullptr) return std::nullopt;
  return m.catalog->torrent_bytes(p->key);
}

std::shared_ptr<const Metainfo> EverseedModule::metainfo(const InfoHash& hash) {
  Impl& m = *impl_;
  if (!m.catalog) return nullptr;
  const Published* p = m.catalog->find(hash);
  return p == nullptr ? nullptr : m.catalog->metainfo(p->key);
}

EverseedModule::Warm EverseedModule::warm_metainfo(const std::vector<InfoHash>& hashes, Metas& now,
                                                   std::function<void(Metas)> later) {
  Impl& m = *impl_;
  if (!m.catalog) return Warm::kNow;
  std::vector<InfoHash> keys;
  for (const InfoHash& h : hashes) {
    if (const Published* p = m.catalog->find(h)) keys.push_back(p->key);
  }
  switch (m.catalog->warm_metainfo(keys, now, std::move(later))) {
    case Catalog::Warm::kNow:
      return Warm::kNow;
    case Catalog::Warm::kLater:
      return Warm::kLater;
    case Catalog::Warm::kBusy:
      break;
  }
  return Warm::kBusy;
}

std::vector<InfoHash> EverseedModule::keys_named(const std::string& id) const {
  const Impl& m = *impl_;
  std::vector<InfoHash> out;
  if (!m.catalog || id.empty()) return out;
  for (const Published* p : m.catalog->select(id, 2))
    out.push_back(p->key);
  return out;
}

namespace {
// The file `path` names in an open torrent (path[0], its name, was checked).
Result<ServedFile> file_in(const std::shared_ptr<const Torrent>& t,
                           const std::vector<std::string>& path) {
  // Stamps are recorded for the non-padding, non-empty files, in file order.
  size_t stamp = 0;
  for (size_t i = 0; i < t->meta.files.size(); ++i) {
    const FileEntry& f = t->meta.files[i];
    if (f.is_pad()) continue;
    const bool stamped = f.length > 0;
    const bool match = t->meta.multi_file
                           ? path.size() == f.path.size() + 1 &&
                                 std::equal(f.path.begin(), f.path.end(), path.begin() + 1)
                           : path.size() == 1;
    if (match) {
      ServedFile out;
      out.size = f.length;
      out.fd = t->fds[i];
      if (stamped && stamp < t->stamps.size()) out.mtime_ns = t->stamps[stamp].mtime_ns;
      out.hold = t;
      if (t->on_demand && stamped) {
        // A torrent of many files keeps none open: this one is opened now (one open() on
        // the loop) and held with the torrent until the answer is sent.
        std::string why;
        auto fd = t->file(i, true, why);
        if (!fd) return Error(why);
        out.fd = fd->get();
        out.hold = std::make_shared<
            const std::pair<std::shared_ptr<const Torrent>, std::shared_ptr<const UniqueFd>>>(
            t, std::move(fd));
      }
      return out;
    }
    if (stamped) ++stamp;
  }
  return Error("no such file");
}
}  // namespace

std::optional<Result<ServedFile>> EverseedModule::served_file(
    const tracker::InfoHash& hash, const std::vector<std::string>& path,
    std::function<void(Result<ServedFile>)> later) {
  Impl& m = *impl_;
  if (!m.catalog) return Error("not started");
  const Published* p = m.catalog->find(hash);
  if (p == nullptr) return Error("no such torrent");
  if (path.empty() || path.front() != p->name) return Error("no such file");
  std::string why;
  auto t =
      m.catalog->open_or_wait(p->key, why,
                              [path, later = std::move(later)](
                                  std::shared_ptr<const Torrent> opened, const std::string& w) {
                                if (!opened) return later(Error(w.empty() ? "not served" : w));
                                later(file_in(opened, path));
                              });
  if (t) return file_in(t, path);
  if (!why.empty()) return Error(why);
  return std::nullopt;  // opened on a worker: `later` answers
}

daemon::ModuleInfo EverseedModule::info() {
  return {"everseed", "Permanent seed of every published torrent (BEP 3, 6, 9, 10, 52)",
          [] { return std::make_unique<EverseedModule>(); }, print_everseed_defaults,
          /*default_on=*/true};
}

}  // namespace evert::everseed
