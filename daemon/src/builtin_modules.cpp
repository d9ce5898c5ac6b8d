#include "evert/daemon/module.h"
#include "evert/everseed/everseed_module.h"
#include "evert/tracker/tracker_module.h"
#include "evert/web/web_module.h"

namespace evert::daemon {

// The modules compiled into evertd (modules/NAME/), in the order they start: the web module
// finds the everseed, the everseed the tracker.
const ModuleRegistry& builtin_modules() {
  static const ModuleRegistry registry = {tracker::TrackerModule::info(),
                                          everseed::EverseedModule::info(), web::WebModule::info()};
  return registry;
}

}  // namespace evert::daemon
