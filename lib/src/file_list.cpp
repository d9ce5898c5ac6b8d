#include "evert/file_list.h"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>
#include <utility>

#include "evert/metainfo.h"

namespace evert {

uint64_t ScanResult::total_size() const {
  uint64_t n = 0;
  for (const auto& f : files)
    n += f.size;
  return n;
}

namespace {

std::string errno_text(const std::string& path, const char* what) {
  return path + ": " + what + ": " + std::strerror(errno);
}

class Scanner {
 public:
  Scanner(const ScanOptions& options, ScanResult& out) : options_(options), out_(out) {}

  // Walks the folder `dir` (already stat'ed as `st`); `rel` is its path inside the torrent.
  Status walk(const std::string& dir, const struct stat& st, std::vector<std::string>& rel) {
    if (!visiting_.insert({st.st_dev, st.st_ino}).second) {
      return Error(dir + ": symbolic link loop (this folder is already being listed)");
    }
    DIR* d = opendir(dir.c_str());
    if (d == nullptr) return Error(errno_text(dir, "cannot list folder"));
    std::vector<std::string> names;
    errno = 0;
    while (dirent* e = readdir(d)) {
      const std::string n = e->d_name;
      if (n != "." && n != "..") names.push_back(n);
    }
    const int read_errno = errno;
    closedir(d);
    if (read_errno != 0) {
      errno = read_errno;
      return Error(errno_text(dir, "cannot list folder"));
    }
    std::sort(names.begin(), names.end());
    for (const auto& n : names) {
      auto st_entry = entry(dir, n, rel);
      if (!st_entry) return st_entry;
    }
    visiting_.erase({st.st_dev, st.st_ino});
    return Ok{};
  }

 private:
  Status entry(const std::string& dir, const std::string& name, std::vector<std::string>& rel) {
    const std::string full = dir + "/" + name;
    if (!options_.include_hidden && name[0] == '.') return Ok{};
    if (std::string why = check_path_component(name); !why.empty()) {
      out_.warnings.push_back(full + ": skipped: " + why);
      return Ok{};
    }
    struct stat st {};
    if (lstat(full.c_str(), &st) != 0) return Error(errno_text(full, "cannot stat"));
    if (S_ISLNK(st.st_mode)) {
      if (!options_.follow_symlinks) {
        out_.warnings.push_back(full + ": skipped: symbolic link (--follow-symlinks to follow)");
        return Ok{};
      }
      if (stat(full.c_str(), &st) != 0) {
        out_.warnings.push_back(errno_text(full, "skipped: broken symbolic link"));
        return Ok{};
      }
    }
    rel.push_back(name);
    Status s = Ok{};
    if (S_ISDIR(st.st_mode)) {
      s = walk(full, st, rel);
    } else if (S_ISREG(st.st_mode)) {
      if (out_.files.size() >= options_.max_files) {
        s = Error(full + ": more than " + std::to_string(options_.max_files) + " files");
      } else {
        out_.files.push_back(
            InputFile{full, rel, static_cast<uint64_t>(st.st_size), (st.st_mode & S_IXUSR) != 0});
      }
    } else {
      out_.warnings.push_back(full + ": skipped: not a regular file or folder");
    }
    rel.pop_back();
    return s;
  }

  const ScanOptions& options_;
  ScanResult& out_;
  std::set<std::pair<dev_t, ino_t>> visiting_;
};

std::string last_component(std::string path) {
  while (path.size() > 1 && path.back() == '/')
    path.pop_back();
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

}  // namespace

Result<ScanResult> scan_path(const std::string& path, const ScanOptions& options) {
  ScanResult out;
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return Error(errno_text(path, "cannot read"));
  out.name = last_component(path);
  if (out.name == "." || out.name == ".." || out.name == "/") {
    char resolved[PATH_MAX];
    if (realpath(path.c_str(), resolved) == nullptr) return Error(errno_text(path, "realpath"));
    out.name = last_component(resolved);
  }
  if (std::string why = check_path_component(out.name); !why.empty()) {
    return Error(path + ": cannot be a torrent name: " + why);
  }
  if (S_ISREG(st.st_mode)) {
    out.single_file = true;
    out.files.push_back(
        InputFile{path, {}, static_cast<uint64_t>(st.st_size), (st.st_mode & S_IXUSR) != 0});
  } else if (S_ISDIR(st.st_mode)) {
    std::vector<std::string> rel;
    Scanner scanner(options, out);
    if (auto s = scanner.walk(path, st, rel); !s) return s.error();
    // Sorting each folder's names is not enough: "a/b" must sort as the components
    // {"a","b"}, which the per-folder walk already yields; sort again for certainty.
    std::stable_sort(out.files.begin(), out.files.end(),
                     [](const InputFile& a, const InputFile& b) { return a.path < b.path; });
  } else {
    return Error(path + ": not a regular file or folder");
  }
  if (out.files.empty()) return Error(path + ": no files to share (the folder is empty)");
  if (out.total_size() == 0) return Error(path + ": nothing to share (every file is empty)");
  return out;
}

}  // namespace evert
