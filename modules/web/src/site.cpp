#include "site.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <qrencode.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <mutex>
#include <set>

#include "assets.h"
#include "evert/hash.h"
#include "evert/json_text.h"
#include "evert/magnet.h"
#include "evert/metainfo.h"
#include "evert/units.h"
#include "feed.h"
#include "form.h"
#include "multipart.h"
#include "names.h"
#include "templates.h"

namespace evert::web {

using nlohmann::json;
using tracker::HttpRequest;
using tracker::HttpResponse;

namespace {

constexpr const char* kCookie = "evert_session";
constexpr size_t kPageSize = 50;
constexpr size_t kMaxShownFiles = 1000;
constexpr size_t kMaxField = 64 * 1024;  // a text field of an upload form
constexpr uint64_t kDiskMargin = 64ull << 20;

// `t` (unix seconds) in UTC: ISO 8601 (<time datetime>), or for people.
std::string utc_time(int64_t t, bool iso) {
  std::tm tm{};
  const time_t tt = t;
  gmtime_r(&tt, &tm);
  char buf[32];
  if (iso) {
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  } else {
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M UTC", &tm);
  }
  return buf;
}

std::string iso_time(int64_t t) {
  return utc_time(t, true);
}

std::string day_time(int64_t t) {
  return utc_time(t, false);
}

// The magnet link as an SVG QR code (libqrencode), one path of dark modules.
std::string qr_svg(const std::string& text) {
  QRcode* q = QRcode_encodeString8bit(text.c_str(), 0, QR_ECLEVEL_M);
  if (q == nullptr) return "";
  const int n = q->width;
  const int border = 4;
  std::string path;
  for (int y = 0; y < n; ++y) {
    for (int x = 0; x < n; ++x) {
      if ((q->data[y * n + x] & 1) != 0) {
        path += "M" + std::to_string(x + border) + "," + std::to_string(y + border) + "h1v1h-1z";
      }
    }
  }
  QRcode_free(q);
  const std::string size = std::to_string(n + 2 * border);
  return "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 " + size + " " + size +
         "\" shape-rendering=\"crispEdges\" role=\"img\" aria-label=\"QR code of the magnet "
         "link\"><rect width=\"100%\" height=\"100%\" fill=\"#fff\"/><path fill=\"#000\" d=\"" +
         path + "\"/></svg>";
}

// Each path component percent-encoded for a URL (RFC 3986 unreserved kept).
std::string url_path(const std::string& path) {
  return percent_encode(path, "/");
}

// A value percent-encoded for a query string.
std::string url_query(const std::string& v) {
  return percent_encode(v);
}

std::string ip_of(const tracker::Endpoint& e) {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(e.family == tracker::Family::kV4 ? AF_INET : AF_INET6, e.ip.data(), buf, sizeof buf);
  return buf;
}

bool is_hex40(std::string_view s) {
  return s.size() == 40 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

std::string query_value(std::string_view query, std::string_view key) {
  auto fields = parse_urlencoded(query);
  if (!fields) return "";
  auto v = form_value(*fields, key);
  return v ? std::string(*v) : "";
}

// Where to go after a login: a path on this site ("/..."), else "/". No second '/' or '\\'
// (browsers take "/\\host" for "//host"), no bytes below '!' (no CR or LF into Location, no
// tabs browsers strip), no DEL, at most 512 bytes.
std::string safe_next(std::string next) {
  if (next.empty() || next.size() > 512 || next[0] != '/') return "/";
  if (next.size() > 1 && (next[1] == '/' || next[1] == '\\')) return "/";
  for (unsigned char c : next) {
    if (c < 0x21 || c == 0x7f || c == '\\') return "/";
  }
  return next;
}

// The form fields an upload keeps (others are dropped unread) and their total size at most.
bool known_field(std::string_view name) {
  return name == "csrf" || name == "name" || name == "description" || name == "piece_size" ||
         name == "private" || name == "trackers" || name == "version";
}
constexpr size_t kMaxFieldsTotal = 128 * 1024;
constexpr size_t kMaxTrackers = 10;
constexpr size_t kMaxUploadsPerUser = 4;  // at once

bool wants_json(const HttpRequest& req) {
  return req.header("accept").find("application/json") != std::string_view::npos ||
         query_value(req.query, "format") == "json";
}

void json_response(HttpResponse& resp, int status, const json& body) {
  resp.status = status;
  resp.content_type = "application/json";
  resp.body = json_text(body) + "\n";
}

void json_error(HttpResponse& resp, int status, const std::string& code,
                const std::string& message) {
  json_response(resp, status, {{"error", {{"code", code}, {"message", message}}}});
}

std::vector<std::string> split_lines(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t e = s.find('\n', start);
    if (e == std::string::npos) e = s.size();
    std::string line = s.substr(start, e - start);
    while (!line.empty() && (line.back() == '\r' || line.back() == ' '))
      line.pop_back();
    while (!line.empty() && line.front() == ' ')
      line.erase(0, 1);
    if (!line.empty()) out.push_back(line);
    start = e + 1;
  }
  return out;
}

}  // namespace

struct Site::Viewer {
  std::optional<Session> session;
  std::string sid;
  std::optional<User> token_user;  // /api/v1/ with a bearer token
  [[nodiscard]] bool logged_in() const { return session.has_value() || token_user.has_value(); }
  [[nodiscard]] std::string user() const {
    return session ? session->user : token_user ? token_user->name : "";
  }
  [[nodiscard]] bool admin() const {
    return session ? session->admin : token_user ? token_user->admin : false;
  }
};

Site::Site(daemon::ModuleContext& ctx, everseed::EverseedModule& seed, Accounts& accounts,
           tracker::HttpServer& server)
    : ctx_(ctx), seed_(seed), accounts_(accounts), server_(server), job_timer_(ctx.loop, [this] {
        check_jobs();
      }) {}

Site::~Site() {
  *alive_ = false;
}

bool Site::same_origin(const HttpRequest& req) const {
  // A form posted from another site (login CSRF, and a second line behind the CSRF tokens):
  // browsers say so in Sec-Fetch-Site, and in Origin.
  if (req.header("sec-fetch-site") == "cross-site") return false;
  std::string_view origin = req.header("origin");
  if (origin.empty()) return true;  // not a browser, or an old one: the CSRF tokens decide
  if (!config_.base_url.empty() && origin == config_.base_url) return true;
  const size_t scheme = origin.find("://");
  if (scheme == std::string_view::npos) return false;  // "null" (sandboxed, file:)
  return origin.substr(scheme + 3) == req.header("host");
}

std::string Site::client_address(const HttpRequest& req) const {
  const std::string peer = ip_of(req.peer);
  const bool trusted = std::find(config_.trusted_proxies.begin(), config_.trusted_proxies.end(),
                                 peer) != config_.trusted_proxies.end();
  if (trusted && !req.x_forwarded_for.empty()) {
    std::string_view xff = req.x_forwarded_for;
    const size_t comma = xff.rfind(',');
    if (comma != std::string_view::npos) xff.remove_prefix(comma + 1);
    while (!xff.empty() && (xff.front() == ' ' || xff.front() == '\t'))
      xff.remove_prefix(1);
    while (!xff.empty() && (xff.back() == ' ' || xff.back() == '\t'))
      xff.remove_suffix(1);
    // Only an address is taken: the value keys the login rate limit and goes to the logs, and
    // anything else a proxy passed on (a client's own header) would be an unlimited supply of
    // keys or a forged log line (issue 15).
    tracker::Endpoint e;
    if (tracker::Endpoint::parse_ip(xff, e)) return ip_of(e);
  }
  return peer;
}

Site::Viewer Site::viewer(const HttpRequest& req) {
  Viewer v;
  const std::string_view auth = req.header("authorization");
  if (auth.starts_with("Bearer ")) {
    v.token_user = accounts_.token_user(auth.substr(7));
    return v;
  }
  const std::string_view cookies = req.header("cookie");
  if (!cookies.empty()) {
    if (auto sid = parse_cookie(cookies, kCookie)) {
      v.session = accounts_.session(*sid);
      if (v.session) v.sid = *sid;
    }
  }
  return v;
}

std::string Site::render(const std::string& name, const json& data) {
  std::string error;
  std::string out = render_template(name, data, &error);
  if (!error.empty()) ctx_.log->error("template {}", error);
  return out;
}

void Site::page(HttpResponse& resp, int status, const std::string& title, const std::string& body,
                json data, const Viewer& v) {
  json layout = {{"title", title}, {"site", config_.title}, {"version", EVERT_VERSION}};
  if (v.session) {
    layout["user"] = {
        {"name", v.session->user}, {"admin", v.session->admin}, {"csrf", v.session->csrf}};
    data["csrf"] = v.session->csrf;
  }
  layout["body"] = render(body, data);
  resp.status = status;
  resp.content_type = "text/html; charset=utf-8";
  resp.body = render("layout.html", layout);
  resp.headers +=
      "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nX-Frame-Options: DENY\r\n"
      "Referrer-Policy: same-origin\r\nContent-Security-Policy: default-src 'self'; img-src "
      "'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action "
      "'self'\r\n";
}

void Site::error_page(HttpResponse& resp, int status, const std::string& message, const Viewer& v) {
  const char* heading = status == 404   ? "Not found"
                        : status == 403 ? "Forbidden"
                        : status == 401 ? "Please log in"
                        : status >= 500 ? "Something went wrong"
                                        : "Cannot do that";
  page(resp, status, heading, "error.html", {{"heading", heading}, {"message", message}}, v);
}

void Site::redirect(HttpResponse& resp, const std::string& to) {
  resp.status = 303;
  resp.content_type = "text/plain";
  resp.body = "see " + to + "\n";
  resp.headers += "Location: " + to + "\r\nCache-Control: no-store\r\n";
}

json Site::call(const std::string& method, const std::string& path, const std::string& query,
                int& status, const json& body) {
  daemon::ApiRequest r;
  r.method = method;
  r.path = path;
  r.query = query;
  if (!body.is_null()) r.body = json_text(body);
  daemon::ApiResponse res = ctx_.call(r);
  status = res.status;
  return res.body;
}

void Site::with_metainfo(const std::vector<tracker::InfoHash>& hashes, HttpResponse& resp,
                         std::function<void(HttpResponse&, const Metas&)> render) {
  // `later` never runs inside warm_metainfo(): the reply is deferred before it can.
  auto reply = std::make_shared<tracker::HttpReply>();
  Metas now;
  const auto warm = seed_.warm_metainfo(
      hashes, now, [this, alive = std::weak_ptr<bool>(alive_), reply, render](Metas metas) {
        if (alive.expired()) return;
        HttpResponse out;
        try {
          render(out, metas);
        } catch (const std::exception& e) {
          ctx_.log->error("web: a page failed: {}", e.what());
          out = HttpResponse{};
          out.status = 500;
          out.body = "internal error\n";
        }
        reply->send(std::move(out));
      });
  switch (warm) {
    case everseed::EverseedModule::Warm::kNow:
      return render(resp, now);
    case everseed::EverseedModule::Warm::kLater:
      *reply = server_.defer();
      return;
    case everseed::EverseedModule::Warm::kBusy:
      break;
  }
  resp.status = 503;
  resp.body = "busy: too many torrents are being read for pages; try again in a moment\n";
  resp.headers += "Retry-After: 1\r\n";
}

std::vector<tracker::InfoHash> Site::hashes_of(const json& torrents) {
  std::vector<tracker::InfoHash> out;
  if (!torrents.is_array()) return out;
  for (const auto& t : torrents) {
    if (!t.is_object()) continue;
    if (auto h = from_hex(t.value("info_hash", ""), 20)) out.push_back(tracker::InfoHash::from(*h));
  }
  return out;
}

json Site::row_of(const json& t, const Metas& metas) {
  const std::string hex = t.value("info_hash", "");
  json row = {{"hash", hex},
              {"name", t.value("name", "")},
              {"size", format_size(t.value("size", uint64_t{0}))},
              {"seeders", std::to_string(t.value("seeders", 0))},
              {"leechers", std::to_string(t.value("leechers", 0))},
              {"completed", std::to_string(t.value("completed", 0))},
              {"published", day_time(t.value("published", int64_t{0}))},
              {"published_iso", iso_time(t.value("published", int64_t{0}))},
              {"stopped", t.value("state", "") == "stopped"}};
  auto h = from_hex(hex, 20);
  // From with_metainfo(): never parsed here.
  std::shared_ptr<const Metainfo> meta;
  if (h) {
    if (auto it = metas.find(tracker::InfoHash::from(*h)); it != metas.end()) meta = it->second;
  }
  {
    if (meta) {
      row["files"] = std::to_string(meta->real_file_count());
      row["magnet"] = to_uri(magnet_of(*meta));
      row["download"] = config_.base_url + "/data/" + hex + "/" + url_path(meta->name) +
                        (meta->multi_file ? "/" : "");
      if (meta->multi_file && !meta->files.empty()) {
        // A folder has no single download: link its first file.
        for (const FileEntry& f : meta->files) {
          if (f.is_pad()) continue;
          row["download"] = config_.base_url + "/data/" + hex + "/" + url_path(meta->name) + "/" +
                            url_path(f.path_string());
          break;
        }
      }
    }
  }
  return row;
}

void Site::handle(const HttpRequest& req, HttpResponse& resp) {
  const std::string path(req.path);
  if (path == "/static/style.css" || path == "/static/app.js") {
    resp.content_type =
        path.ends_with(".css") ? "text/css; charset=utf-8" : "text/javascript; charset=utf-8";
    resp.body = std::string(asset(path.substr(8)));
    resp.headers += "Cache-Control: public, max-age=3600\r\nX-Content-Type-Options: nosniff\r\n";
    return;
  }
  if (path == "/favicon.ico") {
    resp.status = 404;
    resp.body = "";
    return;
  }
  Viewer v = viewer(req);
  if (path.starts_with("/api/v1/")) return api(req, resp, v);
  const bool get = req.method == "GET" || req.method == "HEAD";
  const bool post = req.method == "POST";
  if (!get && !post) {
    resp.status = 405;
    resp.body = "GET, HEAD or POST\n";
    resp.headers += "Allow: GET, HEAD, POST\r\n";
    return;
  }
  if (post && !same_origin(req)) {
    return error_page(resp, 403, "The form came from another site.", v);
  }
  if (path == "/login") {
    if (post) return login(req, resp);
    return login_page(req, resp, v, "", 200);
  }
  if (path == "/logout" && post) return logout(req, resp, v);
  if (config_.login_to_read && !v.session) {
    if (path == "/feed.xml" || path.ends_with("/feed.xml")) {
      resp.status = 401;
      resp.body = "this server's feeds need a login\n";
      return;
    }
    return redirect(resp, "/login?next=" + url_query(path));
  }
  if (get && path == "/") return index(req, resp, v);
  if (get && path == "/feed.xml") return feed("", resp);
  if (get && path.starts_with("/u/") && path.ends_with("/feed.xml")) {
    return feed(path.substr(3, path.size() - 3 - 9), resp);
  }
  if (get && path.starts_with("/t/")) {
    std::string rest = path.substr(3);
    if (rest.ends_with(".torrent")) return torrent_file(rest.substr(0, rest.size() - 8), resp);
    return torrent(rest, resp, v);
  }
  if (path == "/publish") {
    if (!v.session) return redirect(resp, "/login?next=/publish");
    if (post) {
      // Uploads arrive through open_body(); a form without a body lands here.
      return publish_page(resp, v, "Choose a file or a folder to publish.");
    }
    return publish_page(resp, v, "");
  }
  if (get && path.starts_with("/job/")) return job_page(req, path.substr(5), resp, v);
  if (path == "/admin" || path.starts_with("/admin/")) {
    if (!v.session) return redirect(resp, "/login?next=/admin");
    if (!v.session->admin) return error_page(resp, 403, "Only administrators may do that.", v);
    if (post) return admin_post(req, resp, v);
    if (path == "/admin") return admin(req, resp, v, "", "");
  }
  error_page(resp, 404, "There is no page at " + path + ".", v);
}

void Site::index(const HttpRequest& req, HttpResponse& resp, const Viewer& v) {
  const std::string q = query_value(req.query, "q");
  size_t page_no = std::strtoull(query_value(req.query, "page").c_str(), nullptr, 10);
  if (page_no == 0) page_no = 1;
  if (page_no > 1'000'000) page_no = 1'000'000;
  int status = 0;
  const json list =
      call("GET", "/v1/torrents",
           "q=" + url_query(q) + "&offset=" + std::to_string((page_no - 1) * kPageSize) +
               "&limit=" + std::to_string(kPageSize),
           status);
  const json torrents = list.value("torrents", json::array());
  with_metainfo(hashes_of(torrents), resp,
                [this, list, torrents, q, page_no, v](HttpResponse& out, const Metas& metas) {
                  index_page(list, torrents, q, page_no, out, v, metas);
                });
}

void Site::index_page(const json& list, const json& torrents, const std::string& q, size_t page_no,
                      HttpResponse& resp, const Viewer& v, const Metas& metas) {
  json rows = json::array();
  for (const auto& t : torrents)
    rows.push_back(row_of(t, metas));
  const size_t total = list.value("total", size_t{0});
  const std::string base = "/?" + (q.empty() ? "" : "q=" + url_query(q) + "&") + "page=";
  json data = {
      {"heading", q.empty() ? "Published torrents" : "Torrents named like “" + q + "”"},
      {"q", q},
      {"torrents", rows},
      {"has_torrents", !rows.empty()},
      {"summary",
       total == 0 ? (q.empty() ? "Nothing is published yet." : "No torrent has such a name.")
                  : std::to_string(total) + (total == 1 ? " torrent" : " torrents") +
                        (total > kPageSize ? ", page " + std::to_string(page_no) + " of " +
                                                 std::to_string((total + kPageSize - 1) / kPageSize)
                                           : "")}};
  if (page_no > 1) data["prev"] = base + std::to_string(page_no - 1);
  if (page_no * kPageSize < total) data["next"] = base + std::to_string(page_no + 1);
  page(resp, 200, q.empty() ? "Torrents" : "Search", "index.html", data, v);
}

void Site::torrent(const std::string& hex, HttpResponse& resp, const Viewer& v) {
  if (!is_hex40(hex)) return error_page(resp, 404, "No torrent has that address.", v);
  with_metainfo(
      {tracker::InfoHash::from(*from_hex(hex, 20))}, resp,
      [this, hex, v](HttpResponse& out, const Metas& metas) { torrent_page(hex, out, v, metas); });
}

void Site::torrent_page(const std::string& hex, HttpResponse& resp, const Viewer& v,
                        const Metas& metas) {
  int status = 0;
  const json t =
      call("GET", "/v1/torrent",
           "id=" + hex + "&files=1&file_limit=" + std::to_string(kMaxShownFiles), status);
  if (status != 200) return error_page(resp, 404, "No torrent is published as " + hex + ".", v);
  json data = row_of(t, metas);
  const std::string state = t.value("state", "");
  data["publishing"] = state == "publishing";
  data["problem"] = t.value("problem", "");
  data["uploaded"] = format_size(t.value("uploaded", uint64_t{0}));
  data["magnet"] = t.value("magnet", "");
  data["qr"] = qr_svg(t.value("magnet", ""));
  data["version"] = t.value("version", "");
  data["piece_length"] = format_size(t.value("piece_length", uint64_t{0}));
  data["private"] = t.value("private", false);
  const size_t count = t.value("files", size_t{0});
  data["file_count"] = std::to_string(count);
  data["file_word"] = count == 1 ? "file" : "files";
  const std::string owner = owner_of(hex);
  if (!owner.empty()) data["owner"] = owner;
  json desc = json::array();
  for (const auto& line : split_lines(t.value("comment", "")))
    desc.push_back(line);
  data["description"] = desc;
  data["infohash_v1"] = t.contains("info_hash_v2_truncated") || !t.contains("info_hash_v2")
                            ? json(hex)
                            : json(nullptr);
  if (t.contains("info_hash_v2")) data["infohash_v2"] = t["info_hash_v2"];
  json trackers = json::array();
  for (const auto& tier : t.value("announce_list", json::array())) {
    for (const auto& u : tier)
      trackers.push_back(u);
  }
  data["trackers"] = trackers;
  data["webseeds"] = t.value("web_seeds", json::array());
  json files = json::array();
  const json& list = t.contains("file_list") ? t["file_list"] : json::array();
  const std::string name = t.value("name", "");
  const bool single = list.size() == 1 && list[0].value("path", "") == name && count == 1;
  for (const auto& f : list) {
    if (files.size() >= kMaxShownFiles) break;
    const std::string p = f.value("path", "");
    std::string url;
    if (state == "seeding") {
      url = "/data/" + hex + "/" + url_path(name) + (single ? "" : "/" + url_path(p));
    }
    files.push_back({{"path", p},
                     {"size", format_size(f.value("size", uint64_t{0}))},
                     {"url", url.empty() ? json(nullptr) : json(url)}});
  }
  if (count > files.size()) data["more_files"] = std::to_string(count - files.size());
  data["files"] = files;
  if (state != "seeding") data.erase("download");
  page(resp, 200, name, "torrent.html", data, v);
}

void Site::torrent_file(const std::string& hex, HttpResponse& resp) {
  auto h = is_hex40(hex) ? from_hex(hex, 20) : std::nullopt;
  std::optional<std::string> bytes;
  if (h) bytes = seed_.torrent_file(tracker::InfoHash::from(*h));
  if (!bytes) {
    resp.status = 404;
    resp.body = "no such torrent\n";
    return;
  }
  with_metainfo({tracker::InfoHash::from(*h)}, resp,
                [hex, bytes = std::move(*bytes)](HttpResponse& out, const Metas& metas) {
                  std::string name = hex;
                  if (!metas.empty() && metas.begin()->second) name = metas.begin()->second->name;
                  out.content_type = "application/x-bittorrent";
                  out.body = bytes;
                  out.headers += "Content-Disposition: attachment; filename=\"" + hex +
                                 ".torrent\"; filename*=UTF-8''" + url_query(name) + ".torrent\r\n";
                });
}

void Site::login_page(const HttpRequest& req, HttpResponse& resp, const Viewer& v,
                      const std::string& error, int status) {
  const std::string next = safe_next(query_value(req.query, "next"));
  json data = {{"next", next}};
  if (!error.empty()) data["error"] = error;
  page(resp, status, "Log in", "login.html", data, v);
}

void Site::login(const HttpRequest& req, HttpResponse& resp) {
  auto fields = parse_urlencoded(req.body);
  const Viewer none;
  if (!fields) return login_page(req, resp, none, "The form could not be read.", 400);
  const std::string user(form_value(*fields, "user").value_or(""));
  const std::string password(form_value(*fields, "password").value_or(""));
  const std::string next = safe_next(std::string(form_value(*fields, "next").value_or("/")));
  if (user.empty() || password.empty()) {
    return login_page(req, resp, none, "Give a user name and a password.", 400);
  }
  tracker::HttpReply reply = server_.defer();
  const bool json_wanted = wants_json(req);
  accounts_.login_async(
      client_address(req), user, password,
      [this, alive = std::weak_ptr<bool>(alive_), reply, next, user,
       json_wanted](LoginResult r) mutable {
        if (alive.expired()) return;
        HttpResponse out;
        const Viewer nobody;
        std::string error;
        int status = 200;
        switch (r.outcome) {
          case LoginResult::Outcome::kOk: {
            CookieOptions o;
            o.secure = secure();
            o.max_age = r.session.expires - static_cast<int64_t>(std::time(nullptr));
            out.headers += "Set-Cookie: " + set_cookie(kCookie, r.session.id, o) + "\r\n";
            if (json_wanted) {
              json_response(out, 200, {{"user", user}});
            } else {
              redirect(out, next);
            }
            ctx_.log->info("web: {} logged in", user);
            return reply.send(std::move(out));
          }
          case LoginResult::Outcome::kWrong:
            error = "Wrong user name or password.";
            status = 401;
            break;
          case LoginResult::Outcome::kLimited:
            error = "Too many failed logins from your address: try again in " +
                    std::to_string(r.retry_after) + " seconds.";
            status = 429;
            out.headers += "Retry-After: " + std::to_string(r.retry_after) + "\r\n";
            break;
          case LoginResult::Outcome::kBusy:
            error = "The server is busy: try again in a moment.";
            status = 503;
            break;
        }
        if (json_wanted) {
          json_error(out, status, "login_failed", error);
        } else {
          json data = {{"next", next}, {"error", error}, {"user_value", user}};
          page(out, status, "Log in", "login.html", data, nobody);
        }
        reply.send(std::move(out));
      });
}

void Site::logout(const HttpRequest& req, HttpResponse& resp, const Viewer& v) {
  if (v.session) {
    auto fields = parse_urlencoded(req.body);
    const auto token = fields ? form_value(*fields, "csrf") : std::nullopt;
    if (!token || !Accounts::check_csrf(*v.session, *token)) {
      return error_page(resp, 403, "The form was stale: reload the page and try again.", v);
    }
    accounts_.end_session(v.sid);
  }
  CookieOptions o;
  o.secure = secure();
  o.max_age = 0;
  resp.headers += "Set-Cookie: " + set_cookie(kCookie, "", o) + "\r\n";
  redirect(resp, "/");
}

void Site::publish_page(HttpResponse& resp, const Viewer& v, const std::string& error) {
  json data = {{"max_upload", format_size(config_.max_upload)},
               {"max_upload_bytes", std::to_string(config_.max_upload)}};
  if (!error.empty()) data["error"] = error;
  page(resp, error.empty() ? 200 : 400, "Publish", "publish.html", data, v);
}

std::optional<json> Site::job_view(const std::string& id) {
  int status = 0;
  const json j = call("GET", "/v1/job", "id=" + url_query(id), status);
  if (status != 200 || j.value("what", "") != "publish") return std::nullopt;
  // What anyone who may read sees of a publishing job: not the daemon's own view, which names
  // the paths on the server that it reads and writes (issue 15).
  const std::string state = j.value("state", "");
  json out = {
      {"job", j.value("job", uint64_t{0})},
      {"name", j.value("name", "")},
      {"state", state == "done" || state == "failed" || state == "cancelled" ? state : "running"},
      {"phase", state},
      {"done", j.value("done", uint64_t{0})},
      {"total", j.value("total", uint64_t{0})}};
  if (j.contains("error")) out["error"] = j["error"];
  if (j.contains("torrent")) out["info_hash"] = j["torrent"].value("info_hash", "");
  return out;
}

void Site::job_page(const HttpRequest& req, const std::string& id, HttpResponse& resp,
                    const Viewer& v) {
  const bool as_json = wants_json(req);
  const std::optional<json> view = job_view(id);
  if (!view) {
    if (as_json) return json_error(resp, 404, "not_found", "no such job");
    return error_page(resp, 404, "No such publishing job.", v);
  }
  const json& out = *view;
  const std::string state = out.value("phase", "");
  if (as_json) return json_response(resp, 200, out);
  if (state == "done") return redirect(resp, "/t/" + out.value("info_hash", ""));
  const uint64_t total = out["total"].get<uint64_t>();
  json data = {{"name", out["name"]}, {"phase", state}};
  if (out.contains("error")) {
    data["error"] = "Publishing failed: " + out["error"].get<std::string>();
  } else if (state != "failed" && state != "cancelled") {
    data["running"] = true;
    data["percent"] = std::to_string(total == 0 ? 0 : out["done"].get<uint64_t>() * 100 / total);
    resp.headers += "Refresh: 1\r\n";
  }
  page(resp, 200, "Publishing", "job.html", data, v);
}

void Site::admin(const HttpRequest& req, HttpResponse& resp, const Viewer& v,
                 const std::string& message, const std::string& error) {
  json users = json::array();
  for (const User& u : accounts_.users()) {
    users.push_back({{"name", u.name}, {"admin", u.admin}, {"created", day_time(u.created)}});
  }
  const std::string q = query_value(req.query, "q");
  size_t offset = std::strtoull(query_value(req.query, "offset").c_str(), nullptr, 10);
  int status = 0;
  const json list =
      call("GET", "/v1/torrents",
           "q=" + url_query(q) + "&offset=" + std::to_string(offset) + "&limit=100", status);
  json torrents = json::array();
  for (const auto& t : list.value("torrents", json::array())) {
    torrents.push_back({{"hash", t.value("info_hash", "")},
                        {"name", t.value("name", "")},
                        {"size", format_size(t.value("size", uint64_t{0}))},
                        {"state", t.value("state", "")},
                        {"in_place", t.value("in_place", false)}});
  }
  json data = {{"users", users}, {"torrents", torrents}, {"q", q}};
  if (offset + 100 < list.value("total", size_t{0})) {
    data["next"] = "/admin?q=" + url_query(q) + "&offset=" + std::to_string(offset + 100);
  }
  if (!message.empty()) data["message"] = message;
  if (!error.empty()) data["error"] = error;
  page(resp, error.empty() ? 200 : 400, "Admin", "admin.html", data, v);
}

void Site::admin_post(const HttpRequest& req, HttpResponse& resp, const Viewer& v) {
  auto fields = parse_urlencoded(req.body);
  const auto token = fields ? form_value(*fields, "csrf") : std::nullopt;
  if (!token || !Accounts::check_csrf(*v.session, *token)) {
    return error_page(resp, 403, "The form was stale: reload the page and try again.", v);
  }
  auto field = [&](std::string_view k) { return std::string(form_value(*fields, k).value_or("")); };
  const std::string path(req.path);
  if (path == "/admin/unpublish") {
    const std::string hex = field("hash");
    if (!is_hex40(hex)) return admin(req, resp, v, "", "No such torrent.");
    int status = 0;
    const json r =
        call("DELETE", "/v1/torrent",
             "id=" + hex + (field("delete_data") == "1" ? "&delete_data=1" : ""), status);
    if (status != 200) {
      return admin(req, resp, v, "", r["error"].value("message", "cannot unpublish"));
    }
    ctx_.log->info("web: {} unpublished {}", v.user(), hex);
    ctx_.store.del("web", "owner/" + hex);
    return admin(req, resp, v, "Unpublished " + r.value("name", hex) + ".", "");
  }
  if (path == "/admin/users/delete") {
    const std::string name = field("name");
    if (name == v.user()) return admin(req, resp, v, "", "You cannot delete yourself.");
    auto r = accounts_.delete_user(name);
    if (!r) return admin(req, resp, v, "", r.error().message);
    ctx_.log->info("web: {} deleted user {}", v.user(), name);
    return admin(req, resp, v, "Deleted " + name + ".", "");
  }
  if (path == "/admin/users/add") {
    const std::string name = field("name");
    const bool admin_flag = field("admin") == "1";
    tracker::HttpReply reply = server_.defer();
    auto started = accounts_.add_user_async(
        name, field("password"), admin_flag,
        [this, alive = std::weak_ptr<bool>(alive_), reply, req_query = std::string(req.query), v,
         name](AccountResult<User> r) mutable {
          if (alive.expired()) return;
          HttpResponse out;
          HttpRequest again;  // the admin page's own query (its search) is not kept
          if (r) {
            ctx_.log->info("web: {} added user {}", v.user(), name);
            admin(again, out, v, "Added " + name + ".", "");
          } else {
            admin(again, out, v, "", r.error().message);
          }
          reply.send(std::move(out));
        });
    if (!started) {
      HttpResponse out;
      HttpRequest again;
      admin(again, out, v, "", started.error().message);
      reply.send(std::move(out));
    }
    return;
  }
  error_page(resp, 404, "There is no such action.", v);
}

void Site::feed(const std::string& user, HttpResponse& resp) {
  if (!user.empty() && !accounts_.user(user)) {
    resp.status = 404;
    resp.body = "no such user\n";
    return;
  }
  int status = 0;
  // The newest 50 (of this user's, when asked: owners are looked up in the newest 2,000).
  const json list = call("GET", "/v1/torrents", user.empty() ? "limit=50" : "limit=2000", status);
  FeedChannel ch;
  ch.title = user.empty() ? config_.title : config_.title + ": " + user;
  ch.link = config_.base_url + "/";
  ch.description = user.empty() ? "Torrents published on " + config_.title
                                : "Torrents " + user + " published on " + config_.title;
  ch.self_url = config_.base_url + (user.empty() ? "/feed.xml" : "/u/" + user + "/feed.xml");
  // The newest 50 (of this user's): their metainfo parsed on a worker when not at hand.
  json torrents = json::array();
  for (const auto& t : list.value("torrents", json::array())) {
    if (torrents.size() >= 50) break;
    if (!user.empty() && owner_of(t.value("info_hash", "")) != user) continue;
    torrents.push_back(t);
  }
  with_metainfo(hashes_of(torrents), resp,
                [this, ch, torrents](HttpResponse& out, const Metas& metas) {
                  feed_page(ch, torrents, out, metas);
                });
}

void Site::feed_page(const FeedChannel& ch, const json& torrents, HttpResponse& resp,
                     const Metas& metas) {
  std::vector<FeedItem> items;
  for (const auto& t : torrents) {
    const std::string hex = t.value("info_hash", "");
    auto h = from_hex(hex, 20);
    std::optional<std::string> bytes;  // for its length
    std::shared_ptr<const Metainfo> meta;
    if (h) bytes = seed_.torrent_file(tracker::InfoHash::from(*h));
    if (h) {
      if (auto it = metas.find(tracker::InfoHash::from(*h)); it != metas.end()) meta = it->second;
    }
    if (!bytes || !meta) continue;
    FeedItem it;
    it.title = meta->name;
    it.description = meta->comment.empty() ? meta->name + " (" + format_size(meta->total_size) + ")"
                                           : meta->comment;
    it.link = config_.base_url + "/t/" + hex;
    it.guid = hex;
    it.pub_date = t.value("published", int64_t{0});
    it.torrent_url = config_.base_url + "/t/" + hex + ".torrent";
    it.torrent_length = bytes->size();
    it.torrent_file_name = meta->name + ".torrent";
    it.magnet = to_uri(magnet_of(*meta));
    it.content_length = meta->total_size;
    it.info_hash = hex;
    items.push_back(std::move(it));
  }
  resp.content_type = "application/rss+xml; charset=utf-8";
  resp.body = render_rss(ch, items);
  resp.headers += "Cache-Control: max-age=60\r\n";
}

// /api/v1/: the control API's reading routes for anyone who may read, and publishing (as an
// upload, open_body()), job control and unpublishing for users with a token (or a session and
// its CSRF token). Routes that reach the daemon's files or configuration stay on the socket.
void Site::api(const HttpRequest& req, HttpResponse& resp, const Viewer& v) {
  const std::string route = "/v1/" + std::string(req.path.substr(8));
  const std::string method(req.method);
  if (config_.login_to_read && !v.logged_in()) {
    return json_error(resp, 401, "login_required", "this server needs an API token to read");
  }
  const bool reading = (method == "GET" || method == "HEAD") &&
                       (route == "/v1/torrents" || route == "/v1/torrent" || route == "/v1/job" ||
                        route == "/v1/tracker/swarms");
  const bool writing = (method == "DELETE" && (route == "/v1/job" || route == "/v1/torrent"));
  if (route == "/v1/publish" && method == "POST") {
    return json_error(resp, 415, "upload_expected",
                      "POST /api/v1/publish takes a multipart/form-data upload (curl -F "
                      "file=@PATH): publishing a path on the server is for the control socket");
  }
  if (!reading && !writing) {
    return json_error(resp, 404, "not_found",
                      "no route " + method + " " + std::string(req.path) + " over HTTP");
  }
  if (writing) {
    if (v.session && !same_origin(req)) {
      return json_error(resp, 403, "cross_site", "a request from another site");
    }
    if (!v.logged_in()) {
      return json_error(resp, 401, "login_required",
                        "this needs an API token: Authorization: Bearer TOKEN");
    }
    if (v.session && !Accounts::check_csrf(*v.session, req.header("x-csrf-token"))) {
      return json_error(resp, 403, "csrf", "X-CSRF-Token is missing or wrong");
    }
  }
  // The daemon gets a query made of the values checked here, nothing else.
  std::string query;
  const std::string id = query_value(req.query, "id");
  if (route == "/v1/torrent" && method == "DELETE") {
    if (!is_hex40(id)) {
      return json_error(resp, 400, "bad_request", "id: the torrent's info-hash (40 hex digits)");
    }
    if (!v.admin() && owner_of(id) != v.user()) {
      return json_error(resp, 403, "forbidden",
                        "only the user who published a torrent (or an admin) unpublishes it");
    }
    query = "id=" + id + (query_value(req.query, "delete_data") == "1" ? "&delete_data=1" : "");
  } else if (route == "/v1/job") {
    const uint64_t job = std::strtoull(id.c_str(), nullptr, 10);
    if (method != "DELETE") {
      const std::optional<json> view = job_view(std::to_string(job));
      if (!view) return json_error(resp, 404, "not_found", "no such publishing job");
      return json_response(resp, 200, *view);
    }
    if (method == "DELETE" && !v.admin()) {
      auto it = jobs_.find(job);
      if (it == jobs_.end() || it->second != v.user()) {
        return json_error(resp, 403, "forbidden",
                          "only the user who started a job (or an admin) cancels it");
      }
    }
    query = "id=" + std::to_string(job);
  } else if (route == "/v1/torrent") {
    // At most kMaxShownFiles of its files, as its page shows (the count is in `files`).
    query = "id=" + url_query(id) +
            (query_value(req.query, "files") == "1"
                 ? "&files=1&file_limit=" + std::to_string(kMaxShownFiles)
                 : "");
  } else if (route == "/v1/torrents") {
    size_t limit = std::strtoull(query_value(req.query, "limit").c_str(), nullptr, 10);
    if (limit == 0 || limit > 500) limit = 500;
    query = "q=" + url_query(query_value(req.query, "q")) + "&offset=" +
            std::to_string(std::strtoull(query_value(req.query, "offset").c_str(), nullptr, 10)) +
            "&limit=" + std::to_string(limit);
  } else if (route == "/v1/tracker/swarms") {
    size_t limit = std::strtoull(query_value(req.query, "limit").c_str(), nullptr, 10);
    if (limit == 0 || limit > 500) limit = 500;
    query = "limit=" + std::to_string(limit);
  }
  daemon::ApiRequest r;
  r.method = method;
  r.path = route;
  r.query = query;
  r.body = std::string(req.body);
  auto answer = [this, r, writing, id, user = v.user()](HttpResponse& out) mutable {
    daemon::ApiResponse res = ctx_.call(r);
    if (writing) {
      ctx_.log->info("web api: {} {} {} by {}", r.method, r.path, r.query, user);
      if (res.status == 200 && r.path == "/v1/torrent") ctx_.store.del("web", "owner/" + id);
    }
    // Where the daemon keeps the data is not the public's business.
    auto scrub = [](json& t) {
      if (t.is_object()) t.erase("data");
    };
    if (res.body.contains("torrents")) {
      for (auto& t : res.body["torrents"])
        scrub(t);
    }
    if (res.body.contains("torrent")) scrub(res.body["torrent"]);
    if (r.path == "/v1/torrent") scrub(res.body);
    json_response(out, res.status, res.body);
  };
  // One torrent's view parses its metainfo: on a worker, when it is not at hand.
  // (Only when `id` names one torrent: an ambiguous prefix gets its 409 without parsing.)
  if (route == "/v1/torrent" && !writing) {
    const auto keys = seed_.keys_named(id);
    if (keys.size() == 1) {
      return with_metainfo(keys, resp,
                           [answer](HttpResponse& out, const Metas&) mutable { answer(out); });
    }
  }
  answer(resp);
}

std::string Site::owner_of(const std::string& hex) {
  return ctx_.store.get("web", "owner/" + hex).value_or("");
}

void Site::watch_job(uint64_t job, std::string user) {
  jobs_[job] = std::move(user);
  if (!job_timer_.active()) job_timer_.start(std::chrono::milliseconds(500), true);
}

void Site::check_jobs() {
  for (auto it = jobs_.begin(); it != jobs_.end();) {
    int status = 0;
    const json j = call("GET", "/v1/job", "id=" + std::to_string(it->first), status);
    const std::string state = j.value("state", "");
    if (status != 200 || state == "failed" || state == "cancelled") {
      it = jobs_.erase(it);
      continue;
    }
    if (state == "done") {
      const std::string hex = j.contains("torrent") ? j["torrent"].value("info_hash", "") : "";
      // An upload of what was published already (by anyone) does not make its uploader the
      // owner: the first publisher stays it.
      const bool again = j.contains("torrent") && j["torrent"].value("already_published", false);
      if (!hex.empty() && !it->second.empty() && !again && owner_of(hex).empty()) {
        ctx_.store.put("web", "owner/" + hex, it->second);
      }
      it = jobs_.erase(it);
      continue;
    }
    ++it;
  }
  if (jobs_.empty()) job_timer_.stop();
}

// ---- Uploads ----

// What an upload's worker-side steps share; one step at a time (the server hands the next chunk
// only when the last was taken), guarded by `mu` against the cleanup after an abort.
struct Site::Upload {
  std::mutex mu;
  std::string dir;  // the content-store folder it writes into (created with the first file)
  std::unique_ptr<MultipartParser> parser;
  std::map<std::string, std::string> fields;  // text fields
  std::string field_name;                     // the text field being read
  bool in_file = false;
  int fd = -1;
  std::string root;     // the torrent's name: the file's, or the folder's
  bool folder = false;  // paths have folders (webkitdirectory)
  size_t files = 0;
  uint64_t bytes = 0;
  size_t field_bytes = 0;
  std::set<std::string> paths;  // no file twice
  bool done = false;            // cleaned up or handed over

