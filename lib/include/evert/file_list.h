// Turning a path on disk into the ordered list of files a torrent will contain.
//
// Policy (also in evertctl(1)):
//  - Order: files sorted bytewise by their path components, the order of the v2 file tree, so
//    the same folder always gives the same torrent.
//  - Hidden files (a component starting with '.') are included unless include_hidden is false:
//    publishing a folder publishes all of it.
//  - Symbolic links below the top path are skipped with a warning unless follow_symlinks is
//    set; then links to files and folders are followed, and a folder reached twice (a loop) is
//    an error. The top path itself is always followed: the user named it.
//  - Empty files are included (they are part of the folder); empty folders cannot be expressed
//    in a torrent and are left out. Sockets, FIFOs and devices are skipped with a warning.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "evert/result.h"

namespace evert {

struct InputFile {
  std::string disk_path;          // where to read it
  std::vector<std::string> path;  // components inside the torrent's folder (empty: single file)
  uint64_t size = 0;
  bool executable = false;
};

struct ScanOptions {
  bool include_hidden = true;
  bool follow_symlinks = false;
  size_t max_files = 1'000'000;
};

struct ScanResult {
  std::string name;  // the torrent's name: the last component of the path
  bool single_file = false;
  std::vector<InputFile> files;
  std::vector<std::string> warnings;  // things skipped, for the user
  [[nodiscard]] uint64_t total_size() const;
};

// Lists what a torrent of `path` contains. Errors name the path and the cause (missing,
// unreadable, nothing to share, too many files, a symlink loop).
Result<ScanResult> scan_path(const std::string& path, const ScanOptions& options = {});

}  // namespace evert
