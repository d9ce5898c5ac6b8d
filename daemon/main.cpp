// evertd: a thin shell over the daemon core and the built-in modules.
#include "evert/daemon/daemon.h"

int main(int argc, char** argv) {
  return evert::daemon::daemon_main(argc, argv, evert::daemon::builtin_modules());
}
