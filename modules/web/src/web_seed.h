// The web seed (BEP 19): answers GET and HEAD /data/<info-hash hex>/<name>[/<path>] with the
// published file, whole or one byte range, its body sent by the HTTP server from the open file
// (sendfile, the page cache checked first: evert/tracker/http_server.h).
//
// Why per-file URLs make cross-file ranges simple: BEP 19 clients map a piece that spans files
// to one request per file (URL + name + path), so a range never crosses a file boundary here.
//
// Thread-safety: loop thread only.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "evert/everseed/everseed_module.h"
#include "evert/result.h"
#include "evert/tracker/http_server.h"

namespace evert::web {

// Finds a published file (EverseedModule::served_file, or a fake in tests): the answer when it
// is known now, else nullopt and `later` runs on the loop (never inside the call) with it.
using FileFound = std::function<void(Result<everseed::ServedFile>)>;
using FileLookup = std::function<std::optional<Result<everseed::ServedFile>>(
    const tracker::InfoHash& hash, const std::vector<std::string>& path, FileFound later)>;

// Fills `resp` for `req`: 404 for a path that is no published file (unknown or stopped torrent,
// escapes such as "..", bad escapes), else 200, 206 or 416 with the validators. When the file
// is known only later (its torrent is opened on a worker), the answer goes through `defer()`
// (HttpServer::defer()), and the loop goes on meanwhile.
void serve_web_seed(const FileLookup& lookup, const tracker::HttpRequest& req,
                    tracker::HttpResponse& resp, const std::function<tracker::HttpReply()>& defer);

// The answer for a file found (or not), a request's Range and If-Range headers.
void answer_web_seed(Result<everseed::ServedFile> file, std::string_view range,
                     std::string_view if_range, tracker::HttpResponse& resp);

}  // namespace evert::web
