// How long decoding and validating a 10 MB .torrent takes (target: well under 50 ms), for the
// two shapes a large torrent has: a huge "pieces" string, and a huge file list.
// Usage: decode_speed
#include <chrono>
#include <cstdio>
#include <string>

#include "evert/bencode.h"
#include "evert/metainfo.h"

namespace {

using evert::bencode::Dict;
using evert::bencode::List;
using evert::bencode::Value;

std::string big_pieces() {
  Dict info;
  info["name"] = "big.iso";
  info["piece length"] = 16384;
  const int64_t pieces = 500'000;  // 10 MB of SHA-1 hashes
  info["length"] = pieces * 16384;
  info["pieces"] = std::string(static_cast<size_t>(pieces) * 20, 'x');
  return evert::bencode::encode(Value(Dict{{"info", info}}));
}

std::string many_files() {
  Dict info;
  info["name"] = "archive";
  info["piece length"] = 1 << 20;
  List files;
  int64_t total = 0;
  for (int i = 0; i < 150'000; ++i) {
    Dict f;
    f["length"] = 1000 + i;
    f["path"] = List{Value("folder" + std::to_string(i / 1000)),
                     Value("file-number-" + std::to_string(i) + ".dat")};
    total += 1000 + i;
    files.emplace_back(std::move(f));
  }
  info["files"] = std::move(files);
  info["pieces"] = std::string(static_cast<size_t>((total + (1 << 20) - 1) >> 20) * 20, 'x');
  return evert::bencode::encode(Value(Dict{{"info", info}}));
}

void measure(const char* what, const std::string& torrent) {
  double best_decode = 1e9, best_parse = 1e9;
  for (int run = 0; run < 5; ++run) {
    auto t0 = std::chrono::steady_clock::now();
    auto v = evert::bencode::decode(torrent);
    auto t1 = std::chrono::steady_clock::now();
    auto m = evert::parse_metainfo(torrent);
    auto t2 = std::chrono::steady_clock::now();
    if (!v.ok() || !m.ok()) {
      std::printf("%s: failed: %s\n", what, m.ok() ? "decode" : m.error().message.c_str());
      return;
    }
    best_decode = std::min(best_decode, std::chrono::duration<double, std::milli>(t1 - t0).count());
    best_parse = std::min(best_parse, std::chrono::duration<double, std::milli>(t2 - t1).count());
  }
  std::printf("%-28s %6.1f MB  decode %6.1f ms  decode+validate+hash %6.1f ms\n", what,
              static_cast<double>(torrent.size()) / 1e6, best_decode, best_parse);
}

}  // namespace

int main() {
  measure("10 MB of piece hashes", big_pieces());
  measure("150,000 files", many_files());
  return 0;
}
