#include "evert/tracker/udp_proto.h"

#include <algorithm>
#include <cstring>

#include "evert/big_endian.h"

namespace evert::tracker {
namespace {

constexpr uint32_t kConnect = 0;
constexpr uint32_t kAnnounce = 1;
constexpr uint32_t kScrape = 2;
constexpr uint32_t kError = 3;
constexpr int64_t kWindow = 60;  // seconds per connection-id window
constexpr size_t kMaxUrlData = 1024;

}  // namespace

UdpTracker::UdpTracker(SwarmTable& swarms, Options options) : swarms_(swarms), options_(options) {
  if (sodium_init() < 0) std::abort();
  crypto_shorthash_keygen(key_);
}

uint64_t UdpTracker::connection_id(const Endpoint& from, int64_t window) const {
  uint8_t msg[16 + 2 + 8];
  std::memcpy(msg, from.ip.data(), 16);
  msg[16] = static_cast<uint8_t>(from.port >> 8);
  msg[17] = static_cast<uint8_t>(from.port);
  be::store64(msg + 18, static_cast<uint64_t>(window));
  uint64_t h;
  crypto_shorthash(reinterpret_cast<unsigned char*>(&h), msg, sizeof msg, key_);
  return h;
}

bool UdpTracker::valid_connection(uint64_t id, const Endpoint& from, int64_t now) const {
  const int64_t w = now / kWindow;
  return id == connection_id(from, w) || id == connection_id(from, w - 1) ||
         id == connection_id(from, w - 2);
}

size_t UdpTracker::error(uint32_t transaction, std::string_view message, size_t cap, uint8_t* out) {
  ++counters_.errors;
  const size_t n = std::min(message.size(), cap > 8 ? cap - 8 : 0);
  be::store32(out, kError);
  be::store32(out + 4, transaction);
  std::memcpy(out + 8, message.data(), n);
  return 8 + n;
}

size_t UdpTracker::handle(std::span<const uint8_t> p, const Endpoint& from_raw, int64_t now,
                          uint8_t* out) {
  if (p.size() < 16) {
    ++counters_.dropped;
    return 0;
  }
  const Endpoint from = unmap(from_raw);
  const uint64_t connection = be::load64(p.data());
  const uint32_t action = be::load32(p.data() + 8);
  const uint32_t transaction = be::load32(p.data() + 12);
  if (action == kConnect) {
    if (connection != kUdpProtocolId) {
      ++counters_.dropped;  // not BitTorrent: stay silent
      return 0;
    }
    ++counters_.connects;
    be::store32(out, kConnect);
    be::store32(out + 4, transaction);
    be::store64(out + 8, connection_id(from, now / kWindow));
    return 16;
  }
  if (action != kAnnounce && action != kScrape) {
    ++counters_.dropped;
    return 0;
  }
  if (!valid_connection(connection, from, now)) {
    ++counters_.bad_connection_id;
    // An unauthenticated datagram: the answer is never larger than the question.
    return error(transaction, "connection id expired", p.size(), out);
  }
  if (action == kAnnounce) return announce(p, from, now, out);
  return scrape(p, out);
}

size_t UdpTracker::announce(std::span<const uint8_t> p, const Endpoint& from, int64_t now,
                            uint8_t* out) {
  const uint32_t transaction = be::load32(p.data() + 12);
  if (p.size() < 98) return error(transaction, "announce too short", 64, out);
  const uint8_t* b = p.data();
  AnnounceRequest r;
  std::memcpy(r.info_hash.bytes.data(), b + 16, 20);
  std::memcpy(r.peer_id.bytes.data(), b + 36, 20);
  r.downloaded = be::load64(b + 56);
  r.left = be::load64(b + 64);
  r.uploaded = be::load64(b + 72);
  switch (be::load32(b + 80)) {
    case 0:
      r.event = Event::kNone;
      break;
    case 1:
      r.event = Event::kCompleted;
      break;
    case 2:
      r.event = Event::kStarted;
      break;
    case 3:
      r.event = Event::kStopped;
      break;
    case 4:
      r.event = Event::kPaused;
      break;  // as some clients send for BEP 21
    default:
      return error(transaction, "unknown event", 64, out);
  }
  // The IP field (b + 84) is ignored: peers are recorded at the address the datagram came from.
  const auto numwant = static_cast<int32_t>(be::load32(b + 92));
  r.numwant = numwant < 0
                  ? options_.numwant_default
                  : std::min<uint32_t>(static_cast<uint32_t>(numwant), options_.numwant_max);
  r.endpoint = from;
  r.endpoint.port = static_cast<uint16_t>(b[96] << 8 | b[97]);
  if (r.endpoint.port == 0) return error(transaction, "port must not be 0", 64, out);

  // BEP 41 options: EndOfOptions (0), NOP (1), URLData (2, length, bytes); parsed with bounds.
  url_data_.clear();
  for (size_t i = 98; i < p.size();) {
    const uint8_t type = b[i++];
    if (type == 0) break;
    if (type == 1) continue;
    if (type != 2 || i >= p.size()) break;  // unknown options end the list
    const size_t len = b[i++];
    if (i + len > p.size() || url_data_.size() + len > kMaxUrlData) break;
    url_data_.append(reinterpret_cast<const char*>(b + i), len);
    i += len;
  }

  const Refusal refusal = swarms_.announce(r, now, reply_);
  if (refusal == Refusal::kNotAllowed)
    return error(transaction, "torrent not tracked here", 64, out);
  if (refusal == Refusal::kTooManySwarms) return error(transaction, "tracker full", 64, out);
  ++counters_.announces;
  be::store32(out, kAnnounce);
  be::store32(out + 4, transaction);
  be::store32(out + 8, options_.interval);
  be::store32(out + 12, reply_.counts.incomplete);
  be::store32(out + 16, reply_.counts.complete);
  size_t n = 20;
  // BEP 15: the peers of the datagram's own family.
  const auto& peers = from.family == Family::kV4 ? reply_.peers4 : reply_.peers6;
  const size_t entry = from.family == Family::kV4 ? 6 : 18;
  for (const PeerRef& peer : peers) {
    if (n + entry > kMaxResponse) break;
    std::memcpy(out + n, peer.ip(), entry);
    n += entry;
  }
  return n;
}

size_t UdpTracker::scrape(std::span<const uint8_t> p, uint8_t* out) {
  const uint32_t transaction = be::load32(p.data() + 12);
  const size_t count = std::min((p.size() - 16) / 20, kUdpMaxScrape);
  if (count == 0) return error(transaction, "no info_hash", 64, out);
  ++counters_.scrapes;
  be::store32(out, kScrape);
  be::store32(out + 4, transaction);
  size_t n = 8;
  for (size_t i = 0; i < count; ++i) {
    InfoHash ih;
    std::memcpy(ih.bytes.data(), p.data() + 16 + 20 * i, 20);
    SwarmCounts c;
    swarms_.scrape(ih, c);  // unknown torrents scrape as zeros, as BEP 15 has no per-hash error
    be::store32(out + n, c.complete);
    be::store32(out + n + 4, static_cast<uint32_t>(c.downloaded));
    be::store32(out + n + 8, c.incomplete);
    n += 12;
  }
  return n;
}

}  // namespace evert::tracker
