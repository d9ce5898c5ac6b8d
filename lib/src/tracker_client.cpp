#include "evert/tracker_client.h"

#include <algorithm>
#include <charconv>

#include "evert/bencode.h"
#include "evert/big_endian.h"
#include "evert/magnet.h"

namespace evert::tracker_client {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

// Tracker texts go into logs and JSON (which must be UTF-8): printable ASCII kept, every other
// byte replaced, cut at kMaxMessage.
std::string clean_message(std::string_view s) {
  std::string out(s.substr(0, kMaxMessage));
  for (char& c : out)
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) c = '?';
  return out;
}

// A non-negative integer of a reply, clamped into 32 bits.
std::optional<uint32_t> count_of(const bencode::Value& d, std::string_view key) {
  const bencode::Value* v = d.find(key);
  if (v == nullptr || !v->is_int() || v->as_int() < 0) return std::nullopt;
  return static_cast<uint32_t>(std::min<int64_t>(v->as_int(), UINT32_MAX));
}

}  // namespace

std::string TrackerUrl::endpoint_key() const {
  const char* s = scheme == Scheme::kUdp ? "udp" : scheme == Scheme::kHttps ? "https" : "http";
  const bool v6 = host.find(':') != std::string::npos;
  return std::string(s) + "://" + (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

Result<TrackerUrl> parse_tracker_url(std::string_view url) {
  // URLs are ASCII (RFC 3986: anything else is percent-encoded, host names in punycode); they
  // end up in logs and JSON, so nothing else is let through.
  for (char c : url) {
    if (static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7f) {
      return Error("a tracker URL is printable ASCII without spaces");
    }
  }
  if (url.size() > 2048) return Error("a tracker URL longer than 2048 bytes");
  TrackerUrl u;
  const size_t sep = url.find("://");
  if (sep == std::string_view::npos) return Error("not a URL (no '://')");
  const std::string scheme = lower(url.substr(0, sep));
  if (scheme == "http") {
    u.scheme = Scheme::kHttp;
  } else if (scheme == "https") {
    u.scheme = Scheme::kHttps;
  } else if (scheme == "udp") {
    u.scheme = Scheme::kUdp;
  } else {
    return Error("unknown scheme '" + scheme + "' (http, https and udp are trackers)");
  }
  std::string_view rest = url.substr(sep + 3);
  const size_t slash = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, slash);
  u.target = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  if (u.target[0] == '?') u.target.insert(0, "/");
  if (authority.find('@') != std::string_view::npos) return Error("user info in a tracker URL");
  std::string_view port;
  if (!authority.empty() && authority[0] == '[') {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) return Error("unterminated IPv6 address");
    u.host = lower(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return Error("bytes after the IPv6 address");
      port = after.substr(1);
    }
    if (u.host.find_first_not_of("0123456789abcdef:.") != std::string::npos) {
      return Error("not an IPv6 address in brackets");
    }
  } else {
    const size_t colon = authority.rfind(':');
    u.host = lower(authority.substr(0, colon));
    if (colon != std::string_view::npos) port = authority.substr(colon + 1);
    if (u.host.find_first_of("[]:") != std::string::npos) return Error("a malformed host");
  }
  if (u.host.empty()) return Error("no host");
  if (port.empty()) {
    if (u.scheme == Scheme::kUdp) return Error("a udp:// tracker URL needs a port");
    u.port = u.scheme == Scheme::kHttps ? 443 : 80;
  } else {
    unsigned p = 0;
    auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
    if (ec != std::errc() || ptr != port.data() + port.size() || p == 0 || p > 65535) {
      return Error("bad port '" + std::string(port) + "'");
    }
    u.port = static_cast<uint16_t>(p);
  }
  return u;
}

std::string_view to_string(Event e) {
  switch (e) {
    case Event::kCompleted:
      return "completed";
    case Event::kStarted:
      return "started";
    case Event::kStopped:
      return "stopped";
    case Event::kNone:
      break;
  }
  return "";
}

std::string http_announce_target(const TrackerUrl& url, const AnnounceRequest& a) {
  std::string t = url.target;
  // BEP 3 says nothing of URLs that already carry a query (private trackers' passkeys do);
  // clients append with '&'.
  t += t.find('?') == std::string::npos ? '?' : '&';
  t += "info_hash=" + percent_encode(a.info_hash.view());
  t += "&peer_id=" +
       percent_encode({reinterpret_cast<const char*>(a.peer_id.data()), a.peer_id.size()});
  t += "&port=" + std::to_string(a.port);
  t += "&uploaded=" + std::to_string(a.uploaded);
  t += "&downloaded=" + std::to_string(a.downloaded);
  t += "&left=" + std::to_string(a.left);
  t += "&compact=1&no_peer_id=1";
  if (a.numwant >= 0) t += "&numwant=" + std::to_string(a.numwant);
  char key[9];
  static const char* hex = "0123456789ABCDEF";
  for (int i = 0; i < 8; ++i)
    key[i] = hex[(a.key >> (28 - 4 * i)) & 15];
  key[8] = '\0';
  t += "&key=";
  t += key;
  if (a.event != Event::kNone) t += "&event=" + std::string(to_string(a.event));
  if (!a.ip.empty()) t += "&ip=" + percent_encode(a.ip);
  return t;
}

