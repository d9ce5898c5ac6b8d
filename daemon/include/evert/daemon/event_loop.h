// The daemon's one event loop (STYLE.md §4): it owns the libevent event_base; everything else
// gets timers and socket watchers through these small wrappers, and work finished on another
// thread comes back with post().
//
// Thread-safety: post() and stop() may be called from any thread; everything else only from
// the loop thread.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

struct event_base;
struct event;

namespace evert::daemon {

// No exception escapes a callback of the loop (a timer, a socket watcher, a posted function):
// each is caught where libevent calls in, told to this handler (the daemon logs it as an error
// and counts it; by default it goes to standard error), and the loop goes on. The modules catch
// at their own boundaries first (a request gets a 500, a connection is dropped); this is the last
// resort that keeps one bad request from ending the daemon and every torrent with it.
void set_callback_error_handler(std::function<void(const char* where, const char* what)> handler);
uint64_t callback_errors();  // how many were caught since start
// Tells the handler (and counts) that the callback `where` threw `what`.
void report_callback_error(const char* where, const char* what) noexcept;

// Runs fn, catching and reporting any exception as above; `where` names the callback.
template <class F>
void guarded(const char* where, F&& fn) noexcept {
  try {
    fn();
  } catch (const std::exception& e) {
    report_callback_error(where, e.what());
  } catch (...) {
    report_callback_error(where, "an exception that is not a std::exception");
  }
}

class EventLoop;

// A repeating or one-shot timer; stops when destroyed.
class Timer {
 public:
  Timer(EventLoop& loop, std::function<void()> callback);
  ~Timer();
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;

  void start(std::chrono::milliseconds interval, bool repeat);
  void stop();
  [[nodiscard]] bool active() const;

 private:
  static void fire(int, short, void* self);
  std::function<void()> callback_;
  event* ev_ = nullptr;
  bool repeat_ = false;
};

// Readiness of one file descriptor; stops watching when destroyed. Does not own the fd.
class FdWatcher {
 public:
  enum Events : short { kRead = 0x02, kWrite = 0x04 };  // EV_READ, EV_WRITE
  FdWatcher(EventLoop& loop, int fd, short events, std::function<void(short)> callback);
  ~FdWatcher();
  FdWatcher(const FdWatcher&) = delete;
  FdWatcher& operator=(const FdWatcher&) = delete;
  // Stops watching (before the fd is closed), also from inside its own callback.
  void stop();
  // Watches again after stop(); does nothing when already watching. Also from inside its own
  // callback, which a watcher must not be destroyed in: stop it and start it again instead.
  void start();

 private:
  static void fire(int, short what, void* self);
  std::function<void(short)> callback_;
  event* ev_ = nullptr;
};

class EventLoop {
 public:
  EventLoop();
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // Runs until stop(). Returns false if libevent failed.
  bool run();
  // Makes run() return after the current callbacks. Any thread.
  void stop();
  // Runs `fn` on the loop thread soon. Any thread; the way worker threads hand results back.
  void post(std::function<void()> fn);

  [[nodiscard]] event_base* base() const { return base_; }

 private:
  static void drain(int, short, void* self);
  event_base* base_ = nullptr;
  event* wakeup_ = nullptr;
  std::mutex mu_;
  std::vector<std::function<void()>> posted_;
};

}  // namespace evert::daemon
