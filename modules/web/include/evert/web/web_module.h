// The web module (modules/web): HTTP on its own listeners. It serves every published torrent's
// files as a BEP 19 web seed under /data/<info-hash hex>/<name>[/<path>] (the content store's
// layout, docs/storage.md), with single byte ranges, HEAD, ETag/Last-Modified and If-Range;
// and the web pages, uploads, RSS feeds and /api/v1/ (src/site.h) with their accounts
// (src/accounts.h). It finds the torrents through the everseed module, which must be started
// before it, and publishes through it. docs/web.md, docs/web-seed.md. With
// web.tls_certificate and web.tls_key every listener speaks HTTPS only (HttpServer::set_tls(),
// tracker/tls.h).
#pragma once

#include <memory>

#include "evert/daemon/module.h"

namespace evert::web {

class WebModule : public daemon::Module {
 public:
  WebModule();
  ~WebModule() override;

  [[nodiscard]] std::string name() const override;
  Status configure(const YAML::Node& section) override;
  Status start(daemon::ModuleContext& context) override;
  std::vector<std::string> reload() override;
  void stop() override;
  [[nodiscard]] nlohmann::json status() const override;

  static daemon::ModuleInfo info();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace evert::web
