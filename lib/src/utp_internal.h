// Constants shared by the uTP socket's two source files (utp_socket.cpp, utp_send.cpp).
#pragma once

#include <cstddef>
#include <cstdint>

namespace evert::utp {

// BEP 29 ("packet sizes") lets packets shrink to 150 bytes; none of ours is smaller.
inline constexpr size_t kMinPacketSize = 150;
// Room for a few full packets of any peer (libtorrent's are up to 1472 bytes).
inline constexpr size_t kMinRecvBuffer = 16384;
// The selective acks we write: at most 128 bytes, so a STATE with one fits in the smallest
// packet (20 + 2 + 128 = 150), describing the 1024 packets after the missing one.
inline constexpr size_t kMaxSackOut = 128;
// Out-of-order packets we keep: those a selective ack can describe (ack_nr + 1 .. + 1025).
inline constexpr uint16_t kMaxReorder = 1 + 8 * kMaxSackOut;
// A packet is deemed lost once one sent this many transmissions after it is acked: BEP 29's
// "3 or more packets have been acked past it", counted in sending order so that a lost
// retransmission is found the same way.
inline constexpr uint64_t kDupThresh = 3;
// Extra packets a record can hold beyond send_buffer / mss: the partial one, the FIN.
inline constexpr size_t kExtraPackets = 16;

// OutPacket::flags
inline constexpr uint8_t kAcked = 1;  // acked selectively (cumulatively acked ones are gone)
inline constexpr uint8_t kLost = 2;   // deemed lost: not in flight, waiting in resend_
inline constexpr uint8_t kFin = 4;

}  // namespace evert::utp