  Status begin_part(const MultipartPart& part) {
    if (!part.filename) {
      in_file = false;
      field_name.clear();
      if (!known_field(part.name)) return Ok{};  // dropped
      field_name = part.name;
      fields[field_name];
      return Ok{};
    }
    field_name.clear();
    if (part.filename->empty()) {  // a file input with nothing chosen
      in_file = false;
      return Ok{};
    }
    auto comps = sanitise_relative_path(*part.filename);
    if (!comps) return comps.error();
    if (comps->size() > 1) {
      if (files > 0 && !folder) return Error("a file and a folder cannot be published together");
      if (files > 0 && (*comps)[0] != root) {
        return Error("files of two folders (" + root + ", " + (*comps)[0] + ") in one upload");
      }
      folder = true;
      root = (*comps)[0];
    } else {
      if (files > 0) {
        return Error("several files without a folder: choose a folder, or one file");
      }
      root = (*comps)[0];
    }
    std::string rel;
    for (const auto& c : *comps)
      rel += (rel.empty() ? "" : "/") + c;
    if (!paths.insert(rel).second) return Error("the upload has " + rel + " twice");
    ++files;
    std::error_code ec;
    const std::filesystem::path p = std::filesystem::path(dir) / rel;
    std::filesystem::create_directories(p.parent_path(), ec);
    if (ec) return Error("cannot create " + p.parent_path().string() + ": " + ec.message());
    fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) return Error("cannot create " + p.string() + ": " + std::strerror(errno));
    in_file = true;
    return Ok{};
  }

