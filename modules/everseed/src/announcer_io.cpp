// How an announce travels: host names through evdns (cached), HTTP through evhttp, UDP (BEP 15)
// on one socket per address family. Every path ends in Announcer::complete() or own().
#include <event2/buffer.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/util.h>
#include <sodium.h>
#include <spdlog/spdlog.h>

#include <cerrno>

#include "announcer.h"
#include "announcer_internal.h"

namespace evert::everseed {

using namespace announcer_detail;
using tracker_client::Scheme;

// --- Names ---------------------------------------------------------------------------------

void Announcer::resolve(Flight& f) {
  const int64_t now = clock_();
  const uint64_t id = f.id;
  auto& slot = dns_cache_[f.url.host];
  if (!slot) {
    slot = std::make_unique<DnsEntry>();
    slot->owner = this;
    slot->host = f.url.host;
  }
  DnsEntry& e = *slot;
  if (!e.pending && e.expires > now) {
    if (e.addresses.empty()) {
      complete(id, nullptr, e.error, true);
    } else {
      proceed(f, e.addresses.front());
    }
    return;
  }
  e.waiters.push_back(id);
  if (e.pending) return;
  if (dns_ == nullptr) {
    on_resolved(e, EVUTIL_EAI_FAIL, nullptr);
    return;
  }
  e.pending = true;
  evutil_addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = f.url.scheme == Scheme::kUdp ? SOCK_DGRAM : SOCK_STREAM;
  // A name that resolves at once (from /etc/hosts) calls back before this returns NULL.
  evdns_getaddrinfo_request* r = evdns_getaddrinfo(
      dns_, e.host.c_str(), nullptr, &hints,
      [](int result, evutil_addrinfo* res, void* arg) {
        auto* entry = static_cast<DnsEntry*>(arg);
        entry->owner->on_resolved(*entry, result, res);
      },
      &e);
  if (r != nullptr && e.pending) e.request = r;
}

void Announcer::on_resolved(DnsEntry& e, int result, addrinfo* res) {
  e.pending = false;
  e.request = nullptr;
  if (stopping_) {
    if (res != nullptr) evutil_freeaddrinfo(res);
    return;
  }
  const int64_t now = clock_();
  e.addresses.clear();
  for (evutil_addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6) continue;
    sockaddr_storage ss{};
    std::memcpy(&ss, ai->ai_addr, std::min<size_t>(ai->ai_addrlen, sizeof ss));
    Endpoint a = tracker::endpoint_of(ss);
    a.port = 0;
    if (std::find(e.addresses.begin(), e.addresses.end(), a) == e.addresses.end()) {
      e.addresses.push_back(a);
    }
  }
  if (res != nullptr) evutil_freeaddrinfo(res);
  // IPv4 first: the address family most trackers and networks have.
  std::stable_partition(e.addresses.begin(), e.addresses.end(),
                        [](const Endpoint& a) { return a.family == Family::kV4; });
  e.error = result != 0           ? "cannot resolve " + e.host + ": " + evutil_gai_strerror(result)
            : e.addresses.empty() ? "cannot resolve " + e.host + ": no address"
                                  : std::string();
  e.expires = now + (e.addresses.empty() ? kDnsFailureLife : kDnsLife);
  std::vector<uint64_t> waiters;
  waiters.swap(e.waiters);
  for (uint64_t id : waiters) {
    auto it = flights_.find(id);
    if (it == flights_.end()) continue;
    if (e.addresses.empty()) {
      complete(id, nullptr, e.error, true);
    } else {
      proceed(*it->second, e.addresses.front());
    }
  }
  // Names no flight asked for lately are forgotten, so the cache stays as small as the set of
  // trackers in use.
  if (dns_cache_.size() > 256) {
    for (auto it = dns_cache_.begin(); it != dns_cache_.end();) {
      const bool idle = !it->second->pending && it->second->waiters.empty() &&
                        it->second->expires <= now && it->second.get() != &e;
      it = idle ? dns_cache_.erase(it) : std::next(it);
    }
  }
}

void Announcer::proceed(Flight& f, const Endpoint& address) {
  f.address = tracker::unmap(address);
  f.address.port = f.url.port;
  if (own_address(f.url, f.address)) {
    own(f.id);
    return;
  }
  if (!options_.announce_private && !tracker::is_public_address(f.address)) {
    ++counters_.private_refused;
    complete(f.id, nullptr,
             "not announced: " + f.url.host +
                 " is not a public address (everseed.announce_private allows it)",
             true);
    return;
  }
  if (f.url.scheme == Scheme::kUdp) {
    send_udp(f);
  } else {
    send_http(f);
  }
}

void Announcer::own(uint64_t id) {
  auto it = flights_.find(id);
  if (it == flights_.end()) return;
  const AnnounceJob job = std::move(it->second->job);
  flights_.erase(it);
  if (job.entry != AnnounceJob::kNoEntry) {
    schedule_.drop(job, clock_());
    ++counters_.own_dropped;
    log_->debug("announcer: {} is this daemon's tracker: not announced to", job.url);
  }
  kick();
}

