#!/usr/bin/python3
"""The interoperability matrix: real BitTorrent clients download from the everseed alone, each
in its default settings, with the seed and every client on separate addresses.

Rows are clients and settings (python3-libtorrent in its defaults, uTP only, TCP only and with
encryption forced; transmission-daemon in its defaults and with encryption required; aria2c,
qbittorrent-nox and rtorrent in their defaults; python3-libtorrent over a lossy link). Columns
are the .torrent and the magnet link of a v1, a hybrid (v1 + v2) and a v2-only torrent, where
the client reads that kind. Each row is a unittest method and a ctest test (matrix.ROW).

Topology (netlab.py): the test runs in a network namespace of its own, whose bridge carries
SEED_ADDR (10.99.0.1); evertd binds its tracker (HTTP and UDP) and everseed there, so the
tracker hands the clients the seed's bridge address. Each cell's client runs in a namespace of
its own on the bridge (10.99.0.11, .12, ...), or for the lossy rows behind tests/tools/linkem:
a userspace link of two TUN devices with 50 ms one-way delay in each direction (100 ms round
trip) and 1% random loss in each direction (seeded), because this kernel has no sch_netem.

Every cell has its own torrent (a file of random bytes published with `evertctl publish`: no
url-list, a magnet link without ws=, checked), so the clients of cells that run at once never
share a swarm and the everseed is the only source. For each cell the test records:
  - the seed's first byte: a thread polls evertd's control API (GET /v1/torrents, `uploaded`
    per torrent) every 15 ms from the moment the client is given the link, client-agnostic;
  - when the tracker first listed the client (GET /v1/tracker/swarm), i.e. its first announce;
  - the client's own first byte, where it says (libtorrent, Transmission, qBittorrent,
    rtorrent; not aria2c without its RPC);
  - how it is connected to the seed (TCP or uTP, plain or encrypted), where it says;
  - that the bytes it wrote equal the original and the seed's `uploaded` grew by the size.
A cell passes when all of that holds and the seed's first byte came within FIRST_BYTE_BOUND of
giving the link (the project's bar, tracker round trip included). The cells that cannot pass
until the everseed speaks uTP and MSE/PE are in EXPECTED_TO_FAIL_UNTIL_UTP_MSE with the reason:
they must fail (a cell there that passes fails the test: take it out of the list), and never
with wrong data. CLIENT_LIMITS are what a client cannot read (Transmission 3.00 and aria2 1.36
with hybrids): the test checks it behaves as recorded.

The matrix is printed as markdown at the end of each row and written to EVERT_MATRIX_DIR
(ROW.json and ROW.md; `interop_matrix_test.py --report` joins them into interop-matrix.md).

  ctest --test-dir build -R '^matrix\\.' -j2 --output-on-failure   # every row, then the report
  unshare --net /usr/bin/python3 tests/integration/interop_matrix_test.py MatrixTest.test_aria2c_defaults
"""
import glob
import hashlib
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import xmlrpc.client
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import matrix_clients as mc  # noqa: E402
import matrix_report  # noqa: E402
import netlab  # noqa: E402

EVERTD = os.environ.get("EVERTD", "build/daemon/evertd")
EVERTCTL = os.environ.get("EVERTCTL", "build/ctl/evertctl")
LINKEM = os.environ.get("EVERT_LINKEM", "build/tests/tools/linkem")
OUT_DIR = os.environ.get("EVERT_MATRIX_DIR", os.path.join("build", "matrix"))
SEED = netlab.SEED_ADDR
TRACKER_PORT = 6969  # fixed ports are safe: the test's namespace is its own
SEED_PORT = 6881

FIRST_BYTE_BOUND = 1.0  # seconds from giving the link to the seed's first payload byte
LOSSY_FIRST_BYTE_BOUND = 3.0  # over 100 ms round trips with 1% loss (a lost SYN waits 1 s)
NO_BYTE_DEADLINE = 20.0  # a cell with no byte by then has failed
CONTROL_NO_BYTE_DEADLINE = 80.0  # Transmission over uTP waits for a keep-alive (60 s, libtorrent)
DOWNLOAD_DEADLINE = 60.0  # seconds after the link was given
LIMIT_WINDOW = 12.0  # how long a cell in CLIENT_LIMITS is watched for bytes that must not come
SIZE = 3 << 20
LOSSY_SIZE = 3 << 20
PARALLEL = 3  # cells of a row at once (two ctest jobs on two cores)
STOPPING = threading.Event()  # set by SIGTERM: the cells stop following their clients

LEGEND = (
    "Times: from giving the client the link to the seed's first payload byte (the everseed's "
    "`uploaded`, polled every 15 ms). Bar: %.1f s (%.1f s over the lossy link) plus the waits "
    "that are not the seed's: until the client's first announce reached the tracker (its own "
    "timing; over the lossy link also a lost announce) and the pulses its log shows, listed "
    "below. "
    "xfail: in EXPECTED_TO_FAIL_UNTIL_UTP_MSE or _FIXED_HERE (cause below); limit: what the "
    "client cannot read, in CLIENT_LIMITS; control: from a python3-libtorrent seed, no bar; "
    "n/a: the client has no BitTorrent v2." % (FIRST_BYTE_BOUND, LOSSY_FIRST_BYTE_BOUND))

