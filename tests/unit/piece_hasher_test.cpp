#include "evert/piece_hasher.h"

#include <gtest/gtest.h>

#include <atomic>

#include "evert/merkle.h"
#include "test_util.h"

namespace evert {
namespace {

using test::random_bytes;
using test::TempDir;
using test::write_file;

// Reference implementations, written the obvious way, to check the parallel hasher against.
std::string reference_v1(const std::string& stream, uint64_t pl) {
  std::string out;
  for (uint64_t o = 0; o < stream.size(); o += pl)
    out += Sha1::hash(stream.substr(o, pl)).view();
  return out;
}

Sha256Digest reference_root(const std::string& data) {
  std::vector<Sha256Digest> leaves;
  for (uint64_t o = 0; o < data.size(); o += merkle::kBlockSize) {
    leaves.push_back(Sha256::hash(data.substr(o, merkle::kBlockSize)));
  }
  std::vector<Sha256Digest> level = leaves;
  level.resize(merkle::next_pow2(level.size()));  // zero leaves
  while (level.size() > 1) {
    std::vector<Sha256Digest> up;
    for (size_t i = 0; i < level.size(); i += 2)
      up.push_back(Sha256::hash_pair(level[i], level[i + 1]));
    level = up;
  }
  return level[0];
}

struct Files {
  TempDir dir;
  std::vector<InputFile> inputs;
  std::vector<std::string> contents;
  void add(const std::string& name, std::string data) {
    write_file(dir / name, data);
    inputs.push_back(InputFile{dir / name, {name}, data.size(), false});
    contents.push_back(std::move(data));
  }
};

void fill_sample(Files& f) {
  f.add("a", random_bytes(100'000, 1));
  f.add("empty", "");
  f.add("b", random_bytes(16384 * 3, 2));  // exactly three 16 KiB pieces
  f.add("c", random_bytes(5, 3));
  f.add("d", random_bytes(6 << 20, 4));  // large enough to be memory-mapped
}

struct Params {
  int threads;
  ReadMode mode;
};

HashResult must_hash(const Files& f, uint64_t pl, Layout layout, bool pad, Params p) {
  HashRequest r;
  r.read_mode = p.mode;
  r.files = &f.inputs;
  r.piece_length = pl;
  r.layout = layout;
  r.pad_files = pad;
  r.threads = p.threads;
  auto h = hash_files(r);
  EXPECT_TRUE(h.ok()) << (h.ok() ? "" : h.error().message);
  return h.ok() ? std::move(h).value() : HashResult{};
}

class HasherThreads : public ::testing::TestWithParam<Params> {};

TEST_P(HasherThreads, V1PiecesSpanFiles) {
  Files f;
  fill_sample(f);
  std::string stream;
  for (const auto& c : f.contents)
    stream += c;
  const HashResult h = must_hash(f, 32768, Layout::kV1, false, GetParam());
  EXPECT_EQ(h.pieces, reference_v1(stream, 32768));
  EXPECT_TRUE(h.files.empty());
}

TEST_P(HasherThreads, HybridPadsEachFileForSha1AndBuildsTrees) {
  Files f;
  fill_sample(f);
  const uint64_t pl = 32768;
  std::string stream;  // v1 stream with zero padding after every unaligned file
  for (const auto& c : f.contents) {
    stream += c;
    if (c.size() % pl != 0) stream += std::string(pl - c.size() % pl, '\0');
  }
  const HashResult h = must_hash(f, pl, Layout::kHybrid, true, GetParam());
  EXPECT_EQ(h.pieces, reference_v1(stream, pl));
  ASSERT_EQ(h.files.size(), f.contents.size());
  for (size_t i = 0; i < f.contents.size(); ++i) {
    const auto& c = f.contents[i];
    if (c.empty()) {
      EXPECT_TRUE(h.files[i].pieces_root.is_zero());
      continue;
    }
    EXPECT_EQ(h.files[i].pieces_root, reference_root(c)) << "file " << i;
    if (c.size() > pl) {
      EXPECT_EQ(h.files[i].piece_layer.size(), (c.size() + pl - 1) / pl * 32) << "file " << i;
    } else {
      EXPECT_TRUE(h.files[i].piece_layer.empty());
    }
  }
}

TEST_P(HasherThreads, V2OnlyHasNoSha1) {
  Files f;
  fill_sample(f);
  const HashResult h = must_hash(f, 65536, Layout::kV2, false, GetParam());
  EXPECT_TRUE(h.pieces.empty());
  EXPECT_EQ(h.files[4].pieces_root, reference_root(f.contents[4]));
}

INSTANTIATE_TEST_SUITE_P(ThreadsAndModes, HasherThreads,
                         ::testing::Values(Params{1, ReadMode::kAuto}, Params{2, ReadMode::kMap},
                                           Params{2, ReadMode::kRead}, Params{5, ReadMode::kMap},
                                           Params{5, ReadMode::kRead}));

TEST(Hasher, SingleFileHybridIsNotPadded) {
  Files f;
  f.add("one", random_bytes(40'000, 9));
  const HashResult h = must_hash(f, 16384, Layout::kHybrid, false, {2, ReadMode::kAuto});
  EXPECT_EQ(h.pieces, reference_v1(f.contents[0], 16384));
}

TEST(Hasher, ProgressReachesTotal) {
  Files f;
  fill_sample(f);
  HashRequest r;
  r.files = &f.inputs;
  r.piece_length = 16384;
  r.layout = Layout::kHybrid;
  uint64_t last_done = 0, last_total = 0;
  bool monotonic = true;
  r.progress = [&](uint64_t done, uint64_t total) {
    monotonic = monotonic && done >= last_done;
    last_done = done;
    last_total = total;
  };
  ASSERT_TRUE(hash_files(r).ok());
  EXPECT_TRUE(monotonic);
  uint64_t total = 0;
  for (const auto& c : f.contents)
    total += c.size();
  EXPECT_EQ(last_total, total);
  EXPECT_EQ(last_done, total);
}

TEST(Hasher, Cancelled) {
  Files f;
  fill_sample(f);
  std::atomic<bool> cancel{true};
  HashRequest r;
  r.files = &f.inputs;
  r.piece_length = 16384;
  r.cancel = &cancel;
  auto h = hash_files(r);
  ASSERT_FALSE(h.ok());
  EXPECT_EQ(h.error().message, "cancelled");
}

TEST(Hasher, FileChangedSinceListedOrMissing) {
  Files f;
  fill_sample(f);
  write_file(f.inputs[0].disk_path, "shorter now");
  HashRequest r;
  r.files = &f.inputs;
  r.piece_length = 16384;
  auto h = hash_files(r);
  ASSERT_FALSE(h.ok());
  EXPECT_NE(h.error().message.find("changed size since it was listed"), std::string::npos);
  f.inputs[0].disk_path = f.dir / "gone";
  h = hash_files(r);
  ASSERT_FALSE(h.ok());
  EXPECT_NE(h.error().message.find("gone: cannot open"), std::string::npos);
}

TEST(Hasher, RejectsBadV2PieceLength) {
  Files f;
  f.add("x", "data");
  HashRequest r;
  r.files = &f.inputs;
  r.piece_length = 12345;
  r.layout = Layout::kV2;
  EXPECT_FALSE(hash_files(r).ok());
}

}  // namespace
}  // namespace evert
