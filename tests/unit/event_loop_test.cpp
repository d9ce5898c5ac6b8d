#include "evert/daemon/event_loop.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "evert/daemon/worker_pool.h"

namespace evert::daemon {
namespace {

TEST(EventLoop, PostFromWorkersRunsOnTheLoopThread) {
  EventLoop loop;
  WorkerPool pool(3);
  const auto loop_thread = std::this_thread::get_id();
  std::atomic<int> done{0};
  bool all_on_loop = true;
  for (int i = 0; i < 100; ++i) {
    pool.submit([&] {
      loop.post([&] {
        all_on_loop = all_on_loop && std::this_thread::get_id() == loop_thread;
        if (++done == 100) loop.stop();
      });
    });
  }
  Timer guard(loop, [&] { loop.stop(); });  // bounded: never hang the suite
  guard.start(std::chrono::seconds(10), false);
  ASSERT_TRUE(loop.run());
  EXPECT_EQ(done.load(), 100);
  EXPECT_TRUE(all_on_loop);
}

TEST(EventLoop, TimersRepeatAndStop) {
  EventLoop loop;
  int ticks = 0;
  Timer repeat(loop, [&] {
    if (++ticks == 3) loop.stop();
  });
  repeat.start(std::chrono::milliseconds(1), true);
  EXPECT_TRUE(repeat.active());
  Timer guard(loop, [&] { loop.stop(); });
  guard.start(std::chrono::seconds(10), false);
  loop.run();
  EXPECT_EQ(ticks, 3);
  repeat.stop();
  EXPECT_FALSE(repeat.active());
}

TEST(FdWatcher, StopsAndStartsAgainFromItsOwnCallback) {
  EventLoop loop;
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  ASSERT_EQ(::write(fds[1], "x", 1), 1);  // readable until read, so a watcher fires each turn
  int fired = 0;
  std::unique_ptr<FdWatcher> w;
  Timer restart(loop, [&] { w->start(); });
  w = std::make_unique<FdWatcher>(loop, fds[0], FdWatcher::kRead, [&](short) {
    ++fired;
    w->stop();
    if (fired == 1) w->start();  // at once: fires again on the next turn
    if (fired == 2) restart.start(std::chrono::milliseconds(20), false);
    if (fired == 3) loop.stop();
  });
  Timer guard(loop, [&] { loop.stop(); });
  guard.start(std::chrono::seconds(10), false);
  loop.run();
  EXPECT_EQ(fired, 3);
  w.reset();
  ::close(fds[0]);
  ::close(fds[1]);
}

TEST(EventLoop, AnExceptionInACallbackIsReportedAndTheLoopGoesOn) {
  // STYLE.md §7: no exception escapes a callback; before, one thrown from a timer, a watcher or a
  // posted function reached libevent's C frames and std::terminate ended the daemon.
  std::vector<std::string> told;
  set_callback_error_handler([&](const char* where, const char* what) {
    told.push_back(std::string(where) + ": " + what);
  });
  const uint64_t before = callback_errors();
  EventLoop loop;
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  ASSERT_EQ(::write(fds[1], "x", 1), 1);
  std::unique_ptr<FdWatcher> w;
  w = std::make_unique<FdWatcher>(loop, fds[0], FdWatcher::kRead, [&](short) {
    w->stop();
    throw std::runtime_error("from a watcher");
  });
  Timer bad(loop, [] { throw std::runtime_error("from a timer"); });
  bad.start(std::chrono::milliseconds(1), false);
  loop.post([] { throw 42; });
  int after = 0;
  Timer good(loop, [&] {
    ++after;
    loop.stop();
  });
  good.start(std::chrono::milliseconds(30), false);
  Timer guard(loop, [&] { loop.stop(); });
  guard.start(std::chrono::seconds(10), false);
  loop.run();
  set_callback_error_handler(nullptr);
  EXPECT_EQ(after, 1);
  EXPECT_EQ(callback_errors() - before, 3U);
  std::sort(told.begin(), told.end());
  ASSERT_EQ(told.size(), 3U);
  EXPECT_EQ(told[0], "a posted function: an exception that is not a std::exception");
  EXPECT_EQ(told[1], "a socket watcher: from a watcher");
  EXPECT_EQ(told[2], "a timer: from a timer");
  w.reset();
  ::close(fds[0]);
  ::close(fds[1]);
}

TEST(WorkerPool, ShutdownRunsQueuedJobs) {
  std::atomic<int> n{0};
  {
    WorkerPool pool(2);
    for (int i = 0; i < 50; ++i)
      pool.submit([&] { ++n; });
    pool.shutdown();
  }
  EXPECT_EQ(n.load(), 50);
}

}  // namespace
}  // namespace evert::daemon
