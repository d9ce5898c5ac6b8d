#include "evert/peer_wire.h"

#include <cstring>

#include "evert/bencode.h"
#include "evert/big_endian.h"

namespace evert::wire {
namespace {

// Payload sizes of the fixed-size messages; -1: variable, -2: unknown id.
int fixed_payload(uint8_t id) {
  switch (static_cast<MsgId>(id)) {
    case MsgId::kChoke:
    case MsgId::kUnchoke:
    case MsgId::kInterested:
    case MsgId::kNotInterested:
    case MsgId::kHaveAll:
    case MsgId::kHaveNone:
      return 0;
    case MsgId::kHave:
    case MsgId::kSuggest:
    case MsgId::kAllowedFast:
      return 4;
    case MsgId::kRequest:
    case MsgId::kCancel:
    case MsgId::kReject:
      return 12;
    case MsgId::kPort:
      return 2;
    case MsgId::kHashRequest:
    case MsgId::kHashReject:
      return 48;
    case MsgId::kBitfield:
    case MsgId::kPiece:
    case MsgId::kExtended:
    case MsgId::kHashes:
      return -1;
  }
  return -2;
}

void parse_hash_head(const char* p, HashRequest& h) {
  std::memcpy(h.pieces_root.data(), p, 32);
  h.base_layer = be::load32(p + 32);
  h.index = be::load32(p + 36);
  h.length = be::load32(p + 40);
  h.proof_layers = be::load32(p + 44);
}

}  // namespace

Result<Handshake> parse_handshake(std::string_view b) {
  if (static_cast<uint8_t>(b[0]) != kProtocol.size() || b.substr(1, 19) != kProtocol) {
    return Error("not a BitTorrent handshake");
  }
  Handshake h;
  std::memcpy(h.reserved.data(), b.data() + 20, 8);
  std::memcpy(h.info_hash.data(), b.data() + 28, 20);
  std::memcpy(h.peer_id.data(), b.data() + 48, 20);
  return h;
}

void put_handshake(std::string& out, std::string_view info_hash, std::string_view peer_id,
                   bool v2) {
  out += static_cast<char>(kProtocol.size());
  out += kProtocol;
  char reserved[8] = {};
  reserved[5] = 0x10;                       // BEP 10 extension protocol
  reserved[7] = 0x04 | (v2 ? 0x10 : 0x00);  // BEP 6 fast extension; BEP 52 v2
  out.append(reserved, 8);
  out += info_hash.substr(0, 20);
  out += peer_id.substr(0, 20);
}

std::optional<HandshakeAnswer> answer_handshake(const Handshake& theirs,
                                                const std::optional<Hash20>& v1,
                                                const std::optional<Hash20>& v2) {
  if (v2 && theirs.info_hash == *v2) return HandshakeAnswer{*v2, true};
  if (!v1 || theirs.info_hash != *v1) return std::nullopt;
  if (v2 && theirs.v2()) return HandshakeAnswer{*v2, true};
  return HandshakeAnswer{*v1, false};
}

Frame parse_message(std::string_view buffer, uint32_t max_length) {
  Frame f;
  if (buffer.size() < 4) return f;
  const uint32_t length = be::load32(buffer.data());
  if (length > max_length) {
    f.status = Frame::Status::kError;
    f.error = "message of " + std::to_string(length) + " bytes (at most " +
              std::to_string(max_length) + ")";
    return f;
  }
  if (length == 0) {
    f.status = Frame::Status::kMessage;
    f.consumed = 4;
    f.message.keep_alive = true;
    return f;
  }
  // The id is checked as soon as it is there, before the rest of the message is waited for.
  if (buffer.size() < 5) return f;
  const auto id = static_cast<uint8_t>(buffer[4]);
  const int fixed = fixed_payload(id);
  const uint32_t payload = length - 1;
  if (fixed == -2) {
    f.status = Frame::Status::kError;
    f.error = "unknown message id " + std::to_string(id);
    return f;
  }
  if ((fixed >= 0 && payload != static_cast<uint32_t>(fixed)) ||
      (static_cast<MsgId>(id) == MsgId::kPiece && payload < 8) ||
      (static_cast<MsgId>(id) == MsgId::kExtended && payload < 1) ||
      (static_cast<MsgId>(id) == MsgId::kHashes && payload < 48)) {
    f.status = Frame::Status::kError;
    f.error = "message id " + std::to_string(id) + " with a payload of " + std::to_string(payload) +
              " bytes";
    return f;
  }
  if (buffer.size() < 4 + size_t{length}) return f;
  const char* p = buffer.data() + 5;
  Message& m = f.message;
  m.id = static_cast<MsgId>(id);
  switch (m.id) {
    case MsgId::kHave:
    case MsgId::kSuggest:
    case MsgId::kAllowedFast:
      m.index = be::load32(p);
      break;
    case MsgId::kRequest:
    case MsgId::kCancel:
    case MsgId::kReject:
      m.index = be::load32(p);
      m.begin = be::load32(p + 4);
      m.length = be::load32(p + 8);
      break;
    case MsgId::kPort:
      m.port = static_cast<uint16_t>(static_cast<uint8_t>(p[0]) << 8 | static_cast<uint8_t>(p[1]));
      break;
    case MsgId::kPiece:
      m.index = be::load32(p);
      m.begin = be::load32(p + 4);
      m.payload = std::string_view(p + 8, payload - 8);
      break;
    case MsgId::kBitfield:
      m.payload = std::string_view(p, payload);
      break;
    case MsgId::kExtended:
      m.extended_id = static_cast<uint8_t>(p[0]);
      m.payload = std::string_view(p + 1, payload - 1);
      break;
    case MsgId::kHashRequest:
    case MsgId::kHashReject:
      parse_hash_head(p, m.hash);
      break;
    case MsgId::kHashes:
      parse_hash_head(p, m.hash);
      m.payload = std::string_view(p + 48, payload - 48);
      break;
    default:
      break;
  }
  f.status = Frame::Status::kMessage;
  f.consumed = 4 + size_t{length};
  return f;
}

void put_keep_alive(std::string& out) {
  be::append32(out, 0);
}

void put_simple(std::string& out, MsgId id) {
  be::append32(out, 1);
  out += static_cast<char>(id);
}

void put_have(std::string& out, uint32_t index) {
  be::append32(out, 5);
  out += static_cast<char>(MsgId::kHave);
  be::append32(out, index);
}

void put_bitfield(std::string& out, std::string_view bits) {
  be::append32(out, static_cast<uint32_t>(1 + bits.size()));
  out += static_cast<char>(MsgId::kBitfield);
  out += bits;
}

void put_block_message(std::string& out, MsgId id, uint32_t index, uint32_t begin,
                       uint32_t length) {
  be::append32(out, 13);
  out += static_cast<char>(id);
  be::append32(out, index);
  be::append32(out, begin);
  be::append32(out, length);
}

void put_piece_head(std::string& out, uint32_t index, uint32_t begin, uint32_t length) {
  be::append32(out, 9 + length);
  out += static_cast<char>(MsgId::kPiece);
  be::append32(out, index);
  be::append32(out, begin);
}

void put_extended(std::string& out, uint8_t extended_id, std::string_view payload) {
  be::append32(out, static_cast<uint32_t>(2 + payload.size()));
  out += static_cast<char>(MsgId::kExtended);
  out += static_cast<char>(extended_id);
  out += payload;
}

void put_hash_message(std::string& out, MsgId id, const HashRequest& h, std::string_view hashes) {
  be::append32(out, static_cast<uint32_t>(1 + 48 + hashes.size()));
  out += static_cast<char>(id);
  out.append(reinterpret_cast<const char*>(h.pieces_root.data()), 32);
  be::append32(out, h.base_layer);
  be::append32(out, h.index);
  be::append32(out, h.length);
  be::append32(out, h.proof_layers);
  out += hashes;
}

// ---- BEP 10 / BEP 9 -------------------------------------------------------------------------

Result<ExtensionHandshake> parse_extension_handshake(std::string_view payload) {
  bencode::DecodeLimits limits;
  limits.max_depth = 8;
  limits.max_elements = 1000;
  auto v = bencode::decode_prefix(payload, limits);
  if (!v) return Error("extension handshake: " + v.error().message);
  if (!v->is_dict()) return Error("extension handshake: not a dictionary");
  ExtensionHandshake h;
  if (const auto* m = v->find("m"); m != nullptr && m->is_dict()) {
    if (const auto* u = m->find("ut_metadata"); u != nullptr && u->is_int()) {
      if (u->as_int() < 0 || u->as_int() > 255) {
        return Error("extension handshake: ut_metadata id " + std::to_string(u->as_int()));
      }
      if (u->as_int() > 0) h.ut_metadata = static_cast<uint8_t>(u->as_int());
    }
  }
  if (const auto* c = v->find("v"); c != nullptr && c->is_string()) {
    h.client = c->as_string().substr(0, 64);
  }
  if (const auto* q = v->find("reqq"); q != nullptr && q->is_int() && q->as_int() > 0) {
    h.reqq = static_cast<uint32_t>(std::min<int64_t>(q->as_int(), 1 << 20));
  }
  return h;
}

std::string extension_handshake_payload(const OurExtensionHandshake& h) {
  bencode::Dict m;
  m["ut_metadata"] = bencode::Value(int64_t{kUtMetadataId});
  bencode::Dict d;
  d["m"] = bencode::Value(std::move(m));
  if (h.metadata_size > 0)
    d["metadata_size"] = bencode::Value(static_cast<int64_t>(h.metadata_size));
  if (h.listen_port > 0) d["p"] = bencode::Value(int64_t{h.listen_port});
  d["reqq"] = bencode::Value(int64_t{h.reqq});
  if (!h.client.empty()) d["v"] = bencode::Value(h.client);
  if (!h.yourip.empty()) d["yourip"] = bencode::Value(h.yourip);
  return bencode::encode(bencode::Value(std::move(d)));
}

Result<MetadataMessage> parse_metadata_message(std::string_view payload) {
  bencode::DecodeLimits limits;
  limits.max_depth = 4;
  limits.max_elements = 64;
  auto v = bencode::decode_prefix(payload, limits);
  if (!v) return Error("ut_metadata: " + v.error().message);
  if (!v->is_dict()) return Error("ut_metadata: not a dictionary");
  const auto* type = v->find("msg_type");
  const auto* piece = v->find("piece");
  if (type == nullptr || !type->is_int() || type->as_int() < 0 || type->as_int() > 2) {
    return Error("ut_metadata: missing or unknown msg_type");
  }
  if (piece == nullptr || !piece->is_int() || piece->as_int() < 0 || piece->as_int() > 0xFFFFFF) {
    return Error("ut_metadata: missing or bad piece");
  }
  MetadataMessage m;
  m.type = static_cast<MetadataMessage::Type>(type->as_int());
  m.piece = static_cast<uint32_t>(piece->as_int());
  if (const auto* t = v->find("total_size"); t != nullptr && t->is_int() && t->as_int() > 0) {
    m.total_size = static_cast<uint64_t>(t->as_int());
  }
  m.data = payload.substr(v->raw().size());
  return m;
}

std::string metadata_message_payload(MetadataMessage::Type type, uint32_t piece,
                                     uint64_t total_size, std::string_view data) {
  bencode::Dict d;
  d["msg_type"] = bencode::Value(static_cast<int64_t>(type));
  d["piece"] = bencode::Value(static_cast<int64_t>(piece));
  if (type == MetadataMessage::Type::kData) {
    d["total_size"] = bencode::Value(static_cast<int64_t>(total_size));
  }
  std::string out = bencode::encode(bencode::Value(std::move(d)));
  out += data;
  return out;
}

}  // namespace evert::wire
