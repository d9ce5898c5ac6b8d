#include "evert/daemon/module.h"

namespace evert::daemon {

// The modules compiled into evertd. The tracker, the everseed and the web module register here
// as they are built (modules/NAME/).
const ModuleRegistry& builtin_modules() {
  static const ModuleRegistry registry = {};
  return registry;
}

}  // namespace evert::daemon
