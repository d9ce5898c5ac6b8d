// Internals of the Announcer shared by announcer.cpp (queue, torrents, outcomes) and
// announcer_io.cpp (names, HTTP, UDP): the state of an announce in flight and small helpers.
// Not for other files.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "announcer.h"

struct evdns_getaddrinfo_request;

namespace evert::everseed::announcer_detail {

using tracker::Endpoint;
using tracker::Family;

inline constexpr int64_t kConnectionIdLife = 60;  // BEP 15: a connection id may be used a minute
inline constexpr int64_t kDnsLife = 300;          // seconds a resolved name is reused
inline constexpr int64_t kDnsFailureLife = 60;    // seconds a failed lookup is remembered
inline constexpr size_t kMaxHttpBody = 256 * 1024;

inline bool is_wildcard(const Endpoint& e) {
  return std::all_of(e.ip.begin(), e.ip.begin() + static_cast<ptrdiff_t>(e.ip_size()),
                     [](uint8_t b) { return b == 0; });
}

inline bool is_loopback(const Endpoint& e) {
  if (e.family == Family::kV4) return e.ip[0] == 127;
  static const std::array<uint8_t, 16> kOne = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  return e.ip == kOne;
}

// Text from the network for logs and JSON: printable ASCII only, at most 100 bytes.
inline std::string printable(std::string_view s) {
  std::string out(s.substr(0, 100));
  for (char& c : out)
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) c = '?';
  return out;
}

inline std::string address_text(const Endpoint& e) {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(e.family == Family::kV4 ? AF_INET : AF_INET6, e.ip.data(), buf, sizeof buf);
  return buf;
}

inline sockaddr_storage to_sockaddr(const Endpoint& e, socklen_t& len) {
  sockaddr_storage ss{};
  if (e.family == Family::kV4) {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    std::memcpy(&a->sin_addr, e.ip.data(), 4);
    a->sin_port = htons(e.port);
    len = sizeof(sockaddr_in);
  } else {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    std::memcpy(&a->sin6_addr, e.ip.data(), 16);
    a->sin6_port = htons(e.port);
    len = sizeof(sockaddr_in6);
  }
  return ss;
}

// A literal address, or "localhost" (RFC 6761: always the loopback), without any lookup.
inline std::optional<Endpoint> literal_address(const std::string& host) {
  Endpoint e;
  if (host == "localhost" || host == "localhost.") {
    e.family = Family::kV4;
    e.ip = {127, 0, 0, 1};
    return e;
  }
  if (Endpoint::parse_ip(host, e)) return e;
  return std::nullopt;
}

}  // namespace evert::everseed::announcer_detail

namespace evert::everseed {

struct Announcer::Flight {
  Announcer* owner = nullptr;
  uint64_t id = 0;
  AnnounceJob job;
  tracker_client::TrackerUrl url;
  tracker::Endpoint address;
  // HTTP
  evhttp_connection* conn = nullptr;
  std::string http_error;    // from the error callback, for the completion callback
  bool in_callback = false;  // its request's callback is running: free the connection later
  int64_t started = 0;       // unix seconds the request was made
  // UDP
  uint32_t transaction = 0;
  int tries = 0;
  int64_t deadline = 0;  // when the datagram in flight times out; 0: none
  bool connecting = false;
  bool connected_here = false;  // this flight made the connect its connection id came from
  bool cached_id = false;       // the announce used a connection id of an earlier connect
  bool reconnected = false;
};

struct Announcer::DnsEntry {
  Announcer* owner = nullptr;
  std::string host;
  std::vector<tracker::Endpoint> addresses;
  std::string error;
  int64_t expires = 0;
  bool pending = false;
  evdns_getaddrinfo_request* request = nullptr;
  std::vector<uint64_t> waiters;  // flights
};

struct Announcer::UdpSocket {
  int fd = -1;
  std::unique_ptr<daemon::FdWatcher> watcher;
  ~UdpSocket() {
    watcher.reset();
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace evert::everseed
