#!/usr/bin/python3
"""What python3-libtorrent says about torrents, for the interop tests.

  libtorrent_tool.py info FILE                 -> JSON: hashes, name, sizes, files
  libtorrent_tool.py create v1|v2|hybrid PIECE PATH OUT [TRACKER]
  libtorrent_tool.py check FILE SAVE_PATH      -> JSON: progress after a full recheck

Run with Debian's /usr/bin/python3 (python3-libtorrent). Loopback only, DHT/LSD/UPnP off, and
every wait is bounded.
"""
import json
import os
import sys
import time

import libtorrent as lt


def info(path):
    ti = lt.torrent_info(path)
    hashes = ti.info_hashes()
    fs = ti.files()
    files = []
    for i in range(fs.num_files()):
        if fs.file_flags(i) & lt.file_storage.flag_pad_file:
            continue
        files.append({"path": fs.file_path(i), "size": fs.file_size(i)})
    out = {
        "name": ti.name(),
        "total_size": sum(f["size"] for f in files),
        "piece_length": ti.piece_length(),
        "num_pieces": ti.num_pieces(),
        "files": files,
        "v1": str(hashes.v1) if hashes.has_v1() else None,
        "v2": str(hashes.v2) if hashes.has_v2() else None,
    }
    print(json.dumps(out))


def create(mode, piece, path, out, tracker=None):
    fs = lt.file_storage()
    lt.add_files(fs, path)
    flags = {"v1": lt.create_torrent.v1_only, "v2": lt.create_torrent.v2_only, "hybrid": 0}[mode]
    ct = lt.create_torrent(fs, int(piece), flags=flags)
    if tracker:
        ct.add_tracker(tracker)
    lt.set_piece_hashes(ct, os.path.dirname(os.path.abspath(path)))
    with open(out, "wb") as f:
        f.write(lt.bencode(ct.generate()))


def check(path, save_path):
    s = lt.session({
        "listen_interfaces": "127.0.0.1:0",
        "enable_dht": False, "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
        "alert_mask": 0,
    })
    # Added without resume data, the torrent's files are checked against every piece hash;
    # checking ends in "seeding" (all pieces good) or "downloading" (some bad or missing).
    h = s.add_torrent({"ti": lt.torrent_info(path), "save_path": save_path})
    done = (lt.torrent_status.seeding, lt.torrent_status.finished, lt.torrent_status.downloading)
    deadline = time.time() + 30
    st = h.status()
    while st.state not in done and time.time() < deadline:
        time.sleep(0.02)
        st = h.status()
    print(json.dumps({"progress": st.progress, "state": str(st.state), "error": str(st.errc.message())}))


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "info":
        info(sys.argv[2])
    elif cmd == "create":
        create(*sys.argv[2:])
    elif cmd == "check":
        check(sys.argv[2], sys.argv[3])
    else:
        sys.exit("unknown command " + cmd)
