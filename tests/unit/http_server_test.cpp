// HttpServer (the tracker's and the web module's HTTP listener) against a real socket: a
// handler that throws answers its request with a 500 and closes that connection, and the
// server goes on answering others (STYLE.md §7; issue 15: an exception that reached libevent
// ended the daemon).
#include "evert/tracker/http_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <stdexcept>
#include <string>
#include <thread>

#include "evert/daemon/event_loop.h"

namespace evert::tracker {
namespace {

// Sends `request` to 127.0.0.1:port and reads until the server closes (or 5 s pass).
std::string exchange(uint16_t port, const std::string& request) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string out;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
          static_cast<ssize_t>(request.size())) {
    char buf[4096];
    ssize_t n = 0;
    while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0)
      out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

TEST(HttpServer, AHandlerThatThrowsAnswers500AndTheServerGoesOn) {
  daemon::EventLoop loop;
  std::vector<std::string> told;
  daemon::set_callback_error_handler(
      [&](const char* where, const char* what) { told.push_back(std::string(where) + what); });
  HttpServer server(
      loop,
      [](const HttpRequest& req, HttpResponse& resp) {
        if (req.path == "/boom") throw std::runtime_error("a handler's bug");
        resp.body = "fine\n";
      },
      HttpServer::Options{});
  sockaddr_storage ss{};
  unsigned len = 0;
  std::string why;
  ASSERT_TRUE(parse_listen("127.0.0.1:0", ss, len, why)) << why;
  ASSERT_TRUE(server.listen(ss, len, "test").ok());
  const uint16_t port = server.ports().front();
  std::string boom;
  std::string pipelined;
  std::string after;
  std::thread client([&] {
    boom = exchange(port, "GET /boom HTTP/1.1\r\nHost: x\r\n\r\n");
    // The request after the failing one on the same connection is not answered: it closed.
    pipelined = exchange(port, "GET /boom HTTP/1.1\r\n\r\nGET /ok HTTP/1.1\r\n\r\n");
    after = exchange(port, "GET /ok HTTP/1.0\r\n\r\n");
    loop.post([&] { loop.stop(); });
  });
  daemon::Timer guard(loop, [&] { loop.stop(); });
  guard.start(std::chrono::seconds(20), false);
  loop.run();
  client.join();
  daemon::set_callback_error_handler(nullptr);
  EXPECT_EQ(boom.rfind("HTTP/1.1 500 ", 0), 0u) << boom;
  EXPECT_NE(boom.find("Connection: close"), std::string::npos) << boom;
  EXPECT_EQ(pipelined.find("fine"), std::string::npos) << pipelined;
  EXPECT_EQ(after.rfind("HTTP/1.0 200 ", 0), 0u) << after;
  EXPECT_NE(after.find("fine"), std::string::npos);
  ASSERT_EQ(told.size(), 2u);
  EXPECT_NE(told[0].find("a handler's bug"), std::string::npos);
}

}  // namespace
}  // namespace evert::tracker
