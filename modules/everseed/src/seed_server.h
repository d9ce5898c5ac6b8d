// The everseed's peer-wire server: accepts peers, answers the handshake for published torrents
// (the v1 hash, a hybrid's or a v2 torrent's truncated v2 hash), says it has everything
// (have_all, or a bitfield to peers without BEP 6), serves the metadata (BEP 9), the v2 piece
// layers with their proofs (BEP 52 hash requests) and blocks. Blocks go out in
// batches (one buffer of piece messages, one sendmsg() for many blocks): what the page cache
// holds is read on the loop thread without waiting (RWF_NOWAIT), the rest on the worker pool.
// A peer gets at most `reads_in_flight` worker reads and `send_buffer` bytes (plus one batch)
// queued or being read, so a slow downloader costs bounded memory. A peer that breaks the
// protocol is dropped with the reason logged. What a peer's messages mean after the handshake
// (requests queued, rejected or dropped, cancels, metadata, hash requests) is decided by its
// PeerSession (peer_session.h: bytes in, actions out, fuzzed); this server does what it says.
//
// Choking (choker.h): each torrent's interested peers take turns at `upload_slots` regular
// slots and one optimistic slot; a choked peer's requests are rejected (BEP 6) or, without the
// fast extension, dropped. Upload rate limits, for all torrents and for each, are token buckets
// refilled from the clock; peers waiting for bandwidth are served round-robin, a batch each, by
// one timer that runs only while someone waits. The state of a torrent being served (its peers,
// bucket, merkle trees) exists only while it has peers: an idle torrent costs nothing here.
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
#include "choker.h"
#include "data_check.h"
#include "everseed_config.h"
#include "evert/daemon/event_loop.h"
#include "evert/daemon/worker_pool.h"
#include "evert/peer_wire.h"
#include "peer_session.h"
#include "peer_stream.h"

namespace spdlog {
class logger;
}

namespace evert::everseed {

struct SeedCounters {
  uint64_t connections = 0;    // accepted, all time
  uint64_t encrypted = 0;      // MSE handshakes completed, all time
  uint64_t encrypted_rc4 = 0;  // of which chose an RC4 stream
  uint64_t refused = 0;        // over a cap
  uint64_t dropped = 0;        // protocol errors and timeouts
  uint64_t blocks = 0;
  uint64_t bytes = 0;
  uint64_t disk_reads = 0;  // batches read on a worker (blocks the page cache did not hold)
  uint64_t metadata_pieces = 0;
  uint64_t hashes = 0;  // hash requests answered
  uint64_t hashes_rejected = 0;
};

class SeedServer {
 public:
  SeedServer(daemon::EventLoop& loop, daemon::WorkerPool& workers, Catalog& catalog,
             std::shared_ptr<spdlog::logger> log);
  ~SeedServer();
  SeedServer(const SeedServer&) = delete;
  SeedServer& operator=(const SeedServer&) = delete;

  Status listen(const sockaddr_storage& addr, unsigned len, const std::string& label);
  // Takes a new connection from `peer` unless a cap refuses it (false: the caller drops it).
  // `make` builds the connection's stream around the notifier it is given (TCP: the accepted
  // socket; uTP: the endpoint's connection).
  bool accept(const tracker::Endpoint& peer,
              const std::function<std::unique_ptr<PeerStream>(PeerStream::Notify)>& make);
  [[nodiscard]] std::vector<uint16_t> ports() const;
  // The peer id the seed gives in its handshakes (and the announcer to trackers).
  [[nodiscard]] const std::array<uint8_t, 20>& peer_id() const { return peer_id_; }
  // Applies (new) options: slots and intervals take effect at once.
  void set_options(const EverseedSection& o);
  void stop();
  // Drops every connection to a torrent (unpublished, or its files changed).
  void drop_torrent(const InfoHash& key);
  // Checks in the background that every published torrent's files are unchanged (start-up).
  void check_published() { data_check_.check_all(); }
  // Called when a torrent stops being served because its files changed or are gone (its
  // problem is set in the catalog): the tracker stops listing the everseed for it.
  void on_stopped(std::function<void(const InfoHash&)> f) { on_stopped_ = std::move(f); }

  [[nodiscard]] size_t connections() const { return conns_.size(); }
  [[nodiscard]] size_t unchoked() const;
  [[nodiscard]] size_t waiting_for_bandwidth() const { return bw_wait_.size(); }
  [[nodiscard]] const SeedCounters& counters() const { return counters_; }

 private:
  struct Conn;
  struct Listener;
  struct Swarm;
  void accept_from(Listener& l);
  void on_readable(Conn& c);
  bool on_first_bytes(Conn& c);
  bool on_handshake(Conn& c);
  bool on_interest(Conn& c, bool interested);
  [[nodiscard]] SessionLimits session_limits() const;
  bool on_hash_request(Conn& c, const wire::HashRequest& h);
  void pump(Conn& c);
  [[nodiscard]] bool can_read(const Conn& c) const;
  [[nodiscard]] bool limited() const;
  bool bandwidth_ready(Conn& c, Clock::time_point now);
  bool serve_batch(Conn& c);
  void serve_waiting();
  void read_on_worker(Conn& c, std::vector<Block> blocks, std::string msg);
  void counted(Conn& c, size_t blocks, uint64_t bytes);
  void send(Conn& c, std::string bytes);
  bool flush(Conn& c);
  void close(Conn& c, const std::string& why);
  void sweep();
  // Choking: runs the choker over a torrent's peers and sends what changed.
  void join_swarm(Conn& c);
  void leave_swarm(Conn& c);
  void rechoke(const InfoHash& key, ChokeStep step);
  void rechoke_all(ChokeStep step);
  void settle_later(const InfoHash& key);
  [[nodiscard]] ChokePolicy policy() const;
  void restart_timers();
  void on_problem(const InfoHash& key, const std::string& why);

  daemon::EventLoop& loop_;
  daemon::WorkerPool& workers_;
  Catalog& catalog_;
  std::shared_ptr<spdlog::logger> log_;
  EverseedSection options_;
  std::array<uint8_t, 20> peer_id_{};
  std::vector<std::unique_ptr<Listener>> listeners_;
  std::unordered_map<uint64_t, std::unique_ptr<Conn>> conns_;
  std::unordered_map<InfoHash, std::unique_ptr<Swarm>, tracker::Id20Hash> swarms_;
  std::vector<std::unique_ptr<Conn>> graveyard_;
  std::unordered_map<std::string, int> per_address_;
  uint64_t next_id_ = 1;
  SeedCounters counters_;
  TokenBucket global_bucket_;
  std::deque<uint64_t> bw_wait_;  // connections waiting for bandwidth, served in turn
  std::vector<InfoHash> to_settle_;
  DataCheck data_check_;
  daemon::Timer sweep_timer_;
  daemon::Timer choke_timer_;
  daemon::Timer optimistic_timer_;
  daemon::Timer bandwidth_timer_;
  std::function<void(const InfoHash&)> on_stopped_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace evert::everseed
