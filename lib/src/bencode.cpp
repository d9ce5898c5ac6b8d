#include "evert/bencode.h"

#include <algorithm>
#include <cassert>
#include <charconv>
#include <cstring>
#include <limits>
#include <utility>

namespace evert::bencode {

Dict::Dict(std::initializer_list<Entry> entries) {
  for (const auto& e : entries)
    (*this)[e.first] = e.second;
}

Dict::const_iterator Dict::lower_bound(std::string_view key) const {
  return std::lower_bound(entries_.begin(), entries_.end(), key,
                          [](const Entry& e, std::string_view k) { return e.first < k; });
}

Value& Dict::operator[](std::string_view key) {
  auto it = entries_.begin() + (lower_bound(key) - entries_.cbegin());
  if (it == entries_.end() || it->first != key)
    it = entries_.emplace(it, std::string(key), Value());
  return it->second;
}

Dict::const_iterator Dict::find(std::string_view key) const {
  auto it = lower_bound(key);
  return it != entries_.end() && it->first == key ? it : entries_.end();
}

Dict::iterator Dict::find(std::string_view key) {
  auto it = entries_.begin() + (std::as_const(*this).find(key) - entries_.cbegin());
  return it;
}

size_t Dict::erase(std::string_view key) {
  auto it = find(key);
  if (it == entries_.end()) return 0;
  entries_.erase(it);
  return 1;
}

void Dict::append_sorted(std::string key, Value value) {
  assert(entries_.empty() || entries_.back().first < key);
  entries_.emplace_back(std::move(key), std::move(value));
}

void Dict::assign_unsorted(std::vector<Entry> entries) {
  std::stable_sort(entries.begin(), entries.end(),
                   [](const Entry& a, const Entry& b) { return a.first < b.first; });
  entries_.clear();
  entries_.reserve(entries.size());
  for (auto& e : entries) {
    if (!entries_.empty() && entries_.back().first == e.first) {
      entries_.back().second = std::move(e.second);  // the later one wins
    } else {
      entries_.push_back(std::move(e));
    }
  }
}

bool operator==(const Dict& a, const Dict& b) {
  return a.entries_ == b.entries_;
}

int64_t Value::as_int() const {
  assert(is_int());
  return std::get<int64_t>(v_);
}
const std::string& Value::as_string() const {
  assert(is_string());
  return std::get<std::string>(v_);
}
const List& Value::as_list() const {
  assert(is_list());
  return std::get<List>(v_);
}
const Dict& Value::as_dict() const {
  assert(is_dict());
  return std::get<Dict>(v_);
}
List& Value::as_list() {
  assert(is_list());
  return std::get<List>(v_);
}
Dict& Value::as_dict() {
  assert(is_dict());
  return std::get<Dict>(v_);
}

const Value* Value::find(std::string_view key) const {
  if (!is_dict()) return nullptr;
  const Dict& d = std::get<Dict>(v_);
  auto it = d.find(key);
  return it == d.end() ? nullptr : &it->second;
}

namespace {

class Decoder {
 public:
  Decoder(std::string_view in, const DecodeLimits& limits) : in_(in), limits_(limits) {}

  Result<Value> run(bool allow_trailing = false) {
    Value v;
    if (!parse(v, 0)) return std::move(error_);
    if (!allow_trailing && pos_ != in_.size()) {
      return Error("trailing bytes after the value", pos_);
    }
    return v;
  }

 private:
  bool fail(std::string reason, size_t at) {
    error_ = Error(std::move(reason), at);
    return false;
  }

  bool count_element(size_t at) {
    if (++elements_ > limits_.max_elements) {
      return fail("too many elements (limit " + std::to_string(limits_.max_elements) + ")", at);
    }
    return true;
  }

  bool parse(Value& out, int depth) {
    const size_t start = pos_;
    if (pos_ >= in_.size()) return fail("truncated: expected a value", pos_);
    if (!count_element(start)) return false;
    const char c = in_[pos_];
    bool ok = false;
    if (c == 'i') {
      int64_t i = 0;
      ok = parse_int(i);
      if (ok) out = Value(i);
    } else if (c >= '0' && c <= '9') {
      std::string_view s;
      ok = parse_string(s);
      if (ok) out = Value(s);
    } else if (c == 'l' || c == 'd') {
      if (depth >= limits_.max_depth) {
        return fail("nesting deeper than " + std::to_string(limits_.max_depth), pos_);
      }
      ok = c == 'l' ? parse_list(out, depth + 1) : parse_dict(out, depth + 1);
    } else {
      return fail(std::string("unexpected byte '") + printable(c) + "', expected a value", pos_);
    }
    if (ok) out.set_raw(in_.substr(start, pos_ - start));
    return ok;
  }

  static std::string printable(char c) {
    if (c >= 0x20 && c < 0x7f) return std::string(1, c);
    static const char* hex = "0123456789abcdef";
    const auto u = static_cast<unsigned char>(c);
    return std::string("\\x") + hex[u >> 4] + hex[u & 15];
  }