Result<AnnounceReply> parse_http_reply(std::string_view body) {
  bencode::DecodeLimits limits;
  limits.max_depth = 8;
  limits.max_elements = 100'000;
  limits.sorted_keys = false;
  // decode_prefix: some trackers end the body with a newline.
  auto v = bencode::decode_prefix(body, limits);
  if (!v) return Error("the reply is not bencoded: " + v.error().describe());
  if (!v->is_dict()) return Error("the reply is not a bencoded dictionary");
  AnnounceReply r;
  if (const bencode::Value* f = v->find("failure reason"); f != nullptr && f->is_string()) {
    r.failure = clean_message(f->as_string());
    if (r.failure.empty()) r.failure = "(an empty failure reason)";
  }
  if (const bencode::Value* w = v->find("warning message"); w != nullptr && w->is_string()) {
    r.warning = clean_message(w->as_string());
  }
  r.interval = count_of(*v, "interval").value_or(0);
  r.min_interval = count_of(*v, "min interval").value_or(0);
  r.seeders = count_of(*v, "complete");
  r.leechers = count_of(*v, "incomplete");
  if (r.failure.empty() && v->find("interval") == nullptr) {
    return Error("the reply has neither an interval nor a failure reason");
  }
  return r;
}

std::string udp_connect_request(uint32_t transaction) {
  std::string s;
  be::append64(s, kUdpProtocolId);
  be::append32(s, 0);  // connect
  be::append32(s, transaction);
  return s;
}

std::string udp_announce_request(uint64_t connection_id, uint32_t transaction,
                                 const AnnounceRequest& a, std::string_view url_data) {
  std::string s;
  s.reserve(98 + 2 * (url_data.size() / 255 + 1) + url_data.size());
  be::append64(s, connection_id);
  be::append32(s, 1);  // announce
  be::append32(s, transaction);
  s += a.info_hash.view();
  s.append(reinterpret_cast<const char*>(a.peer_id.data()), a.peer_id.size());
  be::append64(s, a.downloaded);
  be::append64(s, a.left);
  be::append64(s, a.uploaded);
  be::append32(s, static_cast<uint32_t>(a.event));
  if (a.ipv4) {
    s.append(reinterpret_cast<const char*>(a.ipv4->data()), 4);
  } else {
    be::append32(s, 0);
  }
  be::append32(s, a.key);
  be::append32(s, static_cast<uint32_t>(a.numwant));
  s += static_cast<char>(a.port >> 8);
  s += static_cast<char>(a.port & 0xff);
  // BEP 41: URLData options of at most 255 bytes each, then EndOfOptions.
  url_data = url_data.substr(0, kUdpMaxUrlData);
  if (!url_data.empty()) {
    for (size_t i = 0; i < url_data.size(); i += 255) {
      const std::string_view chunk = url_data.substr(i, 255);
      s += '\x02';
      s += static_cast<char>(chunk.size());
      s += chunk;
    }
    s += '\x00';
  }
  return s;
}

Result<UdpResponse> parse_udp_response(std::span<const uint8_t> d) {
  if (d.size() < 8) return Error("a datagram of " + std::to_string(d.size()) + " bytes");
  UdpResponse r;
  const uint32_t action = be::load32(d.data());
  r.transaction = be::load32(d.data() + 4);
  switch (action) {
    case 0:
      if (d.size() < 16) return Error("a connect response shorter than 16 bytes");
      r.kind = UdpResponse::Kind::kConnect;
      r.connection_id = be::load64(d.data() + 8);
      return r;
    case 1:
      if (d.size() < 20) return Error("an announce response shorter than 20 bytes");
      r.kind = UdpResponse::Kind::kAnnounce;
      r.reply.interval = be::load32(d.data() + 8);
      r.reply.leechers = be::load32(d.data() + 12);
      r.reply.seeders = be::load32(d.data() + 16);
      return r;  // the peers that follow are not wanted
    case 3: {
      r.kind = UdpResponse::Kind::kError;
      const std::string_view text(reinterpret_cast<const char*>(d.data() + 8), d.size() - 8);
      r.reply.failure = clean_message(text);
      if (r.reply.failure.empty()) r.reply.failure = "(an empty error message)";
      return r;
    }
    default:
      return Error("unexpected action " + std::to_string(action));
  }
}

}  // namespace evert::tracker_client
