#!/usr/bin/python3
"""The everseed against the real daemon and python3-libtorrent, over loopback: a torrent
published with POST /v1/publish (data verified against its hashes) downloads with the everseed
as the only seed, from the .torrent and from the magnet link alone; bad peers do not take the
daemon down."""
import base64
import hashlib
import http.client
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
EVERTD = os.environ.get("EVERTD", "build/daemon/evertd")
EVERTCTL = os.environ.get("EVERTCTL", "build/ctl/evertctl")
PY = "/usr/bin/python3"
ADDR = "127.0.0.1"


def tree_digest(path):
    """{relative path: sha256} of every file under path (or {"": sha256} of the file itself)."""
    if os.path.isfile(path):
        with open(path, "rb") as f:
            return {"": hashlib.sha256(f.read()).hexdigest()}
    out = {}
    for d, _, files in os.walk(path):
        for name in files:
            full = os.path.join(d, name)
            with open(full, "rb") as f:
                out[os.path.relpath(full, path)] = hashlib.sha256(f.read()).hexdigest()
    return out


class UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=10)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)


class EverseedTest(unittest.TestCase):
    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="evert-everseed-")
        self.sock = os.path.join(self.root, "evertd.sock")
        self.children = []
        cfg = os.path.join(self.root, "evertd.yaml")
        with open(cfg, "w") as f:
            f.write(f"""daemon:
  state_dir: {self.root}/state
  modules: [tracker, everseed]
control:
  socket: {self.sock}
  socket_group: ""
log:
  target: stderr
store:
  commit_interval: 50
tracker:
  http_listen: ["{ADDR}:0"]
  udp_listen: ["{ADDR}:0"]
everseed:
  listen: ["{ADDR}:0"]
""")
        self.log = open(os.path.join(self.root, "evertd.log"), "ab")
        self.proc = subprocess.Popen([EVERTD, "--config", cfg], stdout=self.log,
                                     stderr=self.log, stdin=subprocess.DEVNULL)
        self.wait_up()

    def wait_up(self):
        """Waits until evertd answers; notes its ports (tracker HTTP and UDP, everseed)."""
        deadline = time.time() + 15
        while True:
            try:
                st = self.api("GET", "/v1/status")
                mods = {m["name"]: m["status"] for m in st["modules"]}
                self.http_port = mods["tracker"]["http_ports"][0]
                self.udp_port = mods["tracker"]["udp_ports"][0]
                self.seed_port = mods["everseed"]["ports"][0]
                return
            except (OSError, KeyError, ValueError):
                if self.proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError("evertd did not come up: " + self.read_log())
                time.sleep(0.02)

    def tearDown(self):
        for p in self.children:
            if p.poll() is None:
                p.kill()
                p.wait()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        if os.environ.get("KEEP"):
            print("kept", self.root)
        else:
            shutil.rmtree(self.root, ignore_errors=True)

    def read_log(self):
        with open(os.path.join(self.root, "evertd.log"), "rb") as f:
            return f.read().decode(errors="replace")

    def api(self, method, path, body=None):
        c = UnixHTTP(self.sock)
        c.request(method, path, body=json.dumps(body) if body is not None else None)
        r = c.getresponse()
        data = json.loads(r.read() or b"{}")
        c.close()
        return data

    def publish(self, torrent, data):
        with open(torrent, "rb") as f:
            b64 = base64.b64encode(f.read()).decode()
        job = self.api("POST", "/v1/publish", {"torrent": b64, "data": data})["job"]
        deadline = time.time() + 60
        while time.time() < deadline:
            j = self.api("GET", f"/v1/job?id={job}")
            if j["state"] in ("done", "failed", "cancelled"):
                return j
            time.sleep(0.05)
        self.fail("publish did not finish")

    def make(self, size, version="--hybrid"):
        data = os.path.join(self.root, "data")
        os.makedirs(data, exist_ok=True)
        path = os.path.join(data, "payload.bin")
        with open(path, "wb") as f:
            f.write(os.urandom(size))
        torrent = os.path.join(self.root, "payload.torrent")
        subprocess.run([EVERTCTL, "create", version, "--force", "-t",
                        f"http://{ADDR}:{self.http_port}/announce", "-o", torrent, path],
                       check=True, capture_output=True, timeout=60)
        with open(path, "rb") as f:
            return torrent, path, hashlib.sha256(f.read()).hexdigest()

    def fetch(self, what, name, mode):
        """Downloads with libtorrent (from a .torrent, or a magnet link with mode "magnet")
        with the everseed as the only seed; returns tree_digest() of what came."""
        out = os.path.join(self.root, "dl-" + mode + str(time.monotonic_ns()))
        p = subprocess.Popen([PY, os.path.join(HERE, "lt_peer.py"), mode, what, out],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.children.append(p)
        line = ""
        deadline = time.time() + 90
        while time.time() < deadline and line != "finished":
            line = p.stdout.readline().strip()
            if not line and p.poll() is not None:
                break
        p.stdin.close()
        p.wait(timeout=30)
        self.assertEqual(line, "finished", "libtorrent did not finish: " + self.read_log())
        return tree_digest(os.path.join(out, name))

    def download(self, mode, what, digest):
        self.assertEqual(self.fetch(what, "payload.bin", mode), {"": digest})

    def test_published_torrent_downloads_from_torrent_and_magnet(self):
        torrent, path, digest = self.make(5 << 20)
        j = self.publish(torrent, path)
        self.assertEqual(j["state"], "done", j)
        t = j["torrent"]
        self.assertFalse(t["already_published"])
        self.assertEqual(t["seeders"], 1)  # the everseed, known to the tracker without announcing
        # The same torrent again: idempotent.
        again = self.publish(torrent, path)
        self.assertTrue(again["torrent"]["already_published"])
        self.assertEqual(len(self.api("GET", "/v1/torrents")["torrents"]), 1)
        # libtorrent finds the everseed through the tracker and downloads every byte.
        self.download("leech", torrent, digest)
        # From the magnet link alone: the metadata comes from the everseed (BEP 9).
        self.download("magnet", t["magnet"], digest)
        st = self.api("GET", "/v1/torrent?info_hash=" + t["info_hash"])
        self.assertGreaterEqual(st["uploaded"], 2 * (5 << 20))

    def test_data_that_does_not_match_is_refused(self):
        torrent, path, _ = self.make(1 << 20, "--v1")
        with open(path, "r+b") as f:
            f.write(b"X")
        j = self.publish(torrent, path)
        self.assertEqual(j["state"], "failed")
        self.assertIn("does not match", j["error"])
        self.assertEqual(self.api("GET", "/v1/torrents")["torrents"], [])

    def test_bad_peers_are_dropped_and_the_daemon_stays_up(self):
        torrent, path, _ = self.make(1 << 20)
        ih = bytes.fromhex(self.publish(torrent, path)["torrent"]["info_hash"])
        def conn():
            s = socket.create_connection((ADDR, self.seed_port), timeout=5)
            return s
        def handshake(h):
            return b"\x13BitTorrent protocol" + bytes([0, 0, 0, 0, 0, 0x10, 0, 4]) + h + b"-XX0000-" + b"x" * 12
        # Garbage, an unknown info-hash: closed without an answer.
        for junk in [b"GET / HTTP/1.1\r\n\r\n" + b"x" * 60, handshake(b"\x01" * 20)]:
            s = conn()
            s.sendall(junk)
            self.assertEqual(s.recv(100), b"")
            s.close()
        # A good handshake gets ours, have_all (BEP 6) and the extension handshake.
        s = conn()
        s.sendall(handshake(ih))
        got = b""
        while len(got) < 68:
            got += s.recv(4096)
        self.assertEqual(got[28:48], ih)
        # Out-of-range request: rejected (fast extension), connection kept.
        s.sendall(struct.pack(">IB", 1, 2))  # interested
        s.sendall(struct.pack(">IBIII", 13, 6, 100000, 0, 16384))
        s.sendall(struct.pack(">IBIII", 13, 6, 0, 0, 1 << 20))  # oversized
        buf = b""
        deadline = time.time() + 5
        while buf.count(b"\x00\x00\x00\x0d\x10") < 2 and time.time() < deadline:
            buf += s.recv(65536)
        self.assertEqual(buf.count(b"\x00\x00\x00\x0d\x10"), 2)
        # A message past the size limit drops the peer.
        s.sendall(struct.pack(">IB", 1 << 30, 20))
        s.settimeout(5)
        while s.recv(65536):
            pass
        s.close()
        self.assertIsNone(self.proc.poll())
        self.assertEqual(self.api("GET", "/v1/status")["modules"][1]["name"], "everseed")


if __name__ == "__main__":
    unittest.main(verbosity=2)
