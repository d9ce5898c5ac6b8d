// Bencode (BEP 3): a strict decoder and a canonical encoder.
//
// The decoder accepts only canonical bencode, the form whose bytes are the only encoding of
// their value: no leading zeros, no "-0", dictionary keys sorted bytewise without duplicates.
// That matters because the info-hash is computed over the raw bytes of the info dictionary: a
// lenient decoder would accept torrents whose hash differs from that of their re-encoding.
//
// Thread-safety: all functions are pure; Values are ordinary values.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "evert/result.h"

namespace evert::bencode {

class Value;
using List = std::vector<Value>;

// A dictionary: entries kept sorted bytewise by key (the order bencode requires) in one flat
// vector, which decodes far faster than a node-based map (one allocation per dictionary, not
// per key). Lookups are binary searches.
class Dict {
 public:
  using Entry = std::pair<std::string, Value>;
  using iterator = std::vector<Entry>::iterator;
  using const_iterator = std::vector<Entry>::const_iterator;

  Dict() = default;
  Dict(std::initializer_list<Entry> entries);

  // The value under `key`, inserted (as integer 0) when absent.
  Value& operator[](std::string_view key);
  [[nodiscard]] const_iterator find(std::string_view key) const;
  iterator find(std::string_view key);
  size_t erase(std::string_view key);
  // Appends an entry whose key sorts after every key present (the decoder's fast path).
  void append_sorted(std::string key, Value value);
  // Takes entries in any order (other encoders' dictionaries): sorted once, and of entries
  // with the same key the last kept, as inserting them one by one would (n log n, not n^2).
  void assign_unsorted(std::vector<Entry> entries);

  // Defined below Value, which must be complete first.
  [[nodiscard]] iterator begin();
  [[nodiscard]] iterator end();
  [[nodiscard]] const_iterator begin() const;
  [[nodiscard]] const_iterator end() const;
  [[nodiscard]] size_t size() const;
  [[nodiscard]] bool empty() const;
  friend bool operator==(const Dict& a, const Dict& b);

 private:
  [[nodiscard]] const_iterator lower_bound(std::string_view key) const;
  std::vector<Entry> entries_;
};

// One bencoded value. Values produced by decode() also remember their raw bytes (raw()), which
// stay valid only as long as the buffer passed to decode() lives.
class Value {
 public:
  enum class Type : uint8_t { kInteger, kString, kList, kDict };

  Value() : v_(int64_t{0}) {}
  Value(int64_t i) : v_(i) {}                        // NOLINT: implicit for brevity
  Value(int i) : v_(static_cast<int64_t>(i)) {}      // NOLINT
  Value(std::string s) : v_(std::move(s)) {}         // NOLINT
  Value(std::string_view s) : v_(std::string(s)) {}  // NOLINT
  Value(const char* s) : v_(std::string(s)) {}       // NOLINT
  Value(List l) : v_(std::move(l)) {}                // NOLINT
  Value(Dict d) : v_(std::move(d)) {}                // NOLINT

  [[nodiscard]] Type type() const { return static_cast<Type>(v_.index()); }
  [[nodiscard]] bool is_int() const { return type() == Type::kInteger; }
  [[nodiscard]] bool is_string() const { return type() == Type::kString; }
  [[nodiscard]] bool is_list() const { return type() == Type::kList; }
  [[nodiscard]] bool is_dict() const { return type() == Type::kDict; }

  // Accessors; calling the one that does not match type() is a programming error (assert).
  [[nodiscard]] int64_t as_int() const;
  [[nodiscard]] const std::string& as_string() const;
  [[nodiscard]] const List& as_list() const;
  [[nodiscard]] const Dict& as_dict() const;
  List& as_list();
  Dict& as_dict();

  // For dictionaries: the value under `key`, or nullptr when absent (or when not a dict).
  [[nodiscard]] const Value* find(std::string_view key) const;

  // The exact bytes this value was decoded from; empty for values built in code.
  [[nodiscard]] std::string_view raw() const { return raw_; }
  void set_raw(std::string_view raw) { raw_ = raw; }

  friend bool operator==(const Value& a, const Value& b) { return a.v_ == b.v_; }

 private:
  std::variant<int64_t, std::string, List, Dict> v_;
  std::string_view raw_;
};

inline Dict::iterator Dict::begin() {
  return entries_.begin();
}
inline Dict::iterator Dict::end() {
  return entries_.end();
}
inline Dict::const_iterator Dict::begin() const {
  return entries_.begin();
}
inline Dict::const_iterator Dict::end() const {
  return entries_.end();
}
inline size_t Dict::size() const {
  return entries_.size();
}
inline bool Dict::empty() const {
  return entries_.empty();
}

// Bounds on what the decoder accepts, so untrusted input cannot exhaust the stack or memory.
struct DecodeLimits {
  int max_depth = 64;               // nesting of lists and dictionaries
  size_t max_elements = 2'000'000;  // values (and keys) in the whole document
  // false: dictionary keys may come in any order and repeat (the last one wins), as some
  // trackers write them. Never for metainfo, whose info-hash depends on the exact bytes.
  bool sorted_keys = true;
};

// Decodes exactly one value that spans all of `input` (trailing bytes are an error).
// On failure the Error carries the byte offset and the reason. The returned Value's raw()
// views point into `input`, which the caller must keep alive while using them.
Result<Value> decode(std::string_view input, const DecodeLimits& limits = {});

// Decodes the one value at the start of `input` and ignores what follows it (BEP 9 data
// messages put raw bytes after a dictionary); the value's raw().size() is where it ends.
Result<Value> decode_prefix(std::string_view input, const DecodeLimits& limits = {});

// Canonical encoding of `v` (dictionary keys sorted, as std::map keeps them).
std::string encode(const Value& v);
void encode_to(const Value& v, std::string& out);

}  // namespace evert::bencode
