// A streaming multipart/form-data parser (RFC 7578 over RFC 2046 §5.1) for uploads of many GiB:
// the body is fed in chunks of any size, part data is handed on as it arrives and no part is
// ever held in memory. Only a part's head (its header block, bounded) is buffered. No I/O.
//
// Thread-safety: multipart_boundary() is a pure function; a MultipartParser is used by one
// thread at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "evert/result.h"

namespace evert::web {

// The boundary of a request whose Content-Type is `content_type`, unquoted; nullopt unless the
// media type is multipart/form-data (case-insensitive) with a boundary parameter (a token or a
// quoted string) of 1 to 70 characters from RFC 2046's bchars, not ending in a space.
std::optional<std::string> multipart_boundary(std::string_view content_type);

// Bounds on what a body may make the parser buffer or count; the defaults suit a folder upload
// of up to 100,000 files.
struct MultipartLimits {
  size_t max_head_bytes = 8 * 1024;  // one part's header block, blank line included
  size_t max_parts = 100'000;
  size_t max_total_head_bytes = 64 * 1024 * 1024;  // all header blocks together
};

// What a part's head says (RFC 7578 §4.2, §4.4).
struct MultipartPart {
  // The form field's name: Content-Disposition's `name` parameter (always present).
  std::string name;
  // Content-Disposition's file name, when the part is a file: `filename*` (RFC 8187, UTF-8 or
  // ISO-8859-1, converted to UTF-8) when present and well formed, else `filename`. Present but
  // empty when a browser sends a file input with no file chosen. Not sanitised: it is what the
  // client sent (see names.h). In `name` and `filename`, "%22", "%0D" and "%0A" are decoded back
  // to '"', CR and LF, undoing the escaping the HTML standard makes browsers apply; a backslash
  // escapes only '"' and '\' (Chrome and Firefox send other backslashes literally).
  std::optional<std::string> filename;
  // The part's Content-Type, trimmed; empty when absent (text/plain, RFC 7578 §4.4).
  std::string content_type;
};

// The receiver of a body's parts, in order: for each part, on_part_begin, on_part_data zero or
// more times, on_part_end. A callback that returns an error stops the parse: feed() returns
// that error and the parser stays failed. An empty std::function means "carry on". When a body
// fails (or ends) in the middle of a part, that part gets no on_part_end: the receiver discards
// what it has. Callbacks run inside feed(), on its thread, and must not call the parser.
struct MultipartCallbacks {
  std::function<Status(const MultipartPart&)> on_part_begin;
  // `data` is valid only during the call and is never empty. It usually points into the chunk
  // given to feed(); only the few bytes held back at a chunk's end (a possible start of the
  // boundary) are delivered from the parser's own buffer.
  std::function<Status(std::string_view data)> on_part_data;
  std::function<Status()> on_part_end;
};

class MultipartParser {
 public:
  // `boundary` as multipart_boundary() returns it (precondition: non-empty, no CR).
  MultipartParser(std::string boundary, MultipartLimits limits, MultipartCallbacks callbacks);

  // Parses the next `chunk` of the body; chunks may split the body anywhere. Returns an error
  // (and stays failed, returning the same error from then on) on a malformed body, a limit
  // exceeded or a callback's error. The parser's own errors carry the body offset where they
  // were found; a callback's error is returned as it is.
  // The preamble before the first boundary and the epilogue after the closing one are ignored.
  // A line that starts with "--boundary" but goes on with anything other than spaces and tabs
  // and CRLF, or "--", is an error: RFC 2046 §5.1.1 has senders choose a boundary that occurs
  // nowhere else, so this is a broken body rather than data.
  Status feed(std::string_view chunk);

  // Ends the body: an error unless the closing boundary ("--boundary--") has been seen (or when
  // the parser had failed).
  Status finish();

  // How many parts have begun so far (on_part_begin was called for them).
  [[nodiscard]] size_t parts() const { return parts_; }

 private:
  enum class State { kPreamble, kAfterBoundary, kHead, kBody, kEpilogue };

  Status step(std::string_view& in);
  Status scan_for_boundary(std::string_view& in);
  Status boundary_found();
  Status after_boundary(std::string_view& in);
  Status head(std::string_view& in);
  Status deliver(std::string_view data);
  Status fail(std::string message, size_t left);

  std::string delimiter_;  // "\r\n--" + boundary
  MultipartLimits limits_;
  MultipartCallbacks callbacks_;
  State state_ = State::kPreamble;
  // The bytes at the end of the last chunk that are a proper prefix of delimiter_ (kPreamble,
  // kBody). At the start it is "\r\n": the first boundary may open the body.
  std::string held_;
  // kAfterBoundary: what has been seen after "--boundary" (0: nothing, '-', ' ' or '\r').
  char after_ = 0;
  std::string head_;  // kHead: "\r\n" and the head's bytes so far
  uint64_t fed_ = 0;  // body bytes fed, the current chunk included (for error offsets)
  size_t parts_ = 0;
  size_t total_head_bytes_ = 0;
  std::optional<Error> error_;
};

}  // namespace evert::web
