// A small pool of threads for blocking work (hashing, cold disk reads, fsync). Results go back
// to the loop with EventLoop::post().
//
// Thread-safety: submit() from any thread. The destructor finishes queued work, then joins.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace evert::daemon {

class WorkerPool {
 public:
  explicit WorkerPool(int threads);
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  void submit(std::function<void()> job);
  // Stops taking jobs, runs those queued, joins the threads. Idempotent.
  void shutdown();
  [[nodiscard]] size_t size() const { return threads_.size(); }

 private:
  void run();
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace evert::daemon
