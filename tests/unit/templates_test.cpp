// The web pages' templates escape every value they show: each template is rendered with every
// variable it names set to hostile text, and the text must come out escaped, never as markup.
// A new {{{unescaped}}} use of a value (or a template that does not parse) fails here.
#include "templates.h"

#include <gtest/gtest.h>

#include <regex>
#include <set>

#include "assets.h"

namespace evert::web {
namespace {

const std::string kHostile = "<script>alert(1)</script>\"'&<img src=x onerror=alert(2)>";

// The names of a template's tags ({{x}}, {{#x}}, {{^x}}, {{{x}}}).
std::set<std::string> tag_names(std::string_view tmpl) {
  std::set<std::string> out;
  static const std::regex tag(R"(\{\{\{?\s*[#^/]?\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}?\}\})");
  const std::string s(tmpl);
  for (auto it = std::sregex_iterator(s.begin(), s.end(), tag); it != std::sregex_iterator();
       ++it) {
    out.insert((*it)[1]);
  }
  return out;
}

TEST(Templates, EveryValueIsEscaped) {
  size_t checked = 0;
  for (const Asset& a : assets()) {
    if (!a.name.ends_with(".html")) continue;
    nlohmann::json data = nlohmann::json::object();
    for (const std::string& name : tag_names(a.bytes))
      data[name] = kHostile;
    // The two unescaped tags hold markup the site makes itself (the rendered page body, the
    // QR code's SVG); everything else is a value.
    data["body"] = "";
    data["qr"] = "";
    std::string error;
    const std::string out = render_template(a.name, data, &error);
    EXPECT_EQ(error, "") << a.name;
    EXPECT_EQ(out.find("<script>alert"), std::string::npos) << a.name << "\n" << out;
    EXPECT_EQ(out.find("<img src=x"), std::string::npos) << a.name << "\n" << out;
    ++checked;
  }
  EXPECT_GE(checked, 8u);
}

TEST(Templates, ValuesAreShownEscapedAndSectionsFollowTheData) {
  const std::string out = render_template(
      "index.html",
      {{"heading", "Published torrents"},
       {"has_torrents", true},
       {"torrents", {{{"hash", "ab"}, {"name", "<b>x</b> & y"}, {"magnet", "magnet:?a=1&b=2"}}}}});
  EXPECT_NE(out.find("&lt;b&gt;x&lt;/b&gt; &amp; y"), std::string::npos) << out;
  EXPECT_NE(out.find("href=\"magnet:?a=1&amp;b=2\""), std::string::npos) << out;
  EXPECT_EQ(out.find("id=\"next\""), std::string::npos);  // no next page: no link
  EXPECT_NE(render_template("index.html", {{"next", "/?page=2"}}).find("id=\"next\""),
            std::string::npos);
}

TEST(Templates, AnUnknownTemplateIsEmptyNotAnError) {
  std::string error;
  EXPECT_EQ(render_template("nope.html", {}, &error), "");
  EXPECT_EQ(error, "");
}

}  // namespace
}  // namespace evert::web
