// Creating torrents (v1, v2 or hybrid) from a file or a folder.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "evert/file_list.h"
#include "evert/metainfo.h"
#include "evert/result.h"

namespace evert {

inline constexpr uint64_t kMinPieceLength = 16 * 1024;
inline constexpr uint64_t kMaxAutoPieceLength = 16 * 1024 * 1024;
inline constexpr uint64_t kMaxPieceLength = 64 * 1024 * 1024;

// The automatic piece size: the smallest power of two from 16 KiB to 16 MiB that gives at
// most 2048 pieces. Torrents from 32 MiB to 32 GiB so get 1025-2048 pieces (a .torrent of
// 20-60 KiB of hashes, and pieces small enough for a fast start); smaller data gets 16 KiB
// pieces, larger data 16 MiB pieces, the largest that every common client accepts.
uint64_t auto_piece_length(uint64_t total_size);

// Checks a piece length given by the user: a power of two from 16 KiB to 64 MiB. Returns the
// reason it is refused, or an empty string.
std::string check_piece_length(uint64_t piece_length);

struct CreateOptions {
  TorrentVersion version = TorrentVersion::kHybrid;
  uint64_t piece_length = 0;                       // 0: auto_piece_length()
  std::vector<std::vector<std::string>> trackers;  // tiers (BEP 12)
  std::vector<std::string> web_seeds;              // url-list (BEP 19)
  bool is_private = false;                         // BEP 27
  std::string source;                              // info.source (changes the info-hash)
  std::string comment;
  std::string created_by;                // empty: no "created by" key
  std::optional<int64_t> creation_date;  // seconds since the epoch; nullopt: no date
  std::string name;                      // empty: the last component of the path
  int threads = 0;                       // hashing workers; 0: one per core
  std::function<void(uint64_t done, uint64_t total)> progress;  // see HashRequest::progress
  const std::atomic<bool>* cancel = nullptr;
};

struct CreatedTorrent {
  std::string bytes;  // the .torrent file
  Metainfo metainfo;  // the same, parsed back (so it is validated like any other torrent)
};

// Creates a torrent of the files in `input` (see scan_path()). Fails when an option is
// invalid (the message names it), a file cannot be read, or the operation was cancelled.
Result<CreatedTorrent> create_torrent(const ScanResult& input, const CreateOptions& options);

}  // namespace evert
