#include "web_seed.h"

#include "web_seed_http.h"

namespace evert::web {

void serve_web_seed(const FileLookup& lookup, const tracker::HttpRequest& req,
                    tracker::HttpResponse& resp) {
  auto path = parse_seed_path(req.path);
  Result<everseed::ServedFile> file = Error("not a web seed path");
  if (path) file = lookup(tracker::InfoHash::from(path->info_hash), path->components);
  if (!path || !file) {
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
  if (!req.range.empty() && if_range_matches(req.if_range, etag, modified)) {
    range = parse_range(req.range, size);
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
