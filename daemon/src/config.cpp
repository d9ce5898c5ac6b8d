#include "evert/daemon/config.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "evert/units.h"

namespace evert::daemon {

namespace fs = std::filesystem;

std::string location(const std::string& file, const YAML::Node& node) {
  const YAML::Mark m = node.Mark();
  if (m.line < 0) return file;
  return file + ":" + std::to_string(m.line + 1) + ":" + std::to_string(m.column + 1);
}

std::string module_location(const YAML::Node& node) {
  const std::string& tag = node.Tag();
  const std::string file =
      tag.rfind(kFileTag, 0) == 0 ? tag.substr(std::string_view(kFileTag).size()) : "";
  return location(file, node);
}

std::string yaml_quote(const std::string& s) {
  YAML::Emitter e;
  e << YAML::DoubleQuoted << s;
  return e.c_str();
}

namespace {

std::string check_absolute(const std::string& p) {
  return !p.empty() && p[0] == '/' ? std::string() : "must be an absolute path (got '" + p + "')";
}

const FieldTable<DaemonSection>& daemon_table() {
  static const FieldTable<DaemonSection> t = {
      string_field<DaemonSection>("state_dir", &DaemonSection::state_dir, false,
                                  "Where the LMDB store and the content live", check_absolute),
      {"modules", "Modules to run, in start order (they stop in reverse)", false,
       [](const YAML::Node& n, DaemonSection& s) -> std::string {
         if (!n.IsSequence()) return "expected a list of module names";
         std::vector<std::string> v;
         for (const auto& item : n) {
           if (!item.IsScalar()) return "expected a list of module names";
           if (std::find(v.begin(), v.end(), item.Scalar()) != v.end()) {
             return "module '" + item.Scalar() + "' listed twice";
           }
           v.push_back(item.Scalar());
         }
         s.modules = v;
         return {};
       },
       [](const DaemonSection& s) {
         std::string out = "[";
         for (const auto& m : s.modules)
           out += (out.size() > 1 ? ", " : "") + m;
         return out + "]";
       }},
      int_field<DaemonSection>("worker_threads", &DaemonSection::worker_threads, 1, 64, false,
                               "Threads for short blocking work that someone waits for (cold "
                               "block reads, web seed reads, logins, upload writes)"),
      int_field<DaemonSection>("bulk_threads", &DaemonSection::bulk_threads, 1, 64, false,
                               "Threads for long jobs (publishing: copying, hashing, verifying); "
                               "as many publishes run at once, the rest wait"),
      int_field<DaemonSection>("shutdown_timeout", &DaemonSection::shutdown_timeout, 1, 300, true,
                               "Seconds a graceful stop may take before evertd exits anyway"),
  };
  return t;
}

const FieldTable<LogSection>& log_table() {
  static const FieldTable<LogSection> t = {
      choice_field<LogSection>("level", &LogSection::level,
                               {"trace", "debug", "info", "warn", "error"}, true,
                               "Least severe messages logged: trace, debug, info, warn, error"),
      choice_field<LogSection>("target", &LogSection::target, {"auto", "journal", "stderr"}, false,
                               "auto: the journal when systemd runs evertd, else stderr"),
  };
  return t;
}

const FieldTable<ControlSection>& control_table() {
  static const FieldTable<ControlSection> t = {
      string_field<ControlSection>("socket", &ControlSection::socket, false,
                                   "Unix socket of the control API (evertctl talks to it)",
                                   check_absolute),
      string_field<ControlSection>("socket_group", &ControlSection::socket_group, false,
                                   "Group that may use the control socket (empty: keep as is)"),
      {"socket_mode", "Permissions of the control socket, in octal", false,
       [](const YAML::Node& n, ControlSection& s) -> std::string {
         const std::string v = n.IsScalar() ? n.Scalar() : "";
         if (v.empty() || v.size() > 4 || v.find_first_not_of("01234567") != std::string::npos) {
           return "expected an octal mode such as 0660";
         }
         s.socket_mode = static_cast<uint32_t>(std::stoul(v, nullptr, 8));
         return {};
       },
       [](const ControlSection& s) {
         char buf[8];
         std::snprintf(buf, sizeof buf, "\"%04o\"", s.socket_mode);
         return std::string(buf);
       }},
      size_field<ControlSection>("max_body", &ControlSection::max_body, 1024, 64ull << 20, true,
                                 "Largest request body the control API accepts"),
  };
  return t;
}

const FieldTable<StoreSection>& store_table() {
  static const FieldTable<StoreSection> t = {
      int_field<StoreSection>("commit_interval", &StoreSection::commit_interval, 1, 10000, true,
                              "Milliseconds between group commits: changes newer than this may "
                              "be lost in a crash"),
      size_field<StoreSection>("map_size", &StoreSection::map_size, 1 << 20, 1ull << 44, false,
                               "Initial size of the LMDB map; it grows by itself when full"),
  };
  return t;
}

// Applies one YAML document on top of `c`.
Status apply_document(const std::string& file, const YAML::Node& root,
                      const std::vector<ModuleSchema>& modules, Config& c) {
  if (root.IsNull()) return Ok{};
  if (!root.IsMap()) return Error(location(file, root) + ": expected a mapping of sections");
  for (const auto& kv : root) {
    const std::string name = kv.first.Scalar();
    Status s = Ok{};
    if (name == "daemon") {
      s = parse_section(file, name, kv.second, daemon_table(), c.daemon);
    } else if (name == "log") {
      s = parse_section(file, name, kv.second, log_table(), c.log);
    } else if (name == "control") {
      s = parse_section(file, name, kv.second, control_table(), c.control);
    } else if (name == "store") {
      s = parse_section(file, name, kv.second, store_table(), c.store);
    } else if (std::any_of(modules.begin(), modules.end(),
                           [&](const ModuleSchema& m) { return m.name == name; })) {
      if (!kv.second.IsMap() && !kv.second.IsNull()) {
        return Error(location(file, kv.second) + ": " + name + ": expected a mapping");
      }
      // Later files override earlier ones key by key.
      YAML::Node& merged = c.modules[name];
      if (!merged.IsDefined() || merged.IsNull()) merged = YAML::Node(YAML::NodeType::Map);
      if (kv.second.IsMap()) {
        for (const auto& m : kv.second) {
          merged[m.first.Scalar()] = m.second;
          // Remember the file, so the module's errors can name it (module_location()).
          merged[m.first.Scalar()].SetTag(kFileTag + file);
        }
      }
    } else {
      return Error(location(file, kv.first) + ": " + name + ": unknown section");
    }
    if (!s) return s;
  }
  return Ok{};
}

Status check_modules(const Config& c, const std::vector<ModuleSchema>& modules) {
  for (const auto& m : c.daemon.modules) {
    if (std::none_of(modules.begin(), modules.end(),
                     [&](const ModuleSchema& s) { return s.name == m; })) {
      std::string known;
      for (const auto& s : modules)
        known += (known.empty() ? "" : ", ") + s.name;
      return Error(c.files.front() + ": daemon.modules: unknown module '" + m +
                   "' (built-in: " + (known.empty() ? "none" : known) + ")");
    }
  }
  return Ok{};
}

Result<YAML::Node> load_yaml(const std::string& text, const std::string& name) {
  try {
    return YAML::Load(text);
  } catch (const YAML::ParserException& e) {
    return Error(name + ":" + std::to_string(e.mark.line + 1) + ":" +
                 std::to_string(e.mark.column + 1) + ": invalid YAML: " + e.msg);
  }
}

}  // namespace

Config default_config(const std::vector<ModuleSchema>& modules) {
  Config c;
  for (const auto& m : modules)
    if (m.default_on) c.daemon.modules.push_back(m.name);
  return c;
}

Result<Config> parse_config_text(const std::string& text, const std::string& name,
                                 const std::vector<ModuleSchema>& modules) {
  Config c = default_config(modules);
  c.files.push_back(name);
  auto root = load_yaml(text, name);
  if (!root) return root.error();
  if (auto s = apply_document(name, *root, modules, c); !s) return s.error();
  if (auto s = check_modules(c, modules); !s) return s.error();
  return c;
}

Result<Config> load_config(const std::string& path, const std::vector<ModuleSchema>& modules) {
  std::vector<std::string> files = {path};
  const fs::path dropins = path + ".d";
  std::error_code ec;
  if (fs::is_directory(dropins, ec)) {
    std::vector<std::string> extra;
    for (const auto& e : fs::directory_iterator(dropins, ec)) {
      if (e.path().extension() == ".yaml") extra.push_back(e.path().string());
    }
    std::sort(extra.begin(), extra.end());
    files.insert(files.end(), extra.begin(), extra.end());
  }
  Config c = default_config(modules);
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    if (!in) return Error(f + ": cannot read: " + std::strerror(errno));
    std::stringstream ss;
    ss << in.rdbuf();
    auto root = load_yaml(ss.str(), f);
    if (!root) return root.error();
    c.files.push_back(f);
    if (auto s = apply_document(f, *root, modules, c); !s) return s.error();
  }
  if (auto s = check_modules(c, modules); !s) return s.error();
  return c;
}

