#include "describe.h"

#include <ctime>
#include <iomanip>

#include "evert/units.h"

namespace evert::ctl {

using nlohmann::json;

namespace {

std::string version_text(TorrentVersion v) {
  switch (v) {
    case TorrentVersion::kV1:
      return "v1";
    case TorrentVersion::kV2:
      return "v2";
    case TorrentVersion::kHybrid:
      return "hybrid (v1 + v2)";
  }
  return "?";
}

std::string utc_time(int64_t t) {
  const std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  if (gmtime_r(&tt, &tm) == nullptr) return std::to_string(t);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return buf;
}

void row(std::ostream& out, const std::string& key, const std::string& value) {
  out << std::left << std::setw(14) << (key.empty() ? "" : key + ":") << value << '\n';
}

}  // namespace

json to_json(const Metainfo& m, bool with_files) {
  json j;
  j["name"] = m.name;
  j["version"] = std::string(to_string(m.version()));
  j["total_size"] = m.total_size;
  j["file_count"] = m.real_file_count();
  j["piece_length"] = m.piece_length;
  j["piece_count"] = m.piece_count();
  j["private"] = m.is_private;
  j["info_hash_v1"] = m.info_hash_v1 ? json(to_hex(*m.info_hash_v1)) : json(nullptr);
  j["info_hash_v2"] = m.info_hash_v2 ? json(to_hex(*m.info_hash_v2)) : json(nullptr);
  j["trackers"] = m.trackers;
  j["web_seeds"] = m.web_seeds;
  j["source"] = m.source;
  j["comment"] = m.comment;
  j["created_by"] = m.created_by;
  j["creation_date"] = m.creation_date ? json(*m.creation_date) : json(nullptr);
  j["magnet"] = to_uri(magnet_of(m));
  if (with_files) {
    json files = json::array();
    for (const auto& f : m.files) {
      if (f.is_pad()) continue;
      json e = {{"path", f.path_string()}, {"length", f.length}};
      if (!f.attr.empty()) e["attr"] = f.attr;
      if (f.pieces_root) e["pieces_root"] = to_hex(*f.pieces_root);
      files.push_back(std::move(e));
    }
    j["files"] = std::move(files);
  }
  return j;
}

json to_json(const Magnet& g) {
  json j;
  j["name"] = g.name;
  j["info_hash_v1"] = g.info_hash_v1 ? json(to_hex(*g.info_hash_v1)) : json(nullptr);
  j["info_hash_v2"] = g.info_hash_v2 ? json(to_hex(*g.info_hash_v2)) : json(nullptr);
  j["total_size"] = g.size ? json(*g.size) : json(nullptr);
  j["trackers"] = g.trackers;
  j["web_seeds"] = g.web_seeds;
  j["peers"] = g.peers;
  if (!g.select_only.empty()) j["select_only"] = g.select_only;
  j["magnet"] = to_uri(g);
  return j;
}

void print_hashes(std::ostream& out, const Metainfo& m) {
  if (m.info_hash_v1) row(out, "Info-hash v1", to_hex(*m.info_hash_v1));
  if (m.info_hash_v2) row(out, "Info-hash v2", to_hex(*m.info_hash_v2));
  row(out, "Magnet", to_uri(magnet_of(m)));
}

void print_human(std::ostream& out, const Metainfo& m, bool with_files) {
  row(out, "Name", m.name);
  row(out, "Version", version_text(m.version()));
  const size_t n = m.real_file_count();
  row(out, "Size",
      format_size(m.total_size) + " (" + std::to_string(m.total_size) + " bytes) in " +
          std::to_string(n) + (n == 1 ? " file" : " files"));
  row(out, "Pieces", std::to_string(m.piece_count()) + " x " + format_size(m.piece_length));
  row(out, "Private", m.is_private ? "yes" : "no");
  if (!m.source.empty()) row(out, "Source", m.source);
  if (!m.comment.empty()) row(out, "Comment", m.comment);
  if (!m.created_by.empty()) row(out, "Created by", m.created_by);
  if (m.creation_date) row(out, "Created", utc_time(*m.creation_date));
  if (m.trackers.empty()) row(out, "Trackers", "none");
  bool first = true;
  for (size_t t = 0; t < m.trackers.size(); ++t) {
    for (const auto& url : m.trackers[t]) {
      row(out, first ? "Trackers" : "", "tier " + std::to_string(t + 1) + ": " + url);
      first = false;
    }
  }
  for (size_t i = 0; i < m.web_seeds.size(); ++i)
    row(out, i == 0 ? "Web seeds" : "", m.web_seeds[i]);
  print_hashes(out, m);
  if (with_files) {
    out << "Files:\n";
    for (const auto& f : m.files) {
      if (f.is_pad()) continue;
      out << "  " << std::right << std::setw(12) << format_size(f.length) << "  " << f.path_string()
          << '\n';
    }
  }
}

void print_human(std::ostream& out, const Magnet& g) {
  row(out, "Name", g.name.empty() ? "(not given)" : g.name);
  if (g.size) row(out, "Size", format_size(*g.size) + " (" + std::to_string(*g.size) + " bytes)");
  if (g.info_hash_v1) row(out, "Info-hash v1", to_hex(*g.info_hash_v1));
  if (g.info_hash_v2) row(out, "Info-hash v2", to_hex(*g.info_hash_v2));
  if (g.trackers.empty()) row(out, "Trackers", "none");
  for (size_t i = 0; i < g.trackers.size(); ++i)
    row(out, i == 0 ? "Trackers" : "", g.trackers[i]);
  for (size_t i = 0; i < g.web_seeds.size(); ++i)
    row(out, i == 0 ? "Web seeds" : "", g.web_seeds[i]);
  for (size_t i = 0; i < g.peers.size(); ++i)
    row(out, i == 0 ? "Peers" : "", g.peers[i]);
  if (!g.select_only.empty()) row(out, "Select only", g.select_only);
}

}  // namespace evert::ctl
