#include "evert/magnet.h"

#include <charconv>

namespace evert {

namespace {
constexpr std::string_view kBtih = "urn:btih:";
constexpr std::string_view kBtmh = "urn:btmh:";
constexpr std::string_view kSha256Multihash = "1220";  // multihash: sha2-256, 32 bytes
constexpr size_t kMaxMagnetBytes = 64 * 1024;
}  // namespace

std::string percent_encode(std::string_view s, std::string_view keep) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '.' || c == '_' || c == '~' || keep.find(static_cast<char>(c)) != keep.npos) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

namespace {
int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
}  // namespace

// On the tracker's announce path too (every query parameter): no allocation per escape.
std::optional<std::string> percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    if (i + 2 >= s.size()) return std::nullopt;
    const int hi = hex_digit(s[i + 1]);
    const int lo = hex_digit(s[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out += static_cast<char>(hi << 4 | lo);
    i += 2;
  }
  return out;
}

Magnet magnet_of(const Metainfo& m) {
  Magnet g;
  g.info_hash_v1 = m.info_hash_v1;
  g.info_hash_v2 = m.info_hash_v2;
  g.name = m.name;
  g.size = m.total_size;
  for (const auto& tier : m.trackers) {
    for (const auto& url : tier)
      g.trackers.push_back(url);
  }
  g.web_seeds = m.web_seeds;
  return g;
}

std::string to_uri(const Magnet& g) {
  std::string s = "magnet:?";
  auto add = [&s](std::string_view key, std::string_view value) {
    if (s.back() != '?') s += '&';
    s += key;
    s += '=';
    s += value;
  };
  if (g.info_hash_v1) add("xt", std::string(kBtih) + to_hex(*g.info_hash_v1));
  if (g.info_hash_v2) {
    add("xt", std::string(kBtmh) + std::string(kSha256Multihash) + to_hex(*g.info_hash_v2));
  }
  if (!g.name.empty()) add("dn", percent_encode(g.name));
  if (g.size) add("xl", std::to_string(*g.size));
  for (const auto& t : g.trackers)
    add("tr", percent_encode(t));
  for (const auto& w : g.web_seeds)
    add("ws", percent_encode(w));
  for (const auto& p : g.peers)
    add("x.pe", percent_encode(p));
  if (!g.select_only.empty()) add("so", percent_encode(g.select_only, ","));
  return s;
}

namespace {

Status parse_xt(std::string_view v, Magnet& g) {
  if (v.substr(0, kBtih.size()) == kBtih) {
    std::string_view h = v.substr(kBtih.size());
    std::optional<std::string> raw;
    if (h.size() == 40) raw = from_hex(h, 20);
    if (h.size() == 32) raw = from_base32(h);
    if (!raw || raw->size() != 20) {
      return Error("xt: btih must be 40 hex or 32 base32 characters: '" + std::string(h) + "'");
    }
    g.info_hash_v1 = Sha1Digest::from_bytes(*raw);
  } else if (v.substr(0, kBtmh.size()) == kBtmh) {
    std::string_view h = v.substr(kBtmh.size());
    if (h.substr(0, kSha256Multihash.size()) != kSha256Multihash) {
      return Error("xt: btmh must be a sha2-256 multihash (starting 1220)");
    }
    auto raw = from_hex(h.substr(kSha256Multihash.size()), 32);
    if (!raw) return Error("xt: btmh hash must be 64 hex characters");
    g.info_hash_v2 = Sha256Digest::from_bytes(*raw);
  }
  // Other xt namespaces (ed2k, sha1 ...) belong to other networks: ignored.
  return Ok{};
}

}  // namespace

Result<Magnet> parse_magnet(std::string_view uri) {
  constexpr std::string_view kPrefix = "magnet:?";
  if (uri.size() > kMaxMagnetBytes) return Error("magnet link longer than 64 KiB");
  if (uri.substr(0, kPrefix.size()) != kPrefix) return Error("not a magnet link (magnet:?...)");
  Magnet g;
  std::string_view rest = uri.substr(kPrefix.size());
  while (!rest.empty()) {
    const size_t amp = rest.find('&');
    std::string_view pair = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view{} : rest.substr(amp + 1);
    if (pair.empty()) continue;
    const size_t eq = pair.find('=');
    if (eq == std::string_view::npos) return Error("parameter without '=': " + std::string(pair));
    const std::string_view key = pair.substr(0, eq);
    // '+' means space in query strings of HTML forms; keep it literal as RFC 3986 does.
    auto value = percent_decode(pair.substr(eq + 1));
    if (!value) return Error("bad percent escape in '" + std::string(key) + "'");
    if (key == "xt" || key.substr(0, 3) == "xt.") {
      if (auto s = parse_xt(*value, g); !s) return s.error();
    } else if (key == "dn") {
      g.name = *value;
    } else if (key == "xl") {
      uint64_t n = 0;
      auto [p, ec] = std::from_chars(value->data(), value->data() + value->size(), n);
      if (ec != std::errc() || p != value->data() + value->size()) {
        return Error("xl: not a size: '" + *value + "'");
      }
      g.size = n;
    } else if (key == "tr" || key.substr(0, 3) == "tr.") {
      g.trackers.push_back(*value);
    } else if (key == "ws") {
      g.web_seeds.push_back(*value);
    } else if (key == "x.pe") {
      g.peers.push_back(*value);
    } else if (key == "so") {
      // BEP 53: file indices and ranges, "0,2,4-6".
      if (value->empty() || value->find_first_not_of("0123456789,-") != std::string::npos) {
        return Error("so: not a list of file indices such as 0,2,4-6: '" + *value + "'");
      }
      g.select_only = *value;
    }
  }
  if (!g.info_hash_v1 && !g.info_hash_v2) {
    return Error("magnet link has no BitTorrent info-hash (xt=urn:btih: or urn:btmh:)");
  }
  return g;
}

}  // namespace evert
