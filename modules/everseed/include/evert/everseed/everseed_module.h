// The everseed as an evertd module (modules/everseed): a permanent seed of every published
// torrent over the peer wire protocol, the catalog of published torrents in the store, and
// the control-API routes that publish (POST /v1/publish), list (GET /v1/torrents) and follow
// publishing jobs (GET /v1/job). It tells this daemon's tracker which torrents it seeds and at
// which address, through the tracker's swarm table (no network round trip), and announces
// itself to the other trackers each torrent names (src/announcer.h).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "evert/daemon/module.h"
#include "evert/metainfo.h"
#include "evert/tracker/types.h"

namespace evert::everseed {

// One file of a published torrent, open for reading, as the web seed serves it (modules/web).
// `hold` keeps `fd` open (and the torrent's other files) until it is released.
struct ServedFile {
  std::shared_ptr<const void> hold;
  int fd = -1;  // -1 for an empty file
  uint64_t size = 0;
  int64_t mtime_ns = 0;  // when it was verified (its stamp); 0 for an empty file
};

class EverseedModule : public daemon::Module {
 public:
  EverseedModule();
  ~EverseedModule() override;

  [[nodiscard]] std::string name() const override;
  Status configure(const YAML::Node& section) override;
  Status start(daemon::ModuleContext& context) override;
  std::vector<std::string> reload() override;
  void stop() override;
  [[nodiscard]] nlohmann::json status() const override;

  static daemon::ModuleInfo info();

  // The base URL of the web seed (the web module's public URL), or "": torrents published
  // from then on list BASE/data/<info-hash hex>/ in their url-list (BEP 19). Loop thread.
  void set_web_seed_base(std::string url);

  // The file `path` (the torrent's name, then the components below its folder; already
  // percent-decoded) of the published torrent `hash` (its store key, or a hybrid's truncated
  // v2 info-hash), when that torrent is served now. An error when it is unknown, still being
  // published, stopped (its files changed), or has no such file. Loop thread only. The answer
  // when it is known now; nullopt when the torrent is first opened on a worker (its files
  // opened and stat()ed: many for a large torrent), and `later` then runs on the loop with it.
  std::optional<Result<ServedFile>> served_file(const tracker::InfoHash& hash,
                                                const std::vector<std::string>& path,
                                                std::function<void(Result<ServedFile>)> later);

  // Uploads (the web module), loop thread. A fresh folder in the content store to write an
  // upload into (not yet created; removed at start-up if the daemon stops before it is
  // published), and where the content store is (for its free space).
  std::string new_upload_dir();
  std::string content_dir() const;
  // Publishes what an upload left in `dir` (the file or folder `name`), with the options of
  // POST /v1/publish (docs/control-api.md): the job id (GET /v1/job), or why not.
  Result<uint64_t> publish_upload(std::string name, std::string dir, const nlohmann::json& options);
  // The .torrent file of a published torrent, or nullopt.
  std::optional<std::string> torrent_file(const tracker::InfoHash& hash) const;
  // The parsed metainfo of a published torrent (any of its hashes), or nullptr. Kept for the
  // recently used; parsed on the loop on a miss: pages and the public API call
  // warm_metainfo() first. Loop thread.
  std::shared_ptr<const Metainfo> metainfo(const tracker::InfoHash& hash);
  // The metainfo of the torrents `hashes` name, by store key, without parsing on the loop:
  // kNow when `now` holds all of them, kLater when `later` runs on the loop with them once
  // workers parsed those not at hand, kBusy when too many are being parsed (try again).
  using Metas =
      std::unordered_map<tracker::InfoHash, std::shared_ptr<const Metainfo>, tracker::Id20Hash>;
  enum class Warm : uint8_t { kNow, kLater, kBusy };
  Warm warm_metainfo(const std::vector<tracker::InfoHash>& hashes, Metas& now,
                     std::function<void(Metas)> later);
  // The store keys of the torrents `id` names, as GET /v1/torrent?id= selects them (at most 2).
  std::vector<tracker::InfoHash> keys_named(const std::string& id) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace evert::everseed
