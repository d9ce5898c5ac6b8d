#include "evert/everseed/everseed_module.h"

#include <sodium.h>
#include <unistd.h>

#include <atomic>
#include <ctime>
#include <map>
#include <nlohmann/json.hpp>

#include "catalog.h"
#include "everseed_config.h"
#include "evert/hash.h"
#include "evert/magnet.h"
#include "evert/piece_hasher.h"
#include "evert/tracker/swarm.h"
#include "evert/tracker/tracker_module.h"
#include "seed_server.h"

namespace evert::everseed {
namespace {

using daemon::ApiRequest;
using daemon::ApiResponse;
using nlohmann::json;

int64_t wall_seconds() {
  return static_cast<int64_t>(std::time(nullptr));
}

std::optional<std::string> from_base64(const std::string& text) {
  std::string out(text.size(), '\0');
  size_t len = 0;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), text.data(),
                        text.size(), "\n\r ", &len, nullptr, sodium_base64_VARIANT_ORIGINAL) != 0) {
    return std::nullopt;
  }
  out.resize(len);
  return out;
}

std::string to_base64(std::string_view bytes) {
  std::string out(sodium_base64_ENCODED_LEN(bytes.size(), sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(bytes.data()),
                    bytes.size(), sodium_base64_VARIANT_ORIGINAL);
  out.resize(out.size() - 1);  // the terminating NUL
  return out;
}

// Checks that the data at `path` is the torrent's: every file there with the right size, and
// every piece hash (v1) or file root (v2) matching. Blocking: worker threads only.
Status verify_data(const Metainfo& meta, const std::string& path, std::atomic<uint64_t>& done,
                   const std::atomic<bool>& cancel) {
  std::vector<InputFile> files;
  for (const FileEntry& f : meta.files) {
    if (f.is_pad()) continue;
    InputFile in;
    in.disk_path = meta.multi_file ? path + "/" + f.path_string() : path;
    in.path = f.path;
    in.size = f.length;
    if (::access(in.disk_path.c_str(), R_OK) != 0) {
      return Error(in.disk_path + ": evertd cannot read it (" + std::strerror(errno) + ")");
    }
    files.push_back(std::move(in));
  }
  HashRequest req;
  req.files = &files;
  req.piece_length = meta.piece_length;
  req.layout = meta.version() == TorrentVersion::kV1   ? Layout::kV1
               : meta.version() == TorrentVersion::kV2 ? Layout::kV2
                                                       : Layout::kHybrid;
  req.pad_files = meta.multi_file;
  req.threads = 1;
  req.progress = [&](uint64_t d, uint64_t) { done = d; };
  req.cancel = &cancel;
  auto hashed = hash_files(req);
  if (!hashed) return hashed.error();
  if (meta.has_v1() && hashed->pieces != meta.pieces) {
    return Error("the data does not match the torrent's piece hashes");
  }
  if (meta.has_v2()) {
    size_t i = 0;
    for (const FileEntry& f : meta.files) {
      if (f.is_pad()) continue;
      if (f.pieces_root && hashed->files.at(i).pieces_root != *f.pieces_root) {
        return Error(f.path_string() + ": the data does not match the torrent's file root");
      }
      ++i;
    }
  }
  return Ok{};
}

}  // namespace

struct Job {
  uint64_t id = 0;
  std::string state = "verifying";  // verifying, done, failed
  std::atomic<uint64_t> done{0};
  uint64_t total = 0;
  std::atomic<bool> cancel{false};
  std::string error;
  json result;
};

