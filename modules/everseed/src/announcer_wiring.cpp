#include "announcer_wiring.h"

#include <ctime>

#include "evert/tracker/tracker_module.h"

namespace evert::everseed {
namespace {

AnnouncerOptions options_of(const EverseedSection& cfg) {
  AnnouncerOptions o;
  o.schedule.min_interval = static_cast<uint32_t>(cfg.announce_min_interval);
  o.schedule.max_interval = static_cast<uint32_t>(cfg.announce_max_interval);
  o.schedule.retry_min = static_cast<uint32_t>(cfg.announce_retry);
  o.concurrency = static_cast<size_t>(cfg.announce_concurrency);
  o.own_trackers = cfg.own_trackers;
  o.announce_private = cfg.announce_private;
  return o;
}

AnnounceIdentity identity_of(const EverseedSection& cfg, const SeedServer& server) {
  AnnounceIdentity id;
  id.peer_id = server.peer_id();
  const auto ports = server.ports();
  if (!ports.empty()) id.port = ports.front();
  if (!cfg.public_address.empty()) {
    sockaddr_storage ss{};
    unsigned len = 0;
    std::string why;
    if (tracker::parse_listen(cfg.public_address.front(), ss, len, why)) {
      const tracker::Endpoint e = tracker::endpoint_of(ss);
      if (e.port != 0) id.port = e.port;
      if (e.ip != tracker::Endpoint{}.ip) {
        std::string text = e.to_string();
        id.ip = text.substr(0, text.rfind(':'));
        if (!id.ip.empty() && id.ip.front() == '[') id.ip = id.ip.substr(1, id.ip.size() - 2);
      }
    }
  }
  return id;
}

std::vector<OwnListener> listeners_of(daemon::ModuleContext& ctx) {
  std::vector<OwnListener> out;
  if (const auto* t = dynamic_cast<tracker::TrackerModule*>(ctx.module("tracker"))) {
    for (const auto& l : t->listeners())
      out.push_back({l.udp, l.address});
  }
  return out;
}

}  // namespace

std::unique_ptr<Announcer> start_announcer(daemon::ModuleContext& ctx, const EverseedSection& cfg,
                                           const SeedServer& server, const Catalog& catalog) {
  if (!cfg.announce) return nullptr;
  auto a = std::make_unique<Announcer>(ctx.loop, ctx.store, ctx.log,
                                       [] { return static_cast<int64_t>(std::time(nullptr)); });
  a->set_identity(identity_of(cfg, server));
  a->set_own_listeners(listeners_of(ctx));
  a->set_options(options_of(cfg));
  a->load(catalog);
  return a;
}

void reload_announcer(std::unique_ptr<Announcer>& announcer, daemon::ModuleContext& ctx,
                      const EverseedSection& before, const EverseedSection& cfg,
                      const SeedServer& server, const Catalog& catalog) {
  if (announcer && (!cfg.announce || cfg.own_trackers != before.own_trackers)) {
    // Switched off: the trackers hear that the everseed stops. Rebuilt: they hear nothing and
    // get event=started again.
    announcer->stop(/*say_stopped=*/!cfg.announce);
    announcer.reset();
  }
  if (!announcer) {
    announcer = start_announcer(ctx, cfg, server, catalog);
    return;
  }
  announcer->set_identity(identity_of(cfg, server));
  announcer->set_options(options_of(cfg));
}

}  // namespace evert::everseed
