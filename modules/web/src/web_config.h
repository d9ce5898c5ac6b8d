// The web module's section of evertd.yaml: one struct, one field table (STYLE.md §12).
#pragma once

#include <string>
#include <vector>

#include "accounts.h"
#include "evert/daemon/config.h"

namespace evert::web {

struct WebSection {
  std::vector<std::string> listen = {"0.0.0.0:8080", "[::]:8080"};
  // The base URL browsers and web seed clients reach this listener at (behind a proxy, the
  // proxy's); empty: http(s)://ADDRESS:PORT of the first listen address that is not a wildcard.
  std::string public_url;
  // HTTPS on every listener: PEM files of the certificate chain and its key (both or neither;
  // empty: plain HTTP, e.g. behind a reverse proxy that terminates TLS).
  std::string tls_certificate;
  std::string tls_key;
  int max_connections = 1024;
  int max_per_address = 64;  // connections from one address (IPv6: /64), proxies aside
  int timeout = 30;          // seconds a connection may be idle, or a client take no bytes
  // The pages (site.h).
  std::string title = "Evertorrent";   // the site's and its feed's title
  std::string read_access = "public";  // or "login": pages and feeds need a login
  uint64_t max_upload = 16ull << 30;   // bytes of one upload at most
  // Reverse proxies whose X-Forwarded-For names the client (login rate limits, logs).
  std::vector<std::string> trusted_proxies = {"127.0.0.1", "::1"};
  // Accounts (accounts.h): a login session's lifetime, and the failure budget per address.
  int session_days = 14;
  int login_failures = 5;
  int login_refill_seconds = 30;
};

const daemon::FieldTable<WebSection>& web_table();
std::string print_web_defaults(const std::string& prefix);
// The accounts' part of the section.
Accounts::Options accounts_options(const WebSection& section);

}  // namespace evert::web
