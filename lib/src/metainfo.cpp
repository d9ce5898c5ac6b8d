#include "evert/metainfo.h"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>

#include "evert/merkle.h"

namespace evert {

using bencode::Value;

std::string_view to_string(TorrentVersion v) {
  switch (v) {
    case TorrentVersion::kV1:
      return "v1";
    case TorrentVersion::kV2:
      return "v2";
    case TorrentVersion::kHybrid:
      return "hybrid";
  }
  return "?";
}

std::string FileEntry::path_string() const {
  std::string s;
  for (const auto& c : path) {
    if (!s.empty()) s += '/';
    s += c;
  }
  return s;
}

TorrentVersion Metainfo::version() const {
  if (has_v1() && has_v2()) return TorrentVersion::kHybrid;
  return has_v2() ? TorrentVersion::kV2 : TorrentVersion::kV1;
}

uint64_t Metainfo::piece_count() const {
  if (has_v1()) return pieces.size() / Sha1Digest::kSize;
  uint64_t n = 0;
  for (const auto& f : files)
    n += (f.length + piece_length - 1) / piece_length;
  return n;
}

Sha1Digest Metainfo::info_hash_v2_truncated() const {
  return Sha1Digest::from_bytes(info_hash_v2->view().substr(0, Sha1Digest::kSize));
}

size_t Metainfo::real_file_count() const {
  return static_cast<size_t>(
      std::count_if(files.begin(), files.end(), [](const FileEntry& f) { return !f.is_pad(); }));
}

std::string check_path_component(std::string_view c, const MetainfoLimits& limits) {
  if (c.empty()) return "empty path component";
  if (c == "." || c == "..") return "'" + std::string(c) + "' would escape the torrent's folder";
  if (c.find('/') != std::string_view::npos) {
    return c.front() == '/' ? "absolute path" : "'/' inside a path component";
  }
  if (c.find('\0') != std::string_view::npos) return "NUL byte in a path component";
  if (c.size() > limits.max_component_bytes) {
    return "path component longer than " + std::to_string(limits.max_component_bytes) + " bytes";
  }
  return {};
}

namespace {

// The parser state: the key path of what is being read, for error messages.
class Parser {
 public:
  explicit Parser(const MetainfoLimits& limits) : limits_(limits) {}

  Result<Metainfo> parse(std::string_view bytes) {
    auto doc = bencode::decode(bytes);
    if (!doc) return Error("not valid bencode: " + doc.error().describe());
    const Value& root = *doc;
    if (!root.is_dict()) return Error("the file is not a bencoded dictionary");
    const Value* info = root.find("info");
    if (info == nullptr) return Error("missing key 'info'");
    if (!info->is_dict()) return Error("'info' is not a dictionary");
    m_.info_bytes = std::string(info->raw());

    if (!parse_info(*info) || !parse_piece_layers(root) || !parse_outer(root)) {
      return std::move(error_);
    }
    if (m_.has_v1()) m_.info_hash_v1 = Sha1::hash(m_.info_bytes);
    if (m_.has_v2()) m_.info_hash_v2 = Sha256::hash(m_.info_bytes);
    return std::move(m_);
  }

 private:
  bool fail(const std::string& where, const std::string& what) {
    error_ = Error(where.empty() ? what : where + ": " + what);
    return false;
  }

  // Typed lookups: absent is reported as missing only when required.
  const Value* get(const Value& dict, std::string_view key, Value::Type type,
                   const std::string& where, bool required) {
    const Value* v = dict.find(key);
    const std::string at = where.empty() ? std::string(key) : where + "." + std::string(key);
    if (v == nullptr) {
      if (required) fail(where.empty() ? "" : where, "missing key '" + std::string(key) + "'");
      return nullptr;
    }
    if (v->type() != type) {
      static const char* kNames[] = {"an integer", "a string", "a list", "a dictionary"};
      fail(at, std::string("expected ") + kNames[static_cast<int>(type)]);
      return nullptr;
    }
    return v;
  }

