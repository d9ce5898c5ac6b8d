// The BitTorrent peer wire protocol as pure functions over bytes (STYLE.md §2): the handshake
// (BEP 3), length-prefixed messages (BEP 3, the fast extension of BEP 6, the extension
// protocol of BEP 10, the hash messages of BEP 52), and the ut_metadata messages of BEP 9.
// No sockets: the everseed feeds received bytes in and writes what these build.
//
// Limits: a message longer than the caller's `max_length` is an error before any of it is
// buffered, so a peer cannot make the receiver hold more than that.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "evert/result.h"

namespace evert::wire {

inline constexpr size_t kHandshakeSize = 68;
inline constexpr std::string_view kProtocol = "BitTorrent protocol";
inline constexpr uint32_t kBlockSize = 16 * 1024;  // what every client requests

struct Handshake {
  std::array<uint8_t, 8> reserved{};
  std::array<uint8_t, 20> info_hash{};
  std::array<uint8_t, 20> peer_id{};

  [[nodiscard]] bool extension_protocol() const { return (reserved[5] & 0x10) != 0; }  // BEP 10
  [[nodiscard]] bool fast() const { return (reserved[7] & 0x04) != 0; }                // BEP 6
  [[nodiscard]] bool v2() const { return (reserved[7] & 0x10) != 0; }  // BEP 52 upgrade bit
};

// Parses the 68-byte handshake. Precondition: bytes.size() >= kHandshakeSize. Errors: a wrong
// protocol string.
Result<Handshake> parse_handshake(std::string_view bytes);
// Appends a handshake offering the fast and extension protocols, and with `v2` the BEP 52
// upgrade bit (an initiator's offer for a hybrid torrent; a responder never sets it).
void put_handshake(std::string& out, std::string_view info_hash, std::string_view peer_id,
                   bool v2 = false);

// What a responder answers to `theirs` for a torrent it has (BEP 52). `v1` is the torrent's
// v1 info-hash (empty for a v2-only torrent), `v2` its v2 info-hash truncated to 20 bytes
// (empty for a v1 torrent). The v2 hash is answered, and the connection runs as v2, when the
// initiator used it, or used the v1 hash of a hybrid and set the upgrade bit ("the remote peer
// may then respond with the new infohash to upgrade the connection"); otherwise the hash it
// used. Either way the answer carries no upgrade bit: libtorrent 2.0 takes the hash it gets
// back as the protocol (bt_peer_connection.cpp, read_info_hash), and a bit beside a v1 hash
// only misleads. nullopt: `theirs` names neither hash.
struct HandshakeAnswer {
  std::array<uint8_t, 20> info_hash{};
  bool upgraded = false;  // the v2 hash is answered
};
using Hash20 = std::array<uint8_t, 20>;
std::optional<HandshakeAnswer> answer_handshake(const Handshake& theirs,
                                                const std::optional<Hash20>& v1,
                                                const std::optional<Hash20>& v2);

enum class MsgId : uint8_t {
  kChoke = 0,
  kUnchoke = 1,
  kInterested = 2,
  kNotInterested = 3,
  kHave = 4,
  kBitfield = 5,
  kRequest = 6,
  kPiece = 7,
  kCancel = 8,
  kPort = 9,
  kSuggest = 13,
  kHaveAll = 14,
  kHaveNone = 15,
  kReject = 16,
  kAllowedFast = 17,
  kExtended = 20,
  kHashRequest = 21,
  kHashes = 22,
  kHashReject = 23,
};

// A BEP 52 hash request (also the head of hashes and hash reject).
struct HashRequest {
  std::array<uint8_t, 32> pieces_root{};
  uint32_t base_layer = 0;
  uint32_t index = 0;
  uint32_t length = 0;
  uint32_t proof_layers = 0;
};

struct Message {
  bool keep_alive = false;
  MsgId id = MsgId::kChoke;
  uint32_t index = 0;   // have, request, cancel, reject, suggest, allowed fast, piece
  uint32_t begin = 0;   // request, cancel, reject, piece
  uint32_t length = 0;  // request, cancel, reject
  uint16_t port = 0;    // port (DHT)
  uint8_t extended_id = 0;
  std::string_view payload;  // bitfield, piece data, extended payload, hashes' hashes
  HashRequest hash;          // hash request, hashes, hash reject
};

struct Frame {
  enum class Status : uint8_t { kNeedMore, kMessage, kError };
  Status status = Status::kNeedMore;
  size_t consumed = 0;  // bytes of the buffer this message took (kMessage)
  Message message;      // views into the buffer (kMessage)
  std::string error;    // why the peer is to be dropped (kError)
};

// Reads one message from the front of `buffer`. kNeedMore: not all of it is there yet (nothing
// consumed). kError: a length over `max_length`, an unknown id, or a payload of the wrong size
// for its id; the connection cannot continue.
Frame parse_message(std::string_view buffer, uint32_t max_length);

// Appenders for the messages a seed sends.
void put_keep_alive(std::string& out);
void put_simple(std::string& out, MsgId id);  // choke, unchoke, interested, have all, ...
void put_have(std::string& out, uint32_t index);
void put_bitfield(std::string& out, std::string_view bits);
// request, cancel and reject share a layout
void put_block_message(std::string& out, MsgId id, uint32_t index, uint32_t begin, uint32_t length);
// The 13-byte head of a piece message carrying `length` bytes of data that follow it.
inline constexpr size_t kPieceHeadSize = 13;
void put_piece_head(std::string& out, uint32_t index, uint32_t begin, uint32_t length);
void put_extended(std::string& out, uint8_t extended_id, std::string_view payload);
// hashes (with the hashes that follow) or hash reject
void put_hash_message(std::string& out, MsgId id, const HashRequest& h, std::string_view hashes);

// ---- BEP 10 / BEP 9 -------------------------------------------------------------------------

// Our local ids for the extensions we speak, as announced in our extension handshake.
inline constexpr uint8_t kUtMetadataId = 2;
inline constexpr uint32_t kMetadataPieceSize = 16 * 1024;

struct ExtensionHandshake {
  std::optional<uint8_t> ut_metadata;  // the id the peer wants for ut_metadata, if it speaks it
  std::string client;                  // "v"
  uint32_t reqq = 0;
};

// Parses a peer's extension handshake payload (a bencoded dictionary). Errors: not a
// dictionary, or an ut_metadata id outside 0-255.
Result<ExtensionHandshake> parse_extension_handshake(std::string_view payload);

struct OurExtensionHandshake {
  std::string client;          // "v"
  uint32_t reqq = 0;           // how many requests we queue per peer
  std::string yourip;          // 4 or 16 bytes: the address we see the peer at
  uint64_t metadata_size = 0;  // 0: not sent
  uint16_t listen_port = 0;    // "p", 0: not sent
};
std::string extension_handshake_payload(const OurExtensionHandshake& h);

struct MetadataMessage {
  enum class Type : uint8_t { kRequest = 0, kData = 1, kReject = 2 };
  Type type = Type::kRequest;
  uint32_t piece = 0;
  uint64_t total_size = 0;  // data only
  std::string_view data;    // data only: the bytes after the dictionary
};

// Parses an ut_metadata payload: a bencoded dictionary, followed by the piece's bytes for
// data messages. Errors: no dictionary, a missing or unknown msg_type, a missing piece.
Result<MetadataMessage> parse_metadata_message(std::string_view payload);
std::string metadata_message_payload(MetadataMessage::Type type, uint32_t piece,
                                     uint64_t total_size = 0, std::string_view data = {});

}  // namespace evert::wire
