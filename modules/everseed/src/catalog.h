// The published torrents: one row per torrent in the store's `torrents` database (the .torrent
// and where its data is), and a small in-memory index by the hashes peers and trackers use.
// Idle torrents cost only their index entry (DESIGN.md, "Every torrent, forever"): the
// metainfo is parsed when a peer asks for the torrent (open()) and dropped with its last peer.
//
// Thread-safety: loop thread only; a Torrent handed out by open() is immutable and may be read
// from worker threads.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "evert/daemon/store.h"
#include "evert/metainfo.h"
#include "evert/result.h"
#include "evert/tracker/types.h"

namespace evert::everseed {

using tracker::InfoHash;

struct Published {
  InfoHash key;                 // the store key: the v1 info-hash, or the truncated v2 one
  std::optional<InfoHash> alt;  // a hybrid's truncated v2 info-hash (peers may use either)
  std::string name;
  std::string data_path;  // the file (single-file torrents) or the folder of the files
  uint64_t size = 0;
  int64_t published = 0;  // unix seconds
  uint64_t uploaded = 0;  // bytes sent to peers, all time
  bool in_place = false;  // seeded from the publisher's path, not the content store
  std::string problem;    // why it is not served (a changed file), empty when it is
  bool ready = true;      // false while its data is moved into place (publishing)
  bool counter_dirty = false;
};

// A torrent opened for serving: its metainfo and its files, open for reading.
struct Torrent {
  InfoHash key;
  Metainfo meta;
  std::vector<int> fds;  // per meta.files entry; -1 for padding and empty files
  ~Torrent();
  // Reads `length` bytes of the torrent's byte stream at `offset` (padding reads as zeros).
  // Blocking: worker threads only. Fails when a file is shorter than the torrent says.
  Status read(uint64_t offset, char* out, size_t length) const;
  // The same for the bytes the page cache holds, without waiting for the disk: returns how
  // many bytes from `offset` were read (fewer than `length`, down to 0, where the cache ends;
  // read() finds out whether the file is shorter). Any thread, also the loop thread.
  Result<size_t> read_cached(uint64_t offset, char* out, size_t length) const;

 private:
  Result<size_t> read_from(uint64_t offset, char* out, size_t length, bool cached) const;
};

class Catalog {
 public:
  explicit Catalog(daemon::Store& store) : store_(store) {}

  // Reads the index from the store (start-up). Rows that do not parse are skipped and counted.
  size_t load();
  // Records a torrent whose data was verified. Idempotent: the same torrent again returns the
  // existing entry and `added` false.
  Result<const Published*> add(const std::string& torrent_bytes, const Metainfo& meta,
                               const std::string& data_path, bool in_place, int64_t now,
                               bool& added, bool ready = true);
  bool remove(const InfoHash& key);
  // Marks a torrent added with its data not yet in place as servable.
  void set_ready(const InfoHash& key);
  void set_problem(const InfoHash& key, std::string problem);
  // The torrents `text` names: a full or a prefix (4+ digits) of a hex info-hash (v1 or
  // truncated v2), or an exact name. At most `max` are returned.
  [[nodiscard]] std::vector<const Published*> select(const std::string& text,
                                                     size_t max = 20) const;
  [[nodiscard]] const Published* find(const InfoHash& any_hash) const;
  [[nodiscard]] size_t size() const { return by_key_.size(); }
  [[nodiscard]] std::vector<const Published*> list() const;
  [[nodiscard]] std::optional<std::string> torrent_bytes(const InfoHash& key) const;

  // The torrent ready for serving, shared by every connection to it; nullptr with `why` when
  // it cannot be opened (its files are gone or changed).
  std::shared_ptr<const Torrent> open(const InfoHash& key, std::string& why);
  void count_upload(const InfoHash& key, uint64_t bytes);
  // Writes the upload counters that changed (called on a timer and at stop).
  void flush_counters();

 private:
  static Result<Published> entry_of(const Metainfo& meta, const std::string& data_path,
                                    bool in_place, int64_t now);
  daemon::Store& store_;
  std::unordered_map<InfoHash, Published, tracker::Id20Hash> by_key_;
  std::unordered_map<InfoHash, InfoHash, tracker::Id20Hash> alias_;  // alt -> key
  std::unordered_map<InfoHash, std::weak_ptr<const Torrent>, tracker::Id20Hash> open_;
  std::vector<InfoHash> counters_dirty_;
};

}  // namespace evert::everseed
