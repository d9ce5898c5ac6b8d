// The HTTP tracker's codec (BEP 3, 23, 7, 24, 48, 21): announce and scrape query strings in,
// bencoded responses out. Pure functions over bytes (STYLE.md §2); every error is a message the
// tracker sends back as a "failure reason".
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "evert/result.h"
#include "evert/tracker/swarm.h"

namespace evert::tracker {

struct QueryLimits {
  uint32_t numwant_default = 50;
  uint32_t numwant_max = 200;
  size_t max_scrape = 64;   // info_hash values in one scrape
  size_t max_params = 64;   // parameters in one query
  size_t max_string = 128;  // key, trackerid, ip
};

struct HttpAnnounce {
  AnnounceRequest request;  // endpoint.port set; the address is filled by the server
  bool compact = true;      // BEP 23; compact=0 asks for the dictionary model
  bool no_peer_id = false;
  std::optional<Endpoint> ip;    // ip= (either family), when given and parseable
  std::optional<Endpoint> ipv4;  // BEP 7
  std::optional<Endpoint> ipv6;  // BEP 7
  std::string key;
  std::string trackerid;
};

// Decodes percent-escapes exactly per RFC 3986: "%XX" is one byte, everything else is itself
// ('+' is a plus, not a space). Fails on a malformed escape.
std::optional<std::string> url_decode(std::string_view s);

// Parses the query of GET /announce (without the '?').
Result<HttpAnnounce> parse_announce(std::string_view query, const QueryLimits& limits);
// The info-hashes of GET /scrape; empty means a full scrape was asked for.
Result<std::vector<InfoHash>> parse_scrape(std::string_view query, const QueryLimits& limits);

struct AnnounceResponseOptions {
  uint32_t interval = 1800;
  uint32_t min_interval = 60;
  std::string tracker_id;               // empty: none
  std::string warning;                  // empty: none
  std::optional<Endpoint> external_ip;  // BEP 24
};

// Appends the bencoded announce response to `out`.
void write_announce_response(const HttpAnnounce& announce, const AnnounceReply& reply,
                             const AnnounceResponseOptions& options, std::string& out);
// Appends d14:failure reasonN:...e (and min interval, so clients do not hammer).
void write_failure(std::string_view reason, std::string& out);

// A scrape response: files → {complete, downloaded, downloaders (BEP 21), incomplete}.
class ScrapeWriter {
 public:
  explicit ScrapeWriter(std::string& out);
  void add(const InfoHash& ih, const SwarmCounts& counts);  // in info-hash order, no repeats
  void finish(uint32_t min_request_interval);               // BEP 48 flags
 private:
  std::string& out_;
};

}  // namespace evert::tracker
