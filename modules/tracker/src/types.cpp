#include "evert/tracker/types.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sodium.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>

namespace evert::tracker {
namespace {

struct ShortHashKey {
  unsigned char key[crypto_shorthash_KEYBYTES];
  ShortHashKey() {
    if (sodium_init() < 0) std::abort();
    crypto_shorthash_keygen(key);
  }
};
const ShortHashKey& short_hash_key() {
  static const ShortHashKey k;
  return k;
}

}  // namespace

size_t Id20Hash::operator()(const InfoHash& id) const noexcept {
  uint64_t h;
  crypto_shorthash(reinterpret_cast<unsigned char*>(&h), id.bytes.data(), id.bytes.size(),
                   short_hash_key().key);
  return h;
}

std::string Endpoint::to_string() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (family == Family::kV4) {
    inet_ntop(AF_INET, ip.data(), buf, sizeof buf);
    return std::string(buf) + ":" + std::to_string(port);
  }
  inet_ntop(AF_INET6, ip.data(), buf, sizeof buf);
  return "[" + std::string(buf) + "]:" + std::to_string(port);
}

bool Endpoint::parse_ip(std::string_view text, Endpoint& out) {
  if (text.empty() || text.size() >= INET6_ADDRSTRLEN) return false;
  const std::string s(text);
  Endpoint e;
  if (inet_pton(AF_INET, s.c_str(), e.ip.data()) == 1) {
    e.family = Family::kV4;
  } else if (inet_pton(AF_INET6, s.c_str(), e.ip.data()) == 1) {
    e.family = Family::kV6;
  } else {
    return false;
  }
  e.port = out.port;
  out = unmap(e);
  return true;
}

Endpoint unmap(const Endpoint& e) {
  static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};
  if (e.family != Family::kV6 || std::memcmp(e.ip.data(), kMapped, 12) != 0) return e;
  Endpoint v4;
  v4.family = Family::kV4;
  std::memcpy(v4.ip.data(), e.ip.data() + 12, 4);
  v4.port = e.port;
  return v4;
}

namespace {
bool public_v4(const uint8_t* a) {
  const uint8_t b0 = a[0];
  const uint8_t b1 = a[1];
  if (b0 == 0 || b0 == 10 || b0 == 127 || b0 >= 224) return false;  // this net, private, loop
  if (b0 == 100 && (b1 & 0xC0) == 64) return false;                 // 100.64.0.0/10
  if (b0 == 169 && b1 == 254) return false;                         // link-local
  if (b0 == 172 && (b1 & 0xF0) == 16) return false;                 // 172.16.0.0/12
  if (b0 == 192 && b1 == 168) return false;                         // 192.168.0.0/16
  if (b0 == 192 && b1 == 0 && a[2] == 0) return false;              // IETF protocol assignments
  if (b0 == 198 && (b1 & 0xFE) == 18) return false;                 // 198.18.0.0/15
  return true;
}
}  // namespace

bool is_public_address(const Endpoint& e) {
  const Endpoint u = unmap(e);
  const uint8_t* a = u.ip.data();
  if (u.family == Family::kV4) return public_v4(a);
  static constexpr uint8_t kZero[12] = {};
  static constexpr uint8_t kNat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
  if (std::memcmp(a, kZero, 12) == 0) return false;  // ::, ::1, IPv4-compatible
  if (std::memcmp(a, kNat64, 12) == 0) return public_v4(a + 12);
  if (a[0] == 0x20 && a[1] == 0x02) return public_v4(a + 2);  // 6to4 carries its IPv4
  if ((a[0] & 0xFE) == 0xFC) return false;                    // unique local fc00::/7
  if (a[0] == 0xFE && (a[1] & 0xC0) == 0x80) return false;    // link-local fe80::/10
  if (a[0] == 0xFE && (a[1] & 0xC0) == 0xC0) return false;    // site-local (deprecated)
  if (a[0] == 0xFF) return false;                             // multicast
  return true;
}

std::string address_key(const Endpoint& e) {
  const Endpoint u = unmap(e);
  const size_t n = u.family == Family::kV4 ? 4 : 8;
  std::string key(1, u.family == Family::kV4 ? '4' : '6');
  key.append(reinterpret_cast<const char*>(u.ip.data()), n);
  return key;
}

