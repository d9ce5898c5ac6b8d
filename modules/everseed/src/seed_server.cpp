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
#include <map>

#include "evert/hash.h"
#include "evert/merkle.h"
#include "evert/mse.h"
#include "evert/tracker/types.h"
#include "peer_stream.h"

namespace evert::everseed {
namespace {

constexpr uint32_t kMaxMessage = 1 << 18;  // nothing a leecher sends a seed is bigger
// Hashes answered per request: BEP 52 says a request SHOULD NOT ask for more than 512, and 512
// piece hashes is what libtorrent asks for at once.
constexpr uint32_t kMaxHashes = 512;
// How often peers waiting for bandwidth are looked at, while any are.
constexpr auto kBandwidthTick = std::chrono::milliseconds(20);
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

struct SeedServer::Listener {
  int fd = -1;
  uint16_t port = 0;
  std::unique_ptr<daemon::FdWatcher> watcher;
};

struct SeedServer::Conn {
  uint64_t id = 0;
  std::unique_ptr<PeerStream> stream;  // TCP or uTP
  bool closed = false;                 // parked until the next sweep
  tracker::Endpoint peer;
  std::string address;    // "ip:port", for logs
  std::string limit_key;  // what max_per_address counts by (address_key())
  std::string in;
  // Bytes queued for the peer, in order: messages and batches of piece messages. The front is
  // sent up to out_off; out_bytes counts what is unsent. `blocked`: the stream took less than
  // offered, and says when it has room (PeerStream::Event::kWritable).
  std::deque<std::string> out;
  size_t out_off = 0;
  size_t out_bytes = 0;
  bool blocked = false;
  size_t reading = 0;  // bytes of piece messages being read on the workers
  // The first bytes tell a plaintext handshake from an encrypted one (MSE/PE): `sniffed` once
  // they did; `mse` while the encrypted handshake runs; `enc`/`dec` for an RC4 stream after it,
  // `mse_skey` the hash it named.
  bool sniffed = false;
  std::unique_ptr<mse::Responder> mse;
  std::unique_ptr<mse::Rc4> enc;
  std::unique_ptr<mse::Rc4> dec;
  std::optional<InfoHash> mse_skey;
  bool handshaken = false;
  // Its torrent is being opened on a worker (Catalog::open_or_wait): the handshake waits.
  bool opening = false;
  std::optional<std::string> open_failed;  // why its torrent could not be opened
  bool waiting_bw = false;                 // in bw_wait_
  ChokeState choke;
  std::shared_ptr<const Torrent> torrent;
  Swarm* swarm = nullptr;  // set with torrent
  // The session after the handshake (peer_session.h): requests queued, extensions agreed.
  std::unique_ptr<PeerSession> session;
  uint32_t reads = 0;  // in flight on the workers
  Clock::time_point opened = Clock::now();
  Clock::time_point last_heard = Clock::now();
  Clock::time_point last_sent = Clock::now();
};

// A torrent being served: exists while it has peers.
struct SeedServer::Swarm {
  InfoHash key;
  std::shared_ptr<const Torrent> torrent;  // the latest opened
  std::vector<Conn*> peers;
  TokenBucket bucket;
  Clock::time_point checked;  // its files, last
  // BEP 52: files by pieces root, and their trees above the piece layer, built when first asked.
  bool roots_indexed = false;
  std::map<Sha256Digest, size_t> file_of_root;
  std::map<Sha256Digest, std::unique_ptr<merkle::PieceTree>> trees;
};

SeedServer::SeedServer(daemon::EventLoop& loop, daemon::WorkerPool& workers, Catalog& catalog,
                       std::shared_ptr<spdlog::logger> log)
    : loop_(loop),
      workers_(workers),
      catalog_(catalog),
      log_(std::move(log)),
      data_check_(loop, workers, catalog,
                  [this](const InfoHash& key, const std::string& why) { on_problem(key, why); }),
      sweep_timer_(loop, [this] { sweep(); }),
      choke_timer_(loop, [this] { rechoke_all(ChokeStep::kRotate); }),
      optimistic_timer_(loop, [this] { rechoke_all(ChokeStep::kRotateOptimistic); }),
      bandwidth_timer_(loop, [this] { serve_waiting(); }) {
  // Azureus style (BEP 20): "-ET" + version, then random bytes.
  std::memcpy(peer_id_.data(), "-ET0001-", 8);
  randombytes_buf(peer_id_.data() + 8, 12);
  sweep_timer_.start(std::chrono::seconds(1), true);
  restart_timers();
}

SeedServer::~SeedServer() {
  *alive_ = false;
  stop();
}

void SeedServer::set_options(const EverseedSection& o) {
  const bool timers = o.unchoke_interval != options_.unchoke_interval ||
                      o.optimistic_unchoke_interval != options_.optimistic_unchoke_interval;
  const bool slots =
      o.upload_slots != options_.upload_slots ||
      (o.optimistic_unchoke_interval == 0) != (options_.optimistic_unchoke_interval == 0);
  options_ = o;
  if (timers) restart_timers();
  if (slots) rechoke_all(ChokeStep::kSettle);
  if (!bw_wait_.empty() && !bandwidth_timer_.active())
    bandwidth_timer_.start(kBandwidthTick, false);
}

void SeedServer::restart_timers() {
  choke_timer_.start(std::chrono::seconds(options_.unchoke_interval), true);
  if (options_.optimistic_unchoke_interval > 0) {
    optimistic_timer_.start(std::chrono::seconds(options_.optimistic_unchoke_interval), true);
  } else {
    optimistic_timer_.stop();
  }
}

size_t SeedServer::unchoked() const {
  size_t n = 0;
  for (const auto& [id, c] : conns_)
    n += c->choke.unchoked ? 1 : 0;
  return n;
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
  bw_wait_.clear();
  choke_timer_.stop();
  optimistic_timer_.stop();
  bandwidth_timer_.stop();
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
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    const bool taken = accept(tracker::endpoint_of(ss), [this, fd](PeerStream::Notify notify) {
      return tcp_stream(loop_, fd, std::move(notify));
    });
    if (!taken) ::close(fd);
  }
}

bool SeedServer::accept(
    const tracker::Endpoint& peer,
    const std::function<std::unique_ptr<PeerStream>(PeerStream::Notify)>& make) {
  std::string key = tracker::address_key(peer);
  if (conns_.size() >= static_cast<size_t>(options_.max_connections) ||
      per_address_[key] >= options_.max_per_address) {
    ++counters_.refused;
    if (per_address_[key] == 0) per_address_.erase(key);
    return false;
  }
  ++per_address_[key];
  ++counters_.connections;
  auto c = std::make_unique<Conn>();
  c->id = next_id_++;
  c->peer = peer;
  c->address = peer.to_string();
  c->limit_key = std::move(key);
  Conn* raw = c.get();
  c->stream = make([this, raw](PeerStream::Event e) {
    if (raw->closed) return;
    if (e == PeerStream::Event::kReadable) return on_readable(*raw);
    raw->blocked = false;
    if (flush(*raw)) pump(*raw);
  });
  conns_.emplace(c->id, std::move(c));
  return true;
}

void SeedServer::on_readable(Conn& c) {
  char buf[16384];
  for (int n = 0; n < 16; ++n) {
    const ssize_t r = c.stream->read(buf, sizeof buf);
    if (r < 0) return close(c, c.stream->why().empty() ? "" : c.stream->why());
    if (r == 0) break;
    if (c.dec) c.dec->apply(buf, static_cast<size_t>(r));
    c.in.append(buf, static_cast<size_t>(r));
    c.last_heard = Clock::now();
    if (static_cast<size_t>(r) < sizeof buf) break;
  }
  if (!c.sniffed && !on_first_bytes(c)) return;
  if (!c.handshaken) {
    if (c.in.size() < wire::kHandshakeSize) return;
    if (c.opening) {
      // A peer waits for the answer to its handshake; one that sends on meanwhile is not one.
      if (c.in.size() > wire::kHandshakeSize + 64 * 1024)
        close(c, "too much sent before the answer");
      return;
    }
    if (!on_handshake(c)) return;
  }
  // The session reads the messages (peer_session.h, pure); what it says is done here.
  size_t off = 0;
  const uint64_t id = c.id;
  c.session->set_limits(session_limits());
  while (true) {
    SessionStep step = c.session->read(std::string_view(c.in).substr(off), c.choke.unchoked);
    off += step.consumed;
    counters_.metadata_pieces += step.metadata_pieces;
    if (!step.send.empty()) {
      send(c, std::move(step.send));
      if (conns_.count(id) == 0) return;
    }
    if (step.close) return close(c, *step.close);
    for (const wire::HashRequest& h : step.hash_requests) {
      if (!on_hash_request(c, h)) return;  // closed
    }
    if (!step.interested) break;
    if (!on_interest(c, *step.interested)) return;  // rechoked, then the next messages
  }
  c.in.erase(0, off);
  pump(c);
}

// Tells a plaintext BitTorrent handshake (byte 19, "BitTorrent protocol") from the start of an
// encrypted one (MSE: 96 bytes of a Diffie-Hellman key, which begin so with a chance of 2^-160),
// and runs the encrypted handshake to its end. Returns true when the plaintext BitTorrent
// stream can be read from c.in; false when more bytes are needed or the connection was closed.
bool SeedServer::on_first_bytes(Conn& c) {
  if (!c.mse) {
    if (c.in.empty()) return false;
    const size_t n = std::min(c.in.size(), wire::kProtocol.size() + 1);
    const bool plain = static_cast<uint8_t>(c.in[0]) == wire::kProtocol.size() &&
                       std::string_view(c.in).substr(1, n - 1) == wire::kProtocol.substr(0, n - 1);
    if (plain) {
      if (n < wire::kProtocol.size() + 1) return false;
      if (options_.encryption == "require") {
        close(c, "a plaintext handshake (everseed.encryption is require)");
        return false;
      }
      c.sniffed = true;
      return true;
    }
    const uint32_t allowed =
        options_.encryption == "require" ? mse::kRc4 : mse::kPlaintext | mse::kRc4;
    c.mse = std::make_unique<mse::Responder>(
        allowed, options_.encryption != "allow", [this, &c](const mse::Hash20& req2) {
          InfoHash which;
          const Published* p = catalog_.find_obfuscated(Sha1Digest{req2}, which);
          if (p == nullptr) return std::optional<mse::Hash20>();
          c.mse_skey = which;
          mse::Hash20 out;
          std::memcpy(out.data(), which.view().data(), out.size());
          return std::optional<mse::Hash20>(out);
        });
  }
  std::string out;
  const mse::Step step = c.mse->feed(c.in, out);
  c.in.clear();
  const uint64_t id = c.id;
  send(c, std::move(out));  // its own encryption: c.enc is set only once it is done
  if (conns_.count(id) == 0) return false;
  if (step == mse::Step::kError) {
    close(c, "encrypted handshake: " + c.mse->error());
    return false;
  }
  if (step == mse::Step::kNeedMore) return false;
  ++counters_.encrypted;
  if (c.mse->selected() == mse::kRc4) ++counters_.encrypted_rc4;
  c.enc = c.mse->take_encryptor();
  c.dec = c.mse->take_decryptor();
  c.in = c.mse->take_payload();
  c.mse.reset();
  c.sniffed = true;
  return true;
}

bool SeedServer::on_handshake(Conn& c) {
  auto h = wire::parse_handshake(c.in);
  if (!h) {
    close(c, h.error().message);
    return false;
  }
  const InfoHash ih =
      InfoHash::from(std::string_view(reinterpret_cast<const char*>(h->info_hash.data()), 20));
  if (c.mse_skey && ih != *c.mse_skey) {
    close(c, "its handshake names another torrent than its encrypted handshake");
    return false;
  }
  const Published* p = catalog_.find(ih);
  if (p == nullptr) {
    close(c, "handshake for an unknown info-hash " + to_hex(ih.view()));
    return false;
  }
  std::string why;
  if (c.open_failed) {
    why = *c.open_failed;
  } else if (!c.torrent) {
    c.torrent = catalog_.open_or_wait(
        p->key, why, [this, id = c.id](std::shared_ptr<const Torrent> t, const std::string& w) {
          auto it = conns_.find(id);
          if (it == conns_.end() || it->second->closed) return;
          Conn& conn = *it->second;
          conn.opening = false;
          conn.torrent = std::move(t);
          if (!conn.torrent) conn.open_failed = w.empty() ? "not served" : w;
          on_readable(conn);  // the handshake goes on
        });
    if (!c.torrent && why.empty()) {
      c.opening = true;  // opened on a worker: the callback goes on
      return false;
    }
  }
  if (!c.torrent) {
    const InfoHash key = p->key;
    close(c, p->name + " is not served: " + why);
    drop_torrent(key);  // peers of an earlier opening of it, if any
    if (!p->problem.empty() && on_stopped_) on_stopped_(key);
    return false;
  }
  if (auto sw = swarms_.find(p->key);
      sw != swarms_.end() &&
      sw->second->peers.size() >= static_cast<size_t>(options_.max_per_torrent)) {
    ++counters_.refused;
    close(c, "");  // not an error: the torrent has all the peers it takes
    return false;
  }
  c.handshaken = true;
  join_swarm(c);
  c.session = std::make_unique<PeerSession>(c.torrent->meta, h->fast(), session_limits());
  c.in.erase(0, wire::kHandshakeSize);

  // A hybrid is one swarm under two hashes: the answer is the hash the peer used, or the v2
  // hash when it offers the upgrade (BEP 52).
  const Metainfo& meta = c.torrent->meta;
  std::optional<wire::Hash20> v1;
  std::optional<wire::Hash20> v2;
  if (meta.has_v1()) v1 = meta.info_hash_v1->bytes;
  if (meta.has_v2()) v2 = meta.info_hash_v2_truncated().bytes;
  const auto answer = wire::answer_handshake(*h, v1, v2);
  if (!answer) {
    close(c, "handshake hash matches neither of " + meta.name + "'s");
    return false;
  }
  std::string hs;
  wire::put_handshake(hs,
                      std::string_view(reinterpret_cast<const char*>(answer->info_hash.data()), 20),
                      std::string_view(reinterpret_cast<const char*>(peer_id_.data()), 20));
  // Over uTP the handshake goes alone, the messages after it in a write (so a packet) of their
  // own: Transmission 3.00 reads nothing after the handshake in the uTP packet that brought it
  // until another packet comes (peer-io.c re-reads its buffer for TCP only), so the extension
  // handshake and have-all that shared its packet waited a minute for a keep-alive. Over TCP
  // one write: two cost libtorrent's first request some 40 ms (bench/seed).
  std::string out;
  if (c.stream->packets()) {
    send(c, std::move(hs));
    if (conns_.count(c.id) == 0) return false;
  } else {
    out = std::move(hs);
  }
  if (h->extension_protocol()) {
    wire::OurExtensionHandshake e;
    e.client = "Evertorrent " EVERT_VERSION;
    e.reqq = static_cast<uint32_t>(options_.request_queue);
    e.metadata_size = c.torrent->meta.info_bytes.size();
    e.yourip.assign(reinterpret_cast<const char*>(c.peer.ip.data()),
                    c.peer.family == tracker::Family::kV4 ? 4 : 16);
    wire::put_extended(out, 0, wire::extension_handshake_payload(e));
  }
  if (c.session->fast()) {
    wire::put_simple(out, wire::MsgId::kHaveAll);
  } else {
    const uint32_t pieces = c.session->pieces();
    std::string bits((pieces + 7) / 8, '\xff');
    if (pieces % 8 != 0) {
      bits.back() = static_cast<char>(0xFF << (8 - pieces % 8));
    }
    wire::put_bitfield(out, bits);
  }
  send(c, std::move(out));
  return conns_.count(c.id) != 0;
}

SessionLimits SeedServer::session_limits() const {
  SessionLimits l;
  l.max_block = static_cast<uint32_t>(options_.max_block);
  l.request_queue = static_cast<size_t>(options_.request_queue);
  l.max_message = kMaxMessage;
  return l;
}

// Serves queued requests while the peer's send buffer has room and the upload rate limits
// allow, a batch at a time (serve_batch()). A peer has at most `send_buffer` bytes queued or
// being read (plus one batch) and `reads_in_flight` worker reads.
void SeedServer::pump(Conn& c) {
  if (c.waiting_bw) return;  // its turn comes in serve_waiting()
  const auto now = Clock::now();
  while (can_read(c)) {
    if (!bandwidth_ready(c, now)) {
      c.waiting_bw = true;
      bw_wait_.push_back(c.id);
      if (!bandwidth_timer_.active()) bandwidth_timer_.start(kBandwidthTick, false);
      return;
    }
    if (!serve_batch(c)) return;
  }
}

bool SeedServer::can_read(const Conn& c) const {
  return c.session && !c.session->queue().empty() &&
         c.out_bytes + c.reading < static_cast<size_t>(options_.send_buffer) &&
         c.reads < static_cast<uint32_t>(options_.reads_in_flight);
}

bool SeedServer::limited() const {
  return options_.max_upload_rate != 0 || options_.max_upload_rate_per_torrent != 0;
}

// Whether both buckets allow a send now. Peers already waiting go first: a newcomer joins the
// queue rather than taking what refilled.
bool SeedServer::bandwidth_ready(Conn& c, Clock::time_point now) {
  if (!limited()) return true;
  if (!c.waiting_bw && !bw_wait_.empty()) return false;
  const bool global = global_bucket_.ready(options_.max_upload_rate, now);
  return c.swarm->bucket.ready(options_.max_upload_rate_per_torrent, now) && global;
}

// One batch of queued requests (can_read() said there is room): the blocks the page cache holds
// are read here on the loop thread (no hand-over to a worker for hot data), the rest of the
// batch on a worker. The batch's bytes are taken from the rate limits' buckets. Returns false
// when the connection was closed.
bool SeedServer::serve_batch(Conn& c) {
  const size_t room = static_cast<size_t>(options_.send_buffer) - (c.out_bytes + c.reading);
  const uint64_t piece_len = c.torrent->meta.piece_length;
  std::vector<Block> blocks;
  std::string msg;
  uint64_t batch_bytes = 0;
  // Moves queued requests into the batch, as piece messages with room for their data, until
  // the batch holds `limit` bytes.
  auto take = [&](size_t limit) {
    msg.reserve(limit + wire::kPieceHeadSize + static_cast<size_t>(options_.max_block));
    std::deque<Block>& queue = c.session->queue();
    while (!queue.empty() && msg.size() < limit) {
      const Block b = queue.front();
      queue.pop_front();
      blocks.push_back(b);
      batch_bytes += b.length;
      wire::put_piece_head(msg, b.index, b.begin, b.length);
      msg.resize(msg.size() + b.length);
    }
  };
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
      close(c, "");
      return false;
    }
    if (*r < b.length) break;
    at = head + b.length;
    hot_bytes += b.length;
  }
  if (hot < blocks.size() && hot == 0 && !limited()) {
    take(std::min(kDiskBatchBytes, room));  // the disk it is: a larger batch for the worker
  }
  global_bucket_.take(options_.max_upload_rate, batch_bytes);
  c.swarm->bucket.take(options_.max_upload_rate_per_torrent, batch_bytes);
  if (hot == blocks.size()) {
    counted(c, hot, hot_bytes);
    send(c, std::move(msg));
    return conns_.count(c.id) != 0;
  }
  std::string cold;
  if (hot == 0) {
    cold = std::move(msg);
  } else {
    cold = msg.substr(at);
    msg.resize(at);
    blocks.erase(blocks.begin(), blocks.begin() + static_cast<std::ptrdiff_t>(hot));
    counted(c, hot, hot_bytes);
    send(c, std::move(msg));
    if (conns_.count(c.id) == 0) return false;
  }
  read_on_worker(c, std::move(blocks), std::move(cold));
  return true;
}

