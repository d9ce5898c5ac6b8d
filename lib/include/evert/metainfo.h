// Metainfo (.torrent files): parsing and validation of v1 (BEP 3), v2 and hybrid (BEP 52)
// torrents, with announce-list (BEP 12), url-list web seeds (BEP 19), private (BEP 27) and
// file attributes / padding files (BEP 47).
//
// Thread-safety: pure functions over bytes; a Metainfo is an ordinary value.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "evert/bencode.h"
#include "evert/hash.h"
#include "evert/result.h"

namespace evert {

enum class TorrentVersion : uint8_t { kV1, kV2, kHybrid };
std::string_view to_string(TorrentVersion v);

// One file of a torrent. For v1 and hybrid torrents, files are in the v1 "files" order and
// include BEP 47 padding files; for v2-only torrents they are in file-tree order.
struct FileEntry {
  std::vector<std::string> path;  // components below the torrent's folder; {name} if single-file
  uint64_t length = 0;
  uint64_t offset = 0;  // start in the torrent's byte stream (padding files included)
  std::string attr;     // BEP 47 attributes: 'p' padding, 'x' executable, 'h' hidden, 'l' link
  std::optional<Sha256Digest> pieces_root;  // v2: merkle root of the file (non-empty files)

  [[nodiscard]] bool is_pad() const { return attr.find('p') != std::string::npos; }
  [[nodiscard]] std::string path_string() const;  // components joined with '/'
};

struct Metainfo {
  std::string name;
  uint64_t piece_length = 0;
  bool multi_file = false;  // "files" list / file tree with a folder, as opposed to one file
  std::vector<FileEntry> files;
  uint64_t total_size = 0;   // sum of the real (non-padding) files
  uint64_t stream_size = 0;  // v1 byte stream: files plus padding

  std::string pieces;  // v1: concatenated 20-byte SHA-1 piece hashes
  // v2: piece layers (outside the info dictionary), keyed by pieces root; the value is the
  // concatenation of 32-byte piece hashes.
  std::map<Sha256Digest, std::string> piece_layers;
  int meta_version = 0;  // 2 for v2 and hybrid, 0 when absent (v1)

  std::vector<std::vector<std::string>> trackers;  // tiers (announce-list, else announce)
  std::vector<std::string> web_seeds;              // url-list
  bool is_private = false;
  std::string source;
  std::string comment;
  std::string created_by;
  std::optional<int64_t> creation_date;

  std::optional<Sha1Digest> info_hash_v1;    // SHA-1 of the info dictionary, v1 and hybrid
  std::optional<Sha256Digest> info_hash_v2;  // SHA-256 of the info dictionary, v2 and hybrid
  std::string info_bytes;                    // the info dictionary exactly as in the file

  [[nodiscard]] TorrentVersion version() const;
  [[nodiscard]] bool has_v1() const { return info_hash_v1.has_value(); }
  [[nodiscard]] bool has_v2() const { return info_hash_v2.has_value(); }
  // Number of pieces: v1 from the byte stream, v2-only summed over files.
  [[nodiscard]] uint64_t piece_count() const;
  // The v2 info-hash truncated to 20 bytes, as used in the peer wire handshake and by
  // trackers for v2 swarms (BEP 52). Precondition: has_v2().
  [[nodiscard]] Sha1Digest info_hash_v2_truncated() const;
  // The real (non-padding) files.
  [[nodiscard]] size_t real_file_count() const;
};

// Limits on untrusted input.
struct MetainfoLimits {
  size_t max_file_bytes = 64 * 1024 * 1024;  // size of a .torrent accepted from disk
  size_t max_files = 1'000'000;
  size_t max_path_depth = 64;
  size_t max_component_bytes = 255;  // longest name most filesystems allow
};

// Parses and validates a .torrent. Errors say which key is wrong and why, e.g.
// "info.files[3].path: '..' would escape the torrent's folder".
Result<Metainfo> parse_metainfo(std::string_view bytes, const MetainfoLimits& limits = {});

// Reads `path` (at most limits.max_file_bytes) and parses it; errors start with the path.
Result<Metainfo> load_metainfo(const std::string& path, const MetainfoLimits& limits = {});

// Checks one path component of a torrent (also used for names given on the command line):
// empty, ".", "..", '/', NUL and over-long components are refused. Returns the reason, or an
// empty string when the component is acceptable.
std::string check_path_component(std::string_view component, const MetainfoLimits& limits = {});

}  // namespace evert
