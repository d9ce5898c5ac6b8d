#include "evert/piece_hasher.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>

#include "evert/merkle.h"

namespace evert {

namespace {

constexpr uint64_t kBatchBytes = 4 << 20;       // work taken by a worker at a time
constexpr uint64_t kReadAheadBytes = 64 << 20;  // how far the read-ahead runs ahead
constexpr uint64_t kReadAheadChunk = 8 << 20;   // one madvise call
constexpr uint64_t kSlice =
    1 << 20;  // bytes hashed per read          // bytes hashed per read (fits in L2)
constexpr uint64_t kMapMinBytes = 4 << 20;  // smaller files are read, not mapped
// Mapping is the cheaper path when the page cache holds the file in large folios (as kernel
// readahead leaves it): the measured cost is a few microseconds of CPU per MiB. With 4 KiB
// pages (as small writes leave a file) mapping costs ~100 us/MiB, more than copying with
// pread (~70 us/MiB), so above this threshold the file is read instead.
constexpr int64_t kMapCostLimitNsPerMiB = 25'000;
constexpr size_t kZeroBytes = 64 * 1024;
const uint8_t kZeros[kZeroBytes] = {};

int64_t thread_cpu_ns() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// One input file, opened on first use and closed (and unmapped) when its last byte has been
// hashed. `refs` counts bytes still to hash plus one hold by the read-ahead thread.
struct InputState {
  std::once_flag once;
  int fd = -1;
  const uint8_t* data = nullptr;  // the mapping, when mapped
  uint64_t size = 0;
  std::atomic<uint64_t> refs{0};
  // Per read-ahead window of a mapped file: whether workers should pread it (true) or use the
  // mapping (false, also while the read-ahead has not reached the window).
  std::unique_ptr<std::atomic<bool>[]> window_read;
  std::string error;

  [[nodiscard]] bool read_at(uint64_t off) const {
    return data == nullptr || window_read[off / kReadAheadChunk].load(std::memory_order_relaxed);
  }
};

class Hasher {
 public:
  explicit Hasher(const HashRequest& r) : r_(r), files_(*r.files), mapped_(files_.size()) {
    const uint64_t pl = r_.piece_length;
    first_.resize(files_.size() + 1);
    uint64_t offset = 0;
    for (size_t i = 0; i < files_.size(); ++i) {
      mapped_[i].size = files_[i].size;
      mapped_[i].refs = files_[i].size + 1;
      total_ += files_[i].size;
      if (r_.layout == Layout::kV1) {
        first_[i] = offset;  // byte offset in the stream
        offset += files_[i].size;
      } else {
        first_[i] = offset;  // first piece index of the file
        offset += (files_[i].size + pl - 1) / pl;
      }
    }
    first_[files_.size()] = offset;
    piece_count_ = r_.layout == Layout::kV1 ? (offset + pl - 1) / pl : offset;
    if (r_.layout != Layout::kV2) out_.pieces.resize(piece_count_ * Sha1Digest::kSize);
    if (r_.layout != Layout::kV1) {
      out_.files.resize(files_.size());
      layers_.resize(files_.size());
      for (size_t i = 0; i < files_.size(); ++i) {
        if (files_[i].size > pl) layers_[i].resize(first_[i + 1] - first_[i]);
      }
    }
    batch_ = std::max<uint64_t>(1, kBatchBytes / pl);
  }

  ~Hasher() {
    for (auto& m : mapped_) {
      if (m.refs.load() != 0) close_input(m);
    }
  }

