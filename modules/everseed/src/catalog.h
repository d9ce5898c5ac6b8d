// The published torrents: one row per torrent in the store's `torrents` database (the .torrent
// and where its data is), and a small in-memory index by the hashes peers and trackers use.
// Idle torrents cost only their index entry (DESIGN.md, "Every torrent, forever"): the
// metainfo is parsed when a peer asks for the torrent (open()) and dropped with its last peer.
//
// The data was checked against the torrent's hashes when it was published; each file's size and
// modification time then (its stamp) are in the row, and a file whose stamp differs now, or that
// is gone, is not served: open() refuses it and set_problem() (from the background checks of
// data_check.h) stops it, with the reason shown to the operator.
//
// Thread-safety: loop thread only; a Torrent handed out by open() is immutable and may be read
// from worker threads.
#pragma once

#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "evert/daemon/event_loop.h"
#include "evert/daemon/store.h"
#include "evert/daemon/worker_pool.h"
#include "evert/hash.h"
#include "evert/metainfo.h"
#include "evert/result.h"
#include "evert/tracker/types.h"
#include "evert/unique_fd.h"

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
  bool stamped = false;   // its row records its files' stamps
  bool ready = true;      // false while its data is moved into place (publishing)
  bool counter_dirty = false;
};

// A file as it was when its data was verified. Stamps are recorded for the real, non-empty
// files of a torrent, in the torrent's file order.
struct FileStamp {
  std::string path;  // on disk
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  friend bool operator==(const FileStamp&, const FileStamp&) = default;
};

// Stats one file, or the files of `meta` at `data_path`. Blocking: worker threads. Errors name
// the file.
Result<FileStamp> stamp_file(const std::string& path);
Result<std::vector<FileStamp>> stamp_files(const Metainfo& meta, const std::string& data_path);
// Whether the files are still as stamped: an error naming the first one that is gone or
// changed. Blocking: worker threads.
Status check_stamps(const std::vector<FileStamp>& stamps);
// The stamps a torrent's row in the store records, its files under `data_path`.
std::vector<FileStamp> stamps_of_row(std::string_view row, const std::string& data_path);

// A torrent opened for serving: its metainfo and its files, open for reading. A torrent of
// more than kOpenAtOnce files keeps none open (`on_demand`): each is opened when it is read,
// and the last kKeptOpen opened stay open (every file of a torrent of 100,000 files open at
// once was over RLIMIT_NOFILE, and such a torrent could not be served at all).
struct Torrent {
  static constexpr size_t kOpenAtOnce = 256;
  static constexpr size_t kKeptOpen = 16;
  InfoHash key;
  Metainfo meta;
  std::vector<int> fds;  // per meta.files entry; -1 for padding, empty and on-demand files
  std::vector<FileStamp> stamps;
  bool on_demand = false;
  std::string data_path;  // where on-demand files are opened
  ~Torrent();
  // File `i` open for reading: from `fds`, or (on demand) the recently opened, else opened now
  // when `may_block` (checked against the size the torrent gives it). nullptr with `why`
  // empty: not open and !may_block.
  [[nodiscard]] std::shared_ptr<const UniqueFd> file(size_t i, bool may_block,
                                                     std::string& why) const;
  mutable std::mutex recent_mu;
  mutable std::vector<std::pair<size_t, std::shared_ptr<const UniqueFd>>> recent;  // newest last
  // Reads `length` bytes of the torrent's byte stream at `offset` (padding reads as zeros: a
  // hybrid's padding files, and the implied padding after each file of a v2 torrent).
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
  // Records a torrent whose data was verified, with its files' stamps taken around the
  // verification. Idempotent: the same torrent again returns the existing entry and `added`
  // false; if both are in place and the entry is stopped by a problem, or the data is at the
  // same place, it takes the new path and stamps (the data was verified again) and is served
  // again. `ready` false: its data is not in place yet (set_ready()).
  Result<const Published*> add(const std::string& torrent_bytes, const Metainfo& meta,
                               const std::string& data_path, bool in_place, int64_t now,
                               bool& added, std::vector<FileStamp> stamps = {}, bool ready = true);
  bool remove(const InfoHash& key);
  // Marks a torrent added with its data not yet in place as servable.
  void set_ready(const InfoHash& key);
  // The torrents `text` names: a full or a prefix (4+ digits) of a hex info-hash (v1 or
  // truncated v2), or an exact name. At most `max` are returned.
  [[nodiscard]] std::vector<const Published*> select(const std::string& text,
                                                     size_t max = 20) const;
  [[nodiscard]] const Published* find(const InfoHash& any_hash) const;
  // The torrent and which of its hashes H (v1, or truncated v2) an encrypted connection names:
  // MSE sends SHA-1("req2", H) instead of H, so that an observer learns no info-hash; nullptr
  // when no published torrent has such a hash.
  [[nodiscard]] const Published* find_obfuscated(const Sha1Digest& req2, InfoHash& which) const;
  [[nodiscard]] size_t size() const { return by_key_.size(); }
  // The store's pages that reading every row touched leave resident memory (Store).
  void release_store_pages() { store_.release_mapped(); }
  // Newest first; valid until the next add or remove. Kept once built (8 bytes a torrent): for
  // the pages and GET /v1/torrents; what needs no order uses for_each().
  [[nodiscard]] const std::vector<const Published*>& list() const;
  // Every torrent, in no order, without building list().
  template <class F>
  void for_each(F&& fn) const {
    for (const auto& [k, p] : by_key_)
      fn(p);
  }
  // The keys of the torrents whose rows record stamps, in no order.
  [[nodiscard]] std::vector<InfoHash> stamped_keys() const;
  [[nodiscard]] std::optional<std::string> torrent_bytes(const InfoHash& key) const;

