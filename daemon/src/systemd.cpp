#include "evert/daemon/systemd.h"

#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <time.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace evert::daemon::systemd {

void notify(const std::string& state) {
  sd_notify(0, state.c_str());
}

void notify_reloading() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  const uint64_t usec = static_cast<uint64_t>(ts.tv_sec) * 1'000'000 + ts.tv_nsec / 1000;
  notify("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(usec));
}

std::chrono::microseconds watchdog_interval() {
  uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) <= 0) return std::chrono::microseconds(0);
  return std::chrono::microseconds(usec);
}

std::map<std::string, int> listen_fds() {
  std::map<std::string, int> out;
  char** names = nullptr;
  const int n = sd_listen_fds_with_names(1, &names);
  for (int i = 0; i < n; ++i) {
    out[names != nullptr && names[i] != nullptr ? names[i] : "unknown"] = SD_LISTEN_FDS_START + i;
  }
  if (names != nullptr) {
    for (int i = 0; i < n; ++i)
      free(names[i]);
    free(names);
  }
  return out;
}

bool stderr_is_journal() {
  const char* e = std::getenv("JOURNAL_STREAM");
  if (e == nullptr) return false;
  struct stat st {};
  if (fstat(2, &st) != 0) return false;
  unsigned long dev = 0, ino = 0;
  if (std::sscanf(e, "%lu:%lu", &dev, &ino) != 2) return false;
  return dev == st.st_dev && ino == st.st_ino;
}

}  // namespace evert::daemon::systemd
