// The HTTP request head parser (http_head.h): what it takes, what it refuses and with which
// status, and that a head fed in pieces reads the same as whole.
#include "evert/tracker/http_head.h"

#include <gtest/gtest.h>

#include <string>

namespace evert::tracker {
namespace {

HttpHead head_of(std::string_view bytes) {
  auto r = parse_http_head(bytes);
  EXPECT_TRUE(std::holds_alternative<HttpHead>(r)) << bytes;
  return std::holds_alternative<HttpHead>(r) ? std::get<HttpHead>(r) : HttpHead{};
}

int refusal(std::string_view bytes) {
  auto r = parse_http_head(bytes);
  if (const auto* f = std::get_if<HttpRefusal>(&r)) return f->status;
  return std::holds_alternative<HttpNeedMore>(r) ? -1 : 0;
}

TEST(HttpHead, ReadsARequest) {
  const std::string req =
      "GET /announce?a=1&b=2 HTTP/1.1\r\nHost: x\r\nRange: bytes=0-1\r\nIf-Range: \"e\"\r\n"
      "X-Forwarded-For: 1.2.3.4\r\nX-Real-IP:  5.6.7.8 \r\n\r\nGET / HTTP/1.1\r\n";
  const HttpHead h = head_of(req);
  EXPECT_EQ(h.method, "GET");
  EXPECT_EQ(h.target, "/announce?a=1&b=2");
  EXPECT_EQ(h.path, "/announce");
  EXPECT_EQ(h.query, "a=1&b=2");
  EXPECT_EQ(h.range, "bytes=0-1");
  EXPECT_EQ(h.if_range, "\"e\"");
  EXPECT_EQ(h.x_forwarded_for, "1.2.3.4");
  EXPECT_EQ(h.x_real_ip, "5.6.7.8");
  EXPECT_EQ(h.size, req.find("\r\n\r\n") + 4);
  EXPECT_TRUE(h.keep_alive);
  EXPECT_FALSE(h.http10);
  EXPECT_FALSE(h.has_length);
}

TEST(HttpHead, KeepAliveFollowsTheVersionAndConnection) {
  EXPECT_FALSE(head_of("GET / HTTP/1.0\r\n\r\n").keep_alive);
  EXPECT_TRUE(head_of("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").keep_alive);
  EXPECT_FALSE(head_of("GET / HTTP/1.1\r\nconnection: close\r\n\r\n").keep_alive);
}

TEST(HttpHead, ReadsBodyHeaders) {
  const HttpHead h =
      head_of("POST /x HTTP/1.1\r\nContent-Length: 12\r\nExpect: 100-continue\r\n\r\n");
  EXPECT_TRUE(h.has_length);
  EXPECT_EQ(h.content_length, 12u);
  EXPECT_TRUE(h.expect_continue);
  EXPECT_TRUE(head_of("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n").chunked);
  // The same length twice is one length.
  EXPECT_EQ(
      head_of("POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n").content_length,
      3u);
}

TEST(HttpHead, EmptyLinesBeforeTheRequestAreSkipped) {
  const std::string req = "\r\n\r\nGET / HTTP/1.1\r\n\r\n";
  const HttpHead h = head_of(req);
  EXPECT_EQ(h.method, "GET");
  EXPECT_EQ(h.size, req.size());
}

TEST(HttpHead, WaitsForTheWholeHead) {
  EXPECT_EQ(refusal(""), -1);
  EXPECT_EQ(refusal("GET / HTTP/1.1\r\nHost: x\r\n"), -1);
  EXPECT_EQ(refusal("GET / HTTP/1.1\r\nHost: x\r\n\r"), -1);
  EXPECT_EQ(refusal(std::string(kMaxHttpHead, 'a')), -1);
  EXPECT_EQ(refusal(std::string(kMaxHttpHead + 1, 'a')), 431);
  EXPECT_EQ(refusal("GET /" + std::string(kMaxHttpHead, 'a') + " HTTP/1.1\r\n\r\n"), 431);
}

TEST(HttpHead, RefusesMalformedRequestLines) {
  EXPECT_EQ(refusal("GET\r\n\r\n"), 400);
  EXPECT_EQ(refusal("GET /\r\n\r\n"), 400);
  EXPECT_EQ(refusal("GET / FTP/1.1\r\n\r\n"), 400);
  EXPECT_EQ(refusal("GET / HTTP/2.0\r\n\r\n"), 505);
  EXPECT_EQ(refusal("G(T / HTTP/1.1\r\n\r\n"), 400);
  EXPECT_EQ(refusal("GET /a b HTTP/1.1\r\n\r\n"), 400);
  EXPECT_EQ(refusal(std::string("GET /a\0b HTTP/1.1\r\n\r\n", 22)), 400);
  EXPECT_EQ(refusal("GET /a\rb HTTP/1.1\r\n\r\n"), 400);
  // Bytes from 0x80 in a path are answered by the handlers (a 404), not refused.
  EXPECT_EQ(head_of("GET /api/v1/\xff HTTP/1.1\r\n\r\n").path, "/api/v1/\xff");
}

TEST(HttpHead, RefusesMalformedHeaders) {
  // RFC 9112 §5.1: whitespace between a field name and the colon gets a 400 (it was ignored,
  // and the body taken for the next request).
  EXPECT_EQ(refusal("POST / HTTP/1.1\r\nContent-Length : 5\r\n\r\nhello"), 400);
  EXPECT_EQ(refusal("GET / HTTP/1.1\r\nno colon here\r\n\r\n"), 400);
  EXPECT_EQ(refusal("GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n"), 400);
  EXPECT_EQ(refusal("GET / HTTP/1.1\r\nX\rY: 1\r\n\r\n"), 400);
  EXPECT_EQ(refusal("GET / HTTP/1.1\r\nHost: a\nX-Smuggled: 1\r\n\r\n"), 400);
  EXPECT_EQ(refusal(std::string("GET / HTTP/1.1\r\nHost: a\0b\r\n\r\n", 29)), 400);
}

TEST(HttpHead, RefusesMalformedContentLengths) {
  for (const char* v : {"", "-1", "+5", "5x", "0x10", "1 2", "99999999999999999999999"}) {
    EXPECT_EQ(refusal(std::string("POST / HTTP/1.1\r\nContent-Length: ") + v + "\r\n\r\n"), 400)
        << v;
  }
  EXPECT_EQ(refusal("POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n"), 400);
}

TEST(HttpHead, PiecesReadAsTheWhole) {
  const std::string req =
      "POST /api HTTP/1.1\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbodyGET / HTTP/1.1\r\n";
  const HttpHead whole = head_of(req);
  for (size_t cut = 0; cut < whole.size; ++cut) {
    EXPECT_EQ(refusal(req.substr(0, cut)), -1) << cut;
  }
  const HttpHead h = head_of(req.substr(0, whole.size));
  EXPECT_EQ(h.size, whole.size);
  EXPECT_EQ(h.content_length, 4u);
  EXPECT_FALSE(h.keep_alive);
}

TEST(HttpHead, HeaderNamesCompareCaseInsensitively) {
  EXPECT_TRUE(http_iequals("Content-Length", "content-LENGTH"));
  EXPECT_FALSE(http_iequals("Content-Length", "Content_Length"));
  EXPECT_FALSE(http_iequals("[", "{"));  // differ by 0x20 but are not letters
  EXPECT_EQ(http_trim(" \tx y\t "), "x y");
}

}  // namespace
}  // namespace evert::tracker
