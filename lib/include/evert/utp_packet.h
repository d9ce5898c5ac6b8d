// The uTP packet format of BEP 29 as pure functions over bytes (STYLE.md §2): a datagram parses
// into a typed packet (views into the datagram) or an Error; a packet serializes into a buffer.
// No sockets and no clock: evert/utp.h builds the connection state machine on top of this.
//
// Layout (BEP 29, "header format", all fields big-endian):
//   type:4 version:4 | extension:8 | connection_id:16 | timestamp_microseconds:32 |
//   timestamp_difference_microseconds:32 | wnd_size:32 | seq_nr:16 | ack_nr:16
// followed by a chain of extensions (next-type:8, len:8, len bytes) and the payload.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "evert/result.h"

namespace evert::utp {

inline constexpr size_t kHeaderSize = 20;
inline constexpr uint8_t kVersion = 1;
inline constexpr uint8_t kExtensionSack = 1;  // BEP 29: the only extension it defines
// The largest UDP payload over IPv4: no datagram we accept or build is larger.
inline constexpr size_t kMaxDatagram = 65507;
// A selective ack's length byte counts bytes, so a bitmask holds at most 255 bytes.
inline constexpr size_t kMaxSackBytes = 255;

enum class Type : uint8_t { kData = 0, kFin = 1, kState = 2, kReset = 3, kSyn = 4 };

struct Header {
  Type type = Type::kState;
  uint8_t version = kVersion;
  uint16_t connection_id = 0;
  uint32_t timestamp_us = 0;       // the sender's clock when sent (low 32 bits of µs)
  uint32_t timestamp_diff_us = 0;  // the sender's last one-way delay sample of our packets
  uint32_t wnd_size = 0;           // bytes the sender can still receive
  uint16_t seq_nr = 0;
  uint16_t ack_nr = 0;
};

struct Packet {
  Header header;
  // The selective-ack bitmask (BEP 29: bit 0 of byte 0 is ack_nr + 2), empty if none.
  std::string_view sack;
  std::string_view payload;
};

// Parses one datagram. The packet's views point into `datagram`, which must outlive them.
// Errors (the datagram is dropped; there is no one to answer): shorter than the header, a
// version other than 1, a type above 4, an extension chain that runs past the end, an empty
// selective ack, two selective acks. Unknown extensions (libtorrent's close reason, 3) are
// skipped. A selective ack of any non-zero length is accepted: BEP 29 asks for a multiple of
// 4 bytes, but libtorrent writes (bits + 7) / 8 bytes (src/utp_stream.cpp of v2.0.8,
// line 1403), and its acks must not be lost.
Result<Packet> parse_packet(std::string_view datagram);

// Writes `h` (extension set to 1 when `sack` is not empty), the selective ack and the payload
// into `out`; returns the bytes written, or 0 when they do not fit in `cap`. Precondition:
// sack.size() <= kMaxSackBytes.
size_t write_packet(char* out, size_t cap, const Header& h, std::string_view sack = {},
                    std::string_view payload = {});
// The same, appended to a string.
void put_packet(std::string& out, const Header& h, std::string_view sack = {},
                std::string_view payload = {});

// The connection a packet belongs to, as the receiving side names it (its recv_id): the
// connection_id, except for a SYN, which carries the initiator's recv_id, so that the
// responder's is one more (BEP 29, "connection setup").
[[nodiscard]] inline uint16_t recv_id_of(const Header& h) {
  return h.type == Type::kSyn ? static_cast<uint16_t>(h.connection_id + 1) : h.connection_id;
}

// Appends a RESET answering `cause`, a packet of a connection we do not know, and returns
// true; returns false and appends nothing when `cause` is a RESET or a SYN (a reset is never
// answered, and a SYN is accepted or ignored). The reset is 20 bytes, never more than what
// caused it, so it cannot amplify. Its connection_id is cause.connection_id - 1: the id a peer
// that connected to us receives on (libtorrent matches a RESET only against its recv_id,
// src/utp_stream.cpp line 2365). Its ack_nr names the cause's packet so that libtorrent takes
// the reset as valid (line 2516): a DATA's seq_nr, or the one before for a STATE or a FIN,
// whose seq_nr is the next one not sent yet.
bool put_reset(std::string& out, const Header& cause, uint32_t now_us);

// Sequence numbers wrap at 65536 (BEP 29): a precedes b when b is less than half the space
// ahead of it.
[[nodiscard]] inline bool seq_less(uint16_t a, uint16_t b) {
  return a != b && static_cast<uint16_t>(b - a) < 0x8000;
}

}  // namespace evert::utp
