// The everseed's side of one peer connection after the handshake, without any I/O: the bytes a
// peer sent in, what to do about them out (bytes to send, requests queued, an interest changed,
// hash requests to answer, or a reason to close). SeedServer owns the socket, the choker, the
// disk reads and the merkle trees, and applies what a step says; the fuzz target
// (fuzz_peer_session) feeds it any bytes.
//
// A step stops after a message whose effect the caller must apply before the next is read
// (an interest change: rechoking may unchoke the peer, and its next request must then be
// queued, as BEP 3 has it) or that closes the connection.
//
// Thread-safety: one connection, one thread.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "evert/metainfo.h"
#include "evert/peer_wire.h"

namespace evert::everseed {

struct Block {
  uint32_t index = 0;
  uint32_t begin = 0;
  uint32_t length = 0;
  friend bool operator==(const Block&, const Block&) = default;
};

struct SessionLimits {
  uint32_t max_block = 128 * 1024;  // a request for more is refused (everseed.max_block)
  size_t request_queue = 500;       // requests queued at most (everseed.request_queue)
  uint32_t max_message = 1 << 18;   // nothing a leecher sends a seed is bigger
};

struct SessionStep {
  size_t consumed = 0;               // bytes of the input read
  std::string send;                  // for the peer, in order
  std::optional<std::string> close;  // why the connection must close (nothing after counts)
  std::optional<bool> interested;    // the peer's interest changed: rechoke, then read on
  bool queued = false;               // requests were added to the queue
  std::vector<wire::HashRequest> hash_requests;  // BEP 52: answered from the torrent's trees
  uint32_t metadata_pieces = 0;                  // BEP 9 pieces sent
};

// The size of piece `index`, 0 when there is no such piece. Pieces run over the torrent's byte
// stream: a hybrid's padding files are in it, and a v2 torrent's files each start on a piece
// boundary with the rest of the piece before implied padding (as libtorrent lays them out), so
// only the torrent's very last piece is short.
uint64_t piece_size(const Metainfo& meta, uint32_t index);

class PeerSession {
 public:
  // `meta` outlives the session (the connection holds its Torrent).
  PeerSession(const Metainfo& meta, bool fast, SessionLimits limits);

  // Reads the whole messages at the front of `in`, up to the first one the caller must act on.
  // `unchoked`: whether the peer may download now (the choker's state).
  SessionStep read(std::string_view in, bool unchoked);

  [[nodiscard]] bool fast() const { return fast_; }
  [[nodiscard]] uint32_t pieces() const { return pieces_; }
  [[nodiscard]] const std::optional<uint8_t>& ut_metadata() const { return ut_metadata_; }
  // Requests to serve, oldest first; SeedServer takes them from the front.
  std::deque<Block>& queue() { return queue_; }
  void set_limits(SessionLimits limits) { limits_ = limits; }

 private:
  void on_request(const wire::Message& m, bool unchoked, SessionStep& step);
  void on_extended(const wire::Message& m, SessionStep& step);

  const Metainfo& meta_;
  bool fast_;
  SessionLimits limits_;
  uint32_t pieces_;
  bool interested_ = false;
  std::optional<uint8_t> ut_metadata_;
  std::deque<Block> queue_;
};

}  // namespace evert::everseed