  Result<HashResult> run() {
    int n = r_.threads > 0 ? r_.threads : static_cast<int>(std::thread::hardware_concurrency());
    n = static_cast<int>(std::clamp<uint64_t>(static_cast<uint64_t>(std::max(n, 1)), 1,
                                              (piece_count_ + batch_ - 1) / batch_));
    std::vector<std::thread> threads;
    threads.emplace_back([this] { read_ahead(); });
    for (int i = 0; i < n; ++i)
      threads.emplace_back([this] { work(); });
    {
      std::unique_lock lock(mu_);
      while (workers_done_ < n) {
        cv_.wait_for(lock, std::chrono::milliseconds(100));
        if (r_.cancel != nullptr && r_.cancel->load()) stop_ = true;
        if (r_.progress) {
          lock.unlock();
          r_.progress(done_.load(), total_);
          lock.lock();
        }
      }
    }
    stop_ = true;
    for (auto& t : threads)
      t.join();
    if (!error_.empty()) return Error(error_);
    if (r_.cancel != nullptr && r_.cancel->load()) return Error("cancelled");
    if (r_.progress) r_.progress(total_, total_);
    finish_v2();
    return std::move(out_);
  }

 private:
  void set_error(std::string e) {
    std::lock_guard lock(mu_);
    if (error_.empty()) error_ = std::move(e);
    stop_ = true;
  }

  // Opens (and, when large, maps) file i on first use. False (error recorded) on failure.
  bool open_input(size_t i) {
    InputState& m = mapped_[i];
    std::call_once(m.once, [&] {
      const std::string& path = files_[i].disk_path;
      m.fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
      if (m.fd < 0) {
        m.error = path + ": cannot open: " + std::strerror(errno);
        return;
      }
      struct stat st {};
      if (fstat(m.fd, &st) != 0 || static_cast<uint64_t>(st.st_size) != m.size) {
        m.error = path + ": changed size since it was listed";
        return;
      }
      if (m.size < kMapMinBytes || r_.read_mode == ReadMode::kRead) return;
      void* p = mmap(nullptr, m.size, PROT_READ, MAP_SHARED, m.fd, 0);
      if (p == MAP_FAILED) return;  // e.g. a filesystem without mmap: read instead
      m.data = static_cast<const uint8_t*>(p);
      const uint64_t windows = (m.size + kReadAheadChunk - 1) / kReadAheadChunk;
      m.window_read = std::make_unique<std::atomic<bool>[]>(windows);
      for (uint64_t w = 0; w < windows; ++w)
        m.window_read[w] = false;
    });
    if (!m.error.empty()) {
      set_error(m.error);
      return false;
    }
    return true;
  }

  static void close_input(InputState& m) {
    if (m.data != nullptr) munmap(const_cast<uint8_t*>(m.data), m.size);
    if (m.fd >= 0) close(m.fd);
    m.data = nullptr;
    m.fd = -1;
  }

  void release(size_t i, uint64_t bytes) {
    InputState& m = mapped_[i];
    if (m.refs.fetch_sub(bytes) == bytes) close_input(m);
  }

  // Bytes [off, off+len) of file i (len <= kSlice): a pointer into the mapping, or into `buf`
  // after pread. nullptr (error recorded) on failure.
  const uint8_t* view(size_t i, uint64_t off, uint64_t len, std::vector<uint8_t>& buf) {
    if (!open_input(i)) return nullptr;
    InputState& m = mapped_[i];
    if (!m.read_at(off)) return m.data + off;
    buf.resize(kSlice);
    uint64_t got = 0;
    while (got < len) {
      const ssize_t n = pread(m.fd, buf.data() + got, len - got, static_cast<off_t>(off + got));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        set_error(files_[i].disk_path +
                  (n == 0 ? ": file shrank while being hashed"
                          : ": read error: " + std::string(std::strerror(errno))));
        return nullptr;
      }
      got += static_cast<uint64_t>(n);
    }
    return buf.data();
  }

  // Runs ahead of the workers through the byte stream, so that by the time a worker reaches a
  // window it is in the page cache and mapped.
  void read_ahead() {
    size_t f = 0;
    uint64_t off = 0;
    while (f < files_.size() && !stop_) {
      if (files_[f].size == 0 || off >= files_[f].size) {
        release(f, 1);
        ++f;
        off = 0;
        continue;
      }
      if (stream_position(f, off) > frontier() + kReadAheadBytes) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
        continue;
      }
      if (!open_input(f)) break;
      const uint64_t len = std::min(kReadAheadChunk, files_[f].size - off);
      prepare_window(mapped_[f], off, len);
      off += len;
    }
    for (; f < files_.size(); ++f)
      release(f, 1);
  }

