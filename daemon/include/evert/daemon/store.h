// The daemon's state: one LMDB environment in the state directory, a named database per
// concern, and a schema version (docs/storage.md describes keys and values).
//
// Writes from the hot path never wait for the disk: put()/del() go into a pending batch that
// commit() hands to the store's writer thread (group commit, driven by the daemon's timer every
// store.commit_interval ms). Reads see pending and in-flight writes first, then LMDB. A full
// map is grown and the commit retried. Tests inject commit failures with set_fault().
//
// Thread-safety: everything but the writer thread runs on the loop thread.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <thread>
#include <vector>

#include "evert/result.h"

struct MDB_env;

namespace evert::daemon {

inline constexpr int kSchemaVersion = 1;

struct StoreOptions {
  std::string dir;                  // the state directory; created if missing
  uint64_t map_size = 64ull << 20;  // initial map size
  std::vector<std::string> databases = {"meta", "torrents", "metainfo", "announce", "swarms",
                                        "peers", "counters", "history", "test",
                                        // the web module's accounts (docs/storage.md)
                                        "users", "sessions", "tokens",
                                        // the web module's uploads' owners
                                        "web"};
};

class Store {
 public:
  // Opens or creates the environment; fails when the directory cannot be used or the data
  // was written by a newer evertd (its schema version is higher than kSchemaVersion).
  static Result<std::unique_ptr<Store>> open(const StoreOptions& options);
  ~Store();  // commits what is pending, blocking
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Queue a change; it is durable after the next commit completes.
  void put(const std::string& db, std::string key, std::string value);
  void del(const std::string& db, std::string key);

  // The value of `key`, counting changes not yet committed.
  [[nodiscard]] std::optional<std::string> get(const std::string& db, const std::string& key);
  // Every committed and pending entry of `db` whose key starts with `prefix`, in key order.
  void for_each(const std::string& db, const std::string& prefix,
                const std::function<void(const std::string& key, const std::string& value)>& fn);

  // Hands the pending batch to the writer thread; `done` (if given) runs on the writer thread
  // with the result. Returns at once.
  void commit(std::function<void(const Status&)> done = {});
  // Commits everything pending and waits for it (shutdown, tests).
  Status flush();

  // The number of changes not yet durable.
  [[nodiscard]] size_t pending() const;
  [[nodiscard]] uint64_t map_size() const;
  // Tests: called before each commit; a non-zero LMDB error code makes the commit fail with it
  // (the batch is kept and retried at the next commit).
  void set_fault(std::function<int()> fault);
  // Drops the mapped database file's pages from this process's resident memory (they are read
  // again from the page cache when next used): after work that read many rows once, such as
  // start-up, so that an idle daemon holds only what idle torrents need.
  void release_mapped();

 private:
  struct Change {
    std::optional<std::string> value;  // nullopt: delete
  };
  using Batch = std::map<std::pair<std::string, std::string>, Change>;

  Store() = default;
  Status write_batch(const Batch& batch);
  void release_mapped_pages(const Batch& batch);
  void writer_main();
  [[nodiscard]] unsigned dbi(const std::string& name) const;

  MDB_env* env_ = nullptr;
  std::map<std::string, unsigned> dbis_;
  uint64_t map_size_ = 0;
  std::function<int()> fault_;

  mutable std::mutex mu_;  // guards the batches and the queue
  Batch pending_;
  Batch inflight_;  // handed to the writer, not yet committed
  std::vector<std::function<void(const Status&)>> waiters_;
  bool commit_requested_ = false;
  bool stopping_ = false;
  bool writing_ = false;
  std::condition_variable cv_;
  std::string data_file_;        // " /abs/path/data.mdb", as /proc/self/maps ends its line
  std::shared_mutex resize_mu_;  // LMDB may only grow the map with no transaction open
  std::thread writer_;
};

}  // namespace evert::daemon
