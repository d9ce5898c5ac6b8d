"""The real BitTorrent clients of the interoperability matrix (interop_matrix_test.py), each run
in its own network namespace (netlab.Host) in its default settings, driven the way a user or a
script drives it: python3-libtorrent through lt_client.py, transmission-daemon over its RPC,
aria2c on its command line, qbittorrent-nox over its WebUI API, rtorrent over XML-RPC on a
local SCGI socket.

Every client has the same shape: start() (bounded wait until it is ready), give(link) -> the
CLOCK_MONOTONIC time it was handed the magnet link or .torrent, poll() -> Status, stop(), and
evidence() -> lines of its own log that say what it did. What differs from a client's defaults
is only what it needs to run headless, each with a comment; the rows that are not defaults
(uTP only, encryption forced or required) say so in their name."""
import base64
import hashlib
import http.client
import json
import os
import queue
import socket
import subprocess
import threading
import time
import urllib.parse
import uuid
import xmlrpc.client

HERE = os.path.dirname(os.path.abspath(__file__))
PY = "/usr/bin/python3"


class Status:
    """What a client says about its download: bytes it has, whether it finished (every piece
    in and checked), when its first payload byte came (CLOCK_MONOTONIC) if it says, how it is
    connected to the seed ("TCP plain", "uTP RC4", ...) if it says, and an error if it has one."""

    def __init__(self, have=0, finished=False, first_byte=None, transport=None, error=None):
        self.have = have
        self.finished = finished
        self.first_byte = first_byte
        self.transport = transport
        self.error = error


class Refused(Exception):
    """The client refused the link or the .torrent when it was given (its message)."""


