// The web module (modules/web): HTTP on its own listeners. Today it serves every published
// torrent's files as a BEP 19 web seed under /data/<info-hash hex>/<name>[/<path>] (the content
// store's layout, docs/storage.md), with single byte ranges, HEAD, ETag/Last-Modified and
// If-Range; the pages, uploads, feeds and accounts of issue 7 come later. It finds the
// torrents through the everseed module, which must be started before it. With web.tls_certificate
// and web.tls_key every listener speaks HTTPS only (HttpServer::set_tls(), tracker/tls.h).
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
