// The everseed as an evertd module (modules/everseed): a permanent seed of every published
// torrent over the peer wire protocol, the catalog of published torrents in the store, and
// the control-API routes that publish (POST /v1/publish), list (GET /v1/torrents) and follow
// publishing jobs (GET /v1/job). It tells this daemon's tracker which torrents it seeds and at
// which address, through the tracker's swarm table (no network round trip), and announces
// itself to the other trackers each torrent names (src/announcer.h).
#pragma once

#include <memory>

#include "evert/daemon/module.h"

namespace evert::everseed {

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

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace evert::everseed
