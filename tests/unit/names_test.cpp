#include "names.h"

#include <gtest/gtest.h>

namespace evert::web {
namespace {

std::string ok(std::string_view name) {
  auto r = sanitise_name(name);
  EXPECT_TRUE(r.ok()) << name << ": " << (r.ok() ? "" : r.error().message);
  return r.ok() ? *r : std::string();
}

std::string error(std::string_view name) {
  auto r = sanitise_name(name);
  EXPECT_FALSE(r.ok()) << name;
  return r.ok() ? std::string() : r.error().message;
}

TEST(SanitiseName, KeepsGoodNames) {
  for (const char* n :
       {"Album", "01 track.flac", "a", ".hidden", "..dots", "a.b.c", "-x-",
        "Ça va \xe2\x82\xac \xf0\x9f\x8e\xb5", "file:with?odd*chars|<>\"", "a b", "\xef\xbf\xbd",
        "\xf4\x8f\xbf\xbf", "COM10", "CONSOLE", "LPT", "nul_file", "con-txt"}) {
    EXPECT_EQ(ok(n), n);
  }
}

TEST(SanitiseName, Trims) {
  EXPECT_EQ(ok("  name"), "name");
  EXPECT_EQ(ok("name. . ."), "name");
  EXPECT_EQ(ok("name  "), "name");
  EXPECT_EQ(ok(" x.txt. "), "x.txt");
  EXPECT_EQ(ok("a  b"), "a  b");
  EXPECT_EQ(ok("...x"), "...x");
}

TEST(SanitiseName, WindowsDevicesGetAPrefix) {
  for (const char* n : {"CON", "con", "Prn", "AUX", "NUL", "nul.txt", "NUL.tar.gz", "COM1",
                        "com9.log", "COM0", "LPT1", "lpt9", "LPT0", "COM\xc2\xb9", "lpt\xc2\xb3.x",
                        "CONIN$", "conout$.txt", "NUL .txt"}) {
    EXPECT_EQ(ok(n), "_" + std::string(n)) << n;
  }
  EXPECT_EQ(ok("CON."), "_CON");  // trimmed first
  EXPECT_EQ(ok("  aux"), "_aux");
}

TEST(SanitiseName, Rejects) {
  EXPECT_EQ(error(""), "name is empty");
  EXPECT_EQ(error("."), "name \".\" is not allowed");
  EXPECT_EQ(error(".."), "name \"..\" is not allowed");
  EXPECT_EQ(error("  . "),
            "name \"  . \" is empty without its leading spaces and trailing dots and spaces");
  EXPECT_EQ(error("..."),
            "name \"...\" is empty without its leading spaces and trailing dots "
            "and spaces");
  EXPECT_EQ(error("a/b"), "name \"a/b\" contains '/'");
  EXPECT_EQ(error("a\\b"), "name \"a\\\\b\" contains '\\'");
  EXPECT_EQ(error(std::string("a\0b", 3)), "name \"a\\x00b\" contains a control character");
  EXPECT_EQ(error("tab\there"), "name \"tab\\x09here\" contains a control character");
  EXPECT_EQ(error("new\nline"), "name \"new\\x0aline\" contains a control character");
  EXPECT_EQ(error("del\x7f"), "name \"del\\x7f\" contains a control character");
  EXPECT_EQ(error("c1\xc2\x85"), "name \"c1\\u0085\" contains a control character");
  EXPECT_EQ(error("c1\xc2\x9f"), "name \"c1\\u009f\" contains a control character");
  EXPECT_EQ(error("q\"\x01"), "name \"q\\\"\\x01\" contains a control character");
  EXPECT_EQ(error("invoice\xe2\x80\xae"
                  "fdp.exe"),
            "name \"invoice\\u202efdp.exe\" contains a bidirectional override character");
  EXPECT_NE(error("x\xe2\x81\xa6y").find("bidirectional"), std::string::npos);  // U+2066
  EXPECT_EQ(ok("\xd7\xa9\xe2\x80\x8f.txt"), "\xd7\xa9\xe2\x80\x8f.txt");        // RLM is kept
  EXPECT_EQ(ok("\xf0\x9f\x91\xa9\xe2\x80\x8d\xf0\x9f\x92\xbb"),
            "\xf0\x9f\x91\xa9\xe2\x80\x8d\xf0\x9f\x92\xbb");  // ZWJ emoji
}

TEST(SanitiseName, RejectsBadUtf8) {
  for (const char* n :
       {"\x80", "a\xbf", "\xc0\xaf", "\xc1\xbf", "\xe0\x80\xaf", "\xf0\x80\x80\xaf", "\xed\xa0\x80",
        "\xed\xbf\xbf", "\xf4\x90\x80\x80", "\xf5\x80\x80\x80", "\xf8\x88\x80\x80\x80", "\xfe",
        "\xff", "\xe2\x82", "x\xe2\x82", "\xe2\x28\xa1", "\xc3"}) {
    const std::string e = error(n);
    EXPECT_NE(e.find("is not valid UTF-8"), std::string::npos) << e;
    EXPECT_EQ(e.find_first_of("\x80\xbf\xc0\xe0\xed\xf0\xf4\xf5\xf8\xfe\xff\xe2\xc3"),
              std::string::npos)
        << e;  // bad bytes are escaped in the message
  }
  EXPECT_EQ(error("\xc0\xaf"), "name \"\\xc0\\xaf\" is not valid UTF-8");
}

TEST(SanitiseName, Length) {
  EXPECT_EQ(ok(std::string(255, 'a')).size(), 255u);
  EXPECT_EQ(error(std::string(256, 'a')).substr(0, 6), "name \"");
  EXPECT_NE(error(std::string(256, 'a')).find("is longer than 255 bytes (256)"), std::string::npos);
  // Trimming happens first; the prefix counts.
  EXPECT_EQ(ok(std::string(255, 'a') + " ...").size(), 255u);
  EXPECT_EQ(ok("nul" + std::string(251, 'a')).size(), 254u);
  // 85 three-byte characters are 255 bytes; one more is rejected, not cut mid-character.
  std::string euros;
  for (int i = 0; i < 85; ++i)
    euros += "\xe2\x82\xac";
  EXPECT_EQ(ok(euros), euros);
  EXPECT_FALSE(sanitise_name(euros + "\xe2\x82\xac").ok());
  // The message quotes only the start of a long name.
  EXPECT_LT(error(std::string(5000, 'b')).size(), 120u);
}

std::vector<std::string> path_ok(std::string_view path) {
  auto r = sanitise_relative_path(path);
  EXPECT_TRUE(r.ok()) << path << ": " << (r.ok() ? "" : r.error().message);
  return r.ok() ? *r : std::vector<std::string>{};
}

std::string path_error(std::string_view path) {
  auto r = sanitise_relative_path(path);
  EXPECT_FALSE(r.ok()) << path;
  return r.ok() ? std::string() : r.error().message;
}

TEST(SanitiseRelativePath, Splits) {
  EXPECT_EQ(path_ok("Album/CD1/01 track.flac"),
            (std::vector<std::string>{"Album", "CD1", "01 track.flac"}));
  EXPECT_EQ(path_ok("one"), (std::vector<std::string>{"one"}));
  EXPECT_EQ(path_ok(" Album./con/x. "), (std::vector<std::string>{"Album", "_con", "x"}));
}

TEST(SanitiseRelativePath, Limits) {
  std::string deep = "d";
  for (int i = 1; i < 32; ++i)
    deep += "/d";
  EXPECT_EQ(path_ok(deep).size(), 32u);
  EXPECT_EQ(path_error(deep + "/d"), "path \"" + deep.substr(0, 60) +
                                         "...\" has more than 32 "
                                         "components");
  // 32 components of 127 bytes and 31 slashes are 4095 bytes.
  std::string long_path = std::string(127, 'p');
  for (int i = 1; i < 32; ++i)
    long_path += "/" + std::string(127, 'p');
  long_path += "x";
  ASSERT_EQ(long_path.size(), 4096u);
  EXPECT_EQ(path_ok(long_path).size(), 32u);
  EXPECT_NE(path_error(long_path + "x").find("is longer than 4096 bytes"), std::string::npos);
}

TEST(SanitiseRelativePath, Rejects) {
  EXPECT_EQ(path_error(""), "path is empty");
  EXPECT_EQ(path_error("/etc/passwd"), "path \"/etc/passwd\" is absolute");
  EXPECT_EQ(path_error("a//b"), "path \"a//b\" has an empty component");
  EXPECT_EQ(path_error("a/"), "path \"a/\" has an empty component");
  EXPECT_EQ(path_error("a/../b"), "path \"a/../b\", component 2: name \"..\" is not allowed");
  EXPECT_EQ(path_error("a/b/c\x01"),
            "path \"a/b/c\\x01\", component 3: name \"c\\x01\" contains a control character");
  EXPECT_EQ(path_error("a\\b/c"), "path \"a\\\\b/c\", component 1: name \"a\\\\b\" contains '\\'");
}

}  // namespace
}  // namespace evert::web
