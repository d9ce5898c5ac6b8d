#include "evert/metainfo.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "evert/merkle.h"

namespace evert {
namespace {

using bencode::Dict;
using bencode::List;
using bencode::Value;

std::string pieces_for(uint64_t total, uint64_t pl) {
  return std::string((total + pl - 1) / pl * 20, 'h');
}

// A valid single-file v1 torrent, which tests then break one key at a time.
Dict v1_single(uint64_t length = 100000, int64_t pl = 32768) {
  Dict info;
  info["name"] = "file.bin";
  info["piece length"] = pl;
  info["length"] = static_cast<int64_t>(length);
  info["pieces"] = pieces_for(length, static_cast<uint64_t>(pl));
  Dict top;
  top["announce"] = "http://tracker.example/announce";
  top["info"] = info;
  return top;
}

Dict v1_multi(const std::vector<std::pair<List, int64_t>>& files, int64_t pl = 16384) {
  Dict info;
  info["name"] = "folder";
  info["piece length"] = pl;
  List l;
  uint64_t total = 0;
  for (const auto& [path, len] : files) {
    Dict f;
    f["path"] = path;
    f["length"] = len;
    l.emplace_back(f);
    total += static_cast<uint64_t>(len);
  }
  info["files"] = l;
  info["pieces"] = pieces_for(total, static_cast<uint64_t>(pl));
  Dict top;
  top["info"] = info;
  return top;
}

Result<Metainfo> parse(const Dict& d) {
  return parse_metainfo(bencode::encode(Value(d)));
}

void expect_error(const Dict& d, const std::string& fragment) {
  auto r = parse(d);
  ASSERT_FALSE(r.ok()) << "accepted; expected error containing '" << fragment << "'";
  EXPECT_NE(r.error().message.find(fragment), std::string::npos)
      << "got '" << r.error().message << "', want '" << fragment << "'";
}

Dict& info_of(Dict& top) {
  return top["info"].as_dict();
}

TEST(Metainfo, V1SingleFile) {
  Dict t = v1_single();
  t["comment"] = "hello";
  t["created by"] = "test";
  t["creation date"] = 1700000000;
  info_of(t)["private"] = 1;
  info_of(t)["source"] = "SRC";
  auto r = parse(t);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->name, "file.bin");
  EXPECT_FALSE(r->multi_file);
  EXPECT_EQ(r->total_size, 100000u);
  EXPECT_EQ(r->piece_length, 32768u);
  EXPECT_EQ(r->piece_count(), 4u);
  EXPECT_EQ(r->version(), TorrentVersion::kV1);
  EXPECT_TRUE(r->is_private);
  EXPECT_EQ(r->source, "SRC");
  EXPECT_EQ(r->comment, "hello");
  EXPECT_EQ(r->created_by, "test");
  EXPECT_EQ(r->creation_date, 1700000000);
  ASSERT_EQ(r->trackers.size(), 1u);
  EXPECT_EQ(r->trackers[0][0], "http://tracker.example/announce");
  // The info-hash is the SHA-1 of the info dictionary's bytes.
  EXPECT_EQ(*r->info_hash_v1, Sha1::hash(bencode::encode(t["info"])));
  EXPECT_EQ(r->info_bytes, bencode::encode(t["info"]));
  EXPECT_FALSE(r->info_hash_v2);
}

TEST(Metainfo, V1MultiFileOffsets) {
  auto r = parse(v1_multi({{List{Value("a")}, 10},
                           {List{Value("sub"), Value("b")}, 0},
                           {List{Value("sub"), Value("c")}, 20000}}));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(r->multi_file);
  ASSERT_EQ(r->files.size(), 3u);
  EXPECT_EQ(r->files[1].path_string(), "sub/b");
  EXPECT_EQ(r->files[2].offset, 10u);
  EXPECT_EQ(r->total_size, 20010u);
  EXPECT_EQ(r->piece_count(), 2u);
}

TEST(Metainfo, AnnounceListTiersAndWebSeeds) {
  Dict t = v1_single();
  t["announce-list"] =
      List{List{Value("http://a"), Value("udp://b:1")}, List{}, List{Value("http://c")}};
  t["url-list"] = List{Value("http://ws1/"), Value("http://ws2/")};
  auto r = parse(t);
  ASSERT_TRUE(r.ok()) << r.error().message;
  // BEP 12: announce-list wins over announce; empty tiers are dropped.
  ASSERT_EQ(r->trackers.size(), 2u);
  EXPECT_EQ(r->trackers[0], (std::vector<std::string>{"http://a", "udp://b:1"}));
  EXPECT_EQ(r->trackers[1], (std::vector<std::string>{"http://c"}));
  EXPECT_EQ(r->web_seeds.size(), 2u);
  t["url-list"] = "http://single/";
  EXPECT_EQ(parse(t)->web_seeds, (std::vector<std::string>{"http://single/"}));
}

TEST(Metainfo, MissingAndMistypedKeys) {
  Dict t = v1_single();
  t.erase("info");
  expect_error(t, "missing key 'info'");
  t = v1_single();
  t["info"] = "x";
  expect_error(t, "'info' is not a dictionary");
  t = v1_single();
  info_of(t).erase("name");
  expect_error(t, "missing key 'name'");
  t = v1_single();
  info_of(t)["name"] = 5;
  expect_error(t, "info.name: expected a string");
  t = v1_single();
  info_of(t)["piece length"] = "big";
  expect_error(t, "info.piece length: expected an integer");
  t = v1_single();
  info_of(t)["piece length"] = 0;
  expect_error(t, "must be positive");
  t = v1_single();
  info_of(t).erase("pieces");
  expect_error(t, "missing 'pieces' (v1) and 'file tree' (v2)");
  t = v1_single();
  info_of(t).erase("length");
  expect_error(t, "missing 'length' or 'files'");
  t = v1_single();
  info_of(t)["length"] = -1;
  expect_error(t, "negative length");
  t = v1_single();
  t["announce"] = 7;
  expect_error(t, "announce: expected a string");
  t = v1_single();
  t["announce-list"] = List{Value("http://a")};
  expect_error(t, "announce-list");
  t = v1_single();
  t["creation date"] = "yesterday";
  expect_error(t, "creation date: expected an integer");
  t = v1_single();
  t["url-list"] = 3;
  expect_error(t, "url-list");
  EXPECT_FALSE(parse_metainfo("i1e").ok());
  EXPECT_NE(parse_metainfo("d4:infod").error().message.find("not valid bencode"),
            std::string::npos);
}

TEST(Metainfo, PieceCountMustMatchLength) {
  Dict t = v1_single(100000, 32768);
  info_of(t)["pieces"] = std::string(3 * 20, 'h');
  expect_error(t, "3 piece hashes, but the total length 100000 needs 4");
  info_of(t)["pieces"] = std::string(4 * 20 + 1, 'h');
  expect_error(t, "not a multiple of 20");
}

TEST(Metainfo, PathsThatEscapeAreRefused) {
  expect_error(v1_multi({{List{Value("..")}, 10}}), "would escape");
  expect_error(v1_multi({{List{Value("a"), Value("..")}, 10}}), "would escape");
  expect_error(v1_multi({{List{Value("/etc/passwd")}, 10}}), "absolute path");
  expect_error(v1_multi({{List{Value("a/b")}, 10}}), "'/' inside");
  expect_error(v1_multi({{List{Value("")}, 10}}), "empty path component");
  expect_error(v1_multi({{List{}, 10}}), "empty path");
  expect_error(v1_multi({{List{Value(std::string("a\0b", 3))}, 10}}), "NUL");
  expect_error(v1_multi({{List{Value(std::string(256, 'x'))}, 10}}), "longer than 255");
  Dict t = v1_single();
  info_of(t)["name"] = "..";
  expect_error(t, "would escape");
}

TEST(Metainfo, ConflictingPathsAreRefused) {
  expect_error(v1_multi({{List{Value("a")}, 10}, {List{Value("a")}, 10}}), "path conflict");
  expect_error(v1_multi({{List{Value("a")}, 10}, {List{Value("a"), Value("b")}, 10}}),
               "path conflict");
}

TEST(Metainfo, EmptyTorrentIsRefused) {
  expect_error(v1_multi({{List{Value("a")}, 0}}), "no data");
}

// A hand-built v2 torrent with one file of three 16 KiB pieces and one small file.
struct V2Fixture {
  Dict top;
  Sha256Digest big_root;
  std::string layer;
};

V2Fixture make_v2() {
  V2Fixture f;
  std::vector<Sha256Digest> pieces = {Sha256::hash("p0"), Sha256::hash("p1"), Sha256::hash("p2")};
  f.big_root = merkle::root_from_piece_layer(pieces, 16384);
  for (auto& p : pieces)
    f.layer += p.view();
  Dict big;
  big["length"] = 40000;
  big["pieces root"] = std::string(f.big_root.view());
  Dict small;
  small["length"] = 5;
  small["pieces root"] = std::string(Sha256::hash("small").view());
  Dict tree;
  tree["big.bin"] = Dict{{"", big}};
  tree["dir"] = Dict{{"small.txt", Dict{{"", small}}}};
  Dict info;
  info["name"] = "v2";
  info["piece length"] = 16384;
  info["meta version"] = 2;
  info["file tree"] = tree;
  f.top["info"] = info;
  f.top["piece layers"] = Dict{{std::string(f.big_root.view()), f.layer}};
  return f;
}

TEST(Metainfo, V2FileTreeAndPieceLayers) {
  V2Fixture f = make_v2();
  auto r = parse(f.top);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->version(), TorrentVersion::kV2);
  EXPECT_TRUE(r->multi_file);
  ASSERT_EQ(r->files.size(), 2u);
  EXPECT_EQ(r->files[0].path_string(), "big.bin");
  EXPECT_EQ(r->files[1].path_string(), "dir/small.txt");
  EXPECT_EQ(r->files[1].offset, 3u * 16384);  // v2 files start on piece boundaries
  EXPECT_EQ(*r->files[0].pieces_root, f.big_root);
  EXPECT_EQ(r->piece_count(), 4u);
  EXPECT_EQ(r->piece_layers.at(f.big_root), f.layer);
  const Sha256Digest ih = Sha256::hash(bencode::encode(f.top["info"]));
  EXPECT_EQ(*r->info_hash_v2, ih);
  EXPECT_EQ(r->info_hash_v2_truncated().view(), ih.view().substr(0, 20));
  EXPECT_FALSE(r->info_hash_v1);
}

