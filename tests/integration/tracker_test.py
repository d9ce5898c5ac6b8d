#!/usr/bin/python3
"""The tracker module against the real evertd on loopback: every bad HTTP and UDP request gets
its answer; announce, scrape and completed counts; real clients (python3-libtorrent, aria2c,
transmission-cli) find each other through it over HTTP and UDP; swarms survive a graceful
restart and kill -9.

Run by ctest with EVERTD and EVERTCTL set. Every wait is bounded; every process it starts is
stopped by PID, also when a test fails.
"""
import hashlib
import http.client
import json
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
import unittest
import urllib.parse

EVERTD = os.environ["EVERTD"]
EVERTCTL = os.environ["EVERTCTL"]
HERE = os.path.dirname(os.path.abspath(__file__))
PY = "/usr/bin/python3"
# The address everything uses. Transmission treats 127.0.0.0/8 peers as invalid, so the
# real-client tests run in a network namespace of their own (see CMakeLists.txt) whose loopback
# interface also carries EVERT_TEST_ADDR.
ADDR = os.environ.get("EVERT_TEST_ADDR", "127.0.0.1")
# A second source address on the same loopback (all of 127.0.0.0/8 is local): another host.
OTHER_ADDR = "127.0.0.2"


def bdecode(data):
    def dec(i):
        c = data[i:i + 1]
        if c == b"i":
            j = data.index(b"e", i)
            return int(data[i + 1:j]), j + 1
        if c == b"l":
            i += 1
            out = []
            while data[i:i + 1] != b"e":
                v, i = dec(i)
                out.append(v)
            return out, i + 1
        if c == b"d":
            i += 1
            out = {}
            while data[i:i + 1] != b"e":
                k, i = dec(i)
                v, i = dec(i)
                out[k] = v
            return out, i + 1
        j = data.index(b":", i)
        n = int(data[i:j])
        return data[j + 1:j + 1 + n], j + 1 + n
    v, end = dec(0)
    assert end == len(data), "trailing bytes"
    return v


class UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=10)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(self.path)


class Daemon:
    """evertd on a temporary state directory, tracker on free loopback ports."""

    def __init__(self, root, tracker_cfg):
        self.root = root
        self.sock = os.path.join(root, "evertd.sock")
        self.config = os.path.join(root, "evertd.yaml")
        self.tracker_cfg = tracker_cfg
        self.proc = None
        self.write_config()

    def write_config(self, **extra):
        cfg = dict(self.tracker_cfg)
        cfg.update(extra)
        lines = ["daemon:", f"  state_dir: {self.root}/state", "  modules: [tracker]",
                 "control:", f"  socket: {self.sock}", '  socket_group: ""',
                 "log:", "  target: stderr", "store:", "  commit_interval: 50", "tracker:"]
        for k, v in cfg.items():
            lines.append(f"  {k}: {json.dumps(v)}")
        with open(self.config, "w") as f:
            f.write("\n".join(lines) + "\n")

    def start(self):
        self.log = open(os.path.join(self.root, "evertd.log"), "ab")
        self.proc = subprocess.Popen([EVERTD, "--config", self.config], stdout=self.log,
                                     stderr=self.log, stdin=subprocess.DEVNULL)
        deadline = time.time() + 15
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("evertd exited: " + self.read_log())
            try:
                st = self.api("GET", "/v1/status")
                t = [m for m in st["modules"] if m["name"] == "tracker"][0]["status"]
                self.http_port = t["http_ports"][0]
                self.http6_port = t["http_ports"][1] if len(t["http_ports"]) > 1 else None
                self.udp_port = t["udp_ports"][0]
                self.udp6_port = t["udp_ports"][1] if len(t["udp_ports"]) > 1 else None
                return
            except (OSError, KeyError, IndexError, ValueError):
                time.sleep(0.02)
        raise RuntimeError("evertd did not come up: " + self.read_log())

    def read_log(self):
        with open(os.path.join(self.root, "evertd.log"), "rb") as f:
            return f.read().decode(errors="replace")

    def api(self, method, path, body=None):
        c = UnixHTTP(self.sock)
        c.request(method, path, body=body)
        r = c.getresponse()
        data = json.loads(r.read() or b"{}")
        c.close()
        return data

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


def q(b):
    """Percent-encodes every byte of b except unreserved characters (RFC 3986)."""
    return urllib.parse.quote_from_bytes(b, safe="")