Endpoint endpoint_of(const sockaddr_storage& ss) {
  Endpoint e;
  if (ss.ss_family == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
    e.family = Family::kV4;
    std::memcpy(e.ip.data(), &a->sin_addr, 4);
    e.port = ntohs(a->sin_port);
  } else {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
    e.family = Family::kV6;
    std::memcpy(e.ip.data(), &a->sin6_addr, 16);
    e.port = ntohs(a->sin6_port);
  }
  return unmap(e);
}

}  // namespace evert::tracker

namespace evert::tracker {

std::string describe_client(const PeerId& id) {
  const std::string_view v = id.view();
  if (v.substr(0, 3) == "A2-") {  // aria2: A2-1-36-0-
    std::string out = "aria2 ";
    for (size_t i = 3; i < v.size() && i < 12; ++i) {
      if (v[i] == '-') {
        if (i + 1 < v.size() && v[i + 1] >= '0' && v[i + 1] <= '9') out += '.';
        continue;
      }
      if (v[i] < '0' || v[i] > '9') break;
      out += v[i];
    }
    while (!out.empty() && out.back() == '.')
      out.pop_back();
    return out;
  }
  if (v.size() >= 8 && v[0] == '-' && v[7] == '-') {
    static const struct {
      const char* code;
      const char* name;
    } kClients[] = {{"qB", "qBittorrent"},  {"TR", "Transmission"},
                    {"LT", "libtorrent"},   {"lt", "rTorrent/libtorrent"},
                    {"DE", "Deluge"},       {"UT", "uTorrent"},
                    {"UM", "uTorrent Mac"}, {"BT", "BitTorrent"},
                    {"AZ", "Vuze"},         {"KT", "KTorrent"},
                    {"BI", "BiglyBT"},      {"TX", "Tixati"},
                    {"WW", "WebTorrent"},   {"ET", "Evertorrent"}};
    const std::string code(v.substr(1, 2));
    std::string name = code;
    for (const auto& c : kClients) {
      if (code == c.code) name = c.name;
    }
    std::string version;
    for (size_t i = 3; i < 7; ++i) {
      const char c = v[i];
      if (!std::isalnum(static_cast<unsigned char>(c))) return name;
      if (!version.empty()) version += '.';
      version += c;
    }
    return name + " " + version;
  }
  return "unknown";
}

bool parse_listen(const std::string& text, sockaddr_storage& out, unsigned& len, std::string& why) {
  std::string host;
  std::string port;
  if (!text.empty() && text[0] == '[') {
    const size_t close = text.find("]:");
    if (close == std::string::npos) {
      why = "expected [ADDRESS]:PORT";
      return false;
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string::npos || text.find(':') != colon) {
      why = "expected ADDRESS:PORT (IPv6 in brackets: [::]:6969)";
      return false;
    }
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  unsigned p = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
  if (ec != std::errc() || end != port.data() + port.size() || p > 65535) {
    why = "bad port '" + port + "'";
    return false;
  }
  std::memset(&out, 0, sizeof out);
  auto* v4 = reinterpret_cast<sockaddr_in*>(&out);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&out);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(p));
    len = sizeof(sockaddr_in);
  } else if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(p));
    len = sizeof(sockaddr_in6);
  } else {
    why = "'" + host + "' is not an IPv4 or IPv6 address";
    return false;
  }
  return true;
}

Result<int> listen_tcp(const sockaddr_storage& addr, unsigned len, const std::string& label) {
  const int fd = ::socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return Error(label + ": socket: " + std::strerror(errno));
  const int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (addr.ss_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&addr), len) != 0 || ::listen(fd, 1024) != 0) {
    const int e = errno;
    ::close(fd);
    return Error(label + ": cannot listen: " + std::strerror(e));
  }
  return fd;
}

uint16_t local_port(int fd) {
  return local_endpoint(fd).port;
}

Endpoint local_endpoint(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  return getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0 ? endpoint_of(ss)
                                                                      : Endpoint{};
}

std::string check_listen(const std::string& text) {
  sockaddr_storage ss{};
  unsigned len = 0;
  std::string why;
  return parse_listen(text, ss, len, why) ? "" : why;
}

}  // namespace evert::tracker