// --- HTTP ----------------------------------------------------------------------------------

void Announcer::send_http(Flight& f) {
  const uint64_t id = f.id;
  const std::string ip = address_text(f.address);
  f.conn = evhttp_connection_base_new(loop_.base(), nullptr, ip.c_str(), f.address.port);
  if (f.conn == nullptr) {
    complete(id, nullptr, "cannot open an HTTP connection", true);
    return;
  }
  evhttp_connection_set_timeout(f.conn, options_.http_timeout);
  evhttp_connection_set_retries(f.conn, 0);
  evhttp_connection_set_max_body_size(f.conn, kMaxHttpBody);
  evhttp_connection_set_max_headers_size(f.conn, 16 * 1024);
  evhttp_request* req = evhttp_request_new(&Announcer::on_http_done, &f);
  if (req == nullptr) {
    complete(id, nullptr, "cannot make an HTTP request", true);
    return;
  }
  evhttp_request_set_error_cb(req, [](evhttp_request_error error, void* arg) {
    // Called before on_http_done when the request fails after connecting.
    std::string& why = static_cast<Flight*>(arg)->http_error;
    switch (error) {
      case EVREQ_HTTP_TIMEOUT:
        why = "timed out";
        break;
      case EVREQ_HTTP_EOF:
        why = "the connection closed before a whole reply";
        break;
      case EVREQ_HTTP_INVALID_HEADER:
        why = "a malformed HTTP reply";
        break;
      case EVREQ_HTTP_DATA_TOO_LONG:
        why = "a reply larger than " + std::to_string(kMaxHttpBody / 1024) + " KiB";
        break;
      default:
        why = "the HTTP request failed";
        break;
    }
  });
  evkeyvalq* h = evhttp_request_get_output_headers(req);
  const bool v6 = f.url.host.find(':') != std::string::npos;
  std::string host = v6 ? "[" + f.url.host + "]" : f.url.host;
  if (f.url.port != 80) host += ":" + std::to_string(f.url.port);
  evhttp_add_header(h, "Host", host.c_str());
  evhttp_add_header(h, "User-Agent", "evertd/" EVERT_VERSION);
  evhttp_add_header(h, "Connection", "close");
  const std::string target = tracker_client::http_announce_target(f.url, request_for(f.job));
  f.started = clock_();
  // A connection refused at once calls back (and frees `req`) before this returns; `f` may be
  // gone after it.
  if (evhttp_make_request(f.conn, req, EVHTTP_REQ_GET, target.c_str()) != 0) {
    complete(id, nullptr, "cannot send the HTTP request", true);
  }
}

void Announcer::on_http_done(evhttp_request* req, void* arg) {
  auto* f = static_cast<Flight*>(arg);
  f->in_callback = true;
  f->owner->finish_http(*f, req);
}

void Announcer::finish_http(Flight& f, evhttp_request* req) {
  const uint64_t id = f.id;
  const int code = req != nullptr ? evhttp_request_get_response_code(req) : 0;
  const std::string where = f.address.to_string();
  if (code == 0) {
    std::string why;
    if (!f.http_error.empty()) {
      why = where + ": " + f.http_error;
    } else if (clock_() - f.started >= options_.http_timeout) {
      why = "cannot connect to " + where + ": timed out";
    } else {
      // A failed connect reaches us without its reason: libevent shuts the socket down (which
      // overwrites errno) before calling back. Fast, it was refused or unreachable.
      why = "cannot connect to " + where + " (refused or unreachable)";
    }
    complete(id, nullptr, why, true);
    return;
  }
  evbuffer* in = evhttp_request_get_input_buffer(req);
  std::string body(evbuffer_get_length(in), '\0');
  evbuffer_copyout(in, body.data(), body.size());
  auto reply = tracker_client::parse_http_reply(body);
  if (code != 200) {
    // Some trackers refuse with an error status and a bencoded failure reason.
    if (reply && !reply->failure.empty()) {
      complete(id, &*reply, "", false);
      return;
    }
    const char* line = evhttp_request_get_response_code_line(req);
    std::string status = "HTTP " + std::to_string(code);
    if (line != nullptr && *line != '\0') status += " " + printable(line);
    complete(id, nullptr, status, code >= 500);  // 5xx: the tracker is in trouble
    return;
  }
  if (!reply) {
    complete(id, nullptr, reply.error().message, false);
    return;
  }
  complete(id, &*reply, "", false);
}

// --- UDP (BEP 15) --------------------------------------------------------------------------

