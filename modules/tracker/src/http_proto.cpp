#include "evert/tracker/http_proto.h"

#include <algorithm>
#include <charconv>
#include <cstring>

#include "evert/magnet.h"

namespace evert::tracker {
namespace {

// Splits "a=1&b=2" and calls fn(key, raw value) for each; false stops with that error.
template <class Fn>
std::string each_param(std::string_view query, size_t max_params, Fn&& fn) {
  size_t count = 0;
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view part = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    if (part.empty()) continue;
    if (++count > max_params) return "too many parameters";
    const size_t eq = part.find('=');
    const std::string_view key = part.substr(0, eq);
    const std::string_view value =
        eq == std::string_view::npos ? std::string_view{} : part.substr(eq + 1);
    if (std::string why = fn(key, value); !why.empty()) return why;
  }
  return {};
}

std::string parse_u64(std::string_view key, std::string_view raw, uint64_t& out) {
  if (raw.empty()) return std::string(key) + " is empty";
  if (raw[0] == '-') return std::string(key) + " is negative";
  const auto* end = raw.data() + raw.size();
  auto [p, ec] = std::from_chars(raw.data(), end, out);
  if (ec == std::errc::result_out_of_range) return std::string(key) + " is too large";
  if (ec != std::errc() || p != end) return std::string(key) + " is not a number";
  return {};
}

std::string decode_id(std::string_view key, std::string_view raw, std::string& out) {
  auto v = url_decode(raw);
  if (!v) return std::string(key) + " has a malformed percent-escape";
  if (v->size() != 20) {
    return std::string(key) + " must be 20 bytes (got " + std::to_string(v->size()) + ")";
  }
  out = std::move(*v);
  return {};
}

void put_int(std::string& out, uint64_t v) {
  char buf[24];
  auto [p, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out += 'i';
  out.append(buf, p);
  out += 'e';
}
void put_str(std::string& out, std::string_view s) {
  char buf[24];
  auto [p, ec] = std::to_chars(buf, buf + sizeof buf, s.size());
  out.append(buf, p);
  out += ':';
  out.append(s);
}
void put_bytes_header(std::string& out, size_t n) {
  char buf[24];
  auto [p, ec] = std::to_chars(buf, buf + sizeof buf, n);
  out.append(buf, p);
  out += ':';
}

}  // namespace

std::optional<std::string> url_decode(std::string_view s) {
  return percent_decode(s);
}

Result<HttpAnnounce> parse_announce(std::string_view query, const QueryLimits& limits) {
  HttpAnnounce a;
  std::string info_hash;
  std::string peer_id;
  bool have_port = false;
  bool have_left = false;
  uint64_t numwant = limits.numwant_default;
  auto text = [&](std::string_view key, std::string_view raw, std::string& out) -> std::string {
    auto v = url_decode(raw);
    if (!v) return std::string(key) + " has a malformed percent-escape";
    if (v->size() > limits.max_string) return std::string(key) + " is too long";
    out = std::move(*v);
    return {};
  };
  auto address = [&](std::string_view key, std::string_view raw,
                     std::optional<Endpoint>& out) -> std::string {
    std::string s;
    if (std::string why = text(key, raw, s); !why.empty()) return why;
    // BEP 7's ipv4=/ipv6= may carry a port: "1.2.3.4:6881", "[::1]:6881".
    Endpoint e;
    std::string host = s;
    uint16_t port = 0;
    if (!s.empty() && s[0] == '[') {
      const size_t close = s.find(']');
      if (close == std::string::npos) return std::string(key) + " is not an address";
      host = s.substr(1, close - 1);
      if (close + 1 < s.size()) {
        if (s[close + 1] != ':') return std::string(key) + " is not an address";
        uint64_t p = 0;
        if (!parse_u64(key, s.substr(close + 2), p).empty() || p == 0 || p > 65535) {
          return std::string(key) + " has a bad port";
        }
        port = static_cast<uint16_t>(p);
      }
    } else if (std::count(s.begin(), s.end(), ':') == 1) {
      const size_t colon = s.find(':');
      host = s.substr(0, colon);
      uint64_t p = 0;
      if (!parse_u64(key, std::string_view(s).substr(colon + 1), p).empty() || p == 0 ||
          p > 65535) {
        return std::string(key) + " has a bad port";
      }
      port = static_cast<uint16_t>(p);
    }
    // A name instead of an address is ignored rather than resolved (no DNS on the hot path).
    if (!Endpoint::parse_ip(host, e)) return {};
    e.port = port;
    out = e;
    return {};
  };

  std::string why = each_param(
      query, limits.max_params, [&](std::string_view key, std::string_view raw) -> std::string {
        if (key == "info_hash") {
          if (!info_hash.empty()) return "info_hash given twice";
          return decode_id(key, raw, info_hash);
        }
        if (key == "peer_id") return decode_id(key, raw, peer_id);
        if (key == "port") {
          uint64_t p = 0;
          if (std::string e = parse_u64(key, raw, p); !e.empty()) return e;
          if (p == 0 || p > 65535) return "port must be from 1 to 65535";
          a.request.endpoint.port = static_cast<uint16_t>(p);
          have_port = true;
          return {};
        }
        if (key == "uploaded") return parse_u64(key, raw, a.request.uploaded);
        if (key == "downloaded") return parse_u64(key, raw, a.request.downloaded);
        if (key == "left") {
          have_left = true;
          return parse_u64(key, raw, a.request.left);
        }
        if (key == "numwant") return parse_u64(key, raw, numwant);
        if (key == "compact") {
          a.compact = raw != "0";
          return {};
        }
        if (key == "no_peer_id") {
          a.no_peer_id = raw == "1";
          return {};
        }
        if (key == "event") {
          if (raw.empty()) {
            a.request.event = Event::kNone;
          } else if (raw == "started") {
            a.request.event = Event::kStarted;
          } else if (raw == "completed") {
            a.request.event = Event::kCompleted;
          } else if (raw == "stopped") {
            a.request.event = Event::kStopped;
          } else if (raw == "paused") {
            a.request.event = Event::kPaused;
          } else {
            return "unknown event (expected started, completed, stopped, paused or empty)";
          }
          return {};
        }
        if (key == "key") return text(key, raw, a.key);
        if (key == "trackerid") return text(key, raw, a.trackerid);
        if (key == "ip") return address(key, raw, a.ip);
        if (key == "ipv4") return address(key, raw, a.ipv4);
        if (key == "ipv6") return address(key, raw, a.ipv6);
        return {};  // unknown parameters are ignored, as clients add their own
      });
  if (!why.empty()) return Error(why);
  if (info_hash.empty()) return Error("missing info_hash");
  if (peer_id.empty()) return Error("missing peer_id");
  if (!have_port) return Error("missing port");
  if (!have_left) return Error("missing left");
  if (a.ipv4 && a.ipv4->family != Family::kV4) a.ipv4.reset();
  if (a.ipv6 && a.ipv6->family != Family::kV6) a.ipv6.reset();
  a.request.info_hash = InfoHash::from(info_hash);
  a.request.peer_id = PeerId::from(peer_id);
  a.request.numwant = static_cast<uint32_t>(std::min<uint64_t>(numwant, limits.numwant_max));
  return a;
}

Result<std::vector<InfoHash>> parse_scrape(std::string_view query, const QueryLimits& limits) {
  std::vector<InfoHash> hashes;
  std::string why = each_param(query, limits.max_scrape + limits.max_params,
                               [&](std::string_view key, std::string_view raw) -> std::string {
                                 if (key != "info_hash") return {};
                                 if (hashes.size() >= limits.max_scrape) {
                                   return "too many info_hash values (at most " +
                                          std::to_string(limits.max_scrape) + ")";
                                 }
                                 std::string ih;
                                 if (std::string e = decode_id(key, raw, ih); !e.empty()) return e;
                                 hashes.push_back(InfoHash::from(ih));
                                 return {};
                               });
  if (!why.empty()) return Error(why);
  return hashes;
}

void write_announce_response(const HttpAnnounce& announce, const AnnounceReply& reply,
                             const AnnounceResponseOptions& options, std::string& out) {
  // Keys in bytewise order, as bencoding requires.
  out += "d8:complete";
  put_int(out, reply.counts.complete);
  out += "10:downloaded";
  put_int(out, reply.counts.downloaded);
  if (options.external_ip) {
    out += "11:external ip";
    put_str(out, std::string_view(reinterpret_cast<const char*>(options.external_ip->ip.data()),
                                  options.external_ip->ip_size()));
  }
  out += "10:incomplete";
  put_int(out, reply.counts.incomplete);
  out += "8:interval";
  put_int(out, options.interval);
  out += "12:min interval";
  put_int(out, options.min_interval);
  if (announce.compact) {
    out += "5:peers";
    put_bytes_header(out, reply.peers4.size() * 6);
    for (const PeerRef& p : reply.peers4)
      out.append(reinterpret_cast<const char*>(p.ip()), 6);
    if (!reply.peers6.empty()) {
      out += "6:peers6";
      put_bytes_header(out, reply.peers6.size() * 18);
      for (const PeerRef& p : reply.peers6)
        out.append(reinterpret_cast<const char*>(p.ip()), 18);
    }
  } else {
    // The dictionary model: both families in one list, with peer ids unless no_peer_id.
    out += "5:peersl";
    for (const auto* list : {&reply.peers4, &reply.peers6}) {
      for (const PeerRef& p : *list) {
        Endpoint e;
        e.family = p.family;
        std::memcpy(e.ip.data(), p.ip(), p.ip_size());
        std::string addr = e.to_string();
        addr = p.family == Family::kV4 ? addr.substr(0, addr.rfind(':'))
                                       : addr.substr(1, addr.rfind(']') - 1);
        out += "d2:ip";
        put_str(out, addr);
        if (!announce.no_peer_id && p.id() != nullptr) {
          out += "7:peer id";
          put_str(out, std::string_view(reinterpret_cast<const char*>(p.id()), 20));
        }
        out += "4:port";
        put_int(out, static_cast<uint64_t>(p.port()[0] << 8 | p.port()[1]));
        out += 'e';
      }
    }
    out += 'e';
  }
  if (!options.tracker_id.empty()) {
    out += "10:tracker id";
    put_str(out, options.tracker_id);
  }
  if (!options.warning.empty()) {
    out += "15:warning message";
    put_str(out, options.warning);
  }
  out += 'e';
}

void write_failure(std::string_view reason, std::string& out) {
  out += "d14:failure reason";
  put_str(out, reason);
  out += 'e';
}

ScrapeWriter::ScrapeWriter(std::string& out) : out_(out) {
  out_ += "d5:filesd";
}

void ScrapeWriter::add(const InfoHash& ih, const SwarmCounts& c) {
  out_ += "20:";
  out_.append(ih.view());
  out_ += "d8:complete";
  put_int(out_, c.complete);
  out_ += "10:downloaded";
  put_int(out_, c.downloaded);
  out_ += "11:downloaders";  // BEP 21: leechers that are not partial seeds
  put_int(out_, c.incomplete - c.partial);
  out_ += "10:incomplete";
  put_int(out_, c.incomplete);
  out_ += 'e';
}

void ScrapeWriter::finish(uint32_t min_request_interval) {
  out_ += "e5:flagsd20:min_request_interval";
  put_int(out_, min_request_interval);
  out_ += "ee";
}

}  // namespace evert::tracker