  // i<digits>e, canonical: no leading zeros, no "-0", no "+", fits int64.
  bool parse_int(int64_t& out) {
    const size_t start = pos_;
    ++pos_;  // 'i'
    const size_t end = in_.find('e', pos_);
    if (end == std::string_view::npos) return fail("truncated: integer has no 'e'", start);
    std::string_view digits = in_.substr(pos_, end - pos_);
    const bool negative = !digits.empty() && digits[0] == '-';
    std::string_view body = negative ? digits.substr(1) : digits;
    if (body.empty()) return fail("empty integer", start);
    for (size_t k = 0; k < body.size(); ++k) {
      if (body[k] < '0' || body[k] > '9') {
        return fail("invalid character in integer", pos_ + (negative ? 1 : 0) + k);
      }
    }
    if (body.size() > 1 && body[0] == '0') return fail("leading zero in integer", start);
    if (negative && body == "0") return fail("negative zero", start);
    auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), out);
    if (ec != std::errc() || ptr != digits.data() + digits.size()) {
      return fail("integer outside the 64-bit signed range", start);
    }
    pos_ = end + 1;
    return true;
  }

  // <length>:<bytes>, canonical length (no leading zeros).
  bool parse_string(std::string_view& out) {
    const size_t start = pos_;
    const size_t colon = in_.find(':', pos_);
    if (colon == std::string_view::npos) return fail("truncated: string length has no ':'", start);
    std::string_view digits = in_.substr(pos_, colon - pos_);
    if (digits.empty()) return fail("empty string length", start);
    for (size_t k = 0; k < digits.size(); ++k) {
      if (digits[k] < '0' || digits[k] > '9') {
        return fail("invalid character in string length", start + k);
      }
    }
    if (digits.size() > 1 && digits[0] == '0') return fail("leading zero in string length", start);
    uint64_t len = 0;
    auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), len);
    if (ec != std::errc()) return fail("string length too large", start);
    const size_t data = colon + 1;
    if (len > in_.size() - data) {
      return fail("string length " + std::to_string(len) + " goes past the end of the input",
                  start);
    }
    out = in_.substr(data, len);
    pos_ = data + len;
    return true;
  }

  bool parse_list(Value& out, int depth) {
    const size_t start = pos_;
    ++pos_;  // 'l'
    List items;
    while (true) {
      if (pos_ >= in_.size()) return fail("truncated: list has no 'e'", start);
      if (in_[pos_] == 'e') break;
      items.emplace_back();
      if (!parse(items.back(), depth)) return false;
    }
    ++pos_;
    out = Value(std::move(items));
    return true;
  }

  bool parse_dict(Value& out, int depth) {
    const size_t start = pos_;
    ++pos_;  // 'd'
    // Entries in the order they come; sorted once at the end if they were not (inserting each
    // in place was quadratic: a hostile tracker's reply of 100,000 keys in reverse stalled the
    // loop, issue 15).
    std::vector<Dict::Entry> entries;
    bool in_order = true;
    std::string_view previous;
    bool first = true;
    while (true) {
      if (pos_ >= in_.size()) return fail("truncated: dictionary has no 'e'", start);
      if (in_[pos_] == 'e') break;
      const size_t key_at = pos_;
      if (in_[pos_] < '0' || in_[pos_] > '9') {
        return fail("dictionary key is not a string", key_at);
      }
      if (!count_element(key_at)) return false;
      std::string_view key;
      if (!parse_string(key)) return false;
      // Bytewise comparison: std::string_view compares with char_traits<char>, which
      // compares as unsigned char (memcmp semantics).
      const int cmp = first ? 1 : key.compare(previous);
      if (cmp <= 0 && limits_.sorted_keys) {
        return fail(cmp == 0 ? "duplicate dictionary key" : "dictionary keys not sorted", key_at);
      }
      first = false;
      if (cmp > 0) previous = key;  // the largest key so far
      Value v;
      if (!parse(v, depth)) return false;
      if (cmp <= 0) in_order = false;
      entries.emplace_back(std::string(key), std::move(v));
    }
    ++pos_;
    Dict items;
    if (in_order) {
      for (auto& e : entries)
        items.append_sorted(std::move(e.first), std::move(e.second));
    } else {
      items.assign_unsorted(std::move(entries));
    }
    out = Value(std::move(items));
    return true;
  }

  std::string_view in_;
  const DecodeLimits& limits_;
  size_t pos_ = 0;
  size_t elements_ = 0;
  Error error_;
};

}  // namespace

Result<Value> decode(std::string_view input, const DecodeLimits& limits) {
  return Decoder(input, limits).run();
}

Result<Value> decode_prefix(std::string_view input, const DecodeLimits& limits) {
  return Decoder(input, limits).run(true);
}

void encode_to(const Value& v, std::string& out) {
  switch (v.type()) {
    case Value::Type::kInteger:
      out += 'i';
      out += std::to_string(v.as_int());
      out += 'e';
      break;
    case Value::Type::kString:
      out += std::to_string(v.as_string().size());
      out += ':';
      out += v.as_string();
      break;
    case Value::Type::kList:
      out += 'l';
      for (const auto& item : v.as_list())
        encode_to(item, out);
      out += 'e';
      break;
    case Value::Type::kDict:
      out += 'd';
      for (const auto& [key, item] : v.as_dict()) {
        out += std::to_string(key.size());
        out += ':';
        out += key;
        encode_to(item, out);
      }
      out += 'e';
      break;
  }
}

std::string encode(const Value& v) {
  std::string out;
  encode_to(v, out);
  return out;
}

}  // namespace evert::bencode
