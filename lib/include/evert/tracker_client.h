// The client side of the tracker protocols: what a peer sends to an HTTP (BEP 3, 23) or UDP
// (BEP 15, 41) tracker when it announces, and what it makes of the answer. Pure functions over
// bytes (STYLE.md §2): the everseed's announcer does the I/O, the tests and the fuzzer call these
// directly. The server side lives in modules/tracker (http_proto.h, udp_proto.h).
//
// Everything here treats the tracker's bytes as untrusted: a reply that does not parse is an
// Error naming what was wrong, never a crash, and numbers are range-checked.
//
// Thread-safety: pure functions; values are ordinary values.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "evert/hash.h"
#include "evert/result.h"

namespace evert::tracker_client {

enum class Scheme : uint8_t { kHttp, kHttps, kUdp };

// A tracker URL taken apart: http://HOST[:PORT]/PATH?QUERY, https://..., udp://HOST:PORT[/PATH].
struct TrackerUrl {
  Scheme scheme = Scheme::kHttp;
  std::string host;    // lower-cased; an IPv6 literal without its brackets
  uint16_t port = 0;   // as written, or 80 / 443 for http / https (udp has no default)
  std::string target;  // path and query as written ("/announce?x=1"); "/" when empty

  // "udp://host:port" with the scheme and port always spelled out (IPv6 in brackets): what two
  // URLs naming the same tracker endpoint have in common, whatever their paths.
  [[nodiscard]] std::string endpoint_key() const;
};

// Parses a tracker URL from a torrent's announce / announce-list. Errors: an unknown scheme, no
// host, a bad port, a udp:// URL without a port, bytes that are not printable ASCII, more than
// 2048 bytes.
Result<TrackerUrl> parse_tracker_url(std::string_view url);

// The event of an announce, numbered as the UDP protocol numbers them (BEP 15).
enum class Event : uint8_t { kNone = 0, kCompleted = 1, kStarted = 2, kStopped = 3 };
std::string_view to_string(Event e);  // "", "completed", "started", "stopped"

struct AnnounceRequest {
  Sha1Digest info_hash;  // v1, or a v2 info-hash truncated to 20 bytes (BEP 52)
  std::array<uint8_t, 20> peer_id{};
  uint16_t port = 0;  // where peers reach us
  uint64_t uploaded = 0;
  uint64_t downloaded = 0;
  uint64_t left = 0;  // 0: a seed
  Event event = Event::kNone;
  uint32_t key = 0;     // identifies us across address changes (BEP 3 "key", BEP 15)
  int32_t numwant = 0;  // peers wanted; -1: the tracker's default
  // Our address, when it is not the one the request comes from: http sends it as ip=, udp puts
  // an IPv4 address in the IP field (BEP 15). Empty / nullopt: the request's source address.
  std::string ip;
  std::optional<std::array<uint8_t, 4>> ipv4;
};

// The request target of an HTTP announce: the URL's path and query with the announce
// parameters appended (compact=1, no_peer_id=1).
std::string http_announce_target(const TrackerUrl& url, const AnnounceRequest& a);

// What a tracker answered to an announce.
struct AnnounceReply {
  std::string failure;              // "failure reason": the tracker refused the announce
  std::string warning;              // "warning message"
  uint32_t interval = 0;            // seconds until the next announce; 0 when the tracker gave none
  uint32_t min_interval = 0;        // "min interval"; 0 when absent
  std::optional<uint32_t> seeders;  // "complete"
  std::optional<uint32_t> leechers;  // "incomplete"
};

// Longest failure reason or warning kept from a reply (trackers' texts are short; the rest is cut).
inline constexpr size_t kMaxMessage = 200;

// Parses the body of an HTTP announce reply: a bencoded dictionary with a "failure reason", or
// an "interval" (peers are ignored: the everseed wants none). Lenient about what real trackers
// send (unsorted keys, bytes after the dictionary) but an Error when the body is not a
// bencoded dictionary or has neither of the two keys.
Result<AnnounceReply> parse_http_reply(std::string_view body);

// UDP (BEP 15).
inline constexpr uint64_t kUdpProtocolId = 0x41727101980ull;
inline constexpr size_t kUdpConnectSize = 16;
inline constexpr size_t kUdpMaxUrlData = 1024;  // BEP 41 URL data sent at most

// The connect request: protocol id, action 0, `transaction`.
std::string udp_connect_request(uint32_t transaction);
// The announce request (98 bytes) followed by the URL's path and query as BEP 41 URL data
// options (cut at kUdpMaxUrlData bytes).
std::string udp_announce_request(uint64_t connection_id, uint32_t transaction,
                                 const AnnounceRequest& a, std::string_view url_data);

struct UdpResponse {
  enum class Kind : uint8_t { kConnect, kAnnounce, kError };
  Kind kind = Kind::kError;
  uint32_t transaction = 0;
  uint64_t connection_id = 0;  // kConnect
  AnnounceReply reply;         // kAnnounce: interval and counts; kError: the message as failure
};

// Parses a datagram from a UDP tracker. Errors: shorter than its action needs, or an action
// this client never asks for (scrape) or does not know.
Result<UdpResponse> parse_udp_response(std::span<const uint8_t> datagram);

}  // namespace evert::tracker_client