COLUMNS = [("torrent", "v1"), ("magnet", "v1"), ("torrent", "hybrid"), ("magnet", "hybrid"),
           ("torrent", "v2"), ("magnet", "v2")]


class Row:
    """A client (a matrix_clients class) with its settings: `options` for the class."""

    def __init__(self, key, title, cls, columns=None, lossy=False, control=False, no_byte=None,
                 **options):
        self.key = key
        self.no_byte = no_byte
        self.title = title
        self.cls = cls
        self.columns = columns
        self.lossy = lossy
        # A control row downloads from a python3-libtorrent seed (in its defaults, on an
        # address of its own) instead of the everseed, to tell the client's own behaviour from
        # the everseed's; the tracker is then in open mode and the torrents are not published.
        self.control = control
        self.options = options

    def no_byte_deadline(self):
        if self.no_byte:
            return self.no_byte
        return CONTROL_NO_BYTE_DEADLINE if self.control else NO_BYTE_DEADLINE * (
            1.5 if self.lossy else 1)

    def download_deadline(self):
        return DOWNLOAD_DEADLINE * (2 if self.lossy or self.control else 1)

    def make(self, host, root, size):
        return self.cls(host, root, size, **self.options)

    def cells(self):
        return [c for c in (self.columns or COLUMNS) if c[1] in self.cls.versions]


LOSSY_COLUMNS = [("torrent", "v1"), ("magnet", "hybrid")]
ROWS = [
    Row("libtorrent_defaults", "python3-libtorrent 2.0.8, defaults", mc.Libtorrent),
    Row("libtorrent_utp_only", "python3-libtorrent, uTP only", mc.Libtorrent, mode="utp"),
    Row("libtorrent_tcp_only", "python3-libtorrent, TCP only", mc.Libtorrent, mode="tcp"),
    Row("libtorrent_encryption_forced", "python3-libtorrent, encryption forced (RC4)",
        mc.Libtorrent, mode="encryption"),
    # Transmission's own pulses add up (its first announce ~8 s after start; from a magnet link
    # it reconnects once the metadata is in, then waits up to 10 s for its rechoke pulse before
    # it declares interest): 40 s to the first byte before a cell counts as failed.
    Row("transmission_defaults", "transmission-daemon 3.00, defaults", mc.Transmission,
        no_byte=40.0),
    Row("transmission_encryption_required", "transmission-daemon 3.00, encryption required",
        mc.Transmission, no_byte=40.0, encryption_required=True),
    # The magnet v1 cell is left out of the control row: it needs two of Transmission's 60 s
    # uTP stalls (before and after the metadata), past the row's time budget.
    Row("transmission_control", "transmission-daemon 3.00, defaults, from a python3-libtorrent "
        "seed (control)", mc.Transmission, control=True,
        columns=[("torrent", "v1"), ("torrent", "hybrid"), ("magnet", "hybrid")]),
    Row("aria2c_defaults", "aria2c 1.36, defaults", mc.Aria2),
    Row("qbittorrent_defaults", "qbittorrent-nox 4.5.2, defaults", mc.QBittorrent),
    Row("rtorrent_defaults", "rtorrent 0.9.8, defaults", mc.RTorrent),
    Row("lossy_libtorrent_defaults", "python3-libtorrent defaults, 50 ms + 1% loss each way",
        mc.Libtorrent, columns=LOSSY_COLUMNS, lossy=True),
    Row("lossy_libtorrent_utp_only", "python3-libtorrent uTP only, 50 ms + 1% loss each way",
        mc.Libtorrent, columns=LOSSY_COLUMNS, lossy=True, mode="utp"),
    Row("lossy_libtorrent_tcp_only", "python3-libtorrent TCP only, 50 ms + 1% loss each way",
        mc.Libtorrent, columns=LOSSY_COLUMNS, lossy=True, mode="tcp"),
    # libtorrent's own uTP over the same link, from a python3-libtorrent seed: the rate the
    # everseed's uTP is compared with, measured in the same run.
    Row("lossy_libtorrent_utp_control", "python3-libtorrent uTP only from a python3-libtorrent "
        "seed, 50 ms + 1% loss each way (control)", mc.Libtorrent, columns=[("torrent", "v1")],
        lossy=True, control=True, mode="utp"),
]

ALL = "*"
NO_UTP = "the everseed does not speak uTP (BEP 29) yet: no connection is ever made"
NO_MSE = ("the everseed does not speak MSE/PE yet: it drops the encrypted handshake ('not a "
          "BitTorrent handshake'), and with encryption forced there is no plaintext retry")