  Status data(std::string_view d) {
    if (in_file) {
      while (!d.empty()) {
        const ssize_t n = ::write(fd, d.data(), d.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return Error(std::string("writing the upload: ") + std::strerror(errno));
        d.remove_prefix(static_cast<size_t>(n));
        bytes += static_cast<uint64_t>(n);
      }
      return Ok{};
    }
    if (field_name.empty()) return Ok{};
    std::string& v = fields[field_name];
    if (v.size() + d.size() > kMaxField) {
      return Error("the form field " + field_name + " is longer than 64 KiB");
    }
    if (field_bytes + d.size() > kMaxFieldsTotal) {
      return Error("the form's fields are longer than 128 KiB together");
    }
    field_bytes += d.size();
    v.append(d);
    return Ok{};
  }

  Status end_part() {
    if (in_file && fd >= 0) {
      const int r = ::close(fd);
      fd = -1;
      in_file = false;
      if (r != 0) return Error(std::string("writing the upload: ") + std::strerror(errno));
    }
    field_name.clear();
    return Ok{};
  }

  // Blocking: gives the upload the name the form asked for (its file or folder is renamed).
  Status rename_as_asked() {
    std::string name = fields["name"];
    while (!name.empty() && (name.back() == ' ' || name.back() == '\n' || name.back() == '\r')) {
      name.pop_back();
    }
    if (name.empty() || name == root) return Ok{};
    auto clean = sanitise_name(name);
    if (!clean) return Error("the name: " + clean.error().message);
    const std::string from = dir + "/" + root;
    const std::string to = dir + "/" + *clean;
    if (::rename(from.c_str(), to.c_str()) != 0) {
      return Error("cannot rename the upload: " + std::string(std::strerror(errno)));
    }
    root = *clean;
    return Ok{};
  }

  // Blocking: removes what was written.
  void discard() {
    if (fd >= 0) ::close(fd);
    fd = -1;
    std::error_code ec;
    std::filesystem::permissions(dir, std::filesystem::perms::owner_all,
                                 std::filesystem::perm_options::add, ec);
    std::filesystem::remove_all(dir, ec);
    done = true;
  }
};

namespace {
void discard_locked(const std::shared_ptr<Site::Upload>& up) {
  std::lock_guard lock(up->mu);
  if (!up->done) up->discard();
}
}  // namespace

class Site::UploadSink : public tracker::BodySink {
 public:
  UploadSink(Site& site, std::shared_ptr<Upload> up, std::string user, bool json_wanted,
             uint64_t length)
      : site_(site),
        up_(std::move(up)),
        user_(std::move(user)),
        json_(json_wanted),
        length_(length),
        alive_(site.alive_) {
    site_.receiving_ += length_;
    ++site_.uploads_of_[user_];
  }
  // The body is all on disk (or given up): its bytes are no longer coming.
  ~UploadSink() override {
    if (alive_.expired()) return;
    site_.receiving_ -= length_;
    if (--site_.uploads_of_[user_] == 0) site_.uploads_of_.erase(user_);
  }
  UploadSink(const UploadSink&) = delete;
  UploadSink& operator=(const UploadSink&) = delete;

