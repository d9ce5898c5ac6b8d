// evertctl publish, job, list, show, unpublish, torrent, magnet, verify: the published torrents
// of evertd. publish opens the files with the user's rights and hands the descriptors to the
// daemon (SCM_RIGHTS over the descriptor socket), which copies them into its content store and
// hashes the copy; --in-place asks the daemon to seed from the path itself.
#include <fcntl.h>
#include <sodium.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <memory>
#include <sstream>
#include <thread>

#include "cli.h"
#include "evert/base64.h"
#include "evert/control_client.h"
#include "evert/file_list.h"
#include "evert/json_text.h"
#include "evert/magnet.h"
#include "evert/metainfo.h"
#include "evert/unique_fd.h"
#include "evert/units.h"
#include "progress.h"
#include "torrent_options.h"

namespace evert::ctl {
namespace {

using nlohmann::json;

json options_json(const CreateOptions& o, bool no_date) {
  json j = json::object();
  j["version"] = o.version == TorrentVersion::kV1   ? "v1"
                 : o.version == TorrentVersion::kV2 ? "v2"
                                                    : "hybrid";
  if (o.piece_length != 0) j["piece_length"] = o.piece_length;
  if (!o.trackers.empty()) j["trackers"] = o.trackers;
  if (!o.web_seeds.empty()) j["web_seeds"] = o.web_seeds;
  if (o.is_private) j["private"] = true;
  if (!o.source.empty()) j["source"] = o.source;
  if (!o.comment.empty()) j["comment"] = o.comment;
  if (!o.name.empty()) j["name"] = o.name;
  if (no_date) j["no_date"] = true;
  return j;
}

// Raises the soft limit on open files to the hard one: a folder's files are all open at once
// while they are handed over.
size_t open_file_budget() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 1000;
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);
  getrlimit(RLIMIT_NOFILE, &rl);
  return rl.rlim_cur > 64 ? static_cast<size_t>(rl.rlim_cur) - 64 : 0;
}

std::string id_query(const std::string& id) {
  return "id=" + percent_encode(id);
}