  bool check_component(const std::string& where, std::string_view c) {
    const std::string why = check_path_component(c, limits_);
    return why.empty() || fail(where, why);
  }

  bool parse_info(const Value& info) {
    const Value* name = get(info, "name", Value::Type::kString, "info", true);
    if (name == nullptr) return false;
    m_.name = name->as_string();
    if (!check_component("info.name", m_.name)) return false;

    const Value* pl = get(info, "piece length", Value::Type::kInteger, "info", true);
    if (pl == nullptr) return false;
    if (pl->as_int() <= 0) return fail("info.piece length", "must be positive");
    m_.piece_length = static_cast<uint64_t>(pl->as_int());

    if (const Value* p = info.find("private")) {
      if (!p->is_int()) return fail("info.private", "expected an integer");
      m_.is_private = p->as_int() == 1;
    }
    if (const Value* s = info.find("source")) {
      if (!s->is_string()) return fail("info.source", "expected a string");
      m_.source = s->as_string();
    }

    const Value* mv = info.find("meta version");
    if (mv != nullptr) {
      if (!mv->is_int()) return fail("info.meta version", "expected an integer");
      if (mv->as_int() != 2) {
        return fail("info.meta version", "unsupported version " + std::to_string(mv->as_int()));
      }
      m_.meta_version = 2;
    }
    const bool v1 = info.find("pieces") != nullptr;
    const bool v2 = info.find("file tree") != nullptr;
    if (!v1 && !v2) return fail("info", "missing 'pieces' (v1) and 'file tree' (v2)");
    if (v2 && m_.meta_version != 2) return fail("info", "'file tree' without 'meta version' 2");
    if (!v2 && m_.meta_version == 2) return fail("info", "'meta version' 2 without 'file tree'");

    std::vector<FileEntry> v1_files;
    std::vector<FileEntry> v2_files;
    if (v1 && !parse_v1(info, v1_files)) return false;
    if (v2 && !parse_v2(info, v2_files)) return false;
    if (v1 && v2) return merge_hybrid(std::move(v1_files), std::move(v2_files));
    m_.files = v1 ? std::move(v1_files) : std::move(v2_files);
    if (v1) m_.info_hash_v1 = Sha1Digest{};  // marks the version; the real hash is set later
    if (v2) m_.info_hash_v2 = Sha256Digest{};
    return finish_files();
  }

  bool parse_v1(const Value& info, std::vector<FileEntry>& files) {
    const Value* length = info.find("length");
    const Value* list = info.find("files");
    if (length != nullptr && list != nullptr) return fail("info", "both 'length' and 'files'");
    if (length == nullptr && list == nullptr) return fail("info", "missing 'length' or 'files'");
    if (length != nullptr) {
      if (!length->is_int()) return fail("info.length", "expected an integer");
      if (length->as_int() < 0) return fail("info.length", "negative length");
      files.push_back(FileEntry{{m_.name}, static_cast<uint64_t>(length->as_int()), 0, {}, {}});
    } else {
      if (!list->is_list()) return fail("info.files", "expected a list");
      if (list->as_list().empty()) return fail("info.files", "empty file list");
      if (list->as_list().size() > limits_.max_files) return fail("info.files", "too many files");
      m_.multi_file = true;
      size_t i = 0;
      for (const Value& f : list->as_list()) {
        const std::string at = "info.files[" + std::to_string(i++) + "]";
        if (!f.is_dict()) return fail(at, "expected a dictionary");
        FileEntry e;
        if (!parse_v1_file(f, at, e)) return false;
        files.push_back(std::move(e));
      }
    }
    uint64_t offset = 0;
    for (auto& f : files) {
      f.offset = offset;
      if (offset + f.length < offset) return fail("info", "total length overflows");
      offset += f.length;
    }
    m_.stream_size = offset;

    const Value* pieces = get(info, "pieces", Value::Type::kString, "info", true);
    if (pieces == nullptr) return false;
    if (pieces->as_string().size() % Sha1Digest::kSize != 0) {
      return fail("info.pieces", "length is not a multiple of 20");
    }
    m_.pieces = pieces->as_string();
    const uint64_t expected = (offset + m_.piece_length - 1) / m_.piece_length;
    const uint64_t have = m_.pieces.size() / Sha1Digest::kSize;
    if (have != expected) {
      return fail("info.pieces", std::to_string(have) + " piece hashes, but the total length " +
                                     std::to_string(offset) + " needs " + std::to_string(expected));
    }
    return true;
  }

