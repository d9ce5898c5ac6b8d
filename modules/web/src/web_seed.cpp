#include "web_seed.h"

#include "web_seed_http.h"

namespace evert::web {

void serve_web_seed(const FileLookup& lookup, const tracker::HttpRequest& req,
                    tracker::HttpResponse& resp, const std::function<tracker::HttpReply()>& defer) {
  auto path = parse_seed_path(req.path);
  if (!path) return answer_web_seed(Error("not a web seed path"), {}, {}, resp);
  // What the answer needs, kept for when it comes later (the request's views go with it).
  struct Later {
    std::string range;
    std::string if_range;
    tracker::HttpReply reply;
  };
  auto later = std::make_shared<Later>();
  auto now = lookup(tracker::InfoHash::from(path->info_hash), path->components,
                    [later](Result<everseed::ServedFile> file) {
                      tracker::HttpResponse r;
                      answer_web_seed(std::move(file), later->range, later->if_range, r);
                      later->reply.send(std::move(r));
                    });
  if (now) return answer_web_seed(std::move(*now), req.range, req.if_range, resp);
  later->range = req.range;
  later->if_range = req.if_range;
  later->reply = defer();
}

void answer_web_seed(Result<everseed::ServedFile> file, std::string_view range_header,
                     std::string_view if_range, tracker::HttpResponse& resp) {
  if (!file) {
    resp.status = 404;
    resp.body = "not found\n";
    return;
  }
  const uint64_t size = file->size;
  const std::string etag = entity_tag(size, file->mtime_ns);
  const std::string modified = http_date(file->mtime_ns / 1'000'000'000);
  resp.content_type = "application/octet-stream";
  resp.headers =
      "Accept-Ranges: bytes\r\nETag: " + etag + "\r\nLast-Modified: " + modified + "\r\n";
  RangeAnswer range;
  // RFC 9110 §13.1.5: a Range whose If-Range no longer matches gets the whole new file.
  if (!range_header.empty() && if_range_matches(if_range, etag, modified)) {
    range = parse_range(range_header, size);
  }
  uint64_t first = 0;
  uint64_t length = size;
  switch (range.kind) {
    case RangeAnswer::Kind::kFull:
      break;
    case RangeAnswer::Kind::kPartial:
      resp.status = 206;
      first = range.range.first;
      length = range.range.last - range.range.first + 1;
      resp.headers += "Content-Range: bytes " + std::to_string(first) + "-" +
                      std::to_string(range.range.last) + "/" + std::to_string(size) + "\r\n";
      break;
    case RangeAnswer::Kind::kUnsatisfiable:
      resp.status = 416;
      resp.headers += "Content-Range: bytes */" + std::to_string(size) + "\r\n";
      return;
  }
  if (length > 0 && file->fd >= 0) {
    resp.file = tracker::FileBody{std::move(file->hold), file->fd, first, length};
  }
}

}  // namespace evert::web
