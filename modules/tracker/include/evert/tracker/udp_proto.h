// The UDP tracker's codec (BEP 15, 41): one datagram in, at most one datagram out. Pure code
// over bytes, driven by UdpTracker::handle() which the server and the fuzzer both call.
//
// Connection ids cost no memory and cannot be forged: SipHash (libsodium) under a secret key of
// the client's address, port and a 60-second window; the current and two previous windows are
// accepted, so an id lives two to three minutes (BEP 15 asks for at least two).
// No amplification: a datagram without a valid connection id gets at most as many bytes back as
// it sent (a connect response is 16 bytes for a 16-byte connect; errors are cut to fit).
#pragma once

#include <sodium.h>

#include <cstdint>
#include <span>
#include <string>

#include "evert/tracker/swarm.h"

namespace evert::tracker {

inline constexpr uint64_t kUdpProtocolId = 0x41727101980ull;
inline constexpr size_t kUdpMaxScrape = 74;  // (1500-byte MTU - headers) / 20, as BEP 15 notes

struct UdpCounters {
  uint64_t connects = 0;
  uint64_t announces = 0;
  uint64_t scrapes = 0;
  uint64_t errors = 0;   // error responses sent
  uint64_t dropped = 0;  // datagrams not answered
  uint64_t bad_connection_id = 0;
};

class UdpTracker {
 public:
  struct Options {
    uint32_t interval = 1800;
    uint32_t numwant_default = 50;
    uint32_t numwant_max = 200;
  };

  UdpTracker(SwarmTable& swarms, Options options);
  void set_options(const Options& o) { options_ = o; }

  // Handles one datagram from `from` (IPv4 or IPv6; IPv4-mapped counts as IPv4). Writes the
  // response into `out` (cleared) and returns its size, 0 for no response. `out` must hold
  // kMaxResponse bytes.
  static constexpr size_t kMaxResponse = 20 + 18 * 200 + 64;
  size_t handle(std::span<const uint8_t> packet, const Endpoint& from, int64_t now, uint8_t* out);

  // The connection id for `from` at `now` (tests).
  [[nodiscard]] uint64_t connection_id(const Endpoint& from, int64_t window) const;

  [[nodiscard]] const UdpCounters& counters() const { return counters_; }
  // BEP 41 URL data of the last announce handled (for the swarm logic and tests).
  [[nodiscard]] const std::string& last_url_data() const { return url_data_; }

 private:
  bool valid_connection(uint64_t id, const Endpoint& from, int64_t now) const;
  size_t error(uint32_t transaction, std::string_view message, size_t cap, uint8_t* out);
  size_t announce(std::span<const uint8_t> p, const Endpoint& from, int64_t now, uint8_t* out);
  size_t scrape(std::span<const uint8_t> p, uint8_t* out);

  SwarmTable& swarms_;
  Options options_;
  unsigned char key_[crypto_shorthash_KEYBYTES];
  UdpCounters counters_;
  AnnounceReply reply_;  // reused: no allocation per announce once warm
  std::string url_data_;
};

}  // namespace evert::tracker
