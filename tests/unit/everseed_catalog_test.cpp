#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "catalog.h"
#include "evert/bencode.h"
#include "evert/create.h"
#include "evert/daemon/event_loop.h"
#include "evert/daemon/worker_pool.h"
#include "test_util.h"

namespace evert::everseed {
namespace {

using test::TempDir;

std::unique_ptr<daemon::Store> open_store(const std::string& dir) {
  daemon::StoreOptions o;
  o.dir = dir;
  o.map_size = 1 << 20;
  auto s = daemon::Store::open(o);
  EXPECT_TRUE(s.ok());
  return s.ok() ? std::move(s).value() : nullptr;
}

CreatedTorrent make_torrent(const std::string& path) {
  auto scan = scan_path(path);
  EXPECT_TRUE(scan.ok());
  CreateOptions o;
  o.piece_length = 16384;
  o.threads = 1;
  auto c = create_torrent(*scan, o);
  EXPECT_TRUE(c.ok());
  return c.ok() ? std::move(c).value() : CreatedTorrent{};
}

// Moves a file's modification time without touching its bytes.
void touch_later(const std::string& path) {
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  timespec times[2] = {st.st_atim, st.st_mtim};
  times[1].tv_sec += 10;
  ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), times, 0), 0);
}

struct Fixture {
  TempDir dir;
  std::string data = dir / "data/file.bin";
  std::unique_ptr<daemon::Store> store;
  CreatedTorrent t;
  Fixture() {
    test::write_file(data, test::random_bytes(100'000, 7));
    store = open_store(dir / "state");
    t = make_torrent(data);
  }
  const Published* add(Catalog& c) {
    auto stamps = stamp_files(t.metainfo, data);
    EXPECT_TRUE(stamps.ok());
    bool added = false;
    auto p = c.add(t.bytes, t.metainfo, data, true, 1, added, *stamps);
    EXPECT_TRUE(p.ok());
    return p.ok() ? *p : nullptr;
  }
};

TEST(Catalog, StampsAreRecordedAndCheckedWhenOpened) {
  Fixture f;
  Catalog c(*f.store);
  const Published* p = f.add(c);
  ASSERT_NE(p, nullptr);
  EXPECT_TRUE(p->stamped);
  ASSERT_EQ(c.stamps(p->key).size(), 1u);
  EXPECT_EQ(c.stamps(p->key)[0].path, f.data);
  EXPECT_EQ(c.stamps(p->key)[0].size, 100'000u);
  std::string why;
  {
    auto t = c.open(p->key, why);
    ASSERT_NE(t, nullptr) << why;
    EXPECT_TRUE(check_stamps(t->stamps).ok());
    // Modified while open: the background check sees it, the open torrent is not reused.
    touch_later(f.data);
    auto s = check_stamps(t->stamps);
    ASSERT_FALSE(s.ok());
    EXPECT_NE(s.error().message.find("modified since it was published"), std::string::npos);
    c.set_problem(p->key, s.error().message);
    EXPECT_EQ(c.open(p->key, why), nullptr);
  }
  EXPECT_EQ(c.open(p->key, why), nullptr);
  EXPECT_NE(why.find("modified since it was published"), std::string::npos);
  EXPECT_EQ(c.find(p->key)->problem, why);

  // Published again (its data verified again): served again, with the new stamps.
  f.add(c);
  EXPECT_TRUE(c.find(p->key)->problem.empty());
  EXPECT_NE(c.open(p->key, why), nullptr) << why;

  // Truncated, then gone.
  ASSERT_EQ(::truncate(f.data.c_str(), 50'000), 0);
  EXPECT_EQ(c.open(p->key, why), nullptr);
  EXPECT_NE(why.find("its size changed"), std::string::npos);
  // The problem stays until the torrent is published again or verified: the first reason.
  std::filesystem::remove(f.data);
  EXPECT_EQ(c.open(p->key, why), nullptr);
  EXPECT_NE(why.find("its size changed"), std::string::npos);
  auto gone = check_stamps(c.stamps(p->key));
  ASSERT_FALSE(gone.ok());
  EXPECT_NE(gone.error().message.find("No such file"), std::string::npos);
}

// Issue 15: pages and the public API get a torrent's parsed metainfo from the catalog, parsed
// once (on a worker when warmed) and kept, not parsed on the loop on every view.
TEST(Catalog, MetainfoIsParsedOnceOnAWorkerAndKept) {
  Fixture f;
  Catalog c(*f.store);
  const Published* p = f.add(c);
  ASSERT_NE(p, nullptr);
  const InfoHash key = p->key;
  // Without workers (tests): parsed at once, kept.
  EXPECT_FALSE(c.metainfo_at_hand(key));
  Catalog::Metas now;
  EXPECT_EQ(c.warm_metainfo({key}, now, [](Catalog::Metas) { ADD_FAILURE() << "not later"; }),
            Catalog::Warm::kNow);
  ASSERT_EQ(now.count(key), 1u);
  EXPECT_TRUE(c.metainfo_at_hand(key));
  auto m = c.metainfo(key);
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m, now[key]);
  EXPECT_EQ(m->name, "file.bin");
  EXPECT_EQ(c.metainfo(key), m);  // the same, not parsed again
  EXPECT_EQ(c.parsed_on_workers(), 0u);
  // Removed: forgotten.
  ASSERT_TRUE(c.remove(key));
  EXPECT_FALSE(c.metainfo_at_hand(key));
  EXPECT_EQ(c.metainfo(key), nullptr);

  // With workers: parsed there, once for every caller waiting for it; `done` runs on the loop
  // after, never inside the call, with what was asked for.
  Catalog w(*f.store);
  p = f.add(w);
  ASSERT_NE(p, nullptr);
  daemon::EventLoop loop;
  daemon::WorkerPool pool(1);
  w.set_workers(loop, pool);
  int done = 0;
  Catalog::Metas first;
  Catalog::Metas second;
  Catalog::Metas none;
  EXPECT_EQ(w.warm_metainfo({key, key, InfoHash{}}, none,
                            [&](Catalog::Metas got) {
                              first = std::move(got);
                              ++done;
                            }),
            Catalog::Warm::kLater);
  EXPECT_EQ(w.warm_metainfo({key}, none,
                            [&](Catalog::Metas got) {
                              second = std::move(got);
                              if (++done == 2) loop.stop();
                            }),
            Catalog::Warm::kLater);
  EXPECT_EQ(done, 0);
  daemon::Timer guard(loop, [&] { loop.stop(); });
  guard.start(std::chrono::seconds(10), false);
  loop.run();
  EXPECT_EQ(done, 2);
  EXPECT_EQ(w.parsed_on_workers(), 1u);  // once, though asked for three times
  ASSERT_EQ(first.size(), 1u);           // the unknown key is left out
  EXPECT_EQ(first[key], second[key]);
  EXPECT_TRUE(w.metainfo_at_hand(key));
  Catalog::Metas again;
  EXPECT_EQ(w.warm_metainfo({key}, again, [](Catalog::Metas) {}), Catalog::Warm::kNow);
  EXPECT_EQ(again[key], first[key]);
  // An open torrent's metainfo is shared, not parsed again.
  std::string why;
  auto t = w.open(key, why);
  ASSERT_NE(t, nullptr) << why;
  EXPECT_NE(w.metainfo(key), nullptr);
}

TEST(Catalog, ATorrentOfManyFilesOpensThemWhenRead) {
  TempDir dir;
  const std::string folder = dir / "many";
  std::string all;
  for (int i = 0; i < 300; ++i) {
    const std::string bytes = test::random_bytes(1000 + static_cast<size_t>(i), i);
    char name[32];
    std::snprintf(name, sizeof name, "/f%03d", i);
    test::write_file(folder + name, bytes);
    all += bytes;
  }
  auto store = open_store(dir / "state");
  CreatedTorrent t = make_torrent(folder);
  Catalog c(*store);
  auto stamps = stamp_files(t.metainfo, folder);
  ASSERT_TRUE(stamps.ok());
  bool added = false;
  auto p = c.add(t.bytes, t.metainfo, folder, true, 1, added, *stamps);
  ASSERT_TRUE(p.ok());
  std::string why;
  auto open = c.open((*p)->key, why);
  ASSERT_NE(open, nullptr) << why;
  EXPECT_TRUE(open->on_demand);
  EXPECT_TRUE(std::all_of(open->fds.begin(), open->fds.end(), [](int fd) { return fd < 0; }));
  // Nothing open yet: the page cache path says "not cached" rather than open a file.
  std::string got(100, '\0');
  auto cached = open->read_cached(0, got.data(), 100);
  ASSERT_TRUE(cached.ok());
  EXPECT_EQ(*cached, 0u);
  // Every file read at its place in the stream (a hybrid: padding between them).
  size_t at = 0;
  for (const FileEntry& f : open->meta.files) {
    if (f.is_pad()) continue;
    std::string part(f.length, '\0');
    ASSERT_TRUE(open->read(f.offset, part.data(), part.size()).ok()) << f.path_string();
    EXPECT_TRUE(part == all.substr(at, f.length)) << f.path_string();
    at += f.length;
  }
  EXPECT_EQ(at, all.size());
  EXPECT_LE(open->recent.size(), Torrent::kKeptOpen);
  // A file changed in size since: its read fails, naming it.
  test::write_file(folder + "/f000", "short");
  open->recent.clear();
  auto r = open->read(0, got.data(), 10);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("f000: its size changed"), std::string::npos);
}

TEST(Catalog, SelectsByNameWholeHashOrPrefix) {
  Fixture f;
  Catalog c(*f.store);
  const Published* p = f.add(c);
  ASSERT_NE(p, nullptr);
  const std::string hex = to_hex(p->key.view());
  EXPECT_EQ(c.select(hex), std::vector<const Published*>{p});
  EXPECT_EQ(c.select(hex.substr(0, 6)), std::vector<const Published*>{p});
  EXPECT_EQ(c.select("file.bin"), std::vector<const Published*>{p});
  ASSERT_TRUE(p->alt.has_value());  // a hybrid: its truncated v2 hash selects it too
  EXPECT_EQ(c.select(to_hex(p->alt->view())), std::vector<const Published*>{p});
  EXPECT_TRUE(c.select(std::string(40, '0')).empty());
  EXPECT_TRUE(c.select("abc").empty());  // under 4 digits: a name, and no torrent has it
}

// MSE names the torrent by SHA-1("req2", hash): both hashes of a hybrid are found, after a
// restart too, and nothing once it is removed.
TEST(Catalog, FindsTorrentsByObfuscatedHashes) {
  Fixture f;
  auto req2 = [](const InfoHash& h) {
    Sha1 sha;
    sha.update("req2");
    sha.update(h.view());
    return sha.final();
  };
  InfoHash key;
  InfoHash alt;
  {
    Catalog c(*f.store);
    const Published* p = f.add(c);
    ASSERT_NE(p, nullptr);
    ASSERT_TRUE(p->alt.has_value());
    key = p->key;
    alt = *p->alt;
    InfoHash which;
    EXPECT_EQ(c.find_obfuscated(req2(key), which), p);
    EXPECT_EQ(which, key);
    EXPECT_EQ(c.find_obfuscated(req2(alt), which), p);
    EXPECT_EQ(which, alt);
    EXPECT_EQ(c.find_obfuscated(Sha1::hash(key.view()), which), nullptr);  // not req2's hash
  }
  Catalog c(*f.store);
  c.load();
  InfoHash which;
  ASSERT_NE(c.find_obfuscated(req2(alt), which), nullptr);
  EXPECT_EQ(which, alt);
  ASSERT_TRUE(c.remove(key));
  EXPECT_EQ(c.find_obfuscated(req2(key), which), nullptr);
  EXPECT_EQ(c.find_obfuscated(req2(alt), which), nullptr);
}

TEST(Catalog, StampsSurviveARestart) {
  Fixture f;
  InfoHash key;
  {
    Catalog c(*f.store);
    key = f.add(c)->key;
  }
  touch_later(f.data);
  Catalog c(*f.store);
  EXPECT_EQ(c.load(), 0u);
  ASSERT_NE(c.find(key), nullptr);
  EXPECT_TRUE(c.find(key)->stamped);
  EXPECT_EQ(c.stamped_keys().size(), 1u);
  EXPECT_FALSE(check_stamps(c.stamps(key)).ok());
  std::string why;
  EXPECT_EQ(c.open(key, why), nullptr);
}

TEST(Catalog, RowsWithoutStampsGetThemWhenFirstOpened) {
  Fixture f;
  InfoHash key;
  {
    Catalog c(*f.store);
    key = f.add(c)->key;
  }
  // Rewrite the row as format 1 wrote it: no "format", no "files".
  auto row = bencode::decode(*f.store->get("torrents", std::string(key.view())));
  ASSERT_TRUE(row.ok());
  bencode::Dict d = row->as_dict();
  d.erase("format");
  d.erase("files");
  f.store->put("torrents", std::string(key.view()), bencode::encode(bencode::Value(d)));

  Catalog c(*f.store);
  c.load();
  EXPECT_FALSE(c.find(key)->stamped);
  EXPECT_TRUE(c.stamps(key).empty());
  std::string why;
  EXPECT_NE(c.open(key, why), nullptr) << why;
  EXPECT_TRUE(c.find(key)->stamped);
  ASSERT_EQ(c.stamps(key).size(), 1u);
  touch_later(f.data);
  EXPECT_FALSE(check_stamps(c.stamps(key)).ok());
}

TEST(Catalog, MultiFileStampsUseRelativePaths) {
  TempDir dir;
  test::write_file(dir / "tree/a.bin", test::random_bytes(40'000, 1));
  test::write_file(dir / "tree/sub/b.bin", test::random_bytes(20'000, 2));
  test::write_file(dir / "tree/empty", "");
  auto store = open_store(dir / "state");
  const CreatedTorrent t = make_torrent(dir / "tree");
  auto stamps = stamp_files(t.metainfo, dir / "tree");
  ASSERT_TRUE(stamps.ok());
  ASSERT_EQ(stamps->size(), 2u);  // the empty file has nothing to serve
  Catalog c(*store);
  bool added = false;
  auto p = c.add(t.bytes, t.metainfo, dir / "tree", true, 1, added, *stamps);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(c.stamps((*p)->key), *stamps);
  auto row = bencode::decode(*store->get("torrents", std::string((*p)->key.view())));
  ASSERT_TRUE(row.ok());
  EXPECT_EQ(row->find("format")->as_int(), 2);
  EXPECT_EQ(row->find("files")->as_list()[0].as_list()[0].as_string(), "a.bin");
  std::string why;
  EXPECT_NE(c.open((*p)->key, why), nullptr) << why;
  touch_later(dir / "tree/sub/b.bin");
  auto s = check_stamps(c.stamps((*p)->key));
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("sub/b.bin"), std::string::npos);
}

TEST(Torrent, V2ReadsImpliedPaddingAsZeros) {
  // v2 only, 16 KiB pieces: a.bin (20,000 bytes) takes pieces 0-1, then b.bin starts at 32768.
  TempDir dir;
  const std::string a = test::random_bytes(20'000, 1);
  const std::string b = test::random_bytes(5'000, 2);
  test::write_file(dir / "tree/a.bin", a);
  test::write_file(dir / "tree/b.bin", b);
  auto store = open_store(dir / "state");
  auto scan = scan_path(dir / "tree");
  ASSERT_TRUE(scan.ok());
  CreateOptions o;
  o.version = TorrentVersion::kV2;
  o.piece_length = 16384;
  o.threads = 1;
  auto t = create_torrent(*scan, o);
  ASSERT_TRUE(t.ok());
  ASSERT_EQ(t->metainfo.files[1].offset, 32768u);
  EXPECT_EQ(t->metainfo.stream_size, 32768u + 5000);
  Catalog c(*store);
  bool added = false;
  auto p = c.add(t->bytes, t->metainfo, dir / "tree", true, 1, added,
                 *stamp_files(t->metainfo, dir / "tree"));
  ASSERT_TRUE(p.ok());
  std::string why;
  auto torrent = c.open((*p)->key, why);
  ASSERT_NE(torrent, nullptr) << why;
  // The second piece: a.bin's last 3,616 bytes, then zeros; then b.bin.
  std::string got(16384 + 5000, 'x');
  ASSERT_TRUE(torrent->read(16384, got.data(), got.size()).ok());
  EXPECT_EQ(got.substr(0, 3616), a.substr(16384));
  EXPECT_EQ(got.substr(3616, 16384 - 3616), std::string(16384 - 3616, '\0'));
  EXPECT_EQ(got.substr(16384), b);
  EXPECT_FALSE(torrent->read(32768 + 4000, got.data(), 2000).ok());  // past the end
}

}  // namespace
}  // namespace evert::everseed
