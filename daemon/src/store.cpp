#include "evert/daemon/store.h"

#include <lmdb.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

namespace evert::daemon {

namespace {

std::string lmdb_error(const std::string& what, int rc) {
  return what + ": " + mdb_strerror(rc);
}

MDB_val val(const std::string& s) {
  return {s.size(), const_cast<char*>(s.data())};
}
std::string str(const MDB_val& v) {
  return {static_cast<const char*>(v.mv_data), v.mv_size};
}

}  // namespace

Result<std::unique_ptr<Store>> Store::open(const StoreOptions& o) {
  std::error_code ec;
  std::filesystem::create_directories(o.dir, ec);
  if (ec) return Error(o.dir + ": cannot create the state directory: " + ec.message());
  std::unique_ptr<Store> s(new Store());
  int rc = mdb_env_create(&s->env_);
  if (rc != 0) return Error(lmdb_error("mdb_env_create", rc));
  mdb_env_set_maxdbs(s->env_, static_cast<MDB_dbi>(o.databases.size() + 4));
  s->map_size_ = o.map_size;
  mdb_env_set_mapsize(s->env_, o.map_size);
  // MDB_NOTLS: read transactions are not tied to threads (the loop and the writer both read).
  rc = mdb_env_open(s->env_, o.dir.c_str(), MDB_NOTLS, 0640);
  s->data_file_ = " " + std::filesystem::weakly_canonical(o.dir + "/data.mdb", ec).string();
  if (rc != 0) return Error(lmdb_error(o.dir + ": cannot open the store", rc));
  MDB_envinfo info{};
  mdb_env_info(s->env_, &info);
  s->map_size_ = info.me_mapsize;  // an existing, grown map keeps its size

  MDB_txn* txn = nullptr;
  rc = mdb_txn_begin(s->env_, nullptr, 0, &txn);
  if (rc != 0) return Error(lmdb_error(o.dir + ": cannot begin a transaction", rc));
  for (const auto& name : o.databases) {
    MDB_dbi dbi = 0;
    rc = mdb_dbi_open(txn, name.c_str(), MDB_CREATE, &dbi);
    if (rc != 0) {
      mdb_txn_abort(txn);
      return Error(lmdb_error(o.dir + ": cannot open database '" + name + "'", rc));
    }
    s->dbis_[name] = dbi;
  }
  // Schema version: written on creation, checked on every open.
  const std::string key = "schema_version";
  MDB_val k = val(key), v{};
  rc = mdb_get(txn, s->dbis_.at("meta"), &k, &v);
  if (rc == MDB_NOTFOUND) {
    const std::string version = std::to_string(kSchemaVersion);
    MDB_val nv = val(version);
    rc = mdb_put(txn, s->dbis_.at("meta"), &k, &nv, 0);
  } else if (rc == 0) {
    const int found = std::atoi(str(v).c_str());
    if (found > kSchemaVersion) {
      mdb_txn_abort(txn);
      return Error(o.dir + ": the store has schema version " + std::to_string(found) +
                   ", written by a newer evertd; this one knows version " +
                   std::to_string(kSchemaVersion) + " (upgrade evertd, or use another state_dir)");
    }
  }
  if (rc != 0 || (rc = mdb_txn_commit(txn)) != 0) {
    return Error(lmdb_error(o.dir + ": cannot initialise the store", rc));
  }
  s->writer_ = std::thread([p = s.get()] { p->writer_main(); });
  return s;
}

Store::~Store() {
  // A store whose open() failed has no writer thread (and maybe no environment).
  if (writer_.joinable()) (void)flush();
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (writer_.joinable()) writer_.join();
  if (env_ != nullptr) mdb_env_close(env_);
}

unsigned Store::dbi(const std::string& name) const {
  return dbis_.at(name);
}

void Store::put(const std::string& db, std::string key, std::string value) {
  std::lock_guard lock(mu_);
  pending_[{db, std::move(key)}] = Change{std::move(value)};
}

void Store::del(const std::string& db, std::string key) {
  std::lock_guard lock(mu_);
  pending_[{db, std::move(key)}] = Change{std::nullopt};
}

std::optional<std::string> Store::get(const std::string& db, const std::string& key) {
  {
    std::lock_guard lock(mu_);
    for (const Batch* b : {&pending_, &inflight_}) {
      auto it = b->find({db, key});
      if (it != b->end()) return it->second.value;
    }
  }
  std::shared_lock resize(resize_mu_);
  MDB_txn* txn = nullptr;
  if (mdb_txn_begin(env_, nullptr, MDB_RDONLY, &txn) != 0) return std::nullopt;
  MDB_val k = val(key), v{};
  std::optional<std::string> out;
  if (mdb_get(txn, dbi(db), &k, &v) == 0) out = str(v);
  mdb_txn_abort(txn);
  return out;
}

void Store::for_each(const std::string& db, const std::string& prefix,
                     const std::function<void(const std::string&, const std::string&)>& fn) {
  std::map<std::string, std::optional<std::string>> merged;
  {
    std::shared_lock resize(resize_mu_);
    MDB_txn* txn = nullptr;
    if (mdb_txn_begin(env_, nullptr, MDB_RDONLY, &txn) == 0) {
      MDB_cursor* cur = nullptr;
      mdb_cursor_open(txn, dbi(db), &cur);
      MDB_val k = val(prefix), v{};
      // LMDB rejects an empty key: an empty prefix starts at the first entry.
      int rc = mdb_cursor_get(cur, &k, &v, prefix.empty() ? MDB_FIRST : MDB_SET_RANGE);
      while (rc == 0) {
        std::string key = str(k);
        if (key.compare(0, prefix.size(), prefix) != 0) break;
        merged[std::move(key)] = str(v);
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
      }
      mdb_cursor_close(cur);
      mdb_txn_abort(txn);
    }
  }
  {
    std::lock_guard lock(mu_);
    for (const Batch* b : {&inflight_, &pending_}) {  // pending is newer: applied last
      for (const auto& [k, c] : *b) {
        if (k.first == db && k.second.compare(0, prefix.size(), prefix) == 0) {
          merged[k.second] = c.value;
        }
      }
    }
  }
  for (const auto& [k, v] : merged) {
    if (v) fn(k, *v);
  }
}

void Store::commit(std::function<void(const Status&)> done) {
  {
    std::lock_guard lock(mu_);
    commit_requested_ = true;
    if (done) waiters_.push_back(std::move(done));
  }
  cv_.notify_all();
}

Status Store::flush() {
  std::mutex m;
  std::condition_variable cv;
  bool finished = false;
  Status result = Ok{};
  commit([&](const Status& s) {
    std::lock_guard lock(m);
    result = s;
    finished = true;
    cv.notify_all();
  });
  std::unique_lock lock(m);
  cv.wait(lock, [&] { return finished; });
  return result;
}

size_t Store::pending() const {
  std::lock_guard lock(mu_);
  return pending_.size() + inflight_.size();
}

uint64_t Store::map_size() const {
  std::lock_guard lock(mu_);
  return map_size_;
}

void Store::set_fault(std::function<int()> fault) {
  std::lock_guard lock(mu_);
  fault_ = std::move(fault);
}

void Store::writer_main() {
  std::unique_lock lock(mu_);
  while (true) {
    cv_.wait(lock, [this] { return commit_requested_ || stopping_; });
    if (!commit_requested_ && stopping_) return;
    commit_requested_ = false;
    inflight_.swap(pending_);
    auto waiters = std::move(waiters_);
    waiters_.clear();
    auto fault = fault_;
    lock.unlock();

    Status s = Ok{};
    const int injected = fault ? fault() : 0;
    if (injected != 0) {
      s = Error(lmdb_error("commit", injected));
    } else if (!inflight_.empty()) {
      s = write_batch(inflight_);
    }

    lock.lock();
    if (!s) {
      // Keep the changes: newer pending ones win over the failed batch's.
      for (auto& [k, c] : inflight_)
        pending_.try_emplace(k, std::move(c));
    }
    inflight_.clear();
    lock.unlock();
    for (auto& w : waiters)
      w(s);
    lock.lock();
  }
}

// A write transaction reads the first page of every large value it replaces, and the kernel
// maps up to 64 KiB around each such fault ("fault-around"): after a few commits of the tracker's
// swarm snapshots the whole file would sit in evertd's page tables, counted in its RSS though it
// is only the page cache. After a big commit, the map's page-table entries are dropped; the data
// stays in the page cache and a later read faults it back in (readers are rare: start-up and
// the control API), so memory figures show what evertd really holds.
void Store::release_mapped_pages(const Batch& batch) {
  size_t bytes = 0;
  for (const auto& [k, c] : batch)
    bytes += c.value ? c.value->size() : 0;
  if (bytes < (1u << 20)) return;
  release_mapped();
}

void Store::release_mapped() {
  // LMDB does not tell where it mapped the file (me_mapaddr is only set with MDB_FIXEDMAP).
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    if (line.size() <= data_file_.size() ||
        line.compare(line.size() - data_file_.size(), data_file_.size(), data_file_) != 0) {
      continue;
    }
    uintptr_t from = 0;
    uintptr_t to = 0;
    if (std::sscanf(line.c_str(), "%" SCNxPTR "-%" SCNxPTR, &from, &to) == 2 && to > from) {
      madvise(reinterpret_cast<void*>(from), to - from, MADV_DONTNEED);
    }
  }
}