class TrackerTest(unittest.TestCase):
    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="evert-tracker-")
        self.children = []
        self.ih = hashlib.sha1(b"evert tracker test %d" % random.getrandbits(32)).digest()
        # A whitelisted hash containing '+' (0x2b): a tracker that reads '+' as a space breaks.
        self.ih_plus = b"+" * 4 + hashlib.sha1(b"plus").digest()[4:]
        self.daemon = Daemon(self.root, {
            "http_listen": [ADDR + ":0", "[::1]:0"],
            "udp_listen": [ADDR + ":0", "[::1]:0"],
            "whitelist": [self.ih.hex(), self.ih_plus.hex()],
            "interval": 1800, "min_interval": 30, "persist_interval": 50,
        })
        self.daemon.start()

    def tearDown(self):
        for p in self.children:
            if p.poll() is None:
                p.kill()
                p.wait()
        self.daemon.stop()
        if os.environ.get("KEEP"):
            print("kept", self.root)
        else:
            shutil.rmtree(self.root, ignore_errors=True)

    # ---- HTTP helpers -----------------------------------------------------------------------
    def get(self, path, host=ADDR, port=None, source=None):
        c = http.client.HTTPConnection(host, port or self.daemon.http_port, timeout=10,
                                       source_address=(source, 0) if source else None)
        c.request("GET", path)
        r = c.getresponse()
        body = r.read()
        c.close()
        return r.status, body

    def announce(self, ih=None, peer_id=None, port=6881, left=100, event=None, extra="",
                 host=ADDR, http_port=None, raw_ih=None, source=None):
        ih = ih or self.ih
        peer_id = peer_id or b"-XX0001-" + os.urandom(6).hex().encode()[:12]
        path = (f"/announce?info_hash={raw_ih if raw_ih is not None else q(ih)}"
                f"&peer_id={q(peer_id)}&port={port}&uploaded=0&downloaded=0&left={left}")
        if event:
            path += "&event=" + event
        status, body = self.get(path + extra, host, http_port, source)
        self.assertEqual(status, 200, body)
        return bdecode(body)

    def scrape_counts(self, ih=None):
        ih = ih or self.ih
        status, body = self.get(f"/scrape?info_hash={q(ih)}")
        self.assertEqual(status, 200, body)
        return bdecode(body)[b"files"].get(ih)

    def failure(self, path):
        status, body = self.get(path)
        self.assertEqual(status, 200, body)
        return bdecode(body).get(b"failure reason", b"").decode()

    # ---- HTTP --------------------------------------------------------------------------------
    def test_http_bad_requests_get_a_failure_reason(self):
        pid = q(b"-XX0001-abcdefghijkl")
        good = f"info_hash={q(self.ih)}&peer_id={pid}&port=6881&uploaded=0&downloaded=0&left=5"
        cases = {
            f"peer_id={pid}&port=1&left=0": "missing info_hash",
            f"info_hash={q(self.ih[:19])}&peer_id={pid}&port=1&left=0":
                "info_hash must be 20 bytes (got 19)",
            f"info_hash={q(self.ih)}%zz&peer_id={pid}&port=1&left=0": "malformed percent-escape",
            f"info_hash={q(self.ih)}&port=1&left=0": "missing peer_id",
            f"info_hash={q(self.ih)}&peer_id=short&port=1&left=0": "peer_id must be 20 bytes",
            f"info_hash={q(self.ih)}&peer_id={pid}&left=0": "missing port",
            f"info_hash={q(self.ih)}&peer_id={pid}&port=0&left=0": "port must be from 1 to 65535",
            f"info_hash={q(self.ih)}&peer_id={pid}&port=70000&left=0": "port must be from 1",
            f"info_hash={q(self.ih)}&peer_id={pid}&port=x&left=0": "port is not a number",
            f"info_hash={q(self.ih)}&peer_id={pid}&port=1&left=-1": "left is negative",
            f"info_hash={q(self.ih)}&peer_id={pid}&port=1": "missing left",
            good.replace("uploaded=0", "uploaded=12x"): "uploaded is not a number",
            good.replace("downloaded=0", "downloaded=99999999999999999999999"):
                "downloaded is too large",
            good + "&event=bogus": "unknown event",
            good.replace(q(self.ih), q(b"\x00" * 20)): "unregistered torrent",
        }
        for query, reason in cases.items():
            with self.subTest(query=query):
                self.assertIn(reason, self.failure("/announce?" + query))
        self.assertIn("full scrape is disabled", self.failure("/scrape"))
        self.assertIn("info_hash must be 20 bytes", self.failure("/scrape?info_hash=abc"))
        many = "&".join(f"info_hash={q(os.urandom(20))}" for _ in range(65))
        self.assertIn("too many info_hash", self.failure("/scrape?" + many))
        status, _ = self.get("/nothing-here")
        self.assertEqual(status, 404)
        # A '+' in info_hash is the byte 0x2b, not a space (RFC 3986).
        r = self.announce(raw_ih="++++" + q(self.ih_plus[4:]))
        self.assertNotIn(b"failure reason", r)
        # Malformed HTTP: an answer and a closed connection, the daemon stays up.
        with socket.create_connection((ADDR, self.daemon.http_port), timeout=5) as s:
            s.sendall(b"GARBAGE\r\n\r\n")
            self.assertIn(b" 400 ", s.recv(4096))
        with socket.create_connection((ADDR, self.daemon.http_port), timeout=5) as s:
            s.sendall(b"GET /announce?" + b"a" * 10000 + b" HTTP/1.1\r\n\r\n")
            self.assertIn(b" 431 ", s.recv(4096))
        with socket.create_connection((ADDR, self.daemon.http_port), timeout=5) as s:
            s.sendall(b"POST /announce HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello")
            self.assertIn(b" 413 ", s.recv(4096))
        self.assertEqual(self.daemon.api("GET", "/v1/status")["modules"][0]["state"], "running")
        stats = self.daemon.api("GET", "/v1/tracker/stats")
        self.assertGreaterEqual(stats["failures"]["missing info_hash"], 1)

    def test_http_announce_scrape_and_completed(self):
        seed_id, leech_id, leech2_id = (b"-qB4500-" + bytes([65 + i]) * 12 for i in range(3))
        r = self.announce(peer_id=seed_id, port=7001, left=0, event="started")
        self.assertEqual(r[b"peers"], b"")  # never the asker itself
        self.assertEqual(r[b"interval"], 1800)
        self.assertEqual(r[b"min interval"], 30)
        self.assertEqual(r[b"external ip"], socket.inet_aton(ADDR))
        r = self.announce(peer_id=leech_id, port=7002, left=10, event="started")
        self.assertEqual(r[b"peers"], socket.inet_aton(ADDR) + struct.pack(">H", 7001))
        self.assertEqual((r[b"complete"], r[b"incomplete"]), (1, 1))
        r = self.announce(peer_id=leech2_id, port=7003, left=10)
        self.assertEqual(len(r[b"peers"]), 12)
        # A seed gets leechers only.
        r = self.announce(peer_id=seed_id, port=7001, left=0)
        ports = sorted(struct.unpack(">H", r[b"peers"][i + 4:i + 6])[0] for i in range(0, 12, 6))
        self.assertEqual(ports, [7002, 7003])
        # The dictionary model: peer ids are not kept by default (tracker.keep_peer_ids).
        r = self.announce(peer_id=leech_id, port=7002, left=10, extra="&compact=0")
        peers = {p[b"port"]: p for p in r[b"peers"]}
        self.assertEqual(sorted(peers), [7001, 7003])
        self.assertNotIn(b"peer id", peers[7001])
        self.assertEqual(peers[7001][b"ip"], ADDR.encode())
        # numwant.
        r = self.announce(peer_id=leech_id, port=7002, left=10, extra="&numwant=1")
        self.assertEqual(len(r[b"peers"]), 6)
        # completed counts once per peer; a changed port updates the peer, no duplicate.
        self.announce(peer_id=leech_id, port=7002, left=0, event="completed")
        self.announce(peer_id=leech_id, port=7012, left=0, event="completed")
        status, body = self.get(f"/scrape?info_hash={q(self.ih)}&info_hash={q(self.ih_plus)}")
        files = bdecode(body)[b"files"]
        self.assertEqual(files[self.ih], {b"complete": 2, b"incomplete": 1, b"downloaded": 1,
                                          b"downloaders": 1})
        self.assertEqual(files[self.ih_plus][b"complete"], 0)
        swarm = self.daemon.api("GET", "/v1/tracker/swarm?info_hash=" + self.ih.hex())
        self.assertEqual(len(swarm["peers"]), 3)
        self.assertIn(7012, [p["port"] for p in swarm["peers"]])
        self.assertEqual([p["client"] for p in swarm["peers"]][0], "qBittorrent 4.5.0.0")
        # stopped removes the peer.
        self.announce(peer_id=leech2_id, port=7003, left=10, event="stopped")
        status, body = self.get(f"/scrape?info_hash={q(self.ih)}")
        self.assertEqual(bdecode(body)[b"files"][self.ih][b"incomplete"], 0)
        # IPv6 peers go to IPv6 askers in peers6.
        self.announce(peer_id=b"-TR3000-" + b"6" * 12, port=7006, left=5, host="::1",
                      http_port=self.daemon.http6_port)
        r = self.announce(peer_id=b"-TR3000-" + b"7" * 12, port=7007, left=5, host="::1",
                          http_port=self.daemon.http6_port)
        self.assertEqual(r[b"peers6"], socket.inet_pton(socket.AF_INET6, "::1") +
                         struct.pack(">H", 7006))
        swarms = self.daemon.api("GET", "/v1/tracker/swarms")
        self.assertEqual(swarms["total"], 1)

    def test_dictionary_model_lists_peer_ids_when_kept(self):
        self.daemon.stop()
        self.daemon.write_config(keep_peer_ids=True)
        self.daemon.start()
        seed_id, leech_id = b"-qB4500-" + b"s" * 12, b"-TR3000-" + b"l" * 12
        self.announce(peer_id=seed_id, port=7001, left=0)
        r = self.announce(peer_id=leech_id, port=7002, left=10, extra="&compact=0")
        self.assertEqual(r[b"peers"][0][b"peer id"], seed_id)
        self.assertEqual(r[b"peers"][0][b"port"], 7001)
        r = self.announce(peer_id=leech_id, port=7002, left=10, extra="&compact=0&no_peer_id=1")
        self.assertNotIn(b"peer id", r[b"peers"][0])
        swarm = self.daemon.api("GET", "/v1/tracker/swarm?info_hash=" + self.ih.hex())
        self.assertEqual(sorted(p["peer_id"] for p in swarm["peers"]),
                         sorted([seed_id.hex(), leech_id.hex()]))

    def test_http_requests_that_trickle_are_closed_after_the_timeout(self):
        """Issue 15: a request sent one byte at a time, each before the idle timer fired, held
        its connection for as long as the client liked (1,100 of them shut everyone out). Now
        the whole request must be in within http_timeout; others are served throughout."""
        self.daemon.stop()
        self.daemon.write_config(http_timeout=2)
        self.daemon.start()
        s = socket.create_connection((ADDR, self.daemon.http_port), timeout=10)
        request = b"GET /scrape HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200  # never ends
        t0 = time.time()
        closed_after = None
        try:
            for i in range(len(request)):
                s.sendall(request[i:i + 1])
                time.sleep(0.25)
                st, _ = self.get("/scrape?info_hash=" + q(self.ih))
                self.assertEqual(st, 200)
                if time.time() - t0 > 8:
                    break
        except (BrokenPipeError, ConnectionResetError):
            closed_after = time.time() - t0
        if closed_after is None:
            s.settimeout(3)
            try:
                closed_after = time.time() - t0 if s.recv(100) == b"" else None
            except ConnectionResetError:
                closed_after = time.time() - t0
        s.close()
        self.assertIsNotNone(closed_after, "the trickling request was never closed")
        self.assertLess(closed_after, 6)

    def cpu_seconds(self):
        with open(f"/proc/{self.daemon.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def test_http_connections_from_one_address_are_capped(self):
        """Issue 15: one host could hold every HTTP slot (max_connections) and shut out everyone
        else. Now max_per_address caps one address's open connections; the next gets a 503 and
        others are served throughout."""
        self.daemon.stop()
        self.daemon.write_config(max_per_address=4)
        self.daemon.start()
        other = "10.77.0.9" if ADDR.startswith("10.77.") else "127.0.0.9"
        held = []
        try:
            for _ in range(4):
                s = socket.create_connection((ADDR, self.daemon.http_port), timeout=5,
                                             source_address=(other, 0))
                s.sendall(b"GET /scrape HTTP/1.1\r\n")  # a head still coming
                held.append(s)
            time.sleep(0.2)
            with socket.create_connection((ADDR, self.daemon.http_port), timeout=5,
                                          source_address=(other, 0)) as s:
                data = b""  # answered and closed as it is accepted
                while True:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
            self.assertTrue(data.startswith(b"HTTP/1.1 503"), data)
            st, _ = self.get("/scrape?info_hash=" + q(self.ih))  # another address
            self.assertEqual(st, 200)
            held.pop().close()
            time.sleep(0.2)
            st, _ = self.get("/scrape?info_hash=" + q(self.ih), host=ADDR)
            self.assertEqual(st, 200)
            with socket.create_connection((ADDR, self.daemon.http_port), timeout=5,
                                          source_address=(other, 0)) as s:
                s.sendall(f"GET /scrape?info_hash={q(self.ih)} HTTP/1.0\r\n\r\n".encode())
                self.assertTrue(s.recv(100).startswith(b"HTTP/1.0 200"))
        finally:
            for s in held:
                s.close()

    def test_http_pipelined_requests_never_read_do_not_spin(self):
        """Issue 15: a client that pipelines requests and never reads the answers made the
        server spin at 100% CPU (the reader stayed armed past the output cap)."""
        s = socket.create_connection((ADDR, self.daemon.http_port), timeout=5)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.setblocking(False)
        req = f"GET /scrape?info_hash={q(self.ih)} HTTP/1.1\r\nHost: x\r\n\r\n".encode() * 100
        sent = 0
        deadline = time.time() + 5
        while time.time() < deadline:
            try:
                sent += s.send(req)
            except BlockingIOError:
                time.sleep(0.05)
                try:
                    sent += s.send(req)
                except BlockingIOError:
                    break
        self.assertGreater(sent, 1 << 20, "the server read too little to fill its output")
        time.sleep(0.5)
        before = self.cpu_seconds()
        time.sleep(2)
        used = self.cpu_seconds() - before
        self.assertLess(used, 0.4, f"evertd used {used:.2f} s of CPU in 2 s while waiting")
        st, _ = self.get("/scrape?info_hash=" + q(self.ih))
        self.assertEqual(st, 200)
        rss = 0
        with open(f"/proc/{self.daemon.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
        self.assertLess(rss, 200 * 1024, "evertd grew past 200 MiB")
        s.close()

    def test_http_malformed_heads_are_refused_and_closed(self):
        """Issue 15: `Content-Length : 5` (a space before the colon) was ignored, and the body
        then read as the next request; RFC 9112 says 400. So for other malformed heads."""
        for head in (b"GET /scrape HTTP/1.1\r\nContent-Length : 5\r\n\r\nhello",
                     b"GET /scrape HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n",
                     b"GET /scrape HTTP/1.1\r\nno colon\r\n\r\n",
                     b"GET /scr ape HTTP/1.1\r\n\r\n"):
            with socket.create_connection((ADDR, self.daemon.http_port), timeout=5) as s:
                s.sendall(head)
                data = b""
                while True:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                self.assertTrue(data.startswith(b"HTTP/1.1 400"), (head, data))
                self.assertEqual(data.count(b"HTTP/1.1"), 1, data)

    def test_http_keep_alive_and_http10(self):
        c = http.client.HTTPConnection(ADDR, self.daemon.http_port, timeout=10)
        for i in range(3):  # one connection, three requests
            c.request("GET", f"/scrape?info_hash={q(self.ih)}")
            r = c.getresponse()
            self.assertEqual(r.status, 200)
            self.assertIn(b"files", r.read())
        c.close()
        with socket.create_connection((ADDR, self.daemon.http_port), timeout=5) as s:
            s.sendall(f"GET /scrape?info_hash={q(self.ih)} HTTP/1.0\r\n\r\n".encode())
            data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break  # HTTP/1.0 without keep-alive: closed after the response
                data += chunk
            self.assertTrue(data.startswith(b"HTTP/1.0 200"))

    # ---- UDP ---------------------------------------------------------------------------------
    def udp(self, packet, family=socket.AF_INET, expect=True):
        host = ADDR if family == socket.AF_INET else "::1"
        port = self.daemon.udp_port if family == socket.AF_INET else self.daemon.udp6_port
        with socket.socket(family, socket.SOCK_DGRAM) as s:
            s.settimeout(2 if expect else 0.3)
            s.sendto(packet, (host, port))
            try:
                return s.recvfrom(4096)[0]
            except socket.timeout:
                if expect:
                    raise
                return None

    def udp_session(self, family=socket.AF_INET):
        s = socket.socket(family, socket.SOCK_DGRAM)
        s.settimeout(2)
        host = ADDR if family == socket.AF_INET else "::1"
        port = self.daemon.udp_port if family == socket.AF_INET else self.daemon.udp6_port
        s.connect((host, port))
        s.send(struct.pack(">QII", 0x41727101980, 0, 7))
        action, tid, cid = struct.unpack(">IIQ", s.recv(64))
        self.assertEqual((action, tid), (0, 7))
        return s, cid

    def test_udp_connect_announce_scrape_and_errors(self):
        s, cid = self.udp_session()
        def ann(sock, cid, pid, port, left, event=0, ih=None):
            sock.send(struct.pack(">QII20s20sQQQIIIiH", cid, 1, 9, ih or self.ih, pid, 0, left,
                                  0, event, 0, 0, -1, port))
            return sock.recv(4096)
        r = ann(s, cid, b"-LT2080-" + b"a" * 12, 8001, 0, 2)
        self.assertEqual(struct.unpack(">IIIII", r[:20]), (1, 9, 1800, 0, 1))
        r = ann(s, cid, b"-LT2080-" + b"b" * 12, 8002, 5, 2)
        self.assertEqual(r[20:], socket.inet_aton(ADDR) + struct.pack(">H", 8001))
        ann(s, cid, b"-LT2080-" + b"b" * 12, 8002, 0, 1)  # completed
        ann(s, cid, b"-LT2080-" + b"b" * 12, 8002, 0, 1)  # again: counted once
        s.send(struct.pack(">QII", cid, 2, 11) + self.ih + b"\x00" * 20)
        r = s.recv(4096)
        self.assertEqual(struct.unpack(">II", r[:8]), (2, 11))
        self.assertEqual(struct.unpack(">III", r[8:20]), (2, 1, 0))  # seeders, completed, leechers
        self.assertEqual(struct.unpack(">III", r[20:32]), (0, 0, 0))
        # Not whitelisted: an error.
        r = ann(s, cid, b"-LT2080-" + b"c" * 12, 8003, 5, 2, ih=b"\x01" * 20)
        self.assertEqual(struct.unpack(">II", r[:8]), (3, 9))
        self.assertIn(b"not tracked", r[8:])
        # BEP 41 URL data is parsed, and a bad option list does not hurt.
        s.send(struct.pack(">QII20s20sQQQIIIiH", cid, 1, 12, self.ih, b"-LT2080-" + b"d" * 12,
                           0, 5, 0, 0, 0, 0, -1, 8004) + b"\x02\x05/path\x01\x02\xff")
        self.assertEqual(struct.unpack(">II", s.recv(4096)[:8]), (1, 12))
        s.close()
        # A forged connection id: an error no larger than the request.
        req = struct.pack(">QII", 12345, 2, 13) + self.ih
        r = self.udp(req)
        self.assertEqual(struct.unpack(">II", r[:8]), (3, 13))
        self.assertLessEqual(len(r), len(req))
        # Too short, a wrong protocol id, an unknown action: silence.
        self.assertIsNone(self.udp(b"\x00" * 10, expect=False))
        self.assertIsNone(self.udp(struct.pack(">QII", 1, 0, 1), expect=False))
        self.assertIsNone(self.udp(struct.pack(">QII", 1, 9, 1), expect=False))
        # IPv6: peers are 18 bytes.
        s6, cid6 = self.udp_session(socket.AF_INET6)
        ann(s6, cid6, b"-LT2080-" + b"e" * 12, 8005, 5, 2)
        r = ann(s6, cid6, b"-LT2080-" + b"f" * 12, 8006, 5, 2)
        self.assertEqual(r[20:], socket.inet_pton(socket.AF_INET6, "::1") + struct.pack(">H", 8005))
        s6.close()
        stats = self.daemon.api("GET", "/v1/tracker/stats")
        self.assertGreaterEqual(stats["announces"]["udp"], 6)

    # ---- evertctl ------------------------------------------------------------------------------
    def ctl(self, *args):
        out = subprocess.run([EVERTCTL, *args], capture_output=True, text=True, timeout=60,
                             env=dict(os.environ, EVERT_SOCKET=self.daemon.sock))
        return out.returncode, out.stdout, out.stderr

    def test_evertctl_probe_swarms_swarm_stats(self):
        ih = self.ih.hex()
        rc, out, err = self.ctl("probe", f"http://{ADDR}:{self.daemon.http_port}/announce", ih,
                                "--left", "5", "--port", "7100", "--json")
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out)["response"]["incomplete"], 1)
        rc, out, err = self.ctl("probe", f"udp://{ADDR}:{self.daemon.udp_port}", ih, "--port",
                                "7101", "--json")
        self.assertEqual(rc, 0, err)
        r = json.loads(out)["response"]
        self.assertEqual((r["seeders"], r["leechers"], r["peers"]), (1, 1, [f"{ADDR}:7100"]))
        rc, out, err = self.ctl("probe", f"udp://{ADDR}:{self.daemon.udp_port}", ih, "--scrape",
                                "--json")
        self.assertEqual(json.loads(out)["response"], {"seeders": 1, "completed": 0,
                                                       "leechers": 1})
        rc, out, err = self.ctl("probe", f"http://{ADDR}:{self.daemon.http_port}/announce",
                                "00" * 20)
        self.assertEqual(rc, 1)  # a failure reason
        self.assertIn("unregistered torrent", out)
        rc, out, err = self.ctl("probe", "ftp://x", ih)
        self.assertEqual(rc, 2)
        rc, out, err = self.ctl("swarms")
        self.assertEqual(rc, 0, err)
        self.assertIn(ih, out)
        self.assertIn("1 swarm", out)
        rc, out, err = self.ctl("swarm", ih)
        self.assertEqual(rc, 0, err)
        self.assertIn(f"{ADDR}:7101", out)
        self.assertIn("Evertorrent", out)
        rc, out, err = self.ctl("swarm", "nothex")
        self.assertEqual(rc, 2)
        rc, out, err = self.ctl("swarm", "ab" * 20)
        self.assertEqual(rc, 1)
        self.assertIn("no swarm", err)
        rc, out, err = self.ctl("stats", "--json")
        self.assertEqual(rc, 0, err)
        stats = json.loads(out)
        self.assertEqual((stats["announces"]["http"], stats["announces"]["udp"]), (1, 1))

    # ---- persistence -------------------------------------------------------------------------
    def test_swarm_survives_restart_and_kill_9(self):
        ids = [b"-qB4500-" + bytes([70 + i]) * 12 for i in range(3)]
        self.announce(peer_id=ids[0], port=9001, left=0, event="completed")
        self.announce(peer_id=ids[1], port=9002, left=7)
        def counts():
            _, body = self.get(f"/scrape?info_hash={q(self.ih)}")
            return bdecode(body)[b"files"][self.ih]
        before = counts()
        self.assertEqual((before[b"complete"], before[b"incomplete"], before[b"downloaded"]),
                         (1, 1, 1))
        self.daemon.stop()  # graceful
        self.daemon.start()
        self.assertEqual(counts(), before)
        self.announce(peer_id=ids[2], port=9003, left=7)
        time.sleep(0.5)  # 5x the crash window (tracker.persist_interval + store.commit_interval)
        self.daemon.stop(signal.SIGKILL)
        self.daemon.start()
        after = counts()
        self.assertEqual((after[b"complete"], after[b"incomplete"], after[b"downloaded"]),
                         (1, 2, 1))
        # A restored peer is still the same peer (its key survives): a new port updates it.
        self.announce(peer_id=ids[1], port=9012, left=7)
        self.assertEqual(counts()[b"incomplete"], 2)
        self.announce(peer_id=ids[1], port=9002, left=7)
        # The restored peers are handed out.
        r = self.announce(peer_id=b"-qB4500-" + b"Z" * 12, port=9009, left=7)
        got = sorted(struct.unpack(">H", r[b"peers"][i + 4:i + 6])[0]
                     for i in range(0, len(r[b"peers"]), 6))
        self.assertEqual(got, [9001, 9002, 9003])

    def test_whitelist_changes_on_reload_and_open_mode(self):
        other = hashlib.sha1(b"other").digest()
        self.assertIn("unregistered", bdecode(self.get(
            f"/announce?info_hash={q(other)}&peer_id={q(b'x' * 20)}&port=1&left=0")[1])
            [b"failure reason"].decode())
        self.daemon.write_config(whitelist=[self.ih.hex(), other.hex()])
        out = subprocess.run([EVERTCTL, "reload", "--socket", self.daemon.sock],
                             capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertNotIn(b"failure reason", self.announce(ih=other))
        self.daemon.write_config(mode="open", max_swarms=2)
        subprocess.run([EVERTCTL, "reload", "--socket", self.daemon.sock], check=True,
                       capture_output=True, timeout=30)
        self.assertNotIn(b"failure reason", self.announce(ih=b"\x05" * 20))
        r = self.announce(ih=b"\x06" * 20)  # a third swarm: past max_swarms
        self.assertIn(b"too many swarms", r[b"failure reason"])

    def test_a_peer_id_from_another_address_is_another_peer(self):
        """The hardening issue: peers were keyed by peer id alone, and every handshake shows a
        peer's id, so anyone could stop a peer or move it to an address of their choosing."""
        victim = b"-qB4500-" + b"v" * 12
        self.announce(peer_id=victim, port=7001, left=10, event="started")
        # A stop in its name from another host stops nobody.
        r = self.announce(peer_id=victim, port=7001, left=10, event="stopped", source=OTHER_ADDR)
        self.assertEqual(self.scrape_counts()[b"incomplete"], 1)
        # An announce in its name from another host is that host's own peer.
        self.announce(peer_id=victim, port=9999, left=0, source=OTHER_ADDR)
        swarm = self.daemon.api("GET", "/v1/tracker/swarm?info_hash=" + self.ih.hex())
        self.assertEqual(sorted((p["address"], p["port"]) for p in swarm["peers"]),
                         sorted([(ADDR, 7001), (OTHER_ADDR, 9999)]))
        c = self.scrape_counts()
        self.assertEqual((c[b"complete"], c[b"incomplete"]), (1, 1))
        # The victim itself restarted on another port: updated, not listed twice.
        r = self.announce(peer_id=victim, port=7002, left=10, event="started")
        self.assertEqual(r[b"peers"], socket.inet_aton(OTHER_ADDR) + struct.pack(">H", 9999))
        swarm = self.daemon.api("GET", "/v1/tracker/swarm?info_hash=" + self.ih.hex())
        self.assertEqual(sorted((p["address"], p["port"]) for p in swarm["peers"]),
                         sorted([(ADDR, 7002), (OTHER_ADDR, 9999)]))

    def test_one_address_cannot_fill_a_swarm(self):
        """The hardening issue: one host could fill a swarm up to max_peers_per_swarm with
        made-up peers. By default 32 peers per swarm and address are listed; the others are
        answered with a warning and counted."""
        for i in range(40):
            r = self.announce(peer_id=b"-XX0001-%012d" % i, port=7000 + i, left=10)
            if i < 32:
                self.assertNotIn(b"warning message", r)
        self.assertIn(b"too many peers from your address", r.get(b"warning message", b""))
        self.assertEqual(len(r[b"peers"]), 6 * 32)  # answered all the same
        self.assertEqual(self.scrape_counts()[b"incomplete"], 32)
        r = self.announce(peer_id=b"-XX0001-elsewhere000", port=8000, left=10,
                          source=OTHER_ADDR)
        self.assertNotIn(b"failure reason", r)
        self.assertNotIn(b"warning message", r)
        self.assertEqual(self.scrape_counts()[b"incomplete"], 33)
        stats = self.daemon.api("GET", "/v1/tracker/stats")
        self.assertEqual(stats["unlisted_announces"], {"swarm_full": 0, "address_full": 8})
        # The cap is a reloadable setting.
        self.daemon.write_config(max_peers_per_address=34)
        subprocess.run([EVERTCTL, "reload", "--socket", self.daemon.sock], check=True,
                       capture_output=True, timeout=30)
        self.announce(peer_id=b"-XX0001-%012d" % 40, port=7040, left=10)
        self.announce(peer_id=b"-XX0001-%012d" % 41, port=7041, left=10)
        r = self.announce(peer_id=b"-XX0001-%012d" % 42, port=7042, left=10)
        self.assertIn(b"warning message", r)
        self.assertEqual(self.scrape_counts()[b"incomplete"], 35)

    def test_completed_only_swarms_expire_in_open_mode(self):
        """The hardening issue: in open mode a made-up info-hash announced with event=completed
        left a swarm with a completed count that never expired (nor its row in the store), so
        such announces filled max_swarms for good. Now it goes once idle for the expiry; a
        whitelisted torrent keeps its count."""
        self.daemon.stop()
        self.daemon.write_config(mode="open", expiry=30)
        self.daemon.start()
        made_up = os.urandom(20)
        peer = b"-XX0001-" + b"c" * 12
        for ih in (made_up, self.ih):
            self.announce(ih=ih, peer_id=peer, left=0, event="completed")
            self.announce(ih=ih, peer_id=peer, left=0, event="stopped")
        self.assertEqual(self.scrape_counts(made_up)[b"downloaded"], 1)
        # Gone within the expiry and a sweep (every 30 s); bounded wait, no fixed sleep.
        deadline = time.time() + 100
        while time.time() < deadline:
            if self.daemon.api("GET", "/v1/tracker/swarms")["total"] == 1:
                break
            time.sleep(0.5)
        swarms = self.daemon.api("GET", "/v1/tracker/swarms")["swarms"]
        self.assertEqual([s["info_hash"] for s in swarms], [self.ih.hex()])
        self.assertEqual(swarms[0]["completed"], 1)  # whitelisted: kept
        self.assertEqual(self.daemon.api("GET", "/v1/tracker/stats")["expired_swarms"], 1)
        # Deleted from the store too: a restart does not bring it back.
        self.daemon.stop()
        self.daemon.start()
        swarms = self.daemon.api("GET", "/v1/tracker/swarms")["swarms"]
        self.assertEqual([s["info_hash"] for s in swarms], [self.ih.hex()])

    # ---- real clients ------------------------------------------------------------------------
    def make_torrent(self, tracker):
        data = os.path.join(self.root, "seed")
        os.makedirs(data, exist_ok=True)
        path = os.path.join(data, "payload.bin")
        with open(path, "wb") as f:
            f.write(os.urandom(3 << 20))
        torrent = os.path.join(self.root, "payload.torrent")
        subprocess.run([EVERTCTL, "create", "--v1", "--force", "--piece-size", "256K", "-t",
                        tracker, "-o", torrent, path], check=True, capture_output=True, timeout=60)
        with open(path, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        out = subprocess.run([EVERTCTL, "inspect", "--json", torrent], check=True,
                             capture_output=True, text=True, timeout=30)
        return torrent, data, digest, json.loads(out.stdout)["info_hash_v1"]

    def spawn(self, argv, **kw):
        p = subprocess.Popen(argv, **kw)
        self.children.append(p)
        return p

    def wait_file(self, path, digest, timeout=90):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if os.path.exists(path):
                with open(path, "rb") as f:
                    if hashlib.sha256(f.read()).hexdigest() == digest:
                        return True
            time.sleep(0.2)
        return False

    def real_clients(self, scheme):
        port = self.daemon.http_port if scheme == "http" else self.daemon.udp_port
        url = f"{scheme}://{ADDR}:{port}/announce"
        torrent, data, digest, ih = self.make_torrent(url)
        self.daemon.write_config(whitelist=[self.ih.hex(), ih])
        subprocess.run([EVERTCTL, "reload", "--socket", self.daemon.sock], check=True,
                       capture_output=True, timeout=30)
        # python3-libtorrent seeds; it is only findable through the tracker.
        seed = self.spawn([PY, os.path.join(HERE, "lt_peer.py"), "seed", torrent, data],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.assertEqual(seed.stdout.readline().strip(), "announced")
        # aria2c downloads from it.
        a_dir = os.path.join(self.root, "aria2")
        # aria2 speaks UDP tracker only through its DHT socket: DHT on for the UDP run, with no
        # bootstrap node and a fresh routing table, in a namespace where nothing else exists.
        dht = "true" if scheme == "udp" else "false"
        aria = self.spawn(["aria2c", "--dir", a_dir, f"--enable-dht={dht}", "--enable-dht6=false",
                           "--dht-file-path=" + os.path.join(self.root, "dht.dat"),
                           "--dht-listen-port=46021",
                           "--bt-enable-lpd=false", "--enable-peer-exchange=false",
                           "--seed-time=0", "--bt-stop-timeout=90", "--listen-port=46001-46009",
                           "--console-log-level=warn", "--summary-interval=0",
                           "--no-conf=true", "--log=" + os.path.join(self.root, "aria2.log"),
                           "--log-level=info", torrent],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.assertEqual(aria.wait(timeout=120), 0)
        self.assertTrue(self.wait_file(os.path.join(a_dir, "payload.bin"), digest, 5))
        # transmission-cli downloads too.
        t_dir = os.path.join(self.root, "transmission")
        t_cfg = os.path.join(self.root, "transmission-config")
        os.makedirs(t_cfg, exist_ok=True)
        with open(os.path.join(t_cfg, "settings.json"), "w") as f:
            json.dump({"dht-enabled": False, "lpd-enabled": False, "pex-enabled": False,
                       "utp-enabled": False, "port-forwarding-enabled": False,
                       "peer-port": 46011, "rpc-enabled": False}, f)
        tr = self.spawn(["transmission-cli", "-g", t_cfg, "-w", t_dir, "-M", torrent],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.assertTrue(self.wait_file(os.path.join(t_dir, "payload.bin"), digest),
                        "transmission-cli did not download the file")
        # The seed and transmission are in the swarm, known by their peer ids' clients.
        swarm = self.daemon.api("GET", "/v1/tracker/swarm?info_hash=" + ih)
        clients = " ".join(p["client"] for p in swarm["peers"])
        self.assertIn("Transmission", clients)
        self.assertIn("libtorrent", clients)
        tr.terminate()
        tr.wait(timeout=15)
        seed.stdin.close()
        seed.wait(timeout=30)
        # Each client announced over this transport (started), aria2 also when it finished
        # (whether the others' "stopped" arrive before they exit is up to them).
        stats = self.daemon.api("GET", "/v1/tracker/stats")
        self.assertGreaterEqual(stats["announces"][scheme], 4)

    def test_real_clients_over_http(self):
        self.real_clients("http")

    def test_real_clients_over_udp(self):
        self.real_clients("udp")


if __name__ == "__main__":
    unittest.main(verbosity=2)
