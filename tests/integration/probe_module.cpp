// A test-only module: records its lifecycle, fails to start on request, stores values through
// the daemon's store, and reports which config keys need a restart. evertd_probe is evertd with
// two instances of it ("probe" and "probe2") in its registry.
#include <fstream>

#include "evert/daemon/daemon.h"
#include "evert/daemon/module.h"

namespace evert::daemon {
namespace {

struct ProbeConfig {
  bool fail_start = false;
  std::string greeting = "hello";
  std::string restart_key = "a";
  std::string events_file;
};

class ProbeModule : public Module {
 public:
  explicit ProbeModule(std::string name) : name_(std::move(name)) {}
  [[nodiscard]] std::string name() const override { return name_; }

  Status configure(const YAML::Node& section) override {
    ProbeConfig c;
    if (section.IsMap()) {
      for (const auto& kv : section) {
        const std::string key = kv.first.Scalar();
        if (key == "fail_start") {
          c.fail_start = kv.second.as<bool>(false);
        } else if (key == "greeting") {
          c.greeting = kv.second.Scalar();
        } else if (key == "restart_key") {
          c.restart_key = kv.second.Scalar();
        } else if (key == "events_file") {
          c.events_file = kv.second.Scalar();
        } else {
          return Error(location("config", kv.first) + ": " + name_ + "." + key + ": unknown key");
        }
      }
    }
    next_ = c;
    return Ok{};
  }

  Status start(ModuleContext& ctx) override {
    config_ = next_;
    record("start");
    if (config_.fail_start) return Error("asked to fail");
    ctx.route("PUT", "/v1/" + name_ + "/value", [&ctx](const ApiRequest& r) {
      ctx.store.put("test", r.json.value("key", ""), r.json.value("value", ""));
      return ApiResponse{};
    });
    ctx.route("GET", "/v1/" + name_ + "/value", [&ctx](const ApiRequest& r) {
      ApiResponse out;
      auto v = ctx.store.get("test", r.query.substr(r.query.find('=') + 1));
      out.body = {{"value", v ? nlohmann::json(*v) : nlohmann::json(nullptr)}};
      return out;
    });
    return Ok{};
  }

  std::vector<std::string> reload() override {
    std::vector<std::string> restart;
    if (next_.restart_key != config_.restart_key) restart.push_back("restart_key");
    config_.greeting = next_.greeting;
    record("reload");
    return restart;
  }

  void stop() override { record("stop"); }

  [[nodiscard]] nlohmann::json status() const override { return {{"greeting", config_.greeting}}; }

 private:
  void record(const std::string& what) const {
    if (config_.events_file.empty()) return;
    std::ofstream(config_.events_file, std::ios::app) << name_ << " " << what << "\n";
  }

  std::string name_;
  ProbeConfig config_;
  ProbeConfig next_;
};

ModuleInfo probe_info(const std::string& name) {
  return {name, "test module", [name] { return std::make_unique<ProbeModule>(name); },
          [name](const std::string& p) { return p + name + ":\n" + p + "  greeting: hello\n"; }};
}

}  // namespace
}  // namespace evert::daemon

int main(int argc, char** argv) {
  static const evert::daemon::ModuleRegistry registry = {evert::daemon::probe_info("probe"),
                                                         evert::daemon::probe_info("probe2")};
  return evert::daemon::daemon_main(argc, argv, registry);
}