std::string print_default_config(const std::vector<ModuleSchema>& modules, bool commented) {
  const std::string p = commented ? "#" : "";
  std::string out;
  const Config d = default_config(modules);
  print_section(out, "daemon", daemon_table(), d.daemon, p);
  out += "\n";
  print_section(out, "log", log_table(), d.log, p);
  out += "\n";
  print_section(out, "control", control_table(), d.control, p);
  out += "\n";
  print_section(out, "store", store_table(), d.store, p);
  for (const auto& m : modules) {
    if (!m.print_defaults) continue;
    out += "\n";
    out += m.print_defaults(p);
  }
  return out;
}

namespace {
template <class S>
void diff_section(const std::string& name, const FieldTable<S>& table, const S& a, const S& b,
                  std::vector<ConfigChange>& out) {
  for (const auto& f : table) {
    if (f.show(a) != f.show(b)) out.push_back({name + "." + f.key, f.reloadable});
  }
}
}  // namespace

std::vector<ConfigChange> diff_configs(const Config& a, const Config& b) {
  std::vector<ConfigChange> out;
  diff_section("daemon", daemon_table(), a.daemon, b.daemon, out);
  diff_section("log", log_table(), a.log, b.log, out);
  diff_section("control", control_table(), a.control, b.control, out);
  diff_section("store", store_table(), a.store, b.store, out);
  std::map<std::string, bool> names;
  for (const auto& [n, _] : a.modules)
    names[n] = true;
  for (const auto& [n, _] : b.modules)
    names[n] = true;
  for (const auto& [n, _] : names) {
    auto ia = a.modules.find(n);
    auto ib = b.modules.find(n);
    const std::string da = ia == a.modules.end() ? "" : YAML::Dump(ia->second);
    const std::string db = ib == b.modules.end() ? "" : YAML::Dump(ib->second);
    if (da != db) out.push_back({n, true});  // the module's reload() says what it applies
  }
  return out;
}

}  // namespace evert::daemon
