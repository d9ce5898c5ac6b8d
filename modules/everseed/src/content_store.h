// The content store: published data lives in state_dir/content/<hex key>/<name>[/<path>], the
// same layout as the web seed's URLs (DESIGN.md), read-only once published.
//
// A publish copies the files evertctl handed over (open descriptors) into a fresh folder
// `.incoming-<job>` (reflink where the filesystem can, else copy_file_range, else read/write:
// one pass over the source), then hashes the copy, so the hashes are always those of the bytes
// the daemon keeps, whatever the publisher does to the original meanwhile. A web upload is
// written into `.incoming-upload-<n>` instead and synced (sync_files()) before it is hashed.
// When hashed, the folder becomes `.staged-<hex>` (read-only, synced); after the torrent's row
// is committed to the store it is moved to `<hex>` (move_into_place()), the commit point being
// the store's commit. One publish of a given torrent at a time gets this far (the publisher
// makes the others wait), so `.staged-<hex>` and `<hex>` have one writer. At start-up,
// `.incoming-*` folders are removed (publishes interrupted before they were acknowledged), and
// `.staged-<hex>` folders are finished when the store has the torrent and no `<hex>` exists,
// removed otherwise. Deleting a torrent's data renames its folder `.deleting-<hex>-<n>` at once
// (the same torrent published again gets a fresh folder) and removes it on a worker; start-up
// finishes that too.
//
// Thread-safety: the copying and removing functions block and run on worker threads; they touch
// only the folders they are given.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "evert/file_list.h"
#include "evert/result.h"
#include "evert/unique_fd.h"

namespace evert::everseed {

// A file handed over by a publisher.
struct IncomingFile {
  std::vector<std::string> path;  // components below the torrent's folder; empty: single file
  uint64_t size = 0;              // as the publisher saw it; checked
  bool executable = false;
  UniqueFd fd;
};

class ContentStore {
 public:
  explicit ContentStore(std::string dir) : dir_(std::move(dir)) {}

  [[nodiscard]] const std::string& dir() const { return dir_; }
  // Creates the folder; cleans up after interrupted publishes (see above). `published(hex)`
  // says whether the store has the torrent. Returns what it did, for the log.
  Result<std::vector<std::string>> prepare(
      const std::function<bool(const std::string&)>& published);

  [[nodiscard]] std::string incoming_dir(uint64_t job) const;
  // A folder for an upload being received (the web module), removed at start-up like
  // `.incoming-*` when the upload never became a publish.
  [[nodiscard]] std::string upload_dir(uint64_t upload) const;
  [[nodiscard]] std::string staged_dir(const std::string& hex) const;
  [[nodiscard]] std::string final_dir(const std::string& hex) const;
  // Where move_into_place() puts the folder it replaces: removed like `.deleting-*`.
  [[nodiscard]] std::string aside_dir(const std::string& hex, uint64_t job) const;
  // Takes a published torrent's folder out of the way (a rename; missing is fine) and returns
  // where it went, for remove_tree() on a worker; empty when there was nothing to remove.
  Result<std::string> retire(const std::string& hex);

  // Blocking. Copies `files` into `into`/`name`[/path], checking each source is a regular file
  // of the announced size, that the disk has room, and `cancel` between chunks. Returns the
  // copied files as a ScanResult to hash. On failure `into` is removed.
  static Result<ScanResult> copy_in(const std::string& name, std::vector<IncomingFile>& files,
                                    const std::string& into, std::atomic<uint64_t>& done,
                                    const std::atomic<bool>& cancel);
  // Blocking. Makes `from` read-only (files 0444, folders 0555), syncs it and renames it `to`.
  static Status seal(const std::string& from, const std::string& to);
  // Blocking. Renames and syncs the parent folder.
  static Status rename_synced(const std::string& from, const std::string& to);
  // Blocking. fdatasync()s every regular file below `dir` (links are not followed), for data
  // written by others (web uploads) before it is sealed; seal() syncs the folders. Errors name
  // the file.
  static Status sync_files(const std::string& dir);
  // Blocking. Moves a sealed folder `staged` to `to`. A folder already at `to` (data of an
  // earlier publish of the same torrent: left by an unpublish, or damaged) is first renamed
  // `aside` and removed after the move. The parent folder is synced after each rename: a crash
  // in between leaves `staged` and no `to`, which prepare() finishes.
  static Status move_into_place(const std::string& staged, const std::string& to,
                                const std::string& aside);
  // Blocking. Removes a tree, read-only parts included. Missing is fine.
  static Status remove_tree(const std::string& path);

 private:
  std::string dir_;
  uint64_t retired_ = 0;
};

}  // namespace evert::everseed
