// The send side of evert/utp.h: packets out, acks in, loss and timeouts.
#include <algorithm>
#include <array>
#include <cassert>
#include <cstdint>

#include "evert/utp.h"
#include "utp_internal.h"

namespace evert::utp {

size_t Socket::write(std::string_view bytes) {
  const size_t n = std::min(bytes.size(), writable());
  send_buf_.append(bytes.data(), n, o_.send_buffer);
  return n;
}

size_t Socket::writable() const {
  if (state_ != State::kConnected || fin_queued_) return 0;
  return o_.send_buffer - send_buf_.size();
}

Header Socket::header(Type t, uint16_t seq, uint64_t now_us) const {
  Header h;
  h.type = t;
  h.connection_id = send_id_;
  h.timestamp_us = static_cast<uint32_t>(now_us);
  h.timestamp_diff_us = reply_micro_;  // echoed so that the peer's LEDBAT sees its delay
  h.wnd_size = advertised_window();
  h.seq_nr = seq;
  h.ack_nr = ack_nr_;
  return h;
}

void Socket::sent(uint64_t now_us) {
  last_send_us_ = now_us;
  last_wnd_ = advertised_window();
  ack_pending_ = false;  // every packet carries ack_nr
}

void Socket::arm_rto(uint64_t now_us) {
  if (rto_deadline_ == 0) rto_deadline_ = now_us + cc_.rto_us();
}

uint16_t Socket::last_sent_seq() const {
  // A FIN takes seq_nr_ without advancing it (libtorrent's way, src/utp_stream.cpp line 1782),
  // so that our STATEs after it carry its seq_nr: libtorrent drops any later one (line 2483).
  return fin_sent_ ? seq_nr_ : static_cast<uint16_t>(seq_nr_ - 1);
}

uint32_t Socket::send_window() const {
  return std::min(cc_.cwnd(), peer_wnd_);
}

Socket::OutPacket* Socket::find(uint16_t seq) {
  const auto i = static_cast<uint16_t>(seq - acked_seq_ - 1);
  return i < out_.size() ? &out_[i] : nullptr;
}

size_t Socket::next_packet(uint64_t now_us, char* out, size_t cap) {
  now_us_ = std::max(now_us_, now_us);
  const uint64_t now = now_us_;
  if (cap < o_.packet_size) return 0;
  if (reset_pending_) {
    reset_pending_ = false;
    return write_packet(out, cap, header(Type::kReset, seq_nr_, now));
  }
  switch (state_) {
    case State::kFailed:
      return 0;
    case State::kClosed:  // the ack of the peer's FIN, if it is still due
      return ack_pending_ ? send_state(now, out, false) : 0;
    case State::kSynSent: {
      if (!syn_pending_) return 0;
      syn_pending_ = false;
      // The SYN carries the id it wants answers on (BEP 29), seq_nr `seq`, ack_nr 0.
      Header h = header(Type::kSyn, acked_seq_, now);
      h.connection_id = recv_id_;
      h.ack_nr = 0;
      last_send_us_ = now;
      const uint64_t timeout = uint64_t{o_.initial_timeout_us} << std::min(timeouts_in_a_row_, 16u);
      rto_deadline_ = now + std::min<uint64_t>(timeout, o_.max_timeout_us);
      return write_packet(out, cap, h);
    }
    case State::kSynReceived:  // only our 20-byte STATE, until the initiator speaks again
      return ack_pending_ ? send_state(now, out, false) : 0;
    case State::kConnected:
    case State::kClosing:
      break;
  }
  if (probe_pending_) {
    probe_pending_ = false;
    if (size_t n = send_probe(now, out)) return n;
  }
  // New data is paced (see pace()); retransmissions (which free the peer's window), acks and
  // the FIN are not.
  if (size_t n = send_retransmission(now, out)) return n;
  pace_blocked_ = pace_next_us_ > now + kPaceSlackUs;
  if (!pace_blocked_) {
    if (size_t n = send_new_data(now, out, false)) return n;
  }
  if (size_t n = send_fin(now, out)) return n;
  if (ack_pending_ || (sack_pending_ && ooo_count_ > 0)) {
    return send_state(now, out, ooo_count_ > 0);
  }
  return 0;
}

size_t Socket::send_state(uint64_t now_us, char* out, bool with_sack) {
  // BEP 29 "selective ack": bit i of the mask is ack_nr + 2 + i, that is ooo_[i + 1]; the mask
  // is a multiple of 4 bytes.
  std::array<char, kMaxSackOut> mask{};
  size_t bytes = 0;
  if (with_sack && ooo_.size() > 1) {
    bytes = std::min(((ooo_.size() - 1 + 31) / 32) * 4, kMaxSackOut);
    for (size_t i = 0; i + 1 < ooo_.size() && i < bytes * 8; ++i) {
      if (ooo_[i + 1].present) mask[i / 8] = static_cast<char>(mask[i / 8] | (1 << (i % 8)));
    }
    sack_pending_ = false;
  }
  // A STATE carries the next seq_nr (not consumed: BEP 29 "ST_STATE").
  const size_t n = write_packet(out, o_.packet_size, header(Type::kState, seq_nr_, now_us),
                                std::string_view(mask.data(), bytes));
  sent(now_us);
  return n;
}

size_t Socket::transmit(uint16_t seq, OutPacket& r, uint64_t now_us, char* out) {
  const Header h = header((r.flags & kFin) != 0 ? Type::kFin : Type::kData, seq, now_us);
  const size_t size = kHeaderSize + r.len;
  write_packet(out, size, h);
  send_buf_.copy_out(r.offset - send_base_, r.len, out + kHeaderSize);
  r.sent_us = now_us;
  r.tx = ++tx_count_;
  if (r.transmissions < UINT8_MAX) ++r.transmissions;
  if ((r.flags & kFin) == 0) {
    TxEntry& e = tx_order_.push_back();
    e.tx = r.tx;
    e.seq = seq;
    if (tx_order_.size() > 2 * out_.size() + kExtraPackets) compact_tx_order();
  }
  stats_.bytes_sent += r.len;
  arm_rto(now_us);
  sent(now_us);
  pace(now_us, size);
  return size;
}

// Pacing: data goes out at twice the window per round trip in slow start and 1.25 times after
// it (what Linux's TCP does without the fq qdisc, tcp_update_pacing_rate), never more than
// kPaceSlackUs ahead. Unpaced, a window leaves in one burst and arrives in one, and a receiver
// whose UDP socket buffer holds less than a window (Linux's default holds about 90 of our
// packets) drops the rest: measured over a 100 ms path, 330 packets lost at the receiver for
// 65 on the link, each loss a window cut. Round trips within twice the slack are not paced: the
// glue's timers cannot keep gaps that short, and a pause of a timer's millisecond is a whole
// round trip there (measured on loopback to libtorrent: 64-98 MiB/s paced, 125-151 unpaced).
void Socket::pace(uint64_t now_us, size_t bytes) {
  const uint32_t srtt = cc_.srtt_us();
  if (srtt <= 2 * kPaceSlackUs) return;
  const uint64_t rate = uint64_t{cc_.cwnd()} * (cc_.slow_start() ? 8 : 5) / 4;  // a round trip
  const uint64_t gap = bytes * uint64_t{srtt} / std::max<uint64_t>(rate, 1);
  pace_next_us_ = std::max(pace_next_us_, now_us) + gap;
}

size_t Socket::send_retransmission(uint64_t now_us, char* out) {
  while (!resend_.empty()) {
    const uint16_t seq = resend_.front();
    OutPacket* r = find(seq);
    if (r == nullptr || (r->flags & kLost) == 0 || (r->flags & kAcked) != 0) {
      resend_.pop_front();  // acked meanwhile, or sent again already
      continue;
    }
    // A packet cannot be cut up again (BEP 29), so one may exceed a window smaller than it
    // when nothing else is in flight; a fast retransmit may exceed it once.
    const bool fits = in_flight_ == 0 || in_flight_ + r->len <= send_window();
    if (!fits && bypass_ == 0) return 0;
    if (!fits) --bypass_;
    resend_.pop_front();
    r->flags = static_cast<uint8_t>(r->flags & ~kLost);
    in_flight_ += r->len;
    ++stats_.retransmits;
    return transmit(seq, *r, now_us, out);
  }
  return 0;
}

size_t Socket::send_new_data(uint64_t now_us, char* out, bool probe) {
  if (fin_sent_) return 0;
  const uint64_t unsent = send_base_ + send_buf_.size() - send_next_;
  if (unsent == 0) return 0;
  const size_t mss = o_.packet_size - kHeaderSize;
  const auto len = static_cast<uint32_t>(std::min<uint64_t>(unsent, mss));
  // Nagle, as libtorrent (line 1604): a partial packet waits while another partial one is
  // unacked, never when nothing is (that would only add delay), nor when closing.
  if (len < mss && o_.nagle && partial_in_flight_ && !fin_queued_ && !probe) return 0;
  // A probe needs only the peer's window (RFC 8985 section 7.3).
  const uint32_t window = probe ? peer_wnd_ : send_window();
  if (in_flight_ != 0 && in_flight_ + len > window) return 0;
  if (out_.size() >= o_.send_buffer / mss + kExtraPackets) return 0;
  if (out_.empty()) last_ack_us_ = now_us;  // the stall clock starts with the first packet
  OutPacket& r = out_.push_back();
  r = OutPacket{};
  r.offset = send_next_;
  r.len = static_cast<uint16_t>(len);
  const uint16_t seq = seq_nr_;
  seq_nr_ = static_cast<uint16_t>(seq_nr_ + 1);
  send_next_ += len;
  in_flight_ += len;
  if (len < mss) {
    partial_in_flight_ = true;
    partial_seq_ = seq;
  }
  const size_t n = transmit(seq, r, now_us, out);
  arm_probe(now_us);
  return n;
}

size_t Socket::send_probe(uint64_t now_us, char* out) {
  // RFC 8985 section 7.3: nothing was acked for two round trips, so the last packets or their
  // ack may be lost. uTP receivers ack a burst with one packet, so one lost ack is enough to
  // stall a window; a probe brings the ack (or a selective ack showing the losses) in two
  // round trips instead of a timeout and a window of one packet.
  size_t n = send_new_data(now_us, out, true);
  for (size_t i = out_.size(); n == 0 && i > 0; --i) {
    OutPacket& r = out_[i - 1];
    if ((r.flags & (kAcked | kLost)) != 0) continue;
    ++stats_.retransmits;
    n = transmit(static_cast<uint16_t>(acked_seq_ + i), r, now_us, out);
  }
  if (n != 0 && rto_deadline_ != 0) rto_deadline_ = now_us + cc_.rto_us();
  return n;
}

void Socket::arm_probe(uint64_t now_us) {
  const uint64_t pto = cc_.probe_timeout_us();
  probe_deadline_ = 0;
  if (probe_out_ || pto == 0 || in_flight_ == 0) return;
  if (rto_deadline_ != 0 && now_us + pto >= rto_deadline_) return;  // the timeout comes first
  probe_deadline_ = now_us + pto;
}

size_t Socket::send_fin(uint64_t now_us, char* out) {
  if (!fin_queued_ || fin_sent_) return 0;
  if (send_next_ != send_base_ + send_buf_.size()) return 0;  // after the last byte
  if (out_.empty()) last_ack_us_ = now_us;
  OutPacket& r = out_.push_back();
  r = OutPacket{};
  r.offset = send_next_;
  r.flags = kFin;
  fin_sent_ = true;
  return transmit(seq_nr_, r, now_us, out);
}

void Socket::on_ack(const Packet& p, uint64_t now_us) {
  const Header& h = p.header;
  const uint32_t before = in_flight_;
  uint32_t rtt = 0;
  uint32_t acked = 0;
  const bool progress = seq_less(acked_seq_, h.ack_nr);
  if (progress) {
    acked += ack_through(h.ack_nr, now_us, &rtt);
  } else if (h.ack_nr == acked_seq_ && h.type == Type::kState && p.sack.empty() && !out_.empty() &&
             ++dup_acks_ == kDupThresh) {
    // BEP 29 "packet loss": three duplicate acks, the packet after ack_nr is lost. With a
    // selective ack, detect_losses() below knows better.
    OutPacket& r = out_.front();
    if ((r.flags & (kAcked | kLost | kFin)) == 0)
      mark_lost(static_cast<uint16_t>(acked_seq_ + 1), r);
  }
  if (!p.sack.empty() && h.ack_nr == acked_seq_) acked += ack_sack(p.sack, now_us, &rtt);
  detect_losses();
  if (rtt != 0) cc_.on_rtt_sample(rtt);
  if (acked != 0) {
    stats_.bytes_acked += acked;
    // Growing the window means something only when it limited the sender (libtorrent's
    // cwnd_saturated, line 3090): the window was full, or bytes wait to be sent (pacing spreads
    // a window over the round trip, so what is in flight when an ack comes is often less than
    // the window; measured, slow start then grew by half a window a round trip, not one). Not
    // past twice the peer's window, which would be a window nothing can use.
    const bool waiting = send_next_ != send_base_ + send_buf_.size();
    const bool saturated = (waiting || before + (o_.packet_size - kHeaderSize) > cc_.cwnd()) &&
                           uint64_t{cc_.cwnd()} < 2 * std::max<uint64_t>(peer_wnd_, o_.packet_size);
    cc_.on_ack(acked, before, rtt, saturated);
  }
  if (progress) {
    dup_acks_ = 0;
    probe_out_ = false;
    cc_.reset_back_off();
    last_ack_us_ = now_us;
    // RFC 6298 5.3: restart the timer for what is still outstanding.
    rto_deadline_ = out_.empty() ? 0 : now_us + cc_.rto_us();
    arm_probe(now_us);
  }
}

uint32_t Socket::ack_through(uint16_t ack_nr, uint64_t now_us, uint32_t* rtt_us) {
  uint32_t acked = 0;
  const uint64_t base = send_base_;
  // O(packets newly acked): each leaves the front of out_.
  while (seq_less(acked_seq_, ack_nr) && !out_.empty()) {
    OutPacket& r = out_.front();
    const auto seq = static_cast<uint16_t>(acked_seq_ + 1);
    acked += ack_one(seq, r, now_us, rtt_us);
    if ((r.flags & kFin) != 0) fin_acked_ = true;
    send_base_ = r.offset + r.len;
    out_.pop_front();
    acked_seq_ = seq;
  }
  send_buf_.consume(send_base_ - base);
  return acked;
}

uint32_t Socket::ack_sack(std::string_view sack, uint64_t now_us, uint32_t* rtt_us) {
  // Bit i acks ack_nr + 2 + i (BEP 29), which is out_[i + 1] since ack_nr == acked_seq_.
  uint32_t acked = 0;
  for (size_t byte = 0; byte < sack.size() && byte * 8 + 1 < out_.size(); ++byte) {
    const auto bits = static_cast<uint8_t>(sack[byte]);
    for (size_t b = 0; bits != 0 && b < 8; ++b) {
      const size_t i = byte * 8 + b + 1;
      if ((bits >> b & 1) == 0 || i >= out_.size()) continue;
      OutPacket& r = out_[i];
      if ((r.flags & kFin) != 0) continue;  // a FIN is acked in order only
      acked += ack_one(static_cast<uint16_t>(acked_seq_ + 1 + i), r, now_us, rtt_us);
    }
  }
  return acked;
}

uint32_t Socket::ack_one(uint16_t seq, OutPacket& r, uint64_t now_us, uint32_t* rtt_us) {
  if ((r.flags & kAcked) != 0) return 0;
  r.flags = static_cast<uint8_t>(r.flags | kAcked);
  if ((r.flags & kLost) == 0) in_flight_ -= r.len;
  if (partial_in_flight_ && seq == partial_seq_) partial_in_flight_ = false;
  // Karn: a retransmitted packet's ack may be the first transmission's, so it gives no RTT
  // sample; and it says which transmission arrived only if it came a round trip after the
  // last one (RFC 8985 section 6.1).
  const uint64_t age = now_us - r.sent_us;
  if (r.transmissions == 1) {
    const auto rtt = static_cast<uint32_t>(std::max<uint64_t>(age, 1));
    *rtt_us = *rtt_us == 0 ? rtt : std::min(*rtt_us, rtt);
  }
  if ((r.transmissions == 1 || age >= cc_.min_rtt_us()) && r.tx > highest_acked_tx_) {
    highest_acked_tx_ = r.tx;
    highest_acked_sent_us_ = r.sent_us;
  }
  return r.len;
}

void Socket::detect_losses() {
  // Transmissions in order: the front one is lost once one sent kDupThresh later is acked,
  // or one sent a quarter of a round trip later (RFC 8985's reordering window: this finds the
  // last packets of a burst, which have fewer than three behind them). Each transmission is
  // looked at once here (amortised O(1) per packet).
  const uint64_t reordering = std::max<uint64_t>(cc_.min_rtt_us() / 4, 1000);
  while (!tx_order_.empty()) {
    const TxEntry e = tx_order_.front();
    OutPacket* r = find(e.seq);
    if (r == nullptr || r->tx != e.tx || (r->flags & (kAcked | kLost)) != 0) {
      tx_order_.pop_front();  // acked, lost already, or sent again since
      continue;
    }
    if (highest_acked_tx_ < e.tx + kDupThresh &&
        (highest_acked_tx_ <= e.tx || highest_acked_sent_us_ < r->sent_us + reordering)) {
      break;
    }
    tx_order_.pop_front();
    mark_lost(e.seq, *r);
  }
}

void Socket::mark_lost(uint16_t seq, OutPacket& r) {
  r.flags = static_cast<uint8_t>(r.flags | kLost);
  in_flight_ -= r.len;
  resend_.push_back() = seq;
  if (resend_.size() > 2 * out_.size() + kExtraPackets) compact_resend();
  // Loss comes in bursts: the window is cut at most once for the packets in flight when the
  // first was found (BEP 29, libtorrent's experienced_loss, line 1936); every loss is told, so
  // that the congestion control can judge the window's loss rate.
  const bool new_window = !seq_less(seq, loss_seq_);
  if (new_window) {
    loss_seq_ = seq_nr_;
    bypass_ = 1;  // the fast retransmit goes now, whatever the window
  }
  cc_.on_loss(new_window, static_cast<uint32_t>(out_.size()));
}

void Socket::on_timeout(uint64_t now_us) {
  ++stats_.timeouts;
  // After the peer's FIN only our FIN is left to ack, and a peer that closed first may be gone
  // without a word (libtorrent answers unknown connections with nothing): a few tries, as
  // libtorrent's utp_fin_resends, then the close is complete anyway.
  ++timeouts_in_a_row_;
  if (state_ == State::kClosing && eof_reached_ && fin_sent_ && timeouts_in_a_row_ > 2) {
    state_ = State::kClosed;
    rto_deadline_ = 0;
    probe_deadline_ = 0;
    return;
  }
  if (timeouts_in_a_row_ > o_.max_timeouts) {
    fail("timed out: " + std::to_string(o_.max_timeouts) + " retransmissions unanswered");
    return;
  }
  cc_.on_timeout(in_flight_);
  // Everything unacked is deemed lost and goes again, oldest first, as the window of one
  // packet grows back (RFC 5681 section 3.1; libtorrent line 3348).
  resend_.clear();
  tx_order_.clear();
  for (size_t i = 0; i < out_.size(); ++i) {
    OutPacket& r = out_[i];
    if ((r.flags & kAcked) != 0) continue;
    if ((r.flags & kLost) == 0) in_flight_ -= r.len;
    r.flags = static_cast<uint8_t>(r.flags | kLost);
    resend_.push_back() = static_cast<uint16_t>(acked_seq_ + 1 + i);
  }
  assert(in_flight_ == 0);
  in_flight_ = 0;
  dup_acks_ = 0;
  bypass_ = 0;
  loss_seq_ = seq_nr_;  // no window cut for these again
  rto_deadline_ = out_.empty() ? 0 : now_us + cc_.rto_us();
  probe_deadline_ = 0;
  probe_pending_ = false;
}

void Socket::compact_tx_order() {
  // Entries of acked or resent packets wait behind a live one; an adversary's duplicate acks
  // could pile them up. Dropping them keeps the queue within twice the packets in flight.
  detail::Ring<TxEntry> live;
  for (size_t i = 0; i < tx_order_.size(); ++i) {
    const TxEntry e = tx_order_[i];
    const OutPacket* r = find(e.seq);
    if (r != nullptr && r->tx == e.tx && (r->flags & (kAcked | kLost)) == 0) live.push_back() = e;
  }
  tx_order_ = std::move(live);
}

void Socket::compact_resend() {
  detail::Ring<uint16_t> live;
  for (size_t i = 0; i < resend_.size(); ++i) {
    const OutPacket* r = find(resend_[i]);
    if (r != nullptr && (r->flags & kLost) != 0 && (r->flags & kAcked) == 0) {
      live.push_back() = resend_[i];
    }
  }
  resend_ = std::move(live);
}

}  // namespace evert::utp