TEST(Metainfo, V2PieceLayerMustMatchRoot) {
  V2Fixture f = make_v2();
  std::string bad = f.layer;
  bad[40] ^= 1;
  f.top["piece layers"] = Dict{{std::string(f.big_root.view()), bad}};
  expect_error(f.top, "does not match the file's pieces root");
  f.top["piece layers"] = Dict{{std::string(f.big_root.view()), f.layer.substr(32)}};
  expect_error(f.top, "2 hashes, expected 3");
  f.top.erase("piece layers");
  expect_error(f.top, "piece layers: 'big.bin': missing");
}

TEST(Metainfo, V2Validation) {
  V2Fixture f = make_v2();
  info_of(f.top)["piece length"] = 10000;
  expect_error(f.top, "power of two");
  f = make_v2();
  info_of(f.top)["meta version"] = 3;
  expect_error(f.top, "unsupported version 3");
  f = make_v2();
  info_of(f.top).erase("meta version");
  expect_error(f.top, "'file tree' without 'meta version' 2");
  f = make_v2();
  info_of(f.top)["file tree"].as_dict()[".."] = Dict{{"", Dict{{"length", 1}}}};
  expect_error(f.top, "would escape");
  f = make_v2();
  info_of(f.top)["file tree"].as_dict()["x"] = Dict{{"", Dict{{"length", 7}}}};
  expect_error(f.top, "missing key 'pieces root'");
}