  bool parse_v1_file(const Value& f, const std::string& at, FileEntry& e) {
    const Value* len = get(f, "length", Value::Type::kInteger, at, true);
    if (len == nullptr) return false;
    if (len->as_int() < 0) return fail(at + ".length", "negative length");
    e.length = static_cast<uint64_t>(len->as_int());
    if (const Value* attr = f.find("attr")) {
      if (!attr->is_string()) return fail(at + ".attr", "expected a string");
      e.attr = attr->as_string();
    }
    const Value* path = get(f, "path", Value::Type::kList, at, true);
    if (path == nullptr) return false;
    if (path->as_list().empty()) return fail(at + ".path", "empty path");
    if (path->as_list().size() > limits_.max_path_depth) return fail(at + ".path", "too deep");
    for (const Value& c : path->as_list()) {
      if (!c.is_string()) return fail(at + ".path", "expected a list of strings");
      if (!check_component(at + ".path", c.as_string())) return false;
      e.path.push_back(c.as_string());
    }
    return true;
  }

  bool parse_v2(const Value& info, std::vector<FileEntry>& files) {
    if (!std::has_single_bit(m_.piece_length) || m_.piece_length < merkle::kBlockSize) {
      return fail("info.piece length", "v2 needs a power of two of at least 16 KiB");
    }
    const Value* tree = get(info, "file tree", Value::Type::kDict, "info", true);
    if (tree == nullptr) return false;
    std::vector<std::string> prefix;
    if (!walk_tree(*tree, prefix, files)) return false;
    if (files.empty()) return fail("info.file tree", "no files");
    // A single-file torrent's tree is {name: {"": {...}}}.
    const bool multi =
        !(files.size() == 1 && files[0].path.size() == 1 && files[0].path[0] == m_.name);
    if (info.find("pieces") != nullptr && multi != m_.multi_file) {
      return fail("info", "the v1 part and the v2 file tree disagree on single- or multi-file");
    }
    m_.multi_file = multi;
    uint64_t offset = 0;
    for (auto& f : files) {
      f.offset = offset;
      offset += (f.length + m_.piece_length - 1) / m_.piece_length * m_.piece_length;
    }
    return true;
  }

  bool walk_tree(const Value& node, std::vector<std::string>& prefix,
                 std::vector<FileEntry>& files) {
    const std::string at = "info.file tree/" + join(prefix);
    if (!node.is_dict()) return fail(at, "expected a dictionary");
    if (prefix.size() > limits_.max_path_depth) return fail(at, "too deep");
    if (const Value* leaf = node.find("")) {
      if (node.as_dict().size() != 1) return fail(at, "a file entry with other keys beside it");
      if (prefix.empty()) return fail(at, "file without a name");
      return parse_v2_file(*leaf, at, prefix, files);
    }
    if (node.as_dict().empty() && !prefix.empty()) return fail(at, "empty directory");
    for (const auto& [key, child] : node.as_dict()) {
      if (!check_component(at, key)) return false;
      prefix.push_back(key);
      if (!walk_tree(child, prefix, files)) return false;
      prefix.pop_back();
    }
    return true;
  }