  // Brings one window of a file into the page cache ahead of the workers and decides how they
  // read it: through the mapping if populating it was cheap, else with pread. A file in read
  // mode is probed again every kProbeEvery windows, since kernel readahead ramps up to large
  // folios after the first megabytes.
  void prepare_window(InputState& m, uint64_t off, uint64_t len) const {
    constexpr uint64_t kProbeEvery = 8;
    constexpr uint64_t kProbeBytes = 2 << 20;
    if (m.data == nullptr) {
      readahead(m.fd, static_cast<off64_t>(off), len);
      return;
    }
    const uint64_t w = off / kReadAheadChunk;
    const bool was_read = w > 0 && m.window_read[w - 1].load();
    void* addr = const_cast<uint8_t*>(m.data + off);
    if (was_read && w % kProbeEvery != 0) {
      m.window_read[w] = true;
      readahead(m.fd, static_cast<off64_t>(off), len);
      return;
    }
    madvise(addr, len, MADV_WILLNEED);
    const uint64_t measured = was_read ? std::min(len, kProbeBytes) : len;
    const int64_t cpu0 = thread_cpu_ns();
    madvise(addr, measured, MADV_POPULATE_READ);
    const int64_t cost =
        (thread_cpu_ns() - cpu0) * int64_t{1 << 20} / static_cast<int64_t>(measured);
    const bool read = cost > kMapCostLimitNsPerMiB && r_.read_mode == ReadMode::kAuto;
    m.window_read[w] = read;
    if (!read && measured < len) {
      madvise(static_cast<uint8_t*>(addr) + measured, len - measured, MADV_POPULATE_READ);
    }
  }

  // Where the workers are, in the units of stream_position.
  uint64_t frontier() const { return next_piece_.load() * r_.piece_length; }

  uint64_t stream_position(size_t f, uint64_t off) const {
    if (r_.layout == Layout::kV1) return first_[f] + off;
    return first_[f] * r_.piece_length + off;
  }

  void work() {
    Sha1 sha1;
    Sha256 sha256;
    std::vector<Sha256Digest> leaves;
    std::vector<uint8_t> buf;
    while (!stop_) {
      const uint64_t begin = next_piece_.fetch_add(batch_);
      if (begin >= piece_count_) break;
      const uint64_t end = std::min(piece_count_, begin + batch_);
      for (uint64_t p = begin; p < end && !stop_; ++p) {
        if (r_.layout == Layout::kV1) {
          hash_v1_piece(p, sha1, buf);
        } else {
          hash_aligned_piece(p, sha1, sha256, leaves, buf);
        }
      }
    }
    std::lock_guard lock(mu_);
    ++workers_done_;
    cv_.notify_all();
  }

  // v1: the piece is bytes [p*pl, p*pl+pl) of the files laid back to back.
  void hash_v1_piece(uint64_t p, Sha1& sha1, std::vector<uint8_t>& buf) {
    uint64_t pos = p * r_.piece_length;
    const uint64_t end = std::min(pos + r_.piece_length, first_[files_.size()]);
    size_t f =
        static_cast<size_t>(std::upper_bound(first_.begin(), first_.end(), pos) - first_.begin()) -
        1;
    while (pos < end) {
      const uint64_t off = pos - first_[f];
      const uint64_t len = std::min(end - pos, files_[f].size - off);
      for (uint64_t s = 0; s < len; s += kSlice) {
        const uint64_t n = std::min(kSlice, len - s);
        const uint8_t* data = view(f, off + s, n, buf);
        if (data == nullptr) return;
        sha1.update(data, n);
      }
      if (len > 0) {
        release(f, len);
        done_ += len;
        pos += len;
      }
      ++f;
    }
    const Sha1Digest d = sha1.final();
    std::memcpy(&out_.pieces[p * Sha1Digest::kSize], d.bytes.data(), Sha1Digest::kSize);
  }