def wait_until(what, predicate, timeout, interval=0.02):
    deadline = time.monotonic() + timeout
    while True:
        try:
            r = predicate()
            if r:
                return r
        except (OSError, http.client.HTTPException, ValueError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("%s not ready within %s s" % (what, timeout))
        time.sleep(interval)


def tail(path, n=40, grep=None):
    try:
        with open(path, "rb") as f:
            lines = f.read().decode(errors="replace").splitlines()
    except OSError:
        return []
    if grep:
        lines = [x for x in lines if any(g in x for g in grep)]
    return lines[-n:]


def timeline(path, patterns, t0, stamp, first_only=True, limit=20):
    """[(seconds after t0, line)] of the log lines that contain one of `patterns` (the first of
    each pattern only, with `first_only`), their wall-clock stamp parsed by `stamp`."""
    out, seen = [], set()
    for line in tail(path, 1000000):
        hit = next((p for p in patterns if p in line), None)
        if hit is None or (first_only and hit in seen):
            continue
        t = stamp(line)
        if t is None:
            continue
        seen.add(hit)
        out.append((round(t - t0, 3), line))
        if len(out) >= limit:
            break
    return out


def parse_stamp(text, fmt="%Y-%m-%d %H:%M:%S"):
    """Unix seconds of a local "YYYY-MM-DD HH:MM:SS[.frac]" stamp, or None."""
    try:
        whole, _, frac = text.partition(".")
        return time.mktime(time.strptime(whole, fmt)) + (float("0." + frac) if frac else 0.0)
    except ValueError:
        return None


def first_at(events, pattern):
    return next((t for t, line in events if pattern in line), None)


class NsHTTP(http.client.HTTPConnection):
    """HTTP to a port on a client namespace's own loopback (netlab.socket_in)."""

    def __init__(self, host, port, timeout=10):
        super().__init__("127.0.0.1", port, timeout=timeout)
        self.ns_host = host

    def connect(self):
        self.sock = self.ns_host.connect(self.port, timeout=self.timeout)


class Client:
    kind = "client"
    versions = ("v1", "hybrid")  # what its metainfo parser reads

    def __init__(self, host, root, size):
        self.host = host
        self.root = root
        self.size = size
        self.out = os.path.join(root, "download")
        self.home = os.path.join(root, "home")
        self.log = os.path.join(root, self.kind + ".log")
        os.makedirs(self.out, exist_ok=True)
        self.proc = None
        self.seed = "10.99.0.1:6881"  # the seed's ADDRESS:PORT (the test sets it)
        self.given_wall = None  # time.time() when it was given the link

    def stop(self):
        if self.proc is not None:
            self.host.lab.stop(self.proc)

    def evidence(self, t_give=None):
        return tail(self.log)

    def own_waits(self):
        """[(seconds, why)]: waits of the client's own design seen in its log, which the
        first-byte bar allows for (a seed cannot shorten them)."""
        return []


# ---- python3-libtorrent --------------------------------------------------------------------

class Libtorrent(Client):
    kind = "libtorrent"
    versions = ("v1", "hybrid", "v2")

    def __init__(self, host, root, size, mode="defaults"):
        super().__init__(host, root, size)
        self.mode = mode
        self.events = queue.Queue()
        self.seen = []
        self.status = Status()

    def start(self):
        self.proc = self.host.spawn([PY, os.path.join(HERE, "lt_client.py"), self.mode, self.out],
                                    log=self.log, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    home=self.home)
        threading.Thread(target=self._read, daemon=True).start()
        wait_until("lt_client.py", lambda: self._drain() or self._has("ready"), 30)

    def _read(self):
        for line in self.proc.stdout:
            try:
                self.events.put(json.loads(line))
            except ValueError:
                pass

    def _has(self, event):
        return any(e["event"] == event for e in self.seen)

    def _drain(self):
        while True:
            try:
                e = self.events.get_nowait()
            except queue.Empty:
                return False
            self.seen.append(e)
            s = self.status
            if e["event"] == "first_byte":
                s.first_byte = e["t"]
                for p in e.get("peers", [])[:1]:  # the peer the first bytes came from
                    s.transport = "%s %s" % (p["transport"], p["encryption"])
            elif e["event"] == "finished":
                s.finished = True
                s.have = self.size

    def give(self, link):
        t = time.monotonic()
        self.proc.stdin.write((link + "\n").encode())
        self.proc.stdin.flush()
        return t

    def poll(self):
        self._drain()
        if self.proc.poll() is not None and not self.status.finished:
            self.status.error = "lt_client.py exited with %s" % self.proc.returncode
        return self.status

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                pass
        super().stop()

    def evidence(self, t_give=None):
        """Its events up to its first byte (or all, when none came), with seconds since the link
        was given; announces from its loopback listen sockets, which cannot reach the tracker,
        are left out."""
        self._drain()
        out = []
        t0 = t_give or 0
        for e in self.seen:
            if e["event"] not in ("alert", "peer", "first_byte", "finished"):
                continue
            msg = e.get("message") or ", ".join("%s=%s" % (k, v) for k, v in e.items()
                                               if k not in ("event", "t", "peers"))
            if "skipping tracker announce" in msg:
                continue
            out.append("+%.3f s %s %s" % (e["t"] - t0, e.get("type", e["event"]), msg))
        # Up to its first byte, and the last events after it when it did not finish.
        first = next((i for i, line in enumerate(out) if " first_byte " in line), len(out) - 1)
        after = [] if self.status.finished else out[first + 1:][-8:]
        return out[:first + 1][-14:] + after


# ---- transmission-daemon 3.00 --------------------------------------------------------------

class Transmission(Client):
    kind = "transmission"

    def __init__(self, host, root, size, encryption_required=False):
        super().__init__(host, root, size)
        self.config = os.path.join(root, "transmission-config")
        os.makedirs(self.config, exist_ok=True)
        if encryption_required:
            # The "encryption required" row; the defaults row writes no settings at all.
            with open(os.path.join(self.config, "settings.json"), "w") as f:
                json.dump({"encryption": 2}, f)
        self.session = ""
        self.id = None

    def start(self):
        # -f: stay in the foreground (a daemon that forks could not be stopped by its PID);
        # -g: its own config dir. RPC stays on its default port 9091, for 127.0.0.1 only (its
        # default whitelist): the test reaches it on the namespace's loopback.
        # TR_DEBUG_FD=2: its deep log (handshakes, uTP, peer manager) on standard error, into
        # the log: only what it writes changes, so the evidence can show why it waits.
        env = dict(os.environ, TR_DEBUG_FD="2")
        self.proc = self.host.spawn(["transmission-daemon", "-f", "-g", self.config],
                                    log=self.log, env=env, home=self.home)
        wait_until("transmission-daemon RPC", lambda: self.rpc("session-get") is not None, 30)

    def rpc(self, method, **args):
        body = json.dumps({"method": method, "arguments": args})
        for _ in range(3):
            c = NsHTTP(self.host, 9091)
            try:
                c.request("POST", "/transmission/rpc", body=body,
                          headers={"X-Transmission-Session-Id": self.session})
                r = c.getresponse()
                data = r.read()
                if r.status == 409:  # its CSRF protection: retry with the id it hands out
                    self.session = r.getheader("X-Transmission-Session-Id")
                    continue
                reply = json.loads(data)
                if reply.get("result") != "success":
                    raise Refused(reply.get("result"))
                return reply["arguments"]
            finally:
                c.close()
        raise RuntimeError("transmission RPC kept answering 409")

    def give(self, link):
        t = time.monotonic()
        self.given_wall = time.time()
        args = {"download-dir": self.out}
        if link.startswith("magnet:"):
            args["filename"] = link
        else:
            with open(link, "rb") as f:
                args["metainfo"] = base64.b64encode(f.read()).decode()
        r = self.rpc("torrent-add", **args)
        self.id = (r.get("torrent-added") or r.get("torrent-duplicate"))["id"]
        return t

    FIELDS = ["haveValid", "haveUnchecked", "downloadedEver", "percentDone", "status", "error",
              "errorString", "metadataPercentComplete", "peers", "trackerStats", "leftUntilDone"]

    def torrent(self):
        ts = self.rpc("torrent-get", ids=[self.id], fields=self.FIELDS)["torrents"]
        return ts[0] if ts else None

    def poll(self):
        s = Status()
        t = self.torrent()
        if t is None:
            s.error = "the torrent is gone"
            return s
        s.have = t["haveValid"]
        s.finished = t["percentDone"] >= 1 and t["leftUntilDone"] == 0 and t["haveUnchecked"] == 0
        if t["downloadedEver"] > 0:
            s.first_byte = time.monotonic()  # the caller keeps the first one it sees
        for p in t["peers"]:
            s.transport = "%s %s" % ("uTP" if p["isUTP"] else "TCP",
                                     "MSE" if p["isEncrypted"] else "plain")
        if t["error"]:
            s.error = t["errorString"]
        return s

    def events(self):
        """Its deep log's milestones with the seed, in seconds after it was given the link."""
        seed = "[%s]:%s" % tuple(self.seed.rsplit(":", 1))
        pats = ["announcing tier", "Got announce response", "got 1 peers",
                seed + " (peer-mgr", "Starting an OUTGOING µTP connection with " + seed,
                "Starting an OUTGOING connection with " + seed,
                seed + " setting to state [awaiting yb]", seed + " handshake failed",
                seed + " handshakeDone: connected", seed + " handshakeDone: aborting",
                "marking peer " + seed + " as unreachable", "Got a BT_FEXT_HAVE_ALL",
                "got a bitfield", "got ltep handshake", "Sending Interested", "got Unchoke",
                "requesting ", "magnet status", "metainfo parsed 0", "Magnet torrent's metadata"]
        return timeline(self.log, pats, self.given_wall or 0,
                        lambda line: parse_stamp(line[1:24]) if line.startswith("[") else None)

    def evidence(self, t_give=None):
        out = []
        try:
            t = self.torrent()
            if t:
                for ts in t["trackerStats"]:
                    out.append("tracker %s: last announce %s (%s peers)" % (
                        ts["host"], ts["lastAnnounceResult"], ts["lastAnnouncePeerCount"]))
                out.append("peers connected: %d, metadata %.0f%%" % (
                    len(t["peers"]), 100 * t["metadataPercentComplete"]))
        except (OSError, http.client.HTTPException, ValueError, Refused, RuntimeError):
            pass
        return out + ["+%.3f s %s" % (t, line[26:].strip()) for t, line in self.events()]

    def own_waits(self):
        """Its peer manager connects on a 0.5 s pulse after the tracker answers; what it queues
        goes out on its 0.5 s bandwidth pulse (bandwidth.c), over uTP each step of its MSE
        handshake too; it declares interest only on its 10 s rechoke pulse (peer-mgr.c
        RECHOKE_PERIOD_MSEC; peer-msgs.c updateInterest() is empty: 'FIXME -- might need to
        poke the mgr on startup'), and sends its requests on its own pulse after that. From a
        magnet link it drops its peers once the metadata is in, and connects again."""
        seed = "[%s]:%s" % tuple(self.seed.rsplit(":", 1))
        ev = timeline(self.log, [
            "Got announce response", "Starting an OUTGOING", seed + " setting to state [awaiting yb]",
            seed + " handshakeDone: connected", "Got a BT_FEXT_HAVE_ALL", "got a bitfield",
            "Sending Interested", "got Unchoke", "requesting ", "Saving completed metadata",
            "requesting metadata",
            seed + " utp_on_write sending"], self.given_wall or 0,
            lambda line: parse_stamp(line[1:24]) if line.startswith("[") else None,
            first_only=False, limit=400)

        def first(pattern, after=-1.0):
            return next((t for t, line in ev if pattern in line and t >= after), None)

        waits = []
        reply = first("Got announce response")
        start = first("Starting an OUTGOING", reply or 0)
        if reply is not None and start is not None and start > reply:
            waits.append((start - reply, "Transmission connects on its peer pulse"))
        metadata = first("Saving completed metadata")
        if metadata is not None:
            again = first("Starting an OUTGOING", metadata)
            if again is not None:
                waits.append((again - metadata, "from a magnet link it drops its peers once the "
                              "metadata is in and connects again on its peer pulse"))
        # The connection that downloads: the last one to complete its handshake.
        dones = [t for t, line in ev if "handshakeDone: connected" in line]
        yb_all = [t for t, line in ev if "setting to state [awaiting yb]" in line]
        for done in dones:
            yb = max((t for t in yb_all if t <= done), default=None)
            if yb is not None and done > yb:
                waits.append((done - yb, "its MSE handshake's steps go out on its write pulse"))
        done = dones[-1] if dones else 0.0
        ready = [x for x in (done, first("Got a BT_FEXT_HAVE_ALL", done),
                             first("got a bitfield", done)) if x is not None]
        if metadata is not None and dones and dones[0] < metadata:
            # From a magnet link, on the first connection: the metadata request goes out on its
            # pulses too (queued, then written).
            asked = first("requesting metadata", dones[0])
            if asked is not None and asked < metadata:
                waits.append((asked - dones[0], "it asks for the metadata on its own pulse"))
                sent = first("utp_on_write sending", asked)
                if sent is not None and sent < metadata:
                    waits.append((sent - asked, "and writes the request on its bandwidth pulse"))
        interested = first("Sending Interested", done)
        if interested is not None and interested > max(ready):
            waits.append((interested - max(ready), "Transmission declares interest on its 10 s "
                          "rechoke pulse"))
        unchoke = first("got Unchoke", done)
        request = first("requesting ", max(interested or 0, unchoke or 0))
        if request is not None and interested is not None:
            after = max(interested, unchoke or 0)
            if request > after:
                waits.append((request - after, "Transmission requests on its own pulse"))
        writes = [t for t, line in ev if "utp_on_write sending" in line]
        for what, at in (("interest", interested), ("requests", request)):
            sent = next((t for t in writes if at is not None and t >= at), None)
            if sent is not None and sent > at:
                waits.append((sent - at, "Transmission writes its %s on its 0.5 s bandwidth "
                              "pulse" % what))
        return waits


# ---- aria2c 1.36 ----------------------------------------------------------------------------

class Aria2(Client):
    kind = "aria2c"

    def start(self):
        pass  # aria2c is given its link on its command line

    def give(self, link):
        t = time.monotonic()
        self.given_wall = time.time()
        # --seed-time=0: exit once the download is complete instead of seeding on (it is the
        # test's end signal, not a transport setting); the log for the evidence. Everything else
        # at its defaults (no --no-conf: an aria2.conf would be read, and there is none).
        self.proc = self.host.spawn(["aria2c", "--dir", self.out, "--seed-time=0",
                                     "--log=" + self.log, "--log-level=info", link],
                                    log=self.log + ".out", home=self.home)
        return t

    def poll(self):
        s = Status()
        code = self.proc.poll()
        if code == 0:
            s.finished = True
            s.have = self.size
        elif code is not None:
            s.error = "aria2c exited with %d" % code
        return s

    def events(self):
        seed = self.seed
        pats = ["UDPT received ANNOUNCE reply", "UDPT received ERROR reply", "Response received",
                "Tracker returned failure reason", "Connecting to " + seed,
                "Retry using legacy BitTorrent handshake", "From: %s handshake" % seed,
                "From: %s have all" % seed, "To: %s interested" % seed,
                "From: %s unchoke" % seed, "From: %s piece" % seed, "Download complete",
                "infohash=", "info_hash="]
        return timeline(self.log, pats, self.given_wall or 0, lambda line: parse_stamp(line[:26]))

    def evidence(self, t_give=None):
        return ["+%.3f s %s" % (t, line[27:220].strip()) for t, line in self.events()]

    def own_waits(self):
        """aria2 connects to the peers a tracker gave on its once-a-second peer command. From a
        magnet link it also asks for the metadata on a later tick, and the download the
        metadata makes is a new one, which connects again on its next tick."""
        ev = self.events()
        waits = []
        reply = first_at(ev, "UDPT received ANNOUNCE reply")
        if reply is None:
            reply = first_at(ev, "Response received")
        connect = first_at(ev, "Connecting to " + self.seed)
        if reply is not None and connect is not None and connect > reply:
            waits.append((connect - reply, "aria2c connects on its 1 s peer command"))
        metadata = first_at(ev, "Download complete: [MEMORY][METADATA]")
        have = first_at(ev, "From: %s have all" % self.seed)
        if metadata is not None and have is not None and metadata > have:
            waits.append((metadata - have, "aria2c asks for a magnet's metadata on its 1 s tick"))
        if metadata is not None:
            again = next((t for t, line in ev if t > metadata and
                          ("To: %s interested" % self.seed in line or
                           "Connecting to " + self.seed in line)), None)
            if again is not None:
                waits.append((again - metadata, "aria2c starts the download a magnet's metadata "
                              "made as a new one, which connects on its next 1 s tick"))
        return waits


def aria2_info_hash(torrent):
    """The info-hash aria2 1.36 computes for a .torrent: the SHA-1 of the info dictionary as
    its bencode parser keeps it (members with an empty key dropped) encoded again."""
    meta, _ = bdecode(torrent, 0)
    return hashlib.sha1(bencode(dict(meta)[b"info"], drop_empty_keys=True)).hexdigest()


def bdecode(b, i):
    """(value, next index): integers, byte strings, lists, and dictionaries as lists of
    (key, value) pairs in their order."""
    c = b[i:i + 1]
    if c == b"i":
        end = b.index(b"e", i)
        return int(b[i + 1:end]), end + 1
    if c in (b"l", b"d"):
        items, i = [], i + 1
        while b[i:i + 1] != b"e":
            v, i = bdecode(b, i)
            items.append(v)
        return (items if c == b"l" else Pairs(zip(items[::2], items[1::2]))), i + 1
    colon = b.index(b":", i)
    n = int(b[i:colon])
    return b[colon + 1:colon + 1 + n], colon + 1 + n


class Pairs(list):
    """A bencoded dictionary's (key, value) pairs, in their order."""


def bencode(v, drop_empty_keys=False):
    if isinstance(v, int):
        return b"i%de" % v
    if isinstance(v, bytes):
        return b"%d:%s" % (len(v), v)
    if isinstance(v, Pairs):
        return b"d" + b"".join(bencode(k) + bencode(x, drop_empty_keys) for k, x in v
                               if k or not drop_empty_keys) + b"e"
    return b"l" + b"".join(bencode(x, drop_empty_keys) for x in v) + b"e"


# ---- qbittorrent-nox 4.5.2 ------------------------------------------------------------------

class QBittorrent(Client):
    kind = "qbittorrent"
    versions = ("v1", "hybrid", "v2")
    PORT = 8080  # its default WebUI port, in its own namespace

    def __init__(self, host, root, size):
        super().__init__(host, root, size)
        self.profile = os.path.join(root, "qbt-profile")
        conf = os.path.join(self.profile, "qBittorrent", "config")
        os.makedirs(conf, exist_ok=True)
        with open(os.path.join(conf, "qBittorrent.conf"), "w") as f:
            # Headless: the legal notice it would ask about on a terminal, accepted. The WebUI
            # keeps its defaults (port 8080, user admin, password adminadmin).
            f.write("[LegalNotice]\nAccepted=true\n")
        self.cookie = None
        self.hashes = ()
        self.peers = {}  # (address, connection, flags) -> (when first listed, peer)
        self.meta_done = None  # when a magnet link's metadata came (its state left metaDL)
        self.seed_back = None  # when the seed was listed again after that
        self.seed_gone = False
        self.last = {}

    def start(self):
        self.proc = self.host.spawn(["qbittorrent-nox", "--profile=" + self.profile],
                                    log=self.log, home=self.home)
        wait_until("qBittorrent WebUI", self.login, 60)

    def request(self, method, path, body=None, headers=None):
        c = NsHTTP(self.host, self.PORT)
        try:
            h = dict(headers or {})
            if self.cookie:
                h["Cookie"] = self.cookie
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            return r.status, r.getheader("Set-Cookie"), r.read()
        finally:
            c.close()

    def login(self):
        form = urllib.parse.urlencode({"username": "admin", "password": "adminadmin"})
        status, cookie, body = self.request(
            "POST", "/api/v2/auth/login", form,
            {"Content-Type": "application/x-www-form-urlencoded"})
        if status == 200 and body == b"Ok." and cookie:
            self.cookie = cookie.split(";")[0]
            return True
        return False

    def give(self, link, hashes=()):
        self.hashes = hashes
        boundary = uuid.uuid4().hex
        parts = [("savepath", None, self.out.encode())]
        if link.startswith("magnet:"):
            parts.append(("urls", None, link.encode()))
        else:
            with open(link, "rb") as f:
                parts.append(("torrents", os.path.basename(link), f.read()))
        body = b""
        for name, filename, data in parts:
            disp = 'form-data; name="%s"' % name + ('; filename="%s"' % filename if filename else "")
            body += b"--%s\r\nContent-Disposition: %s\r\n\r\n%s\r\n" % (
                boundary.encode(), disp.encode(), data)
        body += b"--%s--\r\n" % boundary.encode()
        t = time.monotonic()
        status, _, reply = self.request("POST", "/api/v2/torrents/add", body,
                                        {"Content-Type": "multipart/form-data; boundary=" + boundary})
        if status != 200 or reply.strip() != b"Ok.":
            raise Refused("HTTP %d %s" % (status, reply.decode(errors="replace")))
        return t

    def torrent(self):
        status, _, body = self.request("GET", "/api/v2/torrents/info")
        for t in json.loads(body):
            ids = {t.get("hash"), t.get("infohash_v1"), (t.get("infohash_v2") or "")[:40]}
            if ids & set(self.hashes):
                return t
        return None

    def poll(self):
        s = Status()
        t = self.torrent()
        if t is None:
            return s
        s.have = t["completed"]  # ("downloaded" stayed 0 in some runs that finished)
        s.finished = t["amount_left"] == 0 and t["progress"] >= 1 and t["state"] not in (
            "checkingDL", "checkingUP", "metaDL", "checkingResumeData", "moving")
        if t["completed"] > 0:
            s.first_byte = time.monotonic()
        if t["state"] in ("error", "missingFiles"):
            s.error = t["state"]
        status, _, body = self.request("GET", "/api/v2/sync/torrentPeers?hash=" + t["hash"])
        peers = json.loads(body).get("peers", {})
        now = time.monotonic()
        # A magnet link's torrent is re-added once its metadata came, which ends its
        # connections: note when that happened, and when the seed was listed again after it
        # had gone from the list.
        if self.meta_done is None and self.last.get("state") == "metaDL" != t["state"]:
            self.meta_done = now
            self.seed_gone = False
        if self.meta_done is not None and self.seed_back is None:
            if self.seed not in peers:
                self.seed_gone = True
            elif self.seed_gone:
                self.seed_back = now
        for addr, p in peers.items():
            key = (addr, p.get("connection"), p.get("flags"))
            if key not in self.peers and len(self.peers) < 20:
                self.peers[key] = (now, p)
            if addr == self.seed and p.get("downloaded", 0) > 0:  # the connection that served
                enc = "MSE" if "E" in p.get("flags", "") else "plain"
                s.transport = "%s %s" % ("uTP" if "μTP" in p.get("connection", "") else "TCP",
                                         enc)
        self.last = {k: t.get(k) for k in ("state", "downloaded", "num_seeds", "num_leechs",
                                           "tracker", "progress")}
        return s

    def evidence(self, t_give=None):
        """Each state its peers were listed in (μTP/BT, flags: P uTP, E encrypted, D/d
        downloading), with seconds since the link was given; its log's torrent lines."""
        out = ["torrent: %s" % json.dumps(self.last)]
        for (addr, conn, flags), (t, p) in sorted(self.peers.items(), key=lambda kv: kv[1][0]):
            out.append("+%.3f s peer %s %s flags %r client %r progress %s" % (
                t - (t_give or 0), addr, conn, flags, p.get("client"), p.get("progress")))
        if self.meta_done is not None:
            out.append("+%.3f s metadata in (its state left metaDL); the seed listed again "
                       "at %s" % (self.meta_done - (t_give or 0), "+%.3f s" % (
                           self.seed_back - (t_give or 0)) if self.seed_back else "no time seen"))
        log = os.path.join(self.profile, "qBittorrent", "data", "logs", "qbittorrent.log")
        return out + tail(log, 6, grep=["Torrent", "torrent", "rror"])

    def own_waits(self):
        """qBittorrent re-adds a magnet link's torrent once the metadata came (the new torrent
        announces and connects again, on libtorrent's tick)."""
        if self.meta_done is not None and self.seed_back is not None:
            return [(self.seed_back - self.meta_done, "qBittorrent re-adds a magnet's torrent "
                     "after its metadata and connects again")]
        return []


# ---- rtorrent 0.9.8 -------------------------------------------------------------------------

def scgi_call(path, method, *params, timeout=10):
    """One XML-RPC call over rtorrent's SCGI socket (a netstring of headers, then the body)."""
    body = xmlrpc.client.dumps(params, method).encode()
    headers = b"CONTENT_LENGTH\0%d\0SCGI\x001\0" % len(body)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(path)
        s.sendall(b"%d:%s," % (len(headers), headers) + body)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    reply = data.split(b"\r\n\r\n", 1)[-1]
    return xmlrpc.client.loads(reply)[0][0]


class RTorrent(Client):
    kind = "rtorrent"

    def __init__(self, host, root, size):
        super().__init__(host, root, size)
        self.scgi = os.path.join(root, "rtorrent.sock")
        self.session = os.path.join(root, "rtorrent-session")
        os.makedirs(self.session, exist_ok=True)
        self.hashes = ()

    def start(self):
        # Headless: -n (no ~/.rtorrent.rc), daemon mode (no terminal UI; it does not fork), a
        # session dir of its own (where it keeps a magnet link's metadata), XML-RPC on a local
        # SCGI socket so the test can give it links; the download dir (-d) as any user sets it.
        self.proc = self.host.spawn(["rtorrent", "-n", "-s", self.session, "-d", self.out,
                                     "-o", "system.daemon.set=true",
                                     "-o", "network.scgi.open_local=" + self.scgi],
                                    log=self.log, home=self.home)
        wait_until("rtorrent SCGI", lambda: scgi_call(self.scgi, "system.client_version"), 30)

    def give(self, link, hashes=()):
        self.hashes = tuple(h.upper() for h in hashes)
        t = time.monotonic()
        scgi_call(self.scgi, "load.start", "", link)
        # load.start answers 0 either way; a link it could not parse never shows in its list.
        try:
            wait_until("the download in rtorrent's list", self.download, 3)
        except RuntimeError:
            raise Refused("not in download_list 3 s after load.start")
        return t

    def download(self):
        for h in scgi_call(self.scgi, "download_list", ""):
            if h in self.hashes:
                return h
        return None

    def poll(self):
        s = Status()
        h = self.download()
        if h is None:
            return s
        call = lambda m: scgi_call(self.scgi, m, h)  # noqa: E731
        if call("d.is_meta") == 1:  # still fetching a magnet link's metadata
            return s
        s.have = call("d.completed_bytes")
        s.finished = call("d.complete") == 1 and s.have >= self.size
        if call("d.down.total") > 0:
            s.first_byte = time.monotonic()
        msg = call("d.message")
        if msg:
            s.error = msg
        for p in scgi_call(self.scgi, "p.multicall", h, "", "p.is_encrypted=", "p.address="):
            s.transport = "TCP %s" % ("MSE" if p[0] else "plain")
        return s

    def evidence(self, t_give=None):
        out = []
        try:
            for h in scgi_call(self.scgi, "download_list", ""):
                out.append("download %s: %s, message %r, %d peers" % (
                    h, "meta" if scgi_call(self.scgi, "d.is_meta", h) else "data",
                    scgi_call(self.scgi, "d.message", h), scgi_call(self.scgi, "d.peers_connected", h)))
        except (OSError, xmlrpc.client.Error, ValueError):
            pass
        return out + tail(self.log, 20)