  bool parse_v2_file(const Value& leaf, const std::string& at, const std::vector<std::string>& path,
                     std::vector<FileEntry>& files) {
    if (!leaf.is_dict()) return fail(at, "file entry is not a dictionary");
    if (files.size() >= limits_.max_files) return fail("info.file tree", "too many files");
    const Value* len = get(leaf, "length", Value::Type::kInteger, at, true);
    if (len == nullptr) return false;
    if (len->as_int() < 0) return fail(at + ".length", "negative length");
    FileEntry e;
    e.path = path;
    e.length = static_cast<uint64_t>(len->as_int());
    if (const Value* attr = leaf.find("attr")) {
      if (!attr->is_string()) return fail(at + ".attr", "expected a string");
      e.attr = attr->as_string();
    }
    if (e.length > 0) {
      const Value* root = get(leaf, "pieces root", Value::Type::kString, at, true);
      if (root == nullptr) return false;
      if (root->as_string().size() != Sha256Digest::kSize) {
        return fail(at + ".pieces root", "must be 32 bytes");
      }
      e.pieces_root = Sha256Digest::from_bytes(root->as_string());
    }
    files.push_back(std::move(e));
    return true;
  }

  // Hybrid (BEP 52): the v1 list must describe the same files as the tree, with padding files
  // aligning every file to a piece boundary.
  bool merge_hybrid(std::vector<FileEntry> v1_files, std::vector<FileEntry> v2_files) {
    size_t j = 0;
    for (auto& f : v1_files) {
      if (f.is_pad()) continue;
      const std::string at = "info.files: '" + f.path_string() + "'";
      if (j >= v2_files.size()) return fail(at, "is not in the v2 file tree");
      const FileEntry& g = v2_files[j++];
      const bool same_path = m_.multi_file ? f.path == g.path : g.path == std::vector{m_.name};
      if (!same_path || f.length != g.length) {
        return fail(at, "differs from the v2 file tree entry '" + g.path_string() + "'");
      }
      if (f.length > 0 && f.offset % m_.piece_length != 0) {
        return fail(at, "does not start on a piece boundary (padding missing)");
      }
      f.pieces_root = g.pieces_root;
      f.attr = g.attr.empty() ? f.attr : g.attr;
    }
    if (j != v2_files.size()) {
      return fail("info.file tree", "'" + v2_files[j].path_string() + "' is not in the v1 files");
    }
    m_.files = std::move(v1_files);
    m_.info_hash_v1 = Sha1Digest{};
    m_.info_hash_v2 = Sha256Digest{};
    return finish_files();
  }

  bool finish_files() {
    m_.total_size = 0;
    std::vector<const std::vector<std::string>*> paths;
    for (const auto& f : m_.files) {
      if (!f.is_pad()) {
        m_.total_size += f.length;
        paths.push_back(&f.path);
      }
    }
    if (m_.total_size == 0) return fail("info", "the torrent contains no data (total size 0)");
    if (!m_.has_v1()) {
      m_.stream_size = m_.files.back().offset + m_.files.back().length;
    }
    // Two files with the same path, or a file whose path is another's folder, cannot both
    // be written to disk.
    std::sort(paths.begin(), paths.end(), [](auto* a, auto* b) { return *a < *b; });
    for (size_t i = 1; i < paths.size(); ++i) {
      const auto& a = *paths[i - 1];
      const auto& b = *paths[i];
      if (a.size() <= b.size() && std::equal(a.begin(), a.end(), b.begin())) {
        return fail("info", "path conflict: '" + join(a) + "' and '" + join(b) + "'");
      }
    }
    return true;
  }

