#include "web_config.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "evert/tracker/types.h"

namespace evert::web {
namespace {

std::string check_ip(const std::string& s) {
  tracker::Endpoint e;
  return tracker::Endpoint::parse_ip(s, e) ? "" : "expected an IPv4 or IPv6 address";
}

std::string check_title(const std::string& s) {
  if (s.empty() || s.size() > 200) return "expected 1 to 200 characters";
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) return "control characters are not allowed";
  }
  return "";
}

// The certificate and key are read when the whole section is (WebModule::configure()); this
// catches a wrong path already in `evertd --check-config`.
std::string check_readable(const std::string& s) {
  if (s.empty() || access(s.c_str(), R_OK) == 0) return "";
  return s + ": cannot read it: " + std::strerror(errno);
}

std::string check_url(const std::string& s) {
  if (s.empty() || s.starts_with("http://") || s.starts_with("https://")) return "";
  return "expected an http:// or https:// URL";
}

}  // namespace

const daemon::FieldTable<WebSection>& web_table() {
  using S = WebSection;
  using daemon::int_field;
  using daemon::size_field;
  using daemon::string_field;
  using daemon::string_list_field;
  static const daemon::FieldTable<S> t = {
      string_list_field<S>("listen", &S::listen, false,
                           "HTTP listeners, ADDRESS:PORT ([::]:PORT for IPv6)",
                           tracker::check_listen),
      string_field<S>("public_url", &S::public_url, true,
                      "Base URL clients reach the web listener at, e.g. https://example.org "
                      "(empty: http://, or https:// with TLS, and the first listen address that "
                      "is not a wildcard); web seed URLs are PUBLIC_URL/data/INFOHASH/",
                      check_url),
      string_field<S>("tls_certificate", &S::tls_certificate, true,
                      "PEM certificate chain (the server's first) for HTTPS on every listener; "
                      "with tls_key, or neither (empty: plain HTTP, e.g. behind a reverse proxy). "
                      "A reload reads renewed files; turning TLS on or off needs a restart",
                      check_readable),
      string_field<S>("tls_key", &S::tls_key, true,
                      "PEM private key of tls_certificate, unencrypted (readable by evertd "
                      "only)",
                      check_readable),
      int_field<S>("max_connections", &S::max_connections, 1, 1'000'000, true,
                   "HTTP connections at most (more are refused)"),
      int_field<S>("max_per_address", &S::max_per_address, 1, 1'000'000, true,
                   "HTTP connections from one address at most (IPv6 by /64; trusted_proxies "
                   "are not counted); more get a 503"),
      int_field<S>("timeout", &S::timeout, 1, 3600, true,
                   "Seconds a connection may be idle, take to send a request, or take no bytes "
                   "of an answer, before it is closed"),
      string_field<S>("title", &S::title, true, "The site's name: page titles and the RSS feed",
                      check_title),
      daemon::choice_field<S>("read_access", &S::read_access, {"public", "login"}, true,
                              "Who may read the pages, feeds and /api/v1/: public, or login "
                              "(users only; the web seed's /data/ stays public)"),
      size_field<S>("max_upload", &S::max_upload, 1 << 20, uint64_t{1} << 50, true,
                    "The largest upload through the publish page or POST /api/v1/publish (the "
                    "disk must also have room)"),
      string_list_field<S>("trusted_proxies", &S::trusted_proxies, true,
                           "Addresses of reverse proxies whose X-Forwarded-For header names the "
                           "client (for the login rate limit and the logs)",
                           check_ip),
      int_field<S>("session_days", &S::session_days, 1, 3650, true,
                   "Days a login session lasts, from the login (a reload applies to new sessions)"),
      int_field<S>("login_failures", &S::login_failures, 1, 1000, true,
                   "Wrong passwords an address (an IPv6 /64) may try in a row before it must wait"),
      int_field<S>("login_refill_seconds", &S::login_refill_seconds, 1, 86400, true,
                   "After login_failures wrong passwords, one more try per this many seconds"),
  };
  return t;
}

std::string print_web_defaults(const std::string& prefix) {
  std::string out;
  daemon::print_section(out, "web", web_table(), WebSection{}, prefix);
  return out;
}

Accounts::Options accounts_options(const WebSection& section) {
  return {section.session_days, section.login_failures, section.login_refill_seconds};
}

}  // namespace evert::web
