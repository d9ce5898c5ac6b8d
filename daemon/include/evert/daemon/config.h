// evertd's configuration: YAML, one typed struct per section with defaults as member
// initialisers, and one field table per section (STYLE.md §12) that parses, rejects unknown
// keys, prints the defaults and tells which changed keys a reload can apply.
//
// Files: the main file (default /etc/evert/evertd.yaml), then drop-ins FILE.d/*.yaml applied in
// name order on top of it. Errors name FILE:LINE:COLUMN and the key path.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "evert/result.h"
#include "evert/units.h"

namespace evert::daemon {

inline constexpr const char* kDefaultConfigPath = "/etc/evert/evertd.yaml";

struct DaemonSection {
  std::string state_dir = "/var/lib/evert";
  // Which built-in modules run, in order. The default is every module registered as on by
  // default (ModuleSchema::default_on), in registry order; see default_config().
  std::vector<std::string> modules;
  int worker_threads = 2;
  int bulk_threads = 2;       // long jobs (publishing: copy, hash, verify), apart from the rest
  int shutdown_timeout = 10;  // seconds
};

struct LogSection {
  std::string level = "info";   // trace, debug, info, warn, error
  std::string target = "auto";  // auto (journal when run by systemd), journal, stderr
};

struct ControlSection {
  std::string socket = "/run/evert/evertd.sock";
  std::string socket_group = "evert";  // empty: leave the group as created
  uint32_t socket_mode = 0660;
  uint64_t max_body = 1 << 20;
};

struct StoreSection {
  int commit_interval = 200;     // milliseconds: the durability window of hot-path writes
  uint64_t map_size = 64 << 20;  // initial LMDB map size; it grows by itself when full
};

struct Config {
  DaemonSection daemon;
  LogSection log;
  ControlSection control;
  StoreSection store;
  // Sections of modules, validated by the modules themselves (Module::configure).
  std::map<std::string, YAML::Node> modules;
  std::vector<std::string> files;  // the files it was read from, for messages
};

// One row of a field table.
template <class S>
struct Field {
  std::string key;
  std::string help;  // one line, printed as a comment
  bool reloadable = false;
  // Parses `node` into the section; the error text is prefixed with the location by the caller.
  std::function<std::string(const YAML::Node& node, S& section)> parse;
  std::function<std::string(const S& section)> show;  // the value as YAML
};

template <class S>
using FieldTable = std::vector<Field<S>>;

// "FILE:LINE:COLUMN" of a node (1-based, as editors count).
std::string location(const std::string& file, const YAML::Node& node);

// The tag a module section's values carry: "evert-file:" and the file they came from.
inline constexpr const char* kFileTag = "evert-file:";
// "FILE:LINE:COLUMN" of a value inside a module's section.
std::string module_location(const YAML::Node& node);

// Parses a module's section (as Module::configure gets it) with its field table; errors name
// FILE:LINE:COLUMN and "NAME.KEY".
template <class S>
Status parse_module_section(const std::string& name, const YAML::Node& node,
                            const FieldTable<S>& table, S& section);

// Field constructors for the common types.
template <class S>
Field<S> int_field(std::string key, int S::*member, int lo, int hi, bool reloadable,
                   std::string help) {
  return {std::move(key), std::move(help), reloadable,
          [=](const YAML::Node& n, S& s) -> std::string {
            long long v = 0;
            if (!n.IsScalar() || !YAML::convert<long long>::decode(n, v)) {
              return "expected an integer";
            }
            if (v < lo || v > hi) {
              return "must be from " + std::to_string(lo) + " to " + std::to_string(hi) + " (got " +
                     std::to_string(v) + ")";
            }
            s.*member = static_cast<int>(v);
            return {};
          },
          [=](const S& s) { return std::to_string(s.*member); }};
}

// A byte size: 1048576, 512K, 64M (units.h); printed with the largest suffix that is exact.
template <class S>
Field<S> size_field(std::string key, uint64_t S::*member, uint64_t lo, uint64_t hi, bool reloadable,
                    std::string help) {
  return {std::move(key), std::move(help), reloadable,
          [=](const YAML::Node& n, S& s) -> std::string {
            if (!n.IsScalar()) return "expected a size such as 1048576, 512K or 64M";
            auto v = parse_size(n.Scalar());
            if (!v)
              return "expected a size such as 1048576, 512K or 64M (got '" + n.Scalar() + "')";
            if (*v < lo || *v > hi) {
              return "must be from " + format_size(lo) + " to " + format_size(hi);
            }
            s.*member = *v;
            return {};
          },
          [=](const S& s) {
            const uint64_t v = s.*member;
            if (v == 0) return std::string("0");
            if (v % (1 << 20) == 0) return std::to_string(v >> 20) + "M";
            if (v % (1 << 10) == 0) return std::to_string(v >> 10) + "K";
            return std::to_string(v);
          }};
}

// Quotes a string for YAML output.
std::string yaml_quote(const std::string& s);

template <class S>
Field<S> string_field(std::string key, std::string S::*member, bool reloadable, std::string help,
                      std::function<std::string(const std::string&)> check = {}) {
  return {std::move(key), std::move(help), reloadable,
          [=](const YAML::Node& n, S& s) -> std::string {
            if (!n.IsScalar()) return "expected a string";
            const std::string v = n.Scalar();
            if (check) {
              if (std::string why = check(v); !why.empty()) return why;
            }
            s.*member = v;
            return {};
          },
          [=](const S& s) { return yaml_quote(s.*member); }};
}

template <class S>
Field<S> bool_field(std::string key, bool S::*member, bool reloadable, std::string help) {
  return {std::move(key), std::move(help), reloadable,
          [=](const YAML::Node& n, S& s) -> std::string {
            bool v = false;
            if (!n.IsScalar() || !YAML::convert<bool>::decode(n, v))
              return "expected true or false";
            s.*member = v;
            return {};
          },
          [=](const S& s) { return std::string(s.*member ? "true" : "false"); }};
}

// A list of strings, each checked by `check` (which returns why one is wrong, or "").
template <class S>
Field<S> string_list_field(std::string key, std::vector<std::string> S::*member, bool reloadable,
                           std::string help,
                           std::function<std::string(const std::string&)> check = {}) {
  return {std::move(key), std::move(help), reloadable,
          [=](const YAML::Node& n, S& s) -> std::string {
            if (!n.IsSequence()) return "expected a list";
            std::vector<std::string> v;
            for (const auto& item : n) {
              if (!item.IsScalar()) return "expected a list of strings";
              if (check) {
                if (std::string why = check(item.Scalar()); !why.empty()) {
                  return "'" + item.Scalar() + "': " + why;
                }
              }
              v.push_back(item.Scalar());
            }
            s.*member = std::move(v);
            return {};
          },
          [=](const S& s) {
            std::string out = "[";
            for (const auto& m : s.*member)
              out += (out.size() > 1 ? ", " : "") + yaml_quote(m);
            return out + "]";
          }};
}

template <class S>
Field<S> choice_field(std::string key, std::string S::*member, std::vector<std::string> choices,
                      bool reloadable, std::string help) {
  auto check = [choices](const std::string& v) -> std::string {
    std::string list;
    for (const auto& c : choices) {
      if (c == v) return {};
      list += (list.empty() ? "" : ", ") + c;
    }
    return "must be one of " + list + " (got '" + v + "')";
  };
  return string_field<S>(std::move(key), member, reloadable, std::move(help), check);
}

// Parses the keys of `node` with the field table; `where(kv, unknown)` names the place of an
// error (about the key when it is unknown, else about its value).
template <class S, class Where>
Status parse_fields(const std::string& name, const YAML::Node& node, const FieldTable<S>& table,
                    S& section, Where&& where) {
  for (const auto& kv : node) {
    const std::string key = kv.first.Scalar();
    const Field<S>* field = nullptr;
    for (const auto& f : table) {
      if (f.key == key) field = &f;
    }
    if (field == nullptr) {
      return Error(where(kv, true) + ": " + name + "." + key + ": unknown key");
    }
    if (std::string why = field->parse(kv.second, section); !why.empty()) {
      return Error(where(kv, false) + ": " + name + "." + key + ": " + why);
    }
  }
  return Ok{};
}

template <class S>
Status parse_section(const std::string& file, const std::string& name, const YAML::Node& node,
                     const FieldTable<S>& table, S& section) {
  if (node.IsNull()) return Ok{};
  if (!node.IsMap()) return Error(location(file, node) + ": " + name + ": expected a mapping");
  return parse_fields(name, node, table, section, [&](const auto& kv, bool unknown) {
    return location(file, unknown ? kv.first : kv.second);
  });
}

template <class S>
Status parse_module_section(const std::string& name, const YAML::Node& node,
                            const FieldTable<S>& table, S& section) {
  if (!node.IsDefined() || node.IsNull()) return Ok{};
  if (!node.IsMap()) return Error(name + ": expected a mapping");
  return parse_fields(name, node, table, section,
                      [](const auto& kv, bool) { return module_location(kv.second); });
}

template <class S>
void print_section(std::string& out, const std::string& name, const FieldTable<S>& table,
                   const S& section, const std::string& prefix) {
  out += prefix + name + ":\n";
  for (const auto& f : table) {
    out += prefix + "  # " + f.help + (f.reloadable ? "" : " (restart)") + "\n";
    out += prefix + "  " + f.key + ": " + f.show(section) + "\n";
  }
}

// What the host knows about modules when it reads a config: their names, and the default
// YAML of each module's section (for printing).
struct ModuleSchema {
  std::string name;
  std::string description;
  std::function<std::string(const std::string& prefix)> print_defaults;
  bool default_on = false;
};

// The defaults, with daemon.modules = the modules that are on by default.
Config default_config(const std::vector<ModuleSchema>& modules);

// Reads the main file and its drop-ins. Every error names the file, line, column and key.
Result<Config> load_config(const std::string& path, const std::vector<ModuleSchema>& modules);
// Parses one YAML document (for tests and --check-config on text).
Result<Config> parse_config_text(const std::string& text, const std::string& name,
                                 const std::vector<ModuleSchema>& modules);

// The defaults as YAML; with `commented`, every line is commented out (etc/evertd.yaml).
std::string print_default_config(const std::vector<ModuleSchema>& modules, bool commented);

// A key whose value differs between two configs, and whether reload can apply it.
struct ConfigChange {
  std::string key;  // "log.level"
  bool reloadable = false;
};
std::vector<ConfigChange> diff_configs(const Config& a, const Config& b);

}  // namespace evert::daemon
