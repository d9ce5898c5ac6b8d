#include "evert/bencode.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>

namespace evert::bencode {
namespace {

Value must_decode(std::string_view s) {
  auto r = decode(s);
  EXPECT_TRUE(r.ok()) << s << ": " << (r.ok() ? "" : r.error().describe());
  return r.ok() ? r.value() : Value();
}

// The examples of BEP 3.
TEST(Bencode, SpecificationExamples) {
  EXPECT_EQ(must_decode("4:spam").as_string(), "spam");
  EXPECT_EQ(must_decode("0:").as_string(), "");
  EXPECT_EQ(must_decode("i3e").as_int(), 3);
  EXPECT_EQ(must_decode("i-3e").as_int(), -3);
  EXPECT_EQ(must_decode("i0e").as_int(), 0);
  const Value l = must_decode("l4:spam4:eggse");
  ASSERT_TRUE(l.is_list());
  EXPECT_EQ(l.as_list().size(), 2u);
  EXPECT_EQ(l.as_list()[1].as_string(), "eggs");
  const Value d = must_decode("d3:cow3:moo4:spam4:eggse");
  ASSERT_TRUE(d.is_dict());
  EXPECT_EQ(d.find("cow")->as_string(), "moo");
  EXPECT_EQ(d.find("spam")->as_string(), "eggs");
  EXPECT_EQ(d.find("nope"), nullptr);
  const Value dl = must_decode("d4:spaml1:a1:bee");
  EXPECT_EQ(dl.find("spam")->as_list()[1].as_string(), "b");
}

struct Rejection {
  const char* input;
  size_t offset;
  const char* reason;
};

class BencodeRejects : public ::testing::TestWithParam<Rejection> {};

TEST_P(BencodeRejects, WithOffsetAndReason) {
  const Rejection& r = GetParam();
  auto result = decode(r.input);
  ASSERT_FALSE(result.ok()) << r.input;
  EXPECT_EQ(result.error().offset, r.offset) << r.input << ": " << result.error().describe();
  EXPECT_NE(result.error().message.find(r.reason), std::string::npos)
      << r.input << ": got '" << result.error().message << "', want '" << r.reason << "'";
}

INSTANTIATE_TEST_SUITE_P(
    All, BencodeRejects,
    ::testing::Values(Rejection{"i03e", 0, "leading zero"}, Rejection{"i-0e", 0, "negative zero"},
                      Rejection{"i-03e", 0, "leading zero"}, Rejection{"ie", 0, "empty integer"},
                      Rejection{"i-e", 0, "empty integer"},
                      Rejection{"i+3e", 1, "invalid character"}, Rejection{"i3", 0, "no 'e'"},
                      Rejection{"i1.5e", 2, "invalid character"},
                      Rejection{"i9223372036854775808e", 0, "64-bit"},
                      Rejection{"i-9223372036854775809e", 0, "64-bit"},
                      Rejection{"04:spam", 0, "leading zero in string length"},
                      Rejection{"5:spam", 0, "past the end"}, Rejection{"4spam", 0, "no ':'"},
                      Rejection{"99999999999999999999999:x", 0, "too large"},
                      Rejection{"d4:spam4:eggs3:cow3:mooe", 13, "not sorted"},
                      Rejection{"d3:cow3:moo3:cow3:mooe", 11, "duplicate"},
                      Rejection{"di1e3:mooe", 1, "not a string"},
                      Rejection{"d3:cowe", 6, "expected a value"},
                      Rejection{"l4:spam", 0, "list has no 'e'"},
                      Rejection{"d3:cow3:moo", 0, "dictionary has no 'e'"},
                      Rejection{"4:spamx", 6, "trailing bytes"},
                      Rejection{"i1ei2e", 3, "trailing bytes"}, Rejection{"", 0, "truncated"},
                      Rejection{"x", 0, "unexpected byte"}, Rejection{"e", 0, "unexpected byte"}));

TEST(Bencode, UnsortedKeysWhenAllowed) {
  DecodeLimits lenient;
  lenient.sorted_keys = false;
  // Out of order, repeated (the last wins), and a key between two earlier ones.
  auto v = decode("d4:spam4:eggs3:cow3:moo4:spami1e3:dogi2ee", lenient);
  ASSERT_TRUE(v.ok()) << v.error().describe();
  ASSERT_TRUE(v->is_dict());
  EXPECT_EQ(v->as_dict().size(), 3u);
  EXPECT_EQ(v->find("spam")->as_int(), 1);
  EXPECT_EQ(v->find("cow")->as_string(), "moo");
  EXPECT_EQ(v->find("dog")->as_int(), 2);
  // Still sorted inside, so it encodes canonically.
  EXPECT_EQ(encode(*v), "d3:cow3:moo3:dogi2e4:spami1ee");
  // The other rules still hold.
  EXPECT_FALSE(decode("d3:cowi03ee", lenient).ok());
  EXPECT_FALSE(decode("d4:spam4:eggs3:cow3:mooe").ok());
}

TEST(Bencode, UnsortedDictionariesDecodeInLinearithmicTime) {
  // Issue 15: each out-of-order key was inserted in place (every later entry moved), so a
  // hostile tracker's reply of n keys in reverse order cost n^2: 200,000 keys took minutes on
  // the event loop. Sorted once at the end, they take well under a second.
  constexpr int kKeys = 200'000;
  std::string doc = "d";
  for (int i = kKeys - 1; i >= 0; --i) {
    const std::string key = "k" + std::to_string(1'000'000 + i);
    doc += std::to_string(key.size()) + ":" + key + "i" + std::to_string(i) + "e";
  }
  doc += "8:k1000005i-1ee";  // a repeat: the last wins
  DecodeLimits lenient;
  lenient.sorted_keys = false;
  const auto t0 = std::chrono::steady_clock::now();
  auto v = decode(doc, lenient);
  const auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_TRUE(v.ok()) << v.error().describe();
  EXPECT_LT(took, std::chrono::seconds(5));
  const Dict& d = v->as_dict();
  ASSERT_EQ(d.size(), static_cast<size_t>(kKeys));
  EXPECT_EQ(d.begin()->first, "k1000000");
  EXPECT_EQ(v->find("k1000005")->as_int(), -1);
  EXPECT_EQ(v->find("k1199999")->as_int(), kKeys - 1);
  EXPECT_TRUE(std::is_sorted(d.begin(), d.end(),
                             [](const auto& a, const auto& b) { return a.first < b.first; }));
}

TEST(Bencode, Int64Extremes) {
  EXPECT_EQ(must_decode("i9223372036854775807e").as_int(), INT64_MAX);
  EXPECT_EQ(must_decode("i-9223372036854775808e").as_int(), INT64_MIN);
}

TEST(Bencode, DepthLimit) {
  DecodeLimits limits;
  limits.max_depth = 8;
  std::string ok = std::string(8, 'l') + std::string(8, 'e');
  EXPECT_TRUE(decode(ok, limits).ok());
  std::string deep = std::string(9, 'l') + std::string(9, 'e');
  auto r = decode(deep, limits);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().offset, 8u);
  EXPECT_NE(r.error().message.find("nesting"), std::string::npos);
  // The default limit protects the stack against a megabyte of 'l'.
  EXPECT_FALSE(decode(std::string(1 << 20, 'l')).ok());
}

TEST(Bencode, ElementLimit) {
  DecodeLimits limits;
  limits.max_elements = 5;
  EXPECT_TRUE(decode("li1ei2ei3ei4ee", limits).ok());  // list + 4 = 5
  auto r = decode("li1ei2ei3ei4ei5ee", limits);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("too many elements"), std::string::npos);
  EXPECT_EQ(r.error().offset, 13u);
  // Keys count too.
  EXPECT_FALSE(decode("d1:ai1e1:bi2e1:ci3ee", limits).ok());
}

