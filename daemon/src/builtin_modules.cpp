#include "evert/daemon/module.h"
#include "evert/everseed/everseed_module.h"
#include "evert/tracker/tracker_module.h"

namespace evert::daemon {

// The modules compiled into evertd (modules/NAME/). The everseed and the web module register
// here as they are built.
const ModuleRegistry& builtin_modules() {
  static const ModuleRegistry registry = {tracker::TrackerModule::info(),
                                          everseed::EverseedModule::info()};
  return registry;
}

}  // namespace evert::daemon
