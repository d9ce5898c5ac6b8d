// The everseed's tracker client: announces every published torrent, as a seed, to the trackers
// of its announce / announce-list that are not this daemon's own tracker (that one lists the
// everseed without any announce: SwarmTable::add_seeded). HTTP through libevent's evhttp,
// UDP (BEP 15) on one socket per address family, host names through evdns; the schedule is an
// AnnounceSchedule walked by one timer, with at most `concurrency` announces in flight.
//
// This daemon's own tracker: a URL names it when
//  - its scheme, host and port are those of a URL in everseed.own_trackers (compared without
//    the path; for proxies, NAT and DNS names the daemon cannot see through), or
//  - its host is, or resolves to, an address of this machine (loopback, an interface's
//    address) and its port is one this daemon's tracker listens on with the URL's protocol
//    (TCP for http://, UDP for udp://), the listening socket being bound to that address or to
//    the wildcard of its family.
// Other trackers are announced to only at public addresses (after resolving, so a name that
// resolves to 127.0.0.1 counts as 127.0.0.1) unless announce_private is set: the trackers of a
// published torrent are anyone's choice, and announcing to them, with the errors shown on the
// torrent's page, would scan the operator's own network for whoever uploads a torrent.
// A URL whose host is an IP literal or "localhost" is judged when the torrent is added and
// never gets any state; one with a host name is judged when it is resolved, and its slot is
// dropped then.
//
// Persistence: the store's `announce` database keeps each published torrent's announce list
// (bencoded, as in the .torrent), so start-up reads that index and not every .torrent; rows
// missing (torrents published before the announcer) are filled from the metainfo once.
//
// Thread-safety: loop thread only.
#pragma once

#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "announce_schedule.h"
#include "evert/daemon/event_loop.h"
#include "evert/daemon/store.h"
#include "evert/tracker/types.h"
#include "evert/tracker_client.h"

struct evdns_base;
struct evhttp_connection;
struct evhttp_request;
struct addrinfo;  // evutil_addrinfo on POSIX

namespace spdlog {
class logger;
}

namespace evert::everseed {

class Catalog;

struct AnnouncerOptions {
  ScheduleOptions schedule;
  size_t concurrency = 16;                // announces in flight at most
  std::vector<std::string> own_trackers;  // URLs of this daemon's tracker (scheme://host:port)
  int http_timeout = 30;                  // seconds for one HTTP announce
  int udp_timeout = 15;                   // seconds before the first UDP retransmission (BEP 15)
  int udp_tries = 3;                      // UDP sends of one request: 15, 30, 60 s (BEP 15)
  // Announce also to trackers whose address is not public (tracker::is_public_address()):
  // off, a torrent naming http://10.0.0.5:22/ makes the daemon probe its own network.
  bool announce_private = false;
};

// Who we are to trackers.
struct AnnounceIdentity {
  std::array<uint8_t, 20> peer_id{};
  uint16_t port = 0;  // the peer-wire port peers connect to
  std::string ip;     // the public address, when configured (sent as ip= / the UDP IP field)
};

// A socket this daemon's tracker listens on.
struct OwnListener {
  bool udp = false;
  tracker::Endpoint address;  // as bound (a wildcard: every address of its family)
};

class Announcer {
 public:
  using Clock = std::function<int64_t()>;  // unix seconds

  Announcer(daemon::EventLoop& loop, daemon::Store& store, std::shared_ptr<spdlog::logger> log,
            Clock clock);
  ~Announcer();
  Announcer(const Announcer&) = delete;
  Announcer& operator=(const Announcer&) = delete;

  // Options apply at once (the schedule's intervals to the next outcomes).
  void set_options(const AnnouncerOptions& o);
  void set_identity(const AnnounceIdentity& id) { identity_ = id; }
  void set_own_listeners(std::vector<OwnListener> l) { own_listeners_ = std::move(l); }

  // Start-up: schedules every published torrent from the `announce` database, filling rows that
  // are missing from the catalog's metainfo.
  void load(const Catalog& catalog);
  // A torrent just published (`tiers` from its metainfo): records its announce list and
  // schedules it when it names an external tracker. Idempotent.
  void add(const InfoHash& key, const std::vector<std::vector<std::string>>& tiers);
  // A torrent unpublished: event=stopped to the trackers that list it (queued, best effort),
  // its state and its row forgotten.
  void remove(const InfoHash& key);
  // The daemon stops (the loop may no longer run): every announce in flight is abandoned.
  // With `say_stopped`, an event=stopped datagram goes to each UDP tracker listing a torrent
  // whose connection id is still fresh (no round trip needed), at most kMaxStoppedAtExit of
  // them; HTTP trackers are not told (that would need the loop) and drop the everseed after
  // their expiry. Nothing runs after stop().
  void stop(bool say_stopped = true);