// Round-robin over the peers waiting for bandwidth, one batch each per turn, while the buckets
// allow; then again a tick later if anyone still waits.
void SeedServer::serve_waiting() {
  const auto now = Clock::now();
  bool progress = true;
  while (progress && !bw_wait_.empty()) {
    progress = false;
    for (size_t i = 0, n = bw_wait_.size(); i < n; ++i) {
      const uint64_t id = bw_wait_.front();
      bw_wait_.pop_front();
      auto it = conns_.find(id);
      if (it == conns_.end()) continue;
      Conn& c = *it->second;
      if (!can_read(c)) {
        c.waiting_bw = false;  // pump() puts it back when it has something to read
        continue;
      }
      bw_wait_.push_back(id);
      if (bandwidth_ready(c, now)) {
        if (serve_batch(c)) progress = true;
      }
    }
  }
  if (!bw_wait_.empty()) bandwidth_timer_.start(kBandwidthTick, false);
}

// Reads a batch of piece messages (heads written, data to fill) on a worker, then queues it.
void SeedServer::read_on_worker(Conn& c, std::vector<Block> blocks, std::string msg) {
  ++c.reads;
  ++counters_.disk_reads;
  c.reading += msg.size();
  workers_.submit([this, &loop = loop_, alive = std::weak_ptr<bool>(alive_), id = c.id,
                   t = c.torrent, blocks = std::move(blocks), msg = std::move(msg)]() mutable {
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
    loop.post([this, alive, id, n = blocks.size(), bytes, s = std::move(s),
               msg = std::move(msg)]() mutable {
      if (alive.expired()) return;
      auto it = conns_.find(id);
      if (it == conns_.end()) return;
      Conn& conn = *it->second;
      --conn.reads;
      conn.reading -= msg.size();
      if (!s) {
        log_->error("{}: {}", conn.torrent->meta.name, s.error().message);
        return close(conn, "");
      }
      // Choked since it asked: a fast peer still gets what was read (BEP 6 lets a seed
      // serve a request after choking); for the others choking discarded the request.
      if (!conn.choke.unchoked && !conn.session->fast()) return pump(conn);
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
  c.last_sent = Clock::now();
  // RC4 is a stream: bytes are encrypted in the order they are queued, which is the order
  // they are sent.
  if (c.enc) c.enc->apply(bytes.data(), bytes.size());
  c.out_bytes += bytes.size();
  if (bytes.size() <= kSmallMessage && !c.out.empty() && c.out.back().size() <= kSmallMessage) {
    c.out.back() += bytes;
  } else {
    c.out.push_back(std::move(bytes));
  }
  if (!c.blocked && !flush(c)) return;
  // Reading pieces stops at send_buffer; the rest a peer can make us queue (metadata, hashes,
  // rejects) is bounded here: a peer that keeps asking and does not read is dropped.
  const size_t cap = static_cast<size_t>(options_.send_buffer) + kDiskBatchBytes +
                     static_cast<size_t>(options_.max_block) + (1u << 20);
  if (c.out_bytes > cap) close(c, "does not read what it asks for");
}

// Writes queued bytes until the stream takes less than offered (then it says when it has room)
// or none are left. Returns false when the connection was closed.
bool SeedServer::flush(Conn& c) {
  while (c.out_bytes > 0 && !c.blocked) {
    std::array<iovec, kMaxIov> iov{};
    size_t n = 0;
    size_t skip = c.out_off;
    for (auto it = c.out.begin(); it != c.out.end() && n < iov.size(); ++it, skip = 0) {
      iov[n++] = {it->data() + skip, it->size() - skip};
    }
    const ssize_t sent = c.stream->write(iov.data(), static_cast<int>(n));
    if (sent < 0) {
      close(c, "");
      return false;
    }
    if (sent == 0) {
      c.blocked = true;
      return true;
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
  return true;
}

void SeedServer::close(Conn& c, const std::string& why) {
  if (!why.empty()) {
    ++counters_.dropped;
    log_->info("peer {} dropped: {}", c.address, why);
  }
  leave_swarm(c);
  c.closed = true;
  c.stream->close();
  if (auto it = per_address_.find(c.limit_key); it != per_address_.end() && --it->second <= 0) {
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
  // A keep-alive after half the silence we allow a peer (idle_timeout, 60 s by default; BEP 3:
  // "generally sent once every two minutes"): clients drop a silent peer after two minutes
  // (Transmission) or a few, and a seed whose downloader is done or choked has nothing else to
  // say.
  const auto quiet_for = std::chrono::seconds(std::max(5, options_.idle_timeout / 2));
  std::vector<uint64_t> quiet;
  for (auto& [id, c] : conns_) {
    if (c->handshaken && now - c->last_sent > quiet_for) quiet.push_back(id);
  }
  for (uint64_t id : quiet) {
    if (auto it = conns_.find(id); it != conns_.end()) {
      std::string ka;
      wire::put_keep_alive(ka);
      send(*it->second, std::move(ka));
    }
  }
  // The files of the torrents being served, every check_interval.
  for (auto& [key, sw] : swarms_) {
    if (now - sw->checked >= std::chrono::seconds(options_.check_interval)) {
      sw->checked = now;
      data_check_.check(key, catalog_.stamps(key));  // as recorded now (a verify renews them)
    }
  }
}

void SeedServer::on_problem(const InfoHash& key, const std::string& why) {
  const Published* p = catalog_.find(key);
  if (p == nullptr) return;
  if (p->problem.empty()) log_->warn("{} is not served any more: {}", p->name, why);
  catalog_.set_problem(key, why);
  drop_torrent(key);
  if (on_stopped_) on_stopped_(key);
}

// ---- choking ------------------------------------------------------------------------------

ChokePolicy SeedServer::policy() const {
  ChokePolicy p;
  p.slots = options_.upload_slots;
  p.optimistic = options_.optimistic_unchoke_interval > 0;
  p.rotation = std::chrono::seconds(options_.unchoke_interval);
  return p;
}

void SeedServer::join_swarm(Conn& c) {
  auto& sw = swarms_[c.torrent->key];
  if (!sw) {
    sw = std::make_unique<Swarm>();
    sw->key = c.torrent->key;
    sw->checked = Clock::now();  // open() has just checked the files
  }
  sw->torrent = c.torrent;
  sw->peers.push_back(&c);
  c.swarm = sw.get();
}

void SeedServer::leave_swarm(Conn& c) {
  Swarm* sw = c.swarm;
  if (sw == nullptr) return;
  c.swarm = nullptr;
  std::erase(sw->peers, &c);
  if (sw->peers.empty()) {
    swarms_.erase(sw->key);
  } else if (c.choke.unchoked) {
    settle_later(sw->key);  // its slot goes to the next peer (not from inside close())
  }
}

void SeedServer::settle_later(const InfoHash& key) {
  if (std::find(to_settle_.begin(), to_settle_.end(), key) != to_settle_.end()) return;
  to_settle_.push_back(key);
  if (to_settle_.size() > 1) return;
  loop_.post([this, alive = std::weak_ptr<bool>(alive_)] {
    if (alive.expired()) return;
    auto keys = std::move(to_settle_);
    to_settle_.clear();
    for (const InfoHash& k : keys)
      rechoke(k, ChokeStep::kSettle);
  });
}

void SeedServer::rechoke_all(ChokeStep step) {
  std::vector<InfoHash> keys;
  keys.reserve(swarms_.size());
  for (const auto& [k, sw] : swarms_)
    keys.push_back(k);
  for (const InfoHash& k : keys)
    rechoke(k, step);
}

// Runs the choker over one torrent's peers and tells each peer whose state changed. Sending
// may close connections (and, with the last one, end the swarm), so the peers are snapshotted
// and looked up again by id.
void SeedServer::rechoke(const InfoHash& key, ChokeStep step) {
  auto sit = swarms_.find(key);
  if (sit == swarms_.end()) return;
  std::vector<ChokeState*> states;
  std::vector<std::pair<uint64_t, bool>> before;
  for (Conn* p : sit->second->peers) {
    states.push_back(&p->choke);
    before.emplace_back(p->id, p->choke.unchoked);
  }
  update_chokes(states, policy(), Clock::now(), step);
  for (const auto& [id, was] : before) {
    auto it = conns_.find(id);
    if (it == conns_.end() || it->second->choke.unchoked == was) continue;
    Conn& c = *it->second;
    std::string out;
    if (c.choke.unchoked) {
      wire::put_simple(out, wire::MsgId::kUnchoke);
    } else {
      wire::put_simple(out, wire::MsgId::kChoke);
      // BEP 6: a fast peer is told which of its requests will not be served; for the others
      // choking discards them.
      if (c.session) {
        for (const Block& b : c.session->queue()) {
          if (c.session->fast()) {
            wire::put_block_message(out, wire::MsgId::kReject, b.index, b.begin, b.length);
          }
        }
        c.session->queue().clear();
      }
    }
    send(c, std::move(out));
  }
}

bool SeedServer::on_interest(Conn& c, bool interested) {
  if (c.choke.interested == interested) return true;
  c.choke.interested = interested;
  c.choke.since = Clock::now();
  const uint64_t id = c.id;
  rechoke(c.torrent->key, ChokeStep::kSettle);
  return conns_.count(id) != 0;
}

// ---- BEP 52 hash requests -----------------------------------------------------------------

bool SeedServer::on_hash_request(Conn& c, const wire::HashRequest& h) {
  Swarm& sw = *c.swarm;
  const Metainfo& meta = sw.torrent->meta;
  if (!sw.roots_indexed) {
    // Only files bigger than a piece have a piece layer; a smaller file's root is its only hash.
    for (size_t i = 0; i < meta.files.size(); ++i) {
      const FileEntry& f = meta.files[i];
      if (f.pieces_root && f.length > meta.piece_length) sw.file_of_root.emplace(*f.pieces_root, i);
    }
    sw.roots_indexed = true;
  }
  const auto root = Sha256Digest::from_bytes(
      std::string_view(reinterpret_cast<const char*>(h.pieces_root.data()), h.pieces_root.size()));
  const merkle::PieceTree* tree = nullptr;
  if (auto t = sw.trees.find(root); t != sw.trees.end()) {
    tree = t->second.get();
  } else if (auto f = sw.file_of_root.find(root); f != sw.file_of_root.end()) {
    const std::string& layer = meta.piece_layers.at(root);  // present: parse_metainfo checks
    std::vector<Sha256Digest> pieces(layer.size() / Sha256Digest::kSize);
    for (size_t i = 0; i < pieces.size(); ++i) {
      pieces[i] = Sha256Digest::from_bytes(std::string_view(layer).substr(i * 32, 32));
    }
    auto made = std::make_unique<merkle::PieceTree>(pieces, meta.piece_length,
                                                    meta.files[f->second].length);
    tree = made.get();
    sw.trees.emplace(root, std::move(made));
  }
  const merkle::HashRange range{h.base_layer, h.index, h.length, h.proof_layers};
  auto hashes = tree != nullptr ? merkle::hashes_for(*tree, range, kMaxHashes)
                                : Result<std::vector<Sha256Digest>>(Error("no such pieces root"));
  std::string out;
  if (!hashes) {
    ++counters_.hashes_rejected;
    log_->debug("peer {}: hash request rejected: {}", c.address, hashes.error().message);
    wire::put_hash_message(out, wire::MsgId::kHashReject, h, {});
  } else {
    ++counters_.hashes;
    std::string bytes;
    bytes.reserve(hashes->size() * Sha256Digest::kSize);
    for (const Sha256Digest& d : *hashes)
      bytes += d.view();
    wire::put_hash_message(out, wire::MsgId::kHashes, h, bytes);
  }
  send(c, std::move(out));
  return conns_.count(c.id) != 0;
}

}  // namespace evert::everseed
