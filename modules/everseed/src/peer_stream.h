// A byte stream to one peer, under the everseed's peer wire session: a TCP socket or a uTP
// connection (DESIGN.md, "Transports": the session does not know which carries it). The
// session pulls bytes with read() when told the stream is readable, and pushes bytes with
// write() until it takes less than offered; it is told again when there is room.
//
// Thread-safety: loop thread only. Events are delivered from the loop, never from inside
// read(), write() or close(); a stream is not destroyed from inside its own event callback
// (the seed parks closed connections until its next sweep).
#pragma once

#include <sys/types.h>
#include <sys/uio.h>

#include <functional>
#include <memory>
#include <string>

#include "evert/daemon/event_loop.h"

namespace evert::everseed {

class PeerStream {
 public:
  enum class Event : unsigned char { kReadable, kWritable };
  using Notify = std::function<void(Event)>;

  virtual ~PeerStream() = default;
  // Up to `cap` bytes received: > 0 bytes read, 0 when none are waiting now (kReadable
  // follows when some arrive), -1 when the stream ended or broke (why() says which; "" for an
  // orderly end).
  virtual ssize_t read(char* buf, size_t cap) = 0;
  // Takes what the transport accepts now of the `n` buffers: the bytes taken (possibly fewer
  // than offered, 0 when full: kWritable follows when there is room), or -1 when the stream
  // broke.
  virtual ssize_t write(const iovec* iov, int n) = 0;
  // No more events; the transport is released (a uTP connection sends its FIN).
  virtual void close() = 0;
  [[nodiscard]] virtual const std::string& why() const = 0;
  // "TCP" or "uTP", for logs.
  [[nodiscard]] virtual const char* kind() const = 0;
  // Whether each write leaves in packets of its own that the peer may read one at a time (uTP
  // without Nagle), rather than as part of a byte stream (TCP).
  [[nodiscard]] virtual bool packets() const = 0;
};

// A connected, non-blocking TCP socket, which the stream owns (closed with it).
std::unique_ptr<PeerStream> tcp_stream(daemon::EventLoop& loop, int fd, PeerStream::Notify notify);

}  // namespace evert::everseed