LIBTORRENT_UTP = (
    "libtorrent (and qBittorrent, which is libtorrent 2.0.8) connects over uTP first; with no "
    "uTP at the seed it gives up after utp_connect_timeout (3 s, no ICMP is seen on its "
    "unconnected UDP socket) and connects over TCP on its next 0.5 s tick: first byte ~4.5 s "
    "(qBittorrent's magnets ~9 s: it re-adds a torrent once the metadata came, and the new "
    "torrent tries uTP again)")
ARIA2_MSE = (
    "aria2c tries the MSE handshake first; the everseed drops it, and aria2c retries with the "
    "plain handshake 1 s later ('Retry using legacy BitTorrent handshake')")
TRANSMISSION_UTP = (
    "Transmission 3.00 tries uTP first (and MSE, encryption preferred). With no uTP at the seed "
    "no uTP packet ever comes back, and libutp's timer (tr-utp.c: created by the first incoming "
    "uTP packet) never runs: the SYN is never retried nor timed out; after its 30 s handshake "
    "timeout the seed is marked unreachable and retried 15 min later, over uTP again "
    "(peer-mgr.c getReconnectIntervalSecs: numFails 1 + 2). With uTP it also needs MSE (a uTP "
    "handshake dropped in AWAITING_YB is retried over TCP but aborted at once: handshake.c "
    "gotError has no return after tr_peerIoReconnect), and the BitTorrent handshake in a uTP "
    "packet of its own: it leaves whatever follows the handshake in the same packet (the "
    "extension handshake, HAVE_ALL) unread until another packet comes (peer-io.c "
    "tr_peerIoTryRead reads the buffer again for TCP only), and the everseed sends nothing more "
    "(seen with the transports branch: a 174-byte packet, 'handshakeDone: connected', then "
    "nothing). Then it passes with its own waits: ~2.3 s to its first announce and up to 10 s "
    "to its rechoke pulse, when it declares interest")


class Cause:
    """Why a cell is expected to fail, and, where the margin is too thin to rely on the time bar
    alone, `seen(cell)`: true while the cause still shows in the client's log (then the cell
    counts as failing as expected whatever its time; once it no longer shows, the cell is judged
    as any other)."""

    def __init__(self, why, seen=None):
        self.why = why
        self.seen = seen


def log_has(text):
    return lambda cell: text in "\n".join(mc.tail(cell.client_log, 1000000))


# (row key, (source, version) or ALL) -> why the cell cannot pass until the everseed speaks uTP
# (BEP 29) and MSE/PE, or its BEP 52 handshake is fixed. Empty it as they land: a cell listed
# here that passes fails the test ("take it out").
EXPECTED_TO_FAIL_UNTIL_UTP_MSE = {}

# Cells that fail because of a bug on our side that the matrix found (not uTP/MSE): each with
# its reproduction in the report. Empty it as they are fixed.
TRACKER_SEED_FOR_SEEDS = (
    "our tracker hands the everseed only to leechers (swarm.cpp SwarmTable::select: 'if (local "
    "&& !asker_seeds)'), and aria2c announces left=0 while it fetches a magnet link's metadata "
    "(it has no size yet): it gets no peer at all and waits forever")
EXPECTED_TO_FAIL_UNTIL_FIXED_HERE = {}


class Limit:
    """A cell a client cannot download by its own limits: `outcome` is what it does instead
    (shown in the matrix), `check(cell)` is true when that is what happened."""

    def __init__(self, outcome, check, ends_when=None):
        self.outcome = outcome
        self.check = check
        self.ends_when = ends_when  # a line in the client's log that shows it: stop watching


def no_payload(cell):
    return cell.seed_first_byte is None and not cell.finished


def refused_at_add(cell):
    return cell.refused is not None and no_payload(cell)


def in_evidence(text):
    return lambda cell: no_payload(cell) and any(text in line for line in cell.evidence)


def aria2_wrong_hash(cell):
    """aria2 announced the SHA-1 of the info dictionary re-encoded without its empty-key
    members (what its parser drops), not the torrent's v1 info-hash."""
    if not no_payload(cell):
        return False
    with open(cell.torrent, "rb") as f:
        wrong = mc.aria2_info_hash(f.read())
    return wrong != cell.key_hash and "infohash=" + wrong in "\n".join(mc.tail(cell.client_log,
                                                                           100000))


TRANSMISSION_HYBRID_TORRENT = Limit(
    "refused: 'invalid or corrupt torrent file': its bencode parser fails on the v2 file "
    "tree's empty-string keys (\"\" is quark 0, which variant-benc.c takes for 'no key')",
    refused_at_add)
TRANSMISSION_HYBRID_MAGNET = Limit(
    "no download: the metadata (BEP 9) passes its SHA-1 check but does not parse, for the same "
    "reason ('magnet status: checksum passed 1, metainfo parsed 0'), and is fetched again",
    no_payload)
TRANSMISSION_HYBRID_MAGNET_SEEN = Limit(TRANSMISSION_HYBRID_MAGNET.outcome,
                                        in_evidence("metainfo parsed 0"), "metainfo parsed 0")
