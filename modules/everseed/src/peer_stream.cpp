#include "peer_stream.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace evert::everseed {
namespace {

class TcpStream final : public PeerStream {
 public:
  TcpStream(daemon::EventLoop& loop, int fd, Notify notify)
      : loop_(loop), fd_(fd), notify_(std::move(notify)) {
    reader_ = std::make_unique<daemon::FdWatcher>(loop_, fd_, daemon::FdWatcher::kRead,
                                                  [this](short) { notify_(Event::kReadable); });
  }
  ~TcpStream() override { close(); }
  TcpStream(const TcpStream&) = delete;
  TcpStream& operator=(const TcpStream&) = delete;

  ssize_t read(char* buf, size_t cap) override {
    while (fd_ >= 0) {
      const ssize_t r = ::recv(fd_, buf, cap, 0);
      if (r > 0) return r;
      if (r == 0) return -1;  // an orderly end: why_ stays ""
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
      why_ = std::strerror(errno);
      return -1;
    }
    return -1;
  }

  ssize_t write(const iovec* iov, int n) override {
    while (fd_ >= 0) {
      msghdr mh{};
      mh.msg_iov = const_cast<iovec*>(iov);  // NOLINT: sendmsg does not write through it
      mh.msg_iovlen = static_cast<size_t>(n);
      const ssize_t sent = ::sendmsg(fd_, &mh, MSG_NOSIGNAL);
      if (sent >= 0) {
        // Watched for room only while the socket is full: stopped, not destroyed, as this may
        // run inside the writer's own callback.
        if (writer_) writer_->stop();
        return sent;
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        watch_for_room();
        return 0;
      }
      why_ = std::strerror(errno);
      return -1;
    }
    return -1;
  }

  void close() override {
    if (fd_ < 0) return;
    if (reader_) reader_->stop();
    if (writer_) writer_->stop();
    ::close(fd_);
    fd_ = -1;
  }

  [[nodiscard]] const std::string& why() const override { return why_; }
  [[nodiscard]] const char* kind() const override { return "TCP"; }
  [[nodiscard]] bool packets() const override { return false; }

 private:
  void watch_for_room() {
    if (!writer_) {
      writer_ = std::make_unique<daemon::FdWatcher>(loop_, fd_, daemon::FdWatcher::kWrite,
                                                    [this](short) { notify_(Event::kWritable); });
    } else {
      writer_->start();
    }
  }

  daemon::EventLoop& loop_;
  int fd_;
  Notify notify_;
  std::string why_;
  std::unique_ptr<daemon::FdWatcher> reader_;
  std::unique_ptr<daemon::FdWatcher> writer_;
};

}  // namespace

std::unique_ptr<PeerStream> tcp_stream(daemon::EventLoop& loop, int fd, PeerStream::Notify notify) {
  return std::make_unique<TcpStream>(loop, fd, std::move(notify));
}

}  // namespace evert::everseed
