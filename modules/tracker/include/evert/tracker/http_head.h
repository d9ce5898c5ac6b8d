// The HTTP/1.x request head parser of HttpServer, pure: bytes in, a result out (no I/O, no
// allocation). It reads the request at the front of a buffer that may hold less than a head
// (NeedMore), a head, or a head and what follows (a body, pipelined requests). What it refuses
// carries the status to answer with; the connection is then closed (RFC 9112 §2.2: a server
// that cannot tell where a malformed request ends must not read on).
//
// Refused: a request line other than `method SP target SP HTTP/1.x` (a method that is not a
// token, a target with spaces or control bytes), another major version (505), a header line
// without a colon or with whitespace before it (RFC 9112 §5.1: `Content-Length : 5` was taken
// for no header), folded header lines (obs-fold), header names that are not tokens, a
// Content-Length that is not digits or appears twice with different values, and heads larger
// than `max_head` (431). Transfer-Encoding is reported, not refused: what a server without
// chunked bodies answers depends on whether it takes bodies at all.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <variant>

namespace evert::tracker {

struct HttpHead {
  std::string_view method;
  std::string_view target;  // as sent
  std::string_view path;    // target before '?'
  std::string_view query;   // after '?', undecoded
  std::string_view head;    // the request line and the headers, without the blank line
  size_t size = 0;          // bytes of the buffer the head takes, blank line included
  bool http10 = false;
  bool keep_alive = true;  // by the version and the Connection header
  bool has_length = false;
  uint64_t content_length = 0;
  bool chunked = false;  // a Transfer-Encoding header
  bool expect_continue = false;
  std::string_view x_forwarded_for;
  std::string_view x_real_ip;
  std::string_view range;
  std::string_view if_range;
};

struct HttpNeedMore {};

struct HttpRefusal {
  int status = 400;
  std::string_view message;  // a static string, one line ending in '\n'
};

using HttpHeadResult = std::variant<HttpHead, HttpNeedMore, HttpRefusal>;

constexpr size_t kMaxHttpHead = 8192;

HttpHeadResult parse_http_head(std::string_view buffer, size_t max_head = kMaxHttpHead);

// Header values are trimmed of spaces and tabs; names compare case-insensitively.
bool http_iequals(std::string_view a, std::string_view b);
std::string_view http_trim(std::string_view s);

}  // namespace evert::tracker