ARIA2_HYBRID_TORRENT = Limit(
    "no download: aria2 1.36 hashes the info dictionary re-encoded from its parse, which drops "
    "members with an empty key (XmlRpcRequestParserController::validMember; fixed in 1.37.0): "
    "it announces a wrong info-hash, which the tracker does not know",
    aria2_wrong_hash)
ARIA2_HYBRID_MAGNET = Limit(
    "no download: the metadata phase finds no peer (see magnet v1), and once it has the "
    "metadata it would announce the wrong info-hash, as with the .torrent", no_payload)
RTORRENT_HYBRID_MAGNET = Limit(
    "refused: libtorrent 0.13.8's parse_magnet_uri throws 'Invalid magnet URI.' for an xt that "
    "is not urn:btih (the hybrid's second xt, urn:btmh); its hybrid .torrent works",
    refused_at_add)
CLIENT_LIMITS = {
    ("transmission_defaults", ("torrent", "hybrid")): TRANSMISSION_HYBRID_TORRENT,
    ("transmission_defaults", ("magnet", "hybrid")): TRANSMISSION_HYBRID_MAGNET,
    ("transmission_encryption_required", ("torrent", "hybrid")): TRANSMISSION_HYBRID_TORRENT,
    ("transmission_encryption_required", ("magnet", "hybrid")): TRANSMISSION_HYBRID_MAGNET,
    ("transmission_control", ("torrent", "hybrid")): TRANSMISSION_HYBRID_TORRENT,
    ("transmission_control", ("magnet", "hybrid")): TRANSMISSION_HYBRID_MAGNET_SEEN,
    ("aria2c_defaults", ("torrent", "hybrid")): ARIA2_HYBRID_TORRENT,
    ("aria2c_defaults", ("magnet", "hybrid")): ARIA2_HYBRID_MAGNET,
    ("rtorrent_defaults", ("magnet", "hybrid")): RTORRENT_HYBRID_MAGNET,
}


def lookup(table, row, column):
    return table.get((row, column)) or table.get((row, ALL))


class UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=10)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)


