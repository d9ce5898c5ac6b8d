// Running a program for a test: argv in, exit status and captured output out. No shell, so
// paths with spaces need no quoting. Bounded: a program still running after the timeout is
// killed (SIGKILL) and reported as such.
#pragma once

#include <string>
#include <vector>

namespace evert::test {

struct ProcessResult {
  int exit_code = -1;  // exit status, or 128 + signal when killed by one
  bool timed_out = false;
  std::string out;  // standard output
  std::string err;  // standard error
};

// Runs argv[0] (looked up in PATH) with the arguments; stdin is /dev/null.
ProcessResult run_process(const std::vector<std::string>& argv, int timeout_ms = 60'000);

// Starts argv without waiting; returns the pid (stdout/stderr to /dev/null unless paths given;
// extra_env entries are "NAME=value").
int spawn_process(const std::vector<std::string>& argv, const std::string& stdout_path = "",
                  const std::string& stderr_path = "",
                  const std::vector<std::string>& extra_env = {});
// Waits (bounded) for a spawned process; returns its exit code as run_process does.
int wait_process(int pid, int timeout_ms, bool* timed_out = nullptr);

}  // namespace evert::test
