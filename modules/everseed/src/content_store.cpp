#include "content_store.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "evert/metainfo.h"
#include "evert/units.h"

namespace evert::everseed {
namespace fs = std::filesystem;

namespace {

constexpr size_t kChunk = 16 << 20;  // bytes copied between progress updates and cancel checks

std::string joined(const std::vector<std::string>& path) {
  std::string out;
  for (const auto& c : path)
    out += (out.empty() ? "" : "/") + c;
  return out;
}

Error io_error(const std::string& what, int err, const std::string& store) {
  if (err == ENOSPC || err == EDQUOT) {
    return Error("the content store's disk is full (" + store + "): " + what);
  }
  return Error(what + ": " + std::strerror(err));
}

Status sync_dir(const std::string& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid() || ::fsync(fd.get()) != 0) return Error(dir + ": sync: " + std::strerror(errno));
  return Ok{};
}

// Copies `size` bytes from `in` to `out`: a reflink, else copy_file_range, else read/write.
Status copy_fd(int in, int out, uint64_t size, const std::string& label, const std::string& store,
               std::atomic<uint64_t>& done, const std::atomic<bool>& cancel) {
  if (size == 0) return Ok{};
  if (::ioctl(out, FICLONE, in) == 0) {
    done += size;
    return Ok{};
  }
  loff_t off_in = 0;
  loff_t off_out = 0;
  bool use_read = false;
  std::string buf;
  while (static_cast<uint64_t>(off_in) < size) {
    if (cancel) return Error("cancelled");
    const size_t want = static_cast<size_t>(std::min<uint64_t>(kChunk, size - off_in));
    ssize_t n = -1;
    if (!use_read) {
      n = ::copy_file_range(in, &off_in, out, &off_out, want, 0);
      if (n < 0 && (errno == EXDEV || errno == EINVAL || errno == EOPNOTSUPP || errno == ENOSYS ||
                    errno == EBADF)) {
        use_read = true;
        continue;
      }
    } else {
      buf.resize(1 << 20);
      n = ::pread(in, buf.data(), std::min(want, buf.size()), off_in);
      if (n > 0) {
        for (ssize_t w = 0; w < n;) {
          const ssize_t r = ::pwrite(out, buf.data() + w, static_cast<size_t>(n - w), off_out + w);
          if (r < 0 && errno == EINTR) continue;
          if (r < 0) return io_error(label, errno, store);
          w += r;
        }
        off_in += n;
        off_out += n;
      }
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return io_error(label, errno, store);
    if (n == 0) return Error(label + ": became shorter while it was copied");
    done += static_cast<uint64_t>(n);
  }
  return Ok{};
}

}  // namespace

std::string ContentStore::upload_dir(uint64_t upload) const {
  return dir_ + "/.incoming-upload-" + std::to_string(upload) + "-" + std::to_string(::getpid());
}

std::string ContentStore::aside_dir(const std::string& hex, uint64_t job) const {
  return dir_ + "/.deleting-" + hex + "-publish-" + std::to_string(job) + "-" +
         std::to_string(::getpid());
}

std::string ContentStore::incoming_dir(uint64_t job) const {
  return dir_ + "/.incoming-" + std::to_string(job) + "-" + std::to_string(::getpid());
}
std::string ContentStore::staged_dir(const std::string& hex) const {
  return dir_ + "/.staged-" + hex;
}
std::string ContentStore::final_dir(const std::string& hex) const {
  return dir_ + "/" + hex;
}

Result<std::string> ContentStore::retire(const std::string& hex) {
  const std::string to = dir_ + "/.deleting-" + hex + "-" + std::to_string(++retired_);
  if (::rename(final_dir(hex).c_str(), to.c_str()) != 0) {
    if (errno == ENOENT) return std::string();
    return Error(final_dir(hex) + ": cannot remove it: " + std::strerror(errno));
  }
  return to;
}

Result<std::vector<std::string>> ContentStore::prepare(
    const std::function<bool(const std::string&)>& published) {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) return Error(dir_ + ": cannot create the content store: " + ec.message());
  std::vector<std::string> notes;
  std::vector<fs::path> entries;
  for (const auto& e : fs::directory_iterator(dir_, ec))
    entries.push_back(e.path());
  if (ec) return Error(dir_ + ": " + ec.message());
  for (const auto& p : entries) {
    const std::string name = p.filename().string();
    if (name.rfind(".incoming-", 0) == 0) {
      if (auto s = remove_tree(p.string()); !s) return s.error();
      notes.push_back("removed " + name + " (a publish interrupted before it was acknowledged)");
    } else if (name.rfind(".deleting-", 0) == 0) {
      if (auto s = remove_tree(p.string()); !s) return s.error();
      notes.push_back("removed " + name + " (the data of an unpublished torrent)");
    } else if (name.rfind(".staged-", 0) == 0) {
      const std::string hex = name.substr(8);
      if (published(hex) && !fs::exists(final_dir(hex))) {
        if (auto s = rename_synced(p.string(), final_dir(hex)); !s) return s.error();
        notes.push_back("finished moving " + hex + " into the content store");
      } else {
        if (auto s = remove_tree(p.string()); !s) return s.error();
        notes.push_back("removed " + name + " (not committed)");
      }
    }
  }
  return notes;
}