  // The "trackers" array of GET /v1/torrent.
  [[nodiscard]] nlohmann::json describe(const InfoHash& key) const;
  // The announcer's part of GET /v1/status.
  [[nodiscard]] nlohmann::json status() const;

  // Whether a URL names this daemon's tracker without resolving anything: nullopt when that
  // needs a DNS lookup. Exposed for tests.
  [[nodiscard]] std::optional<bool> own_without_lookup(const tracker_client::TrackerUrl& u) const;
  // Whether `address` (resolved from `u`) is this daemon's tracker. Exposed for tests.
  [[nodiscard]] bool own_address(const tracker_client::TrackerUrl& u,
                                 const tracker::Endpoint& address) const;

  static constexpr size_t kMaxStoppedAtExit = 1000;
  static constexpr size_t kMaxStoppedQueued = 10'000;

 private:
  struct Flight;
  struct DnsEntry;
  struct UdpSocket;
  struct ConnectionId {
    uint64_t id = 0;
    int64_t obtained = 0;
  };

  std::vector<std::vector<std::string>> external(
      const std::vector<std::vector<std::string>>& tiers) const;
  void schedule(const InfoHash& key, const std::vector<std::vector<std::string>>& tiers);
  void kick();
  void tick();
  void arm();
  void start(AnnounceJob job);
  void resolve(Flight& f);
  void on_resolved(DnsEntry& e, int result, addrinfo* res);
  void proceed(Flight& f, const tracker::Endpoint& address);
  void send_http(Flight& f);
  static void on_http_done(evhttp_request* req, void* arg);
  void finish_http(Flight& f, evhttp_request* req);
  UdpSocket* udp_socket(tracker::Family family);
  void send_udp(Flight& f);
  void on_udp_readable(UdpSocket& s);
  void on_udp_datagram(const uint8_t* data, size_t size, const tracker::Endpoint& from);
  void udp_timeouts(int64_t now);
  void complete(uint64_t id, const tracker_client::AnnounceReply* reply, const std::string& error,
                bool unreachable);
  void own(uint64_t id);
  void stop_io();
  void refresh_local_addresses(int64_t now) const;
  [[nodiscard]] tracker_client::AnnounceRequest request_for(const AnnounceJob& job) const;

  daemon::EventLoop& loop_;
  daemon::Store& store_;
  std::shared_ptr<spdlog::logger> log_;
  Clock clock_;
  AnnouncerOptions options_;
  AnnounceIdentity identity_;
  std::vector<OwnListener> own_listeners_;
  std::vector<tracker_client::TrackerUrl> own_urls_;
  uint32_t key_ = 0;  // the announce "key": one per daemon run

  AnnounceSchedule schedule_;
  std::deque<AnnounceJob> stopped_;  // event=stopped announces waiting for a free slot
  std::unordered_map<uint64_t, std::unique_ptr<Flight>> flights_;
  uint64_t next_flight_ = 1;
  daemon::Timer timer_;
  bool stopping_ = false;

  evdns_base* dns_ = nullptr;
  std::unordered_map<std::string, std::unique_ptr<DnsEntry>> dns_cache_;
  std::vector<evhttp_connection*> http_graveyard_;  // freed outside their own callbacks
  std::unique_ptr<UdpSocket> udp4_;
  std::unique_ptr<UdpSocket> udp6_;
  std::unordered_map<uint32_t, uint64_t> transactions_;  // UDP transaction id -> flight
  std::map<std::pair<std::array<uint8_t, 16>, uint16_t>, ConnectionId> connection_ids_;
  mutable std::vector<tracker::Endpoint> local_addresses_;
  mutable int64_t local_addresses_at_ = -1;

  struct Counters {
    uint64_t announces = 0;  // answered
    uint64_t failures = 0;   // failed or refused
    uint64_t stopped_sent = 0;
    uint64_t own_dropped = 0;
    uint64_t private_refused = 0;  // announces not sent: the tracker's address is not public
    uint64_t bad_datagrams = 0;
  } counters_;
};

}  // namespace evert::everseed
