// evert/json_text.h: JSON text of names that are not UTF-8, and the UTF-8 check.
#include "evert/json_text.h"

#include <gtest/gtest.h>

namespace evert {
namespace {

TEST(JsonText, InvalidUtf8IsReplacedNotThrown) {
  const nlohmann::json j = {{"message", std::string("no route for /api/v1/\xff\xfe")}};
  EXPECT_THROW((void)j.dump(), nlohmann::json::type_error);  // what crashed the web module
  EXPECT_EQ(json_text(j), "{\"message\":\"no route for /api/v1/\xEF\xBF\xBD\xEF\xBF\xBD\"}");
  EXPECT_EQ(json_text(nlohmann::json{{"a", 1}}, 2), "{\n  \"a\": 1\n}");
}

TEST(ValidUtf8, AcceptsWellFormedText) {
  EXPECT_TRUE(valid_utf8(""));
  EXPECT_TRUE(valid_utf8("plain ascii"));
  EXPECT_TRUE(valid_utf8("caf\xC3\xA9"));                // U+00E9
  EXPECT_TRUE(valid_utf8("\xE2\x82\xAC"));               // U+20AC
  EXPECT_TRUE(valid_utf8("\xED\x9F\xBF"));               // U+D7FF, below the surrogates
  EXPECT_TRUE(valid_utf8("\xF0\x9F\x98\x80"));           // U+1F600
  EXPECT_TRUE(valid_utf8("\xF4\x8F\xBF\xBF"));           // U+10FFFF
  EXPECT_TRUE(valid_utf8(std::string_view("a\0b", 3)));  // NUL is a character
}

TEST(ValidUtf8, RefusesEveryMalformedKind) {
  EXPECT_FALSE(valid_utf8("\xFF"));
  EXPECT_FALSE(valid_utf8("caf\xE9"));             // Latin-1
  EXPECT_FALSE(valid_utf8("\x80"));                // a lone continuation byte
  EXPECT_FALSE(valid_utf8("\xC3"));                // cut short
  EXPECT_FALSE(valid_utf8("\xE2\x82"));            // cut short
  EXPECT_FALSE(valid_utf8("\xC0\xAF"));            // overlong '/'
  EXPECT_FALSE(valid_utf8("\xC1\xBF"));            // overlong
  EXPECT_FALSE(valid_utf8("\xE0\x80\xAF"));        // overlong
  EXPECT_FALSE(valid_utf8("\xF0\x80\x80\xAF"));    // overlong
  EXPECT_FALSE(valid_utf8("\xED\xA0\x80"));        // U+D800, a surrogate
  EXPECT_FALSE(valid_utf8("\xF4\x90\x80\x80"));    // past U+10FFFF
  EXPECT_FALSE(valid_utf8("\xF5\x80\x80\x80"));    // no such lead byte
  EXPECT_FALSE(valid_utf8("\xC3\x28"));            // a lead byte before ASCII
  EXPECT_FALSE(valid_utf8("ok\xE2\x82\xAC\xE2"));  // valid, then cut short
}

TEST(ValidUtf8, AgreesWithNlohmannOnEveryTwoByteString) {
  // nlohmann's strict dump() is the reference: it throws exactly where the text is not UTF-8.
  for (int a = 0; a < 256; ++a) {
    for (int b = 0; b < 256; ++b) {
      const std::string s{static_cast<char>(a), static_cast<char>(b)};
      bool strict_ok = true;
      try {
        (void)nlohmann::json(s).dump();
      } catch (const nlohmann::json::type_error&) {
        strict_ok = false;
      }
      ASSERT_EQ(valid_utf8(s), strict_ok) << a << " " << b;
    }
  }
}

}  // namespace
}  // namespace evert
