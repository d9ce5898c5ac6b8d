#!/usr/bin/python3
"""A python3-libtorrent peer for the tracker tests.

  lt_peer.py seed TORRENT SAVE_PATH     seeds; prints "announced" once the tracker answered
  lt_peer.py leech TORRENT SAVE_PATH    downloads; prints "finished" when every piece is in
  lt_peer.py magnet URI SAVE_PATH       the same from a magnet link alone (metadata by BEP 9)

Loopback only, DHT/LSD/UPnP/NAT-PMP/PEX off, so peers can only come from the tracker. Runs until
its standard input closes or 120 seconds pass. With EVERT_LT_PROGRESS=1 it also prints
"progress BYTES" (bytes of the torrent it has) whenever that grew, at most every 0.05 s; with
EVERT_LT_PEER=HOST:PORT it connects to that peer itself (for torrents without a tracker, so that
it knows no other peer); with EVERT_LT_UTP_ONLY=1 it connects over uTP only.
"""
import os
import select
import sys
import time

import libtorrent as lt


def main():
    mode, torrent, save_path = sys.argv[1:4]
    s = lt.session({
        "listen_interfaces": os.environ.get("EVERT_TEST_ADDR", "127.0.0.1") + ":0",
        "enable_dht": False, "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
        "allow_multiple_connections_per_ip": True,
        "alert_mask": lt.alert.category_t.tracker_notification | lt.alert.category_t.status_notification,
        "announce_to_all_trackers": True, "announce_to_all_tiers": True,
    })
    if os.environ.get("EVERT_LT_UTP_ONLY") == "1":
        s.apply_settings({"enable_outgoing_tcp": False, "enable_incoming_tcp": False})
    if mode == "magnet":
        params = lt.parse_magnet_uri(torrent)
        params.save_path = save_path
    else:
        params = {"ti": lt.torrent_info(torrent), "save_path": save_path}
    if mode == "seed":
        params["flags"] = lt.torrent_flags.seed_mode
    h = s.add_torrent(params)
    if os.environ.get("EVERT_LT_PEER"):
        host, port = os.environ["EVERT_LT_PEER"].rsplit(":", 1)
        h.connect_peer((host, int(port)))
    deadline = time.time() + 120
    announced = finished = False
    progress = os.environ.get("EVERT_LT_PROGRESS") == "1"
    reported = 0
    while time.time() < deadline:
        for a in s.pop_alerts():
            if isinstance(a, lt.tracker_reply_alert) and not announced:
                announced = True
                print("announced", flush=True)
            elif isinstance(a, lt.tracker_error_alert):
                try:
                    text = a.message()
                except UnicodeDecodeError:  # a hostile tracker's failure reason, not UTF-8
                    text = "(a message that is not UTF-8)"
                print("tracker error:", text, file=sys.stderr, flush=True)
        if progress and mode != "seed":
            done = h.status().total_wanted_done
            if done > reported:
                reported = done
                print("progress", done, flush=True)
        if mode != "seed" and not finished and h.status().is_seeding:
            finished = True
            print("finished", flush=True)
        r, _, _ = select.select([sys.stdin], [], [], 0.05)
        if r and not os.read(sys.stdin.fileno(), 1024):
            break
    h.pause()
    s.pause()


if __name__ == "__main__":
    main()
