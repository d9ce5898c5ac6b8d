// Internal to evert/utp.h (its Socket holds these by value): the two circular buffers a uTP
// connection keeps, allocated when first needed and grown geometrically, so that an idle
// connection costs no buffer memory and a busy one no allocation per packet.
#pragma once

#include <algorithm>
#include <cassert>
#include <cstddef>
#include <cstring>
#include <memory>
#include <string_view>
#include <utility>

namespace evert::utp::detail {

// A queue of T indexed from its front, in a power-of-two circular array. Popped elements are
// kept (not destroyed) and handed back by push_back(), so their own buffers are reused.
template <class T>
class Ring {
 public:
  [[nodiscard]] size_t size() const { return size_; }
  [[nodiscard]] bool empty() const { return size_ == 0; }
  T& operator[](size_t i) {
    assert(i < size_);
    return items_[(head_ + i) & (cap_ - 1)];
  }
  const T& operator[](size_t i) const {
    assert(i < size_);
    return items_[(head_ + i) & (cap_ - 1)];
  }
  T& front() { return (*this)[0]; }
  T& back() { return (*this)[size_ - 1]; }

  // Appends an element and returns it: a default one, or one popped earlier (reset it).
  T& push_back() {
    if (size_ == cap_) grow();
    ++size_;
    return back();
  }
  void pop_back() {
    assert(size_ > 0);
    --size_;
  }
  void pop_front() {
    assert(size_ > 0);
    head_ = (head_ + 1) & (cap_ - 1);
    --size_;
  }
  void clear() {
    head_ = 0;
    size_ = 0;
  }
  // Frees the array (the ring must be empty).
  void release() {
    assert(size_ == 0);
    items_.reset();
    cap_ = 0;
    head_ = 0;
  }

 private:
  void grow() {
    const size_t cap = cap_ == 0 ? 16 : cap_ * 2;
    auto items = std::make_unique<T[]>(cap);
    for (size_t i = 0; i < size_; ++i)
      items[i] = std::move((*this)[i]);
    items_ = std::move(items);
    cap_ = cap;
    head_ = 0;
  }

  std::unique_ptr<T[]> items_;
  size_t cap_ = 0;
  size_t head_ = 0;
  size_t size_ = 0;
};

// A byte queue in a circular array of at most `limit` bytes (the caller never appends past
// it). Bytes are appended at the back and consumed at the front.
class ByteRing {
 public:
  [[nodiscard]] size_t size() const { return size_; }
  [[nodiscard]] bool empty() const { return size_ == 0; }

  // Precondition: size() + n <= limit.
  void append(const char* p, size_t n, size_t limit) {
    assert(size_ + n <= limit);
    if (n == 0) return;
    if (size_ + n > cap_) grow(size_ + n, limit);
    const size_t tail = (head_ + size_) % cap_;
    const size_t first = std::min(n, cap_ - tail);
    std::memcpy(buf_.get() + tail, p, first);
    std::memcpy(buf_.get(), p + first, n - first);
    size_ += n;
  }
  // Copies n bytes starting `off` bytes after the front into `out`. Precondition: off + n <=
  // size().
  void copy_out(size_t off, size_t n, char* out) const {
    assert(off + n <= size_);
    if (n == 0) return;
    const size_t at = (head_ + off) % cap_;
    const size_t first = std::min(n, cap_ - at);
    std::memcpy(out, buf_.get() + at, first);
    std::memcpy(out + first, buf_.get(), n - first);
  }
  // The bytes at the front that are contiguous in memory (all of them unless they wrap).
  [[nodiscard]] std::string_view front_span() const {
    if (size_ == 0) return {};
    return {buf_.get() + head_, std::min(size_, cap_ - head_)};
  }
  void consume(size_t n) {
    assert(n <= size_);
    size_ -= n;
    head_ = size_ == 0 ? 0 : (head_ + n) % cap_;
  }
  // Frees the array when it holds nothing.
  void release() {
    if (size_ != 0) return;
    buf_.reset();
    cap_ = 0;
    head_ = 0;
  }

 private:
  void grow(size_t need, size_t limit) {
    const size_t cap = std::min(limit, std::max({need, cap_ * 2, size_t{16384}}));
    auto buf = std::make_unique_for_overwrite<char[]>(cap);
    copy_out(0, size_, buf.get());
    buf_ = std::move(buf);
    cap_ = cap;
    head_ = 0;
  }

  std::unique_ptr<char[]> buf_;
  size_t cap_ = 0;
  size_t head_ = 0;
  size_t size_ = 0;
};

}  // namespace evert::utp::detail
