// Magnet links (BEP 9, BEP 52's urn:btmh, BEP 53 select-only).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "evert/hash.h"
#include "evert/metainfo.h"
#include "evert/result.h"

namespace evert {

struct Magnet {
  std::optional<Sha1Digest> info_hash_v1;    // xt=urn:btih:<40 hex or 32 base32>
  std::optional<Sha256Digest> info_hash_v2;  // xt=urn:btmh:1220<64 hex> (sha2-256 multihash)
  std::string name;                          // dn
  std::optional<uint64_t> size;              // xl
  std::vector<std::string> trackers;         // tr, in order
  std::vector<std::string> web_seeds;        // ws
  std::vector<std::string> peers;            // x.pe (host:port)
  std::string select_only;                   // so (BEP 53), as given: "0,2,4-6"
};

// The magnet link of a torrent: both hashes for a hybrid, dn, xl, every tracker (tiers
// flattened in order) and web seed.
Magnet magnet_of(const Metainfo& m);

// magnet:?xt=...&dn=...; values percent-encoded per RFC 3986 (unreserved characters kept).
std::string to_uri(const Magnet& m);

// Parses a magnet link. Errors: not a magnet URI, no usable xt, a malformed hash or number, a
// bad percent escape. Unknown parameters are ignored, as BEP 9 asks of clients.
Result<Magnet> parse_magnet(std::string_view uri);

// RFC 3986 percent-encoding and decoding (decoding fails on a malformed escape).
// `keep` lists further characters left as they are (e.g. "," for BEP 53 ranges).
std::string percent_encode(std::string_view s, std::string_view keep = {});
std::optional<std::string> percent_decode(std::string_view s);

}  // namespace evert
