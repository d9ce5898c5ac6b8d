#!/usr/bin/python3
"""A python3-libtorrent client for the interoperability matrix (interop_matrix_test.py).

  lt_client.py MODE SAVE_PATH

MODE is the row of the matrix, which settings differ from libtorrent's defaults:
  defaults     none (only which alerts it posts, which changes nothing it does)
  utp          uTP only: enable_outgoing_tcp and enable_incoming_tcp off
  tcp          TCP only: enable_outgoing_utp and enable_incoming_utp off
  encryption   MSE/PE forced both ways (out_enc_policy, in_enc_policy forced) at RC4 level
  seed         defaults, seeding the .torrent it is given from SAVE_PATH (the control rows'
               seed instead of the everseed); prints "first_upload" instead of "first_byte"

DHT, local peer discovery, UPnP and NAT-PMP stay at their defaults (on): the client's namespace
has no network beyond the test's bridge, so they find nothing, and none of them changes the
transport to the seed. The session listens on its default port in its own namespace.

It prints JSON lines on standard output, each with "t", the CLOCK_MONOTONIC seconds (the same
clock as the test's time.monotonic()): "ready" once it listens; then it reads one line on
standard input, the .torrent path or the magnet link, and prints "added" when it hands it to
libtorrent, "first_byte" when the first payload byte arrived, "peer" for each connected peer
(its transport and encryption), "alert" for tracker, connection and peer errors, "finished"
when every piece is in and checked. It stops when its standard input closes or after 300 s.
"""
import json
import os
import select
import sys
import time

import libtorrent as lt


def settings(mode):
    cat = lt.alert.category_t
    s = {"alert_mask": cat.error_notification | cat.peer_notification | cat.connect_notification
         | cat.status_notification | cat.tracker_notification}
    if mode == "utp":
        s.update(enable_outgoing_tcp=False, enable_incoming_tcp=False)
    elif mode == "tcp":
        s.update(enable_outgoing_utp=False, enable_incoming_utp=False)
    elif mode == "encryption":
        s.update(out_enc_policy=int(lt.enc_policy.forced), in_enc_policy=int(lt.enc_policy.forced),
                 allowed_enc_level=int(lt.enc_level.rc4))
    elif mode not in ("defaults", "seed"):
        sys.exit("unknown mode " + mode)
    return s


def say(event, **kw):
    kw.update(event=event, t=round(time.monotonic(), 4))
    print(json.dumps(kw), flush=True)


# peer_info::utp_socket (bit 17 of peer_flags_t in libtorrent 2.0), which the Python binding of
# 2.0.8 does not export beside rc4_encrypted (bit 19) and plaintext_encrypted (bit 20).
UTP_SOCKET = 1 << 17


def describe_peer(p):
    f = p.flags
    transport = "uTP" if f & UTP_SOCKET else "TCP"
    if f & lt.peer_info.rc4_encrypted:
        enc = "RC4"
    elif f & lt.peer_info.plaintext_encrypted:
        enc = "MSE plaintext"
    else:
        enc = "plain"
    return {"ip": "%s:%d" % tuple(p.ip), "transport": transport, "encryption": enc,
            "client": p.client.decode(errors="replace") if isinstance(p.client, bytes) else p.client,
            "downloaded": p.total_download}


ALERTS = ("tracker_reply_alert", "tracker_error_alert", "tracker_warning_alert",
          "peer_connect_alert", "peer_disconnected_alert", "peer_error_alert",
          "metadata_received_alert", "metadata_failed_alert", "torrent_error_alert",
          "hash_failed_alert", "peer_ban_alert", "incoming_connection_alert")


def main():
    mode, save_path = sys.argv[1:3]
    ses = lt.session(settings(mode))
    deadline = time.time() + 300
    while not ses.is_listening() and time.time() < deadline:
        time.sleep(0.01)
    say("ready", port=ses.listen_port())
    line = sys.stdin.readline().strip()
    if not line:
        return
    if line.startswith("magnet:"):
        params = lt.parse_magnet_uri(line)
    else:
        params = lt.add_torrent_params()
        params.ti = lt.torrent_info(line)
    params.save_path = save_path
    if mode == "seed":
        params.flags |= lt.torrent_flags.seed_mode
    say("added")
    h = ses.add_torrent(params)
    first = finished = False
    peers_seen = set()
    alerts = 0
    while time.time() < deadline:
        for a in ses.pop_alerts():
            if type(a).__name__ in ALERTS and alerts < 300:
                alerts += 1
                say("alert", type=type(a).__name__, message=a.message())
        st = h.status()
        if mode == "seed":
            if not first and st.total_payload_upload > 0:
                first = True
                say("first_upload", bytes=st.total_payload_upload)
        elif not first and st.total_payload_download > 0:
            first = True
            say("first_byte", bytes=st.total_payload_download,
                peers=[describe_peer(p) for p in h.get_peer_info() if p.total_download > 0])
        for p in h.get_peer_info():
            d = describe_peer(p)
            key = (d["ip"], d["transport"], d["encryption"])
            if key not in peers_seen and (p.flags & lt.peer_info.connecting) == 0:
                peers_seen.add(key)
                say("peer", **d)
        if not finished and st.is_seeding and mode != "seed":
            finished = True
            say("finished", peers=[describe_peer(p) for p in h.get_peer_info()])
        r, _, _ = select.select([sys.stdin], [], [], 0.01)
        if r and not os.read(sys.stdin.fileno(), 1024):
            break
    ses.pause()


if __name__ == "__main__":
    main()