// tests/data/malformed: each torrent with the error fragment it must give (expected.txt,
// written with the corpus by make.py).
TEST(Metainfo, MalformedCorpusIsRefusedWithTheRightReason) {
  const std::filesystem::path dir = std::filesystem::path(EVERT_TEST_DATA) / "malformed";
  std::ifstream manifest(dir / "expected.txt");
  ASSERT_TRUE(manifest) << "missing " << dir / "expected.txt";
  std::string line;
  int n = 0;
  while (std::getline(manifest, line)) {
    if (line.empty() || line[0] == '#') continue;
    const size_t tab = line.find('\t');
    ASSERT_NE(tab, std::string::npos) << line;
    const std::string file = (dir / line.substr(0, tab)).string();
    const std::string fragment = line.substr(tab + 1);
    ++n;
    auto r = load_metainfo(file);
    ASSERT_FALSE(r.ok()) << file << " was accepted";
    EXPECT_EQ(r.error().message.rfind(file, 0), 0u) << r.error().message;  // names the file
    EXPECT_NE(r.error().message.find(fragment), std::string::npos)
        << file << ": got '" << r.error().message << "', want '" << fragment << "'";
  }
  EXPECT_GE(n, 25);
}

TEST(Metainfo, LoadMissingFileNamesIt) {
  auto r = load_metainfo("/nonexistent/x.torrent");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("/nonexistent/x.torrent: cannot open"), std::string::npos);
}

}  // namespace
}  // namespace evert