// Follows a job until it ends, with a progress bar per phase. Ctrl-C cancels it (the daemon
// removes what it wrote). Returns the job's last state, or nullopt (message printed).
std::optional<json> follow_job(const CommonOptions& common, const DaemonOptions& daemon,
                               uint64_t job, int& code) {
  catch_interrupts();
  std::unique_ptr<ProgressBar> bar;
  std::string phase;
  bool cancel_sent = false;
  const std::string path = "/v1/job?id=" + std::to_string(job);
  while (true) {
    if (interrupted() && !cancel_sent) {
      if (bar) bar->finish();
      if (!common.quiet) std::cerr << "evertctl: cancelling...\n";
      int ignored = 0;
      call_daemon(common, daemon, "DELETE", path, "", ignored);
      cancel_sent = true;
    }
    auto j = call_daemon(common, daemon, "GET", path, "", code);
    if (!j) return std::nullopt;
    const std::string state = j->value("state", "");
    if (state == "done" || state == "failed" || state == "cancelled") {
      if (bar) bar->finish();
      return j;
    }
    if (state != phase) {
      if (bar) bar->finish();
      phase = state;
      std::string label = state;
      if (!label.empty()) label[0] = static_cast<char>(std::toupper(label[0]));
      bar = std::make_unique<ProgressBar>(label + " " + j->value("name", ""),
                                          stderr_is_tty() && !common.quiet);
    }
    // A total of 0: not known yet (a folder being listed), no bar.
    if (j->value("total", uint64_t{0}) > 0) {
      bar->update(j->value("done", uint64_t{0}), j->value("total", uint64_t{0}));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

// Fetches a torrent's .torrent bytes from the daemon.
std::optional<std::string> fetch_torrent(const CommonOptions& common, const DaemonOptions& daemon,
                                         const std::string& id, json& info, int& code) {
  auto j = call_daemon(common, daemon, "GET", "/v1/torrent?" + id_query(id) + "&format=torrent", "",
                       code);
  if (!j) return std::nullopt;
  info = *j;
  auto bytes = from_base64(j->value("torrent", ""));
  if (!bytes || bytes->empty()) {
    code = fail(common, "bad_answer", "evertd did not send the .torrent");
    return std::nullopt;
  }
  info.erase("torrent");
  return bytes;
}

void print_torrent_summary(std::ostream& out, const json& t) {
  out << "  info-hash v1: "
      << (t.contains("info_hash_v2") && !t.contains("info_hash_v2_truncated")
              ? "-"
              : t.value("info_hash", ""))
      << '\n';
  if (t.contains("info_hash_v2")) out << "  info-hash v2: " << t.value("info_hash_v2", "") << '\n';
  if (t.contains("magnet")) out << "  magnet:       " << t.value("magnet", "") << '\n';
}

// ---- publish ----

struct PublishArgs {
  CommonOptions common;
  DaemonOptions daemon;
  TorrentArgs torrent;
  std::string path;
  std::string output;
  bool in_place = false;
  bool detach = false;
  bool force = false;
  bool no_hidden = false;
  bool follow_symlinks = false;
  std::string torrent_file;
  std::string data;
};

// Opens the files to hand over: from a scan of PATH, or those of an existing torrent in DATA.
struct Handover {
  std::vector<std::string> entries;
  std::vector<UniqueFd> fds;
  std::string name;
  uint64_t total = 0;
};

// `s` with each byte that is not part of a UTF-8 character (and each control character) shown
// as \xNN, for an error message.
std::string shown(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t len = c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
    if (c >= 0x20 && c != 0x7f && i + len <= s.size() && valid_utf8(s.substr(i, len))) {
      out.append(s.substr(i, len));
    } else {
      len = 1;
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
    i += len;
  }
  return out;
}

// Paths and names go to evertd in JSON, which holds UTF-8 text only, and BitTorrent's names are
// UTF-8 (BEP 3): a name that is not would reach the torrent altered, so it is refused here.
Status check_utf8(const std::string& what) {
  if (valid_utf8(what)) return Ok{};
  return Error(shown(what) +
               ": the name is not valid UTF-8, which a torrent cannot hold; rename it (convmv "
               "converts names from another encoding)");
}

Status check_names(const std::string& name, const std::vector<InputFile>& files) {
  if (auto st = check_utf8(name); !st) return st;
  for (const auto& f : files) {
    for (const auto& part : f.path) {
      if (!valid_utf8(part)) return check_utf8(f.disk_path);
    }
  }
  return Ok{};
}

Result<Handover> open_files(const std::vector<InputFile>& files, const std::string& name) {
  Handover h;
  h.name = name;
  const size_t budget = open_file_budget();
  if (files.size() > budget) {
    return Error(std::to_string(files.size()) + " files, more than this process may open (" +
                 std::to_string(budget) +
                 "); publish with --in-place, or raise the limit "
                 "(ulimit -n)");
  }
  for (const auto& f : files) {
    UniqueFd fd(::open(f.disk_path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
    if (!fd.valid()) return Error(f.disk_path + ": " + std::strerror(errno));
    h.entries.push_back(
        json_text(json{{"path", f.path}, {"size", f.size}, {"executable", f.executable}}));
    h.fds.push_back(std::move(fd));
    h.total += f.size;
  }
  return h;
}

int report_published(const PublishArgs& a, const json& job) {
  const json t = job.value("torrent", json::object());
  const std::string hex = t.value("info_hash", "");
  json info;
  int code = kExitOk;
  auto bytes = fetch_torrent(a.common, a.daemon, hex, info, code);
  if (!bytes) return code;
  std::string output = a.output.empty() ? t.value("name", "torrent") + ".torrent" : a.output;
  std::string written;
  if (output == "-" || a.force || access(output.c_str(), F_OK) != 0) {
    if (auto s = write_output(output, *bytes, a.force); !s) {
      std::cerr << "evertctl: warning: " << s.error().message << '\n';
    } else {
      written = output;
    }
  } else {
    std::ifstream in(output, std::ios::binary);
    std::stringstream have;
    have << in.rdbuf();
    if (have.str() == *bytes) {
      written = output;
    } else if (!a.common.quiet) {
      std::cerr << "evertctl: warning: " << output
                << " exists and was left alone (use --force to replace it, or: evertctl torrent "
                << hex << " -o FILE)\n";
    }
  }
  if (a.common.json) {
    json out = info;
    out["already_published"] = t.value("already_published", false);
    if (!written.empty()) out["torrent_file"] = written;
    print_json(out);
    return kExitOk;
  }
  std::ostream& out = output == "-" ? std::cerr : std::cout;
  out << (t.value("already_published", false) ? "Already published " : "Published ")
      << info.value("name", "") << ": " << format_size(info.value("size", uint64_t{0})) << " in "
      << info.value("files", 0) << " file(s), " << info.value("version", "") << '\n';
  print_torrent_summary(out, info);
  if (!written.empty() && output != "-") out << "  torrent:      " << written << '\n';
  return kExitOk;
}

int run_publish(CLI::App& cmd, const PublishArgs& a) {
  CreateOptions o;
  if (std::string why = torrent_options(cmd, a.torrent, o); !why.empty()) {
    return usage_error(a.common, why);
  }
  if (!a.torrent_file.empty() == !a.path.empty()) {
    return usage_error(a.common, "give a PATH to publish, or --torrent FILE with --data PATH");
  }
  if (!a.torrent_file.empty() && a.data.empty()) {
    return usage_error(a.common, "--torrent needs --data PATH: where the torrent's data is");
  }
  if (!a.output.empty() && a.output != "-" && !a.force && access(a.output.c_str(), F_OK) == 0) {
    return fail(a.common, "exists", a.output + ": already exists (use --force to overwrite)");
  }

  std::string torrent_bytes;
  std::optional<Metainfo> given;
  if (!a.torrent_file.empty()) {
    std::ifstream in(a.torrent_file, std::ios::binary);
    if (!in) return fail(a.common, "input", a.torrent_file + ": " + std::strerror(errno));
    std::stringstream ss;
    ss << in.rdbuf();
    torrent_bytes = ss.str();
    auto m = parse_metainfo(torrent_bytes);
    if (!m) return fail(a.common, "bad_torrent", a.torrent_file + ": " + m.error().message);
    given = std::move(*m);
  }
  const std::string source = given ? a.data : a.path;
  std::error_code ec;
  const std::string absolute = std::filesystem::absolute(source, ec).lexically_normal().string();

  int code = kExitOk;
  uint64_t job = 0;
  if (a.in_place) {
    if (auto st = check_utf8(absolute); !st) return fail(a.common, "input", st.error().message);
    json body;
    if (given) {
      body = {{"torrent", to_base64(torrent_bytes)}, {"data", absolute}};
    } else {
      body = {{"path", absolute}, {"options", options_json(o, a.torrent.no_date)}};
    }
    auto r = call_daemon(a.common, a.daemon, "POST", "/v1/publish", json_text(body), code);
    if (!r) return code;
    job = r->value("job", uint64_t{0});
  } else {
    std::vector<InputFile> files;
    std::string name;
    if (given) {
      name = given->name;
      for (const FileEntry& f : given->files) {
        if (f.is_pad()) continue;
        InputFile in;
        in.disk_path = given->multi_file ? absolute + "/" + f.path_string() : absolute;
        in.path = given->multi_file ? f.path : std::vector<std::string>{};
        in.size = f.length;
        files.push_back(std::move(in));
      }
    } else {
      auto input = scan_input(a.path, a.no_hidden, a.follow_symlinks, a.common.quiet);
      if (!input) return fail(a.common, "input", input.error().message);
      name = input->name;
      files = std::move(input->files);
      if (input->single_file) files[0].path.clear();
    }
    // The control socket first: a clear error when evertd is not running, and it starts a
    // socket-activated daemon before the descriptor socket is needed.
    if (!call_daemon(a.common, a.daemon, "GET", "/v1/status", "", code)) return code;
    if (auto st = check_names(name, files); !st) return fail(a.common, "input", st.error().message);
    auto h = open_files(files, name);
    if (!h) return fail(a.common, "input", h.error().message);
    json header = {
        {"op", "publish"}, {"name", name}, {"options", options_json(o, a.torrent.no_date)}};
    if (given) header["torrent"] = to_base64(torrent_bytes);
    std::vector<int> raw;
    for (const auto& fd : h->fds)
      raw.push_back(fd.get());
    auto r = control_send_fds(fd_socket_path(a.daemon.socket_path()), json_text(header), h->entries,
                              raw);
    if (!r) return fail(a.common, "unreachable", r.error().message);
    auto j = json::parse(r->body, nullptr, false);
    if (r->status >= 400 || !j.is_object()) {
      if (a.common.json && j.is_object()) print_json(j);
      const std::string msg = j.is_object() && j.contains("error")
                                  ? j["error"].value("message", "")
                                  : "evertd answered " + std::to_string(r->status);
      return fail(msg);
    }
    job = j.value("job", uint64_t{0});
  }
  if (a.detach) {
    if (a.common.json) {
      print_json({{"job", job}});
    } else {
      std::cout << "Publishing as job " << job << "; follow it with: evertctl job " << job << '\n';
    }
    return kExitOk;
  }
  auto end = follow_job(a.common, a.daemon, job, code);
  if (!end) return code;
  const std::string state = end->value("state", "");
  if (state == "cancelled") {
    fail("cancelled; nothing was published");
    return kExitInterrupted;
  }
  if (state == "failed") return fail(a.common, "publish", end->value("error", "failed"));
  return report_published(a, *end);
}

// ---- job, list, show, unpublish, torrent, magnet, verify ----

struct SelectArgs {
  CommonOptions common;
  DaemonOptions daemon;
  std::string id;
  std::string output;
  bool force = false;
  bool delete_data = false;
  bool detach = false;
  uint64_t job = 0;
  bool cancel = false;
  size_t limit = 0;
  std::string query;
};

int run_job(const SelectArgs& a) {
  int code = kExitOk;
  if (a.cancel) {
    auto j =
        call_daemon(a.common, a.daemon, "DELETE", "/v1/job?id=" + std::to_string(a.job), "", code);
    if (!j) return code;
  }
  auto end = follow_job(a.common, a.daemon, a.job, code);
  if (!end) return code;
  if (a.common.json) {
    print_json(*end);
  } else {
    std::cout << "Job " << a.job << " (" << end->value("what", "") << " " << end->value("name", "")
              << "): " << end->value("state", "");
    if (end->contains("error")) std::cout << ": " << end->value("error", "");
    std::cout << '\n';
    if (end->contains("torrent")) print_torrent_summary(std::cout, (*end)["torrent"]);
  }
  return end->value("state", "") == "done" ? kExitOk : kExitFailure;
}

std::string state_of(const json& t) {
  std::string s = t.value("state", "");
  if (t.contains("problem")) s += ": " + t.value("problem", "");
  return s;
}

int run_list(const SelectArgs& a) {
  std::string path = "/v1/torrents?limit=" + std::to_string(a.limit == 0 ? 100'000 : a.limit);
  if (!a.query.empty()) path += "&q=" + percent_encode(a.query);
  int code = kExitOk;
  auto j = call_daemon(a.common, a.daemon, "GET", path, "", code);
  if (!j) return code;
  if (a.common.json) {
    print_json(*j);
    return kExitOk;
  }
  const auto& list = (*j)["torrents"];
  Table table({{"NAME"},
               {"SIZE", true},
               {"INFO-HASH"},
               {"SEEDERS", true},
               {"LEECHERS", true},
               {"COMPLETED", true},
               {"UPLOADED", true},
               {"STATE"}});
  for (const auto& t : list) {
    table.add({t.value("name", ""), format_size(t.value("size", uint64_t{0})),
               t.value("info_hash", ""), std::to_string(t.value("seeders", 0)),
               std::to_string(t.value("leechers", 0)), std::to_string(t.value("completed", 0)),
               format_size(t.value("uploaded", uint64_t{0})), state_of(t)});
  }
  table.print(std::cout);
  const size_t total = j->value("total", size_t{0});
  std::cout << total << " torrent" << (total == 1 ? "" : "s");
  if (total > list.size()) std::cout << " (" << list.size() << " shown; --limit N)";
  std::cout << '\n';
  return kExitOk;
}

std::string when(int64_t unix_seconds) {
  const std::time_t t = unix_seconds;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return buf;
}

int run_show(const SelectArgs& a) {
  int code = kExitOk;
  auto t = call_daemon(a.common, a.daemon, "GET", "/v1/torrent?" + id_query(a.id), "", code);
  if (!t) return code;
  if (a.common.json) {
    print_json(*t);
    return kExitOk;
  }
  std::cout << "Name:         " << t->value("name", "") << '\n'
            << "Size:         " << format_size(t->value("size", uint64_t{0})) << " in "
            << t->value("files", 0) << " file(s), " << t->value("version", "") << ", pieces of "
            << format_size(t->value("piece_length", uint64_t{0})) << '\n'
            << "State:        " << state_of(*t) << '\n'
            << "Data:         " << t->value("data", "")
            << (t->value("in_place", false) ? " (in place)" : " (content store)") << '\n'
            << "Published:    " << when(t->value("published", int64_t{0})) << '\n'
            << "Swarm:        " << t->value("seeders", 0) << " seeders, " << t->value("leechers", 0)
            << " leechers, " << t->value("completed", 0) << " completed\n"
            << "Uploaded:     " << format_size(t->value("uploaded", uint64_t{0})) << '\n';
  print_torrent_summary(std::cout, *t);
  if (t->contains("announce_list")) {
    for (const auto& tier : (*t)["announce_list"])
      for (const auto& url : tier)
        std::cout << "  tracker:      " << url.get<std::string>() << '\n';
  }
  if (t->contains("trackers")) {
    for (const auto& tr : (*t)["trackers"]) {
      std::cout << "  announce:     " << tr.value("url", "") << ": "
                << (tr.contains("error")
                        ? "error: " + tr.value("error", "")
                        : std::to_string(tr.value("seeders", 0)) + " seeders, " +
                              std::to_string(tr.value("leechers", 0)) + " leechers")
                << '\n';
    }
  }
  return kExitOk;
}

int run_unpublish(const SelectArgs& a) {
  int code = kExitOk;
  auto j = call_daemon(a.common, a.daemon, "DELETE",
                       "/v1/torrent?" + id_query(a.id) + (a.delete_data ? "&delete_data=1" : ""),
                       "", code);
  if (!j) return code;
  if (a.common.json) {
    print_json(*j);
    return kExitOk;
  }
  std::cout << "Unpublished " << j->value("name", "") << " (" << j->value("unpublished", "")
            << ")\n";
  if (j->contains("data_kept")) {
    std::cout << "  its data stays in " << j->value("data_kept", "")
              << " (--delete-data removes it)\n";
  }
  if (j->value("data_deleted", false)) std::cout << "  its data was deleted\n";
  if (j->contains("warning")) std::cerr << "evertctl: " << j->value("warning", "") << "\n";
  return kExitOk;
}

int run_torrent(const SelectArgs& a) {
  json info;
  int code = kExitOk;
  auto bytes = fetch_torrent(a.common, a.daemon, a.id, info, code);
  if (!bytes) return code;
  const std::string output =
      a.output.empty() ? info.value("name", "torrent") + ".torrent" : a.output;
  if (auto s = write_output(output, *bytes, a.force); !s) {
    return fail(a.common, "write", s.error().message);
  }
  if (output != "-" && !a.common.quiet) std::cerr << "Wrote " << output << '\n';
  return kExitOk;
}

int run_magnet(const SelectArgs& a) {
  int code = kExitOk;
  auto t = call_daemon(a.common, a.daemon, "GET", "/v1/torrent?" + id_query(a.id), "", code);
  if (!t) return code;
  if (a.common.json) {
    print_json({{"magnet", t->value("magnet", "")}});
  } else {
    std::cout << t->value("magnet", "") << '\n';
  }
  return kExitOk;
}

int run_verify(const SelectArgs& a) {
  int code = kExitOk;
  auto j = call_daemon(a.common, a.daemon, "POST", "/v1/verify?" + id_query(a.id), "", code);
  if (!j) return code;
  const uint64_t job = j->value("job", uint64_t{0});
  if (a.detach) {
    std::cout << "Verifying as job " << job << "; follow it with: evertctl job " << job << '\n';
    return kExitOk;
  }
  auto end = follow_job(a.common, a.daemon, job, code);
  if (!end) return code;
  const std::string state = end->value("state", "");
  if (state == "cancelled") {
    fail("cancelled");
    return kExitInterrupted;
  }
  if (state != "done") return fail(a.common, "verify", end->value("error", "failed"));
  const json t = end->value("torrent", json::object());
  if (a.common.json) {
    print_json(t);
  } else if (t.value("verified", false)) {
    std::cout << t.value("name", "") << ": the data matches every hash; it is served\n";
  } else {
    std::cout << t.value("name", "") << ": " << t.value("mismatch", "")
              << "; it is no longer served\n";
  }
  return t.value("verified", false) ? kExitOk : kExitFailure;
}

CLI::App* select_command(CLI::App& parent, const char* name, const char* help,
                         std::shared_ptr<SelectArgs> a) {
  CLI::App* cmd = parent.add_subcommand(name, help);
  cmd->add_option("TORRENT", a->id,
                  "The torrent: its name, or its info-hash or a prefix of it (4+ hex digits)")
      ->required();
  add_daemon_options(*cmd, a->daemon);
  add_common_options(*cmd, a->common);
  return cmd;
}

}  // namespace

std::vector<Command> add_publishing(CLI::App& parent) {
  std::vector<Command> out;
  {
    auto a = std::make_shared<PublishArgs>();
    CLI::App* cmd = parent.add_subcommand(
        "publish", "Publish a file or folder: tracked and seeded by evertd, forever");
    cmd->add_option("PATH", a->path, "File or folder to publish");
    cmd->add_option("-o,--output", a->output,
                    "Where to write the .torrent ('-': standard output; default: NAME.torrent "
                    "here, left alone if it exists)");
    add_torrent_options(*cmd, a->torrent);
    cmd->add_flag("--in-place", a->in_place,
                  "Seed from PATH itself instead of a copy in evertd's content store (evertd must "
                  "be able to read it, and it must not change)");
    cmd->add_flag("--detach", a->detach, "Return at once with the job id (see: evertctl job)");
    cmd->add_option("--torrent", a->torrent_file,
                    "Publish this existing .torrent (with --data) after verifying the data");
    cmd->add_option("--data", a->data, "With --torrent: the torrent's file or folder");
    cmd->add_flag("-f,--force", a->force, "Overwrite the output file if it exists");
    cmd->add_flag("--no-hidden", a->no_hidden,
                  "Leave out files and folders whose name starts with '.'");
    cmd->add_flag("--follow-symlinks", a->follow_symlinks,
                  "Follow symbolic links inside the folder (default: skip them)");
    add_daemon_options(*cmd, a->daemon);
    add_common_options(*cmd, a->common);
    out.push_back({cmd, [cmd, a] { return run_publish(*cmd, *a); }});
  }
  {
    auto a = std::make_shared<SelectArgs>();
    CLI::App* cmd = parent.add_subcommand("job", "Follow a publish or verify job (progress bar)");
    cmd->add_option("JOB", a->job, "The job id")->required();
    cmd->add_flag("--cancel", a->cancel, "Cancel the job (nothing half-published remains)");
    add_daemon_options(*cmd, a->daemon);
    add_common_options(*cmd, a->common);
    out.push_back({cmd, [a] { return run_job(*a); }});
  }
  {
    auto a = std::make_shared<SelectArgs>();
    CLI::App* cmd = parent.add_subcommand("list", "List the published torrents, newest first");
    cmd->add_option("--limit", a->limit, "Show at most N (default: all)");
    cmd->add_option("--search", a->query, "Only names containing this text");
    add_daemon_options(*cmd, a->daemon);
    add_common_options(*cmd, a->common);
    out.push_back({cmd, [a] { return run_list(*a); }});
  }
  {
    auto a = std::make_shared<SelectArgs>();
    CLI::App* cmd = select_command(parent, "show", "Show a published torrent", a);
    out.push_back({cmd, [a] { return run_show(*a); }});
  }
  {
    auto a = std::make_shared<SelectArgs>();
    CLI::App* cmd =
        select_command(parent, "unpublish", "Stop tracking and seeding a published torrent", a);
    cmd->add_flag("--delete-data", a->delete_data,
                  "Also delete its data from the content store (never in-place data)");
    out.push_back({cmd, [a] { return run_unpublish(*a); }});
  }
  {
    auto a = std::make_shared<SelectArgs>();
    CLI::App* cmd = select_command(parent, "torrent", "Write a published torrent's .torrent", a);
    cmd->add_option("-o,--output", a->output,
                    "Where to write it ('-': standard output; default: NAME.torrent here)");
    cmd->add_flag("-f,--force", a->force, "Overwrite the output file if it exists");
    out.push_back({cmd, [a] { return run_torrent(*a); }});
  }
  {
    auto a = std::make_shared<SelectArgs>();
    CLI::App* cmd = select_command(parent, "magnet", "Print a published torrent's magnet link", a);
    out.push_back({cmd, [a] { return run_magnet(*a); }});
  }
  {
    auto a = std::make_shared<SelectArgs>();
    CLI::App* cmd = select_command(
        parent, "verify", "Rehash a published torrent's data; a mismatch stops serving it", a);
    cmd->add_flag("--detach", a->detach, "Return at once with the job id");
    out.push_back({cmd, [a] { return run_verify(*a); }});
  }
  return out;
}

}  // namespace evert::ctl
