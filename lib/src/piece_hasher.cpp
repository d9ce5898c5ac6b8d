#include "evert/piece_hasher.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <bit>
#include <condition_variable>
#include <deque>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>

#include "evert/merkle.h"

namespace evert {

namespace {

constexpr uint64_t kBatchBytes = 4 << 20;     // work taken by a worker at a time
constexpr uint64_t kReadAheadBytes = 64 << 20;  // how far the read-ahead runs ahead
constexpr uint64_t kReadAheadChunk = 8 << 20;   // one madvise call
constexpr size_t kZeroBytes = 64 * 1024;
const uint8_t kZeros[kZeroBytes] = {};

// One input file, mapped on first use and unmapped when the last byte has been hashed.
// `refs` counts bytes still to hash plus one hold by the read-ahead thread.
struct MappedFile {
  std::once_flag once;
  const uint8_t* data = nullptr;
  uint64_t size = 0;
  std::atomic<uint64_t> refs{0};
  std::string error;
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
      if (m.data != nullptr && m.refs.load() != 0) {
        munmap(const_cast<uint8_t*>(m.data), m.size);
      }
    }
  }

  Result<HashResult> run() {
    int n = r_.threads > 0 ? r_.threads : static_cast<int>(std::thread::hardware_concurrency());
    n = static_cast<int>(std::clamp<uint64_t>(static_cast<uint64_t>(std::max(n, 1)), 1,
                                              (piece_count_ + batch_ - 1) / batch_));
    std::vector<std::thread> threads;
    threads.emplace_back([this] { read_ahead(); });
    for (int i = 0; i < n; ++i) threads.emplace_back([this] { work(); });
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
    for (auto& t : threads) t.join();
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

  // Maps file i on first use. Returns nullptr (and records the error) on failure.
  const uint8_t* map(size_t i) {
    MappedFile& m = mapped_[i];
    std::call_once(m.once, [&] {
      const std::string& path = files_[i].disk_path;
      const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) {
        m.error = path + ": cannot open: " + std::strerror(errno);
        return;
      }
      struct stat st {};
      if (fstat(fd, &st) != 0 || static_cast<uint64_t>(st.st_size) != m.size) {
        m.error = path + ": changed size since it was listed";
      } else {
        void* p = mmap(nullptr, m.size, PROT_READ, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED) {
          m.error = path + ": cannot map: " + std::strerror(errno);
        } else {
          m.data = static_cast<const uint8_t*>(p);
        }
      }
      close(fd);
    });
    if (m.data == nullptr) set_error(m.error);
    return m.data;
  }

  void release(size_t i, uint64_t bytes) {
    MappedFile& m = mapped_[i];
    if (m.refs.fetch_sub(bytes) == bytes && m.data != nullptr) {
      munmap(const_cast<uint8_t*>(m.data), m.size);
    }
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
      const uint8_t* data = map(f);
      if (data == nullptr) break;
      const uint64_t len = std::min(kReadAheadChunk, files_[f].size - off);
      void* addr = const_cast<uint8_t*>(data + off);
      madvise(addr, len, MADV_WILLNEED);
#ifdef MADV_POPULATE_READ
      madvise(addr, len, MADV_POPULATE_READ);
#endif
      off += len;
    }
    for (; f < files_.size(); ++f) release(f, 1);
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
    while (!stop_) {
      const uint64_t begin = next_piece_.fetch_add(batch_);
      if (begin >= piece_count_) break;
      const uint64_t end = std::min(piece_count_, begin + batch_);
      for (uint64_t p = begin; p < end && !stop_; ++p) {
        if (r_.layout == Layout::kV1) {
          hash_v1_piece(p, sha1);
        } else {
          hash_aligned_piece(p, sha1, sha256, leaves);
        }
      }
    }
    std::lock_guard lock(mu_);
    ++workers_done_;
    cv_.notify_all();
  }

  // v1: the piece is bytes [p*pl, p*pl+pl) of the files laid back to back.
  void hash_v1_piece(uint64_t p, Sha1& sha1) {
    uint64_t pos = p * r_.piece_length;
    const uint64_t end = std::min(pos + r_.piece_length, first_[files_.size()]);
    size_t f = static_cast<size_t>(std::upper_bound(first_.begin(), first_.end(), pos) -
                                   first_.begin()) - 1;
    while (pos < end) {
      const uint64_t off = pos - first_[f];
      const uint64_t len = std::min(end - pos, files_[f].size - off);
      if (len > 0) {
        const uint8_t* data = map(f);
        if (data == nullptr) return;
        sha1.update(data + off, len);
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
  void hash_aligned_piece(uint64_t p, Sha1& sha1, Sha256& sha256,
                          std::vector<Sha256Digest>& leaves) {
    const uint64_t pl = r_.piece_length;
    const size_t f = static_cast<size_t>(std::upper_bound(first_.begin(), first_.end(), p) -
                                         first_.begin()) - 1;
    const uint64_t off = (p - first_[f]) * pl;
    const uint64_t len = std::min(pl, files_[f].size - off);
    const uint8_t* data = map(f);
    if (data == nullptr) return;
    const uint8_t* piece = data + off;

    leaves.clear();
    for (uint64_t b = 0; b < len; b += merkle::kBlockSize) {
      sha256.update(piece + b, std::min(merkle::kBlockSize, len - b));
      leaves.push_back(sha256.final());
    }
    if (r_.layout == Layout::kHybrid) {
      sha1.update(piece, len);
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
      for (const auto& d : layers_[i]) s += d.view();
    }
  }

  const HashRequest& r_;
  const std::vector<InputFile>& files_;
  std::deque<MappedFile> mapped_;
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
  if (request.layout != Layout::kV1 &&
      (request.piece_length % merkle::kBlockSize != 0 ||
       !std::has_single_bit(request.piece_length))) {
    return Error("v2 piece length must be a power of two of at least 16 KiB");
  }
  return Hasher(request).run();
}

}  // namespace evert