  // The torrent ready for serving, shared by every connection to it; nullptr with `why` when
  // it cannot be opened (its files are gone or changed).
  // Opening checks each file against its stamp (rows without stamps, from before they were
  // recorded or of content-store data, get them now). A failure sets the torrent's problem.
  // A torrent with a problem, or not ready, is refused.
  std::shared_ptr<const Torrent> open(const InfoHash& key, std::string& why);
  // The same without the loop waiting for the disk (issue 15: a torrent of 100,000 files, or
  // a burst of requests for torrents nobody held open, stalled the loop past the watchdog):
  // the torrent when it is open already, or nullptr with `why` when it is refused at once;
  // else nullptr with `why` empty, and `done` runs on the loop (later, never inside this call)
  // with the torrent, or nullptr and why, once a worker opened its files. Requests for a
  // torrent being opened wait for the same opening. Without set_workers(), as open().
  using OpenDone = std::function<void(std::shared_ptr<const Torrent>, const std::string& why)>;
  std::shared_ptr<const Torrent> open_or_wait(const InfoHash& key, std::string& why, OpenDone done);
  void set_workers(daemon::EventLoop& loop, daemon::WorkerPool& workers) {
    loop_ = &loop;
    workers_ = &workers;
  }
  // The parsed metainfo of a published torrent (`key` its store key), shared with its open
  // Torrent or kept among the recently used (bounded by their .torrent bytes); parsed now on
  // a miss: callers on the loop that must not stall (pages, the public API) call
  // warm_metainfo() first. nullptr when it is not published or does not parse.
  std::shared_ptr<const Metainfo> metainfo(const InfoHash& key);
  [[nodiscard]] bool metainfo_at_hand(const InfoHash& key) const;
  // The metainfo of `keys` without parsing on the loop. kNow: `now` holds every one at hand
  // (`done` is not called). kLater: `done` runs on the loop (later, never inside this call)
  // with all of them, once workers parsed those not at hand; a key being parsed for another
  // caller is parsed once for both. kBusy: more than kMaxParsing keys are being parsed
  // already (nothing started; the caller answers "try again"). Unknown keys are left out.
  // Without workers (tests): parsed now, kNow.
  using Metas = std::unordered_map<InfoHash, std::shared_ptr<const Metainfo>, tracker::Id20Hash>;
  enum class Warm : uint8_t { kNow, kLater, kBusy };
  static constexpr size_t kMaxParsing = 256;
  Warm warm_metainfo(const std::vector<InfoHash>& keys, Metas& now,
                     std::function<void(Metas)> done);
  // Metainfo parsed on workers since start (warm_metainfo()).
  [[nodiscard]] uint64_t parsed_on_workers() const { return parsed_on_workers_; }
  // Openings done on workers since start (open_or_wait()).
  [[nodiscard]] uint64_t opened_on_workers() const { return opened_on_workers_; }
  // What opening a torrent needs from the loop's state, taken there and handed to a worker.
  struct OpenInput {
    InfoHash key;
    std::string bytes;  // the .torrent
    std::string data_path;
    bool stamped = false;
    std::string row;                  // the torrent's row: its stamps, decoded on the worker
    std::vector<FileStamp> recorded;  // decoded from `row`
  };
  // What opening its files (on a worker) found.
  struct OpenOutcome {
    std::shared_ptr<Torrent> torrent;
    std::string why;       // when it failed
    bool problem = false;  // the failure says the data changed (not a lack of descriptors)
  };
  // Stops serving a torrent: `why` is shown as its problem until it is published again or a
  // verify finds its data right (set_problem(key, "")).
  void set_problem(const InfoHash& key, std::string why);
  // A verify found the data right: the torrent is served again, its files stamped as `stamps`
  // (taken around the verify; kept as they were when empty). Ignored when the stamps are not of
  // files under the torrent's data path (it moved meanwhile).
  void verified(const InfoHash& key, const std::vector<FileStamp>& stamps);
  // A content-store torrent's folder was replaced by a fresh copy, hashed as it was published:
  // the torrent is served again, its files stamped anew when it is next opened.
  void data_replaced(const InfoHash& key);
  // The recorded stamps of a torrent (empty when none are).
  [[nodiscard]] std::vector<FileStamp> stamps(const InfoHash& key) const;
  void count_upload(const InfoHash& key, uint64_t bytes);
  // Writes the upload counters that changed (called on a timer and at stop).
  void flush_counters();

