#include "evert/web/web_module.h"

#include "accounts.h"
#include "accounts_api.h"
#include "evert/everseed/everseed_module.h"
#include "evert/tracker/http_server.h"
#include "evert/tracker/tls.h"
#include "site.h"
#include "web_config.h"
#include "web_seed.h"

namespace evert::web {

using nlohmann::json;

struct WebModule::Impl {
  daemon::ModuleContext* ctx = nullptr;
  WebSection cfg;
  WebSection pending;
  // The HTTPS context of cfg and of pending (null: plain HTTP), made when configured so that
  // a wrong file is refused before anything starts.
  std::shared_ptr<SSL_CTX> tls;
  std::shared_ptr<SSL_CTX> pending_tls;
  everseed::EverseedModule* seed = nullptr;
  std::unique_ptr<tracker::HttpServer> server;
  std::string base_url;  // public_url, or the first bound address that is not a wildcard
  std::unique_ptr<Accounts> accounts;
  std::unique_ptr<Site> site;

  ~Impl() {
    // Connections first: closing one aborts its upload, which reaches the site.
    server.reset();
    site.reset();
  }

  void handle(const tracker::HttpRequest& req, tracker::HttpResponse& resp) {
    if (req.path.starts_with("/data/")) {
      serve_web_seed([this](const tracker::InfoHash& h, const std::vector<std::string>& p,
                            FileFound later) { return seed->served_file(h, p, std::move(later)); },
                     req, resp, [this] { return server->defer(); });
      return;
    }
    if (site) return site->handle(req, resp);
    resp.status = 404;
    resp.body = "not found\n";
  }

  [[nodiscard]] tracker::HttpServer::Options options() const {
    tracker::HttpServer::Options o;
    o.timeout_seconds = cfg.timeout;
    o.max_connections = static_cast<size_t>(cfg.max_connections);
    o.max_per_address = static_cast<size_t>(cfg.max_per_address);
    for (const auto& ip : cfg.trusted_proxies) {
      tracker::Endpoint e;
      if (tracker::Endpoint::parse_ip(ip, e)) o.exempt.push_back(e);
    }
    o.max_body = 64 * 1024;  // forms and JSON; uploads stream (Site::open_body)
    o.get_only = false;
    return o;
  }

  [[nodiscard]] SiteConfig site_config() const {
    SiteConfig c;
    c.title = cfg.title;
    c.login_to_read = cfg.read_access == "login";
    c.max_upload = cfg.max_upload;
    c.trusted_proxies = cfg.trusted_proxies;
    c.base_url = base_url;
    c.tls = server != nullptr && server->tls();
    return c;
  }

