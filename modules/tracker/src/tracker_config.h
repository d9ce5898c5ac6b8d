// The tracker's section of evertd.yaml: one struct, one field table (STYLE.md §12).
#pragma once

#include <sys/socket.h>

#include <string>
#include <vector>

#include "evert/daemon/config.h"

namespace evert::tracker {

struct TrackerSection {
  std::vector<std::string> http_listen = {"0.0.0.0:6969", "[::]:6969"};
  std::vector<std::string> udp_listen = {"0.0.0.0:6969", "[::]:6969"};
  // The announce URLs this tracker is reached at, put into torrents published here; empty:
  // derived from the listen addresses (see announce_urls()).
  std::vector<std::string> public_urls;
  std::string mode = "whitelist";
  std::vector<std::string> whitelist;  // hex info-hashes tracked besides published torrents
  int interval = 1800;
  int min_interval = 60;
  int expiry = 2700;
  int numwant_default = 50;
  int numwant_max = 200;
  int max_swarms = 1'000'000;
  int max_peers_per_swarm = 100'000;
  int max_peers_per_address = 32;  // per swarm and family: IPv4 address or IPv6 /64
  int max_scrape = 64;
  bool full_scrape = false;
  bool allow_ip_param = false;
  std::vector<std::string> trusted_proxies;
  std::string tracker_id;
  bool persist = true;
  bool keep_peer_ids = false;
  int persist_interval = 1000;  // ms
  bool metrics = false;
  std::vector<std::string> metrics_allow = {"127.0.0.1", "::1"};
  int http_timeout = 15;
  int max_connections = 10'000;
  int max_per_address = 128;  // open HTTP connections from one address (IPv6: /64)
};

const daemon::FieldTable<TrackerSection>& tracker_table();
std::string print_tracker_defaults(const std::string& prefix);

}  // namespace evert::tracker
