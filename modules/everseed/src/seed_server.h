// The everseed's peer-wire server: accepts peers, answers the handshake for published torrents
// (the v1 hash or a hybrid's truncated v2 hash), says it has everything (have_all, or a
// bitfield to peers without BEP 6), serves the metadata (BEP 9) and blocks. Blocks go out in
// batches (one buffer of piece messages, one sendmsg() for many blocks): what the page cache
// holds is read on the loop thread without waiting (RWF_NOWAIT), the rest on the worker pool.
// A peer gets at most `reads_in_flight` worker reads and `send_buffer` bytes (plus one batch)
// queued or being read, so a slow downloader costs bounded memory. A peer that breaks the
// protocol is dropped with the reason logged.
//
// Thread-safety: loop thread only.
#pragma once

#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "catalog.h"
#include "everseed_config.h"
#include "evert/daemon/event_loop.h"
#include "evert/daemon/worker_pool.h"
#include "evert/peer_wire.h"

namespace spdlog {
class logger;
}

namespace evert::everseed {

struct SeedCounters {
  uint64_t connections = 0;  // accepted, all time
  uint64_t refused = 0;      // over a cap
  uint64_t dropped = 0;      // protocol errors and timeouts
  uint64_t blocks = 0;
  uint64_t bytes = 0;
  uint64_t disk_reads = 0;  // batches read on a worker (blocks the page cache did not hold)
  uint64_t metadata_pieces = 0;
};

class SeedServer {
 public:
  SeedServer(daemon::EventLoop& loop, daemon::WorkerPool& workers, Catalog& catalog,
             std::shared_ptr<spdlog::logger> log);
  ~SeedServer();
  SeedServer(const SeedServer&) = delete;
  SeedServer& operator=(const SeedServer&) = delete;

  Status listen(const sockaddr_storage& addr, unsigned len, const std::string& label);
  [[nodiscard]] std::vector<uint16_t> ports() const;
  void set_options(const EverseedSection& o) { options_ = o; }
  void stop();
  // Drops every connection to a torrent (unpublished).
  void drop_torrent(const InfoHash& key);

  [[nodiscard]] size_t connections() const { return conns_.size(); }
  [[nodiscard]] const SeedCounters& counters() const { return counters_; }

 private:
  struct Block;
  struct Conn;
  struct Listener;
  void accept_from(Listener& l);
  void on_readable(Conn& c);
  bool on_handshake(Conn& c);
  bool handle(Conn& c, const wire::Message& m);
  bool on_extended(Conn& c, const wire::Message& m);
  bool on_request(Conn& c, const wire::Message& m);
  void pump(Conn& c);
  void read_on_worker(Conn& c, std::vector<Block> blocks, std::string msg);
  void counted(Conn& c, size_t blocks, uint64_t bytes);
  void send(Conn& c, std::string bytes);
  bool flush(Conn& c);
  void close(Conn& c, const std::string& why);
  void sweep();

  daemon::EventLoop& loop_;
  daemon::WorkerPool& workers_;
  Catalog& catalog_;
  std::shared_ptr<spdlog::logger> log_;
  EverseedSection options_;
  std::array<uint8_t, 20> peer_id_{};
  std::vector<std::unique_ptr<Listener>> listeners_;
  std::unordered_map<uint64_t, std::unique_ptr<Conn>> conns_;
  std::vector<std::unique_ptr<Conn>> graveyard_;
  std::unordered_map<std::string, int> per_address_;
  uint64_t next_id_ = 1;
  SeedCounters counters_;
  daemon::Timer sweep_timer_;
};

}  // namespace evert::everseed