class Evertd:
    """evertd in the test's namespace, on the bridge's address, with a temporary state dir."""

    def __init__(self, lab, root, tracker_mode="whitelist"):
        self.root = root
        os.makedirs(root, exist_ok=True)
        self.sock = os.path.join(root, "evertd.sock")
        self.log = os.path.join(root, "evertd.log")
        cfg = os.path.join(root, "evertd.yaml")
        with open(cfg, "w") as f:
            f.write(f"""daemon:
  state_dir: {root}/state
  modules: [tracker, everseed]
control:
  socket: {self.sock}
  socket_group: ""
log:
  target: stderr
  level: debug
tracker:
  http_listen: ["{SEED}:{TRACKER_PORT}"]
  udp_listen: ["{SEED}:{TRACKER_PORT}"]
  mode: {tracker_mode}
everseed:
  listen: ["{SEED}:{SEED_PORT}"]
""")
        self.proc = lab.spawn([EVERTD, "--config", cfg], log=self.log)
        def up():
            if self.proc.poll() is not None:
                raise RuntimeError("evertd exited: " + "\n".join(mc.tail(self.log)))
            return self.api("GET", "/v1/status")["modules"]
        mc.wait_until("evertd", up, 15)

    def api(self, method, path):
        c = UnixHTTP(self.sock)
        try:
            c.request(method, path)
            return json.loads(c.getresponse().read() or b"{}")
        finally:
            c.close()

    def lines_about(self, addr, since):
        """The daemon's log lines that name `addr` (a client's address) after `since` (unix
        seconds), shortened."""
        out = []
        for line in mc.tail(self.log, 100000, grep=[addr + ":"]):
            stamp = line[:23]
            try:
                t = time.mktime(time.strptime(stamp[:19], "%Y-%m-%d %H:%M:%S")) + float(
                    "0" + stamp[19:23])
            except ValueError:
                continue
            if t >= since - 1:
                out.append(line[11:])
        return out[:12]

    def first_time(self, addr, text, since):
        """Unix seconds of the daemon's first log line after `since` that names `addr` and
        holds `text`, or None."""
        for line in mc.tail(self.log, 100000, grep=[addr + ":"]):
            if text not in line:
                continue
            try:
                t = time.mktime(time.strptime(line[:19], "%Y-%m-%d %H:%M:%S")) + float(
                    "0" + line[19:23])
            except ValueError:
                continue
            if t >= since:
                return t
        return None

    def publish(self, path, version):
        """Publishes `path` with evertctl as a user would; returns (torrent file, info)."""
        torrent = path + ".torrent"
        r = subprocess.run([EVERTCTL, "publish", "--socket", self.sock, "--json", "-q",
                            "--" + version, "-o", torrent, path],
                           capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise RuntimeError("evertctl publish failed: " + r.stderr)
        return torrent, json.loads(r.stdout)


class SeedWatcher(threading.Thread):
    """Polls the everseed's `uploaded` per torrent (and the tracker's swarm for cells whose
    client has not announced yet) every 15 ms, and notes for each cell being watched when its
    torrent's first payload byte left the seed and when the tracker first listed its client."""

    PERIOD = 0.015

    def __init__(self, evertd):
        super().__init__(daemon=True)
        self.evertd = evertd
        self.cells = []
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.errors = 0

    def watch(self, cell):
        cell.uploaded_before = self.uploaded().get(cell.key_hash, 0)
        with self.lock:
            self.cells.append(cell)

    def uploaded(self):
        ts = self.evertd.api("GET", "/v1/torrents?limit=100000")["torrents"]
        return {t["info_hash"]: t["uploaded"] for t in ts}

    def run(self):
        while not self.stopped.wait(self.PERIOD):
            with self.lock:
                active = [c for c in self.cells if c.t_give is not None and not c.done]
            if not active:
                continue
            try:
                up = self.uploaded()
                now = time.monotonic()
                for c in active:
                    c.uploaded = up.get(c.key_hash, 0) - c.uploaded_before
                    if c.seed_first_byte is None and c.uploaded > 0:
                        c.seed_first_byte = now
                    if c.announced is None and self.listed(c):
                        c.announced = time.monotonic()
            except (OSError, ValueError, KeyError, http.client.HTTPException):
                self.errors += 1

    def listed(self, cell):
        for h in cell.tracker_hashes:
            sw = self.evertd.api("GET", "/v1/tracker/swarm?info_hash=" + h)
            if any(p.get("address") == cell.host.addr for p in sw.get("peers", [])):
                return True
        return False


class Cell:
    """One client given one link: what it did, measured from the seed's side and its own."""

    def __init__(self, row, column):
        self.row = row
        self.column = column
        self.source, self.version = column
        self.name = "%s-%s-%s" % (row.key, self.source, self.version)
        expected = (lookup(EXPECTED_TO_FAIL_UNTIL_UTP_MSE, row.key, column) or
                    lookup(EXPECTED_TO_FAIL_UNTIL_FIXED_HERE, row.key, column))
        self.expected = expected if isinstance(expected, (Cause, type(None))) else Cause(expected)
        self.expected_fail = self.expected.why if self.expected else None
        self.limit = lookup(CLIENT_LIMITS, row.key, column)
        self.t_give = None
        self.t_give_wall = None
        self.seed_first_byte = None  # CLOCK_MONOTONIC, from the seed's side
        self.own_first_byte = None  # the client's own
        self.announced = None  # when the tracker first listed the client
        self.finished_at = None
        self.finished = False
        self.uploaded = 0
        self.uploaded_before = 0
        self.transport = None
        self.refused = None
        self.error = None
        self.data_ok = None
        self.done = False
        self.evidence = []
        self.own_waits = []  # [(seconds, why)] of the client's own design
        self.seed_log = []
        self.client_log = None
        self.link_counters = None
        self.poll_errors = 0
        self.last_poll_error = None

    def after(self, t):
        return None if t is None or self.t_give is None else round(t - self.t_give, 3)

    def allowance(self):
        """Seconds of the client's own waits the bar allows for: when it announced (its first
        announce is its own timing) and the waits its log shows (Cell.own_waits)."""
        announce = max(0.0, self.after(self.announced) or 0.0)
        return round(announce + sum(w for w, _ in self.own_waits), 3)

    def bound(self):
        return (LOSSY_FIRST_BYTE_BOUND if self.row.lossy else FIRST_BYTE_BOUND) + self.allowance()

    def cause_seen(self):
        return bool(self.expected and self.expected.seen and self.expected.seen(self))

    def result(self):
        """"pass", "fail" (with self.error saying why) or "limit" (a CLIENT_LIMITS cell that
        behaved as recorded). An expected failure whose cause shows in the log is "fail"."""
        if self.cause_seen():
            self.error = self.error or "the cause shows in its log: " + self.expected.why
            return "fail"
        if self.limit:
            if self.limit.check(self):
                return "limit"
            self.error = self.error or "the client did not behave as CLIENT_LIMITS records"
            return "fail"
        if self.data_ok is False or not self.finished:
            return "fail"
        if self.uploaded < self.size and not self.row.control:
            self.error = "the everseed sent %d bytes of %d" % (self.uploaded, self.size)
            return "fail"
        if self.after(self.seed_first_byte) > self.bound() and not self.row.control:
            self.error = "first byte after %.2f s (bound %.2f s: %.1f s + %.2f s of its own " \
                         "waits)" % (self.after(self.seed_first_byte), self.bound(),
                                     self.bound() - self.allowance(), self.allowance())
            return "fail"
        return "pass"

    def as_json(self):
        r = self.result()
        rate = None
        if self.finished and self.seed_first_byte and self.finished_at:
            rate = round(self.size / max(1e-3, self.finished_at - self.seed_first_byte) / 2**20, 2)
        return {"row": self.row.key, "title": self.row.title, "source": self.source,
                "version": self.version, "result": r, "error": self.error,
                "seed_first_byte_s": self.after(self.seed_first_byte),
                "client_first_byte_s": self.after(self.own_first_byte),
                "announced_s": self.after(self.announced), "own_waits": self.own_waits,
                "allowance_s": self.allowance(), "bound_s": round(self.bound(), 3),
                "finished_s": self.after(self.finished_at), "mib_per_s": rate,
                "transport": self.transport, "uploaded": self.uploaded, "size": self.size,
                "expected_to_fail": self.expected_fail, "control": self.row.control,
                "limit": self.limit.outcome if self.limit else None, "refused": self.refused,
                "evidence": self.evidence, "seed_log": self.seed_log,
                "link": self.link_counters, "poll_errors": self.poll_errors,
                "last_poll_error": self.last_poll_error}


def digest(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def start_control_seed(lab, cell, root):
    """A python3-libtorrent seed of the cell's torrent on an address of its own, announced."""
    host = lab.add_host()
    seed = mc.Libtorrent(host, os.path.join(root, "control-seed"), cell.size, "seed")
    seed.out = os.path.dirname(cell.path)
    seed.start()
    seed.give(cell.torrent)
    mc.wait_until("the control seed's announce", lambda: seed._drain() or any(
        e.get("type") == "tracker_reply_alert" for e in seed.seen), 20)
    return host, seed


def lost_handshake_waits(client, host, losses):
    """[(seconds, why)]: a python3-libtorrent uTP connect that timed out because the link
    dropped the client's SYN or the seed's answer to it. libtorrent 2.0 sends its SYN again
    only after utp_connect_timeout (3 s), and has given up on uTP by then: it tries TCP on its
    next connect pulse. What the seed answered is in the link's log: a timeout with no such
    loss is the seed's and gets no allowance."""
    if not isinstance(client, mc.Libtorrent):
        return []
    client._drain()
    alerts = [(e["t"], e.get("message", "")) for e in client.seen if e["event"] == "alert"]
    waits = []
    for i, (t_open, msg) in enumerate(alerts):
        if "outgoing connection to peer (uTP)" not in msg:
            continue
        gone = next(((t, m) for t, m in alerts[i + 1:] if "disconnecting (uTP) [connect]" in m
                     and "timed out" in m), None)
        if gone is None:
            continue
        again = next((t for t, m in alerts[i + 1:] if t >= gone[0] and
                      "outgoing connection to peer (TCP)" in m), None)
        if again is None:
            continue

        def handshake(p):  # the client's SYN (type 4) or the seed's STATE (type 2) to it
            return p["proto"] == "udp" and p["len"] == 20 and (
                (p["src"].startswith(host.addr + ":") and p["head"].startswith("41")) or
                (p["dst"].startswith(host.addr + ":") and p["head"].startswith("21")))
        lost = [p for p in losses if t_open - 0.05 <= p["t"] <= gone[0] and handshake(p)]
        if lost:
            what = "its SYN" if lost[0]["head"].startswith("41") else "the seed's answer to it"
            waits.append((round(again - t_open, 3), "the link dropped %s; libtorrent waits "
                          "utp_connect_timeout (3 s) before TCP" % what))
    return waits


def run_cell(lab, evertd, watcher, cell, root):
    """Starts the cell's client in a namespace of its own, gives it the link, and follows it
    until it finished, failed or ran out of time; the client is stopped in every case."""
    host = (lab.add_lossy_host(50, 0.01, seed=abs(hash(cell.name)) % 1000 + 1, max_seconds=240)
            if cell.row.lossy else lab.add_host())
    cell.host = host
    lab.wait_reachable(host, TRACKER_PORT)
    client = cell.row.make(host, root, cell.size)
    seed = None
    try:
        if cell.row.control:
            seed_host, seed = start_control_seed(lab, cell, root)
            client.seed = "%s:6881" % seed_host.addr
        client.start()
        watcher.watch(cell)
        link = cell.magnet if cell.source == "magnet" else cell.torrent
        cell.t_give_wall = time.time()
        try:
            if isinstance(client, (mc.QBittorrent, mc.RTorrent)):
                cell.t_give = client.give(link, cell.tracker_hashes)
            else:
                cell.t_give = client.give(link)
        except mc.Refused as e:
            cell.t_give = time.monotonic()
            cell.refused = str(e)
        follow(cell, client, seed)
    finally:
        cell.done = True
        if not cell.row.control:  # the last word on what the everseed sent, after the client
            try:
                cell.uploaded = (watcher.uploaded().get(cell.key_hash, 0) -
                                 cell.uploaded_before)
            except (OSError, ValueError, KeyError, http.client.HTTPException):
                pass
        try:
            cell.evidence = client.evidence(cell.t_give)
            cell.own_waits = [(round(w, 3), why) for w, why in client.own_waits()]
        except Exception as e:  # evidence is best effort: the cell's result stands
            cell.evidence = ["(no evidence: %r)" % e]
        cell.client_log = client.log
        client.stop()
        if seed:
            seed._drain()
            cell.evidence += ["control seed: +%.3f s %s" % (e["t"] - cell.t_give, json.dumps(
                {k: v for k, v in e.items() if k not in ("t", "event")}))
                for e in seed.seen if e["event"] in ("peer", "first_upload")][:6]
            seed.stop()
        if host.lossy:
            cell.link_counters = lab.linkem_counters(host)
            cell.own_waits += lost_handshake_waits(client, host, lab.linkem_losses(host))
        cell.seed_log = evertd.lines_about(host.addr, cell.t_give_wall or time.time())
        if (isinstance(client, mc.QBittorrent) and cell.source == "magnet" and
                cell.seed_first_byte is not None and cell.t_give_wall):
            # qBittorrent closes the connection that brought a magnet link's metadata and adds
            # the torrent again (a new libtorrent torrent), which connects anew: from the first
            # connection's end (in evertd's log) to the first byte is its own.
            ended = evertd.first_time(host.addr, "ended (closed)", cell.t_give_wall)
            first_wall = cell.t_give_wall + (cell.seed_first_byte - cell.t_give)
            if ended is not None and ended < first_wall:
                cell.own_waits.append((round(first_wall - ended, 3), "qBittorrent adds a magnet "
                                       "link's torrent again once the metadata is in, and "
                                       "connects anew"))
    if cell.finished:
        got = os.path.join(client.out, os.path.basename(cell.path))
        cell.data_ok = os.path.exists(got) and digest(got) == cell.digest
        if not cell.data_ok:
            cell.error = "the downloaded file differs from the original"


def follow(cell, client, seed=None):
    """Polls the client (and the control seed) every 50 ms until it finished, or a deadline:
    no byte from the seed by the row's no-byte deadline, not finished by its download deadline,
    or, for a CLIENT_LIMITS cell, LIMIT_WINDOW seconds without the download it cannot do."""
    row = cell.row
    polls = 0
    while cell.refused is None and not STOPPING.is_set():
        now = time.monotonic()
        waited = now - cell.t_give
        try:
            st = client.poll()
        except (OSError, http.client.HTTPException, ValueError, KeyError, mc.Refused,
                xmlrpc.client.Error) as e:
            st = mc.Status(error="polling the client: %r" % e)
            cell.poll_errors += 1
            cell.last_poll_error = st.error
        if seed:
            seed._drain()
            up = [e for e in seed.seen if e["event"] == "first_upload"]
            if up and cell.seed_first_byte is None:
                cell.seed_first_byte = up[0]["t"]
        if st.first_byte and cell.own_first_byte is None:
            cell.own_first_byte = st.first_byte
        cell.transport = st.transport or cell.transport
        if st.finished:
            cell.finished = True
            cell.finished_at = now
            return
        if cell.limit and waited > LIMIT_WINDOW * (8 if row.control else 1):
            return
        polls += 1
        if cell.limit and cell.limit.ends_when and polls % 20 == 0 and cell.limit.ends_when in \
                "\n".join(mc.tail(client.log, 1000000)):
            return
        if st.error and "exited" in st.error:
            cell.error = st.error
            return
        if cell.seed_first_byte is None and waited > row.no_byte_deadline():
            cell.error = "no byte from the seed in %.0f s" % waited + (
                " (never announced to the tracker)" if cell.announced is None else
                " (announced after %.2f s)" % cell.after(cell.announced))
            if st.error:
                cell.error += "; client: " + st.error
            return
        if waited > row.download_deadline():
            cell.error = "not finished in %.0f s (%d of %d bytes)" % (waited, st.have, cell.size)
            return
        time.sleep(0.05)
    if cell.limit is None:
        cell.error = "refused the link: " + cell.refused


# ---- the tests ------------------------------------------------------------------------------

class MatrixTest(unittest.TestCase):
    def setUp(self):
        # The folders of earlier runs killed before their tearDown (SIGKILL): by PID.
        for old in glob.glob(os.path.join(tempfile.gettempdir(), "evert-matrix-*-*")):
            pid = os.path.basename(old).split("-")[2]
            kept = os.path.exists(os.path.join(old, "KEPT"))  # KEEP=1 asked for it
            if pid.isdigit() and not netlab.pid_alive(int(pid)) and not kept:
                shutil.rmtree(old, ignore_errors=True)
        self.root = tempfile.mkdtemp(prefix="evert-matrix-%d-" % os.getpid())
        self.watcher = None
        try:
            self.lab = netlab.Lab(self.root, LINKEM)
        except BaseException:
            shutil.rmtree(self.root, ignore_errors=True)
            raise

    def tearDown(self):
        if self.watcher:
            self.watcher.stopped.set()
            self.watcher.join(timeout=5)
        self.lab.close()
        if os.environ.get("KEEP"):
            open(os.path.join(self.root, "KEPT"), "w").close()
            print("kept", self.root)
        else:
            shutil.rmtree(self.root, ignore_errors=True)

    def prepare(self, cell):
        """A file of random bytes for the cell and its torrent, published (or, for a control
        row, only made: the everseed must not seed it); the links checked: no web seed."""
        d = os.path.join(self.root, "data", cell.name)
        os.makedirs(d)
        cell.size = LOSSY_SIZE if cell.row.lossy else SIZE
        cell.path = os.path.join(d, "payload-%s.bin" % cell.version)
        with open(cell.path, "wb") as f:
            f.write(os.urandom(cell.size))
        cell.digest = digest(cell.path)
        if cell.row.control:
            cell.torrent = cell.path + ".torrent"
            subprocess.run([EVERTCTL, "create", "-q", "--" + cell.version, "-o", cell.torrent,
                            "-t", "http://%s:%d/announce" % (SEED, TRACKER_PORT),
                            "-t", "udp://%s:%d/announce" % (SEED, TRACKER_PORT), cell.path],
                           check=True, capture_output=True, timeout=60)
        else:
            cell.torrent, info = self.evertd.publish(cell.path, cell.version)
            self.assertEqual(info["version"], cell.version)
            self.assertEqual(info["web_seeds"], [], cell.name)
        r = subprocess.run([EVERTCTL, "inspect", "--json", cell.torrent], capture_output=True,
                           text=True, timeout=60, check=True)
        meta = json.loads(r.stdout)
        # The seed is the only source: no web seed in the .torrent or the magnet link.
        self.assertEqual(meta["web_seeds"], [], cell.name)
        cell.magnet = meta["magnet"]
        self.assertNotIn("ws=", cell.magnet)
        v1, v2 = meta.get("info_hash_v1"), meta.get("info_hash_v2")
        cell.key_hash = v1 or v2[:40]  # the everseed's key: v1, or a v2 torrent's truncated hash
        cell.tracker_hashes = [h for h in (v1, v2 and v2[:40]) if h]

    def run_row(self, row):
        tool = {mc.Transmission: "transmission-daemon", mc.Aria2: "aria2c",
                mc.QBittorrent: "qbittorrent-nox", mc.RTorrent: "rtorrent"}.get(row.cls)
        if tool:
            netlab.which(tool)  # a missing client is a failure, not a skip: scripts/deps has it
        self.evertd = Evertd(self.lab, os.path.join(self.root, "evertd"),
                             tracker_mode="open" if row.control else "whitelist")
        self.watcher = SeedWatcher(self.evertd)
        self.watcher.start()
        cells = [Cell(row, c) for c in row.cells()]
        for c in cells:
            self.prepare(c)
        with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
            futures = [pool.submit(run_cell, self.lab, self.evertd, self.watcher, c,
                                   os.path.join(self.root, c.name)) for c in cells]
            for f in futures:
                f.result()
        results = [c.as_json() for c in cells]
        os.makedirs(OUT_DIR, exist_ok=True)
        with open(os.path.join(OUT_DIR, row.key + ".json"), "w") as f:
            json.dump({"row": row.key, "cells": results, "evertd": self.evertd.api(
                "GET", "/v1/status")["version"], "when": int(time.time()),
                "tracker_stats": self.evertd.api("GET", "/v1/tracker/stats")}, f, indent=1)
        text = matrix_report.markdown(results, ROWS, COLUMNS, LEGEND)
        with open(os.path.join(OUT_DIR, row.key + ".md"), "w") as f:
            f.write(text)
        print("\n" + text, flush=True)
        self.check(cells)

    def check(self, cells):
        problems = []
        for c in cells:
            r = c.result()
            if c.data_ok is False:
                problems.append("%s: the downloaded bytes differ from the original" % c.name)
            elif c.expected_fail and r != "fail":
                problems.append("%s passes now: take it out of EXPECTED_TO_FAIL_UNTIL_UTP_MSE "
                                "(or _FIXED_HERE)" % c.name)
            elif not c.expected_fail and r == "fail":
                problems.append("%s: %s" % (c.name, c.error))
        self.assertEqual(problems, [])


def row_test(row):
    def test(self):
        self.run_row(row)
    test.__doc__ = row.title
    return test


for _row in ROWS:
    setattr(MatrixTest, "test_" + _row.key, row_test(_row))



if __name__ == "__main__":
    if sys.argv[1:] == ["--report"]:
        print(matrix_report.write_report(OUT_DIR, ROWS, COLUMNS, LEGEND))
        sys.exit(0)
    netlab.ensure_private_namespace()
    # SIGTERM (ctest stopping the run) ends the test like a failure, so tearDown stops every
    # process and removes every namespace; after a SIGKILL the next run removes them.
    def on_term(*_):
        STOPPING.set()
        sys.exit(143)

    signal.signal(signal.SIGTERM, on_term)
    unittest.main()