struct EverseedModule::Impl {
  daemon::ModuleContext* ctx = nullptr;
  EverseedSection cfg;
  EverseedSection pending;
  std::unique_ptr<Catalog> catalog;
  std::unique_ptr<SeedServer> server;
  tracker::SwarmTable* swarms = nullptr;  // this daemon's tracker, when it runs one
  std::map<uint64_t, std::shared_ptr<Job>> jobs;
  uint64_t next_job = 1;
  std::unique_ptr<daemon::Timer> counter_timer;

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
    json j = {{"name", p.name},         {"info_hash", to_hex(p.key.view())},
              {"size", p.size},         {"data", p.data_path},
              {"in_place", p.in_place}, {"published", p.published},
              {"uploaded", p.uploaded}, {"state", p.problem.empty() ? "seeding" : "stopped"}};
    if (p.alt) j["info_hash_v2_truncated"] = to_hex(p.alt->view());
    if (!p.problem.empty()) j["problem"] = p.problem;
    if (swarms != nullptr) {
      tracker::SwarmCounts c;
      swarms->scrape(p.key, c);
      j["seeders"] = c.complete;
      j["leechers"] = c.incomplete;
      j["completed"] = c.downloaded;
    }
    return j;
  }

  // POST /v1/publish {"torrent": base64 .torrent, "data": path}: publishes an existing torrent
  // whose data evertd can read at `path` (seeded in place), after checking every hash.
  ApiResponse route_publish(const ApiRequest& r) {
    if (!r.json.is_object() || !r.json.contains("torrent") || !r.json["torrent"].is_string() ||
        !r.json.contains("data") || !r.json["data"].is_string()) {
      return ApiResponse::error(400, "bad_request",
                                "expected {\"torrent\": base64 of a .torrent, \"data\": path}");
    }
    auto bytes = from_base64(r.json["torrent"].get<std::string>());
    if (!bytes) return ApiResponse::error(400, "bad_request", "torrent: not base64");
    auto meta = parse_metainfo(*bytes);
    if (!meta) return ApiResponse::error(400, "bad_torrent", meta.error().message);
    const std::string data = r.json["data"].get<std::string>();
    if (data.empty() || data[0] != '/') {
      return ApiResponse::error(400, "bad_request", "data: must be an absolute path");
    }
    ctx->log->info("publish of {} requested by uid {} pid {}", meta->name, r.peer.uid, r.peer.pid);
    // Finished jobs are kept for their publishers to read, the last 1,000 of them.
    for (auto it = jobs.begin(); jobs.size() >= 1000 && it != jobs.end();) {
      it = it->second->state == "verifying" ? std::next(it) : jobs.erase(it);
    }
    auto job = std::make_shared<Job>();
    job->id = next_job++;
    job->total = meta->total_size;
    jobs[job->id] = job;
    auto m = std::make_shared<Metainfo>(std::move(*meta));
    auto raw = std::make_shared<std::string>(std::move(*bytes));
    ctx->workers.submit([this, job, m, raw, data] {
      // Stamps from before and after the hashing: a file written meanwhile is not recorded as
      // verified (catalog.h).
      auto before = stamp_files(*m, data);
      Status s = verify_data(*m, data, job->done, job->cancel);
      std::vector<FileStamp> stamps;
      if (s) {
        auto after = stamp_files(*m, data);
        if (!before || !after || *before != *after) {
          s = Error("the data changed while it was verified");
        } else {
          stamps = std::move(*after);
        }
      }
      ctx->loop.post([this, job, m, raw, data, s = std::move(s), stamps = std::move(stamps)] {
        if (!s) {
          job->state = "failed";
          job->error = s.error().message;
          return;
        }
        bool added = false;
        auto p = catalog->add(*raw, *m, data, /*in_place=*/true, wall_seconds(), added, stamps);
        if (!p) {
          job->state = "failed";
          job->error = p.error().message;
          return;
        }
        tell_tracker(**p, true);
        job->state = "done";
        job->result = describe(**p);
        job->result["already_published"] = !added;
        job->result["magnet"] = to_uri(magnet_of(*m));
        ctx->log->info("{} {} ({})", added ? "published" : "already published", (*p)->name,
                       to_hex((*p)->key.view()));
      });
    });
    ApiResponse res;
    res.status = 202;
    res.body = {{"job", job->id}};
    return res;
  }

  ApiResponse route_job(const ApiRequest& r) {
    const uint64_t id = std::strtoull(daemon::query_param(r.query, "id").c_str(), nullptr, 10);
    auto it = jobs.find(id);
    if (it == jobs.end()) return ApiResponse::error(404, "not_found", "no such job");
    const Job& j = *it->second;
    ApiResponse res;
    res.body = {{"job", j.id}, {"state", j.state}, {"done", j.done.load()}, {"total", j.total}};
    if (!j.error.empty()) res.body["error"] = j.error;
    if (!j.result.is_null()) res.body["torrent"] = j.result;
    return res;
  }

  ApiResponse route_torrents(const ApiRequest&) const {
    json list = json::array();
    for (const Published* p : catalog->list())
      list.push_back(describe(*p));
    ApiResponse res;
    res.body = {{"torrents", list}, {"total", catalog->size()}};
    return res;
  }

  // GET /v1/torrent?info_hash=HEX[&format=torrent]: one torrent, or its .torrent in base64.
  ApiResponse route_torrent(const ApiRequest& r) const {
    auto raw = from_hex(daemon::query_param(r.query, "info_hash"), 20);
    if (!raw) return ApiResponse::error(400, "bad_request", "info_hash must be 40 hex digits");
    const Published* p = catalog->find(InfoHash::from(*raw));
    if (p == nullptr) return ApiResponse::error(404, "not_found", "not published here");
    ApiResponse res;
    res.body = describe(*p);
    if (daemon::query_param(r.query, "format") == "torrent") {
      auto bytes = catalog->torrent_bytes(p->key);
      if (bytes) res.body["torrent"] = to_base64(*bytes);
    }
    return res;
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
  impl_->pending = s;
  return Ok{};
}