Result<ScanResult> ContentStore::copy_in(const std::string& name, std::vector<IncomingFile>& files,
                                         const std::string& into, std::atomic<uint64_t>& done,
                                         const std::atomic<bool>& cancel) {
  if (std::string why = check_path_component(name); !why.empty()) {
    return Error("invalid name '" + name + "': " + why);
  }
  if (files.empty()) return Error("nothing to publish: no files");
  const bool single = files.size() == 1 && files[0].path.empty();
  uint64_t total = 0;
  for (const auto& f : files) {
    if (!single && f.path.empty()) return Error("a file of a folder has no path");
    for (const auto& c : f.path) {
      if (std::string why = check_path_component(c); !why.empty()) {
        return Error("invalid path in '" + name + "': " + why);
      }
    }
    struct stat st {};
    if (::fstat(f.fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
      return Error(name + (f.path.empty() ? "" : "/" + joined(f.path)) + ": not a regular file");
    }
    if (static_cast<uint64_t>(st.st_size) != f.size) {
      return Error(name + (f.path.empty() ? "" : "/" + joined(f.path)) +
                   ": its size changed since it was listed");
    }
    total += f.size;
  }
  const std::string store = fs::path(into).parent_path().string();
  struct statvfs vfs {};
  if (::statvfs(store.c_str(), &vfs) == 0) {
    const uint64_t avail = static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
    if (avail < total) {
      return Error("not enough space in the content store (" + store + "): " + format_size(total) +
                   " needed, " + format_size(avail) + " free");
    }
  }
  if (::mkdir(into.c_str(), 0700) != 0) return io_error(into, errno, store);

  auto fail = [&into](Error e) -> Result<ScanResult> {
    if (auto s = remove_tree(into); !s) return Error(e.message + "; and " + s.error().message);
    return e;
  };
  ScanResult out;
  out.name = name;
  out.single_file = single;
  for (auto& f : files) {
    std::string dst = into + "/" + name;
    for (size_t i = 0; i < f.path.size(); ++i) {
      if (::mkdir(dst.c_str(), 0755) != 0 && errno != EEXIST) {
        return fail(io_error(dst, errno, store));
      }
      dst += "/" + f.path[i];
    }
    UniqueFd out_fd(::open(dst.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    if (!out_fd.valid()) return fail(io_error(dst, errno, store));
    const std::string label = name + (f.path.empty() ? "" : "/" + joined(f.path));
    if (auto s = copy_fd(f.fd.get(), out_fd.get(), f.size, label, store, done, cancel); !s) {
      return fail(s.error());
    }
    if (::fdatasync(out_fd.get()) != 0) return fail(io_error(dst, errno, store));
    f.fd.reset();  // the publisher's file is no longer needed
    InputFile in;
    in.disk_path = dst;
    in.path = f.path;
    in.size = f.size;
    in.executable = f.executable;
    out.files.push_back(std::move(in));
  }
  return out;
}

Status ContentStore::seal(const std::string& from, const std::string& to) {
  std::error_code ec;
  std::vector<fs::path> dirs;
  for (auto it = fs::recursive_directory_iterator(from, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    if (it->is_directory(ec)) {
      dirs.push_back(it->path());
    } else {
      struct stat st {};
      const bool exec = ::stat(it->path().c_str(), &st) == 0 && (st.st_mode & S_IXUSR) != 0;
      ::chmod(it->path().c_str(), exec ? 0555 : 0444);
    }
  }
  if (ec) return Error(from + ": " + ec.message());
  for (auto d = dirs.rbegin(); d != dirs.rend(); ++d) {
    if (auto s = sync_dir(d->string()); !s) return s;
    ::chmod(d->c_str(), 0555);
  }
  if (auto s = sync_dir(from); !s) return s;
  ::chmod(from.c_str(), 0555);
  return rename_synced(from, to);
}

Status ContentStore::rename_synced(const std::string& from, const std::string& to) {
  if (::rename(from.c_str(), to.c_str()) != 0) {
    return Error(from + " -> " + to + ": " + std::strerror(errno));
  }
  return sync_dir(fs::path(to).parent_path().string());
}

Status ContentStore::sync_files(const std::string& dir) {
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    if (!it->is_regular_file(ec) || it->is_symlink(ec)) continue;
    UniqueFd fd(::open(it->path().c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd.valid() || ::fdatasync(fd.get()) != 0) {
      return io_error(it->path().string() + ": sync", errno, dir);
    }
  }
  if (ec) return Error(dir + ": " + ec.message());
  return Ok{};
}

Status ContentStore::move_into_place(const std::string& staged, const std::string& to,
                                     const std::string& aside) {
  bool replaced = false;
  if (::rename(to.c_str(), aside.c_str()) == 0) {
    replaced = true;
    if (auto s = sync_dir(fs::path(to).parent_path().string()); !s) return s;
  } else if (errno != ENOENT) {
    return Error(to + ": cannot replace it: " + std::strerror(errno));
  }
  if (auto s = rename_synced(staged, to); !s) return s;
  if (replaced) return remove_tree(aside);
  return Ok{};
}

Status ContentStore::remove_tree(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(fs::symlink_status(path, ec))) return Ok{};
  // Sealed folders are read-only: open them up first (never following links).
  if (fs::is_directory(fs::symlink_status(path, ec))) {
    ::chmod(path.c_str(), 0700);
    for (auto it = fs::recursive_directory_iterator(path, ec); !ec && it != fs::end(it);
         it.increment(ec)) {
      if (it->is_directory(ec) && !it->is_symlink(ec)) ::chmod(it->path().c_str(), 0700);
    }
  }
  fs::remove_all(path, ec);
  if (ec) return Error(path + ": cannot remove: " + ec.message());
  return Ok{};
}

}  // namespace evert::everseed
