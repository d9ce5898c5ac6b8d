// Background checks that published files are still as they were published (catalog.h, "stamps"):
// every torrent once at start-up, and each torrent being served every everseed.check_interval.
// The stat() calls run on the worker pool, a batch at a time, so neither start-up nor the loop
// waits for the disk however many torrents there are (DESIGN.md, "Every torrent, forever").
//
// Thread-safety: loop thread only. Results come back with EventLoop::post(); a check finishing
// after the DataCheck is gone is ignored.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

#include "catalog.h"
#include "evert/daemon/event_loop.h"
#include "evert/daemon/worker_pool.h"

namespace evert::everseed {

class DataCheck {
 public:
  // `on_problem(key, why)` runs on the loop for each torrent whose files changed.
  using OnProblem = std::function<void(const InfoHash& key, const std::string& why)>;
  DataCheck(daemon::EventLoop& loop, daemon::WorkerPool& workers, Catalog& catalog,
            OnProblem on_problem);
  ~DataCheck();
  DataCheck(const DataCheck&) = delete;
  DataCheck& operator=(const DataCheck&) = delete;

  // Checks every torrent of the catalog with recorded stamps, kBatch at a time (start-up).
  void check_all();
  // Checks one torrent's files now, unless a check of it is running.
  void check(const InfoHash& key, std::vector<FileStamp> stamps);

  [[nodiscard]] bool idle() const {
    return pending_.empty() && !batch_running_ && running_.empty();
  }

  static constexpr size_t kBatch = 64;

 private:
  void next_batch();
  void report(const InfoHash& key, const std::string& why, const std::vector<FileStamp>& checked);

  daemon::EventLoop& loop_;
  daemon::WorkerPool& workers_;
  Catalog& catalog_;
  OnProblem on_problem_;
  std::vector<InfoHash> pending_;  // the start-up walk, in reverse
  bool batch_running_ = false;
  bool whole_pass_ = false;  // check_all()'s pass is running
  std::unordered_set<InfoHash, tracker::Id20Hash> running_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace evert::everseed
