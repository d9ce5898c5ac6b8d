#!/usr/bin/python3
"""The everseed against the real daemon and real clients, over loopback: a torrent published
with POST /v1/publish (data verified against its hashes) downloads with the everseed as the only
seed in python3-libtorrent (from the .torrent and from the magnet link alone; a multi-file hybrid
with empty files and padding; three clients at once), aria2c and transmission-cli; a peer that
reads slowly gets every block; bad peers do not take the daemon down.

Every wait is bounded; every process a test starts is stopped by PID, also when it fails.
transmission-cli treats 127.0.0.0/8 peers as invalid, so its test runs in a network namespace of
its own whose loopback also carries EVERT_TEST_ADDR (see CMakeLists.txt)."""
import base64
import hashlib
import http.client
import json
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
EVERTD = os.environ.get("EVERTD", "build/daemon/evertd")
EVERTCTL = os.environ.get("EVERTCTL", "build/ctl/evertctl")
PY = "/usr/bin/python3"
ADDR = os.environ.get("EVERT_TEST_ADDR", "127.0.0.1")


def tree_digest(path):
    """{relative path: sha256} of every file under path (or of the file itself)."""
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

    def spawn(self, argv, **kw):
        p = subprocess.Popen(argv, **kw)
        self.children.append(p)
        return p

    def leech(self, what, mode="leech"):
        """Starts a libtorrent download (from a .torrent or a magnet link); returns the process
        and the folder it saves to."""
        out = os.path.join(self.root, "dl-" + mode + str(time.monotonic_ns()))
        p = self.spawn([PY, os.path.join(HERE, "lt_peer.py"), mode, what, out],
                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        return p, out

    def finished(self, p):
        """Waits (at most 90 s) until a libtorrent peer says it has every piece, then stops it."""
        line = ""
        deadline = time.time() + 90
        while time.time() < deadline and line != "finished":
            line = p.stdout.readline().strip()
            if not line and p.poll() is not None:
                break
        p.stdin.close()
        p.wait(timeout=30)
        self.assertEqual(line, "finished", "libtorrent did not finish: " + self.read_log())

    def fetch(self, what, name, mode):
        """Downloads with libtorrent (from a .torrent or a magnet link); returns the digests."""
        p, out = self.leech(what, mode)
        self.finished(p)
        return tree_digest(os.path.join(out, name))

    def download(self, mode, what, digest):
        self.assertEqual(self.fetch(what, "payload.bin", mode), {"": digest})

    def wait_file(self, path, digest, timeout=90):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if os.path.exists(path):
                with open(path, "rb") as f:
                    if hashlib.sha256(f.read()).hexdigest() == digest:
                        return True
            time.sleep(0.2)
        return False

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

    def published(self, size, version="--hybrid"):
        """A file of `size` random bytes, its torrent (announcing to this tracker), published."""
        torrent, path, digest = self.make(size, version)
        j = self.publish(torrent, path)
        self.assertEqual(j["state"], "done", j)
        return torrent, digest, j["torrent"]["info_hash"]

    def uploaded(self, info_hash):
        return self.api("GET", "/v1/torrent?info_hash=" + info_hash)["uploaded"]

    # v1 torrents for aria2 1.36 and Transmission 3.00: both compute a wrong info-hash for
    # hybrids, whose v2 file tree has empty-string keys (aria2/aria2#1903, fixed after 1.36).
    def test_aria2c_downloads_from_the_everseed(self):
        size = 6 << 20
        torrent, digest, ih = self.published(size, "--v1")
        out = os.path.join(self.root, "aria2")
        log = os.path.join(self.root, "aria2.log")
        aria = self.spawn(["aria2c", "--dir", out, "--enable-dht=false", "--enable-dht6=false",
                           "--bt-enable-lpd=false", "--enable-peer-exchange=false",
                           "--seed-time=0", "--bt-stop-timeout=60", "--listen-port=46001-46009",
                           "--console-log-level=warn", "--summary-interval=0", "--no-conf=true",
                           "--log=" + log, "--log-level=info", torrent],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            code = aria.wait(timeout=120)
        except subprocess.TimeoutExpired:
            code = "timeout"
        self.assertEqual(code, 0, "aria2c did not download the file: " + self.read_log())
        self.assertEqual(tree_digest(os.path.join(out, "payload.bin")), {"": digest})
        self.assertGreaterEqual(self.uploaded(ih), size)  # the everseed was the only source

    def test_transmission_cli_downloads_from_the_everseed(self):
        size = 6 << 20
        torrent, digest, ih = self.published(size, "--v1")
        out = os.path.join(self.root, "transmission")
        cfg = os.path.join(self.root, "transmission-config")
        os.makedirs(cfg)
        with open(os.path.join(cfg, "settings.json"), "w") as f:
            json.dump({"dht-enabled": False, "lpd-enabled": False, "pex-enabled": False,
                       "utp-enabled": False, "port-forwarding-enabled": False,
                       "peer-port": 46011, "rpc-enabled": False}, f)
        tr = self.spawn(["transmission-cli", "-g", cfg, "-w", out, "-M", torrent],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.assertTrue(self.wait_file(os.path.join(out, "payload.bin"), digest, 120),
                        "transmission-cli did not download the file: " + self.read_log())
        tr.terminate()
        tr.wait(timeout=15)
        self.assertGreaterEqual(self.uploaded(ih), size)

    def test_multi_file_torrents_with_empty_files_and_padding(self):
        src = os.path.join(self.root, "data", "album")
        # Empty files first, between and last; files that end inside a 16 KiB block and in the
        # middle of a piece, so blocks span a file and its padding (hybrid) or two files (v1).
        for rel, size in [("0 empty", 0), ("a.bin", 100_001), ("disc 2/b.bin", (3 << 20) + 5),
                          ("disc 2/empty", 0), ("c.bin", 17), ("d.bin", 65_536),
                          ("e.bin", 1_000_000), ("z empty", 0)]:
            os.makedirs(os.path.dirname(os.path.join(src, rel)), exist_ok=True)
            with open(os.path.join(src, rel), "wb") as f:
                f.write(os.urandom(size))
        want = tree_digest(src)
        for version in ["--hybrid", "--v1"]:
            torrent = os.path.join(self.root, "album" + version + ".torrent")
            subprocess.run([EVERTCTL, "create", version, "--force", "--piece-size", "64K", "-t",
                            f"http://{ADDR}:{self.http_port}/announce", "-o", torrent, src],
                           check=True, capture_output=True, timeout=60)
            with open(torrent, "rb") as f:
                pads = f.read().count(b"4:attr1:p")  # BEP 47 padding files
            self.assertEqual(pads > 0, version == "--hybrid", version)
            j = self.publish(torrent, src)
            self.assertEqual(j["state"], "done", j)
            self.assertEqual(self.fetch(torrent, "album", "leech"), want, version)

    def test_three_libtorrent_clients_at_once(self):
        size = 24 << 20
        torrent, digest, ih = self.published(size)
        clients = [self.leech(torrent) for _ in range(3)]
        for p, _ in clients:
            self.finished(p)
        for _, out in clients:
            self.assertEqual(tree_digest(os.path.join(out, "payload.bin")), {"": digest})
        self.assertGreaterEqual(self.uploaded(ih), size)
        self.assertIsNone(self.proc.poll())

    def test_data_not_in_the_page_cache_is_read_on_workers(self):
        torrent, path, digest = self.make(8 << 20)
        j = self.publish(torrent, path)
        self.assertEqual(j["state"], "done", j)
        # Out of the page cache (publishing read it in): the seed must go to the disk.
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            try:
                os.preadv(fd, [bytearray(4096)], 0, os.RWF_NOWAIT)
                self.skipTest("this filesystem keeps the file in memory (tmpfs?)")
            except BlockingIOError:
                pass
        finally:
            os.close(fd)

        def disk_reads():
            st = self.api("GET", "/v1/status")
            return {m["name"]: m["status"] for m in st["modules"]}["everseed"]["disk_reads"]

        before = disk_reads()
        self.download("leech", torrent, digest)
        self.assertGreater(disk_reads(), before)

    def test_a_slow_reader_gets_every_block(self):
        """A peer asks for 3 MiB and reads it slowly through a small receive buffer: the seed's
        socket fills again and again, and every block still arrives, in full and right."""
        torrent, path, _ = self.make(4 << 20, "--v1")
        j = self.publish(torrent, path)
        self.assertEqual(j["state"], "done", j)
        ih = bytes.fromhex(j["torrent"]["info_hash"])
        info = json.loads(subprocess.run([EVERTCTL, "inspect", "--json", torrent], check=True,
                                         capture_output=True, text=True, timeout=30).stdout)
        piece = info["piece_length"]
        with open(path, "rb") as f:
            data = f.read()
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.settimeout(10)
        s.connect((ADDR, self.seed_port))
        s.sendall(b"\x13BitTorrent protocol" + bytes([0, 0, 0, 0, 0, 0, 0, 4]) + ih +
                  b"-XX0000-" + b"x" * 12)
        s.sendall(struct.pack(">IB", 1, 2))  # interested
        buf = b""

        def message():
            nonlocal buf
            while len(buf) < 4 or len(buf) < 4 + struct.unpack(">I", buf[:4])[0]:
                chunk = s.recv(4096)
                self.assertTrue(chunk, "the seed closed the connection: " + self.read_log())
                buf += chunk
            n = struct.unpack(">I", buf[:4])[0]
            m, buf = buf[4:4 + n], buf[4 + n:]
            return m

        while len(buf) < 68:
            buf += s.recv(4096)
        buf = buf[68:]
        deadline = time.time() + 30
        while message()[:1] != b"\x01":  # unchoke
            self.assertLess(time.time(), deadline, "no unchoke")
        blocks = [(i * 16384 // piece, i * 16384 % piece) for i in range(192)]
        s.sendall(b"".join(struct.pack(">IBIII", 13, 6, i, b, 16384) for i, b in blocks))
        got = {}
        deadline = time.time() + 60
        while len(got) < len(blocks):
            self.assertLess(time.time(), deadline, f"{len(got)} of {len(blocks)} blocks")
            m = message()
            if m[:1] == b"\x07":
                index, begin = struct.unpack(">II", m[1:9])
                got[(index, begin)] = m[9:]
                time.sleep(0.002)  # a slow reader: the seed's socket stays full
        for i, b in blocks:
            self.assertEqual(got[(i, b)], data[i * piece + b:i * piece + b + 16384], (i, b))
        s.close()
        self.assertIsNone(self.proc.poll())


if __name__ == "__main__":
    unittest.main(verbosity=2)
