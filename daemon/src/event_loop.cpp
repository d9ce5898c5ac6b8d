#include "evert/daemon/event_loop.h"

#include <event2/event.h>
#include <event2/thread.h>

#include <atomic>
#include <cstdio>
#include <exception>
#include <stdexcept>

namespace evert::daemon {

namespace {
timeval to_timeval(std::chrono::milliseconds ms) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(ms.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>(ms.count() % 1000 * 1000);
  return tv;
}

std::function<void(const char*, const char*)>& error_handler() {
  static std::function<void(const char*, const char*)> h;
  return h;
}
std::atomic<uint64_t> g_errors{0};

}  // namespace

void report_callback_error(const char* where, const char* what) noexcept {
  g_errors.fetch_add(1, std::memory_order_relaxed);
  try {
    if (error_handler()) {
      error_handler()(where, what);
      return;
    }
    std::fprintf(stderr, "evertd: %s failed and was stopped: %s\n", where, what);
  } catch (...) {
    std::fputs("evertd: a callback failed and was stopped\n", stderr);
  }
}

void set_callback_error_handler(std::function<void(const char*, const char*)> handler) {
  error_handler() = std::move(handler);
}

uint64_t callback_errors() {
  return g_errors.load(std::memory_order_relaxed);
}

EventLoop::EventLoop() {
  // post() activates an event from other threads, which libevent allows once it knows about
  // pthreads.
  static const int kThreads = evthread_use_pthreads();
  (void)kThreads;
  base_ = event_base_new();
  if (base_ == nullptr) throw std::runtime_error("event_base_new failed");
  wakeup_ = event_new(base_, -1, EV_PERSIST, &EventLoop::drain, this);
  // An event with no fd and no timeout stays pending until activated by post().
  event_add(wakeup_, nullptr);
}

EventLoop::~EventLoop() {
  event_free(wakeup_);
  event_base_free(base_);
}

bool EventLoop::run() {
  return event_base_loop(base_, EVLOOP_NO_EXIT_ON_EMPTY) >= 0;
}

void EventLoop::stop() {
  event_base_loopbreak(base_);
}

void EventLoop::post(std::function<void()> fn) {
  {
    std::lock_guard lock(mu_);
    posted_.push_back(std::move(fn));
  }
  event_active(wakeup_, EV_READ, 0);
}

void EventLoop::drain(int, short, void* self) {
  auto* loop = static_cast<EventLoop*>(self);
  std::vector<std::function<void()>> batch;
  {
    std::lock_guard lock(loop->mu_);
    batch.swap(loop->posted_);
  }
  for (auto& fn : batch)
    guarded("a posted function", fn);
}

Timer::Timer(EventLoop& loop, std::function<void()> callback) : callback_(std::move(callback)) {
  ev_ = event_new(loop.base(), -1, 0, &Timer::fire, this);
}

Timer::~Timer() {
  event_free(ev_);
}

void Timer::start(std::chrono::milliseconds interval, bool repeat) {
  repeat_ = repeat;
  event_del(ev_);
  event_assign(ev_, event_get_base(ev_), -1, repeat ? EV_PERSIST : 0, &Timer::fire, this);
  const timeval tv = to_timeval(interval);
  event_add(ev_, &tv);
}

void Timer::stop() {
  event_del(ev_);
}

bool Timer::active() const {
  return event_pending(ev_, EV_TIMEOUT, nullptr) != 0;
}

void Timer::fire(int, short, void* self) {
  auto* t = static_cast<Timer*>(self);
  guarded("a timer", [t] { t->callback_(); });
}

FdWatcher::FdWatcher(EventLoop& loop, int fd, short events, std::function<void(short)> callback)
    : callback_(std::move(callback)) {
  ev_ = event_new(loop.base(), fd, static_cast<short>(events | EV_PERSIST), &FdWatcher::fire, this);
  event_add(ev_, nullptr);
}

FdWatcher::~FdWatcher() {
  event_free(ev_);
}

void FdWatcher::stop() {
  event_del(ev_);
}

void FdWatcher::start() {
  event_add(ev_, nullptr);
}

void FdWatcher::fire(int, short what, void* self) {
  auto* w = static_cast<FdWatcher*>(self);
  guarded("a socket watcher", [w, what] { w->callback_(what); });
}

}  // namespace evert::daemon
