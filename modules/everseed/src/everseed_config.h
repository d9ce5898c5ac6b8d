// The everseed's section of evertd.yaml: one struct, one field table (STYLE.md §12).
#pragma once

#include <string>
#include <vector>

#include "evert/daemon/config.h"

namespace evert::everseed {

struct EverseedSection {
  std::vector<std::string> listen = {"0.0.0.0:6881", "[::]:6881"};
  // The address peers reach the seed at, given to this daemon's tracker; empty: each listen
  // address that is not a wildcard.
  std::vector<std::string> public_address;
  int max_connections = 4096;
  int max_per_address = 8;
  // Requests queued per peer (reqq); more are rejected. Deep enough for a downloader to keep
  // 16 MiB in flight: bench/seed measured 250 (4 MiB) as the limit on loopback, and over a
  // 100 ms path it caps one peer at 40 MiB/s. Only 12 bytes per queued request.
  int request_queue = 1000;
  int max_block = 16 * 1024;   // the largest block served
  int handshake_timeout = 10;  // seconds
  int idle_timeout = 120;      // seconds without a message from the peer
  int reads_in_flight = 8;     // worker-thread disk reads per peer at once
  int send_buffer = 1 << 20;   // bytes queued or being read for a peer before reading more
};

const daemon::FieldTable<EverseedSection>& everseed_table();
std::string print_everseed_defaults(const std::string& prefix);

}  // namespace evert::everseed
