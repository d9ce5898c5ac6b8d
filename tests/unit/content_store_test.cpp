// The content store: copying handed-over descriptors, sealing, and cleaning up after a crash.
#include "content_store.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "test_util.h"

namespace evert::everseed {
namespace {

using test::TempDir;

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

IncomingFile incoming(const TempDir& dir, const std::string& rel, const std::string& bytes,
                      std::vector<std::string> path) {
  std::filesystem::create_directories(std::filesystem::path(dir / rel).parent_path());
  std::ofstream(dir / rel, std::ios::binary) << bytes;
  IncomingFile f;
  f.path = std::move(path);
  f.size = bytes.size();
  f.fd.reset(::open((dir / rel).c_str(), O_RDONLY | O_CLOEXEC));
  return f;
}

TEST(ContentStore, CopiesAFolderAndSealsItReadOnly) {
  TempDir src, store;
  std::vector<IncomingFile> files;
  const std::string a = test::random_bytes(3 << 20, 1);
  files.push_back(incoming(src, "a.bin", a, {"a.bin"}));
  files.push_back(incoming(src, "sub/empty", "", {"sub", "empty"}));
  std::atomic<uint64_t> done{0};
  std::atomic<bool> cancel{false};
  const std::string into = store / ".incoming-1";
  auto scan = ContentStore::copy_in("album", files, into, done, cancel);
  ASSERT_TRUE(scan) << scan.error().message;
  EXPECT_EQ(done.load(), a.size());
  EXPECT_FALSE(scan->single_file);
  ASSERT_EQ(scan->files.size(), 2u);
  EXPECT_EQ(slurp(scan->files[0].disk_path), a);
  EXPECT_FALSE(files[0].fd.valid());  // the publisher's descriptor is let go once copied
  ASSERT_TRUE(ContentStore::seal(into, store / "final"));
  struct stat st {};
  ASSERT_EQ(::stat((store / "final/album/a.bin").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0444u);
  ASSERT_EQ(::stat((store / "final/album/sub").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0555u);
  ASSERT_TRUE(ContentStore::remove_tree(store / "final"));
  EXPECT_FALSE(std::filesystem::exists(store / "final"));
}

TEST(ContentStore, RefusesEscapesWrongSizesAndFoldersAndLeavesNothing) {
  TempDir src, store;
  std::atomic<uint64_t> done{0};
  std::atomic<bool> cancel{false};
  auto attempt = [&](std::vector<IncomingFile> files, const std::string& name) {
    auto r = ContentStore::copy_in(name, files, store / ".incoming-2", done, cancel);
    EXPECT_FALSE(std::filesystem::exists(store / ".incoming-2"));
    return r ? std::string() : r.error().message;
  };
  std::vector<IncomingFile> v;
  v.push_back(incoming(src, "x", "hello", {"..", "x"}));
  EXPECT_NE(attempt(std::move(v), "n").find("would escape"), std::string::npos);
  v.clear();
  v.push_back(incoming(src, "y", "hello", {}));
  EXPECT_NE(attempt(std::move(v), "../n").find("invalid name"), std::string::npos);
  v.clear();
  v.push_back(incoming(src, "z", "hello", {}));
  v[0].size = 4;
  EXPECT_NE(attempt(std::move(v), "n").find("size changed"), std::string::npos);
  v.clear();
  IncomingFile dir;
  dir.fd.reset(::open(src.path().c_str(), O_RDONLY | O_CLOEXEC));
  v.push_back(std::move(dir));
  EXPECT_NE(attempt(std::move(v), "n").find("not a regular file"), std::string::npos);
  v.clear();
  v.push_back(incoming(src, "w", test::random_bytes(1 << 20, 2), {}));
  cancel = true;
  EXPECT_EQ(attempt(std::move(v), "n"), "cancelled");
}

TEST(ContentStore, PrepareRemovesInterruptedPublishesAndFinishesCommittedOnes) {
  TempDir state;
  ContentStore cs(state / "content");
  ASSERT_TRUE(cs.prepare([](const std::string&) { return false; }));
  const std::string committed(40, 'a');
  const std::string orphan(40, 'b');
  std::filesystem::create_directories(cs.incoming_dir(7) + "/name");
  std::filesystem::create_directories(cs.staged_dir(committed) + "/name");
  std::filesystem::create_directories(cs.staged_dir(orphan) + "/name");
  ::chmod(cs.staged_dir(orphan).c_str(), 0555);
  auto notes = cs.prepare([&](const std::string& hex) { return hex == committed; });
  ASSERT_TRUE(notes);
  EXPECT_EQ(notes->size(), 3u);
  EXPECT_FALSE(std::filesystem::exists(cs.incoming_dir(7)));
  EXPECT_FALSE(std::filesystem::exists(cs.staged_dir(orphan)));
  EXPECT_TRUE(std::filesystem::exists(cs.final_dir(committed) + "/name"));
}

TEST(ContentStore, RetiredDataMovesAsideAtOnceAndStartUpFinishesItsRemoval) {
  TempDir state;
  ContentStore cs(state / "content");
  ASSERT_TRUE(cs.prepare([](const std::string&) { return false; }));
  const std::string hex(40, 'c');
  std::filesystem::create_directories(cs.final_dir(hex) + "/name");
  ::chmod(cs.final_dir(hex).c_str(), 0555);  // sealed, as published data is
  auto gone = cs.retire(hex);
  ASSERT_TRUE(gone) << gone.error().message;
  EXPECT_FALSE(std::filesystem::exists(cs.final_dir(hex)));
  EXPECT_TRUE(std::filesystem::exists(*gone + "/name"));
  // Nothing there: nothing to do.
  auto none = cs.retire(hex);
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty());
  // Published again meanwhile: its fresh folder is not the one being removed.
  std::filesystem::create_directories(cs.final_dir(hex) + "/name");
  auto notes = cs.prepare([](const std::string&) { return true; });  // e.g. a crash first
  ASSERT_TRUE(notes);
  EXPECT_EQ(notes->size(), 1u);
  EXPECT_FALSE(std::filesystem::exists(*gone));
  EXPECT_TRUE(std::filesystem::exists(cs.final_dir(hex) + "/name"));
}

}  // namespace
}  // namespace evert::everseed
