#include "web_seed_http.h"

#include <gtest/gtest.h>

namespace evert::web {
namespace {

using Kind = RangeAnswer::Kind;

RangeAnswer R(std::string_view h, uint64_t size = 1000) {
  return parse_range(h, size);
}

void expect_partial(std::string_view h, uint64_t first, uint64_t last, uint64_t size = 1000) {
  const RangeAnswer a = R(h, size);
  EXPECT_EQ(a.kind, Kind::kPartial) << h;
  EXPECT_EQ(a.range, (ByteRange{first, last})) << h;
}

TEST(WebSeedRange, SingleRanges) {
  expect_partial("bytes=0-0", 0, 0);
  expect_partial("bytes=0-999", 0, 999);
  expect_partial("bytes=10-19", 10, 19);
  expect_partial("bytes=500-", 500, 999);
  expect_partial("bytes=990-5000", 990, 999);  // clamped to the end
  expect_partial("BYTES = 1-2 ", 1, 2);        // the unit is case-insensitive; OWS
  expect_partial("bytes=, 3-4,", 3, 4);        // empty list elements are ignored
}

TEST(WebSeedRange, SuffixRanges) {
  expect_partial("bytes=-1", 999, 999);
  expect_partial("bytes=-100", 900, 999);
  expect_partial("bytes=-1000", 0, 999);
  expect_partial("bytes=-5000", 0, 999);  // longer than the file: all of it
}

TEST(WebSeedRange, Unsatisfiable) {
  EXPECT_EQ(R("bytes=1000-").kind, Kind::kUnsatisfiable);
  EXPECT_EQ(R("bytes=1000-2000").kind, Kind::kUnsatisfiable);
  EXPECT_EQ(R("bytes=-0").kind, Kind::kUnsatisfiable);
  EXPECT_EQ(R("bytes=0-0", 0).kind, Kind::kUnsatisfiable);  // an empty file has no bytes
  EXPECT_EQ(R("bytes=-5", 0).kind, Kind::kUnsatisfiable);
  EXPECT_EQ(R("bytes=2000-, 3000-3001").kind, Kind::kUnsatisfiable);
}

TEST(WebSeedRange, IgnoredMeansFull) {
  for (const char* h : {"", "bytes", "bytes=", "bytes=,", "items=0-1", "bytes=a-b", "bytes=5-3",
                        "bytes=1-2-3", "bytes=--1", "bytes=0x1-2", "bytes=+1-2", "bytes=1 -2",
                        "bytes=99999999999999999999999-", "bytes=0-1;x"}) {
    EXPECT_EQ(R(h).kind, Kind::kFull) << h;
  }
  // Several ranges: the whole file, as long as one of them is satisfiable.
  EXPECT_EQ(R("bytes=0-1,5-6").kind, Kind::kFull);
  EXPECT_EQ(R("bytes=0-1,5000-6000").kind, Kind::kFull);
  // One invalid range invalidates the header.
  EXPECT_EQ(R("bytes=5000-6000,x").kind, Kind::kFull);
}

TEST(WebSeedRange, LargeFiles) {
  const uint64_t big = uint64_t{1} << 40;
  expect_partial("bytes=1099511627775-", big - 1, big - 1, big);
  expect_partial("bytes=-1099511627776", 0, big - 1, big);
  expect_partial("bytes=0-18446744073709551615", 0, big - 1, big);
}

TEST(WebSeedValidators, EtagDateAndIfRange) {
  EXPECT_EQ(entity_tag(1000, 0x1234), "\"3e8-1234\"");
  EXPECT_EQ(http_date(784111777), "Sun, 06 Nov 1994 08:49:37 GMT");
  const std::string tag = entity_tag(5, 6);
  const std::string date = http_date(784111777);
  EXPECT_TRUE(if_range_matches("", tag, date));
  EXPECT_TRUE(if_range_matches(tag, tag, date));
  EXPECT_TRUE(if_range_matches(date, tag, date));
  EXPECT_FALSE(if_range_matches("W/" + tag, tag, date));
  EXPECT_FALSE(if_range_matches("\"other\"", tag, date));
  EXPECT_FALSE(if_range_matches("Mon, 07 Nov 1994 08:49:37 GMT", tag, date));
}

TEST(WebSeedPath, SplitsAndDecodes) {
  const std::string hex = "0123456789abcdef0123456789ABCDEF01234567";
  auto p = parse_seed_path("/data/" + hex + "/My%20Folder/sub/a%2Bb.txt");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->info_hash.size(), 20U);
  EXPECT_EQ(p->components, (std::vector<std::string>{"My Folder", "sub", "a+b.txt"}));
  p = parse_seed_path("/data/" + hex + "/file.bin");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->components, (std::vector<std::string>{"file.bin"}));
}

TEST(WebSeedPath, RejectsEscapesAndJunk) {
  const std::string h = "/data/0123456789abcdef0123456789abcdef01234567";
  for (const std::string& s : std::vector<std::string>{
           h, h + "/", h + "/a/", h + "//a", h + "/..", h + "/a/../b", h + "/%2e%2E", h + "/.",
           h + "/a%2Fb", h + "/a%00b", h + "/a%", h + "/a%4", h + "/a%zz", "/data/0123/a",
           "/data/zz23456789abcdef0123456789abcdef01234567/a", "/other/x", "/data/"}) {
    EXPECT_FALSE(parse_seed_path(s)) << s;
  }
}

TEST(WebSeedPath, PercentDecode) {
  EXPECT_EQ(percent_decode("a%41%62c"), "aAbc");
  EXPECT_EQ(percent_decode("%e2%82%ac"), "\xe2\x82\xac");
  EXPECT_FALSE(percent_decode("%"));
  EXPECT_FALSE(percent_decode("%1"));
  EXPECT_FALSE(percent_decode("%g1"));
}

}  // namespace
}  // namespace evert::web
