// uTP (BEP 29), the UDP transport every libtorrent-based client speaks, as a state machine
// with no I/O (STYLE.md §5): the glue owns the UDP socket and the clock, feeds each packet of a
// connection to on_packet(), calls on_tick() at deadline(), and sends what next_packet()
// writes. Time is a parameter everywhere: monotonic microseconds.
//
// The peer that matters is libtorrent (qBittorrent, Deluge); the comments of the uTP files cite
// its src/utp_stream.cpp of v2.0.8, Debian 12's, by line.
//
// One Socket is one connection. It is not thread-safe: one thread (the loop's) uses it. Its
// memory is bounded by its Options (send_buffer + recv_buffer + per-packet records), and its
// buffers are allocated when first needed and released when it is idle (at its keep-alive), so
// that an idle connection costs its object alone (under 1 KiB).
//
// The glue's side of the contract:
//  - Route a datagram by (source address, recv_id_of(header)) (evert/utp_packet.h). A SYN for
//    an unknown pair makes a Socket with accept(); a SYN for a known pair is a retransmission
//    and goes to that socket's on_packet(), which answers it again. Anything else unknown may
//    be answered with put_reset().
//  - After on_packet(), on_tick(), write(), consume(), close() or abort(), call next_packet()
//    until it returns 0 and send each datagram. To ack a burst of datagrams with one packet,
//    feed the whole burst before calling next_packet().
//  - Arm a timer for deadline() (it changes after every call above).
//  - Destroy the socket once state() is kClosed or kFailed and next_packet() returned 0.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "evert/utp_congestion.h"
#include "evert/utp_packet.h"
#include "evert/utp_ring.h"

namespace evert::utp {

struct Options {
  // The largest datagram we send, header included. 1400 is libtorrent's starting packet size
  // (1500 - IPv4 - UDP - 68 bytes of headroom, src/utp_stream.hpp line 916) and fits the
  // common paths below Ethernet's MTU: IPv6 (1452), PPPoE (1444), most VPN tunnels. We do no
  // path-MTU discovery, so the safe size is the only size.
  size_t packet_size = 1400;
  // Bytes written by the application and not yet acked (bounded memory; also the largest
  // window: 1 MiB carries 80 Mbit/s over a 100 ms round trip).
  size_t send_buffer = 1 << 20;
  // Our advertised window: received bytes not yet consumed plus out-of-order ones. 1 MiB as
  // libtorrent's default receive buffer.
  size_t recv_buffer = 1 << 20;
  // LEDBAT's target queuing delay (BEP 29: 100 ms) and the window's growth per round trip at
  // zero queuing delay (libtorrent's utp_gain_factor).
  uint32_t target_delay_us = 100'000;
  uint32_t gain = 3000;
  // The first window: ten full packets, as TCP's (RFC 6928). It is paced over the first round
  // trip once there is a sample of it, and a seed's first answer is a handful of blocks.
  size_t initial_window = 10 * (1400 - kHeaderSize);
  // Retransmission timeout: before any RTT sample (BEP 29: 1 s), its floor (BEP 29 and
  // libtorrent: 500 ms) and ceiling (libtorrent: 60 s).
  uint32_t initial_timeout_us = 1'000'000;
  uint32_t min_timeout_us = 500'000;
  uint32_t max_timeout_us = 60'000'000;
  // Timeouts in a row with nothing heard from the peer that the connection survives: the
  // next one fails it (0.5 + 1 + 2 + 4 + 8 = 15.5 s at the minimum timeout; libtorrent gives
  // up at the third transmission of a packet, about 4.5 s).
  uint32_t max_timeouts = 4;
  // A connection whose oldest unacked packet waits this long fails even if the peer is heard
  // (e.g. a window that never opens).
  uint64_t stall_timeout_us = 120'000'000;
  // The handshake: an initiator's SYN unanswered, or a responder's SYN-ACK not followed by a
  // packet of the initiator, for this long fails the connection (the SYN is resent at the
  // initial timeout, backed off). libtorrent resends a SYN twice, 3 s apart.
  uint64_t connect_timeout_us = 10'000'000;
  // An empty STATE after this long without sending anything, so that NATs keep the mapping
  // (many drop idle UDP mappings after 30 s). libtorrent sends none and ignores ours.
  uint64_t keepalive_us = 25'000'000;
  // Hold a partial packet while another partial one is in flight (Nagle); never when nothing
  // is in flight.
  bool nagle = true;
};

class Socket {
 public:
  enum class State : uint8_t {
    kSynReceived,  // accepted; our STATE answered the SYN, the initiator has not spoken since
    kSynSent,      // connect(): our SYN is unanswered
    kConnected,
    kClosing,  // close(): our FIN is queued or unacked, or we wait briefly for the peer's FIN
    kClosed,   // closed cleanly, or abort()ed
    kFailed,   // reset by the peer or timed out: failure() says which
  };

