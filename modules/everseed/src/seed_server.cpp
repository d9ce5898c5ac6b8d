#include "seed_server.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sodium.h>
#include <spdlog/logger.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "evert/hash.h"
#include "evert/tracker/types.h"

namespace evert::everseed {
namespace {

using Clock = std::chrono::steady_clock;
constexpr uint32_t kMaxMessage = 1 << 18;  // nothing a leecher sends a seed is bigger
// Blocks go out in batches of piece messages: one buffer, one sendmsg(), and for blocks not in
// the page cache one hand-over to a worker and back. Batches read on the loop stay small (two
// blocks): bench/seed measured 256 KiB batches 35% slower than 32 KiB ones when the peer's
// requests in flight are the limit, for the same CPU; a hand-over to a worker costs more, so
// disk batches are larger.
constexpr size_t kBatchBytes = 32 * 1024;
constexpr size_t kDiskBatchBytes = 256 * 1024;
constexpr size_t kSmallMessage = 4096;  // small messages are appended to a small last buffer
constexpr int kMaxIov = 64;             // buffers per sendmsg()

}  // namespace

struct SeedServer::Block {
  uint32_t index;
  uint32_t begin;
  uint32_t length;
  friend bool operator==(const Block&, const Block&) = default;
};

struct SeedServer::Listener {
  int fd = -1;
  uint16_t port = 0;
  std::unique_ptr<daemon::FdWatcher> watcher;
};

struct SeedServer::Conn {
  uint64_t id = 0;
  int fd = -1;
  tracker::Endpoint peer;
  std::string address;  // for the per-address cap and logs
  std::string in;
  // Bytes queued for the peer, in order: messages and batches of piece messages. The front is
  // sent up to out_off; out_bytes counts what is unsent. `blocked`: the socket's buffer is full
  // and the writer watches for room.
  std::deque<std::string> out;
  size_t out_off = 0;
  size_t out_bytes = 0;
  bool blocked = false;
  size_t reading = 0;  // bytes of piece messages being read on the workers
  bool handshaken = false;
  bool fast = false;
  bool interested = false;
  std::optional<uint8_t> ut_metadata;
  std::shared_ptr<const Torrent> torrent;
  uint32_t pieces = 0;
  std::deque<Block> queue;
  uint32_t reads = 0;  // in flight on the workers
  Clock::time_point opened = Clock::now();
  Clock::time_point last_heard = Clock::now();
  std::unique_ptr<daemon::FdWatcher> reader;
  std::unique_ptr<daemon::FdWatcher> writer;
};

SeedServer::SeedServer(daemon::EventLoop& loop, daemon::WorkerPool& workers, Catalog& catalog,
                       std::shared_ptr<spdlog::logger> log)
    : loop_(loop),
      workers_(workers),
      catalog_(catalog),
      log_(std::move(log)),
      sweep_timer_(loop, [this] { sweep(); }) {
  // Azureus style (BEP 20): "-ET" + version, then random bytes.
  std::memcpy(peer_id_.data(), "-ET0001-", 8);
  randombytes_buf(peer_id_.data() + 8, 12);
  sweep_timer_.start(std::chrono::seconds(1), true);
}

SeedServer::~SeedServer() {
  stop();
}

Status SeedServer::listen(const sockaddr_storage& addr, unsigned len, const std::string& label) {
  auto fd = tracker::listen_tcp(addr, len, label);
  if (!fd) return fd.error();
  auto l = std::make_unique<Listener>();
  l->fd = *fd;
  l->port = tracker::local_port(*fd);
  Listener* raw = l.get();
  l->watcher = std::make_unique<daemon::FdWatcher>(loop_, *fd, daemon::FdWatcher::kRead,
                                                   [this, raw](short) { accept_from(*raw); });
  listeners_.push_back(std::move(l));
  return Ok{};
}

std::vector<uint16_t> SeedServer::ports() const {
  std::vector<uint16_t> out;
  for (const auto& l : listeners_)
    out.push_back(l->port);
  return out;
}

void SeedServer::stop() {
  for (auto& l : listeners_) {
    l->watcher.reset();
    ::close(l->fd);
  }
  listeners_.clear();
  std::vector<Conn*> all;
  for (auto& [id, c] : conns_)
    all.push_back(c.get());
  for (Conn* c : all)
    close(*c, "");
}

void SeedServer::drop_torrent(const InfoHash& key) {
  std::vector<Conn*> all;
  for (auto& [id, c] : conns_) {
    if (c->torrent && c->torrent->key == key) all.push_back(c.get());
  }
  for (Conn* c : all)
    close(*c, "torrent unpublished");
}

void SeedServer::accept_from(Listener& l) {
  for (int n = 0; n < 64; ++n) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    const int fd =
        accept4(l.fd, reinterpret_cast<sockaddr*>(&ss), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    tracker::Endpoint peer = tracker::endpoint_of(ss);
    std::string address = peer.to_string();
    if (conns_.size() >= static_cast<size_t>(options_.max_connections) ||
        per_address_[address] >= options_.max_per_address) {
      ++counters_.refused;
      if (per_address_[address] == 0) per_address_.erase(address);
      ::close(fd);
      continue;
    }
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    ++per_address_[address];
    ++counters_.connections;
    auto c = std::make_unique<Conn>();
    c->id = next_id_++;
    c->fd = fd;
    c->peer = peer;
    c->address = std::move(address);
    Conn* raw = c.get();
    c->reader = std::make_unique<daemon::FdWatcher>(loop_, fd, daemon::FdWatcher::kRead,
                                                    [this, raw](short) { on_readable(*raw); });
    conns_.emplace(c->id, std::move(c));
  }
}

void SeedServer::on_readable(Conn& c) {
  char buf[16384];
  for (int n = 0; n < 16; ++n) {
    const ssize_t r = ::recv(c.fd, buf, sizeof buf, 0);
    if (r == 0) return close(c, "");
    if (r < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      if (errno == EINTR) continue;
      return close(c, "");
    }
    c.in.append(buf, static_cast<size_t>(r));
    c.last_heard = Clock::now();
    if (static_cast<size_t>(r) < sizeof buf) break;
  }
  if (!c.handshaken) {
    if (c.in.size() < wire::kHandshakeSize) return;
    if (!on_handshake(c)) return;
  }
  size_t off = 0;
  const uint64_t id = c.id;
  while (true) {
    const wire::Frame f = wire::parse_message(std::string_view(c.in).substr(off), kMaxMessage);
    if (f.status == wire::Frame::Status::kNeedMore) break;
    if (f.status == wire::Frame::Status::kError) return close(c, f.error);
    if (!handle(c, f.message)) return;  // closed
    off += f.consumed;
  }
  if (conns_.count(id) == 0) return;
  c.in.erase(0, off);
  pump(c);
}

bool SeedServer::on_handshake(Conn& c) {
  auto h = wire::parse_handshake(c.in);
  if (!h) {
    close(c, h.error().message);
    return false;
  }
  const InfoHash ih =
      InfoHash::from(std::string_view(reinterpret_cast<const char*>(h->info_hash.data()), 20));
  const Published* p = catalog_.find(ih);
  if (p == nullptr) {
    close(c, "handshake for an unknown info-hash " + to_hex(ih.view()));
    return false;
  }
  std::string why;
  c.torrent = catalog_.open(p->key, why);
  if (!c.torrent) {
    close(c, p->name + " is not served: " + why);
    return false;
  }
  c.handshaken = true;
  c.fast = h->fast();
  c.pieces = static_cast<uint32_t>(c.torrent->meta.piece_count());
  c.in.erase(0, wire::kHandshakeSize);

  std::string out;
  // Answer with the hash the peer used: a hybrid is one swarm under two hashes (BEP 52).
  wire::put_handshake(out, ih.view(),
                      std::string_view(reinterpret_cast<const char*>(peer_id_.data()), 20),
                      c.torrent->meta.has_v2());
  if (h->extension_protocol()) {
    wire::OurExtensionHandshake e;
    e.client = "Evertorrent " EVERT_VERSION;
    e.reqq = static_cast<uint32_t>(options_.request_queue);
    e.metadata_size = c.torrent->meta.info_bytes.size();
    e.yourip.assign(reinterpret_cast<const char*>(c.peer.ip.data()),
                    c.peer.family == tracker::Family::kV4 ? 4 : 16);
    wire::put_extended(out, 0, wire::extension_handshake_payload(e));
  }
  if (c.fast) {
    wire::put_simple(out, wire::MsgId::kHaveAll);
  } else {
    std::string bits((c.pieces + 7) / 8, '\xff');
    if (c.pieces % 8 != 0) {
      bits.back() = static_cast<char>(0xFF << (8 - c.pieces % 8));
    }
    wire::put_bitfield(out, bits);
  }
  send(c, std::move(out));
  return conns_.count(c.id) != 0;
}

bool SeedServer::handle(Conn& c, const wire::Message& m) {
  if (m.keep_alive) return true;
  switch (m.id) {
    case wire::MsgId::kInterested:
      if (!c.interested) {
        c.interested = true;
        std::string out;
        wire::put_simple(out, wire::MsgId::kUnchoke);
        send(c, std::move(out));
      }
      return conns_.count(c.id) != 0;
    case wire::MsgId::kNotInterested:
      c.interested = false;
      return true;
    case wire::MsgId::kRequest:
      return on_request(c, m);
    case wire::MsgId::kCancel: {
      const Block b{m.index, m.begin, m.length};
      auto it = std::find(c.queue.begin(), c.queue.end(), b);
      if (it != c.queue.end()) c.queue.erase(it);
      return true;
    }
    case wire::MsgId::kExtended:
      return on_extended(c, m);
    case wire::MsgId::kHashRequest: {
      // v2 piece-layer hashes: not served yet; refused so the peer asks elsewhere.
      std::string out;
      wire::put_hash_message(out, wire::MsgId::kHashReject, m.hash, {});
      send(c, std::move(out));
      return conns_.count(c.id) != 0;
    }
    case wire::MsgId::kPiece:
      close(c, "sent a piece to a seed");
      return false;
    default:
      return true;  // have, bitfield, have all/none, port, suggest, allowed fast: nothing to do
  }
}

bool SeedServer::on_request(Conn& c, const wire::Message& m) {
  const Metainfo& meta = c.torrent->meta;
  const uint64_t piece_len = meta.piece_length;
  const uint64_t stream = meta.has_v1() ? meta.stream_size : meta.total_size;
  bool ok =
      m.index < c.pieces && m.length > 0 && m.length <= static_cast<uint32_t>(options_.max_block);
  if (ok) {
    const uint64_t start = uint64_t{m.index} * piece_len;
    const uint64_t size = std::min<uint64_t>(piece_len, stream - start);
    ok = uint64_t{m.begin} + m.length <= size;
  }
  if (!ok && !c.fast) {
    close(c, "bad request: piece " + std::to_string(m.index) + " offset " +
                 std::to_string(m.begin) + " length " + std::to_string(m.length));
    return false;
  }
  if (!ok || !c.interested || c.queue.size() >= static_cast<size_t>(options_.request_queue)) {
    std::string out;
    wire::put_block_message(out, wire::MsgId::kReject, m.index, m.begin, m.length);
    send(c, std::move(out));
    return conns_.count(c.id) != 0;
  }
  c.queue.push_back({m.index, m.begin, m.length});
  return true;
}

bool SeedServer::on_extended(Conn& c, const wire::Message& m) {
  if (m.extended_id == 0) {
    auto h = wire::parse_extension_handshake(m.payload);
    if (!h) {
      close(c, h.error().message);
      return false;
    }
    c.ut_metadata = h->ut_metadata;
    return true;
  }
  if (m.extended_id != wire::kUtMetadataId) return true;  // an extension we did not offer
  auto md = wire::parse_metadata_message(m.payload);
  if (!md) {
    close(c, md.error().message);
    return false;
  }
  if (md->type != wire::MetadataMessage::Type::kRequest || !c.ut_metadata) return true;
  const std::string& info = c.torrent->meta.info_bytes;
  const uint64_t at = uint64_t{md->piece} * wire::kMetadataPieceSize;
  std::string out;
  if (at >= info.size()) {
    wire::put_extended(
        out, *c.ut_metadata,
        wire::metadata_message_payload(wire::MetadataMessage::Type::kReject, md->piece));
  } else {
    ++counters_.metadata_pieces;
    wire::put_extended(out, *c.ut_metadata,
                       wire::metadata_message_payload(
                           wire::MetadataMessage::Type::kData, md->piece, info.size(),
                           std::string_view(info).substr(at, wire::kMetadataPieceSize)));
  }
  send(c, std::move(out));
  return conns_.count(c.id) != 0;
}

// Serves queued requests while the peer's send buffer has room, a batch at a time: the blocks
// the page cache holds are read here on the loop thread (no hand-over to a worker for hot data),
// the rest of the batch on a worker. A peer has at most `send_buffer` bytes queued or being read
// (plus one batch) and `reads_in_flight` worker reads.
void SeedServer::pump(Conn& c) {
  const auto budget = static_cast<size_t>(options_.send_buffer);
  const uint64_t piece_len = c.torrent->meta.piece_length;
  std::vector<Block> blocks;
  std::string msg;
  // Moves queued requests into the batch, as piece messages with room for their data, until
  // the batch holds `limit` bytes.
  auto take = [&](size_t limit) {
    msg.reserve(limit + wire::kPieceHeadSize + static_cast<size_t>(options_.max_block));
    while (!c.queue.empty() && msg.size() < limit) {
      const Block b = c.queue.front();
      c.queue.pop_front();
      blocks.push_back(b);
      wire::put_piece_head(msg, b.index, b.begin, b.length);
      msg.resize(msg.size() + b.length);
    }
  };
  while (!c.queue.empty() && c.out_bytes + c.reading < budget &&
         c.reads < static_cast<uint32_t>(options_.reads_in_flight)) {
    const size_t room = budget - (c.out_bytes + c.reading);
    blocks.clear();
    msg.clear();
    take(std::min(kBatchBytes, room));
    // The blocks in the page cache, in order, up to the first that is not.
    size_t at = 0;
    size_t hot = 0;
    uint64_t hot_bytes = 0;
    for (; hot < blocks.size(); ++hot) {
      const Block& b = blocks[hot];
      const size_t head = at + wire::kPieceHeadSize;
      auto r = c.torrent->read_cached(uint64_t{b.index} * piece_len + b.begin, msg.data() + head,
                                      b.length);
      if (!r) {
        log_->error("{}: {}", c.torrent->meta.name, r.error().message);
        return close(c, "");
      }
      if (*r < b.length) break;
      at = head + b.length;
      hot_bytes += b.length;
    }
    if (hot == blocks.size()) {
      counted(c, hot, hot_bytes);
      send(c, std::move(msg));
      if (conns_.count(c.id) == 0) return;
      continue;
    }
    std::string cold = msg.substr(at);
    msg.resize(at);
    blocks.erase(blocks.begin(), blocks.begin() + static_cast<std::ptrdiff_t>(hot));
    if (hot > 0) {
      counted(c, hot, hot_bytes);
      send(c, std::move(msg));
      if (conns_.count(c.id) == 0) return;
    } else {
      msg = std::move(cold);  // the disk it is: a larger batch for the worker
      take(std::min(kDiskBatchBytes, room));
      cold = std::move(msg);
    }
    read_on_worker(c, std::move(blocks), std::move(cold));
    blocks = {};
    msg = {};
  }
}

// Reads a batch of piece messages (heads written, data to fill) on a worker, then queues it.
void SeedServer::read_on_worker(Conn& c, std::vector<Block> blocks, std::string msg) {
  ++c.reads;
  ++counters_.disk_reads;
  c.reading += msg.size();
  workers_.submit([this, id = c.id, t = c.torrent, blocks = std::move(blocks),
                   msg = std::move(msg)]() mutable {
    Status s = Ok{};
    uint64_t bytes = 0;
    size_t at = 0;
    for (const Block& b : blocks) {
      at += wire::kPieceHeadSize;
      s = t->read(uint64_t{b.index} * t->meta.piece_length + b.begin, msg.data() + at, b.length);
      if (!s) break;
      at += b.length;
      bytes += b.length;
    }
    loop_.post(
        [this, id, n = blocks.size(), bytes, s = std::move(s), msg = std::move(msg)]() mutable {
          auto it = conns_.find(id);
          if (it == conns_.end()) return;
          Conn& conn = *it->second;
          --conn.reads;
          conn.reading -= msg.size();
          if (!s) {
            log_->error("{}: {}", conn.torrent->meta.name, s.error().message);
            return close(conn, "");
          }
          counted(conn, n, bytes);
          send(conn, std::move(msg));
          if (conns_.count(id) != 0) pump(conn);
        });
  });
}

void SeedServer::counted(Conn& c, size_t blocks, uint64_t bytes) {
  counters_.blocks += blocks;
  counters_.bytes += bytes;
  catalog_.count_upload(c.torrent->key, bytes);
}

// Queues `bytes` and sends what the socket takes now (unless it is known to be full).
void SeedServer::send(Conn& c, std::string bytes) {
  if (bytes.empty()) return;
  c.out_bytes += bytes.size();
  if (bytes.size() <= kSmallMessage && !c.out.empty() && c.out.back().size() <= kSmallMessage) {
    c.out.back() += bytes;
  } else {
    c.out.push_back(std::move(bytes));
  }
  if (!c.blocked) flush(c);
}

// Sends queued bytes until the socket is full (then the writer watches for room) or none are
// left. Returns false when the connection was closed.
bool SeedServer::flush(Conn& c) {
  while (c.out_bytes > 0) {
    std::array<iovec, kMaxIov> iov{};
    size_t n = 0;
    size_t skip = c.out_off;
    for (auto it = c.out.begin(); it != c.out.end() && n < iov.size(); ++it, skip = 0) {
      iov[n++] = {it->data() + skip, it->size() - skip};
    }
    msghdr mh{};
    mh.msg_iov = iov.data();
    mh.msg_iovlen = n;
    const ssize_t sent = ::sendmsg(c.fd, &mh, MSG_NOSIGNAL);
    if (sent < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        c.blocked = true;
        if (!c.writer) {
          Conn* raw = &c;
          c.writer = std::make_unique<daemon::FdWatcher>(loop_, c.fd, daemon::FdWatcher::kWrite,
                                                         [this, raw](short) {
                                                           if (flush(*raw)) pump(*raw);
                                                         });
        } else {
          c.writer->start();
        }
        return true;
      }
      close(c, "");
      return false;
    }
    auto left = static_cast<size_t>(sent);
    c.out_bytes -= left;
    while (left > 0) {
      const size_t front = c.out.front().size() - c.out_off;
      if (left < front) {
        c.out_off += left;
        break;
      }
      left -= front;
      c.out.pop_front();
      c.out_off = 0;
    }
  }
  // Stopped, not destroyed: this may run inside the writer's own callback, whose captures are
  // still in use after flush() returns.
  if (c.blocked) {
    c.blocked = false;
    c.writer->stop();
  }
  return true;
}

void SeedServer::close(Conn& c, const std::string& why) {
  if (!why.empty()) {
    ++counters_.dropped;
    log_->info("peer {} dropped: {}", c.address, why);
  }
  if (c.reader) c.reader->stop();
  if (c.writer) c.writer->stop();
  ::close(c.fd);
  if (auto it = per_address_.find(c.address); it != per_address_.end() && --it->second <= 0) {
    per_address_.erase(it);
  }
  // Destroyed at the next sweep: this may run inside the connection's own watcher callback.
  auto it = conns_.find(c.id);
  graveyard_.push_back(std::move(it->second));
  conns_.erase(it);
}

void SeedServer::sweep() {
  graveyard_.clear();
  const auto now = Clock::now();
  std::vector<Conn*> late;
  for (auto& [id, c] : conns_) {
    if (!c->handshaken && now - c->opened > std::chrono::seconds(options_.handshake_timeout)) {
      late.push_back(c.get());
    } else if (now - c->last_heard > std::chrono::seconds(options_.idle_timeout)) {
      late.push_back(c.get());
    }
  }
  for (Conn* c : late)
    close(*c, c->handshaken ? "idle" : "no handshake in time");
}

}  // namespace evert::everseed