TEST(Bencode, RawBytesOfEveryElement) {
  const std::string input = "d4:infod6:lengthi5e4:name1:xe3:zzzli1eee";
  auto r = decode(input);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->raw(), input);
  EXPECT_EQ(r->find("info")->raw(), "d6:lengthi5e4:name1:xe");
  EXPECT_EQ(r->find("info")->find("length")->raw(), "i5e");
  EXPECT_EQ(r->find("zzz")->raw(), "li1ee");
  EXPECT_EQ(r->find("zzz")->as_list()[0].raw(), "i1e");
}

TEST(Bencode, KeysSortBytewiseAsUnsigned) {
  // 0x80 sorts after 'z' when bytes compare as unsigned, as bencode requires.
  EXPECT_TRUE(decode("d1:zi1e1:\x80i2ee").ok());
  EXPECT_FALSE(decode("d1:\x80i2e1:zi1ee").ok());
  // A prefix sorts first.
  EXPECT_TRUE(decode("d1:ai1e2:aai2ee").ok());
}

TEST(Bencode, BinaryStrings) {
  const std::string bin("3:\0\xff\n", 5);
  EXPECT_EQ(must_decode(bin).as_string(), std::string("\0\xff\n", 3));
}

TEST(Bencode, EncodeIsCanonical) {
  Dict d;
  d["zeta"] = 1;
  d["alpha"] = List{Value("x"), Value(int64_t{-42}), Value(Dict{})};
  d["mid"] = std::string("a\0b", 3);
  const std::string out = encode(Value(d));
  EXPECT_EQ(out, std::string("d5:alphal1:xi-42edee3:mid3:a\0b4:zetai1ee", 40));
}

TEST(Bencode, RoundTrips) {
  for (const char* s : {"i0e", "i-1e", "0:", "le", "de", "d1:ald1:bi1eeee",
                        "d4:infod6:lengthi5e4:name1:xe3:zzzli1eee", "l0:0:0:e"}) {
    auto r = decode(s);
    ASSERT_TRUE(r.ok()) << s;
    EXPECT_EQ(encode(*r), s);
  }
}

TEST(Bencode, DecodedValuesCompareEqualToBuiltOnes) {
  auto r = decode("d1:ai1e1:bl1:xee");
  ASSERT_TRUE(r.ok());
  Dict d;
  d["a"] = 1;
  d["b"] = List{Value("x")};
  EXPECT_EQ(*r, Value(d));
  d["a"] = 2;
  EXPECT_FALSE(*r == Value(d));
}

}  // namespace
}  // namespace evert::bencode
