#include "catalog.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <tuple>

#include "evert/bencode.h"

namespace evert::everseed {
namespace {

std::string key_bytes(const InfoHash& h) {
  return std::string(h.view());
}

InfoHash wire_key(const Metainfo& m) {
  if (m.has_v1()) return InfoHash::from(m.info_hash_v1->view());
  return InfoHash::from(m.info_hash_v2_truncated().view());
}

// Row format 2 added "format" and "files"; rows without them are format 1 (no stamps).
constexpr int64_t kRowFormat = 2;

std::string index_row(const Published& p, const std::vector<FileStamp>& stamps) {
  bencode::Dict d;
  d["format"] = bencode::Value(kRowFormat);
  d["name"] = bencode::Value(p.name);
  d["size"] = bencode::Value(static_cast<int64_t>(p.size));
  d["data"] = bencode::Value(p.data_path);
  d["in_place"] = bencode::Value(int64_t{p.in_place ? 1 : 0});
  d["published"] = bencode::Value(p.published);
  if (p.alt) d["v2"] = bencode::Value(std::string(p.alt->view()));
  if (!stamps.empty()) {
    // Paths relative to `data` ("" for a single-file torrent's file), so the row stays small.
    bencode::List files;
    for (const FileStamp& s : stamps) {
      std::string rel = s.path == p.data_path ? "" : s.path.substr(p.data_path.size() + 1);
      files.push_back(bencode::Value(bencode::List{bencode::Value(std::move(rel)),
                                                   bencode::Value(static_cast<int64_t>(s.size)),
                                                   bencode::Value(s.mtime_ns)}));
    }
    d["files"] = bencode::Value(std::move(files));
  }
  return bencode::encode(bencode::Value(std::move(d)));
}

int64_t mtime_ns(const struct stat& st) {
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
}

// Why a file no longer matches its stamp; empty when it does.
std::string differs(const FileStamp& want, const struct stat& st) {
  if (static_cast<uint64_t>(st.st_size) != want.size) {
    return want.path + ": its size changed since it was published (" + std::to_string(st.st_size) +
           " bytes, was " + std::to_string(want.size) + ")";
  }
  if (mtime_ns(st) != want.mtime_ns) return want.path + ": modified since it was published";
  return {};
}

std::string file_path(const Metainfo& meta, const std::string& data_path, const FileEntry& f) {
  return meta.multi_file ? data_path + "/" + f.path_string() : data_path;
}

}  // namespace

Result<FileStamp> stamp_file(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return Error(path + ": " + std::strerror(errno));
  return FileStamp{path, static_cast<uint64_t>(st.st_size), mtime_ns(st)};
}

Result<std::vector<FileStamp>> stamp_files(const Metainfo& meta, const std::string& data_path) {
  std::vector<FileStamp> out;
  for (const FileEntry& f : meta.files) {
    if (f.is_pad() || f.length == 0) continue;
    auto s = stamp_file(file_path(meta, data_path, f));
    if (!s) return s.error();
    out.push_back(std::move(*s));
  }
  return out;
}

Status check_stamps(const std::vector<FileStamp>& stamps) {
  for (const FileStamp& want : stamps) {
    struct stat st {};
    if (::stat(want.path.c_str(), &st) != 0) {
      return Error(want.path + ": " + std::strerror(errno));
    }
    if (std::string why = differs(want, st); !why.empty()) return Error(why);
  }
  return Ok{};
}

Torrent::~Torrent() {
  for (int fd : fds)
    if (fd >= 0) ::close(fd);
}

std::shared_ptr<const UniqueFd> Torrent::file(size_t i, bool may_block, std::string& why) const {
  if (!on_demand) {
    why = "its files are open (fds)";
    return nullptr;
  }
  {
    std::lock_guard lock(recent_mu);
    for (size_t k = 0; k < recent.size(); ++k) {
      if (recent[k].first != i) continue;
      auto fd = recent[k].second;
      std::rotate(recent.begin() + static_cast<ptrdiff_t>(k),
                  recent.begin() + static_cast<ptrdiff_t>(k) + 1, recent.end());
      return fd;
    }
  }
  if (!may_block) return nullptr;
  const FileEntry& f = meta.files[i];
  const std::string path = file_path(meta, data_path, f);
  auto fd = std::make_shared<const UniqueFd>(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  struct stat st {};
  if (fd->get() < 0 || ::fstat(fd->get(), &st) != 0) {
    why = path + ": " + std::strerror(errno);
    return nullptr;
  }
  if (static_cast<uint64_t>(st.st_size) != f.length) {
    why = path + ": its size changed since it was published";
    return nullptr;
  }
  std::lock_guard lock(recent_mu);
  if (recent.size() >= kKeptOpen) recent.erase(recent.begin());  // closed when unused
  recent.emplace_back(i, fd);
  return fd;
}

Result<size_t> Torrent::read_from(uint64_t offset, char* out, size_t length, bool cached) const {
  // The file holding `offset` (or the last one starting before it): files are in stream order
  // with their offsets.
  auto it = std::upper_bound(meta.files.begin(), meta.files.end(), offset,
                             [](uint64_t o, const FileEntry& f) { return o < f.offset; });
  size_t i = static_cast<size_t>(it - meta.files.begin()) - 1;
  size_t total = 0;
  while (total < length) {
    if (i >= meta.files.size()) return Error("read past the end of the torrent");
    const FileEntry& f = meta.files[i];
    if (offset < f.offset) {
      // A v2 torrent's implied padding up to the piece boundary where this file starts.
      const size_t n = static_cast<size_t>(std::min<uint64_t>(length - total, f.offset - offset));
      std::memset(out, 0, n);
      out += n;
      offset += n;
      total += n;
      continue;
    }
    const uint64_t in_file = offset - f.offset;
    if (in_file >= f.length) {
      ++i;
      continue;
    }
    const size_t n = static_cast<size_t>(std::min<uint64_t>(length - total, f.length - in_file));
    if (f.is_pad()) {
      std::memset(out, 0, n);
    } else {
      // On demand: the file's descriptor, held while it is read. Opening may wait for the
      // disk: from the page cache (the loop), a file not open is "not cached".
      std::shared_ptr<const UniqueFd> held;
      int fd = fds[i];
      if (on_demand) {
        std::string why;
        held = file(i, !cached, why);
        if (!held) {
          if (cached) return total;
          return Error(why);
        }
        fd = held->get();
      }
      size_t done = 0;
      while (done < n) {
        iovec v{out + done, n - done};
        // RWF_NOWAIT: only what the page cache holds, without waiting for the disk (Linux 4.14).
        const ssize_t r =
            ::preadv2(fd, &v, 1, static_cast<off_t>(in_file + done), cached ? RWF_NOWAIT : 0);
        if (r < 0 && errno == EINTR) continue;
        if (cached && (r == 0 || (r < 0 && (errno == EAGAIN || errno == EOPNOTSUPP)))) {
          return total + done;  // the rest is on disk only (or the file is shorter: see read())
        }
        if (r < 0) return Error(f.path_string() + ": " + std::strerror(errno));
        if (r == 0) return Error(f.path_string() + ": shorter than the torrent says");
        done += static_cast<size_t>(r);
        if (cached && done < n) return total + done;  // a short read: the cache ends here
      }
    }
    out += n;
    offset += n;
    total += n;
    ++i;
  }
  return total;
}

Status Torrent::read(uint64_t offset, char* out, size_t length) const {
  auto r = read_from(offset, out, length, false);
  if (!r) return r.error();
  return Ok{};
}

Result<size_t> Torrent::read_cached(uint64_t offset, char* out, size_t length) const {
  return read_from(offset, out, length, true);
}

Result<Published> Catalog::entry_of(const Metainfo& meta, const std::string& data_path,
                                    bool in_place, int64_t now) {
  Published p;
  p.key = wire_key(meta);
  if (meta.has_v1() && meta.has_v2()) {
    p.alt = InfoHash::from(meta.info_hash_v2_truncated().view());
  }
  p.name = meta.name;
  p.size = meta.total_size;
  p.data_path = data_path;
  p.in_place = in_place;
  p.published = now;
  return p;
}

size_t Catalog::load() {
  size_t bad = 0;
  store_.for_each("torrents", "", [&](const std::string& k, const std::string& v) {
    auto d = bencode::decode(v);
    const bencode::Value* name = d ? d->find("name") : nullptr;
    const bencode::Value* data = d ? d->find("data") : nullptr;
    if (k.size() != 20 || name == nullptr || !name->is_string() || data == nullptr ||
        !data->is_string()) {
      ++bad;
      return;
    }
    Published p;
    p.key = InfoHash::from(k);
    p.name = name->as_string();
    p.data_path = data->as_string();
    if (const auto* s = d->find("size"); s != nullptr && s->is_int()) {
      p.size = static_cast<uint64_t>(s->as_int());
    }
    if (const auto* s = d->find("in_place"); s != nullptr && s->is_int()) {
      p.in_place = s->as_int() != 0;
    }
    if (const auto* s = d->find("published"); s != nullptr && s->is_int()) {
      p.published = s->as_int();
    }
    if (const auto* s = d->find("files"); s != nullptr && s->is_list()) {
      p.stamped = !s->as_list().empty();
    }
    if (const auto* s = d->find("v2");
        s != nullptr && s->is_string() && s->as_string().size() == 20) {
      p.alt = InfoHash::from(s->as_string());
      alias_[*p.alt] = p.key;
    }
    auto [it, fresh] = by_key_.emplace(p.key, std::move(p));
    if (fresh) index_obfuscated(it->second, true);
    newest_valid_ = false;
  });
  store_.for_each("counters", "", [&](const std::string& k, const std::string& v) {
    if (k.size() != 20) return;
    if (auto it = by_key_.find(InfoHash::from(k)); it != by_key_.end()) {
      it->second.uploaded = std::strtoull(v.c_str(), nullptr, 10);
    }
  });
  return bad;
}

Result<const Published*> Catalog::add(const std::string& torrent_bytes, const Metainfo& meta,
                                      const std::string& data_path, bool in_place, int64_t now,
                                      bool& added, std::vector<FileStamp> stamps, bool ready) {
  auto p = entry_of(meta, data_path, in_place, now);
  if (!p) return p.error();
  if (auto it = by_key_.find(p->key); it != by_key_.end()) {
    added = false;
    Published& e = it->second;
    if (!stamps.empty() && e.in_place && in_place &&
        (!e.problem.empty() || e.data_path == data_path)) {
      e.data_path = data_path;
      e.in_place = in_place;
      e.stamped = true;
      e.problem.clear();
      write_row(e, stamps);
      open_.erase(e.key);  // peers from now on get the files as verified now
    }
    return &e;
  }
  added = true;
  p->stamped = !stamps.empty();
  p->ready = ready;
  store_.put("metainfo", key_bytes(p->key), torrent_bytes);
  write_row(*p, stamps);
  if (p->alt) alias_[*p->alt] = p->key;
  auto [it, _] = by_key_.emplace(p->key, std::move(*p));
  index_obfuscated(it->second, true);
  newest_valid_ = false;
  return &it->second;
}

bool Catalog::remove(const InfoHash& key) {
  auto it = by_key_.find(key);
  if (it == by_key_.end()) return false;
  if (it->second.alt) alias_.erase(*it->second.alt);
  index_obfuscated(it->second, false);
  store_.del("torrents", key_bytes(key));
  store_.del("metainfo", key_bytes(key));
  store_.del("counters", key_bytes(key));
  open_.erase(key);
  forget_metainfo(key);
  ++removals_;  // a parse under way may be of what was removed: not kept (warm_metainfo())
  by_key_.erase(it);
  newest_valid_ = false;
  return true;
}

std::shared_ptr<const Metainfo> Catalog::metainfo_held(const InfoHash& key) {
  if (auto it = metas_.find(key); it != metas_.end()) {
    meta_lru_.splice(meta_lru_.begin(), meta_lru_, it->second.lru);
    return it->second.meta;
  }
  if (auto it = open_.find(key); it != open_.end()) {
    if (auto t = it->second.lock()) return {t, &t->meta};  // shares the open torrent's
  }
  return nullptr;
}

bool Catalog::metainfo_at_hand(const InfoHash& key) const {
  if (metas_.contains(key)) return true;
  auto it = open_.find(key);
  return it != open_.end() && !it->second.expired();
}

std::shared_ptr<const Metainfo> Catalog::metainfo(const InfoHash& key) {
  if (!by_key_.contains(key)) return nullptr;
  if (auto m = metainfo_held(key)) return m;
  auto bytes = torrent_bytes(key);
  if (!bytes) return nullptr;
  auto meta = parse_metainfo(*bytes);
  if (!meta) return nullptr;
  auto m = std::make_shared<const Metainfo>(std::move(*meta));
  keep_metainfo(key, m, bytes->size());
  return m;
}

void Catalog::keep_metainfo(const InfoHash& key, std::shared_ptr<const Metainfo> meta,
                            size_t cost) {
  if (!by_key_.contains(key) || metas_.contains(key)) return;
  // What it holds, roughly: the .torrent, the info dictionary and piece hashes it keeps a copy
  // of, and each file's entry with its path.
  cost += meta->info_bytes.size() + meta->pieces.size() + meta->files.size() * 160;
  meta_lru_.push_front(key);
  metas_.emplace(key, MetaEntry{std::move(meta), cost, meta_lru_.begin()});
  meta_bytes_ += cost;
  while (meta_lru_.size() > 1 &&
         (meta_bytes_ > kMetaCacheBytes || meta_lru_.size() > kMetaCacheEntries)) {
    forget_metainfo(meta_lru_.back());
  }
}

void Catalog::forget_metainfo(const InfoHash& key) {
  auto it = metas_.find(key);
  if (it == metas_.end()) return;
  meta_bytes_ -= it->second.cost;
  meta_lru_.erase(it->second.lru);
  metas_.erase(it);
}

Catalog::Warm Catalog::warm_metainfo(const std::vector<InfoHash>& keys, Metas& now,
                                     std::function<void(Metas)> done) {
  std::vector<InfoHash> wanted;
  for (const InfoHash& k : keys) {
    if (!by_key_.contains(k) || now.contains(k)) continue;
    if (auto m = metainfo_held(k)) {
      now.emplace(k, std::move(m));
    } else if (std::find(wanted.begin(), wanted.end(), k) == wanted.end()) {
      wanted.push_back(k);
    }
  }
  if (wanted.empty()) return Warm::kNow;
  if (workers_ == nullptr) {
    for (const InfoHash& k : wanted) {
      if (auto m = metainfo(k)) now.emplace(k, std::move(m));
    }
    return Warm::kNow;
  }
  std::vector<std::pair<InfoHash, std::string>> todo;  // not being parsed yet
  for (const InfoHash& k : wanted) {
    if (!parsing_.contains(k)) todo.emplace_back(k, std::string());
  }
  if (parsing_.size() + todo.size() > kMaxParsing) return Warm::kBusy;
  for (auto& [k, bytes] : todo) {
    if (auto b = torrent_bytes(k)) bytes = std::move(*b);
  }
  // This caller's part: what was at hand, and each key as its parse ends.
  struct Gather {
    Metas metas;
    size_t pending = 0;
    std::function<void(Metas)> done;
  };
  auto g = std::make_shared<Gather>();
  g->metas = now;
  g->pending = wanted.size();
  g->done = std::move(done);
  for (const InfoHash& k : wanted) {
    parsing_[k].push_back([this, g](const InfoHash& key, std::shared_ptr<const Metainfo> m) {
      if (m) g->metas.emplace(key, std::move(m));
      if (--g->pending > 0) return;
      // The newest in the cache while the caller renders (the API routes look them up).
      for (const auto& [mk, mv] : g->metas) {
        if (auto it = metas_.find(mk); it != metas_.end()) {
          meta_lru_.splice(meta_lru_.begin(), meta_lru_, it->second.lru);
        }
      }
      g->done(std::move(g->metas));
    });
  }
  if (todo.empty()) return Warm::kLater;
  parsed_on_workers_ += todo.size();
  workers_->submit([this, loop = loop_, alive = std::weak_ptr<bool>(alive_), removals = removals_,
                    todo = std::move(todo)]() mutable {
    using Parsed = std::vector<std::tuple<InfoHash, std::shared_ptr<const Metainfo>, size_t>>;
    auto parsed = std::make_shared<Parsed>();
    for (auto& [k, bytes] : todo) {
      auto meta = parse_metainfo(bytes);
      parsed->emplace_back(k, meta ? std::make_shared<const Metainfo>(std::move(*meta)) : nullptr,
                           bytes.size());
      std::string().swap(bytes);
    }
    loop->post([this, alive, parsed, removals] {
      if (alive.expired()) return;
      for (auto& [k, m, cost] : *parsed) {
        if (m && removals == removals_) keep_metainfo(k, m, cost);
        auto node = parsing_.extract(k);
        if (node.empty()) continue;
        for (auto& waiter : node.mapped())
          waiter(k, m);
      }
    });
  });
  return Warm::kLater;
}

void Catalog::set_ready(const InfoHash& key) {
  if (auto it = by_key_.find(key); it != by_key_.end()) it->second.ready = true;
}

void Catalog::set_problem(const InfoHash& key, std::string problem) {
  auto it = by_key_.find(key);
  if (it == by_key_.end()) return;
  it->second.problem = std::move(problem);
  if (!it->second.problem.empty()) open_.erase(key);
}

std::vector<const Published*> Catalog::select(const std::string& text, size_t max) const {
  std::vector<const Published*> out;
  const bool hex = text.size() >= 4 && text.size() <= 40 &&
                   text.find_first_not_of("0123456789abcdefABCDEF") == std::string::npos;
  std::string lower = text;
  for (char& c : lower)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  // A whole info-hash: one lookup (it wins over a name that happens to be those 40 digits).
  if (text.size() == 40 && hex) {
    if (auto raw = from_hex(lower, 20)) {
      if (const Published* p = find(InfoHash::from(*raw))) return {p};
    }
  }
  auto matches_prefix = [&lower](const InfoHash& h) {
    static constexpr char kDigits[] = "0123456789abcdef";
    for (size_t i = 0; i < lower.size(); ++i) {
      const uint8_t b = static_cast<uint8_t>(h.view()[i / 2]);
      if (kDigits[i % 2 == 0 ? b >> 4 : b & 15] != lower[i]) return false;
    }
    return true;
  };
  for (const auto& [k, p] : by_key_) {
    if (out.size() >= max) break;
    if (p.name == text || (hex && (matches_prefix(p.key) || (p.alt && matches_prefix(*p.alt))))) {
      out.push_back(&p);
    }
  }
  return out;
}

const Published* Catalog::find(const InfoHash& h) const {
  if (auto it = by_key_.find(h); it != by_key_.end()) return &it->second;
  if (auto a = alias_.find(h); a != alias_.end()) {
    if (auto it = by_key_.find(a->second); it != by_key_.end()) return &it->second;
  }
  return nullptr;
}

namespace {

Sha1Digest req2_of(const InfoHash& h) {
  Sha1 sha;
  sha.update("req2");
  sha.update(h.view());
  return sha.final();
}

uint64_t prefix_of(const Sha1Digest& d) {
  uint64_t v = 0;
  std::memcpy(&v, d.bytes.data(), sizeof v);
  return v;
}

}  // namespace

void Catalog::index_obfuscated(const Published& p, bool add) {
  for (const InfoHash* h : {&p.key, p.alt ? &*p.alt : nullptr}) {
    if (h == nullptr) continue;
    const uint64_t k = prefix_of(req2_of(*h));
    if (add) {
      obfuscated_.emplace(k, &p);
      continue;
    }
    for (auto [b, e] = obfuscated_.equal_range(k); b != e; ++b) {
      if (b->second == &p) {
        obfuscated_.erase(b);
        break;
      }
    }
  }
}

const Published* Catalog::find_obfuscated(const Sha1Digest& req2, InfoHash& which) const {
  for (auto [b, e] = obfuscated_.equal_range(prefix_of(req2)); b != e; ++b) {
    const Published* p = b->second;
    for (const InfoHash* h : {&p->key, p->alt ? &*p->alt : nullptr}) {
      if (h != nullptr && req2_of(*h) == req2) {
        which = *h;
        return p;
      }
    }
  }
  return nullptr;
}

const std::vector<const Published*>& Catalog::list() const {
  // Sorted once after a change, not at every call: the web index pages through it, and with
  // 100,000 torrents a sort costs ~20 ms (8 bytes a torrent kept).
  if (newest_valid_) return newest_;
  newest_.clear();
  newest_.reserve(by_key_.size());
  for (const auto& [k, p] : by_key_)
    newest_.push_back(&p);
  std::sort(newest_.begin(), newest_.end(), [](const Published* a, const Published* b) {
    return a->published != b->published ? a->published > b->published : a->key < b->key;
  });
  newest_valid_ = true;
  return newest_;
}

std::vector<InfoHash> Catalog::stamped_keys() const {
  std::vector<InfoHash> out;
  for (const auto& [k, p] : by_key_) {
    if (p.stamped) out.push_back(k);
  }
  return out;
}

std::optional<std::string> Catalog::torrent_bytes(const InfoHash& key) const {
  return store_.get("metainfo", key_bytes(key));
}

// The stamps a torrent's row records (its files under `data_path`; a row for 100,000 files is
// that many entries to decode: worker threads for a torrent being opened).
std::vector<FileStamp> stamps_of_row(std::string_view row, const std::string& data_path) {
  std::vector<FileStamp> out;
  auto d = bencode::decode(row);
  const bencode::Value* files = d ? d->find("files") : nullptr;
  if (files == nullptr || !files->is_list()) return out;
  for (const bencode::Value& v : files->as_list()) {
    if (!v.is_list() || v.as_list().size() != 3) return {};
    const auto& l = v.as_list();
    if (!l[0].is_string() || !l[1].is_int() || !l[2].is_int()) return {};
    const std::string& rel = l[0].as_string();
    out.push_back({rel.empty() ? data_path : data_path + "/" + rel,
                   static_cast<uint64_t>(l[1].as_int()), l[2].as_int()});
  }
  return out;
}

namespace {

// Parses the metainfo and opens and stats every file, checking each against its stamp.
// Blocking (a torrent of 100,000 files is as many open() and fstat() calls): worker threads.
Catalog::OpenOutcome open_files(Catalog::OpenInput in) {
  Catalog::OpenOutcome out;
  if (in.stamped) in.recorded = stamps_of_row(in.row, in.data_path);
  auto meta = parse_metainfo(in.bytes);
  if (!meta) {
    out.why = "its metainfo does not parse: " + meta.error().message;
    out.problem = true;
    return out;
  }
  auto t = std::make_shared<Torrent>();
  t->key = in.key;
  t->meta = std::move(*meta);
  t->fds.assign(t->meta.files.size(), -1);
  t->data_path = in.data_path;
  size_t data_files = 0;
  for (const FileEntry& f : t->meta.files)
    data_files += f.is_pad() || f.length == 0 ? 0 : 1;
  t->on_demand = data_files > Torrent::kOpenAtOnce;
  auto fail = [&](std::string reason) {
    out.why = std::move(reason);
    out.problem = true;
    return out;
  };
  for (size_t i = 0; i < t->meta.files.size(); ++i) {
    const FileEntry& f = t->meta.files[i];
    if (f.is_pad() || f.length == 0) continue;
    const std::string path = file_path(t->meta, in.data_path, f);
    struct stat st {};
    if (t->on_demand) {
      // Checked now, opened when read (Torrent::file()).
      if (::stat(path.c_str(), &st) != 0) return fail(path + ": " + std::strerror(errno));
    } else {
      const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) {
        // Out of descriptors or memory says nothing about the data: refused now, not stopped.
        if (errno == EMFILE || errno == ENFILE || errno == ENOMEM || errno == EINTR) {
          out.why = path + ": " + std::strerror(errno);
          return out;
        }
        return fail(path + ": " + std::strerror(errno));
      }
      t->fds[i] = fd;  // closed with t
      if (::fstat(fd, &st) != 0) return fail(path + ": " + std::strerror(errno));
    }
    FileStamp now{path, static_cast<uint64_t>(st.st_size), mtime_ns(st)};
    const size_t k = t->stamps.size();
    if (in.stamped) {
      if (k >= in.recorded.size() || in.recorded[k].path != path) {
        return fail(path + ": not among the files recorded when it was published");
      }
      if (std::string d = differs(in.recorded[k], st); !d.empty()) return fail(d);
    }
    if (now.size != f.length) return fail(path + ": its size changed since it was published");
    t->stamps.push_back(std::move(now));
  }
  if (in.stamped && t->stamps.size() != in.recorded.size()) {
    return fail(in.data_path + ": the files differ from those recorded when it was published");
  }
  out.torrent = std::move(t);
  return out;
}

}  // namespace

// What can be said at once: nullptr with `why` when refused, the torrent when it is open; else
// nullptr with `why` empty and `in` filled for open_files().
std::shared_ptr<const Torrent> Catalog::open_start(const InfoHash& key, std::string& why,
                                                   Catalog::OpenInput* in) {
  why.clear();
  auto pit = by_key_.find(key);
  if (pit == by_key_.end()) {
    why = "not published";
    return nullptr;
  }
  Published& p = pit->second;
  if (!p.ready) {
    why = "its data is being put in place";
    return nullptr;
  }
  if (!p.problem.empty()) {  // stays until published again or verified (set_problem)
    why = p.problem;
    return nullptr;
  }
  if (auto it = open_.find(key); it != open_.end()) {
    if (auto t = it->second.lock()) return t;
  }
  auto bytes = torrent_bytes(key);
  if (!bytes) {
    why = "its metainfo is missing from the store";
    return nullptr;
  }
  in->key = key;
  in->bytes = std::move(*bytes);
  in->data_path = p.data_path;
  in->stamped = p.stamped;
  if (p.stamped) {
    auto row = store_.get("torrents", key_bytes(key));
    if (row) in->row = std::move(*row);
  }
  return nullptr;
}

std::shared_ptr<const Torrent> Catalog::open_finish(const InfoHash& key,
                                                    const std::string& data_path, OpenOutcome& o) {
  auto pit = by_key_.find(key);
  if (pit == by_key_.end()) {
    o.why = "not published";
    return nullptr;
  }
  Published& p = pit->second;
  if (p.data_path != data_path || !p.ready || !p.problem.empty()) {
    // Unpublished, published again elsewhere or stopped while its files were opened.
    o.why = !p.problem.empty() ? p.problem : "it changed while it was opened";
    return nullptr;
  }
  if (auto it = open_.find(key); it != open_.end()) {
    if (auto t = it->second.lock()) return t;  // opened meanwhile: one Torrent for all
  }
  if (!o.torrent) {
    if (o.problem) {
      p.problem = o.why;
      open_.erase(key);
    }
    return nullptr;
  }
  if (!p.stamped) {
    // A row from before stamps were recorded (format 1): the files are stamped as they are now.
    p.stamped = !o.torrent->stamps.empty();
    write_row(p, o.torrent->stamps);
  }
  p.problem.clear();
  open_[key] = o.torrent;
  return o.torrent;
}

std::shared_ptr<const Torrent> Catalog::open(const InfoHash& key, std::string& why) {
  OpenInput in;
  if (auto t = open_start(key, why, &in); t || !why.empty()) return t;
  const std::string data_path = in.data_path;
  OpenOutcome o = open_files(std::move(in));
  auto t = open_finish(key, data_path, o);
  if (!t) why = o.why;
  return t;
}

std::shared_ptr<const Torrent> Catalog::open_or_wait(const InfoHash& key, std::string& why,
                                                     OpenDone done) {
  if (workers_ == nullptr) return open(key, why);
  OpenInput in;
  if (auto t = open_start(key, why, &in); t || !why.empty()) return t;
  // Many peers (or web seed requests) asking for a torrent nobody holds open: one opening.
  auto& waiting = opening_[key];
  waiting.push_back(std::move(done));
  if (waiting.size() > 1) return nullptr;
  ++opened_on_workers_;
  workers_->submit(
      [this, loop = loop_, alive = std::weak_ptr<bool>(alive_), key, in = std::move(in)]() mutable {
        const std::string data_path = in.data_path;
        auto o = std::make_shared<OpenOutcome>(open_files(std::move(in)));
        loop->post([this, alive, key, data_path, o] {
          if (alive.expired()) return;
          auto t = open_finish(key, data_path, *o);
          auto node = opening_.extract(key);
          if (node.empty()) return;
          for (auto& cb : node.mapped())
            cb(t, t ? std::string() : o->why);
        });
      });
  return nullptr;
}

void Catalog::verified(const InfoHash& key, const std::vector<FileStamp>& stamps) {
  auto it = by_key_.find(key);
  if (it == by_key_.end()) return;
  Published& p = it->second;
  // Stamps of files elsewhere (the data moved while it was verified) are not this torrent's.
  for (const FileStamp& s : stamps) {
    if (s.path != p.data_path && s.path.rfind(p.data_path + "/", 0) != 0) return;
  }
  p.problem.clear();
  if (!stamps.empty()) {
    p.stamped = true;
    write_row(p, stamps);
    open_.erase(key);  // peers from now on get the files as verified now
  }
}

void Catalog::data_replaced(const InfoHash& key) {
  auto it = by_key_.find(key);
  if (it == by_key_.end()) return;
  Published& p = it->second;
  p.problem.clear();
  p.ready = true;
  p.stamped = false;
  write_row(p, {});
  open_.erase(key);  // peers from now on get the new files
}

std::vector<FileStamp> Catalog::stamps(const InfoHash& key) const {
  auto pit = by_key_.find(key);
  auto row = store_.get("torrents", key_bytes(key));
  if (pit == by_key_.end() || !row) return {};
  return stamps_of_row(*row, pit->second.data_path);
}

void Catalog::write_row(const Published& p, const std::vector<FileStamp>& stamps) {
  store_.put("torrents", key_bytes(p.key), index_row(p, stamps));
}

void Catalog::count_upload(const InfoHash& key, uint64_t bytes) {
  auto it = by_key_.find(key);
  if (it == by_key_.end()) return;
  it->second.uploaded += bytes;
  if (!it->second.counter_dirty) {
    it->second.counter_dirty = true;
    counters_dirty_.push_back(key);
  }
}

void Catalog::flush_counters() {
  for (const InfoHash& k : counters_dirty_) {
    if (auto it = by_key_.find(k); it != by_key_.end()) {
      it->second.counter_dirty = false;
      store_.put("counters", key_bytes(k), std::to_string(it->second.uploaded));
    }
  }
  counters_dirty_.clear();
}

}  // namespace evert::everseed