Status Store::write_batch(const Batch& batch) {
  for (int attempt = 0; attempt < 8; ++attempt) {
    MDB_txn* txn = nullptr;
    int rc = 0;
    {
      std::shared_lock resize(resize_mu_);
      rc = mdb_txn_begin(env_, nullptr, 0, &txn);
      if (rc != 0) return Error(lmdb_error("begin", rc));
      for (const auto& [k, c] : batch) {
        MDB_val key = val(k.second);
        if (c.value) {
          MDB_val v = val(*c.value);
          rc = mdb_put(txn, dbi(k.first), &key, &v, 0);
        } else {
          rc = mdb_del(txn, dbi(k.first), &key, nullptr);
          if (rc == MDB_NOTFOUND) rc = 0;
        }
        if (rc != 0) break;
      }
      if (rc == 0) {
        rc = mdb_txn_commit(txn);  // fsyncs: this is why it runs here, not on the loop
      } else {
        mdb_txn_abort(txn);
      }
      if (rc == 0) release_mapped_pages(batch);
    }
    if (rc == 0) return Ok{};
    if (rc != MDB_MAP_FULL) return Error(lmdb_error("commit", rc));
    // The map is full: grow it (no transaction may be open in this process) and retry.
    std::unique_lock resize(resize_mu_);
    uint64_t size = 0;
    {
      std::lock_guard lock(mu_);
      map_size_ *= 2;
      size = map_size_;
    }
    if ((rc = mdb_env_set_mapsize(env_, size)) != 0) return Error(lmdb_error("grow map", rc));
  }
  return Error("commit: the map is still full after growing it 8 times");
}

}  // namespace evert::daemon
