#include "tracker_config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <charconv>
#include <cstring>

#include "evert/tracker/types.h"

namespace evert::tracker {
namespace {

std::string check_hash(const std::string& s) {
  if (s.size() != 40 || s.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos) {
    return "expected a 40-digit hex info-hash";
  }
  return {};
}
std::string check_tracker_url(const std::string& s) {
  if (s.rfind("http://", 0) != 0 && s.rfind("https://", 0) != 0 && s.rfind("udp://", 0) != 0) {
    return "expected an http://, https:// or udp:// URL";
  }
  return {};
}
std::string check_ip(const std::string& s) {
  Endpoint e;
  return Endpoint::parse_ip(s, e) ? "" : "expected an IPv4 or IPv6 address";
}

}  // namespace

const daemon::FieldTable<TrackerSection>& tracker_table() {
  using S = TrackerSection;
  using namespace daemon;
  static const FieldTable<S> t = {
      string_list_field<S>("http_listen", &S::http_listen, false,
                           "HTTP announce/scrape listeners, ADDRESS:PORT ([::]:PORT for IPv6)",
                           check_listen),
      string_list_field<S>("udp_listen", &S::udp_listen, false,
                           "UDP (BEP 15) listeners, ADDRESS:PORT ([::]:PORT for IPv6)",
                           check_listen),
      choice_field<S>("mode", &S::mode, {"whitelist", "open"}, true,
                      "whitelist: only published and listed torrents; open: any info-hash"),
      string_list_field<S>("whitelist", &S::whitelist, true,
                           "Info-hashes (40 hex digits) tracked besides published torrents",
                           check_hash),
      int_field<S>("interval", &S::interval, 10, 86400, true,
                   "Seconds clients are asked to wait between announces"),
      int_field<S>("min_interval", &S::min_interval, 1, 86400, true,
                   "Seconds clients must wait at least (min interval)"),
      int_field<S>("expiry", &S::expiry, 30, 14400, true,
                   "Seconds without an announce before a peer is dropped"),
      int_field<S>("numwant_default", &S::numwant_default, 0, 200, true,
                   "Peers returned when the client does not say how many"),
      int_field<S>("numwant_max", &S::numwant_max, 0, 200, true,
                   "Most peers returned to one announce"),
      int_field<S>("max_swarms", &S::max_swarms, 1, 100'000'000, true,
                   "Open mode: swarms tracked at most (new ones past it are refused)"),
      int_field<S>("max_peers_per_swarm", &S::max_peers_per_swarm, 1, 10'000'000, true,
                   "Peers kept per swarm and address family (more get peers but are not kept)"),
      int_field<S>("max_peers_per_address", &S::max_peers_per_address, 1, 10'000'000, true,
                   "Peers kept per swarm from one IPv4 address or IPv6 /64 (more get peers but "
                   "are not kept)"),
      int_field<S>("max_scrape", &S::max_scrape, 1, 1000, true,
                   "info_hash values accepted in one HTTP scrape"),
      bool_field<S>("full_scrape", &S::full_scrape, true,
                    "Answer a scrape without info_hash with every swarm"),
      bool_field<S>("allow_ip_param", &S::allow_ip_param, true,
                    "Honour the ip/ipv4/ipv6 announce parameters (else the connection's address)"),
      string_list_field<S>(
          "public_urls", &S::public_urls, true,
          "Announce URLs of this tracker written into torrents published here (HTTP and UDP, one "
          "BEP 12 tier); empty: http://ADDR:PORT/announce and udp://ADDR:PORT/announce for each "
          "listen address, the host name for wildcard ones",
          check_tracker_url),
      string_list_field<S>("trusted_proxies", &S::trusted_proxies, true,
                           "Addresses whose X-Forwarded-For / X-Real-IP headers are believed",
                           check_ip),
      string_field<S>("tracker_id", &S::tracker_id, true,
                      "Sent as 'tracker id' in HTTP announce responses when not empty"),
      bool_field<S>("keep_peer_ids", &S::keep_peer_ids, false,
                    "Keep each peer's 20-byte id (20 more bytes per peer) to list peer ids in "
                    "non-compact replies and evertctl swarm"),
      bool_field<S>("persist", &S::persist, false,
                    "Keep swarms, peers and completed counts in the store across restarts"),
      int_field<S>("persist_interval", &S::persist_interval, 10, 60'000, true,
                   "Milliseconds between snapshots of changed swarms into the store (plus "
                   "store.commit_interval: what a crash may lose)"),
      bool_field<S>("metrics", &S::metrics, true,
                    "Serve Prometheus metrics at /metrics on the HTTP listeners"),
      string_list_field<S>("metrics_allow", &S::metrics_allow, true,
                           "Addresses allowed to read /metrics", check_ip),
      int_field<S>("http_timeout", &S::http_timeout, 1, 3600, true,
                   "Seconds an HTTP connection may stay idle or take to send its request"),
      int_field<S>("max_connections", &S::max_connections, 16, 1'000'000, true,
                   "Open HTTP connections at most (more are closed at once)"),
      int_field<S>("max_per_address", &S::max_per_address, 1, 1'000'000, true,
                   "Open HTTP connections from one address at most (IPv6 by /64; "
                   "trusted_proxies are not counted); more get a 503"),
  };
  return t;
}

std::string print_tracker_defaults(const std::string& prefix) {
  std::string out;
  daemon::print_section(out, "tracker", tracker_table(), TrackerSection{}, prefix);
  return out;
}

}  // namespace evert::tracker