  void write(std::string chunk, std::function<void(Status)> done) override {
    auto up = up_;
    auto& loop = site_.ctx_.loop;
    error_status = 400;
    site_.ctx_.workers.submit(
        [up, &loop, chunk = std::move(chunk), done = std::move(done)]() mutable {
          Status s = Ok{};
          {
            std::lock_guard lock(up->mu);
            if (up->done) {
              s = Error("cancelled");
            } else {
              s = up->parser->feed(chunk);
              if (!s) up->discard();
            }
          }
          loop.post([s, done = std::move(done)] { done(s); });
        });
  }

  void finish(tracker::HttpReply reply) override {
    auto up = up_;
    Site* site = &site_;
    std::weak_ptr<bool> alive = site_.alive_;
    auto& loop = site_.ctx_.loop;
    const std::string user = user_;
    const bool as_json = json_;
    site_.ctx_.workers.submit([up, site, alive, &loop, reply, user, as_json]() mutable {
      Status s = Ok{};
      {
        std::lock_guard lock(up->mu);
        s = up->parser->finish();
        if (s && up->files == 0) s = Error("no file was chosen: choose a file or a folder");
        if (s) s = up->rename_as_asked();
        if (!s) up->discard();
      }
      loop.post([up, site, alive, reply, user, as_json, s]() mutable {
        if (alive.expired()) {
          if (s) discard_locked(up);  // the module stopped: nobody will publish it
          return;
        }
        site->published(up, reply, user, as_json, s);
      });
    });
  }

