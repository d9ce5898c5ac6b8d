// Identities and addresses the tracker works with (STYLE.md §8: strong types, not strings).
#pragma once

#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "evert/result.h"

namespace evert::tracker {

// A 20-byte identity: an info-hash (v1, or a v2 hash truncated to 20 bytes as BEP 52 says
// trackers see it) or a peer id.
template <class Tag>
struct Id20 {
  std::array<uint8_t, 20> bytes{};

  static Id20 from(std::string_view raw) {  // precondition: raw.size() == 20
    Id20 id;
    std::memcpy(id.bytes.data(), raw.data(), 20);
    return id;
  }
  [[nodiscard]] std::string_view view() const {
    return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
  }
  friend bool operator==(const Id20&, const Id20&) = default;
  friend auto operator<=>(const Id20&, const Id20&) = default;
};
struct InfoHashTag {};
struct PeerIdTag {};
using InfoHash = Id20<InfoHashTag>;
using PeerId = Id20<PeerIdTag>;

// Hashes an Id20 for unordered containers with a per-process random key (SipHash through
// libsodium), so clients that choose their info-hashes cannot flood one bucket.
struct Id20Hash {
  size_t operator()(const InfoHash& id) const noexcept;
};

enum class Family : uint8_t { kV4 = 4, kV6 = 6 };

// An IPv4 or IPv6 address and a port, the bytes in network order.
struct Endpoint {
  Family family = Family::kV4;
  std::array<uint8_t, 16> ip{};  // IPv4 uses the first 4 bytes
  uint16_t port = 0;             // host order

  [[nodiscard]] size_t ip_size() const { return family == Family::kV4 ? 4 : 16; }
  // "1.2.3.4:80" or "[::1]:80".
  [[nodiscard]] std::string to_string() const;
  // Parses a bare address ("1.2.3.4", "::1"); false when it is neither. IPv4-mapped IPv6
  // addresses become IPv4.
  static bool parse_ip(std::string_view text, Endpoint& out);
  friend bool operator==(const Endpoint&, const Endpoint&) = default;
};

// The address and port of a socket address (AF_INET or AF_INET6), IPv4-mapped made IPv4.
Endpoint endpoint_of(const sockaddr_storage& ss);

// Converts an IPv4-mapped IPv6 address (::ffff:a.b.c.d) to IPv4; other addresses unchanged.
Endpoint unmap(const Endpoint& e);

// Whether an address is one of the internet's: not loopback, private (RFC 1918, unique local
// fc00::/7), shared (100.64.0.0/10), link-local, unspecified, multicast, reserved, or IPv4 in
// an IPv6 form (mapped, compatible, NAT64 64:ff9b::/96, 6to4 2002::/16) of such an address.
// What the everseed announces to by default: a tracker URL in a published torrent must not
// turn the daemon into a scanner of the operator's own network.
bool is_public_address(const Endpoint& e);

// What a per-address limit counts by: the IPv4 address, or the /64 of an IPv6 one (a host is
// given a whole /64 and can pick any address in it); never the port. A short byte string.
std::string address_key(const Endpoint& e);

// The client a peer id names ("qBittorrent 4.5.0", "Transmission 3.00"), from the
// Azureus-style "-XXVVVV-" and aria2's "A2-M-m-p-" prefixes; "unknown" otherwise.
std::string describe_client(const PeerId& id);

// "1.2.3.4:6969" or "[::1]:6969" into a sockaddr; false with `why` when malformed.
bool parse_listen(const std::string& text, sockaddr_storage& out, unsigned& len, std::string& why);
// The config check of a listen address: "" when parse_listen() takes it, else why not.
std::string check_listen(const std::string& text);

// A non-blocking TCP socket bound to `addr` and listening (IPv6 sockets IPv6-only), or an
// error starting with `label`. The caller owns the fd.
Result<int> listen_tcp(const sockaddr_storage& addr, unsigned len, const std::string& label);
// The local port of a bound socket (0 when it cannot be read).
uint16_t local_port(int fd);
// The local address and port of a bound socket (all zeros when it cannot be read).
Endpoint local_endpoint(int fd);

}  // namespace evert::tracker
