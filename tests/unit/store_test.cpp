#include "evert/daemon/store.h"

#include <gtest/gtest.h>
#include <lmdb.h>

#include <atomic>

#include "test_util.h"

namespace evert::daemon {
namespace {

std::unique_ptr<Store> open_store(const std::string& dir, uint64_t map_size = 1 << 20) {
  StoreOptions o;
  o.dir = dir;
  o.map_size = map_size;
  auto s = Store::open(o);
  EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().message);
  return s.ok() ? std::move(s).value() : nullptr;
}

TEST(Store, ReadsSeePendingWritesAndCommitsSurviveReopen) {
  test::TempDir d;
  {
    auto s = open_store(d.path());
    s->put("test", "a", "1");
    s->put("test", "b", "2");
    EXPECT_EQ(s->get("test", "a"), "1");  // before any commit
    EXPECT_EQ(s->pending(), 2u);
    ASSERT_TRUE(s->flush().ok());
    EXPECT_EQ(s->pending(), 0u);
    s->del("test", "b");
    EXPECT_EQ(s->get("test", "b"), std::nullopt);
    ASSERT_TRUE(s->flush().ok());
  }
  auto s = open_store(d.path());
  EXPECT_EQ(s->get("test", "a"), "1");
  EXPECT_EQ(s->get("test", "b"), std::nullopt);
  EXPECT_EQ(s->get("torrents", "a"), std::nullopt);  // databases are separate
}

TEST(Store, ForEachMergesCommittedAndPendingInKeyOrder) {
  test::TempDir d;
  auto s = open_store(d.path());
  s->put("test", "p/1", "one");
  s->put("test", "p/3", "three");
  s->put("test", "q/1", "other");
  ASSERT_TRUE(s->flush().ok());
  s->put("test", "p/2", "two");
  s->del("test", "p/3");
  std::vector<std::string> seen;
  s->for_each("test", "p/",
              [&](const std::string& k, const std::string& v) { seen.push_back(k + "=" + v); });
  EXPECT_EQ(seen, (std::vector<std::string>{"p/1=one", "p/2=two"}));
  // An empty prefix walks everything committed (LMDB refuses empty keys: a regression).
  seen.clear();
  s->for_each("test", "",
              [&](const std::string& k, const std::string& v) { seen.push_back(k + "=" + v); });
  EXPECT_EQ(seen, (std::vector<std::string>{"p/1=one", "p/2=two", "q/1=other"}));
}

TEST(Store, FailedCommitKeepsTheChangesForTheNextOne) {
  test::TempDir d;
  auto s = open_store(d.path());
  std::atomic<int> fail{MDB_PANIC};
  s->set_fault([&] { return fail.load(); });
  s->put("test", "k", "v1");
  auto r = s->flush();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("commit"), std::string::npos);
  EXPECT_EQ(s->pending(), 1u);
  EXPECT_EQ(s->get("test", "k"), "v1");
  s->put("test", "k", "v2");  // newer than the failed batch: it wins
  fail = 0;
  ASSERT_TRUE(s->flush().ok());
  s.reset();
  EXPECT_EQ(open_store(d.path())->get("test", "k"), "v2");
}

TEST(Store, MapGrowsWhenFull) {
  test::TempDir d;
  auto s = open_store(d.path(), 1 << 20);  // 1 MiB
  const uint64_t before = s->map_size();
  const std::string value(64 * 1024, 'x');
  for (int i = 0; i < 64; ++i)
    s->put("test", "key" + std::to_string(i), value);  // 4 MiB
  ASSERT_TRUE(s->flush().ok());
  EXPECT_GT(s->map_size(), before);
  EXPECT_EQ(s->get("test", "key63"), value);
  s.reset();
  auto again = open_store(d.path(), 1 << 20);
  EXPECT_EQ(again->get("test", "key0"), value);
  EXPECT_GT(again->map_size(), before);  // an existing, grown map keeps its size
}

TEST(Store, NewerSchemaIsRefused) {
  test::TempDir d;
  {
    auto s = open_store(d.path());
    s->put("meta", "schema_version", std::to_string(kSchemaVersion + 1));
    ASSERT_TRUE(s->flush().ok());
  }
  StoreOptions o;
  o.dir = d.path();
  auto r = Store::open(o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("written by a newer evertd"), std::string::npos)
      << r.error().message;
}

TEST(Store, UnusableDirectory) {
  StoreOptions o;
  o.dir = "/proc/evert-cannot-exist";
  auto r = Store::open(o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("/proc/evert-cannot-exist"), std::string::npos);
}

}  // namespace
}  // namespace evert::daemon