Status EverseedModule::start(daemon::ModuleContext& ctx) {
  Impl& m = *impl_;
  m.ctx = &ctx;
  m.cfg = m.pending;
  m.catalog = std::make_unique<Catalog>(ctx.store);
  if (const size_t bad = m.catalog->load(); bad > 0) {
    ctx.log->warn("{} malformed rows in the torrents database ignored", bad);
  }
  m.server = std::make_unique<SeedServer>(ctx.loop, ctx.workers, *m.catalog, ctx.log);
  m.server->set_options(m.cfg);
  for (const auto& l : m.cfg.listen) {
    sockaddr_storage ss{};
    unsigned len = 0;
    std::string why;
    if (!tracker::parse_listen(l, ss, len, why)) return Error("listen " + l + ": " + why);
    if (auto s = m.server->listen(ss, len, "peer wire " + l); !s) return s;
  }
  if (auto* t = dynamic_cast<tracker::TrackerModule*>(ctx.module("tracker"))) {
    m.swarms = t->swarms();
  }
  m.set_local_seed();
  for (const Published* p : m.catalog->list())
    m.tell_tracker(*p, true);
  m.server->check_published();
  ctx.log->info("seeding {} published torrents", m.catalog->size());
  m.counter_timer =
      std::make_unique<daemon::Timer>(ctx.loop, [&m] { m.catalog->flush_counters(); });
  m.counter_timer->start(std::chrono::seconds(5), true);

  ctx.route("POST", "/v1/publish", [&m](const ApiRequest& r) { return m.route_publish(r); });
  ctx.route("GET", "/v1/job", [&m](const ApiRequest& r) { return m.route_job(r); });
  ctx.route("GET", "/v1/torrents", [&m](const ApiRequest& r) { return m.route_torrents(r); });
  ctx.route("GET", "/v1/torrent", [&m](const ApiRequest& r) { return m.route_torrent(r); });
  return Ok{};
}

std::vector<std::string> EverseedModule::reload() {
  Impl& m = *impl_;
  std::vector<std::string> restart;
  for (const auto& f : everseed_table()) {
    if (!f.reloadable && f.show(m.cfg) != f.show(m.pending)) restart.push_back("everseed." + f.key);
  }
  const auto listen = m.cfg.listen;
  m.cfg = m.pending;
  m.cfg.listen = listen;
  if (m.server) m.server->set_options(m.cfg);
  m.set_local_seed();
  return restart;
}

void EverseedModule::stop() {
  Impl& m = *impl_;
  for (auto& [id, j] : m.jobs)
    j->cancel = true;
  if (m.server) m.server->stop();
  m.counter_timer.reset();
  if (m.catalog) m.catalog->flush_counters();
}

nlohmann::json EverseedModule::status() const {
  const Impl& m = *impl_;
  json j = json::object();
  if (m.catalog) j["torrents"] = m.catalog->size();
  if (m.server) {
    const SeedCounters& c = m.server->counters();
    j["ports"] = m.server->ports();
    j["connections"] = m.server->connections();
    j["bytes_sent"] = c.bytes;
    j["blocks_sent"] = c.blocks;
    j["peers_dropped"] = c.dropped;
    j["peers_unchoked"] = m.server->unchoked();
    j["peers_waiting_for_bandwidth"] = m.server->waiting_for_bandwidth();
    j["hash_requests_answered"] = c.hashes;
    j["hash_requests_rejected"] = c.hashes_rejected;
  }
  return j;
}

daemon::ModuleInfo EverseedModule::info() {
  return {"everseed", "Permanent seed of every published torrent (BEP 3, 6, 9, 10, 52)",
          [] { return std::make_unique<EverseedModule>(); }, print_everseed_defaults,
          /*default_on=*/true};
}

}  // namespace evert::everseed
