// Publishing: from files (handed over as descriptors, copied into the content store), from a
// path the daemon reads in place, or from an existing .torrent and its data; then verifying,
// listing and unpublishing. One implementation for every front end: the control API and the
// descriptor socket here, the web module later (DESIGN.md).
//
// Every publish is a job on the bulk pool (ModuleContext::bulk: copy, hash, commit) with progress
// the client polls (GET /v1/job) and can cancel (DELETE /v1/job). A publish is acknowledged (job
// "done") only after the store committed it; one cancelled or interrupted before leaves nothing
// behind.
//
// Thread-safety: loop thread only; jobs hand their results back with EventLoop::post().
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "catalog.h"
#include "content_store.h"
#include "evert/create.h"
#include "evert/daemon/module.h"

namespace evert::everseed {

// Torrent options from a request's "options" object (docs/control-api.md); errors name the key.
Result<CreateOptions> create_options_from_json(const nlohmann::json& options);

class Publisher {
 public:
  struct Hooks {
    std::function<void(const Published&, bool seeded)> seeded;  // tell the tracker
    std::function<nlohmann::json(const Published&)> describe;   // a torrent for the API
    std::function<std::vector<std::string>()> own_trackers;     // this daemon's announce URLs
    // The web module's base URL of the web seed ("" when it does not run): torrents the daemon
    // makes list BASE/data/<hex>/ in their url-list (BEP 19).
    std::function<std::string()> web_seed_base;
    std::function<void(const InfoHash&)> drop_peers;  // stop serving a torrent
    // A torrent committed (published, or published again), and one unpublished: the announcer
    // lists it on the other trackers of its announce list, or tells them it is gone.
    std::function<void(const Published&, const Metainfo&)> published;
    std::function<void(const InfoHash&)> unpublished;
  };

  Publisher(daemon::ModuleContext& ctx, Catalog& catalog, Hooks hooks);
  ~Publisher();
  Publisher(const Publisher&) = delete;
  Publisher& operator=(const Publisher&) = delete;

  // Prepares the content store (cleanup after a crash) and registers the routes.
  Status start();
  // Cancels running jobs.
  void stop();

  // The front ends. Each returns the job id, or an error response.
  struct Accepted {
    uint64_t job = 0;
    std::optional<daemon::ApiResponse> error;
  };
  Accepted publish_files(std::string name, std::vector<IncomingFile> files, CreateOptions options,
                         std::string torrent_bytes);
  Accepted publish_path(const std::string& path, CreateOptions options);
  // Data already written into the content store: `dir` (from ContentStore::upload_dir()) holds
  // `name` (a file or a folder), as the web module's uploads leave it. The job hashes it there
  // and moves it into place; on failure `dir` is removed.
  Accepted publish_upload(std::string name, std::string dir, CreateOptions options);
  Accepted publish_existing(std::string torrent_bytes, const std::string& data_path);

  [[nodiscard]] const ContentStore& content() const { return content_; }

 private:
  struct Job;
  std::shared_ptr<Job> new_job(const std::string& what, uint64_t total);
  // A publish into the content store: `fill` (on a worker) puts the data into the incoming
  // folder (`dir`, or a fresh one) and lists it; then hashing (or checking `given`), sealing
  // and committing as for every publish.
  Accepted publish_into(std::string name, uint64_t total, CreateOptions options,
                        std::shared_ptr<Metainfo> given, std::string torrent_bytes, std::string dir,
                        std::function<Result<ScanResult>(const std::string&, Job&)> fill);
  // A hashed copy in the content store's incoming folder, on its way to `content/<hex>`.
  struct Install {
    std::shared_ptr<Job> job;
    std::shared_ptr<CreatedTorrent> created;
    std::string incoming;  // the folder holding `name`
    std::string hex;       // the torrent's key
    std::string name;
  };
  // On the loop: takes a hashed copy into the content store, unless the torrent is there
  // already with its data intact (then the copy is discarded and the publish is "already
  // published"). One install of a torrent at a time: a second publish of the same data (a
  // double submit) waits in `installing_` until the first is committed or failed, then looks
  // again, so two never seal, move or remove each other's folders.
  void install(const std::shared_ptr<Install>& in);
  // On the loop: the install of `hex` ended (done or failed); the next waiting one runs.
  void installed(const std::string& hex);
  void finish(const std::shared_ptr<Job>& job, const Result<const Published*>& outcome, bool added);
  void fail(const std::shared_ptr<Job>& job, const Error& e);
  // Blocking (worker threads): removes a folder of the content store, logging a failure.
  void discard(const std::string& dir) const;
  // On the loop: records a hashed torrent; `staged` is the content-store folder to move into
  // place after the commit (empty for in-place data; then installed() is called at the end),
  // `stamps` its in-place files as hashed.
  void commit(const std::shared_ptr<Job>& job, std::shared_ptr<CreatedTorrent> created,
              std::string data_path, bool in_place, std::string staged,
              std::vector<FileStamp> stamps = {});
  // On the loop: publishes in-place data that was hashed (commit()), unless the same torrent is
  // already served from elsewhere.
  void commit_in_place(const std::shared_ptr<Job>& job, std::shared_ptr<CreatedTorrent> created,
                       const std::string& path, std::vector<FileStamp> stamps);
  CreateOptions with_own_trackers(CreateOptions o) const;
  // The torrents `text` names, or an error response (none, or several).
  std::optional<daemon::ApiResponse> select_one(const std::string& text,
                                                const Published*& out) const;

  daemon::ApiResponse route_publish(const daemon::ApiRequest& r);
  daemon::ApiResponse route_fds_publish(daemon::FdRequest& r);
  daemon::ApiResponse route_job(const daemon::ApiRequest& r) const;
  daemon::ApiResponse route_cancel(const daemon::ApiRequest& r);
  daemon::ApiResponse route_torrents(const daemon::ApiRequest& r) const;
  daemon::ApiResponse route_torrent(const daemon::ApiRequest& r) const;
  daemon::ApiResponse route_unpublish(const daemon::ApiRequest& r);
  daemon::ApiResponse route_verify(const daemon::ApiRequest& r);

  daemon::ModuleContext& ctx_;
  Catalog& catalog_;
  Hooks hooks_;
  ContentStore content_;
  std::map<uint64_t, std::shared_ptr<Job>> jobs_;
  // The torrents (hex keys) being installed into the content store, each with the installs
  // waiting for it to end (install()).
  std::map<std::string, std::vector<std::shared_ptr<Install>>> installing_;
  uint64_t next_job_ = 1;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // for posted completions
};

}  // namespace evert::everseed
