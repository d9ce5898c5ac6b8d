#include "publisher.h"

#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>

#include "evert/base64.h"
#include "evert/bencode.h"
#include "evert/hash.h"
#include "evert/magnet.h"
#include "evert/piece_hasher.h"

namespace evert::everseed {
namespace {

using daemon::ApiRequest;
using daemon::ApiResponse;
using nlohmann::json;

constexpr size_t kKeptJobs = 1000;

int64_t wall_seconds() {
  return static_cast<int64_t>(std::time(nullptr));
}

// The name a path's torrent gets, as far as the path tells without reading the disk (a
// job's name until its listing is done: scan_path() resolves "." and "..").
std::string name_of_path(std::string path) {
  while (path.size() > 1 && path.back() == '/')
    path.pop_back();
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::string key_hex(const Metainfo& m) {
  return m.has_v1() ? to_hex(m.info_hash_v1->view()) : to_hex(m.info_hash_v2_truncated().view());
}

// The stamps of in-place files after they were hashed, or why they cannot be recorded: a file
// written while it was hashed (its stamp before differs from the one after) is not recorded as
// verified. Blocking: worker threads.
Result<std::vector<FileStamp>> stamps_after(const Metainfo& meta, const std::string& path,
                                            const Result<std::vector<FileStamp>>& before) {
  if (!before) return before.error();
  auto after = stamp_files(meta, path);
  if (!after) return after.error();
  if (*before != *after) return Error("the data changed while it was hashed; publish it again");
  return after;
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
  req.read_mode = ReadMode::kRead;  // no SIGBUS in the daemon when a file shrinks
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

// Whether a content-store torrent's files are all at `path`: as stamped when stamps are
// recorded, else each a regular file of its size. Blocking: worker threads only.
bool data_present(const Metainfo& meta, const std::string& path,
                  const std::vector<FileStamp>& stamps) {
  if (!stamps.empty()) return static_cast<bool>(check_stamps(stamps));
  for (const FileEntry& f : meta.files) {
    if (f.is_pad()) continue;
    const std::string file = meta.multi_file ? path + "/" + f.path_string() : path;
    struct stat st {};
    if (::lstat(file.c_str(), &st) != 0 || !S_ISREG(st.st_mode) ||
        static_cast<uint64_t>(st.st_size) != f.length) {
      return false;
    }
  }
  return true;
}

std::string string_of(const json& o, const char* key, std::string& why) {
  if (!o.contains(key)) return {};
  if (!o[key].is_string()) {
    why = std::string("options.") + key + ": expected a string";
    return {};
  }
  return o[key].get<std::string>();
}

// BEP 19: adds the web seed's URL of a torrent this daemon made to its url-list, first. The
// url-list is outside the info dictionary, so the info-hash (in the URL) does not change; the
// torrent is left as it was if re-encoding it would change it (never, for torrents made here).
void add_web_seed(CreatedTorrent& t, const std::string& base) {
  if (base.empty()) return;
  const std::string url = base + "/data/" + key_hex(t.metainfo) + "/";
  std::vector<std::string> urls = t.metainfo.web_seeds;
  if (std::find(urls.begin(), urls.end(), url) != urls.end()) return;
  urls.insert(urls.begin(), url);
  auto top = bencode::decode(t.bytes);
  if (!top || !top->is_dict()) return;
  bencode::List list;
  for (const auto& u : urls)
    list.emplace_back(u);
  top->as_dict()["url-list"] = std::move(list);
  std::string bytes = bencode::encode(*top);
  auto meta = parse_metainfo(bytes);
  if (!meta || key_hex(*meta) != key_hex(t.metainfo)) return;
  t.bytes = std::move(bytes);
  t.metainfo = std::move(*meta);
}

}  // namespace

Result<CreateOptions> create_options_from_json(const json& o) {
  CreateOptions c;
  if (o.is_null()) return c;
  if (!o.is_object()) return Error("options: expected an object");
  std::string why;
  const std::string version = string_of(o, "version", why);
  if (version == "v1") {
    c.version = TorrentVersion::kV1;
  } else if (version == "v2") {
    c.version = TorrentVersion::kV2;
  } else if (!version.empty() && version != "hybrid") {
    return Error("options.version: expected v1, v2 or hybrid");
  }
  if (o.contains("piece_length")) {
    if (!o["piece_length"].is_number_unsigned()) {
      return Error("options.piece_length: expected a number");
    }
    c.piece_length = o["piece_length"].get<uint64_t>();
    if (c.piece_length != 0) {
      if (std::string w = check_piece_length(c.piece_length); !w.empty()) {
        return Error("options.piece_length: " + w);
      }
    }
  }
  if (o.contains("trackers")) {
    const json& t = o["trackers"];
    if (!t.is_array()) return Error("options.trackers: expected a list of tiers");
    for (const auto& tier : t) {
      if (!tier.is_array()) return Error("options.trackers: expected a list of lists of URLs");
      std::vector<std::string> urls;
      for (const auto& u : tier) {
        if (!u.is_string() || u.get<std::string>().empty()) {
          return Error("options.trackers: expected URLs");
        }
        urls.push_back(u.get<std::string>());
      }
      if (!urls.empty()) c.trackers.push_back(std::move(urls));
    }
  }
  if (o.contains("web_seeds")) {
    if (!o["web_seeds"].is_array()) return Error("options.web_seeds: expected a list of URLs");
    for (const auto& u : o["web_seeds"]) {
      if (!u.is_string()) return Error("options.web_seeds: expected a list of URLs");
      c.web_seeds.push_back(u.get<std::string>());
    }
  }
  if (o.contains("private")) {
    if (!o["private"].is_boolean()) return Error("options.private: expected true or false");
    c.is_private = o["private"].get<bool>();
  }
  c.source = string_of(o, "source", why);
  c.comment = string_of(o, "comment", why);
  c.name = string_of(o, "name", why);
  if (!why.empty()) return Error(why);
  const bool no_date =
      o.contains("no_date") && o["no_date"].is_boolean() && o["no_date"].get<bool>();
  if (!no_date) c.creation_date = wall_seconds();
  c.created_by = "Evertorrent " EVERT_VERSION;
  return c;
}

// A publish or verify job. `phase` and the counters are written by a worker and read by the
// loop; everything else belongs to the loop.
struct Publisher::Job {
  uint64_t id = 0;
  std::string what;  // "publish", "verify"
  std::string name;
  std::atomic<int> phase{0};  // index into kPhases
  std::atomic<uint64_t> done{0};
  std::atomic<uint64_t> total{0};
  std::atomic<bool> cancel{false};
  std::string state;  // set on the loop when finished: done, failed, cancelled
  std::string error;
  json result;
  static constexpr const char* kPhases[] = {"copying", "hashing", "verifying", "committing",
                                            "listing"};
  static constexpr int kListing = 4;
};

Publisher::Publisher(daemon::ModuleContext& ctx, Catalog& catalog, Hooks hooks)
    : ctx_(ctx),
      catalog_(catalog),
      hooks_(std::move(hooks)),
      content_(ctx.state_dir + "/content") {}

Publisher::~Publisher() {
  stop();
  *alive_ = false;
}

void Publisher::stop() {
  for (auto& [id, j] : jobs_)
    j->cancel = true;
}

Status Publisher::start() {
  auto notes = content_.prepare([this](const std::string& hex) {
    auto raw = from_hex(hex, 20);
    return raw && catalog_.find(InfoHash::from(*raw)) != nullptr;
  });
  if (!notes) return notes.error();
  for (const auto& n : *notes)
    ctx_.log->info("content store: {}", n);
  ctx_.route("POST", "/v1/publish", [this](const ApiRequest& r) { return route_publish(r); });
  ctx_.route("GET", "/v1/job", [this](const ApiRequest& r) { return route_job(r); });
  ctx_.route("DELETE", "/v1/job", [this](const ApiRequest& r) { return route_cancel(r); });
  ctx_.route("GET", "/v1/torrents", [this](const ApiRequest& r) { return route_torrents(r); });
  ctx_.route("GET", "/v1/torrent", [this](const ApiRequest& r) { return route_torrent(r); });
  ctx_.route("DELETE", "/v1/torrent", [this](const ApiRequest& r) { return route_unpublish(r); });
  ctx_.route("POST", "/v1/verify", [this](const ApiRequest& r) { return route_verify(r); });
  ctx_.fd_route("publish", [this](daemon::FdRequest& r) { return route_fds_publish(r); });
  return Ok{};
}

std::shared_ptr<Publisher::Job> Publisher::new_job(const std::string& what, uint64_t total) {
  // Finished jobs are kept for their clients to read, the last kKeptJobs of them.
  for (auto it = jobs_.begin(); jobs_.size() >= kKeptJobs && it != jobs_.end();) {
    it = it->second->state.empty() ? std::next(it) : jobs_.erase(it);
  }
  auto job = std::make_shared<Job>();
  job->id = next_job_++;
  job->what = what;
  job->total = total;
  jobs_[job->id] = job;
  return job;
}

void Publisher::discard(const std::string& dir) const {
  if (auto s = ContentStore::remove_tree(dir); !s) ctx_.log->warn("{}", s.error().message);
}

void Publisher::fail(const std::shared_ptr<Job>& job, const Error& e) {
  job->state = job->cancel && e.message == "cancelled" ? "cancelled" : "failed";
  job->error = e.message;
  ctx_.log->log(job->state == "cancelled" ? spdlog::level::info : spdlog::level::warn,
                "{} of {} {}: {}", job->what, job->name, job->state, e.message);
}

void Publisher::finish(const std::shared_ptr<Job>& job, const Result<const Published*>& outcome,
                       bool added) {
  if (!outcome) {
    fail(job, outcome.error());
    return;
  }
  const Published& p = **outcome;
  job->state = "done";
  job->result = hooks_.describe(p);
  job->result["already_published"] = !added;
  if (auto meta = catalog_.metainfo(p.key)) job->result["magnet"] = to_uri(magnet_of(*meta));
  ctx_.log->info("{} {} ({})", added ? "published" : "already published", p.name,
                 to_hex(p.key.view()));
}

CreateOptions Publisher::with_own_trackers(CreateOptions o) const {
  auto own = hooks_.own_trackers ? hooks_.own_trackers() : std::vector<std::string>{};
  if (!own.empty()) o.trackers.insert(o.trackers.begin(), own);
  return o;
}

Publisher::Accepted Publisher::publish_files(std::string name, std::vector<IncomingFile> files,
                                             CreateOptions options, std::string torrent_bytes) {
  std::shared_ptr<Metainfo> given;
  if (!torrent_bytes.empty()) {
    auto m = parse_metainfo(torrent_bytes);
    if (!m) return {0, ApiResponse::error(400, "bad_torrent", m.error().message)};
    given = std::make_shared<Metainfo>(std::move(*m));
    name = given->name;
  } else if (!options.name.empty()) {
    name = options.name;
  }
  if (std::string why = check_path_component(name); !why.empty()) {
    return {0, ApiResponse::error(400, "bad_name", "invalid name '" + name + "': " + why)};
  }
  uint64_t total = 0;
  for (const auto& f : files)
    total += f.size;
  auto shared_files = std::make_shared<std::vector<IncomingFile>>(std::move(files));
  return publish_into(name, total, std::move(options), std::move(given), std::move(torrent_bytes),
                      "", [shared_files, name](const std::string& incoming, Job& job) {
                        return ContentStore::copy_in(name, *shared_files, incoming, job.done,
                                                     job.cancel);
                      });
}

Publisher::Accepted Publisher::publish_upload(std::string name, std::string dir,
                                              CreateOptions options) {
  options.name.clear();  // the name is the upload's, as written
  if (std::string why = check_path_component(name); !why.empty()) {
    return {0, ApiResponse::error(400, "bad_name", "invalid name '" + name + "': " + why)};
  }
  return publish_into(name, 0, std::move(options), nullptr, "", std::move(dir),
                      [name](const std::string& incoming, Job& job) -> Result<ScanResult> {
                        auto scan = scan_path(incoming + "/" + name);
                        if (!scan) return scan;
                        job.total = scan->total_size();
                        // The web module wrote the files and closed them, unsynced: durable
                        // before the publish can be committed (seal() syncs the folders).
                        if (auto s = ContentStore::sync_files(incoming); !s) return s.error();
                        return scan;
                      });
}

Publisher::Accepted Publisher::publish_into(
    std::string name, uint64_t total, CreateOptions options, std::shared_ptr<Metainfo> given,
    std::string torrent_bytes, std::string dir,
    std::function<Result<ScanResult>(const std::string&, Job&)> fill) {
  auto job = new_job("publish", total);
  job->name = name;
  auto opts = std::make_shared<CreateOptions>(with_own_trackers(std::move(options)));
  const std::string incoming = dir.empty() ? content_.incoming_dir(job->id) : dir;
  std::string web = hooks_.web_seed_base ? hooks_.web_seed_base() : "";
  std::weak_ptr<bool> alive = alive_;
  ctx_.bulk_pool().submit(
      [this, alive, job, fill = std::move(fill), opts, given, torrent_bytes, name, incoming, web] {
        auto post_fail = [this, alive, job](Error e) {
          ctx_.loop.post([this, alive, job, e = std::move(e)] {
            if (alive.lock() && *alive.lock()) fail(job, e);
          });
        };
        auto scan = fill(incoming, *job);
        if (!scan) {
          discard(incoming);
          return post_fail(scan.error());
        }
        auto created = std::make_shared<CreatedTorrent>();
        job->done = 0;
        if (given) {
          job->phase = 2;
          Status s = verify_data(*given, incoming + "/" + name, job->done, job->cancel);
          if (!s) {
            discard(incoming);
            return post_fail(s.error());
          }
          created->bytes = torrent_bytes;
          created->metainfo = *given;
        } else {
          job->phase = 1;
          opts->progress = [job](uint64_t d, uint64_t) { job->done = d; };
          opts->cancel = &job->cancel;
          opts->threads = 2;
          opts->name = name;
          auto c = create_torrent(*scan, *opts);
          if (!c) {
            discard(incoming);
            return post_fail(c.error());
          }
          *created = std::move(*c);
          add_web_seed(*created, web);
        }
        auto in = std::make_shared<Install>();
        in->job = job;
        in->created = created;
        in->incoming = incoming;
        in->hex = key_hex(created->metainfo);
        in->name = name;
        ctx_.loop.post([this, alive, in] {
          if (alive.lock() && *alive.lock()) install(in);
        });
      });
  return {job->id, std::nullopt};
}

void Publisher::install(const std::shared_ptr<Install>& in) {
  const std::shared_ptr<Job>& job = in->job;
  if (job->cancel) {
    ctx_.bulk_pool().submit([this, in] { discard(in->incoming); });
    return fail(job, Error("cancelled"));
  }
  if (auto it = installing_.find(in->hex); it != installing_.end()) {
    it->second.push_back(in);  // a publish of the same torrent is under way: after it
    return;
  }
  installing_[in->hex];
  const InfoHash key = InfoHash::from(*from_hex(in->hex, 20));
  const Published* existing = catalog_.find(key);
  if (existing != nullptr && (existing->in_place || !existing->problem.empty())) {
    // Served from the publisher's path: it stays so. A content-store torrent that is stopped
    // (its files changed or gone) is repaired below.
    if (existing->in_place) {
      ctx_.bulk_pool().submit([this, in] { discard(in->incoming); });
      finish(job, existing, false);
      return installed(in->hex);
    }
    existing = nullptr;
  }
  job->phase = 3;
  std::vector<FileStamp> stamps =
      existing != nullptr ? catalog_.stamps(key) : std::vector<FileStamp>{};
  const std::string current =
      existing != nullptr && existing->ready ? existing->data_path : std::string();
  std::weak_ptr<bool> alive = alive_;
  ctx_.bulk_pool().submit([this, alive, in, key, current, stamps = std::move(stamps)] {
    // Published already: the data there is kept when it is all there (as stamped, or each
    // file with its size); else this copy replaces it.
    if (!current.empty() && data_present(in->created->metainfo, current, stamps)) {
      discard(in->incoming);
      ctx_.loop.post([this, alive, in, key] {
        if (!alive.lock() || !*alive.lock()) return;
        const Published* now = catalog_.find(key);
        if (now == nullptr) {
          fail(in->job, Error("unpublished while it was being published"));
        } else {
          finish(in->job, now, false);
        }
        installed(in->hex);
      });
      return;
    }
    const std::string staged = content_.staged_dir(in->hex);
    // A staged folder left by an install that failed after sealing; nobody else writes it.
    Status s = ContentStore::remove_tree(staged);
    if (s) s = ContentStore::seal(in->incoming, staged);
    ctx_.loop.post([this, alive, in, staged, s] {
      if (!alive.lock() || !*alive.lock()) return;
      if (!s) {
        ctx_.bulk_pool().submit([this, in, staged] {
          discard(in->incoming);
          discard(staged);
        });
        fail(in->job, s.error());
        return installed(in->hex);
      }
      commit(in->job, in->created, content_.final_dir(in->hex) + "/" + in->name,
             /*in_place=*/false, staged);
    });
  });
}

void Publisher::installed(const std::string& hex) {
  auto it = installing_.find(hex);
  if (it == installing_.end()) return;
  std::vector<std::shared_ptr<Install>> waiting = std::move(it->second);
  installing_.erase(it);
  if (waiting.empty()) return;
  // The first waiting one installs (or finds the torrent there); the others wait for it again.
  auto next = waiting.front();
  install(next);
  for (size_t i = 1; i < waiting.size(); ++i)
    install(waiting[i]);
}

Publisher::Accepted Publisher::publish_path(const std::string& path, CreateOptions options) {
  if (path.empty() || path[0] != '/') {
    return {0, ApiResponse::error(400, "bad_request", "path: must be an absolute path")};
  }
  // The daemon reads the path with its own rights (in place). A path it cannot stat, or
  // that is no file or folder, is refused at once; a folder is listed on a worker (100,000
  // files take seconds on a cold disk), and what that listing finds wrong fails the job.
  struct stat top {};
  if (::stat(path.c_str(), &top) != 0) {
    return {0, ApiResponse::error(400, "unreadable",
                                  "evertd cannot publish it in place: " + path +
                                      ": cannot read: " + std::strerror(errno))};
  }
  if (!S_ISREG(top.st_mode) && !S_ISDIR(top.st_mode)) {
    return {0, ApiResponse::error(400, "unreadable",
                                  "evertd cannot publish it in place: " + path +
                                      ": not a regular file or folder")};
  }
  auto job = new_job("publish", S_ISREG(top.st_mode) ? static_cast<uint64_t>(top.st_size) : 0);
  job->name = options.name.empty() ? name_of_path(path) : options.name;
  job->phase = Job::kListing;
  auto opts = std::make_shared<CreateOptions>(with_own_trackers(std::move(options)));
  std::string web = hooks_.web_seed_base ? hooks_.web_seed_base() : "";
  std::weak_ptr<bool> alive = alive_;
  ctx_.bulk_pool().submit([this, alive, job, opts, path, web] {
    auto listed = scan_path(path);
    if (!listed) {
      Error e("evertd cannot publish it in place: " + listed.error().message);
      ctx_.loop.post([this, alive, job, e] {
        if (alive.lock() && *alive.lock()) fail(job, e);
      });
      return;
    }
    job->total = listed->total_size();
    job->phase = 1;  // hashing
    auto shared_scan = std::make_shared<ScanResult>(std::move(*listed));
    opts->progress = [job](uint64_t d, uint64_t) { job->done = d; };
    opts->cancel = &job->cancel;
    opts->threads = 2;
    // The files as listed, stamped before they are hashed (in the torrent's order).
    Result<std::vector<FileStamp>> before = std::vector<FileStamp>{};
    for (const InputFile& f : shared_scan->files) {
      if (f.size == 0) continue;
      auto st = stamp_file(f.disk_path);
      if (!st) {
        before = st.error();
        break;
      }
      before->push_back(std::move(*st));
    }
    auto c = create_torrent(*shared_scan, *opts);
    auto created = c ? std::make_shared<CreatedTorrent>(std::move(*c)) : nullptr;
    if (created) add_web_seed(*created, web);
    Error e = c ? Error("") : c.error();
    Result<std::vector<FileStamp>> stamps = e;
    if (created) stamps = stamps_after(created->metainfo, path, before);
    ctx_.loop.post([this, alive, job, created, path, stamps] {
      if (!alive.lock() || !*alive.lock()) return;
      if (!stamps) return fail(job, stamps.error());
      job->name = created->metainfo.name;
      commit_in_place(job, created, path, *stamps);
    });
  });
  return {job->id, std::nullopt};
}

Publisher::Accepted Publisher::publish_existing(std::string torrent_bytes,
                                                const std::string& data) {
  auto meta = parse_metainfo(torrent_bytes);
  if (!meta) return {0, ApiResponse::error(400, "bad_torrent", meta.error().message)};
  if (data.empty() || data[0] != '/') {
    return {0, ApiResponse::error(400, "bad_request", "data: must be an absolute path")};
  }
  auto job = new_job("publish", meta->total_size);
  job->name = meta->name;
  job->phase = 2;
  auto created = std::make_shared<CreatedTorrent>();
  created->bytes = std::move(torrent_bytes);
  created->metainfo = std::move(*meta);
  std::weak_ptr<bool> alive = alive_;
  ctx_.bulk_pool().submit([this, alive, job, created, data] {
    auto before = stamp_files(created->metainfo, data);
    Status s = verify_data(created->metainfo, data, job->done, job->cancel);
    Result<std::vector<FileStamp>> stamps = s ? stamps_after(created->metainfo, data, before)
                                              : Result<std::vector<FileStamp>>(s.error());
    ctx_.loop.post([this, alive, job, created, data, stamps] {
      if (!alive.lock() || !*alive.lock()) return;
      if (!stamps) return fail(job, stamps.error());
      commit_in_place(job, created, data, *stamps);
    });
  });
  return {job->id, std::nullopt};
}

void Publisher::commit_in_place(const std::shared_ptr<Job>& job,
                                std::shared_ptr<CreatedTorrent> created, const std::string& path,
                                std::vector<FileStamp> stamps) {
  if (const Published* p =
          catalog_.find(InfoHash::from(*from_hex(key_hex(created->metainfo), 20)))) {
    // Published again from where it is served, or to serve a stopped torrent again: it takes
    // the data just verified (Catalog::add); otherwise nothing changes.
    if (!p->in_place || (p->problem.empty() && p->data_path != path)) {
      return finish(job, p, false);
    }
  }
  commit(job, std::move(created), path, /*in_place=*/true, "", std::move(stamps));
}

void Publisher::commit(const std::shared_ptr<Job>& job, std::shared_ptr<CreatedTorrent> created,
                       std::string data_path, bool in_place, std::string staged,
                       std::vector<FileStamp> stamps) {
  // A content-store install ends here, whichever way (install()).
  const std::string hex = staged.empty() ? std::string() : key_hex(created->metainfo);
  auto end = [this, hex] {
    if (!hex.empty()) installed(hex);
  };
  if (job->cancel) {
    if (!staged.empty()) ctx_.bulk_pool().submit([this, staged] { discard(staged); });
    fail(job, Error("cancelled"));
    return end();
  }
  bool added = false;
  auto p = catalog_.add(created->bytes, created->metainfo, data_path, in_place, wall_seconds(),
                        added, std::move(stamps), /*ready=*/staged.empty());
  if (p && !added && !staged.empty() && (*p)->in_place) {
    // Published in place meanwhile: served from there.
    ctx_.bulk_pool().submit([this, staged] { discard(staged); });
    finish(job, *p, false);
    return end();
  }
  if (!p) {
    if (!staged.empty()) ctx_.bulk_pool().submit([this, staged] { discard(staged); });
    fail(job, p.error());
    return end();
  }
  const InfoHash key = (*p)->key;
  job->phase = 3;
  std::weak_ptr<bool> alive = alive_;
  // Acknowledged only once durable: the store's commit is the commit point (content_store.h).
  ctx_.store.commit([this, alive, job, key, staged, added, created, end](const Status& s) {
    ctx_.loop.post([this, alive, job, key, staged, added, created, end, s] {
      if (!alive.lock() || !*alive.lock()) return;
      if (!s) {
        // The store keeps the batch and retries it; the torrent stays, its data staged until
        // the next start finishes the move. Report the failure honestly.
        fail(job, Error("the store could not commit: " + s.error().message));
        return end();
      }
      auto done = [this, job, key, added, created, staged, end] {
        const Published* now = catalog_.find(key);
        if (now == nullptr) {
          fail(job, Error("unpublished while it was being published"));
          return end();
        }
        if (staged.empty()) {
          catalog_.set_ready(key);
        } else {
          catalog_.data_replaced(key);  // new, or a fresh copy of what was damaged or gone
        }
        hooks_.seeded(*now, true);
        if (hooks_.published) hooks_.published(*now, created->metainfo);
        finish(job, now, added);
        if (!added && !staged.empty()) {
          // Published already, its folder damaged or gone: this copy took its place.
          job->result["repaired"] = true;
          ctx_.log->info("{}: its data in the content store was replaced by a fresh copy",
                         now->name);
        }
        end();
      };
      if (staged.empty()) return done();
      const std::string final_dir = content_.final_dir(to_hex(key.view()));
      const std::string aside = content_.aside_dir(to_hex(key.view()), job->id);
      ctx_.bulk_pool().submit([this, alive, staged, final_dir, aside, done, job, end] {
        Status moved = ContentStore::move_into_place(staged, final_dir, aside);
        ctx_.loop.post([alive, moved, done, this, job, end] {
          if (!alive.lock() || !*alive.lock()) return;
          if (!moved) {
            fail(job, moved.error());
            return end();
          }
          done();
        });
      });
    });
  });
}

std::optional<ApiResponse> Publisher::select_one(const std::string& text,
                                                 const Published*& out) const {
  if (text.empty()) {
    return ApiResponse::error(400, "bad_request", "id: a name or an info-hash (or a prefix)");
  }
  auto found = catalog_.select(text, 21);
  if (found.empty()) {
    return ApiResponse::error(404, "not_found", "no published torrent matches '" + text + "'");
  }
  if (found.size() > 1) {
    std::string list;
    json matches = json::array();
    for (const Published* p : found) {
      list += "\n  " + to_hex(p->key.view()) + "  " + p->name;
      matches.push_back({{"info_hash", to_hex(p->key.view())}, {"name", p->name}});
    }
    auto r = ApiResponse::error(409, "ambiguous",
                                "'" + text + "' matches " + std::to_string(found.size()) +
                                    (found.size() > 20 ? " or more" : "") +
                                    " torrents; give more of the info-hash:" + list);
    r.body["error"]["matches"] = matches;
    return r;
  }
  out = found[0];
  return std::nullopt;
}

ApiResponse Publisher::route_publish(const ApiRequest& r) {
  if (!r.json.is_object()) {
    return ApiResponse::error(400, "bad_request",
                              "expected {\"path\": ..., \"options\": {...}} (in place) or "
                              "{\"torrent\": base64, \"data\": path}");
  }
  Accepted a;
  if (r.json.contains("torrent")) {
    if (!r.json["torrent"].is_string() || !r.json.contains("data") || !r.json["data"].is_string()) {
      return ApiResponse::error(400, "bad_request",
                                "expected {\"torrent\": base64 of a .torrent, \"data\": path}");
    }
    auto bytes = from_base64(r.json["torrent"].get<std::string>());
    if (!bytes) return ApiResponse::error(400, "bad_request", "torrent: not base64");
    a = publish_existing(std::move(*bytes), r.json["data"].get<std::string>());
  } else if (r.json.contains("path") && r.json["path"].is_string()) {
    auto o = create_options_from_json(r.json.value("options", json()));
    if (!o) return ApiResponse::error(400, "bad_options", o.error().message);
    a = publish_path(r.json["path"].get<std::string>(), std::move(*o));
  } else {
    return ApiResponse::error(400, "bad_request",
                              "expected \"path\" (in place) or \"torrent\" and \"data\"; files "
                              "to copy into the content store come over the descriptor socket");
  }
  if (a.error) return *a.error;
  ctx_.log->info("publish job {} ({}) by uid {} pid {}", a.job, jobs_.at(a.job)->name, r.peer.uid,
                 r.peer.pid);
  ApiResponse res;
  res.status = 202;
  res.body = {{"job", a.job}};
  return res;
}

ApiResponse Publisher::route_fds_publish(daemon::FdRequest& r) {
  std::vector<IncomingFile> files;
  for (size_t i = 0; i < r.entries.size(); ++i) {
    const json& e = r.entries[i];
    IncomingFile f;
    if (!e.is_object() || !e.contains("size") || !e["size"].is_number_unsigned()) {
      return ApiResponse::error(400, "bad_request", "each file needs a \"size\"");
    }
    f.size = e["size"].get<uint64_t>();
    if (e.contains("path")) {
      if (!e["path"].is_array()) return ApiResponse::error(400, "bad_request", "path: a list");
      for (const auto& c : e["path"]) {
        if (!c.is_string()) return ApiResponse::error(400, "bad_request", "path: strings");
        f.path.push_back(c.get<std::string>());
      }
    }
    f.executable = e.value("executable", false);
    f.fd = std::move(r.fds[i]);
    files.push_back(std::move(f));
  }
  const json& h = r.header;
  std::string torrent;
  if (h.contains("torrent")) {
    auto bytes =
        h["torrent"].is_string() ? from_base64(h["torrent"].get<std::string>()) : std::nullopt;
    if (!bytes) return ApiResponse::error(400, "bad_request", "torrent: not base64");
    torrent = std::move(*bytes);
  }
  auto o = create_options_from_json(h.value("options", json()));
  if (!o) return ApiResponse::error(400, "bad_options", o.error().message);
  const std::string name = h.value("name", std::string());
  Accepted a = publish_files(name, std::move(files), std::move(*o), std::move(torrent));
  if (a.error) return *a.error;
  ctx_.log->info("publish job {} ({}, {} files handed over) by uid {} pid {}", a.job,
                 jobs_.at(a.job)->name, r.entries.size(), r.peer.uid, r.peer.pid);
  ApiResponse res;
  res.status = 202;
  res.body = {{"job", a.job}};
  return res;
}

ApiResponse Publisher::route_job(const ApiRequest& r) const {
  const uint64_t id = std::strtoull(daemon::query_param(r.query, "id").c_str(), nullptr, 10);
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return ApiResponse::error(404, "not_found", "no such job");
  const Job& j = *it->second;
  ApiResponse res;
  res.body = {
      {"job", j.id},           {"what", j.what},
      {"name", j.name},        {"state", j.state.empty() ? Job::kPhases[j.phase.load()] : j.state},
      {"done", j.done.load()}, {"total", j.total.load()}};
  if (!j.error.empty()) res.body["error"] = j.error;
  if (!j.result.is_null()) res.body["torrent"] = j.result;
  return res;
}

ApiResponse Publisher::route_cancel(const ApiRequest& r) {
  const uint64_t id = std::strtoull(daemon::query_param(r.query, "id").c_str(), nullptr, 10);
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return ApiResponse::error(404, "not_found", "no such job");
  Job& j = *it->second;
  if (j.state.empty() && j.phase.load() != 3) j.cancel = true;
  ApiResponse res;
  res.body = {{"job", j.id}, {"cancelling", j.cancel.load()}};
  return res;
}

ApiResponse Publisher::route_torrents(const ApiRequest& r) const {
  std::string q = daemon::query_param(r.query, "q");
  if (auto decoded = percent_decode(q)) q = *decoded;
  const size_t offset = std::strtoull(daemon::query_param(r.query, "offset").c_str(), nullptr, 10);
  size_t limit = std::strtoull(daemon::query_param(r.query, "limit").c_str(), nullptr, 10);
  if (limit == 0 || limit > 100'000) limit = 100'000;
  json list = json::array();
  size_t matched = 0;
  const auto& all = catalog_.list();
  if (q.empty()) {
    // A page of everything: no scan (the web index pages through 100,000 torrents).
    matched = all.size();
    for (size_t i = offset; i < all.size() && list.size() < limit; ++i)
      list.push_back(hooks_.describe(*all[i]));
  } else {
    // Names containing q, ignoring ASCII case.
    std::string needle = q;
    for (char& c : needle)
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    auto same = [](char a, char b) {
      return std::tolower(static_cast<unsigned char>(a)) == static_cast<unsigned char>(b);
    };
    for (const Published* p : all) {
      if (p->name.size() < needle.size() ||
          std::search(p->name.begin(), p->name.end(), needle.begin(), needle.end(), same) ==
              p->name.end()) {
        continue;
      }
      if (matched++ < offset || list.size() >= limit) continue;
      list.push_back(hooks_.describe(*p));
    }
  }
  ApiResponse res;
  res.body = {{"torrents", list}, {"total", matched}, {"offset", offset}};
  return res;
}

// GET /v1/torrent?id=NAME|HASH|PREFIX (or info_hash=HEX)[&format=torrent]
ApiResponse Publisher::route_torrent(const ApiRequest& r) const {
  std::string id = daemon::query_param(r.query, "id");
  if (id.empty()) id = daemon::query_param(r.query, "info_hash");
  if (auto decoded = percent_decode(id)) id = *decoded;
  const Published* p = nullptr;
  if (auto err = select_one(id, p)) return *err;
  ApiResponse res;
  res.body = hooks_.describe(*p);
  // Parsed once and kept (Catalog::metainfo); the web module warms it on a worker first.
  if (auto meta = catalog_.metainfo(p->key)) {
    res.body["magnet"] = to_uri(magnet_of(*meta));
    res.body["version"] = to_string(meta->version());
    res.body["piece_length"] = meta->piece_length;
    res.body["files"] = meta->real_file_count();
    if (meta->info_hash_v2) res.body["info_hash_v2"] = to_hex(meta->info_hash_v2->view());
    json trackers = json::array();
    for (const auto& tier : meta->trackers)
      trackers.push_back(tier);
    res.body["announce_list"] = trackers;
    res.body["web_seeds"] = meta->web_seeds;
    res.body["comment"] = meta->comment;
    res.body["private"] = meta->is_private;
    if (daemon::query_param(r.query, "files") == "1") {
      // Every file but padding, with its path below the torrent's folder (a single file: its
      // name) and its size, in torrent order (bounded by the metainfo's own limits), or the
      // first `file_limit` (the web module's pages and public API: 100,000 files are a
      // large answer to build on the loop).
      const std::string limit_text = daemon::query_param(r.query, "file_limit");
      const uint64_t limit =
          limit_text.empty() ? UINT64_MAX : std::strtoull(limit_text.c_str(), nullptr, 10);
      json files = json::array();
      for (const FileEntry& f : meta->files) {
        if (files.size() >= limit) break;
        if (f.is_pad()) continue;
        const std::string path = f.path_string();
        files.push_back({{"path", path.empty() ? meta->name : path}, {"size", f.length}});
      }
      res.body["file_list"] = files;
    }
  }
  if (daemon::query_param(r.query, "format") == "torrent") {
    if (auto bytes = catalog_.torrent_bytes(p->key)) res.body["torrent"] = to_base64(*bytes);
  }
  return res;
}

// DELETE /v1/torrent?id=...[&delete_data=1]
ApiResponse Publisher::route_unpublish(const ApiRequest& r) {
  std::string id = daemon::query_param(r.query, "id");
  if (auto decoded = percent_decode(id)) id = *decoded;
  const Published* p = nullptr;
  if (auto err = select_one(id, p)) return *err;
  const bool delete_data = daemon::query_param(r.query, "delete_data") == "1";
  if (delete_data && p->in_place) {
    return ApiResponse::error(400, "in_place",
                              p->name + " is seeded in place from " + p->data_path +
                                  ": evertd does not delete a publisher's files; unpublish "
                                  "without --delete-data and remove them yourself");
  }
  const Published copy = *p;
  hooks_.seeded(copy, false);
  hooks_.drop_peers(copy.key);
  if (hooks_.unpublished) hooks_.unpublished(copy.key);
  catalog_.remove(copy.key);
  ApiResponse res;
  res.body = {{"unpublished", to_hex(copy.key.view())}, {"name", copy.name}};
  if (!copy.in_place) {
    const std::string dir = content_.final_dir(to_hex(copy.key.view()));
    if (delete_data) {
      // Out of the way at once (the same torrent published again gets a fresh folder), removed
      // in the background.
      auto retired = content_.retire(to_hex(copy.key.view()));
      if (!retired) {
        ctx_.log->warn("{}", retired.error().message);
        res.body["data_kept"] = dir;
        res.body["warning"] = retired.error().message;
      } else {
        if (!retired->empty()) {
          ctx_.bulk_pool().submit([gone = *retired, log = ctx_.log] {
            if (auto s = ContentStore::remove_tree(gone); !s) log->warn("{}", s.error().message);
          });
        }
        res.body["data_deleted"] = true;
      }
    } else {
      res.body["data_kept"] = dir;
    }
  }
  ctx_.log->info("unpublished {} ({}) by uid {}{}", copy.name, to_hex(copy.key.view()), r.peer.uid,
                 delete_data ? ", data deleted" : "");
  return res;
}

// POST /v1/verify?id=...: rehashes the data; a mismatch stops serving the torrent.
ApiResponse Publisher::route_verify(const ApiRequest& r) {
  std::string id = daemon::query_param(r.query, "id");
  if (auto decoded = percent_decode(id)) id = *decoded;
  const Published* p = nullptr;
  if (auto err = select_one(id, p)) return *err;
  auto bytes = catalog_.torrent_bytes(p->key);
  auto meta = bytes ? parse_metainfo(*bytes) : Result<Metainfo>(Error("metainfo missing"));
  if (!meta) return ApiResponse::error(500, "internal", meta.error().message);
  auto job = new_job("verify", meta->total_size);
  job->name = p->name;
  job->phase = 2;
  auto m = std::make_shared<Metainfo>(std::move(*meta));
  const InfoHash key = p->key;
  const std::string data = p->data_path;
  std::weak_ptr<bool> alive = alive_;
  ctx_.bulk_pool().submit([this, alive, job, m, key, data] {
    auto before = stamp_files(*m, data);
    Status s = verify_data(*m, data, job->done, job->cancel);
    std::vector<FileStamp> stamps;
    if (s) {
      auto after = stamps_after(*m, data, before);
      if (after) {
        stamps = std::move(*after);
      } else {
        s = after.error();
      }
    }
    ctx_.loop.post([this, alive, job, key, data, s, stamps] {
      if (!alive.lock() || !*alive.lock()) return;
      const Published* now = catalog_.find(key);
      if (now == nullptr) return fail(job, Error("unpublished while it was verified"));
      if (now->data_path != data) {
        return fail(job, Error("published again from " + now->data_path +
                               " while it was verified; verify again"));
      }
      if (!s && job->cancel) return fail(job, s.error());
      if (s) {
        catalog_.verified(key, stamps);
        hooks_.seeded(*now, true);
      } else {
        catalog_.set_problem(key, "verify: " + s.error().message);
        hooks_.drop_peers(key);
      }
      job->state = "done";
      job->result = hooks_.describe(*now);
      job->result["verified"] = static_cast<bool>(s);
      if (!s) job->result["mismatch"] = s.error().message;
      ctx_.log->info("verified {}: {}", now->name, s ? "ok" : s.error().message);
    });
  });
  ApiResponse res;
  res.status = 202;
  res.body = {{"job", job->id}};
  return res;
}

}  // namespace evert::everseed
