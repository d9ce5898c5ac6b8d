// Hashing the data of a torrent with every core: SHA-1 pieces (v1) and SHA-256 merkle trees
// (v2), or both in one pass (hybrid).
//
// How: a read-ahead thread walks the files in 8 MiB windows ahead of the hashing workers and
// asks the kernel to read each window (MADV_WILLNEED / readahead). Large files are also mapped:
// where the page cache holds them in large folios, mapping a window (MADV_POPULATE_READ) costs a
// few microseconds per MiB and the workers hash straight out of the page cache with no copy;
// where it holds 4 KiB pages, mapping costs more than copying, so the read-ahead thread, which
// measures the CPU time of each window it maps, switches the workers to pread for that file
// (re-probing every 64 MiB). N workers take batches of pieces from a shared counter and write
// their digests into disjoint slots. A file that shrinks while hashed is an error, not SIGBUS,
// on the pread path; the mapped path needs SIGBUS handled by the program (evertctl does).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "evert/file_list.h"
#include "evert/hash.h"
#include "evert/result.h"

namespace evert {

enum class Layout : uint8_t {
  kV1,      // files back to back; pieces may span files
  kV2,      // every file starts on a piece boundary; SHA-256 trees only
  kHybrid,  // aligned like v2, with SHA-1 pieces over the files plus their zero padding
};

// How file data reaches the hashing workers (see above). kAuto is right outside of tests and
// benchmarks of the two paths.
enum class ReadMode : uint8_t { kAuto, kMap, kRead };

struct HashRequest {
  const std::vector<InputFile>* files = nullptr;  // in torrent order
  uint64_t piece_length = 0;
  Layout layout = Layout::kHybrid;
  // Hybrid only: whether the last piece of each file is padded to a full piece for SHA-1
  // (multi-file torrents, which carry padding files); single-file torrents are not padded.
  bool pad_files = true;
  int threads = 0;  // hashing workers; 0 = one per core
  ReadMode read_mode = ReadMode::kAuto;
  // Called on the calling thread about ten times a second and once at the end, with bytes
  // hashed so far and the total.
  std::function<void(uint64_t done, uint64_t total)> progress;
  const std::atomic<bool>* cancel = nullptr;  // set by another thread to stop early
};

struct FileHashes {
  Sha256Digest pieces_root;  // zero for empty files or v1 layout
  std::string piece_layer;   // 32-byte hashes; only for files longer than one piece
};

struct HashResult {
  std::string pieces;             // v1 and hybrid: concatenated SHA-1 piece hashes
  std::vector<FileHashes> files;  // v2 and hybrid: one per input file
};

// Hashes the files. Fails with a message naming the file when one cannot be opened or read or
// changed size since it was listed, and with "cancelled" when *cancel was set.
Result<HashResult> hash_files(const HashRequest& request);

}  // namespace evert
