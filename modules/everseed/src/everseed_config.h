// The everseed's section of evertd.yaml: one struct, one field table (STYLE.md §12).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "evert/daemon/config.h"

namespace evert::everseed {

struct EverseedSection {
  std::vector<std::string> listen = {"0.0.0.0:6881", "[::]:6881"};
  // The address peers reach the seed at, given to this daemon's tracker; empty: each listen
  // address that is not a wildcard.
  std::vector<std::string> public_address;
  // uTP (BEP 29) on the same port numbers over UDP: libtorrent-based clients (qBittorrent,
  // Deluge) try it first and wait for it to time out before TCP.
  bool utp = true;
  // Message stream encryption (MSE/PE) of incoming connections, beside the plaintext
  // handshake: "allow" takes both and lets an encrypting peer choose (plaintext when it offers
  // both: RC4 costs CPU and hides nothing from anyone who can read the handshake), "prefer"
  // answers such peers with RC4, "require" takes RC4 only (plaintext handshakes refused).
  std::string encryption = "allow";
  int max_connections = 4096;
  int max_per_address = 8;
  int max_per_torrent = 500;  // peers of one torrent at once
  // Requests queued per peer (reqq); more are rejected. Deep enough for a downloader to keep
  // 16 MiB in flight: bench/seed measured 250 (4 MiB) as the limit on loopback, and over a
  // 100 ms path it caps one peer at 40 MiB/s. Only 12 bytes per queued request.
  int request_queue = 1000;
  int max_block = 16 * 1024;   // the largest block served
  int handshake_timeout = 10;  // seconds
  int idle_timeout = 120;      // seconds without a message from the peer
  int reads_in_flight = 8;     // worker-thread disk reads per peer at once
  int send_buffer = 1 << 20;   // bytes queued or being read for a peer before reading more
  // Choking (choker.h): regular upload slots per torrent, given round-robin; one optimistic
  // slot besides unless its interval is 0.
  int upload_slots = 8;
  int unchoke_interval = 10;                 // seconds between rotations of the regular slots
  int optimistic_unchoke_interval = 30;      // seconds; 0: no optimistic slot
  uint64_t max_upload_rate = 0;              // bytes per second, all torrents; 0: unlimited
  uint64_t max_upload_rate_per_torrent = 0;  // bytes per second, each torrent; 0: unlimited
  int check_interval = 10;  // seconds between checks that a served torrent's files are unchanged
  // Announcing to the other trackers of a torrent's announce list (announcer.h).
  bool announce = true;
  int announce_concurrency = 16;          // announces in flight at once
  int announce_min_interval = 300;        // seconds: the shortest interval honoured
  int announce_max_interval = 3600;       // seconds: the longest, and the cap of the backoff
  int announce_retry = 60;                // seconds to the first retry; doubled per failure
  std::vector<std::string> own_trackers;  // URLs that reach this daemon's tracker
  bool announce_private = false;          // announce to trackers at non-public addresses too
};

const daemon::FieldTable<EverseedSection>& everseed_table();
std::string print_everseed_defaults(const std::string& prefix);

}  // namespace evert::everseed
