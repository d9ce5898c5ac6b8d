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


class UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=10)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)

def free_port(kind=socket.SOCK_STREAM):
    """A loopback port nothing listens on now (for servers that cannot report theirs)."""
    s = socket.socket(socket.AF_INET, kind)
    s.bind((ADDR, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def http_scrape(port, info_hash):
    """(complete, incomplete) of one torrent from an HTTP tracker's /scrape."""
    q = "".join("%%%02X" % b for b in info_hash)
    c = http.client.HTTPConnection(ADDR, port, timeout=5)
    c.request("GET", "/scrape?info_hash=" + q)
    body = c.getresponse().read()
    c.close()
    # The counts of the one file in the reply: d5:filesd20:<hash>d8:completei..e...
    def num(key):
        k = b"%d:%se" % (len(key), key)
        at = body.find(k[:-1] + b"i")
        if at < 0:
            return 0
        start = at + len(k)
        return int(body[start:body.index(b"e", start)])
    return num(b"complete"), num(b"incomplete")


def udp_scrape(port, info_hash):
    """(seeders, leechers) of one torrent from a UDP tracker (BEP 15: connect, then scrape)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2)
    try:
        for _ in range(3):
            try:
                s.sendto(struct.pack(">QII", 0x41727101980, 0, 1), (ADDR, port))
                action, _, cid = struct.unpack(">IIQ", s.recv(64)[:16])
                s.sendto(struct.pack(">QII", cid, 2, 2) + info_hash, (ADDR, port))
                r = s.recv(64)
                action, _, seeders, _, leechers = struct.unpack(">IIIII", r[:20])
                return seeders, leechers
            except socket.timeout:
                continue
        raise RuntimeError("no UDP scrape reply from port %d" % port)
    finally:
        s.close()


class EverseedTest(unittest.TestCase):
    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="evert-everseed-")
        self.sock = os.path.join(self.root, "evertd.sock")
        self.children = []
        self.extra = []  # (process, log file) of other daemons a test starts
        self.proc, self.log, ports = self.spawn_evertd(self.root, f"""daemon:
  state_dir: {self.root}/state
  modules: [tracker, everseed]
control:
  socket: {self.sock}
  socket_group: ""
log:
  target: stderr
  level: debug
store:
  commit_interval: 50
tracker:
  http_listen: ["{ADDR}:0"]
  udp_listen: ["{ADDR}:0"]
everseed:
  listen: ["{ADDR}:0"]
  announce_retry: 1
""")
        self.http_port = ports["tracker"]["http_ports"][0]
        self.udp_port = ports["tracker"]["udp_ports"][0]
        self.seed_port = ports["everseed"]["ports"][0]

    def spawn_evertd(self, root, config):
        """Starts an evertd with `config` in `root`; returns (process, log, module statuses)."""
        os.makedirs(root, exist_ok=True)
        cfg = os.path.join(root, "evertd.yaml")
        with open(cfg, "w") as f:
            f.write(config)
        sock = os.path.join(root, "evertd.sock")
        log = open(os.path.join(root, "evertd.log"), "ab")
        proc = subprocess.Popen([EVERTD, "--config", cfg], stdout=log, stderr=log,
                                stdin=subprocess.DEVNULL)
        deadline = time.time() + 15
        while True:
            try:
                st = self.api("GET", "/v1/status", sock=sock)
                return proc, log, {m["name"]: m["status"] for m in st["modules"]}
            except (OSError, KeyError, ValueError):
                if proc.poll() is not None or time.time() > deadline:
                    with open(os.path.join(root, "evertd.log"), "rb") as f:
                        text = f.read().decode(errors="replace")
                    proc.kill()
                    proc.wait()
                    log.close()
                    raise RuntimeError("evertd did not come up: " + text)
                time.sleep(0.02)

    def tearDown(self):
        for p in self.children:
            if p.poll() is None:
                p.kill()
                p.wait()
        for proc, log in [(self.proc, self.log)] + self.extra:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            if log is not None:
                log.close()
        if os.environ.get("KEEP"):
            print("kept", self.root)
        else:
            shutil.rmtree(self.root, ignore_errors=True)

    def read_log(self):
        with open(os.path.join(self.root, "evertd.log"), "rb") as f:
            return f.read().decode(errors="replace")

    def api(self, method, path, body=None, sock=None):
        c = UnixHTTP(sock or self.sock)
        try:
            c.request(method, path, body=json.dumps(body) if body is not None else None)
            r = c.getresponse()
            return json.loads(r.read() or b"{}")
        finally:
            c.close()

    def publish(self, torrent, data):
        with open(torrent, "rb") as f:
            b64 = base64.b64encode(f.read()).decode()
        job = self.api("POST", "/v1/publish", {"torrent": b64, "data": data})["job"]
        deadline = time.time() + 60
        while time.time() < deadline:
            j = self.api("GET", f"/v1/job?id={job}")
            if j["state"] != "verifying":
                return j
            time.sleep(0.05)
        self.fail("publish did not finish")

    def make(self, size, version="--hybrid", tiers=None):
        data = os.path.join(self.root, "data")
        os.makedirs(data, exist_ok=True)
        path = os.path.join(data, "payload.bin")
        with open(path, "wb") as f:
            f.write(os.urandom(size))
        torrent = os.path.join(self.root, "payload.torrent")
        if tiers is None:
            tiers = [[f"http://{ADDR}:{self.http_port}/announce"]]
        args = []
        for i, tier in enumerate(tiers):
            args += (["--tier"] if i > 0 else []) + [a for u in tier for a in ("-t", u)]
        subprocess.run([EVERTCTL, "create", version, "--force"] + args + ["-o", torrent, path],
                       check=True, capture_output=True, timeout=60)
        with open(path, "rb") as f:
            return torrent, path, hashlib.sha256(f.read()).hexdigest()

    def download(self, mode, what, digest, name=None):
        out = os.path.join(self.root, "dl-" + (name or mode))
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
        with open(os.path.join(out, "payload.bin"), "rb") as f:
            self.assertEqual(hashlib.sha256(f.read()).hexdigest(), digest)

    def test_published_torrent_downloads_from_torrent_and_magnet(self):
        torrent, path, digest = self.make(5 << 20)
        j = self.publish(torrent, path)
        self.assertEqual(j["state"], "done", j)
        t = j["torrent"]
        self.assertFalse(t["already_published"])
        self.assertEqual(t["seeders"], 1)  # the everseed, known to the tracker without announcing
        self.assertEqual(t["trackers"], [])  # its only tracker is this daemon's: no announces
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

    def start_opentracker(self, port, info_hashes):
        """opentracker (Debian's, whitelist build) on loopback `port`, tracking `info_hashes`."""
        root = os.path.join(self.root, "ot-%d" % port)
        os.makedirs(root, exist_ok=True)
        with open(os.path.join(root, "whitelist.txt"), "w") as f:
            f.write("".join(h.hex() + "\n" for h in info_hashes))
        # opentracker chroots into tracker.rootdir: the whitelist path is inside it.
        with open(os.path.join(root, "ot.conf"), "w") as f:
            f.write(f"access.whitelist /whitelist.txt\ntracker.rootdir {root}\n")
        log = open(os.path.join(root, "log"), "ab")
        proc = subprocess.Popen(["opentracker", "-f", os.path.join(root, "ot.conf"), "-i", ADDR,
                                 "-p", str(port)], stdout=log, stderr=log,
                                stdin=subprocess.DEVNULL)
        self.extra.append((proc, log))
        deadline = time.time() + 10
        while True:
            try:
                http_scrape(port, info_hashes[0])
                return proc
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError("opentracker did not come up on port %d" % port)
                time.sleep(0.05)

    def start_second_tracker(self):
        """Another evertd, tracker only (any info-hash): a tracker that is not this daemon."""
        root = os.path.join(self.root, "second")
        proc, log, st = self.spawn_evertd(root, f"""daemon:
  state_dir: {root}/state
  modules: [tracker]
control:
  socket: {root}/evertd.sock
  socket_group: ""
log:
  target: stderr
tracker:
  mode: open
  http_listen: ["{ADDR}:0"]
  udp_listen: ["{ADDR}:0"]
""")
        self.extra.append((proc, log))
        return proc, st["tracker"]["udp_ports"][0]

    def trackers_of(self, info_hash):
        return {t["url"]: t for t in
                self.api("GET", "/v1/torrent?info_hash=" + info_hash)["trackers"]}

    def wait_trackers(self, info_hash, done, what, timeout=30):
        """Polls GET /v1/torrent until done(trackers by URL) holds."""
        deadline = time.time() + timeout
        while True:
            tr = self.trackers_of(info_hash)
            if done(tr):
                return tr
            if time.time() > deadline or self.proc.poll() is not None:
                self.fail(f"{what}: {json.dumps(tr, indent=1)}\n{self.read_log()[-4000:]}")
            time.sleep(0.1)

    def test_announces_to_external_trackers_and_clients_find_the_seed_there(self):
        ot_port = free_port()
        second, udp_port = self.start_second_tracker()
        ot_url = f"http://{ADDR}:{ot_port}/announce"
        udp_url = f"udp://{ADDR}:{udp_port}"
        own_urls = [f"http://{ADDR}:{self.http_port}/announce", f"udp://localhost:{self.udp_port}"]
        # Tier 0: this daemon's tracker (never announced to); then opentracker, then the second
        # evertd over UDP, each a tier of its own.
        torrent, path, digest = self.make(2 << 20, tiers=[own_urls, [ot_url], [udp_url]])
        ih_hex = subprocess.run([EVERTCTL, "inspect", "--json", torrent], check=True,
                                capture_output=True, text=True, timeout=30).stdout
        ih = bytes.fromhex(json.loads(ih_hex)["info_hash_v1"])
        self.start_opentracker(ot_port, [ih])
        j = self.publish(torrent, path)
        self.assertEqual(j["state"], "done", j)
        # Both external trackers answer the everseed's started announce.
        tr = self.wait_trackers(
            ih.hex(), lambda t: all(t.get(u, {}).get("state") == "working" for u in (ot_url, udp_url)),
            "the external trackers were not announced to")
        self.assertEqual(set(tr), {ot_url, udp_url}, "this daemon's tracker is never announced to")
        for u in (ot_url, udp_url):
            self.assertEqual(tr[u]["failures"], 0)
            self.assertIsNotNone(tr[u]["last_announce"])
            self.assertGreater(tr[u]["next_announce"], tr[u]["last_announce"])
            self.assertGreaterEqual(tr[u]["interval"], 300)  # clamped to announce_min_interval
            self.assertEqual(tr[u]["seeders"], 1)  # the tracker counts the everseed itself
        self.assertEqual(tr[ot_url]["tier"], 1)
        self.assertEqual(tr[udp_url]["tier"], 2)
        # The trackers' own scrapes list the everseed as a seeder.
        self.assertEqual(http_scrape(ot_port, ih), (1, 0))
        self.assertEqual(udp_scrape(udp_port, ih), (1, 0))
        st = {m["name"]: m["status"] for m in self.api("GET", "/v1/status")["modules"]}
        self.assertEqual(st["everseed"]["announce"]["announces"], 2)
        # Clients that know only one external tracker download from the everseed.
        self.download("magnet", f"magnet:?xt=urn:btih:{ih.hex()}&tr={ot_url}", digest, "ot")
        self.download("magnet", f"magnet:?xt=urn:btih:{ih.hex()}&tr={udp_url}", digest, "udp")
        self.assertIsNone(second.poll())

    def test_a_graceful_stop_tells_udp_trackers(self):
        second, udp_port = self.start_second_tracker()
        udp_url = f"udp://{ADDR}:{udp_port}"
        torrent, path, _ = self.make(256 << 10, tiers=[[udp_url]])
        ih = json.loads(subprocess.run([EVERTCTL, "inspect", "--json", torrent], check=True,
                                       capture_output=True, text=True,
                                       timeout=30).stdout)["info_hash_v1"]
        self.assertEqual(self.publish(torrent, path)["state"], "done")
        self.wait_trackers(ih, lambda t: t[udp_url]["state"] == "working", "not announced")
        self.assertEqual(udp_scrape(udp_port, bytes.fromhex(ih)), (1, 0))
        # Its connection id is fresh: one datagram says event=stopped as evertd exits.
        self.proc.terminate()
        self.assertEqual(self.proc.wait(timeout=15), 0)
        self.assertIn("told 1 UDP trackers that the everseed stops", self.read_log())
        deadline = time.time() + 10
        while udp_scrape(udp_port, bytes.fromhex(ih))[0] != 0 and time.time() < deadline:
            time.sleep(0.05)
        self.assertEqual(udp_scrape(udp_port, bytes.fromhex(ih)), (0, 0))
        self.assertIsNone(second.poll())

    def test_reload_turns_announcing_off_and_on(self):
        second, udp_port = self.start_second_tracker()
        udp_url = f"udp://{ADDR}:{udp_port}"
        torrent, path, _ = self.make(256 << 10, tiers=[[udp_url]])
        ih = json.loads(subprocess.run([EVERTCTL, "inspect", "--json", torrent], check=True,
                                       capture_output=True, text=True,
                                       timeout=30).stdout)["info_hash_v1"]
        self.assertEqual(self.publish(torrent, path)["state"], "done")
        self.wait_trackers(ih, lambda t: t[udp_url]["state"] == "working", "not announced")
        cfg = os.path.join(self.root, "evertd.yaml")
        with open(cfg) as f:
            original = f.read()

        def reload(text):
            with open(cfg, "w") as f:
                f.write(text)
            subprocess.run([EVERTCTL, "reload", "--socket", self.sock], check=True,
                           capture_output=True, timeout=30)

        # Off: the trackers hear event=stopped and nothing is shown any more.
        reload(original + "  announce: false\n")
        self.assertEqual(self.trackers_of(ih), {})
        st = {m["name"]: m["status"] for m in self.api("GET", "/v1/status")["modules"]}
        self.assertNotIn("announce", st["everseed"])
        deadline = time.time() + 10
        while udp_scrape(udp_port, bytes.fromhex(ih))[0] != 0 and time.time() < deadline:
            time.sleep(0.05)
        self.assertEqual(udp_scrape(udp_port, bytes.fromhex(ih)), (0, 0))
        # On again: announced again from the store's announce lists.
        reload(original)
        self.wait_trackers(ih, lambda t: t.get(udp_url, {}).get("state") == "working",
                           "not announced again")
        self.assertEqual(udp_scrape(udp_port, bytes.fromhex(ih)), (1, 0))
        # this daemon's URL named in own_trackers: no longer announced to.
        reload(original + f"  own_trackers: [\"{udp_url}\"]\n")
        self.assertEqual(self.trackers_of(ih), {})
        self.assertIsNone(self.proc.poll())
        self.assertIsNone(second.poll())

    def test_a_tracker_that_is_down_backs_off_and_recovers(self):
        down_port = free_port()
        down_url = f"http://{ADDR}:{down_port}/announce"
        torrent, path, _ = self.make(256 << 10, tiers=[[down_url]])
        ih = json.loads(subprocess.run([EVERTCTL, "inspect", "--json", torrent], check=True,
                                       capture_output=True, text=True,
                                       timeout=30).stdout)["info_hash_v1"]
        self.assertEqual(self.publish(torrent, path)["state"], "done")
        # announce_retry is 1 s: retries after 1, 2, 4 s, each failure shown with its reason.
        tr = self.wait_trackers(ih, lambda t: t[down_url]["failures"] >= 3,
                                "the down tracker was not retried")
        t = tr[down_url]
        self.assertEqual(t["state"], "failing")
        self.assertIn("refused", t["error"].lower())
        self.assertIsNone(t["seeders"])
        # The wait doubles with each failure in a row.
        self.assertEqual(t["next_announce"] - t["last_announce"], 2 ** (t["failures"] - 1))
        # The daemon is healthy meanwhile: it answers and seeds.
        st = {m["name"]: m["status"] for m in self.api("GET", "/v1/status")["modules"]}
        self.assertGreaterEqual(st["everseed"]["announce"]["failures"], 3)
        with socket.create_connection((ADDR, self.seed_port), timeout=5):
            pass
        # The tracker comes up: the next retry finds it and the everseed is listed there.
        self.start_opentracker(down_port, [bytes.fromhex(ih)])
        tr = self.wait_trackers(ih, lambda t: t[down_url]["state"] == "working",
                                "the tracker was not found once up", timeout=40)
        self.assertNotIn("error", tr[down_url])
        self.assertEqual(tr[down_url]["failures"], 0)
        self.assertEqual(http_scrape(down_port, bytes.fromhex(ih)), (1, 0))

    def test_refusals_and_bad_trackers_are_shown_not_fatal(self):
        ot_port = free_port()
        ot_url = f"http://{ADDR}:{ot_port}/announce"
        # opentracker does not whitelist this torrent: it refuses with a failure reason.
        self.start_opentracker(ot_port, [b"\x01" * 20])
        # A UDP "tracker" that answers garbage, and URLs no tracker has.
        junk = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        junk.bind((ADDR, 0))
        junk_url = f"udp://{ADDR}:{junk.getsockname()[1]}"
        torrent, path, _ = self.make(
            256 << 10, tiers=[[ot_url], [junk_url], ["ftp://x/y", "http://h:99999/", "wss://a/"]])
        ih = json.loads(subprocess.run([EVERTCTL, "inspect", "--json", torrent], check=True,
                                       capture_output=True, text=True,
                                       timeout=30).stdout)["info_hash_v1"]
        self.assertEqual(self.publish(torrent, path)["state"], "done")
        # The junk tracker gets a connect request and answers it with garbage of every size.
        junk.settimeout(10)
        data, peer = junk.recvfrom(2048)
        self.assertEqual(data[:12], struct.pack(">QI", 0x41727101980, 0))
        for reply in [b"", b"\x00" * 7, data[:8], b"\x00\x00\x00\x01" + data[12:16] + b"x" * 4,
                      b"\x00\x00\x00\x09" + data[12:16], os.urandom(1500)]:
            junk.sendto(reply, peer)
        tr = self.wait_trackers(ih, lambda t: t[ot_url]["failures"] >= 1, "no refusal shown")
        self.assertIn("not authorized", tr[ot_url]["error"])
        self.assertTrue(tr[ot_url]["error"].startswith("refused: "))
        self.assertEqual(set(tr), {ot_url, junk_url})  # URLs that are no trackers have no state
        self.assertEqual(tr[junk_url]["state"], "announcing")  # still waiting for a real answer
        st = {m["name"]: m["status"] for m in self.api("GET", "/v1/status")["modules"]}
        self.assertGreaterEqual(st["everseed"]["announce"]["bad_datagrams"], 5)
        junk.close()
        self.assertIsNone(self.proc.poll())



if __name__ == "__main__":
    unittest.main(verbosity=2)
