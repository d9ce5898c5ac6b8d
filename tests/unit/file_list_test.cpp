#include "evert/file_list.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "test_util.h"

namespace evert {
namespace {

using test::TempDir;
using test::write_file;

std::vector<std::string> paths(const ScanResult& r) {
  std::vector<std::string> out;
  for (const auto& f : r.files) {
    std::string s;
    for (const auto& c : f.path)
      s += (s.empty() ? "" : "/") + c;
    out.push_back(s);
  }
  return out;
}

TEST(FileList, SingleFile) {
  TempDir d;
  write_file(d / "movie.mkv", "12345");
  auto r = scan_path(d / "movie.mkv");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(r->single_file);
  EXPECT_EQ(r->name, "movie.mkv");
  EXPECT_EQ(r->total_size(), 5u);
}

TEST(FileList, FolderInBytewiseComponentOrder) {
  TempDir d;
  write_file(d / "top/b", "b");
  write_file(d / "top/a b", "ab");
  write_file(d / "top/a/z", "z");
  write_file(d / "top/A", "A");
  write_file(d / "top/a.txt", "t");
  auto r = scan_path(d / "top/");  // a trailing slash does not change the name
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->name, "top");
  EXPECT_FALSE(r->single_file);
  // Component order: "a" < "a b" < "a.txt" (compare {"a","z"} with {"a b"} on the first part).
  EXPECT_EQ(paths(*r), (std::vector<std::string>{"A", "a/z", "a b", "a.txt", "b"}));
}

TEST(FileList, HiddenFilesIncludedUnlessAsked) {
  TempDir d;
  write_file(d / "t/.hidden", "h");
  write_file(d / "t/.git/config", "c");
  write_file(d / "t/shown", "s");
  EXPECT_EQ(paths(*scan_path(d / "t")),
            (std::vector<std::string>{".git/config", ".hidden", "shown"}));
  ScanOptions o;
  o.include_hidden = false;
  EXPECT_EQ(paths(*scan_path(d / "t", o)), (std::vector<std::string>{"shown"}));
}

TEST(FileList, SymlinksSkippedWithWarningUnlessFollowed) {
  TempDir d;
  write_file(d / "t/real", "r");
  write_file(d / "outside/secret", "s");
  ASSERT_EQ(symlink((d / "outside/secret").c_str(), (d / "t/link").c_str()), 0);
  ASSERT_EQ(symlink((d / "outside").c_str(), (d / "t/dirlink").c_str()), 0);
  auto r = scan_path(d / "t");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(paths(*r), (std::vector<std::string>{"real"}));
  EXPECT_EQ(r->warnings.size(), 2u);
  ScanOptions o;
  o.follow_symlinks = true;
  EXPECT_EQ(paths(*scan_path(d / "t", o)),
            (std::vector<std::string>{"dirlink/secret", "link", "real"}));
}

TEST(FileList, SymlinkLoopIsAnError) {
  TempDir d;
  write_file(d / "t/f", "f");
  ASSERT_EQ(symlink((d / "t").c_str(), (d / "t/loop").c_str()), 0);
  ScanOptions o;
  o.follow_symlinks = true;
  auto r = scan_path(d / "t", o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("loop"), std::string::npos);
}

TEST(FileList, EmptyFilesKeptEmptyFoldersDropped) {
  TempDir d;
  write_file(d / "t/empty", "");
  write_file(d / "t/data", "x");
  std::filesystem::create_directories(d / "t/nothing/here");
  EXPECT_EQ(paths(*scan_path(d / "t")), (std::vector<std::string>{"data", "empty"}));
}

TEST(FileList, SpecialFilesSkipped) {
  TempDir d;
  write_file(d / "t/data", "x");
  ASSERT_EQ(mkfifo((d / "t/fifo").c_str(), 0600), 0);
  auto r = scan_path(d / "t");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(paths(*r), (std::vector<std::string>{"data"}));
  ASSERT_EQ(r->warnings.size(), 1u);
  EXPECT_NE(r->warnings[0].find("not a regular file"), std::string::npos);
}

TEST(FileList, Errors) {
  TempDir d;
  EXPECT_NE(scan_path(d / "missing").error().message.find("missing: cannot read"),
            std::string::npos);
  std::filesystem::create_directories(d / "emptydir");
  EXPECT_NE(scan_path(d / "emptydir").error().message.find("no files"), std::string::npos);
  write_file(d / "zeros/a", "");
  EXPECT_NE(scan_path(d / "zeros").error().message.find("every file is empty"), std::string::npos);
  write_file(d / "many/1", "1");
  write_file(d / "many/2", "2");
  ScanOptions o;
  o.max_files = 1;
  EXPECT_NE(scan_path(d / "many", o).error().message.find("more than 1 files"), std::string::npos);
}

TEST(FileList, DotPathUsesTheFolderName) {
  TempDir d;
  write_file(d / "named/x", "x");
  auto r = scan_path(d / "named/.");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->name, "named");
}

}  // namespace
}  // namespace evert
