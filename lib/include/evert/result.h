// Result<T>: a value or an Error, for expected failures (STYLE.md §7: errors are values).
// g++ 12 has no std::expected; this is the small subset we use.
#pragma once

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace evert {

// An expected failure: a human-readable message, and for parsers the byte offset where the
// input went wrong (npos when not about a position).
struct Error {
  static constexpr size_t kNoOffset = static_cast<size_t>(-1);

  std::string message;
  size_t offset = kNoOffset;

  Error() = default;
  explicit Error(std::string msg, size_t off = kNoOffset) : message(std::move(msg)), offset(off) {}

  // "offset 12: leading zero in integer", or the bare message when there is no offset.
  [[nodiscard]] std::string describe() const {
    if (offset == kNoOffset) return message;
    return "offset " + std::to_string(offset) + ": " + message;
  }
};

// Holds either a T or an Error. Accessing the wrong alternative is a programming error (assert).
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
  Result(Error error) : v_(std::in_place_index<1>, std::move(error)) {}  // NOLINT

  [[nodiscard]] bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & {
    assert(ok());
    return std::get<0>(v_);
  }
  const T& value() const& {
    assert(ok());
    return std::get<0>(v_);
  }
  T&& value() && {
    assert(ok());
    return std::get<0>(std::move(v_));
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  [[nodiscard]] const Error& error() const {
    assert(!ok());
    return std::get<1>(v_);
  }

 private:
  std::variant<T, Error> v_;
};

// Result<void> equivalent.
struct Ok {};
using Status = Result<Ok>;

}  // namespace evert
