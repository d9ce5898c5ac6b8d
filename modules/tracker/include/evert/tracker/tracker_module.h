// The tracker as an evertd module (modules/tracker): HTTP and UDP announce/scrape, swarms kept
// in the store across restarts, control-API routes under /v1/tracker/, Prometheus /metrics.
#pragma once

#include <memory>

#include "evert/daemon/module.h"
#include "evert/tracker/types.h"

namespace evert::tracker {

class SwarmTable;

class TrackerModule : public daemon::Module {
 public:
  TrackerModule();
  ~TrackerModule() override;

  [[nodiscard]] std::string name() const override;
  Status configure(const YAML::Node& section) override;
  Status start(daemon::ModuleContext& context) override;
  std::vector<std::string> reload() override;
  void stop() override;
  [[nodiscard]] nlohmann::json status() const override;

  // The swarms, for the modules that publish torrents (allow/disallow). Null before start.
  SwarmTable* swarms();
  // Where the tracker listens, as its sockets are bound (a wildcard address: every address of
  // its family), so the everseed can tell this tracker's URLs from other trackers'.
  struct Listener {
    bool udp = false;
    Endpoint address;
  };
  [[nodiscard]] std::vector<Listener> listeners() const;
  // The announce URLs of this tracker for new torrents: tracker.public_urls, or derived from
  // the listeners (a wildcard address becomes the host name). Empty before start.
  [[nodiscard]] std::vector<std::string> announce_urls() const;

  // The registry entry (builtin_modules.cpp).
  static daemon::ModuleInfo info();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace evert::tracker
