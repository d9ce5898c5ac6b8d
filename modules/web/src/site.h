// The web module's pages and HTTP API: the index of published torrents, each torrent's page,
// login, the publish page and its uploads, the admin page, the RSS feeds, and /api/v1/ (the
// control API's routes over HTTP with API tokens). Every operation is the control API's own
// handler, called through ModuleContext::call (one implementation, two front ends), or the
// everseed's and the accounts' interfaces; pages are mustache templates built into the binary
// (assets.h), every value HTML-escaped by the template engine.
//
// Safety: session cookies are HttpOnly, SameSite=Strict, and Secure when the public URL is
// https; every form that changes something carries the session's CSRF token (checked in
// constant time); logins are rate-limited per client address (the accounts' limiter); an
// upload streams to the content store (never held in memory), bounded by max_upload and the
// disk's free space, and an upload cut short leaves nothing behind.
//
// Thread-safety: loop thread only; uploads write on worker threads, one chunk at a time.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "accounts.h"
#include "evert/daemon/module.h"
#include "evert/everseed/everseed_module.h"
#include "evert/tracker/http_server.h"
#include "feed.h"

namespace evert::web {

struct SiteConfig {
  std::string title = "Evertorrent";
  bool login_to_read = false;  // pages and feeds need a login (the web seed stays public)
  uint64_t max_upload = 0;     // bytes of one upload's request body at most
  std::vector<std::string> trusted_proxies;  // addresses whose X-Forwarded-For is believed
  std::string base_url;                      // no trailing '/'
  bool tls = false;  // the listener serves HTTPS itself (whatever base_url says)
};

class Site {
 public:
  Site(daemon::ModuleContext& ctx, everseed::EverseedModule& seed, Accounts& accounts,
       tracker::HttpServer& server);
  ~Site();
  Site(const Site&) = delete;
  Site& operator=(const Site&) = delete;

  void set_config(SiteConfig config) { config_ = std::move(config); }

  // Every request but the web seed's (/data/).
  void handle(const tracker::HttpRequest& req, tracker::HttpResponse& resp);
  // A request with a body: uploads stream into a sink; other bodies (forms, JSON) are buffered.
  std::unique_ptr<tracker::BodySink> open_body(const tracker::HttpRequest& req,
                                               tracker::HttpResponse& resp);

  // The address a request came from: the connection's, or X-Forwarded-For's last hop when the
  // connection is from a trusted proxy.
  [[nodiscard]] std::string client_address(const tracker::HttpRequest& req) const;
  // False for a request a browser says came from another site (Sec-Fetch-Site, Origin).
  [[nodiscard]] bool same_origin(const tracker::HttpRequest& req) const;

  struct Upload;  // an upload being received (site.cpp)

 private:
  struct Viewer;
  using Metas = everseed::EverseedModule::Metas;  // parsed metainfo by store key
  class UploadSink;
  Viewer viewer(const tracker::HttpRequest& req);

  // Pages.
  void index(const tracker::HttpRequest& req, tracker::HttpResponse& resp, const Viewer& v);
  void index_page(const nlohmann::json& list, const nlohmann::json& torrents, const std::string& q,
                  size_t page_no, tracker::HttpResponse& resp, const Viewer& v, const Metas& metas);
  void torrent(const std::string& hex, tracker::HttpResponse& resp, const Viewer& v);
  void torrent_page(const std::string& hex, tracker::HttpResponse& resp, const Viewer& v,
                    const Metas& metas);
  void torrent_file(const std::string& hex, tracker::HttpResponse& resp);
  void login_page(const tracker::HttpRequest& req, tracker::HttpResponse& resp, const Viewer& v,
                  const std::string& error, int status);
  void login(const tracker::HttpRequest& req, tracker::HttpResponse& resp);
  void logout(const tracker::HttpRequest& req, tracker::HttpResponse& resp, const Viewer& v);
  void publish_page(tracker::HttpResponse& resp, const Viewer& v, const std::string& error);
  // A publishing job as the pages and /api/v1/job show it (no paths), or nullopt when there
  // is no such job or it is not a publish.
  std::optional<nlohmann::json> job_view(const std::string& id);
  void job_page(const tracker::HttpRequest& req, const std::string& id, tracker::HttpResponse& resp,
                const Viewer& v);
  void admin(const tracker::HttpRequest& req, tracker::HttpResponse& resp, const Viewer& v,
             const std::string& message, const std::string& error);
  void admin_post(const tracker::HttpRequest& req, tracker::HttpResponse& resp, const Viewer& v);
  void feed(const std::string& user, tracker::HttpResponse& resp);
  void feed_page(const FeedChannel& ch, const nlohmann::json& torrents, tracker::HttpResponse& resp,
                 const Metas& metas);
  void api(const tracker::HttpRequest& req, tracker::HttpResponse& resp, const Viewer& v);

  // Renders `body` (a template) with `data` inside the layout.
  void page(tracker::HttpResponse& resp, int status, const std::string& title,
            const std::string& body, nlohmann::json data, const Viewer& v);
  void error_page(tracker::HttpResponse& resp, int status, const std::string& message,
                  const Viewer& v);
  void redirect(tracker::HttpResponse& resp, const std::string& to);
  std::string render(const std::string& name, const nlohmann::json& data);
  nlohmann::json call(const std::string& method, const std::string& path, const std::string& query,
                      int& status, const nlohmann::json& body = nullptr);
  nlohmann::json row_of(const nlohmann::json& t, const Metas& metas);
  // Runs `render` into the response once the metainfo of the torrents `hashes` names is at
  // hand: at once when it is (recently used), else the reply waits while a worker parses it
  // (a torrent of 100,000 files takes a while; pages list up to 50). Issue 15.
  void with_metainfo(const std::vector<tracker::InfoHash>& hashes, tracker::HttpResponse& resp,
                     std::function<void(tracker::HttpResponse&, const Metas&)> render);
  static std::vector<tracker::InfoHash> hashes_of(const nlohmann::json& torrents);
  // Cookies are Secure when the pages are served over HTTPS: by this listener (also on a
  // wildcard address, where base_url may be empty or say http://), or by the proxy public_url
  // names.
  [[nodiscard]] bool secure() const {
    return config_.tls || config_.base_url.starts_with("https://");
  }

  // An upload received whole (or failed, `s`): publishes it and answers.
  void published(const std::shared_ptr<Upload>& up, tracker::HttpReply& reply,
                 const std::string& user, bool as_json, const Status& s);
  // An upload handed to the everseed: its owner is recorded when the job is done.
  void watch_job(uint64_t job, std::string user);
  void check_jobs();
  [[nodiscard]] std::string owner_of(const std::string& hex);

  daemon::ModuleContext& ctx_;
  everseed::EverseedModule& seed_;
  Accounts& accounts_;
  tracker::HttpServer& server_;
  SiteConfig config_;
  std::map<uint64_t, std::string> jobs_;      // upload jobs running -> the user who uploaded
  uint64_t receiving_ = 0;                    // bytes of the uploads still coming
  std::map<std::string, size_t> uploads_of_;  // uploads coming, by user
  daemon::Timer job_timer_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace evert::web
