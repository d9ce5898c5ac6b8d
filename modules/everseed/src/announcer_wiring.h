// How the everseed module sets up its Announcer: options from everseed.*, its identity (the
// seed's peer id and port, public_address when configured), and this daemon's tracker
// listeners for telling our own tracker's URLs apart. Kept out of everseed_module.cpp so that
// file only calls in.
//
// Thread-safety: loop thread only.
#pragma once

#include <memory>

#include "announcer.h"
#include "catalog.h"
#include "everseed_config.h"
#include "evert/daemon/module.h"
#include "seed_server.h"

namespace evert::everseed {

// The announcer, loaded with every published torrent; nullptr when everseed.announce is off.
std::unique_ptr<Announcer> start_announcer(daemon::ModuleContext& ctx, const EverseedSection& cfg,
                                           const SeedServer& server, const Catalog& catalog);

// Applies a reloaded section: starts or stops the announcer when everseed.announce changed,
// rebuilds it (from the store) when own_trackers changed, else updates its options.
void reload_announcer(std::unique_ptr<Announcer>& announcer, daemon::ModuleContext& ctx,
                      const EverseedSection& before, const EverseedSection& cfg,
                      const SeedServer& server, const Catalog& catalog);

}  // namespace evert::everseed
