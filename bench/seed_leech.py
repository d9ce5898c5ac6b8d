#!/usr/bin/python3
"""The downloader of bench/seed: python3-libtorrent fetches one torrent from one seed it is told
about (no tracker, DHT, LSD or PEX: nothing but the seed to talk to), and prints one JSON line
of figures.

  seed_leech.py TORRENT SAVE_DIR PORT TIMEOUT_SECONDS [MODE]

MODE is how the downloader is set up:
  tcp       (the default) TCP only, no encryption, a deep request and disk queue: as fast as
            libtorrent goes, so that the seed is measured
  defaults  libtorrent's own defaults, as qBittorrent and Deluge run it: uTP tried first,
            encryption "enabled" (it tries an encrypted handshake first)
  utp       the defaults with TCP off: uTP only

Figures: "first_byte" is the time from the connection (libtorrent's peer_connect_alert, which
it posts when it opens the TCP connection) to the first whole block received, "connected" the
time from connect_peer() to that alert (libtorrent's own connection scheduling),
"seconds" the time from the first block to the last piece checked, "bytes" the torrent's size,
"cpu" this process's CPU seconds over the download (user + system, all threads), "busy_wall"
the time from the connection to the end and "cores" the cores it could run on, so the caller
can tell when the downloader, not the seed, was the limit.
Exits 1 with "error" set when the download did not finish in TIMEOUT_SECONDS or a piece failed
its hash check.
"""
import json
import os
import sys
import time

import libtorrent as lt


def cpu_seconds():
    t = os.times()
    return t.user + t.system


def main():
    torrent, save_dir, port, timeout = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    mode = sys.argv[5] if len(sys.argv) > 5 else "tcp"
    cat = lt.alert.category_t
    settings = {
        "listen_interfaces": "127.0.0.1:0",
        # No network to find peers on: off in every mode (they do not change the transport).
        "enable_dht": False, "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
        "alert_mask": cat.status_notification | cat.error_notification
                      | cat.block_progress_notification | cat.connect_notification,
    }
    if mode == "tcp":
        settings.update({
            "enable_incoming_utp": False, "enable_outgoing_utp": False,
            # Plain BitTorrent: libtorrent would otherwise try an encrypted handshake first.
            "out_enc_policy": int(lt.enc_policy.disabled),
            "in_enc_policy": int(lt.enc_policy.disabled),
            # Room to go fast: a deep request queue and disk queue, so neither caps the rate.
            "max_out_request_queue": 4000, "max_queued_disk_bytes": 64 << 20,
        })
    elif mode == "utp":
        settings.update({"enable_incoming_tcp": False, "enable_outgoing_tcp": False})
    elif mode != "defaults":
        print(json.dumps({"error": "unknown mode " + mode}), flush=True)
        return 1
    s = lt.session(settings)
    ti = lt.torrent_info(torrent)
    # No trackers: the seed is the one peer we hand it.
    h = s.add_torrent({"ti": ti, "save_path": save_dir, "trackers": []})
    h.replace_trackers([])
    # Wait until the (empty) data has been checked, so the clock starts at the connection.
    deadline = time.monotonic() + timeout
    while h.status().state in (lt.torrent_status.checking_files,
                               lt.torrent_status.checking_resume_data):
        if time.monotonic() > deadline:
            break
        time.sleep(0.01)
    cpu0 = cpu_seconds()
    t0 = time.monotonic()
    h.connect_peer(("127.0.0.1", port))
    out = {"bytes": ti.total_size(), "cores": len(os.sched_getaffinity(0))}
    first = connected = done = None
    hash_failures = 0
    while time.monotonic() < deadline and done is None:
        s.wait_for_alert(10)
        for a in s.pop_alerts():
            now = time.monotonic()
            if isinstance(a, lt.peer_connect_alert) and connected is None:
                connected = now
            elif isinstance(a, lt.block_finished_alert) and first is None:
                first = now
                # One alert per block from here on would cost the downloader: stop them.
                s.apply_settings({"alert_mask": cat.status_notification | cat.error_notification})
            elif isinstance(a, lt.hash_failed_alert):
                hash_failures += 1
            elif isinstance(a, lt.torrent_finished_alert):
                done = now
            elif isinstance(a, lt.torrent_error_alert):
                out["error"] = a.message()
        if "error" in out:
            break
    cpu1 = cpu_seconds()
    if first is not None:
        out["first_byte"] = round(first - (connected or t0), 4)
        # From connect_peer(): with the defaults this includes the transports libtorrent tries
        # before the one that works.
        out["first_byte_from_start"] = round(first - t0, 4)
    if connected is not None:
        out["connected"] = round(connected - t0, 4)
    if done is not None and first is not None:
        out["seconds"] = round(done - first, 4)
        out["cpu"] = round(cpu1 - cpu0, 3)
        # The time it had work: from the connection on (waiting to connect costs no CPU).
        out["busy_wall"] = round(done - (connected or t0), 4)
    elif "error" not in out:
        st = h.status()
        out["error"] = (f"not finished after {timeout:.0f} s: {st.total_wanted_done} of "
                        f"{st.total_wanted} bytes, {st.num_peers} peers")
    if hash_failures:
        out["error"] = f"{hash_failures} pieces failed their hash check"
    print(json.dumps(out), flush=True)
    s.pause()
    return 1 if "error" in out else 0


if __name__ == "__main__":
    sys.exit(main())