  struct Stats {
    uint64_t bytes_sent = 0;      // payload bytes put on the wire, retransmissions included
    uint64_t bytes_acked = 0;     // payload bytes the peer acked
    uint64_t bytes_received = 0;  // payload bytes delivered in order
    uint64_t retransmits = 0;     // packets sent again (fast retransmits and timeouts)
    uint64_t timeouts = 0;        // retransmission timeouts
    uint32_t cwnd = 0;            // congestion window, bytes
    uint32_t rtt_us = 0;          // smoothed round-trip time (0: no sample yet)
    uint32_t in_flight = 0;       // payload bytes sent and not acked nor deemed lost
    uint64_t send_buffered = 0;   // written and not acked (at most send_buffer)
    // In order and unread, plus out of order (at most recv_buffer + one datagram).
    uint64_t recv_buffered = 0;
  };

  // The responder side, made from a peer's SYN (the glue calls this when a SYN arrives for an
  // unknown (address, recv_id_of(syn))). Queues our STATE answer: a 20-byte packet, and the
  // only thing this socket sends until the initiator's next packet proves its address (no
  // amplification). `seq` is our first seq_nr, random. Its wnd_size is ignored (libtorrent
  // sends 0 in a SYN).
  static Socket accept(const Header& syn, uint64_t now_us, const Options& o, uint16_t seq);
  // The initiator side: queues a SYN with connection_id `recv_id` and seq_nr `seq` (both
  // random).
  static Socket connect(uint16_t recv_id, uint64_t now_us, const Options& o, uint16_t seq);

  [[nodiscard]] uint16_t recv_id() const { return recv_id_; }  // incoming packets carry it
  [[nodiscard]] uint16_t send_id() const { return send_id_; }  // ours carry it

  // A packet of this connection (recv_id_of(p.header) == recv_id()) at now_us. Packets of
  // another connection, implausible ones (acking what we never sent) and anything arriving
  // after kClosed or kFailed are ignored.
  void on_packet(const Packet& p, uint64_t now_us);
  // When on_tick() must be called next (UINT64_MAX: nothing pending), and the call. Calling
  // on_tick() early does nothing harmful.
  [[nodiscard]] uint64_t deadline() const;
  void on_tick(uint64_t now_us);

  // The application's byte stream. write() copies up to writable() bytes into the send
  // buffer and returns how many it took: 0 when the buffer is full, before kConnected, and
  // after close() (the glue waits for writable()).
  size_t write(std::string_view bytes);
  [[nodiscard]] size_t writable() const;
  // Received in-order bytes not yet consumed: a contiguous part of them (after consume(),
  // more may follow). The view is valid until the next non-const call.
  [[nodiscard]] std::string_view readable() const { return recv_buf_.front_span(); }
  // Drops the first n readable bytes (at most all of them); may queue a window update.
  void consume(size_t n);
  // The peer's FIN arrived, everything before it was delivered and all of it was consumed.
  [[nodiscard]] bool eof() const { return eof_reached_ && recv_buf_.empty(); }

  // Graceful close: a FIN after everything written, then kClosed once it is acked (and the
  // peer's FIN arrived, or a short wait passed). From kSynSent or kSynReceived: as abort().
  void close(uint64_t now_us);
  // A RESET now (next_packet() writes it), then kClosed; buffers are dropped.
  void abort(uint64_t now_us);

  // Writes the next datagram to send now into `out` and returns its size; 0 when there is
  // nothing to send (windows full, nothing to ack or retransmit). Precondition: cap >=
  // Options::packet_size (a smaller buffer gets nothing). Data packets are filled to
  // packet_size when the application has the bytes, so consecutive ones have the same size.
  size_t next_packet(uint64_t now_us, char* out, size_t cap);

  [[nodiscard]] State state() const { return state_; }
  // Why the socket is kFailed ("reset by peer", "timed out: ...").
  [[nodiscard]] const std::string& failure() const { return failure_; }
  [[nodiscard]] Stats stats() const;

 private:
  struct OutPacket {
    uint64_t offset = 0;   // in the stream of bytes written
    uint64_t sent_us = 0;  // of the last transmission
    uint64_t tx = 0;       // the order of the last transmission among all of ours
    uint16_t len = 0;
    uint8_t transmissions = 0;
    uint8_t flags = 0;
  };
  struct Slot {  // an out-of-order packet
    std::string data;
    bool present = false;
  };
  struct TxEntry {  // a transmission, in the order they happened
    uint64_t tx = 0;
    uint16_t seq = 0;
  };

  Socket(const Options& o, uint64_t now_us);

  // utp_socket.cpp: handshake, incoming packets, the receive side, timers.
  bool handshake(const Packet& p, uint64_t now_us);
  void on_syn(const Header& h);
  void on_data(const Packet& p);
  void on_fin(const Header& h);
  void deliver_in_order(std::string_view payload);
  bool store_out_of_order(uint16_t offset, std::string_view payload);
  void finish_close_if_done(uint64_t now_us);
  [[nodiscard]] uint64_t state_resend_due() const;  // kSynReceived: when our STATE goes again
  void fail(std::string reason);
  void drop_buffers();
  void release_idle_memory();
  [[nodiscard]] uint32_t advertised_window() const;

