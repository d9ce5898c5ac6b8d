#include "progress.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "evert/units.h"

namespace evert::ctl {

ProgressBar::ProgressBar(std::string label, bool enabled)
    : label_(std::move(label)), enabled_(enabled) {}

ProgressBar::~ProgressBar() {
  finish();
}

std::string ProgressBar::format_duration(double seconds) {
  const auto s = static_cast<long>(seconds + 0.5);
  char buf[32];
  if (s >= 3600) {
    std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%ld:%02ld", s / 60, s % 60);
  }
  return buf;
}

void ProgressBar::update(uint64_t done, uint64_t total) {
  if (!enabled_) return;
  const auto now = Clock::now();
  if (drawn_ && done < total && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const double rate = elapsed > 0 ? static_cast<double>(done) / elapsed : 0;
  const double fraction = total > 0 ? static_cast<double>(done) / static_cast<double>(total) : 1;
  std::string eta = "--:--";
  if (rate > 0 && done < total) eta = format_duration(static_cast<double>(total - done) / rate);
  if (done >= total) eta = format_duration(elapsed);

  winsize ws{};
  int columns = 80;
  if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) columns = ws.ws_col;
  char tail[96];
  std::snprintf(tail, sizeof tail, " %3d%%  %s/s  %s %s", static_cast<int>(fraction * 100),
                format_size(static_cast<uint64_t>(rate)).c_str(), done >= total ? "in" : "ETA",
                eta.c_str());
  const int width =
      std::clamp(columns - static_cast<int>(label_.size() + std::string(tail).size()) - 4, 10, 50);
  const int filled = static_cast<int>(fraction * width);
  std::string bar(static_cast<size_t>(filled), '#');
  bar.append(static_cast<size_t>(width - filled), '.');
  std::fprintf(stderr, "\r%s [%s]%s\033[K", label_.c_str(), bar.c_str(), tail);
  std::fflush(stderr);
  drawn_ = true;
}

void ProgressBar::finish() {
  if (enabled_ && drawn_) {
    std::fprintf(stderr, "\r\033[K");
    std::fflush(stderr);
  }
  drawn_ = false;
}

}  // namespace evert::ctl
