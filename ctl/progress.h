// A one-line progress bar on stderr: percentage, bytes, rate and ETA. Disabled (prints
// nothing) when stderr is not a terminal or the user asked for quiet.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace evert::ctl {

class ProgressBar {
 public:
  ProgressBar(std::string label, bool enabled);
  ~ProgressBar();

  // Redraws the bar; cheap to call often (redraws at most ten times a second).
  void update(uint64_t done, uint64_t total);
  // Clears the line (the caller prints its own summary).
  void finish();

  // "1:02:03" / "2:03" for an ETA or elapsed time.
  static std::string format_duration(double seconds);

 private:
  using Clock = std::chrono::steady_clock;
  std::string label_;
  bool enabled_;
  bool drawn_ = false;
  Clock::time_point start_ = Clock::now();
  Clock::time_point last_draw_{};
};

}  // namespace evert::ctl