  // v2 / hybrid: the piece lies within one file.
  void hash_aligned_piece(uint64_t p, Sha1& sha1, Sha256& sha256, std::vector<Sha256Digest>& leaves,
                          std::vector<uint8_t>& buf) {
    const uint64_t pl = r_.piece_length;
    const size_t f =
        static_cast<size_t>(std::upper_bound(first_.begin(), first_.end(), p) - first_.begin()) - 1;
    const uint64_t off = (p - first_[f]) * pl;
    const uint64_t len = std::min(pl, files_[f].size - off);
    const bool v1 = r_.layout == Layout::kHybrid;

    leaves.clear();
    for (uint64_t s = 0; s < len; s += kSlice) {
      const uint64_t n = std::min(kSlice, len - s);
      const uint8_t* data = view(f, off + s, n, buf);
      if (data == nullptr) return;
      // Slices are multiples of the 16 KiB block, so blocks never straddle two slices.
      // Each block is hashed with SHA-256 and then SHA-1 while it is still in L1.
      for (uint64_t b = 0; b < n; b += merkle::kBlockSize) {
        const uint64_t block = std::min(merkle::kBlockSize, n - b);
        sha256.update(data + b, block);
        leaves.push_back(sha256.final());
        if (v1) sha1.update(data + b, block);
      }
    }
    if (v1) {
      // BEP 52: in a hybrid the padding file after this one is part of the v1 piece.
      for (uint64_t pad = r_.pad_files ? pl - len : 0; pad > 0;) {
        const uint64_t n = std::min<uint64_t>(pad, kZeroBytes);
        sha1.update(kZeros, n);
        pad -= n;
      }
      const Sha1Digest d = sha1.final();
      std::memcpy(&out_.pieces[p * Sha1Digest::kSize], d.bytes.data(), Sha1Digest::kSize);
    }
    if (files_[f].size > pl) {
      layers_[f][p - first_[f]] = merkle::root(leaves, pl / merkle::kBlockSize);
    } else {
      out_.files[f].pieces_root = merkle::root(leaves, merkle::next_pow2(leaves.size()));
    }
    release(f, len);
    done_ += len;
  }

  void finish_v2() {
    if (r_.layout == Layout::kV1) return;
    for (size_t i = 0; i < files_.size(); ++i) {
      if (layers_[i].empty()) continue;
      out_.files[i].pieces_root = merkle::root_from_piece_layer(layers_[i], r_.piece_length);
      std::string& s = out_.files[i].piece_layer;
      s.reserve(layers_[i].size() * Sha256Digest::kSize);
      for (const auto& d : layers_[i])
        s += d.view();
    }
  }

  const HashRequest& r_;
  const std::vector<InputFile>& files_;
  std::deque<InputState> mapped_;
  std::vector<uint64_t> first_;  // per file: stream offset (v1) or first piece (aligned)
  std::vector<std::vector<Sha256Digest>> layers_;
  uint64_t piece_count_ = 0;
  uint64_t batch_ = 1;
  uint64_t total_ = 0;
  HashResult out_;

  std::atomic<uint64_t> next_piece_{0};
  std::atomic<uint64_t> done_{0};
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  int workers_done_ = 0;
  std::string error_;
};

}  // namespace

Result<HashResult> hash_files(const HashRequest& request) {
  if (request.files == nullptr || request.piece_length == 0) {
    return Error("hash_files: no files or no piece length");
  }
  if (request.layout != Layout::kV1 && (request.piece_length % merkle::kBlockSize != 0 ||
                                        !std::has_single_bit(request.piece_length))) {
    return Error("v2 piece length must be a power of two of at least 16 KiB");
  }
  return Hasher(request).run();
}

}  // namespace evert
