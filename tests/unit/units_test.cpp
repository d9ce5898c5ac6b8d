#include "evert/units.h"

#include <gtest/gtest.h>

namespace evert {
namespace {

TEST(Units, ParseSize) {
  EXPECT_EQ(parse_size("0"), 0u);
  EXPECT_EQ(parse_size("1048576"), 1048576u);
  EXPECT_EQ(parse_size("16K"), 16384u);
  EXPECT_EQ(parse_size("16k"), 16384u);
  EXPECT_EQ(parse_size("16KiB"), 16384u);
  EXPECT_EQ(parse_size("16kb"), 16384u);
  EXPECT_EQ(parse_size("4M"), 4u << 20);
  EXPECT_EQ(parse_size("2G"), 2ull << 30);
  EXPECT_EQ(parse_size("1T"), 1ull << 40);
  EXPECT_EQ(parse_size("12B"), 12u);
  EXPECT_FALSE(parse_size(""));
  EXPECT_FALSE(parse_size("M"));
  EXPECT_FALSE(parse_size("-1"));
  EXPECT_FALSE(parse_size("1.5M"));
  EXPECT_FALSE(parse_size("1X"));
  EXPECT_FALSE(parse_size("99999999999T"));  // overflows
}

TEST(Units, FormatSize) {
  EXPECT_EQ(format_size(0), "0 B");
  EXPECT_EQ(format_size(1023), "1023 B");
  EXPECT_EQ(format_size(1024), "1.00 KiB");
  EXPECT_EQ(format_size(1536ull << 20), "1.50 GiB");
}

}  // namespace
}  // namespace evert