Announcer::UdpSocket* Announcer::udp_socket(Family family) {
  auto& s = family == Family::kV4 ? udp4_ : udp6_;
  if (s) return s.get();
  const int domain = family == Family::kV4 ? AF_INET : AF_INET6;
  const int fd = ::socket(domain, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return nullptr;
  if (family == Family::kV6) {
    const int one = 1;
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  }
  s = std::make_unique<UdpSocket>();
  s->fd = fd;
  UdpSocket* raw = s.get();
  s->watcher = std::make_unique<daemon::FdWatcher>(loop_, fd, daemon::FdWatcher::kRead,
                                                   [this, raw](short) { on_udp_readable(*raw); });
  return raw;
}

void Announcer::send_udp(Flight& f) {
  const int64_t now = clock_();
  const uint64_t id = f.id;
  UdpSocket* sock = udp_socket(f.address.family);
  if (sock == nullptr) {
    complete(id, nullptr, std::string("cannot open a UDP socket: ") + std::strerror(errno), true);
    return;
  }
  if (f.transaction != 0) transactions_.erase(f.transaction);
  do {
    f.transaction = randombytes_random();
  } while (f.transaction == 0 || transactions_.count(f.transaction) != 0);
  std::string packet;
  auto cid = connection_ids_.find({f.address.ip, f.address.port});
  if (cid != connection_ids_.end() && now - cid->second.obtained < kConnectionIdLife) {
    f.connecting = false;
    f.cached_id = !f.connected_here;
    // BEP 41: the URL's path and query ride along as URL data ("/" alone says nothing).
    const std::string_view data = f.url.target == "/" ? std::string_view() : f.url.target;
    packet = tracker_client::udp_announce_request(cid->second.id, f.transaction, request_for(f.job),
                                                  data);
  } else {
    f.connecting = true;
    packet = tracker_client::udp_connect_request(f.transaction);
  }
  // BEP 15: 15 * 2^n seconds before sending again.
  f.deadline = now + static_cast<int64_t>(options_.udp_timeout) * (int64_t{1} << f.tries);
  ++f.tries;
  transactions_[f.transaction] = id;
  socklen_t len = 0;
  const sockaddr_storage to = to_sockaddr(f.address, len);
  if (::sendto(sock->fd, packet.data(), packet.size(), 0, reinterpret_cast<const sockaddr*>(&to),
               len) < 0 &&
      errno != EAGAIN && errno != EWOULDBLOCK) {
    complete(id, nullptr,
             "cannot send to " + f.address.to_string() + " (" + std::strerror(errno) + ")", true);
  }
}

void Announcer::on_udp_readable(UdpSocket& s) {
  uint8_t buf[2048];
  for (int i = 0; i < 64; ++i) {  // bounded: other events get their turn
    sockaddr_storage from{};
    socklen_t len = sizeof from;
    const ssize_t n =
        ::recvfrom(s.fd, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len);
    if (n < 0) return;
    on_udp_datagram(buf, static_cast<size_t>(n), tracker::unmap(tracker::endpoint_of(from)));
  }
}

void Announcer::on_udp_datagram(const uint8_t* data, size_t size, const Endpoint& from) {
  auto r = tracker_client::parse_udp_response({data, size});
  auto t = r ? transactions_.find(r->transaction) : transactions_.end();
  auto fit = t != transactions_.end() ? flights_.find(t->second) : flights_.end();
  if (fit == flights_.end() || fit->second->address != from) {
    ++counters_.bad_datagrams;  // not an answer to anything we asked, or not from whom we asked
    return;
  }
  Flight& f = *fit->second;
  const uint64_t id = f.id;
  using Kind = tracker_client::UdpResponse::Kind;
  if ((r->kind == Kind::kConnect) != f.connecting) {
    ++counters_.bad_datagrams;
    return;
  }
  transactions_.erase(t);
  f.transaction = 0;
  f.deadline = 0;
  switch (r->kind) {
    case Kind::kConnect:
      connection_ids_[{f.address.ip, f.address.port}] = {r->connection_id, clock_()};
      f.connected_here = true;
      f.tries = 0;
      send_udp(f);
      return;
    case Kind::kAnnounce:
      complete(id, &r->reply, "", false);
      return;
    case Kind::kError:
      // An error to an announce made with a connection id from an earlier connect may mean the
      // id expired on the tracker's side: connect again, once.
      if (!f.connecting && f.cached_id && !f.reconnected) {
        connection_ids_.erase({f.address.ip, f.address.port});
        f.reconnected = true;
        f.tries = 0;
        send_udp(f);
        return;
      }
      complete(id, &r->reply, "", false);
      return;
  }
}

void Announcer::udp_timeouts(int64_t now) {
  std::vector<uint64_t> due;
  for (const auto& [id, f] : flights_) {
    if (f->deadline != 0 && f->deadline <= now) due.push_back(id);
  }
  for (uint64_t id : due) {
    auto it = flights_.find(id);
    if (it == flights_.end()) continue;
    Flight& f = *it->second;
    f.deadline = 0;
    if (f.tries >= options_.udp_tries) {
      complete(id, nullptr,
               "no answer from " + f.address.to_string() + " after " + std::to_string(f.tries) +
                   (f.tries == 1 ? " try" : " tries"),
               true);
    } else {
      send_udp(f);
    }
  }
  // Connection ids older than their minute are of no use.
  for (auto it = connection_ids_.begin(); it != connection_ids_.end();) {
    it = now - it->second.obtained >= kConnectionIdLife ? connection_ids_.erase(it) : std::next(it);
  }
}

}  // namespace evert::everseed
