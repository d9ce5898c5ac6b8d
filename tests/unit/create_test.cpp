#include "evert/create.h"

#include <gtest/gtest.h>

#include "evert/bencode.h"
#include "test_util.h"

namespace evert {
namespace {

using test::random_bytes;
using test::TempDir;
using test::write_file;

TEST(PieceSize, AutoRule) {
  EXPECT_EQ(auto_piece_length(0), 16u << 10);
  EXPECT_EQ(auto_piece_length(1), 16u << 10);
  EXPECT_EQ(auto_piece_length(32u << 20), 16u << 10);  // exactly 2048 pieces
  EXPECT_EQ(auto_piece_length((32u << 20) + 1), 32u << 10);
  EXPECT_EQ(auto_piece_length(2ull << 30), 1u << 20);    // 2 GiB: 2048 x 1 MiB
  EXPECT_EQ(auto_piece_length(700u << 20), 512u << 10);  // 1400 pieces
  EXPECT_EQ(auto_piece_length(32ull << 30), 16u << 20);  // 32 GiB: 2048 x 16 MiB
  EXPECT_EQ(auto_piece_length(1ull << 40), 16u << 20);   // never above 16 MiB
  for (uint64_t size = 40u << 20; size < (30ull << 30); size = size * 3 / 2) {
    const uint64_t pl = auto_piece_length(size);
    const uint64_t pieces = (size + pl - 1) / pl;
    EXPECT_GT(pieces, 1024u) << size;
    EXPECT_LE(pieces, 2048u) << size;
  }
}

TEST(PieceSize, Check) {
  EXPECT_EQ(check_piece_length(16384), "");
  EXPECT_EQ(check_piece_length(64u << 20), "");
  EXPECT_NE(check_piece_length(8192), "");
  EXPECT_NE(check_piece_length(128u << 20), "");
  EXPECT_NE(check_piece_length(3u << 20), "");
}

struct Tree {
  TempDir dir;
  Tree() {
    write_file(dir / "album/01 intro.ogg", random_bytes(70'000, 1));
    write_file(dir / "album/02.ogg", random_bytes(16384 * 4, 2));
    write_file(dir / "album/cover/front.jpg", random_bytes(999, 3));
    write_file(dir / "album/empty.txt", "");
  }
};

CreatedTorrent must_create(const std::string& path, const CreateOptions& o) {
  auto scan = scan_path(path);
  EXPECT_TRUE(scan.ok());
  auto c = create_torrent(*scan, o);
  EXPECT_TRUE(c.ok()) << (c.ok() ? "" : c.error().message);
  return c.ok() ? std::move(c).value() : CreatedTorrent{};
}

TEST(Create, HybridIsTheDefaultWithPaddingFiles) {
  Tree t;
  CreateOptions o;
  o.piece_length = 16384;
  const CreatedTorrent c = must_create(t.dir / "album", o);
  const Metainfo& m = c.metainfo;
  EXPECT_EQ(m.version(), TorrentVersion::kHybrid);
  EXPECT_EQ(m.name, "album");
  EXPECT_EQ(m.real_file_count(), 4u);
  EXPECT_EQ(m.total_size, 70'000u + 65536 + 999);
  // Every real file starts on a piece boundary; padding after each unaligned file.
  std::vector<std::string> order;
  for (const auto& f : m.files) {
    order.push_back(f.path_string());
    if (!f.is_pad() && f.length > 0) {
      EXPECT_EQ(f.offset % 16384, 0u) << f.path_string();
    }
  }
  EXPECT_EQ(order, (std::vector<std::string>{"01 intro.ogg", ".pad/11920", "02.ogg",
                                             "cover/front.jpg", ".pad/15385", "empty.txt"}));
  EXPECT_EQ(m.piece_count(), 5u + 4 + 1);
  ASSERT_TRUE(m.info_hash_v1 && m.info_hash_v2);
}

TEST(Create, V1AndV2Only) {
  Tree t;
  CreateOptions o;
  o.version = TorrentVersion::kV1;
  const CreatedTorrent v1 = must_create(t.dir / "album", o);
  EXPECT_EQ(v1.metainfo.version(), TorrentVersion::kV1);
  EXPECT_EQ(v1.metainfo.files.size(), 4u);  // no padding in v1
  EXPECT_EQ(v1.bytes.find("meta version"), std::string::npos);
  o.version = TorrentVersion::kV2;
  const CreatedTorrent v2 = must_create(t.dir / "album", o);
  EXPECT_EQ(v2.metainfo.version(), TorrentVersion::kV2);
  EXPECT_EQ(v2.bytes.find("6:pieces"), std::string::npos);
}

TEST(Create, KeysAndTiers) {
  Tree t;
  CreateOptions o;
  o.trackers = {{"http://a/announce", "udp://b:6969"}, {"http://c/announce"}};
  o.web_seeds = {"http://ws/"};
  o.is_private = true;
  o.source = "SRC";
  o.comment = "a comment";
  o.created_by = "Evertorrent test";
  o.creation_date = 1700000000;
  o.name = "renamed";
  const CreatedTorrent c = must_create(t.dir / "album", o);
  const Metainfo& m = c.metainfo;
  EXPECT_EQ(m.name, "renamed");
  EXPECT_EQ(m.trackers, o.trackers);
  EXPECT_EQ(m.web_seeds, o.web_seeds);
  EXPECT_TRUE(m.is_private);
  EXPECT_EQ(m.source, "SRC");
  EXPECT_EQ(m.comment, "a comment");
  EXPECT_EQ(m.created_by, "Evertorrent test");
  EXPECT_EQ(m.creation_date, 1700000000);
  auto top = bencode::decode(c.bytes);
  ASSERT_TRUE(top.ok());
  EXPECT_EQ(top->find("announce")->as_string(), "http://a/announce");
}

TEST(Create, SingleTrackerHasNoAnnounceList) {
  Tree t;
  CreateOptions o;
  o.trackers = {{"http://a/announce"}};
  const CreatedTorrent c = must_create(t.dir / "album", o);
  auto top = bencode::decode(c.bytes);
  EXPECT_EQ(top->find("announce-list"), nullptr);
}

TEST(Create, DeterministicWithoutDate) {
  Tree t;
  CreateOptions o;
  o.threads = 1;
  const std::string a = must_create(t.dir / "album", o).bytes;
  o.threads = 4;
  const std::string b = must_create(t.dir / "album", o).bytes;
  EXPECT_EQ(a, b);
}

TEST(Create, PrivateAndSourceChangeTheInfoHash) {
  Tree t;
  CreateOptions o;
  const auto plain = must_create(t.dir / "album", o).metainfo.info_hash_v1;
  o.is_private = true;
  const auto priv = must_create(t.dir / "album", o).metainfo.info_hash_v1;
  o.source = "X";
  const auto src = must_create(t.dir / "album", o).metainfo.info_hash_v1;
  EXPECT_NE(plain, priv);
  EXPECT_NE(priv, src);
}

TEST(Create, SingleFileHybridHasNoFilesList) {
  TempDir d;
  write_file(d / "one.bin", random_bytes(50'000, 5));
  CreateOptions o;
  const CreatedTorrent c = must_create(d / "one.bin", o);
  EXPECT_FALSE(c.metainfo.multi_file);
  EXPECT_EQ(c.metainfo.files.size(), 1u);
  EXPECT_EQ(c.bytes.find("5:files"), std::string::npos);
  EXPECT_EQ(c.metainfo.piece_count(), 4u);  // 50,000 bytes in 16 KiB pieces
}

TEST(Create, InvalidOptions) {
  Tree t;
  auto scan = scan_path(t.dir / "album");
  ASSERT_TRUE(scan.ok());
  CreateOptions o;
  o.piece_length = 3000;
  EXPECT_NE(create_torrent(*scan, o).error().message.find("power of two"), std::string::npos);
  o.piece_length = 0;
  o.name = "a/b";
  EXPECT_NE(create_torrent(*scan, o).error().message.find("invalid name"), std::string::npos);
  o.name = "";
  o.trackers = {{""}};
  EXPECT_NE(create_torrent(*scan, o).error().message.find("empty tracker"), std::string::npos);
}

}  // namespace
}  // namespace evert