  bool parse_piece_layers(const Value& root) {
    if (!m_.has_v2()) return true;
    const Value* layers = root.find("piece layers");
    if (layers != nullptr && !layers->is_dict()) return fail("piece layers", "expected a dict");
    for (const auto& f : m_.files) {
      if (!f.pieces_root || f.length <= m_.piece_length) continue;
      const std::string at = "piece layers: '" + f.path_string() + "'";
      const Value* layer = layers ? layers->find(f.pieces_root->view()) : nullptr;
      if (layer == nullptr) return fail(at, "missing");
      if (!layer->is_string()) return fail(at, "expected a string");
      const uint64_t n = (f.length + m_.piece_length - 1) / m_.piece_length;
      const std::string& s = layer->as_string();
      if (s.size() != n * Sha256Digest::kSize) {
        return fail(at, std::to_string(s.size() / Sha256Digest::kSize) + " hashes, expected " +
                            std::to_string(n));
      }
      std::vector<Sha256Digest> hashes(n);
      for (uint64_t i = 0; i < n; ++i) {
        hashes[i] = Sha256Digest::from_bytes(std::string_view(s).substr(i * 32, 32));
      }
      if (merkle::root_from_piece_layer(hashes, m_.piece_length) != *f.pieces_root) {
        return fail(at, "does not match the file's pieces root");
      }
      m_.piece_layers[*f.pieces_root] = s;
    }
    return true;
  }

  bool parse_outer(const Value& root) {
    if (const Value* list = root.find("announce-list")) {
      if (!list->is_list()) return fail("announce-list", "expected a list of lists");
      for (const Value& tier : list->as_list()) {
        if (!tier.is_list()) return fail("announce-list", "expected a list of lists");
        std::vector<std::string> urls;
        for (const Value& url : tier.as_list()) {
          if (!url.is_string()) return fail("announce-list", "tracker URL is not a string");
          if (!url.as_string().empty()) urls.push_back(url.as_string());
        }
        if (!urls.empty()) m_.trackers.push_back(std::move(urls));
      }
    }
    if (const Value* a = get(root, "announce", Value::Type::kString, "", false)) {
      // BEP 12: when announce-list is present, announce is ignored.
      if (m_.trackers.empty() && !a->as_string().empty()) m_.trackers.push_back({a->as_string()});
    } else if (!error_.message.empty()) {
      return false;
    }
    if (const Value* u = root.find("url-list")) {
      if (u->is_string()) {
        if (!u->as_string().empty()) m_.web_seeds.push_back(u->as_string());
      } else if (u->is_list()) {
        for (const Value& url : u->as_list()) {
          if (!url.is_string()) return fail("url-list", "web seed URL is not a string");
          if (!url.as_string().empty()) m_.web_seeds.push_back(url.as_string());
        }
      } else {
        return fail("url-list", "expected a string or a list of strings");
      }
    }
    for (auto [key, field] : {std::pair{"comment", &m_.comment}, {"created by", &m_.created_by}}) {
      if (const Value* v = get(root, key, Value::Type::kString, "", false)) {
        *field = v->as_string();
      } else if (!error_.message.empty()) {
        return false;
      }
    }
    if (const Value* d = get(root, "creation date", Value::Type::kInteger, "", false)) {
      m_.creation_date = d->as_int();
    } else if (!error_.message.empty()) {
      return false;
    }
    return true;
  }

  static std::string join(const std::vector<std::string>& parts) {
    std::string s;
    for (const auto& p : parts)
      s += (s.empty() ? "" : "/") + p;
    return s;
  }

  const MetainfoLimits& limits_;
  Metainfo m_;
  Error error_;
};

}  // namespace

Result<Metainfo> parse_metainfo(std::string_view bytes, const MetainfoLimits& limits) {
  return Parser(limits).parse(bytes);
}

Result<Metainfo> load_metainfo(const std::string& path, const MetainfoLimits& limits) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error(path + ": cannot open: " + std::strerror(errno));
  std::string bytes;
  char buf[65536];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    bytes.append(buf, static_cast<size_t>(in.gcount()));
    if (bytes.size() > limits.max_file_bytes) {
      return Error(path + ": larger than " + std::to_string(limits.max_file_bytes) +
                   " bytes, not a torrent file");
    }
  }
  if (in.bad()) return Error(path + ": read error");
  auto m = parse_metainfo(bytes, limits);
  if (!m) return Error(path + ": " + m.error().message);
  return m;
}

}  // namespace evert
