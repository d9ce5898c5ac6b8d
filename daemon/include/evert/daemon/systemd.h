// systemd integration: readiness and status notifications, the watchdog, socket activation.
// Every function is a no-op (or returns "none") when not run by systemd.
#pragma once

#include <chrono>
#include <map>
#include <string>

namespace evert::daemon::systemd {

// Sends a notification (READY=1, STATUS=..., RELOADING=1, STOPPING=1, WATCHDOG=1).
void notify(const std::string& state);
// "RELOADING=1\nMONOTONIC_USEC=<now>" as systemd wants it before a reload.
void notify_reloading();
// The watchdog interval systemd expects pings within, or 0 when the watchdog is off.
std::chrono::microseconds watchdog_interval();
// Listening sockets passed by socket activation, by FileDescriptorName. Takes them once.
std::map<std::string, int> listen_fds();
// Whether stderr is connected to the journal (JOURNAL_STREAM matches it).
bool stderr_is_journal();

}  // namespace evert::daemon::systemd
