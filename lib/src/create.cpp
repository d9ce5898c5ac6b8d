#include "evert/create.h"

#include <bit>

#include "evert/bencode.h"
#include "evert/piece_hasher.h"

namespace evert {

using bencode::Dict;
using bencode::List;
using bencode::Value;

uint64_t auto_piece_length(uint64_t total_size) {
  constexpr uint64_t kTargetPieces = 2048;
  uint64_t pl = kMinPieceLength;
  while (pl < kMaxAutoPieceLength && (total_size + pl - 1) / pl > kTargetPieces)
    pl *= 2;
  return pl;
}

std::string check_piece_length(uint64_t pl) {
  if (!std::has_single_bit(pl)) return "piece size must be a power of two";
  if (pl < kMinPieceLength) return "piece size must be at least 16 KiB";
  if (pl > kMaxPieceLength) return "piece size must be at most 64 MiB";
  return {};
}

namespace {

Value path_list(const std::vector<std::string>& path) {
  List l;
  for (const auto& c : path)
    l.emplace_back(c);
  return l;
}

// v1 "files" list; for hybrids with padding files after every file that does not end on a
// piece boundary (BEP 47 attr "p", path ".pad/<size>", the form libtorrent writes).
Value v1_files(const ScanResult& input, uint64_t pl, bool pad) {
  List files;
  for (const auto& f : input.files) {
    Dict d;
    d["length"] = static_cast<int64_t>(f.size);
    d["path"] = path_list(f.path);
    files.emplace_back(std::move(d));
    if (pad && f.size % pl != 0) {
      const uint64_t n = pl - f.size % pl;
      Dict p;
      p["attr"] = "p";
      p["length"] = static_cast<int64_t>(n);
      p["path"] = path_list({".pad", std::to_string(n)});
      files.emplace_back(std::move(p));
    }
  }
  return files;
}

// v2 "file tree": nested dictionaries, a file being {"": {length, pieces root}}.
Value file_tree(const ScanResult& input, const std::string& name, const HashResult& h) {
  Dict root;
  for (size_t i = 0; i < input.files.size(); ++i) {
    const auto& f = input.files[i];
    const std::vector<std::string> path = input.single_file ? std::vector{name} : f.path;
    Dict* node = &root;
    for (const auto& c : path) {
      Value& child = (*node)[c];
      if (!child.is_dict()) child = Dict{};
      node = &child.as_dict();
    }
    Dict leaf;
    leaf["length"] = static_cast<int64_t>(f.size);
    if (f.size > 0) leaf["pieces root"] = std::string(h.files[i].pieces_root.view());
    (*node)[""] = std::move(leaf);
  }
  return root;
}

}  // namespace

Result<CreatedTorrent> create_torrent(const ScanResult& input, const CreateOptions& o) {
  const std::string name = o.name.empty() ? input.name : o.name;
  if (std::string why = check_path_component(name); !why.empty()) {
    return Error("invalid name '" + name + "': " + why);
  }
  const uint64_t pl = o.piece_length != 0 ? o.piece_length : auto_piece_length(input.total_size());
  if (std::string why = check_piece_length(pl); !why.empty()) return Error(why);
  for (const auto& tier : o.trackers) {
    for (const auto& url : tier) {
      if (url.empty()) return Error("empty tracker URL");
    }
  }

  const bool v1 = o.version != TorrentVersion::kV2;
  const bool v2 = o.version != TorrentVersion::kV1;
  const bool pad = o.version == TorrentVersion::kHybrid && !input.single_file;
  HashRequest req;
  req.files = &input.files;
  req.piece_length = pl;
  req.layout = !v2 ? Layout::kV1 : (v1 ? Layout::kHybrid : Layout::kV2);
  req.pad_files = pad;
  req.threads = o.threads;
  req.progress = o.progress;
  req.cancel = o.cancel;
  auto hashed = hash_files(req);
  if (!hashed) return hashed.error();

  Dict info;
  info["name"] = name;
  info["piece length"] = static_cast<int64_t>(pl);
  if (o.is_private) info["private"] = 1;
  if (!o.source.empty()) info["source"] = o.source;
  if (v1) {
    info["pieces"] = std::move(hashed->pieces);
    if (input.single_file) {
      info["length"] = static_cast<int64_t>(input.files[0].size);
    } else {
      info["files"] = v1_files(input, pl, pad);
    }
  }
  Dict layers;
  if (v2) {
    info["meta version"] = 2;
    info["file tree"] = file_tree(input, name, *hashed);
    for (auto& fh : hashed->files) {
      if (!fh.piece_layer.empty()) {
        layers[std::string(fh.pieces_root.view())] = std::move(fh.piece_layer);
      }
    }
  }

  Dict top;
  top["info"] = std::move(info);
  if (v2) top["piece layers"] = std::move(layers);
  if (!o.trackers.empty() && !o.trackers[0].empty()) top["announce"] = o.trackers[0][0];
  size_t tracker_count = 0;
  for (const auto& tier : o.trackers)
    tracker_count += tier.size();
  if (tracker_count > 1) {
    List tiers;
    for (const auto& tier : o.trackers) {
      List urls;
      for (const auto& u : tier)
        urls.emplace_back(u);
      if (!urls.empty()) tiers.emplace_back(std::move(urls));
    }
    top["announce-list"] = std::move(tiers);
  }
  if (o.web_seeds.size() == 1) {
    top["url-list"] = o.web_seeds[0];
  } else if (o.web_seeds.size() > 1) {
    List urls;
    for (const auto& u : o.web_seeds)
      urls.emplace_back(u);
    top["url-list"] = std::move(urls);
  }
  if (!o.comment.empty()) top["comment"] = o.comment;
  if (!o.created_by.empty()) top["created by"] = o.created_by;
  if (o.creation_date) top["creation date"] = *o.creation_date;

  CreatedTorrent out;
  out.bytes = bencode::encode(Value(std::move(top)));
  auto parsed = parse_metainfo(out.bytes);
  if (!parsed)
    return Error("internal error: created torrent does not parse: " + parsed.error().message);
  out.metainfo = std::move(parsed).value();
  return out;
}

}  // namespace evert