 private:
  static Result<Published> entry_of(const Metainfo& meta, const std::string& data_path,
                                    bool in_place, int64_t now);
  void write_row(const Published& p, const std::vector<FileStamp>& stamps);
  daemon::Store& store_;
  std::unordered_map<InfoHash, Published, tracker::Id20Hash> by_key_;
  mutable std::vector<const Published*> newest_;  // list(), while newest_valid_
  mutable bool newest_valid_ = false;
  std::unordered_map<InfoHash, InfoHash, tracker::Id20Hash> alias_;  // alt -> key
  // SHA-1("req2", hash) of each key and alt, by its first 8 bytes (find_obfuscated()): 40 bytes
  // an entry, instead of hashing every torrent's hashes for each encrypted connection.
  std::unordered_multimap<uint64_t, const Published*> obfuscated_;
  void index_obfuscated(const Published& p, bool add);
  std::unordered_map<InfoHash, std::weak_ptr<const Torrent>, tracker::Id20Hash> open_;
  std::shared_ptr<const Torrent> open_start(const InfoHash& key, std::string& why, OpenInput* in);
  std::shared_ptr<const Torrent> open_finish(const InfoHash& key, const std::string& data_path,
                                             OpenOutcome& o);
  daemon::EventLoop* loop_ = nullptr;
  daemon::WorkerPool* workers_ = nullptr;
  std::unordered_map<InfoHash, std::vector<OpenDone>, tracker::Id20Hash> opening_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // for workers' results
  uint64_t opened_on_workers_ = 0;
  // Recently used metainfo (metainfo()): at most kMetaCacheBytes (estimated) and
  // kMetaCacheEntries torrents; the most recent is kept whatever its size.
  struct MetaEntry {
    std::shared_ptr<const Metainfo> meta;
    size_t cost = 0;  // its .torrent's size
    std::list<InfoHash>::iterator lru;
  };
  static constexpr size_t kMetaCacheBytes = 64u << 20;  // estimated (keep_metainfo())
  static constexpr size_t kMetaCacheEntries = 4096;
  std::unordered_map<InfoHash, MetaEntry, tracker::Id20Hash> metas_;
  std::list<InfoHash> meta_lru_;  // the most recently used first
  size_t meta_bytes_ = 0;
  uint64_t parsed_on_workers_ = 0;
  uint64_t removals_ = 0;  // remove() calls since start
  // Keys being parsed on a worker, with who waits for each.
  using MetaWaiter = std::function<void(const InfoHash&, std::shared_ptr<const Metainfo>)>;
  std::unordered_map<InfoHash, std::vector<MetaWaiter>, tracker::Id20Hash> parsing_;
  std::shared_ptr<const Metainfo> metainfo_held(const InfoHash& key);  // open or cached
  void keep_metainfo(const InfoHash& key, std::shared_ptr<const Metainfo> meta, size_t cost);
  void forget_metainfo(const InfoHash& key);
  std::vector<InfoHash> counters_dirty_;
};

}  // namespace evert::everseed
