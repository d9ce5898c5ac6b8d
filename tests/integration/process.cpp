#include "process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

namespace evert::test {

namespace {

std::vector<char*> c_argv(const std::vector<std::string>& argv) {
  std::vector<char*> v;
  for (const auto& a : argv)
    v.push_back(const_cast<char*>(a.c_str()));
  v.push_back(nullptr);
  return v;
}

int decode_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

void redirect(int target, const std::string& path) {
  const int fd = open(path.empty() ? "/dev/null" : path.c_str(),
                      target == 0 ? O_RDONLY : (O_WRONLY | O_CREAT | O_TRUNC), 0644);
  if (fd >= 0) {
    dup2(fd, target);
    close(fd);
  }
}

}  // namespace

ProcessResult run_process(const std::vector<std::string>& argv, int timeout_ms) {
  ProcessResult r;
  int out_pipe[2], err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0 || pipe2(err_pipe, O_CLOEXEC) != 0) return r;
  auto args = c_argv(argv);
  const pid_t pid = fork();
  if (pid == 0) {
    redirect(0, "");
    dup2(out_pipe[1], 1);
    dup2(err_pipe[1], 2);
    execvp(args[0], args.data());
    _exit(127);
  }
  close(out_pipe[1]);
  close(err_pipe[1]);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  int open_fds = 2;
  char buf[65536];
  while (open_fds > 0) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                          deadline - std::chrono::steady_clock::now())
                          .count();
    if (left <= 0) {
      r.timed_out = true;
      kill(pid, SIGKILL);
      break;
    }
    if (poll(fds, 2, static_cast<int>(left)) <= 0) continue;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      const ssize_t n = read(fds[i].fd, buf, sizeof buf);
      if (n > 0) {
        (i == 0 ? r.out : r.err).append(buf, static_cast<size_t>(n));
      } else {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  for (auto& f : fds) {
    if (f.fd >= 0) close(f.fd);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  r.exit_code = decode_status(status);
  return r;
}

int spawn_process(const std::vector<std::string>& argv, const std::string& stdout_path,
                  const std::string& stderr_path, const std::vector<std::string>& extra_env) {
  auto args = c_argv(argv);
  const pid_t pid = fork();
  if (pid == 0) {
    for (const auto& e : extra_env)
      putenv(const_cast<char*>(e.c_str()));
    redirect(0, "");
    redirect(1, stdout_path);
    redirect(2, stderr_path);
    execvp(args[0], args.data());
    _exit(127);
  }
  return pid;
}

int wait_process(int pid, int timeout_ms, bool* timed_out) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  int status = 0;
  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      if (timed_out != nullptr) *timed_out = true;
      return decode_status(status);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (timed_out != nullptr) *timed_out = false;
  return decode_status(status);
}

}  // namespace evert::test