  void set_base_url() {
    base_url = cfg.public_url;
    while (base_url.ends_with('/'))
      base_url.pop_back();
    if (!base_url.empty() || !server) return;
    for (const tracker::Endpoint& e : server->addresses()) {
      if (e.ip == tracker::Endpoint{}.ip) continue;  // a wildcard is no address to give out
      base_url = (server->tls() ? "https://" : "http://") + e.to_string();
      return;
    }
  }
};

WebModule::WebModule() : impl_(std::make_unique<Impl>()) {}
WebModule::~WebModule() = default;

std::string WebModule::name() const {
  return "web";
}

Status WebModule::configure(const YAML::Node& section) {
  WebSection s;
  if (auto st = daemon::parse_module_section("web", section, web_table(), s); !st) return st;
  if (s.listen.empty()) return Error("web.listen is empty: nothing could connect");
  if (s.tls_certificate.empty() != s.tls_key.empty()) {
    return Error(
        "web.tls_certificate and web.tls_key go together: set both (HTTPS) or neither (plain "
        "HTTP)");
  }
  std::shared_ptr<SSL_CTX> tls;
  if (!s.tls_certificate.empty()) {
    auto ctx = tracker::make_tls_context(s.tls_certificate, s.tls_key);
    if (!ctx) return Error("TLS " + ctx.error().message);  // "module web: " is prefixed
    tls = std::move(*ctx);
  }
  impl_->pending = s;
  impl_->pending_tls = std::move(tls);
  return Ok{};
}

Status WebModule::start(daemon::ModuleContext& ctx) {
  Impl& m = *impl_;
  m.ctx = &ctx;
  m.cfg = m.pending;
  m.tls = m.pending_tls;
  m.seed = dynamic_cast<everseed::EverseedModule*>(ctx.module("everseed"));
  if (m.seed == nullptr) {
    return Error(
        "the web module serves what the everseed publishes: list everseed before web "
        "in daemon.modules");
  }
  m.server = std::make_unique<tracker::HttpServer>(
      ctx.loop,
      [&m](const tracker::HttpRequest& req, tracker::HttpResponse& resp) { m.handle(req, resp); },
      m.options());
  m.server->set_workers(&ctx.workers);
  m.server->set_tls(m.tls);
  for (const auto& l : m.cfg.listen) {
    sockaddr_storage ss{};
    unsigned len = 0;
    std::string why;
    if (!tracker::parse_listen(l, ss, len, why)) return Error("listen " + l + ": " + why);
    if (auto s = m.server->listen(ss, len, "web " + l); !s) return s;
  }
  m.set_base_url();
  m.seed->set_web_seed_base(m.base_url);
  m.accounts = start_accounts(ctx, accounts_options(m.cfg));
  m.site = std::make_unique<Site>(ctx, *m.seed, *m.accounts, *m.server);
  m.site->set_config(m.site_config());
  m.server->set_stream_opener(
      [&m](const tracker::HttpRequest& req,
           tracker::HttpResponse& resp) -> std::unique_ptr<tracker::BodySink> {
        if (!m.site || req.path.starts_with("/data/")) return nullptr;
        return m.site->open_body(req, resp);
      });
  ctx.log->info("web seed at {}/data/", m.base_url.empty() ? "(no public_url)" : m.base_url);
  return Ok{};
}

std::vector<std::string> WebModule::reload() {
  Impl& m = *impl_;
  std::vector<std::string> restart;
  for (const auto& f : web_table()) {
    if (!f.reloadable && f.show(m.cfg) != f.show(m.pending)) restart.push_back("web." + f.key);
  }
  const WebSection before = m.cfg;
  m.cfg = m.pending;
  m.cfg.listen = before.listen;
  if ((m.tls == nullptr) != (m.pending_tls == nullptr)) {
    // HTTP to HTTPS or back changes every URL handed out: a restart does it.
    restart.push_back("web.tls_certificate");
    m.cfg.tls_certificate = before.tls_certificate;
    m.cfg.tls_key = before.tls_key;
  } else if (m.tls != nullptr) {
    // A renewed certificate: new connections use it, open ones finish with the old.
    m.tls = m.pending_tls;
    if (m.server) m.server->set_tls(m.tls);
  }
  if (m.server) m.server->set_options(m.options());
  m.set_base_url();
  if (m.seed != nullptr) m.seed->set_web_seed_base(m.base_url);
  if (m.accounts) m.accounts->set_options(accounts_options(m.cfg));
  if (m.site) m.site->set_config(m.site_config());
  return restart;
}

void WebModule::stop() {
  if (impl_->seed != nullptr) impl_->seed->set_web_seed_base("");
  if (impl_->server) impl_->server->stop();
  impl_->site.reset();
}

json WebModule::status() const {
  const Impl& m = *impl_;
  json j = json::object();
  if (!m.server) return j;
  j["ports"] = m.server->ports();
  j["connections"] = m.server->connections();
  j["refused_per_address"] = m.server->refused_per_address();
  j["requests"] = m.server->requests();
  j["bytes_sent"] = m.server->file_bytes_sent();
  j["cold_chunks"] = m.server->cold_chunks();
  j["tls"] = m.server->tls();
  j["tls_failures"] = m.server->tls_failures();
  j["web_seed_url"] = m.base_url.empty() ? "" : m.base_url + "/data/";
  return j;
}

daemon::ModuleInfo WebModule::info() {
  return {"web",
          "Web pages (browse, publish, admin), RSS feeds, /api/v1/ and the web seed of every "
          "published torrent (BEP 19)",
          [] { return std::make_unique<WebModule>(); }, print_web_defaults,
          /*default_on=*/false};
}

}  // namespace evert::web
