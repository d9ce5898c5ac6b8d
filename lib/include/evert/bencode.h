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
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "evert/result.h"

namespace evert::bencode {

class Value;
using List = std::vector<Value>;
// std::map's ordering of std::string is bytewise (char_traits<char>::compare is memcmp-like on
// unsigned values), which is the order bencode requires.
using Dict = std::map<std::string, Value, std::less<>>;

// One bencoded value. Values produced by decode() also remember their raw bytes (raw()), which
// stay valid only as long as the buffer passed to decode() lives.
class Value {
 public:
  enum class Type : uint8_t { kInteger, kString, kList, kDict };

  Value() : type_(Type::kInteger) {}
  Value(int64_t i) : type_(Type::kInteger), int_(i) {}  // NOLINT: implicit for brevity
  Value(int i) : Value(static_cast<int64_t>(i)) {}      // NOLINT
  Value(std::string s) : type_(Type::kString), str_(std::move(s)) {}  // NOLINT
  Value(std::string_view s) : Value(std::string(s)) {}                // NOLINT
  Value(const char* s) : Value(std::string(s)) {}                     // NOLINT
  Value(List l) : type_(Type::kList), list_(std::move(l)) {}          // NOLINT
  Value(Dict d) : type_(Type::kDict), dict_(std::move(d)) {}          // NOLINT

  [[nodiscard]] Type type() const { return type_; }
  [[nodiscard]] bool is_int() const { return type_ == Type::kInteger; }
  [[nodiscard]] bool is_string() const { return type_ == Type::kString; }
  [[nodiscard]] bool is_list() const { return type_ == Type::kList; }
  [[nodiscard]] bool is_dict() const { return type_ == Type::kDict; }

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

  friend bool operator==(const Value& a, const Value& b);

 private:
  Type type_;
  int64_t int_ = 0;
  std::string str_;
  List list_;
  Dict dict_;
  std::string_view raw_;
};

// Bounds on what the decoder accepts, so untrusted input cannot exhaust the stack or memory.
struct DecodeLimits {
  int max_depth = 64;               // nesting of lists and dictionaries
  size_t max_elements = 2'000'000;  // values (and keys) in the whole document
};

// Decodes exactly one value that spans all of `input` (trailing bytes are an error).
// On failure the Error carries the byte offset and the reason. The returned Value's raw()
// views point into `input`, which the caller must keep alive while using them.
Result<Value> decode(std::string_view input, const DecodeLimits& limits = {});

// Canonical encoding of `v` (dictionary keys sorted, as std::map keeps them).
std::string encode(const Value& v);
void encode_to(const Value& v, std::string& out);

}  // namespace evert::bencode