  void abort() override {
    auto up = up_;
    site_.ctx_.workers.submit([up] {
      std::lock_guard lock(up->mu);
      if (!up->done) up->discard();
    });
  }

 private:
  Site& site_;
  std::shared_ptr<Upload> up_;
  std::string user_;
  bool json_;
  uint64_t length_;
  std::weak_ptr<bool> alive_;
};

std::unique_ptr<tracker::BodySink> Site::open_body(const HttpRequest& req, HttpResponse& resp) {
  const bool page_upload = req.path == "/publish" && req.method == "POST";
  const bool api_upload = req.path == "/api/v1/publish" && req.method == "POST";
  if (!page_upload && !api_upload) {
    if (req.content_length > 64 * 1024) {
      resp.status = 413;
      resp.body = "request body too large (64 KiB at most here)\n";
    }
    return nullptr;  // buffered; handle() answers
  }
  Viewer v = viewer(req);
  const bool as_json = api_upload || wants_json(req);
  auto refuse = [&](int status, const std::string& code, const std::string& message) {
    if (as_json) {
      json_error(resp, status, code, message);
    } else {
      resp.status = status;
      resp.content_type = "text/plain; charset=utf-8";
      resp.body = message + "\n";
    }
    return nullptr;
  };
  if (!v.logged_in()) {
    return refuse(401, "login_required",
                  api_upload ? "publishing needs an API token: Authorization: Bearer TOKEN"
                             : "log in to publish");
  }
  if (v.session && !same_origin(req)) {
    return refuse(403, "cross_site", "the upload came from another site");
  }
  if (v.session) {
    std::string token(req.header("x-csrf-token"));
    if (token.empty()) token = query_value(req.query, "csrf");
    if (!Accounts::check_csrf(*v.session, token)) {
      return refuse(403, "csrf", "the form was stale (no or a wrong CSRF token): reload the page");
    }
  }
  auto boundary = multipart_boundary(req.header("content-type"));
  if (!boundary) {
    return refuse(415, "multipart_expected",
                  "an upload is a multipart/form-data body (curl -F file=@PATH)");
  }
  if (req.content_length > config_.max_upload) {
    return refuse(413, "too_large",
                  "the upload is " + format_size(req.content_length) + ": at most " +
                      format_size(config_.max_upload) + " (web.max_upload)");
  }
  auto it = uploads_of_.find(v.user());
  if (it != uploads_of_.end() && it->second >= kMaxUploadsPerUser) {
    return refuse(
        429, "too_many_uploads",
        "you have " + std::to_string(it->second) + " uploads in progress: wait until one is done");
  }
  struct statvfs fs {};
  const std::string store = seed_.content_dir();
  if (statvfs(store.c_str(), &fs) == 0) {
    // Uploads still coming will take their room too.
    const uint64_t free_bytes = static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize;
    const uint64_t room = free_bytes > receiving_ ? free_bytes - receiving_ : 0;
    if (room < req.content_length + kDiskMargin) {
      return refuse(507, "disk_full",
                    "not enough disk space for " + format_size(req.content_length) + " (" +
                        format_size(free_bytes) + " free, " + format_size(receiving_) +
                        " of it for uploads in progress)");
    }
  }
  auto up = std::make_shared<Upload>();
  up->dir = seed_.new_upload_dir();
  if (up->dir.empty()) return refuse(503, "unavailable", "the everseed is not running");
  Upload* raw = up.get();
  MultipartCallbacks cb;
  cb.on_part_begin = [raw](const MultipartPart& p) { return raw->begin_part(p); };
  cb.on_part_data = [raw](std::string_view d) { return raw->data(d); };
  cb.on_part_end = [raw] { return raw->end_part(); };
  up->parser = std::make_unique<MultipartParser>(*boundary, MultipartLimits{}, std::move(cb));
  ctx_.log->info("web: {} uploads {} into {}", v.user(), format_size(req.content_length), up->dir);
  return std::make_unique<UploadSink>(*this, up, v.user(), as_json, req.content_length);
}

void Site::published(const std::shared_ptr<Upload>& up, tracker::HttpReply& reply,
                     const std::string& user, bool as_json, const Status& s) {
  HttpResponse out;
  auto fail = [&](int status, const std::string& code, const std::string& message) {
    if (as_json) {
      json_error(out, status, code, message);
    } else {
      out.status = status;
      out.content_type = "text/plain; charset=utf-8";
      out.body = message + "\n";
    }
    reply.send(std::move(out));
  };
  if (!s) return fail(400, "bad_upload", s.error().message);
  json options = json::object();
  auto field = [&](const std::string& k) {
    auto it = up->fields.find(k);
    return it == up->fields.end() ? std::string() : it->second;
  };
  if (!field("description").empty()) options["comment"] = field("description");
  if (!field("piece_size").empty()) {
    options["piece_length"] = std::strtoull(field("piece_size").c_str(), nullptr, 10);
  }
  if (field("private") == "1") options["private"] = true;
  json tiers = json::array();
  for (const auto& url : split_lines(field("trackers"))) {
    if (!url.starts_with("http://") && !url.starts_with("https://") && !url.starts_with("udp://")) {
      ctx_.workers.submit([up] { discard_locked(up); });
      return fail(400, "bad_tracker", "a tracker is an http://, https:// or udp:// URL: " + url);
    }
    tiers.push_back(json::array({url}));
  }
  if (tiers.size() > kMaxTrackers) {
    ctx_.workers.submit([up] { discard_locked(up); });
    return fail(400, "bad_tracker", "at most " + std::to_string(kMaxTrackers) + " extra trackers");
  }
  if (!tiers.empty()) options["trackers"] = tiers;
  if (!field("version").empty()) options["version"] = field("version");
  auto job = seed_.publish_upload(up->root, up->dir, options);
  if (!job) {
    ctx_.workers.submit([up] { discard_locked(up); });
    return fail(400, "bad_request", job.error().message);
  }
  up->done = true;  // the everseed's job owns the folder now
  watch_job(*job, user);
  ctx_.log->info("web: {} published {} ({} files, {}): job {}", user, up->root, up->files,
                 format_size(up->bytes), *job);
  if (as_json) {
    json_response(out, 202,
                  {{"job", *job}, {"name", up->root}, {"url", "/job/" + std::to_string(*job)}});
  } else {
    redirect(out, "/job/" + std::to_string(*job));
  }
  reply.send(std::move(out));
}

}  // namespace evert::web
