// The connection state machine of evert/utp.h: the handshake, incoming packets, the receive
// side, close and the timers. The send side, acks and loss are in utp_send.cpp.
#include <algorithm>
#include <cstdint>
#include <iterator>

#include "evert/utp.h"
#include "utp_internal.h"

namespace evert::utp {
namespace {

Options normalized(Options o) {
  o.packet_size = std::clamp<size_t>(o.packet_size, kMinPacketSize, kMaxDatagram);
  const size_t mss = o.packet_size - kHeaderSize;
  // Fewer than half the sequence space in flight, whatever the packets' sizes (see
  // max_packets() in utp_internal.h).
  o.send_buffer = std::clamp<size_t>(o.send_buffer, mss, mss * 8192);
  o.recv_buffer = std::clamp<size_t>(o.recv_buffer, kMinRecvBuffer, size_t{1} << 30);
  o.initial_window = std::clamp<size_t>(o.initial_window, mss, o.send_buffer);
  o.min_timeout_us = std::max<uint32_t>(o.min_timeout_us, 1000);
  o.max_timeout_us = std::max(o.max_timeout_us, o.min_timeout_us);
  o.initial_timeout_us = std::clamp(o.initial_timeout_us, o.min_timeout_us, o.max_timeout_us);
  o.max_timeouts = std::max<uint32_t>(o.max_timeouts, 1);
  o.keepalive_us = std::max<uint64_t>(o.keepalive_us, 1000);
  return o;
}

detail::CongestionParams congestion_params(const Options& o) {
  detail::CongestionParams p;
  p.mss = static_cast<uint32_t>(o.packet_size - kHeaderSize);
  p.initial_window = static_cast<uint32_t>(o.initial_window);
  p.target_delay_us = o.target_delay_us;
  p.gain = o.gain;
  p.initial_timeout_us = o.initial_timeout_us;
  p.min_timeout_us = o.min_timeout_us;
  p.max_timeout_us = o.max_timeout_us;
  return p;
}

}  // namespace

Socket::Socket(const Options& o, uint64_t now_us)
    : o_(normalized(o)), state_(State::kClosed), cc_(congestion_params(o_)) {
  now_us_ = now_us;
  start_us_ = now_us;
  last_send_us_ = now_us;
  last_ack_us_ = now_us;
}

Socket Socket::accept(const Header& syn, uint64_t now_us, const Options& o, uint16_t seq) {
  Socket s(o, now_us);
  s.state_ = State::kSynReceived;
  // BEP 29 "connection setup": the responder sends with the SYN's id and receives with it + 1.
  s.send_id_ = syn.connection_id;
  s.recv_id_ = static_cast<uint16_t>(syn.connection_id + 1);
  s.seq_nr_ = seq;
  s.acked_seq_ = static_cast<uint16_t>(seq - 1);
  s.loss_seq_ = seq;
  // Our STATE acks the SYN's seq_nr (libtorrent checks it, src/utp_stream.cpp line 2779) and
  // carries `seq`, which our first DATA carries too: the initiator takes the STATE's seq_nr
  // minus one as the last one it received (libtorrent line 2800, libutp the same).
  s.ack_nr_ = syn.seq_nr;
  s.ack_pending_ = true;
  if (syn.timestamp_us != 0) s.reply_micro_ = static_cast<uint32_t>(now_us) - syn.timestamp_us;
  return s;
}

Socket Socket::connect(uint16_t recv_id, uint64_t now_us, const Options& o, uint16_t seq) {
  Socket s(o, now_us);
  s.state_ = State::kSynSent;
  s.initiator_ = true;
  s.recv_id_ = recv_id;
  s.send_id_ = static_cast<uint16_t>(recv_id + 1);
  // The SYN takes `seq`; our first DATA is seq + 1, as the responder expects.
  s.acked_seq_ = seq;
  s.seq_nr_ = static_cast<uint16_t>(seq + 1);
  s.loss_seq_ = s.seq_nr_;
  s.syn_pending_ = true;
  return s;
}

void Socket::on_packet(const Packet& p, uint64_t now_us) {
  now_us_ = std::max(now_us_, now_us);
  const uint64_t now = now_us_;
  if (state_ == State::kClosed || state_ == State::kFailed) return;
  const Header& h = p.header;
  if (recv_id_of(h) != recv_id_) return;
  if (h.type == Type::kSyn) {
    on_syn(h);
    return;
  }
  if (!handshake(p, now)) return;
  // A packet acking what we never sent is forged or broken: none of it is trusted (as
  // libtorrent, line 2445).
  if (seq_less(last_sent_seq(), h.ack_nr)) return;
  timeouts_in_a_row_ = 0;  // the peer is alive
  if (h.timestamp_us != 0) reply_micro_ = static_cast<uint32_t>(now) - h.timestamp_us;
  if (h.type == Type::kReset) {
    // After both FINs, or ours acked, a reset only ends what was ending.
    if (state_ == State::kClosing && (fin_acked_ || eof_reached_)) {
      state_ = State::kClosed;
      drop_buffers();
    } else {
      fail("reset by peer");
    }
    return;
  }
  peer_wnd_ = h.wnd_size;
  cc_.on_delay_sample(h.timestamp_diff_us, now);
  on_ack(p, now);
  if (h.type == Type::kData) {
    on_data(p);
  } else if (h.type == Type::kFin) {
    on_fin(h);
  }
  finish_close_if_done(now);
}

bool Socket::handshake(const Packet& p, uint64_t now) {
  const Header& h = p.header;
  if (state_ != State::kSynSent && state_ != State::kSynReceived) return true;
  // The first packet after a SYN must ack it (the initiator's) or our SYN-ACK (the
  // responder's): both are acked_seq_.
  if (h.ack_nr != acked_seq_) return false;
  if (h.type == Type::kReset) {
    fail(state_ == State::kSynSent ? "connection refused (reset by peer)" : "reset by peer");
    return false;
  }
  if (state_ == State::kSynSent) {
    ack_nr_ = static_cast<uint16_t>(h.seq_nr - 1);
    // Confirms our address to the responder even if the application has nothing to say.
    ack_pending_ = true;
    if (timeouts_in_a_row_ == 0) cc_.on_rtt_sample(static_cast<uint32_t>(now - last_send_us_));
    rto_deadline_ = 0;
  }
  // From here on the responder may send data: the initiator received our STATE at the
  // address it claimed.
  state_ = State::kConnected;
  last_ack_us_ = now;
  return true;
}

void Socket::on_syn(const Header& h) {
  // A SYN again: our STATE was lost. Answer it again, once per SYN (no amplification).
  if (state_ == State::kSynReceived && h.seq_nr == ack_nr_) ack_pending_ = true;
}

void Socket::on_data(const Packet& p) {
  // Every DATA is acked, a duplicate or a dropped one too: the peer may have lost our ack, and
  // a dropped one learns our window.
  ack_pending_ = true;
  const uint16_t seq = p.header.seq_nr;
  if (fin_received_ && !seq_less(seq, eof_seq_)) return;  // nothing follows a FIN (BEP 29)
  if (p.payload.empty()) return;
  const auto offset = static_cast<uint16_t>(seq - ack_nr_ - 1);
  if (offset >= 0x8000) return;  // already delivered
  if (offset != 0) {
    store_out_of_order(offset, p.payload);
    return;
  }
  // The next one in order. It may overshoot the buffer by itself when out-of-order packets
  // are waiting for it: they cannot be dropped (the peer forgot them when it saw them
  // selectively acked), and refusing it would wait for ever. The total stays below
  // recv_buffer + one datagram.
  const size_t held = recv_buf_.size() + ooo_bytes_;
  if (held + p.payload.size() > o_.recv_buffer && (ooo_count_ == 0 || held > o_.recv_buffer)) {
    return;
  }
  deliver_in_order(p.payload);
}

void Socket::deliver_in_order(std::string_view payload) {
  const size_t limit = o_.recv_buffer + kMaxDatagram;
  recv_buf_.append(payload.data(), payload.size(), limit);
  stats_.bytes_received += payload.size();
  ack_nr_ = static_cast<uint16_t>(ack_nr_ + 1);
  if (!ooo_.empty()) {
    ooo_.pop_front();  // the slot of the packet that just came
    while (!ooo_.empty() && ooo_.front().present) {
      Slot& s = ooo_.front();
      recv_buf_.append(s.data.data(), s.data.size(), limit);
      stats_.bytes_received += s.data.size();
      ooo_bytes_ -= static_cast<uint32_t>(s.data.size());
      --ooo_count_;
      s.present = false;
      s.data.clear();
      ooo_.pop_front();
      ack_nr_ = static_cast<uint16_t>(ack_nr_ + 1);
    }
    if (ooo_count_ == 0) {
      ooo_.clear();
    } else {
      sack_pending_ = true;  // the peer learns which of the rest we hold
    }
  }
  if (fin_received_ && static_cast<uint16_t>(ack_nr_ + 1) == eof_seq_) {
    ack_nr_ = eof_seq_;
    eof_reached_ = true;
  }
}

bool Socket::store_out_of_order(uint16_t offset, std::string_view payload) {
  // Beyond what a selective ack can describe, or beyond our window: dropped, and resent.
  if (offset >= kMaxReorder) return false;
  if (offset < ooo_.size() && ooo_[offset].present) return false;  // a duplicate
  if (recv_buf_.size() + ooo_bytes_ + payload.size() > o_.recv_buffer) return false;
  while (ooo_.size() <= offset) {
    Slot& s = ooo_.push_back();
    s.present = false;
    s.data.clear();
  }
  Slot& s = ooo_[offset];
  s.data.assign(payload);
  s.present = true;
  ooo_bytes_ += static_cast<uint32_t>(payload.size());
  ++ooo_count_;
  sack_pending_ = true;
  return true;
}

void Socket::on_fin(const Header& h) {
  ack_pending_ = true;  // a duplicate FIN is acked again (libtorrent resends it until acked)
  if (fin_received_) return;
  const auto offset = static_cast<uint16_t>(h.seq_nr - ack_nr_ - 1);
  if (offset >= kMaxReorder) return;  // before what we delivered, or too far ahead: bogus
  fin_received_ = true;
  eof_seq_ = h.seq_nr;
  // Nothing follows a FIN: out-of-order packets at or after it were never part of the stream.
  while (ooo_.size() > offset) {
    Slot& s = ooo_.back();
    if (s.present) {
      ooo_bytes_ -= static_cast<uint32_t>(s.data.size());
      --ooo_count_;
      s.present = false;
      s.data.clear();
    }
    ooo_.pop_back();
  }
  if (ooo_count_ == 0) ooo_.clear();
  if (offset == 0) {
    ack_nr_ = eof_seq_;
    eof_reached_ = true;
  }
}

void Socket::consume(size_t n) {
  recv_buf_.consume(std::min(n, recv_buf_.size()));
  if (state_ != State::kConnected && state_ != State::kClosing) return;
  // A sender that saw our window nearly closed waits for an ack to learn it opened again, and
  // libtorrent would otherwise only probe at its timeout: tell it once half the buffer is free.
  if (last_wnd_ < o_.recv_buffer / 4 && advertised_window() >= o_.recv_buffer / 2) {
    ack_pending_ = true;
  }
}

uint32_t Socket::advertised_window() const {
  const size_t held = recv_buf_.size() + ooo_bytes_;
  return held >= o_.recv_buffer ? 0 : static_cast<uint32_t>(o_.recv_buffer - held);
}

uint64_t Socket::state_resend_due() const {
  // The initiator speaks first (its BitTorrent or MSE handshake) as soon as our STATE
  // arrives: silence means the STATE was lost. libtorrent sends its SYN again only after 3 s
  // (utp_connect_timeout) and has given up on uTP by then, for TCP a pulse later: without
  // these, one lost STATE costs a libtorrent user about 4 s. Twice, 0.5 s and 1.5 s after the
  // SYN; a forged SYN gets three 20-byte answers in all (a TCP listener resends its SYN-ACK
  // five times), and the seed's half-open caps bound how many it holds per address.
  constexpr uint64_t kAfterUs[] = {500'000, 1'500'000};
  if (state_resends_ >= std::size(kAfterUs)) return UINT64_MAX;
  return start_us_ + kAfterUs[state_resends_];
}

void Socket::close(uint64_t now_us) {
  now_us_ = std::max(now_us_, now_us);
  if (state_ == State::kSynSent || state_ == State::kSynReceived) {
    abort(now_us_);
    return;
  }
  if (state_ != State::kConnected) return;
  fin_queued_ = true;  // sent by next_packet() after the last byte written
  state_ = State::kClosing;
}

void Socket::abort(uint64_t now_us) {
  now_us_ = std::max(now_us_, now_us);
  if (state_ == State::kClosed || state_ == State::kFailed) return;
  reset_pending_ = true;
  state_ = State::kClosed;
  drop_buffers();
}

void Socket::finish_close_if_done(uint64_t now_us) {
  if (state_ != State::kClosing || !fin_acked_) return;
  if (eof_reached_) {
    state_ = State::kClosed;
    rto_deadline_ = 0;
    return;
  }
  // Our FIN is acked; the peer's usually comes with that ack (libtorrent answers a FIN with
  // its own, line 2716). Wait a little for it, so that our ack of it finds us.
  if (linger_deadline_ == 0) linger_deadline_ = now_us + 2 * cc_.rto_us();
}

void Socket::fail(std::string reason) {
  state_ = State::kFailed;
  failure_ = std::move(reason);
  drop_buffers();
}

void Socket::drop_buffers() {
  ack_pending_ = false;
  sack_pending_ = false;
  syn_pending_ = false;
  probe_pending_ = false;
  rto_deadline_ = 0;
  probe_deadline_ = 0;
  linger_deadline_ = 0;
  in_flight_ = 0;
  out_.clear();
  out_.release();
  resend_.clear();
  resend_.release();
  tx_order_.clear();
  tx_order_.release();
  send_buf_.consume(send_buf_.size());
  send_buf_.release();
  send_base_ = send_next_ = 0;
  ooo_.clear();
  ooo_.release();
  ooo_bytes_ = ooo_count_ = 0;
  recv_buf_.consume(recv_buf_.size());
  recv_buf_.release();
}

uint64_t Socket::deadline() const {
  constexpr uint64_t kNever = UINT64_MAX;
  switch (state_) {
    case State::kClosed:
    case State::kFailed:
      return kNever;
    case State::kSynReceived:
      return std::min(start_us_ + o_.connect_timeout_us, state_resend_due());
    case State::kSynSent:
      return std::min(rto_deadline_ == 0 ? kNever : rto_deadline_,
                      start_us_ + o_.connect_timeout_us);
    case State::kConnected:
    case State::kClosing:
      break;
  }
  uint64_t d = last_send_us_ + o_.keepalive_us;
  if (rto_deadline_ != 0) d = std::min(d, rto_deadline_);
  if (probe_deadline_ != 0) d = std::min(d, probe_deadline_);
  if (!out_.empty()) d = std::min(d, last_ack_us_ + o_.stall_timeout_us);
  if (linger_deadline_ != 0) d = std::min(d, linger_deadline_);
  if (pace_blocked_) d = std::min(d, pace_next_us_ - kPaceSlackUs);
  return d;
}

void Socket::on_tick(uint64_t now_us) {
  now_us_ = std::max(now_us_, now_us);
  const uint64_t now = now_us_;
  switch (state_) {
    case State::kClosed:
    case State::kFailed:
      return;
    case State::kSynReceived:
      if (now - start_us_ >= o_.connect_timeout_us) {
        fail("handshake timed out");
      } else if (now >= state_resend_due()) {
        // Our STATE again, as a TCP listener resends its SYN-ACK; once, however many resends
        // a late tick finds due.
        while (now >= state_resend_due())
          ++state_resends_;
        ack_pending_ = true;
      }
      return;
    case State::kSynSent:
      if (now - start_us_ >= o_.connect_timeout_us) {
        fail("connect timed out (no answer to our SYN)");
      } else if (rto_deadline_ != 0 && now >= rto_deadline_) {
        syn_pending_ = true;  // resent by next_packet(), with a longer timeout
        ++timeouts_in_a_row_;
        rto_deadline_ = 0;
      }
      return;
    case State::kConnected:
    case State::kClosing:
      break;
  }
  if (rto_deadline_ != 0 && now >= rto_deadline_) {
    on_timeout(now);
    if (state_ == State::kFailed) return;
  } else if (probe_deadline_ != 0 && now >= probe_deadline_) {
    probe_deadline_ = 0;
    probe_out_ = true;
    probe_pending_ = true;  // sent by next_packet()
  }
  if (!out_.empty() && now - last_ack_us_ >= o_.stall_timeout_us) {
    fail("stalled: no ack for " + std::to_string(o_.stall_timeout_us / 1'000'000) + " s");
    return;
  }
  if (now - last_send_us_ >= o_.keepalive_us) {
    ack_pending_ = true;  // a keep-alive: an empty STATE
    release_idle_memory();
  }
  if (linger_deadline_ != 0 && now >= linger_deadline_) {
    state_ = State::kClosed;
    rto_deadline_ = 0;
  }
}

void Socket::release_idle_memory() {
  if (out_.empty()) {
    out_.release();
    resend_.clear();
    resend_.release();
    tx_order_.clear();
    tx_order_.release();
  }
  if (send_buf_.empty()) send_buf_.release();
  if (ooo_.empty()) ooo_.release();
  if (recv_buf_.empty()) recv_buf_.release();
}

Socket::Stats Socket::stats() const {
  Stats s = stats_;
  s.cwnd = cc_.cwnd();
  s.rtt_us = cc_.srtt_us();
  s.in_flight = in_flight_;
  s.send_buffered = send_buf_.size();
  s.recv_buffered = recv_buf_.size() + ooo_bytes_;
  return s;
}

}  // namespace evert::utp