  // utp_send.cpp: the send side, acks, loss and timeouts.
  void on_ack(const Packet& p, uint64_t now_us);
  uint32_t ack_through(uint16_t ack_nr, uint64_t now_us, uint32_t* rtt_us);
  uint32_t ack_sack(std::string_view sack, uint64_t now_us, uint32_t* rtt_us);
  uint32_t ack_one(uint16_t seq, OutPacket& r, uint64_t now_us, uint32_t* rtt_us);
  void detect_losses();
  void mark_lost(uint16_t seq, OutPacket& r);
  void on_timeout(uint64_t now_us);
  void compact_tx_order();
  void compact_resend();
  OutPacket* find(uint16_t seq);
  [[nodiscard]] uint32_t send_window() const;
  [[nodiscard]] uint16_t last_sent_seq() const;
  size_t send_retransmission(uint64_t now_us, char* out);
  size_t send_new_data(uint64_t now_us, char* out, bool probe);
  size_t send_probe(uint64_t now_us, char* out);
  void arm_probe(uint64_t now_us);
  size_t send_fin(uint64_t now_us, char* out);
  size_t send_state(uint64_t now_us, char* out, bool with_sack);
  size_t transmit(uint16_t seq, OutPacket& r, uint64_t now_us, char* out);
  [[nodiscard]] Header header(Type t, uint16_t seq, uint64_t now_us) const;
  void sent(uint64_t now_us);
  void arm_rto(uint64_t now_us);
  void pace(uint64_t now_us, size_t bytes);
  // Data may go this far ahead of its pacing time: the glue's timers fire to the millisecond.
  static constexpr uint64_t kPaceSlackUs = 1000;

  Options o_;
  State state_;
  bool initiator_ = false;
  uint16_t recv_id_ = 0;
  uint16_t send_id_ = 0;
  std::string failure_;
  detail::Congestion cc_;

  // The send side. out_[i] is the packet acked_seq_ + 1 + i; send_buf_ holds the stream from
  // the first unacked byte (send_base_) to the last written one; bytes from send_next_ on are
  // not in a packet yet.
  uint16_t seq_nr_ = 0;     // the next seq_nr to use (a FIN uses it without advancing it)
  uint16_t acked_seq_ = 0;  // every packet up to this one is acked
  uint16_t loss_seq_ = 0;   // a loss of a packet before this one does not cut the window again
  uint16_t partial_seq_ = 0;
  bool partial_in_flight_ = false;  // an unacked packet smaller than a full one (Nagle)
  bool fin_queued_ = false;
  bool fin_sent_ = false;
  bool fin_acked_ = false;
  bool syn_pending_ = false;
  bool reset_pending_ = false;
  bool probe_pending_ = false;  // a tail loss probe is to be sent
  bool probe_out_ = false;      // one was sent, and nothing acked since
  uint8_t dup_acks_ = 0;
  uint8_t bypass_ = 0;  // packets a fast retransmit may send beyond the window
  uint32_t in_flight_ = 0;
  uint32_t peer_wnd_ = 0;
  uint64_t send_base_ = 0;
  uint64_t send_next_ = 0;
  uint64_t tx_count_ = 0;
  uint64_t highest_acked_tx_ = 0;       // of the acked packets' last transmissions,
  uint64_t highest_acked_sent_us_ = 0;  // the latest, and when it was sent
  detail::ByteRing send_buf_;
  detail::Ring<OutPacket> out_;
  detail::Ring<uint16_t> resend_;  // packets deemed lost, to send again (some may be stale)
  detail::Ring<TxEntry> tx_order_;

  // The receive side. ooo_[i] is the packet ack_nr_ + 1 + i (slot 0 is always missing).
  uint16_t ack_nr_ = 0;  // the last packet received in order
  uint16_t eof_seq_ = 0;
  bool fin_received_ = false;
  bool eof_reached_ = false;
  bool ack_pending_ = false;
  bool sack_pending_ = false;
  uint32_t reply_micro_ = 0;  // our last one-way delay sample of the peer's packets
  uint32_t ooo_bytes_ = 0;
  uint32_t ooo_count_ = 0;
  uint32_t last_wnd_ = 0;  // the window we last advertised
  detail::ByteRing recv_buf_;
  detail::Ring<Slot> ooo_;

  // Timers.
  uint64_t now_us_ = 0;           // the latest time seen (time never goes back here)
  uint64_t start_us_ = 0;         // of the handshake
  uint32_t state_resends_ = 0;    // kSynReceived: our STATE sent again unasked (at most 2)
  uint64_t rto_deadline_ = 0;     // 0: not armed
  uint64_t probe_deadline_ = 0;   // the tail loss probe's; 0: not armed
  uint64_t last_send_us_ = 0;     // for keep-alives
  uint64_t pace_next_us_ = 0;     // when the next data packet may go (pace())
  bool pace_blocked_ = false;     // data waits for it
  uint64_t last_ack_us_ = 0;      // the last progress of our oldest packet, for stalls
  uint64_t linger_deadline_ = 0;  // 0: none
  uint32_t timeouts_in_a_row_ = 0;
  Stats stats_;
};

}  // namespace evert::utp
