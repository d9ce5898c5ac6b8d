// evertctl user add/del/passwd/list and token create/list/revoke: the accounts of evertd's web
// module. Passwords are asked twice without echo on a terminal (or read as one line with
// --password-stdin), checked, and hashed here with libsodium (argon2id); evertd only ever gets
// the hash, since its control routes answer at once and hashing takes a while.
#include <sodium.h>
#include <termios.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <ctime>
#include <iomanip>
#include <iostream>
#include <memory>

#include "cli.h"
#include "evert/account_rules.h"
#include "evert/magnet.h"

namespace evert::ctl {
namespace {

using nlohmann::json;

constexpr const char* kModule = "web";

struct AccountArgs {
  CommonOptions common;
  DaemonOptions daemon;
  std::string name;  // user name, or token id for revoke
  bool admin = false;
  bool password_stdin = false;
  std::string label;
};

std::optional<json> call(const AccountArgs& a, const std::string& method, const std::string& path,
                         const json& body, int& code) {
  return call_daemon(a.common, a.daemon, method, path, body.is_null() ? "" : json_text(body), code,
                     kModule);
}

// --- Passwords ---

termios g_saved_termios{};
volatile std::sig_atomic_t g_echo_off = 0;

void restore_echo_and_exit(int sig) {
  if (g_echo_off != 0) tcsetattr(STDIN_FILENO, TCSAFLUSH, &g_saved_termios);
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}

// One line of standard input without its line break; nullopt at end of input or when it is
// longer than any password may be.
std::optional<std::string> read_line(bool& too_long) {
  std::string line;
  too_long = false;
  for (int c = std::getchar(); c != EOF && c != '\n'; c = std::getchar()) {
    if (line.size() > kMaxPassword) {
      too_long = true;
      continue;  // read to the end of the line, keep nothing more
    }
    line.push_back(static_cast<char>(c));
  }
  if (line.empty() && std::feof(stdin)) return std::nullopt;
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

// Asks for a line on the terminal without echo.
std::optional<std::string> ask_hidden(const std::string& prompt, bool& too_long) {
  std::cerr << prompt << std::flush;
  tcgetattr(STDIN_FILENO, &g_saved_termios);
  termios quiet = g_saved_termios;
  quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
  g_echo_off = 1;
  auto old_int = std::signal(SIGINT, restore_echo_and_exit);
  auto old_term = std::signal(SIGTERM, restore_echo_and_exit);
  tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
  auto line = read_line(too_long);
  tcsetattr(STDIN_FILENO, TCSAFLUSH, &g_saved_termios);
  g_echo_off = 0;
  std::signal(SIGINT, old_int);
  std::signal(SIGTERM, old_term);
  std::cerr << '\n';
  return line;
}

void wipe(std::string& s) {
  sodium_memzero(s.data(), s.size());
}

// The new password of `user`, hashed (argon2id, libsodium's interactive limits), or nullopt
// with the message printed and `code` set.
std::optional<std::string> new_password_hash(const AccountArgs& a, const std::string& user,
                                             int& code) {
  code = kExitFailure;
  bool too_long = false;
  std::optional<std::string> pw;
  if (a.password_stdin) {
    pw = read_line(too_long);
    if (!pw) {
      fail(a.common, "no_password", "--password-stdin: standard input is empty");
      return std::nullopt;
    }
  } else if (isatty(STDIN_FILENO) == 1) {
    pw = ask_hidden("New password for " + user + ": ", too_long);
    bool again_too_long = false;
    auto again = pw ? ask_hidden("Again: ", again_too_long) : std::nullopt;
    if (!pw || !again || *pw != *again) {
      if (pw) wipe(*pw);
      if (again) wipe(*again);
      fail(a.common, "password_mismatch", "the two passwords differ; nothing was changed");
      return std::nullopt;
    }
    wipe(*again);
  } else {
    fail(a.common, "no_terminal",
         "standard input is not a terminal to ask for a password on: give it on standard "
         "input with --password-stdin");
    return std::nullopt;
  }
  std::string why = too_long ? "a password has at most " + std::to_string(kMaxPassword) + " bytes"
                             : check_password(*pw);
  if (!why.empty()) {
    wipe(*pw);
    fail(a.common, "weak_password", why);
    return std::nullopt;
  }
  if (sodium_init() < 0) {
    wipe(*pw);
    fail(a.common, "internal", "libsodium failed to initialise");
    return std::nullopt;
  }
  char hash[crypto_pwhash_STRBYTES];
  const int rc = crypto_pwhash_str(hash, pw->data(), pw->size(), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                                   crypto_pwhash_MEMLIMIT_INTERACTIVE);
  wipe(*pw);
  if (rc != 0) {
    fail(a.common, "internal", "cannot hash the password: out of memory (it needs 64 MiB)");
    return std::nullopt;
  }
  code = kExitOk;
  return std::string(hash);
}

// --- Output ---

std::string date_text(const json& v) {
  if (!v.is_number_integer()) return "never";
  const auto t = static_cast<std::time_t>(v.get<long long>());
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M", &tm);
  return buf;
}

std::string plural(size_t n, const std::string& word) {
  return std::to_string(n) + " " + word + (n == 1 ? "" : "s");
}

// The user list, to check a name before asking for a password (and that the daemon and its web
// module are there). nullopt: message printed.
std::optional<bool> user_exists(const AccountArgs& a, const std::string& name, int& code) {
  auto j = call(a, "GET", "/v1/users", nullptr, code);
  if (!j) return std::nullopt;
  for (const auto& u : (*j)["users"]) {
    if (u.value("name", "") == name) return true;
  }
  return false;
}

// --- user ---

int run_user_add(const AccountArgs& a) {
  if (std::string why = check_user_name(a.name); !why.empty()) return usage_error(a.common, why);
  int code = kExitOk;
  auto exists = user_exists(a, a.name, code);
  if (!exists) return code;
  if (*exists) return fail(a.common, "exists", "user '" + a.name + "' exists");
  auto hash = new_password_hash(a, a.name, code);
  if (!hash) return code;
  auto j = call(a, "POST", "/v1/users",
                {{"name", a.name}, {"password_hash", *hash}, {"admin", a.admin}}, code);
  if (!j) return code;
  if (a.common.json) {
    print_json(*j);
  } else {
    std::cout << "Added user " << a.name << (a.admin ? " (admin)" : "") << '\n';
  }
  return kExitOk;
}

int run_user_del(const AccountArgs& a) {
  int code = kExitOk;
  auto j = call(a, "DELETE", "/v1/users?name=" + percent_encode(a.name), nullptr, code);
  if (!j) return code;
  if (a.common.json) {
    print_json(*j);
  } else {
    std::cout << "Deleted user " << a.name << " ("
              << plural(j->value("sessions_ended", size_t{0}), "session") << " ended, "
              << plural(j->value("tokens_revoked", size_t{0}), "token") << " revoked)\n";
  }
  return kExitOk;
}

int run_user_passwd(const AccountArgs& a) {
  int code = kExitOk;
  auto exists = user_exists(a, a.name, code);
  if (!exists) return code;
  if (!*exists) return fail(a.common, "unknown_user", "no user named '" + a.name + "'");
  auto hash = new_password_hash(a, a.name, code);
  if (!hash) return code;
  auto j =
      call(a, "POST", "/v1/users/password", {{"name", a.name}, {"password_hash", *hash}}, code);
  if (!j) return code;
  if (a.common.json) {
    print_json(*j);
  } else {
    std::cout << "Changed the password of " << a.name << " ("
              << plural(j->value("sessions_ended", size_t{0}), "session") << " ended)\n";
  }
  return kExitOk;
}

int run_user_list(const AccountArgs& a) {
  int code = kExitOk;
  auto j = call(a, "GET", "/v1/users", nullptr, code);
  if (!j) return code;
  if (a.common.json) {
    print_json(*j);
    return kExitOk;
  }
  const auto& users = (*j)["users"];
  std::cout << std::left << std::setw(24) << "NAME" << std::setw(7) << "ADMIN"
            << "CREATED\n";
  for (const auto& u : users) {
    std::cout << std::left << std::setw(24) << u.value("name", "") << std::setw(7)
              << (u.value("admin", false) ? "yes" : "no") << date_text(u["created"]) << '\n';
  }
  std::cout << plural(users.size(), "user") << '\n';
  return kExitOk;
}

// --- token ---

int run_token_create(const AccountArgs& a) {
  int code = kExitOk;
  auto j = call(a, "POST", "/v1/tokens", {{"user", a.name}, {"label", a.label}}, code);
  if (!j) return code;
  if (a.common.json) {
    print_json(*j);
  } else {
    std::cout << j->value("token", "") << '\n';
  }
  if (!a.common.quiet) {
    std::cerr << "API token " << j->value("id", "") << " of " << a.name
              << (a.label.empty() ? "" : " (" + a.label + ")")
              << ": copy it now, it cannot be shown again.\n";
  }
  return kExitOk;
}

int run_token_list(const AccountArgs& a) {
  int code = kExitOk;
  const std::string path =
      a.name.empty() ? "/v1/tokens" : "/v1/tokens?user=" + percent_encode(a.name);
  auto j = call(a, "GET", path, nullptr, code);
  if (!j) return code;
  if (a.common.json) {
    print_json(*j);
    return kExitOk;
  }
  const auto& tokens = (*j)["tokens"];
  std::cout << std::left << std::setw(18) << "ID" << std::setw(18) << "USER" << std::setw(18)
            << "CREATED" << std::setw(18) << "LAST USED"
            << "LABEL\n";
  for (const auto& t : tokens) {
    std::cout << std::left << std::setw(18) << t.value("id", "") << std::setw(18)
              << t.value("user", "") << std::setw(18) << date_text(t["created"]) << std::setw(18)
              << date_text(t["last_used"]) << t.value("label", "") << '\n';
  }
  std::cout << plural(tokens.size(), "token") << '\n';
  return kExitOk;
}

int run_token_revoke(const AccountArgs& a) {
  int code = kExitOk;
  auto j = call(a, "DELETE", "/v1/tokens?id=" + percent_encode(a.name), nullptr, code);
  if (!j) return code;
  if (a.common.json) {
    print_json(*j);
  } else {
    std::cout << "Revoked token " << j->value("revoked", "") << " of " << j->value("user", "")
              << '\n';
  }
  return kExitOk;
}

// A leaf command: its options, and what runs it.
Command leaf(CLI::App& parent, const std::string& name, const std::string& help,
             const std::shared_ptr<AccountArgs>& a, int (*run)(const AccountArgs&)) {
  CLI::App* cmd = parent.add_subcommand(name, help);
  add_daemon_options(*cmd, a->daemon);
  add_common_options(*cmd, a->common);
  return {cmd, [a, run] { return run(*a); }};
}

void add_password_stdin(CLI::App& cmd, AccountArgs& a) {
  cmd.add_flag("--password-stdin", a.password_stdin,
               "Read the password as one line of standard input (scripts) instead of asking");
}

}  // namespace

std::vector<Command> add_accounts(CLI::App& parent) {
  std::vector<Command> out;
  CLI::App* user =
      parent.add_subcommand("user", "Manage the users of evertd's web module (it must be running)");
  user->require_subcommand(1, 1);
  user->footer("Passwords are hashed here (argon2id); evertd never sees them. See evertctl(1).");

  auto add = std::make_shared<AccountArgs>();
  Command c = leaf(*user, "add", "Add a user; asks for the password twice", add, run_user_add);
  c.app->add_option("NAME", add->name, "User name: 1 to 64 of a-z, 0-9, _, . and -")->required();
  c.app->add_flag("--admin", add->admin, "Make the user an administrator");
  add_password_stdin(*c.app, *add);
  out.push_back(c);

  auto del = std::make_shared<AccountArgs>();
  c = leaf(*user, "del", "Delete a user, ending its sessions and revoking its API tokens", del,
           run_user_del);
  c.app->add_option("NAME", del->name, "User name")->required();
  out.push_back(c);

  auto passwd = std::make_shared<AccountArgs>();
  c = leaf(*user, "passwd", "Set a user's password; ends its sessions (its API tokens stay)",
           passwd, run_user_passwd);
  c.app->add_option("NAME", passwd->name, "User name")->required();
  add_password_stdin(*c.app, *passwd);
  out.push_back(c);

  auto list = std::make_shared<AccountArgs>();
  out.push_back(leaf(*user, "list", "List the users", list, run_user_list));

  CLI::App* token = parent.add_subcommand(
      "token", "Manage the API tokens of the web module's users (it must be running)");
  token->require_subcommand(1, 1);

  auto create = std::make_shared<AccountArgs>();
  c = leaf(*token, "create", "Create an API token for a user and print it (only this once)", create,
           run_token_create);
  c.app->add_option("USER", create->name, "The user the token acts as")->required();
  c.app->add_option("-l,--label", create->label, "What the token is for (at most 100 bytes)");
  out.push_back(c);

  auto tlist = std::make_shared<AccountArgs>();
  c = leaf(*token, "list", "List API tokens (not their secrets), of one user or of all", tlist,
           run_token_list);
  c.app->add_option("USER", tlist->name, "Only this user's tokens");
  out.push_back(c);

  auto revoke = std::make_shared<AccountArgs>();
  c = leaf(*token, "revoke", "Revoke an API token by its id (as token list shows)", revoke,
           run_token_revoke);
  c.app->add_option("ID", revoke->name, "The token's id: 16 hex digits")->required();
  out.push_back(c);
  return out;
}

}  // namespace evert::ctl
