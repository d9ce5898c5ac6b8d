#include "form.h"

#include <gtest/gtest.h>

namespace evert::web {
namespace {

TEST(FormPercentDecode, Modes) {
  EXPECT_EQ(*percent_decode("a%41%62c", PlusMode::kLiteral), "aAbc");
  EXPECT_EQ(*percent_decode("%e2%82%AC", PlusMode::kLiteral), "\xe2\x82\xac");
  EXPECT_EQ(*percent_decode("a+b%2B", PlusMode::kLiteral), "a+b+");
  EXPECT_EQ(*percent_decode("a+b%2B", PlusMode::kSpace), "a b+");
  EXPECT_EQ(*percent_decode("%00", PlusMode::kSpace), std::string(1, '\0'));
  EXPECT_EQ(*percent_decode("", PlusMode::kSpace), "");
}

TEST(FormPercentDecode, MalformedEscapes) {
  for (const auto& [in, offset] : std::vector<std::pair<std::string, size_t>>{
           {"%", 0}, {"%1", 0}, {"ab%g1", 2}, {"%1g", 0}, {"ok%41%", 5}, {"% 1", 0}}) {
    auto r = percent_decode(in, PlusMode::kSpace);
    ASSERT_FALSE(r.ok()) << in;
    EXPECT_EQ(r.error().message, "malformed %-escape") << in;
    EXPECT_EQ(r.error().offset, offset) << in;
  }
}

TEST(FormUrlencoded, Fields) {
  auto f = parse_urlencoded("name=My+torrent&tags=a%2Cb&empty=&flag&=v&&dup=1&dup=2&e=a=b&");
  ASSERT_TRUE(f.ok());
  const FormFields want = {{"name", "My torrent"}, {"tags", "a,b"}, {"empty", ""},
                           {"flag", ""},           {"", "v"},       {"dup", "1"},
                           {"dup", "2"},           {"e", "a=b"}};
  EXPECT_EQ(*f, want);
  EXPECT_EQ(form_value(*f, "name"), "My torrent");
  EXPECT_EQ(form_value(*f, "dup"), "1");  // the first
  EXPECT_EQ(form_value(*f, "empty"), "");
  EXPECT_FALSE(form_value(*f, "missing"));
  EXPECT_FALSE(form_value(*f, "Name"));  // names are case-sensitive
  EXPECT_TRUE(parse_urlencoded("")->empty());
  EXPECT_TRUE(parse_urlencoded("&&&")->empty());
  EXPECT_EQ(*parse_urlencoded("a%3Db=c%26d"), (FormFields{{"a=b", "c&d"}}));
}

TEST(FormUrlencoded, Errors) {
  auto bad_name = parse_urlencoded("ok=1&b%zz=2");
  ASSERT_FALSE(bad_name.ok());
  EXPECT_EQ(bad_name.error().message, "form: malformed %-escape");
  EXPECT_EQ(bad_name.error().offset, 6u);
  auto bad_value = parse_urlencoded("ok=1&b=2%4");
  ASSERT_FALSE(bad_value.ok());
  EXPECT_EQ(bad_value.error().offset, 8u);
  std::string many;
  for (int i = 0; i < 256; ++i)
    many += "f" + std::to_string(i) + "=x&";
  EXPECT_EQ(parse_urlencoded(many)->size(), 256u);
  auto too_many = parse_urlencoded(many + "one=more");
  ASSERT_FALSE(too_many.ok());
  EXPECT_EQ(too_many.error().message, "form: more than 256 fields");
  EXPECT_EQ(parse_urlencoded("a&b&c", FormLimits{2}).error().message, "form: more than 2 fields");
  EXPECT_TRUE(parse_urlencoded("a&&b&", FormLimits{2}).ok());  // empty fields do not count
}

TEST(FormCookie, Parse) {
  EXPECT_EQ(parse_cookie("sid=abc", "sid"), "abc");
  EXPECT_EQ(parse_cookie("theme=dark; sid=abc; x=y", "sid"), "abc");
  EXPECT_EQ(parse_cookie("theme=dark;sid=abc", "sid"), "abc");
  EXPECT_EQ(parse_cookie("  sid = abc  ;x=1", "sid"), "abc");
  EXPECT_EQ(parse_cookie("sid=\"quoted\"", "sid"), "quoted");
  EXPECT_EQ(parse_cookie("sid=\"", "sid"), "\"");
  EXPECT_EQ(parse_cookie("sid=first; sid=second", "sid"), "first");
  EXPECT_EQ(parse_cookie("sid=", "sid"), "");
  EXPECT_EQ(parse_cookie("sid=a=b", "sid"), "a=b");
  EXPECT_EQ(parse_cookie("junk; sid=abc", "sid"), "abc");
  EXPECT_FALSE(parse_cookie("", "sid"));
  EXPECT_FALSE(parse_cookie("xsid=abc; sidx=abc", "sid"));
  EXPECT_FALSE(parse_cookie("SID=abc", "sid"));
  EXPECT_FALSE(parse_cookie("sid", "sid"));
}

TEST(FormCookie, SetCookie) {
  EXPECT_EQ(set_cookie("sid", "abc"), "sid=abc; Path=/; HttpOnly; SameSite=Strict");
  CookieOptions o;
  o.max_age = 3600;
  o.secure = true;
  o.path = "/admin";
  EXPECT_EQ(set_cookie("sid", "abc", o),
            "sid=abc; Path=/admin; Max-Age=3600; Secure; HttpOnly; SameSite=Strict");
  CookieOptions del;
  del.max_age = 0;
  del.http_only = false;
  del.same_site_strict = false;
  del.path = "";
  EXPECT_EQ(set_cookie("theme", "", del), "theme=; Max-Age=0; SameSite=Lax");
}

TEST(FormHtml, Escape) {
  EXPECT_EQ(html_escape("<a href=\"x\">Tom & Jerry's</a>"),
            "&lt;a href=&quot;x&quot;&gt;Tom &amp; Jerry&#39;s&lt;/a&gt;");
  EXPECT_EQ(html_escape("plain \xe2\x82\xac"), "plain \xe2\x82\xac");
  EXPECT_EQ(html_escape(""), "");
}

}  // namespace
}  // namespace evert::web
