#include "data_check.h"

#include <utility>

namespace evert::everseed {

namespace {
struct Problem {
  InfoHash key;
  std::string why;
  std::vector<FileStamp> stamps;  // as checked
};
using Problems = std::vector<Problem>;
}  // namespace

DataCheck::DataCheck(daemon::EventLoop& loop, daemon::WorkerPool& workers, Catalog& catalog,
                     OnProblem on_problem)
    : loop_(loop), workers_(workers), catalog_(catalog), on_problem_(std::move(on_problem)) {}

DataCheck::~DataCheck() {
  *alive_ = false;
}

void DataCheck::check_all() {
  pending_ = catalog_.stamped_keys();
  whole_pass_ = true;
  next_batch();
}

void DataCheck::next_batch() {
  if (batch_running_) return;
  // The stamps are read on the loop (the store is the loop's), the files stat'ed on a worker.
  std::vector<std::pair<InfoHash, std::vector<FileStamp>>> batch;
  while (batch.size() < kBatch && !pending_.empty()) {
    const InfoHash key = pending_.back();
    pending_.pop_back();
    if (auto stamps = catalog_.stamps(key); !stamps.empty()) {
      batch.emplace_back(key, std::move(stamps));
    }
  }
  if (batch.empty()) {
    // The start-up pass read every torrent's row once: an idle daemon need not keep them.
    if (whole_pass_) catalog_.release_store_pages();
    whole_pass_ = false;
    return;
  }
  batch_running_ = true;
  workers_.submit(
      [this, &loop = loop_, alive = std::weak_ptr<bool>(alive_), batch = std::move(batch)] {
        Problems problems;
        for (const auto& [key, stamps] : batch) {
          if (Status s = check_stamps(stamps); !s) {
            problems.push_back({key, s.error().message, stamps});
          }
        }
        loop.post([this, alive, problems = std::move(problems)] {
          if (alive.expired()) return;
          batch_running_ = false;
          for (const auto& p : problems)
            report(p.key, p.why, p.stamps);
          next_batch();
        });
      });
}

// A check that found a difference counts only if the stamps it checked are still the torrent's:
// a verify or a publish from the same path may have recorded new ones meanwhile.
void DataCheck::report(const InfoHash& key, const std::string& why,
                       const std::vector<FileStamp>& checked) {
  if (catalog_.stamps(key) == checked) on_problem_(key, why);
}

void DataCheck::check(const InfoHash& key, std::vector<FileStamp> stamps) {
  if (stamps.empty() || !running_.insert(key).second) return;
  workers_.submit(
      [this, &loop = loop_, alive = std::weak_ptr<bool>(alive_), key, stamps = std::move(stamps)] {
        Status s = check_stamps(stamps);
        loop.post([this, alive, key, s = std::move(s), stamps = std::move(stamps)] {
          if (alive.expired()) return;
          running_.erase(key);
          if (!s) report(key, s.error().message, stamps);
        });
      });
}

}  // namespace evert::everseed
