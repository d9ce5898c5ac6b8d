#include "evert/utp_packet.h"

#include <cassert>
#include <cstring>

#include "evert/big_endian.h"

namespace evert::utp {
namespace {

uint16_t load16(const char* p) {
  const auto* u = reinterpret_cast<const uint8_t*>(p);
  return static_cast<uint16_t>(u[0] << 8 | u[1]);
}

void store16(char* p, uint16_t v) {
  p[0] = static_cast<char>(v >> 8);
  p[1] = static_cast<char>(v);
}

void store32(char* p, uint32_t v) {
  be::store32(reinterpret_cast<uint8_t*>(p), v);
}

}  // namespace

Result<Packet> parse_packet(std::string_view d) {
  if (d.size() < kHeaderSize) {
    return Error("uTP packet of " + std::to_string(d.size()) + " bytes, shorter than its header");
  }
  const auto first = static_cast<uint8_t>(d[0]);
  Packet p;
  Header& h = p.header;
  h.version = first & 0x0f;
  if (h.version != kVersion) return Error("uTP version " + std::to_string(h.version), 0);
  if ((first >> 4) > static_cast<uint8_t>(Type::kSyn)) {
    return Error("unknown uTP packet type " + std::to_string(first >> 4), 0);
  }
  h.type = static_cast<Type>(first >> 4);
  h.connection_id = load16(d.data() + 2);
  h.timestamp_us = be::load32(d.data() + 4);
  h.timestamp_diff_us = be::load32(d.data() + 8);
  h.wnd_size = be::load32(d.data() + 12);
  h.seq_nr = load16(d.data() + 16);
  h.ack_nr = load16(d.data() + 18);

  // The extension chain (BEP 29, "extension"): each link names the type of the next one.
  // Every link takes at least two bytes, so the loop ends within the datagram.
  auto type = static_cast<uint8_t>(d[1]);
  size_t pos = kHeaderSize;
  bool have_sack = false;
  while (type != 0) {
    if (pos + 2 > d.size()) return Error("uTP extension header past the end", pos);
    const auto next = static_cast<uint8_t>(d[pos]);
    const auto len = static_cast<uint8_t>(d[pos + 1]);
    pos += 2;
    if (pos + len > d.size()) {
      return Error("uTP extension of " + std::to_string(len) + " bytes past the end", pos);
    }
    if (type == kExtensionSack) {
      if (len == 0) return Error("empty uTP selective ack", pos);
      if (have_sack) return Error("two uTP selective acks", pos);
      have_sack = true;
      p.sack = d.substr(pos, len);
    }
    pos += len;
    type = next;
  }
  p.payload = d.substr(pos);
  return p;
}

size_t write_packet(char* out, size_t cap, const Header& h, std::string_view sack,
                    std::string_view payload) {
  assert(sack.size() <= kMaxSackBytes);
  const size_t size = kHeaderSize + (sack.empty() ? 0 : 2 + sack.size()) + payload.size();
  if (size > cap || sack.size() > kMaxSackBytes) return 0;
  out[0] = static_cast<char>(static_cast<uint8_t>(h.type) << 4 | (h.version & 0x0f));
  out[1] = static_cast<char>(sack.empty() ? 0 : kExtensionSack);
  store16(out + 2, h.connection_id);
  store32(out + 4, h.timestamp_us);
  store32(out + 8, h.timestamp_diff_us);
  store32(out + 12, h.wnd_size);
  store16(out + 16, h.seq_nr);
  store16(out + 18, h.ack_nr);
  char* p = out + kHeaderSize;
  if (!sack.empty()) {
    p[0] = 0;  // no extension after it
    p[1] = static_cast<char>(sack.size());
    std::memcpy(p + 2, sack.data(), sack.size());
    p += 2 + sack.size();
  }
  if (!payload.empty()) std::memcpy(p, payload.data(), payload.size());
  return size;
}

void put_packet(std::string& out, const Header& h, std::string_view sack,
                std::string_view payload) {
  const size_t at = out.size();
  const size_t size = kHeaderSize + (sack.empty() ? 0 : 2 + sack.size()) + payload.size();
  out.resize(at + size);
  const size_t n = write_packet(out.data() + at, size, h, sack, payload);
  out.resize(at + n);
}

bool put_reset(std::string& out, const Header& cause, uint32_t now_us) {
  if (cause.type == Type::kReset || cause.type == Type::kSyn) return false;
  Header h;
  h.type = Type::kReset;
  h.connection_id = static_cast<uint16_t>(cause.connection_id - 1);
  h.timestamp_us = now_us;
  h.seq_nr = cause.ack_nr;  // any value does; this one is at least plausible to the peer
  h.ack_nr = cause.type == Type::kData ? cause.seq_nr : static_cast<uint16_t>(cause.seq_nr - 1);
  put_packet(out, h);
  return true;
}

}  // namespace evert::utp
