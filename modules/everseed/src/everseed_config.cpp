#include "everseed_config.h"

#include "evert/tracker/types.h"
#include "evert/tracker_client.h"

namespace evert::everseed {
namespace {

std::string check_tracker_url(const std::string& s) {
  auto u = tracker_client::parse_tracker_url(s);
  return u ? "" : u.error().message;
}

}  // namespace

const daemon::FieldTable<EverseedSection>& everseed_table() {
  using S = EverseedSection;
  using daemon::bool_field;
  using daemon::int_field;
  using daemon::size_field;
  using daemon::string_list_field;
  static const daemon::FieldTable<S> t = {
      string_list_field<S>("listen", &S::listen, false,
                           "Peer-wire listeners, ADDRESS:PORT ([::]:PORT for IPv6)",
                           tracker::check_listen),
      string_list_field<S>("public_address", &S::public_address, true,
                           "ADDRESS:PORT peers reach the seed at, given to this daemon's tracker "
                           "(empty: the listen addresses that are not wildcards)",
                           tracker::check_listen),
      bool_field<S>("utp", &S::utp, false,
                    "Accept uTP (BEP 29) on the listen ports' numbers over UDP as well as TCP"),
      daemon::choice_field<S>("encryption", &S::encryption, {"allow", "prefer", "require"}, true,
                              "Message stream encryption (MSE/PE): allow (plaintext and "
                              "encrypted handshakes; plaintext streams when the peer offers "
                              "both), prefer (RC4 streams when offered), require (RC4 only)"),
      int_field<S>("max_connections", &S::max_connections, 1, 1'000'000, true,
                   "Peer connections at most (more are refused)"),
      int_field<S>("max_per_address", &S::max_per_address, 1, 10'000, true,
                   "Peer connections from one address at most (TCP and uTP; IPv6 by /64)"),
      int_field<S>("max_per_torrent", &S::max_per_torrent, 1, 1'000'000, true,
                   "Peers of one torrent at most (more are refused after their handshake)"),
      int_field<S>("request_queue", &S::request_queue, 1, 10'000, true,
                   "Block requests queued per peer (announced as reqq); more are rejected"),
      int_field<S>("max_block", &S::max_block, 1024, 128 * 1024, true,
                   "Largest block a peer may request, in bytes (clients ask for 16384)"),
      int_field<S>("handshake_timeout", &S::handshake_timeout, 1, 600, true,
                   "Seconds a new connection has to send its handshake"),
      int_field<S>("idle_timeout", &S::idle_timeout, 10, 3600, true,
                   "Seconds without any message from a peer before it is dropped"),
      int_field<S>("reads_in_flight", &S::reads_in_flight, 1, 256, true,
                   "Worker-thread disk reads at once for one peer (batches of blocks the "
                   "page cache does not hold)"),
      int_field<S>("send_buffer", &S::send_buffer, 64 * 1024, 64 << 20, true,
                   "Bytes queued or being read for one peer before more of its requests are "
                   "read"),
      int_field<S>("upload_slots", &S::upload_slots, 1, 10'000, true,
                   "Peers of one torrent downloading at once, taking turns (besides the "
                   "optimistic slot)"),
      int_field<S>("unchoke_interval", &S::unchoke_interval, 1, 3600, true,
                   "Seconds between turns: peers that waited get the slots held longest"),
      int_field<S>("optimistic_unchoke_interval", &S::optimistic_unchoke_interval, 0, 3600, true,
                   "Seconds before one torrent's optimistic slot moves to the next waiting peer "
                   "(0: no optimistic slot)"),
      size_field<S>("max_upload_rate", &S::max_upload_rate, 0, uint64_t{1} << 40, true,
                    "Upload rate of all torrents together, bytes per second (0: unlimited)"),
      size_field<S>("max_upload_rate_per_torrent", &S::max_upload_rate_per_torrent, 0,
                    uint64_t{1} << 40, true,
                    "Upload rate of each torrent, bytes per second (0: unlimited)"),
      int_field<S>("check_interval", &S::check_interval, 1, 3600, true,
                   "Seconds between checks that the files of a torrent being served are unchanged"),
      bool_field<S>("announce", &S::announce, true,
                    "Announce published torrents as a seed to the other trackers they name"),
      int_field<S>("announce_concurrency", &S::announce_concurrency, 1, 1000, true,
                   "Announces to other trackers in flight at once"),
      int_field<S>("announce_min_interval", &S::announce_min_interval, 10, 86400, true,
                   "Seconds between announces to one tracker at least, whatever it asks"),
      int_field<S>("announce_max_interval", &S::announce_max_interval, 60, 86400, true,
                   "Seconds between announces to one tracker at most, and the longest retry wait"),
      int_field<S>("announce_retry", &S::announce_retry, 1, 3600, true,
                   "Seconds before a failed announce is retried, doubled per failure in a row"),
      string_list_field<S>("own_trackers", &S::own_trackers, true,
                           "Tracker URLs that reach this daemon's tracker under another name "
                           "(NAT, proxy): never announced to",
                           check_tracker_url),
      bool_field<S>("announce_private", &S::announce_private, true,
                    "Announce also to trackers at loopback, private, link-local and other "
                    "non-public addresses (off: a torrent's tracker URL cannot make the daemon "
                    "probe its own network)"),
  };
  return t;
}

std::string print_everseed_defaults(const std::string& prefix) {
  std::string out;
  daemon::print_section(out, "everseed", everseed_table(), EverseedSection{}, prefix);
  return out;
}

}  // namespace evert::everseed
