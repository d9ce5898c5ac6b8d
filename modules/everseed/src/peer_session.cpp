#include "peer_session.h"

#include <algorithm>

namespace evert::everseed {

uint64_t piece_size(const Metainfo& meta, uint32_t index) {
  const uint64_t start = uint64_t{index} * meta.piece_length;
  return start < meta.stream_size ? std::min(meta.piece_length, meta.stream_size - start) : 0;
}

PeerSession::PeerSession(const Metainfo& meta, bool fast, SessionLimits limits)
    : meta_(meta),
      fast_(fast),
      limits_(limits),
      pieces_(static_cast<uint32_t>(meta.piece_count())) {}

SessionStep PeerSession::read(std::string_view in, bool unchoked) {
  SessionStep step;
  while (!step.close && !step.interested) {
    const wire::Frame f = wire::parse_message(in.substr(step.consumed), limits_.max_message);
    if (f.status == wire::Frame::Status::kNeedMore) break;
    if (f.status == wire::Frame::Status::kError) {
      step.close = f.error;
      break;
    }
    step.consumed += f.consumed;
    const wire::Message& m = f.message;
    if (m.keep_alive) continue;
    switch (m.id) {
      case wire::MsgId::kInterested:
      case wire::MsgId::kNotInterested: {
        const bool now = m.id == wire::MsgId::kInterested;
        if (now != interested_) {
          interested_ = now;
          step.interested = now;
        }
        break;
      }
      case wire::MsgId::kRequest:
        on_request(m, unchoked, step);
        break;
      case wire::MsgId::kCancel: {
        const Block b{m.index, m.begin, m.length};
        auto it = std::find(queue_.begin(), queue_.end(), b);
        if (it == queue_.end()) break;  // already sent or being read: it goes out
        queue_.erase(it);
        // BEP 6: a cancelled request is answered, with the block or a reject.
        if (fast_)
          wire::put_block_message(step.send, wire::MsgId::kReject, b.index, b.begin, b.length);
        break;
      }
      case wire::MsgId::kExtended:
        on_extended(m, step);
        break;
      case wire::MsgId::kHashRequest:
        step.hash_requests.push_back(m.hash);
        break;
      case wire::MsgId::kPiece:
        step.close = "sent a piece to a seed";
        break;
      case wire::MsgId::kBitfield:
        // BEP 3: drop a bitfield of the wrong size or with any spare bit set.
        if (m.payload.size() != (uint64_t{pieces_} + 7) / 8) {
          step.close = "a bitfield of " + std::to_string(m.payload.size()) + " bytes for " +
                       std::to_string(pieces_) + " pieces";
        } else if (pieces_ % 8 != 0 &&
                   (static_cast<uint8_t>(m.payload.back()) & (0xFFu >> (pieces_ % 8))) != 0) {
          step.close = "a bitfield with spare bits set";
        }
        break;
      case wire::MsgId::kHave:
        if (m.index >= pieces_) {
          step.close =
              "have of piece " + std::to_string(m.index) + " of " + std::to_string(pieces_);
        }
        break;
      default:
        break;  // have all/none, port, suggest, allowed fast: nothing to do
    }
  }
  return step;
}

void PeerSession::on_request(const wire::Message& m, bool unchoked, SessionStep& step) {
  const bool ok = m.index < pieces_ && m.length > 0 && m.length <= limits_.max_block &&
                  uint64_t{m.begin} + m.length <= piece_size(meta_, m.index);
  if (!ok && !fast_) {
    step.close = "bad request: piece " + std::to_string(m.index) + " offset " +
                 std::to_string(m.begin) + " length " + std::to_string(m.length);
    return;
  }
  const bool full = queue_.size() >= limits_.request_queue;
  // Without the fast extension a request that is not served is dropped (a reject would be a
  // protocol error to such a peer): choking discarded it (BEP 3), or the queue is full (it asks
  // again). With it, it is rejected (BEP 6).
  if (!fast_ && (!unchoked || full)) return;
  if (!ok || !unchoked || full) {
    wire::put_block_message(step.send, wire::MsgId::kReject, m.index, m.begin, m.length);
    return;
  }
  queue_.push_back({m.index, m.begin, m.length});
  step.queued = true;
}

void PeerSession::on_extended(const wire::Message& m, SessionStep& step) {
  if (m.extended_id == 0) {
    auto h = wire::parse_extension_handshake(m.payload);
    if (!h) {
      step.close = h.error().message;
      return;
    }
    ut_metadata_ = h->ut_metadata;
    return;
  }
  if (m.extended_id != wire::kUtMetadataId) return;  // an extension we did not offer
  auto md = wire::parse_metadata_message(m.payload);
  if (!md) {
    step.close = md.error().message;
    return;
  }
  if (md->type != wire::MetadataMessage::Type::kRequest || !ut_metadata_) return;
  const std::string& info = meta_.info_bytes;
  const uint64_t at = uint64_t{md->piece} * wire::kMetadataPieceSize;
  if (at >= info.size()) {
    wire::put_extended(
        step.send, *ut_metadata_,
        wire::metadata_message_payload(wire::MetadataMessage::Type::kReject, md->piece));
    return;
  }
  ++step.metadata_pieces;
  wire::put_extended(
      step.send, *ut_metadata_,
      wire::metadata_message_payload(wire::MetadataMessage::Type::kData, md->piece, info.size(),
                                     std::string_view(info).substr(at, wire::kMetadataPieceSize)));
}

}  // namespace evert::everseed
