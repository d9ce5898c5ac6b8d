#!/usr/bin/python3
"""The web module's pages, uploads, feeds and /api/v1/ against the real daemon over loopback
(the real-browser tests are in browser_test.py): the index and torrent pages render and escape
what they show; a user logs in (HttpOnly, SameSite=Strict cookie), uploads a file through the
publish form (multipart, streamed into the content store), follows the job to the torrent page
and gets the same bytes from the web seed; bad input gets its clear error and leaves nothing on
disk (no CSRF token, too large, a path-escaping name, an upload cut short); wrong passwords past
the rate limit get 429; the RSS feed parses with feedparser; scripts publish with curl -F and an
API token; login-only reading.

Every wait is bounded; every process a test starts is stopped by PID, also when it fails."""
import base64
import glob
import hashlib
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import threading
import time
import unittest
import uuid

import feedparser

from everseed_test import ADDR, EVERTCTL
from web_test import WebTest

PASSWORD = "correct horse battery"


def bencode(v):
    """Bencoding of ints, bytes, lists and dicts with bytes keys (sorted), for hand-made
    torrents."""
    if isinstance(v, int):
        return b"i%de" % v
    if isinstance(v, bytes):
        return b"%d:%s" % (len(v), v)
    if isinstance(v, list):
        return b"l" + b"".join(bencode(x) for x in v) + b"e"
    return b"d" + b"".join(bencode(k) + bencode(v[k]) for k in sorted(v)) + b"e"


class WebPagesTest(WebTest):
    def write_config(self, **everseed):
        super().write_config(**everseed)
        extra = getattr(getattr(self, self._testMethodName), "web", "")
        if extra:
            with open(self.cfg, "a") as f:
                f.write(extra)

    # --- helpers ---

    def evertctl(self, *args, stdin=None):
        r = subprocess.run([EVERTCTL, *args, "--socket", self.sock], input=stdin,
                           capture_output=True, text=True, timeout=60)
        return r

    def add_user(self, name, admin=False):
        r = self.evertctl("user", "add", name, "--password-stdin", *(["--admin"] if admin else []),
                          stdin=PASSWORD + "\n")
        self.assertEqual(r.returncode, 0, r.stderr)

    def request(self, method, path, body=None, headers=None, cookie=None):
        c = http.client.HTTPConnection(ADDR, self.web_port, timeout=30)
        try:
            h = dict(headers or {})
            if cookie:
                h["Cookie"] = cookie
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            c.close()

    def login(self, name, password=PASSWORD):
        st, h, _ = self.request("POST", "/login", f"user={name}&password={password}&next=/",
                                {"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(st, 303, h)
        cookie = h["set-cookie"]
        self.assertIn("HttpOnly", cookie)
        self.assertIn("SameSite=Strict", cookie)
        return cookie.split(";")[0]

    def csrf(self, cookie, page="/publish"):
        st, _, body = self.request("GET", page, cookie=cookie)
        self.assertEqual(st, 200, body)
        m = re.search(rb'name="csrf" value="([^"]+)"', body)
        self.assertIsNotNone(m, body)
        return m.group(1).decode()

    @staticmethod
    def multipart(fields, files):
        """(content type, body) of a multipart/form-data form."""
        boundary = "----evert" + uuid.uuid4().hex
        out = b""
        for k, v in fields.items():
            out += (f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n'
                    f"{v}\r\n").encode()
        for name, data in files:
            out += (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
                    f'filename="{name}"\r\nContent-Type: application/octet-stream\r\n\r\n'
                    ).encode() + data + b"\r\n"
        out += f"--{boundary}--\r\n".encode()
        return f"multipart/form-data; boundary={boundary}", out

    def upload(self, cookie, token, files, fields=None, accept_json=False):
        ctype, body = self.multipart({"csrf": token, **(fields or {})}, files)
        headers = {"Content-Type": ctype}
        if accept_json:
            headers["Accept"] = "application/json"
        return self.request("POST", f"/publish?csrf={token}", body, headers, cookie)

    def follow_job(self, location, cookie):
        deadline = time.time() + 60
        while time.time() < deadline:
            st, _, body = self.request("GET", location + "?format=json", cookie=cookie)
            self.assertEqual(st, 200, body)
            j = json.loads(body)
            if j["state"] != "running":
                return j
            time.sleep(0.05)
        self.fail("the job did not finish")

    def leftovers(self):
        return glob.glob(os.path.join(self.root, "state", "content", ".incoming-*"))

    def wait_no_leftovers(self):
        deadline = time.time() + 10
        while self.leftovers() and time.time() < deadline:
            time.sleep(0.05)
        self.assertEqual(self.leftovers(), [])

    # --- tests ---

    def test_pages_render_and_escape_what_they_show(self):
        path, data = self.random_file("<img src=x onerror=alert(1)>.txt", 5000)
        ih = self.publish_path(path)
        st, h, body = self.request("GET", "/")
        self.assertEqual(st, 200)
        self.assertTrue(h["content-type"].startswith("text/html"))
        self.assertIn("default-src 'self'", h["content-security-policy"])
        self.assertIn(b"&lt;img src=x onerror=alert(1)&gt;.txt", body)
        self.assertNotIn(b"<img src=x", body)
        self.assertIn(f'href="/t/{ih}"'.encode(), body)
        self.assertIn(b'class="magnet" href="magnet:?xt=urn:btih:', body)

        st, _, body = self.request("GET", f"/t/{ih}")
        self.assertEqual(st, 200)
        self.assertNotIn(b"<img src=x", body)
        self.assertIn(f'<code id="infohash-v1">{ih}</code>'.encode(), body)
        self.assertIn(b'<input id="magnet" readonly value="magnet:?xt=urn:btih:' + ih.encode(),
                      body)
        self.assertIn(b"<svg", body)  # the QR code
        self.assertRegex(body, rb'id="seeders">1<')  # the everseed

        st, h, body = self.request("GET", f"/t/{ih}.torrent")
        self.assertEqual(st, 200)
        self.assertEqual(h["content-type"], "application/x-bittorrent")
        self.assertTrue(body.startswith(b"d"))
        st, _, _ = self.request("GET", "/t/" + "0" * 40)
        self.assertEqual(st, 404)
        st, _, body = self.request("GET", "/?q=alert")
        self.assertIn(b"1 torrent", body)
        st, _, body = self.request("GET", "/?q=nothing-like-it")
        self.assertIn(b"No torrent has such a name", body)
        st, h, body = self.request("GET", "/static/app.js")
        self.assertEqual(st, 200)
        self.assertIn("javascript", h["content-type"])

    def test_a_user_logs_in_uploads_and_the_web_seed_serves_it(self):
        self.add_user("alice")
        st, h, _ = self.request("GET", "/publish")
        self.assertEqual((st, h["location"]), (303, "/login?next=/publish"))
        cookie = self.login("alice")
        token = self.csrf(cookie)
        data = os.urandom((2 << 20) + 77)
        st, h, body = self.upload(cookie, token, [("clip.bin", data)],
                                  {"name": "", "description": "A clip\nfor testing",
                                   "piece_size": "262144"})
        self.assertEqual(st, 303, body)
        self.assertTrue(h["location"].startswith("/job/"), h)
        j = self.follow_job(h["location"], cookie)
        self.assertEqual(j["state"], "done", j)
        ih = j["info_hash"]
        st, h2, _ = self.request("GET", h["location"], cookie=cookie)
        self.assertEqual((st, h2["location"]), (303, f"/t/{ih}"))
        st, _, page = self.request("GET", f"/t/{ih}", cookie=cookie)
        self.assertIn(b"<p>A clip</p><p>for testing</p>", page)
        self.assertIn(b"256.00 KiB pieces", page)
        # The daemon's own tracker and web seed are in the torrent it made.
        self.assertRegex(page, rb'<ul id="trackers"><li><code>http://[^<]*/announce</code>')
        self.assertIn(f'<dd id="webseed"><a href="{self.base}/data/{ih}/">'.encode(), page)
        st, _, got = self.request("GET", f"/data/{ih}/clip.bin")
        self.assertEqual((st, got == data), (200, True))
        self.assertEqual(self.leftovers(), [])
        # The owner is recorded once the job is done (polled every 0.5 s).
        deadline = time.time() + 5
        while b"by alice" not in page and time.time() < deadline:
            time.sleep(0.1)
            page = self.request("GET", f"/t/{ih}")[2]
        self.assertIn(b"by alice", page)

        # A folder, as a browser sends one chosen with webkitdirectory.
        files = [("album/cd1/01 intro.flac", os.urandom(3000)), ("album/cover.jpg", b"jpeg")]
        st, h, body = self.upload(cookie, token, files, accept_json=True)
        self.assertEqual(st, 202, body)
        j = self.follow_job(json.loads(body)["url"], cookie)
        self.assertEqual(j["state"], "done", j)
        st, _, got = self.request("GET", f"/data/{j['info_hash']}/album/cd1/01%20intro.flac")
        self.assertEqual(got, files[0][1])

        # Logging out ends the session.
        st, h, _ = self.request("POST", "/logout", f"csrf={token}",
                                {"Content-Type": "application/x-www-form-urlencoded"}, cookie)
        self.assertEqual(st, 303)
        st, h, _ = self.request("GET", "/publish", cookie=cookie)
        self.assertEqual(st, 303)

    def test_bad_uploads_get_clear_errors_and_leave_nothing(self):
        self.add_user("bob")
        cookie = self.login("bob")
        token = self.csrf(cookie)
        small = os.urandom(1000)
        # No CSRF token, or a wrong one.
        ctype, body = self.multipart({}, [("a.bin", small)])
        st, _, msg = self.request("POST", "/publish", body, {"Content-Type": ctype}, cookie)
        self.assertEqual(st, 403, msg)
        self.assertIn(b"CSRF", msg)
        st, _, msg = self.request("POST", "/publish?csrf=forged", body, {"Content-Type": ctype},
                                  cookie)
        self.assertEqual(st, 403, msg)
        # Not logged in.
        st, _, msg = self.request("POST", f"/publish?csrf={token}", body, {"Content-Type": ctype})
        self.assertEqual(st, 401, msg)
        # Names that escape or hide.
        for bad in ("../evil.bin", "a/../../evil.bin", "..", "x\x01y.bin"):
            st, _, msg = self.upload(cookie, token, [(bad, small)])
            self.assertEqual(st, 400, (bad, msg))
        st, _, msg = self.upload(cookie, token, [("ok.bin", small)], {"name": "../up"})
        self.assertEqual(st, 400, msg)
        # Too large for max_upload, sent without Expect: 100-continue: refused at once, the
        # body read and dropped (up to 16 MiB) so that the client reads the answer, not a reset.
        st, _, msg = self.upload(cookie, token, [("second.bin", os.urandom(6 << 20))])
        self.assertEqual(st, 413, msg)
        # Nothing chosen.
        st, _, msg = self.upload(cookie, token, [])
        self.assertEqual(st, 400, msg)
        self.assertIn(b"no file", msg)
        # Larger than max_upload (set to 1M below): refused before the body is read (curl
        # asks with Expect: 100-continue and sends nothing).
        big, _ = self.random_file("big.bin", 2 << 20)
        out = subprocess.run(["curl", "-sS", "--max-time", "30", "-w", "\n%{http_code}",
                              "-H", f"Cookie: {cookie}", "-F", f"csrf={token}",
                              "-F", f"file=@{big}", f"{self.base}/publish?csrf={token}"],
                             capture_output=True, text=True, timeout=60)
        self.assertEqual(out.stdout.rsplit("\n", 1)[1], "413", out)
        self.assertIn("max_upload", out.stdout)
        # Cut short: half the body, then the connection closes.
        ctype, body = self.multipart({"csrf": token}, [("cut.bin", os.urandom(500_000))])
        with socket.create_connection((ADDR, self.web_port), timeout=10) as s:
            s.sendall((f"POST /publish?csrf={token} HTTP/1.1\r\nHost: x\r\nCookie: {cookie}\r\n"
                       f"Content-Type: {ctype}\r\nContent-Length: {len(body)}\r\n\r\n").encode()
                      + body[:len(body) // 2])
            time.sleep(0.3)
        self.wait_no_leftovers()
        # A malformed body.
        st, _, msg = self.request("POST", f"/publish?csrf={token}", b"garbage" * 100,
                                  {"Content-Type": "multipart/form-data; boundary=zzz"}, cookie)
        self.assertEqual(st, 400, msg)
        self.wait_no_leftovers()
        self.assertEqual(self.api("GET", "/v1/torrents")["total"], 0)
        self.assertEqual(self.module("web")["connections"] >= 0, True)  # still up
    test_bad_uploads_get_clear_errors_and_leave_nothing.web = "  max_upload: 1M\n"

    def test_wrong_passwords_past_the_limit_get_429(self):
        self.add_user("carol")
        codes = []
        for _ in range(7):
            st, h, body = self.request("POST", "/login", "user=carol&password=wrong-password",
                                       {"Content-Type": "application/x-www-form-urlencoded"})
            codes.append(st)
            self.assertIn(b'class="error"', body)
        self.assertEqual(codes[:5], [401] * 5)
        self.assertEqual(codes[5:], [429, 429])
        self.assertGreater(int(h["retry-after"]), 0)
        # The right password is refused too while the address waits.
        st, _, _ = self.request("POST", "/login", f"user=carol&password={PASSWORD}",
                                {"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(st, 429)

    def test_forwarded_for_is_believed_only_as_an_address(self):
        """Issue 15: X-Forwarded-For from a trusted proxy was taken as it came: each made-up
        value was a new address to the login rate limit (unlimited guesses through the proxy)
        and went to the logs as it was. Now only an address is believed."""
        self.add_user("erin")
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        codes = []
        for i in range(7):
            st, _, _ = self.request("POST", "/login", "user=erin&password=wrong-password",
                                    dict(form, **{"X-Forwarded-For": f"junk-{i} evil"}))
            codes.append(st)
        self.assertEqual(codes[:5], [401] * 5)
        self.assertEqual(codes[5:], [429, 429])  # all counted against the proxy's address
        # A real address from the proxy is believed: another client, a budget of its own.
        st, _, _ = self.request("POST", "/login", "user=erin&password=wrong-password",
                                dict(form, **{"X-Forwarded-For": "198.51.100.7, 203.0.113.9"}))
        self.assertEqual(st, 401)

    test_forwarded_for_is_believed_only_as_an_address.web = f'  trusted_proxies: ["{ADDR}"]\n'

    def test_api_job_shows_no_server_paths(self):
        """Issue 15: GET /api/v1/job showed anyone the daemon's whole view of any job: the paths
        on the server it reads and writes. Now a publishing job's progress only."""
        path, _ = self.random_file("secret-dir/report.bin", 200_000)
        torrent = self.create(path, "--v1", tracker=False)
        with open(torrent, "rb") as f:
            b64 = base64.b64encode(f.read()).decode()
        job = self.api("POST", "/v1/publish", {"torrent": b64, "data": path})["job"]
        deadline = time.time() + 60
        while time.time() < deadline:
            st, _, body = self.request("GET", f"/api/v1/job?id={job}")
            self.assertEqual(st, 200, body)
            j = json.loads(body)
            self.assertNotIn(self.root.encode(), body)
            self.assertNotIn(b"secret-dir", body)
            self.assertLessEqual(set(j), {"job", "name", "state", "phase", "done", "total",
                                          "error", "info_hash"})
            if j["state"] in ("done", "failed"):
                break
            time.sleep(0.05)
        self.assertEqual(j["state"], "done", j)
        self.assertEqual(j["name"], "report.bin")
        st, _, body = self.request("GET", "/api/v1/job?id=99999")
        self.assertEqual(st, 404, body)

    def test_connections_from_one_address_are_capped(self):
        """Issue 15: 1,100 connections from one address, each sending a byte now and then,
        kept the pages unreachable for everyone. Now web.max_per_address caps one address (its
        next connection gets a 503) and everyone else is served throughout."""
        other = "127.0.0.2" if ADDR.startswith("127.") else ADDR.rsplit(".", 1)[0] + ".2"
        held = []
        try:
            for _ in range(4):
                s = socket.create_connection((ADDR, self.web_port), timeout=5)
                s.sendall(b"GET / HTTP/1.1\r\nX-Slow: a")  # a head still coming
                held.append(s)
            time.sleep(0.2)
            with socket.create_connection((ADDR, self.web_port), timeout=5) as s:
                data = b""
                while chunk := s.recv(4096):
                    data += chunk
            self.assertTrue(data.startswith(b"HTTP/1.1 503"), data)
            c = http.client.HTTPConnection(ADDR, self.web_port, timeout=10,
                                           source_address=(other, 0))
            c.request("GET", "/")
            self.assertEqual(c.getresponse().status, 200)
            c.close()
            self.assertGreaterEqual(self.module("web")["refused_per_address"], 1)
        finally:
            for s in held:
                s.close()

    test_connections_from_one_address_are_capped.web = (
        "  max_per_address: 4\n  trusted_proxies: []\n")

    def test_pages_of_a_large_torrent_are_made_off_the_loop(self):
        """Issue 15: the index, the feeds, a torrent's page, its .torrent and /api/v1/torrent
        parsed the metainfo of the torrents they show on the event loop (and the page and the
        API listed every file): a torrent of 60,000 files stalled everything else on each view.
        Now a worker parses what is not at hand while the request waits, the loop answers
        others meanwhile, and the page and the public API list at most 1,000 files."""
        folder = os.path.join(self.root, "many")
        for d in range(60):
            os.makedirs(os.path.join(folder, f"d{d:03}"))
            for i in range(1000):
                open(os.path.join(folder, f"d{d:03}", f"f{i:04}"), "wb").close()
        with open(os.path.join(folder, "data.bin"), "wb") as f:
            f.write(os.urandom(1000))
        # Published as a path (listed on a worker too), then a restart: nothing is at hand.
        t0 = time.time()
        job = self.api("POST", "/v1/publish", {"path": folder, "options": {"version": "v1"}})
        listing = time.time() - t0  # the old daemon listed the folder before it answered
        deadline = time.time() + 120
        while (j := self.api("GET", f"/v1/job?id={job['job']}"))["state"] not in (
                "done", "failed"):
            self.assertLess(time.time(), deadline, "the publish did not finish")
            time.sleep(0.1)
        self.assertEqual(j["state"], "done", j)
        self.assertEqual(j["torrent"]["name"], "many")
        ih = j["torrent"]["info_hash"]
        paths = ["/", "/feed.xml", f"/t/{ih}", f"/t/{ih}.torrent",
                 f"/api/v1/torrent?id={ih}&files=1"]
        stalls = {"POST /v1/publish": round(listing, 3)}
        # path: the slowest answer on the control socket while it was made
        parsed = {}  # path: metainfo parsed on workers since the restart
        listed = None
        for path in paths:
            self.stop()
            self.start()
            got = {}

            def fetch():
                got["answer"] = self.request("GET", path)
            t = threading.Thread(target=fetch)
            t0 = time.time()
            t.start()
            slowest = 0.0
            while t.is_alive() and time.time() - t0 < 30:
                s0 = time.time()
                self.api("GET", "/v1/status")
                slowest = max(slowest, time.time() - s0)
                time.sleep(0.005)
            t.join(30)
            status, _, body = got["answer"]
            self.assertEqual(status, 200, path)
            stalls[path] = round(slowest, 3)
            st = {m["name"]: m["status"] for m in self.api("GET", "/v1/status")["modules"]}
            parsed[path] = st["everseed"].get("metainfo_parsed_on_workers", 0)
            if path.startswith("/api/"):
                view = json.loads(body)
                self.assertEqual(view["files"], 60001)
                listed = len(view["file_list"])
            elif path.endswith(".torrent"):
                self.assertIn(b"4:name4:many", body)
            else:
                self.assertIn(b"many", body)
        # The control socket still lists every file when asked.
        view = self.api("GET", f"/v1/torrent?id={ih}&files=1")
        self.assertEqual(len(view["file_list"]), 60001)
        # The old daemon stalled the loop for 0.2 s to 0.4 s on each of these (0.03 s now).
        print("slowest answer meanwhile:", stalls)
        self.assertEqual({p: s for p, s in stalls.items() if s >= 0.15}, {})
        self.assertEqual({p: n for p, n in parsed.items() if n < 1}, {})
        self.assertEqual(listed, 1000)  # the public API's list of files is bounded

    def test_logins_are_answered_while_large_publishes_run(self):
        """Issue 15: publishing (hashing, copying, verifying) ran on the same two worker threads
        as the short work someone waits for (password checks, cold block reads, upload writes):
        two large publishes held both for as long as they took, and logins waited. Now long
        jobs have threads of their own (daemon.bulk_threads); the defaults are tested."""
        self.add_user("frank")
        jobs = []
        for i in range(2):
            path = os.path.join(self.root, "data", f"big-{i}.img")
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.truncate(6 << 30)  # sparse: hashed at the CPU's speed, no disk needed
            jobs.append(self.api("POST", "/v1/publish", {"path": path})["job"])
        try:
            deadline = time.time() + 30
            while any(self.api("GET", f"/v1/job?id={j}")["state"] != "hashing" for j in jobs):
                self.assertLess(time.time(), deadline, "the publishes did not start hashing")
                time.sleep(0.05)
            time.sleep(0.3)
            t0 = time.time()
            self.login("frank")
            took = time.time() - t0
            running = [self.api("GET", f"/v1/job?id={j}")["state"] for j in jobs]
            self.assertLess(took, 1.0, f"a login took {took:.2f} s during two publishes")
            self.assertEqual(running, ["hashing", "hashing"],
                             "the publishes ended before the login could tell anything")
        finally:
            for j in jobs:
                self.api("DELETE", f"/v1/job?id={j}")
            deadline = time.time() + 60
            while any(self.api("GET", f"/v1/job?id={j}")["state"] not in
                      ("done", "failed", "cancelled") for j in jobs):
                if time.time() > deadline:
                    break
                time.sleep(0.1)

    def test_the_feed_validates_and_lists_enclosures(self):
        self.add_user("dave")
        cookie = self.login("dave")
        token = self.csrf(cookie)
        for name in ("episode-1.mp3", "episode <2> & more.mp3"):
            st, h, body = self.upload(cookie, token, [(name, os.urandom(4000))],
                                      {"description": f"Show notes of {name}"})
            self.assertEqual(st, 303, body)
            self.assertEqual(self.follow_job(h["location"], cookie)["state"], "done")
        st, h, xml = self.request("GET", "/feed.xml")
        self.assertEqual(st, 200)
        self.assertTrue(h["content-type"].startswith("application/rss+xml"))
        f = feedparser.parse(xml)
        self.assertEqual(f.bozo, 0, f.get("bozo_exception"))
        self.assertEqual(f.version, "rss20")
        self.assertEqual(len(f.entries), 2)
        titles = {e.title for e in f.entries}
        self.assertEqual(titles, {"episode-1.mp3", "episode <2> & more.mp3"})
        for e in f.entries:
            enc = e.enclosures[0]
            self.assertEqual(enc.type, "application/x-bittorrent")
            st, _, torrent = self.request("GET", enc.href.replace(self.base, ""))
            self.assertEqual((st, int(enc.length)), (200, len(torrent)))
            self.assertTrue(e.link.startswith(self.base + "/t/"))
        # Per-user feeds: dave's has both, an unknown user's is 404.
        self.deadline_owner(f.entries[0].link.rsplit("/", 1)[1])
        f = feedparser.parse(self.request("GET", "/u/dave/feed.xml")[2])
        self.assertEqual((f.bozo, len(f.entries)), (0, 2))
        self.assertEqual(self.request("GET", "/u/nobody/feed.xml")[0], 404)

    def deadline_owner(self, ih):
        deadline = time.time() + 5
        while time.time() < deadline:
            if b"by dave" in self.request("GET", f"/t/{ih}")[2]:
                return
            time.sleep(0.1)
        self.fail("owner not recorded")

    def test_scripts_publish_with_curl_and_an_api_token(self):
        self.add_user("erin")
        r = self.evertctl("token", "create", "erin", "--label", "ci")
        self.assertEqual(r.returncode, 0, r.stderr)
        token = re.search(r"evt_[A-Za-z0-9_-]+", r.stdout).group(0)
        path, data = self.random_file("release.iso", 300_000)
        out = subprocess.run(["curl", "-sS", "--max-time", "30", "-H",
                              f"Authorization: Bearer {token}", "-F", f"file=@{path}",
                              "-F", "description=nightly", self.base + "/api/v1/publish"],
                             capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        job = json.loads(out.stdout)
        self.assertIn("job", job, out.stdout)
        deadline = time.time() + 60
        while time.time() < deadline:
            st, _, body = self.request("GET", f"/api/v1/job?id={job['job']}")
            j = json.loads(body)
            if j["state"] in ("done", "failed"):
                break
            time.sleep(0.05)
        self.assertEqual(j["state"], "done", j)
        st, _, body = self.request("GET", "/api/v1/torrents")
        listed = json.loads(body)
        self.assertEqual(listed["total"], 1)
        ih = listed["torrents"][0]["info_hash"]
        self.assertEqual(self.request("GET", f"/data/{ih}/release.iso")[2], data)
        # Without a token, or with a wrong one: 401; routes of the socket only: 404.
        out = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-F",
                              f"file=@{path}", self.base + "/api/v1/publish"],
                             capture_output=True, text=True, timeout=60)
        self.assertEqual(out.stdout, "401")
        st, _, _ = self.request("POST", "/api/v1/reload", b"{}",
                                {"Authorization": f"Bearer {token}"})
        self.assertEqual(st, 404)
        st, _, _ = self.request("DELETE", f"/api/v1/torrent?id={ih}",
                                headers={"Authorization": "Bearer evt_wrong"})
        self.assertEqual(st, 401)
        # The owner's token unpublishes it.
        deadline = time.time() + 5
        while time.time() < deadline:
            st, _, body = self.request("DELETE", f"/api/v1/torrent?id={ih}",
                                       headers={"Authorization": f"Bearer {token}"})
            if st != 403:
                break
            time.sleep(0.1)
        self.assertEqual(st, 200, body)
        self.assertEqual(self.api("GET", "/v1/torrents")["total"], 0)

    def api_token(self, user):
        self.add_user(user)
        r = self.evertctl("token", "create", user, "--label", "ci")
        self.assertEqual(r.returncode, 0, r.stderr)
        return re.search(r"evt_[A-Za-z0-9_-]+", r.stdout).group(0)

    def curl_publish(self, token, path):
        """Starts curl -F file=@PATH on /api/v1/publish; its process (stopped at tearDown)."""
        return self.spawn(["curl", "-sS", "--max-time", "60", "-H", f"Authorization: Bearer {token}",
                           "-F", f"file=@{path}", self.base + "/api/v1/publish"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def api_job(self, job):
        """The daemon's own view of a job (the control socket's: /api/v1/job shows less)."""
        deadline = time.time() + 60
        while time.time() < deadline:
            j = self.api("GET", f"/v1/job?id={job}")
            if j["state"] in ("done", "failed", "cancelled"):
                return j
            time.sleep(0.05)
        self.fail(f"job {job} did not finish")

    def test_identical_uploads_at_once_commit_one_torrent_with_its_data(self):
        token = self.api_token("dora")
        content = os.path.join(self.root, "state", "content")
        for i in range(5):
            path, data = self.random_file(f"twice{i}.iso", 2 << 20)
            procs = [self.curl_publish(token, path) for _ in range(2)]
            jobs = []
            for p in procs:
                out, err = p.communicate(timeout=90)
                self.assertEqual(p.returncode, 0, err)
                jobs.append(self.api_job(json.loads(out)["job"]))
            for j in jobs:
                self.assertEqual(j["state"], "done", f"round {i}: {j}\n{self.read_log()}")
            ih = jobs[0]["torrent"]["info_hash"]
            self.assertEqual(jobs[1]["torrent"]["info_hash"], ih)
            self.assertEqual(sorted(j["torrent"]["already_published"] for j in jobs),
                             [False, True])
            listed = self.api("GET", "/v1/torrents")["torrents"]
            self.assertEqual(sum(t["info_hash"] == ih for t in listed), 1)
            with open(os.path.join(content, ih, f"twice{i}.iso"), "rb") as f:
                self.assertEqual(f.read(), data, f"round {i}")
            r = self.evertctl("verify", ih)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertEqual(self.request("GET", f"/data/{ih}/twice{i}.iso")[2], data)
        deadline = time.time() + 10
        while (any(n.startswith(".") for n in os.listdir(content))
               and time.time() < deadline):
            time.sleep(0.05)
        self.assertEqual([n for n in os.listdir(content) if n.startswith(".")], [])

    def test_an_upload_is_synced_before_its_publish_is_done(self):
        if shutil.which("strace") is None:
            self.skipTest("needs strace (scripts/deps)")
        token = self.api_token("sync")
        # strace attached to every thread of evertd (and -f: to threads it starts later): its
        # syncs and renames, with the paths of the descriptors (-y). evertd stays the test's
        # process; strace, stopped by PID, detaches from it.
        trace = os.path.join(self.root, "strace.log")
        tids = os.listdir(f"/proc/{self.proc.pid}/task")
        tracer = self.spawn(["strace", "-f", "-qq", "-y", "-o", trace,
                             "-e", "trace=fsync,fdatasync,rename,renameat,renameat2",
                             *[a for t in tids for a in ("-p", t)]],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def traced(tid):
            try:
                with open(f"/proc/{self.proc.pid}/task/{tid}/status") as f:
                    return f"TracerPid:\t{tracer.pid}\n" in f.read()
            except FileNotFoundError:
                return True  # the thread ended

        deadline = time.time() + 10
        while not all(traced(t) for t in tids):
            self.assertIsNone(tracer.poll(), "strace could not attach")
            self.assertLess(time.time(), deadline, "strace did not attach")
            time.sleep(0.01)
        path, data = self.random_file("durable.iso", 1 << 20)
        p = self.curl_publish(token, path)
        out, err = p.communicate(timeout=90)
        self.assertEqual(p.returncode, 0, err)
        j = self.api_job(json.loads(out)["job"])
        self.assertEqual(j["state"], "done", j)
        ih = j["torrent"]["info_hash"]
        tracer.terminate()  # detaches; its log is complete once it exits
        tracer.wait(timeout=30)
        with open(trace) as f:
            lines = f.read().splitlines()

        def first(pattern):
            for n, line in enumerate(lines):
                if re.search(pattern, line):
                    return n
            self.fail(f"no {pattern} in the trace:\n" + "\n".join(lines))

        upload = r"/\.incoming-upload-[0-9]+-[0-9]+"
        # The file's data and the folder that names it, synced before the folder is sealed as
        # .staged-HEX (before the store's commit, which acknowledges the publish).
        file_synced = first(r"f(data)?sync\(\d+<[^>]*" + upload + r"/durable\.iso>")
        dir_synced = first(r"fsync\(\d+<[^>]*" + upload + r">")
        sealed = first(r"rename[a-z0-9]*\(.*" + upload + r"\", .*/\.staged-" + ih)
        moved = first(r"rename[a-z0-9]*\(.*/\.staged-" + ih + r"\", .*/" + ih + r"\"")
        self.assertLess(file_synced, sealed)
        self.assertLess(dir_synced, sealed)
        self.assertLess(sealed, moved)

    def test_hostile_requests_are_refused(self):
        self.add_user("root", admin=True)
        self.add_user("mallory")
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        # Login from another site's form (login CSRF): refused.
        st, _, _ = self.request("POST", "/login", f"user=mallory&password={PASSWORD}",
                                {**form, "Origin": "https://evil.example"})
        self.assertEqual(st, 403)
        st, _, _ = self.request("POST", "/login", f"user=mallory&password={PASSWORD}",
                                {**form, "Sec-Fetch-Site": "cross-site"})
        self.assertEqual(st, 403)
        # next= cannot leave the site nor split the answer.
        for bad in ("//evil.example/", "/%5Cevil.example", "/%0D%0ASet-Cookie:%20x=1",
                    "/%09/evil.example", "https://evil.example/"):
            st, h, _ = self.request("POST", "/login",
                                    f"user=mallory&password={PASSWORD}&next={bad}", form)
            self.assertEqual((st, h["location"]), (303, "/"), bad)
            self.assertNotIn("x=1", h.get("set-cookie", ""))
        # An upload refused at its first part with megabytes still coming: the rest is read and
        # dropped, and the client reads why.
        cookie = self.login("mallory")
        token = self.csrf(cookie)
        st, _, msg = self.upload(cookie, token, [("../first.bin", b"x" * 1000),
                                                 ("second.bin", os.urandom(6 << 20))])
        self.assertEqual(st, 400, msg)
        self.assertIn(b"..", msg)
        self.wait_no_leftovers()
        # An admin adding a user who exists gets the admin page with the error (an answer known
        # at once, sent from inside the handler), and the server goes on.
        cookie = self.login("root")
        token = self.csrf(cookie, "/admin")
        st, _, body = self.request("POST", "/admin/users/add",
                                   f"csrf={token}&name=mallory&password=whatever-long",
                                   form, cookie)
        self.assertEqual(st, 400, body)
        self.assertIn(b"mallory", body)
        st, _, body = self.request("POST", "/admin/users/add",
                                   f"csrf={token}&name=trent&password=long-enough-pw",
                                   form, cookie)
        self.assertEqual(st, 200, body)
        self.assertIn(b"Added trent", body)
        # A token cannot unpublish another user's torrent by hiding the id it names.
        path, _ = self.random_file("root-owned.bin", 1000)
        ih = self.publish_path(path)
        r = self.evertctl("token", "create", "mallory")
        tok = re.search(r"evt_[A-Za-z0-9_-]+", r.stdout).group(0)
        for q in (f"id={ih}", f"i%64=0000000000000000000000000000000000000000&id={ih}",
                  f"id=0000000000000000000000000000000000000000&id={ih}&delete_data=1"):
            st, _, body = self.request("DELETE", f"/api/v1/torrent?{q}",
                                       headers={"Authorization": f"Bearer {tok}"})
            self.assertIn(st, (400, 403), (q, body))
        self.assertEqual(self.api("GET", "/v1/torrents")["total"], 1)
        # The public API does not show where the data is.
        listed = json.loads(self.request("GET", "/api/v1/torrents")[2])
        self.assertNotIn("data", listed["torrents"][0])
        self.assertEqual(self.request("GET", f"/api/v1/tracker/swarm?info_hash={ih}")[0], 404)

    def test_names_that_are_not_utf8_break_nothing(self):
        """Issue 15: one request with a byte that is not UTF-8 in its path ended evertd (the 404's
        JSON echoed it, and nlohmann's strict dump() threw through libevent), and so did every
        view of a torrent whose name, comment or tracker was not UTF-8; evertctl aborted on such
        file names."""
        def ok():
            st, _, body = self.request("GET", "/api/v1/torrents")
            self.assertEqual(st, 200, body)

        # A raw request: http.client would refuse to send the byte.
        for path in (b"/api/v1/\xff", b"/api/v1/torrent?id=\xc3\x28", b"/\xfe\xff",
                     b"/t/\xed\xa0\x80"):
            with socket.create_connection((ADDR, self.web_port), timeout=10) as c:
                c.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nAccept: application/json"
                          b"\r\nConnection: close\r\n\r\n")
                answer = b""
                while True:
                    chunk = c.recv(65536)
                    if not chunk:
                        break
                    answer += chunk
            self.assertRegex(answer, rb"^HTTP/1.1 (400|404) ", (path, answer[:200]))
            head, body = answer.split(b"\r\n\r\n", 1)
            if path.startswith(b"/api/"):  # the API answers in JSON, the byte as U+FFFD
                self.assertIn(b"application/json", head)
                json.loads(body)
            ok()
        # A torrent whose name, comment and tracker are Latin-1, published with its data.
        data = os.urandom(40000)
        path = os.path.join(self.root, "data", "latin1.bin")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        pieces = b"".join(hashlib.sha1(data[i:i + 16384]).digest()
                          for i in range(0, len(data), 16384))
        meta = {b"announce": b"http://tr\xe9.example/announce", b"comment": b"caf\xe9 \xff",
                b"info": {b"length": len(data), b"name": b"caf\xe9.bin",
                          b"piece length": 16384, b"pieces": pieces}}
        torrent = os.path.join(self.root, "latin1.torrent")
        with open(torrent, "wb") as f:
            f.write(bencode(meta))
        j = self.publish(torrent, path)
        self.assertEqual(j["state"], "done", j)
        ih = j["torrent"]["info_hash"]
        for page in (f"/api/v1/torrent?id={ih}", "/api/v1/torrents", f"/t/{ih}", "/",
                     "/feed.xml", f"/t/{ih}.torrent"):
            st, _, body = self.request("GET", page)
            self.assertEqual(st, 200, (page, body[:300]))
        shown = json.loads(self.request("GET", f"/api/v1/torrent?id={ih}")[2])
        self.assertIn("caf\ufffd.bin", json.dumps(shown, ensure_ascii=False))
        r = self.evertctl("list", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("caf\ufffd.bin", r.stdout)
        r = self.evertctl("list")
        self.assertEqual(r.returncode, 0, r.stderr)
        # evertctl publish refuses a name it cannot send as it is, with a clear error.
        bad = os.path.join(self.root.encode(), b"data", b"na\xefve.bin")
        with open(bad, "wb") as f:
            f.write(b"x" * 1000)
        for extra in ([], ["--in-place"]):
            r = subprocess.run([EVERTCTL.encode(), b"publish", bad, *[e.encode() for e in extra],
                                b"--socket", self.sock.encode()], capture_output=True, timeout=60)
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertIn(b"na\\xEFve.bin: the name is not valid UTF-8", r.stderr)
        self.assertEqual(self.api("GET", "/v1/status")["callback_errors"], 0)
        ok()

    def test_the_admin_page_manages_users_and_torrents(self):
        self.add_user("boss", admin=True)
        self.add_user("worker")
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        # Not for users who are not admins.
        worker = self.login("worker")
        self.assertEqual(self.request("GET", "/admin", cookie=worker)[0], 403)
        boss = self.login("boss")
        token = self.csrf(boss)
        st, h, body = self.upload(boss, token, [("report.pdf", os.urandom(5000))])
        self.assertEqual(st, 303, body)
        ih = self.follow_job(h["location"], boss)["info_hash"]
        data = os.path.join(self.root, "state", "content", ih)
        self.assertTrue(os.path.isdir(data))
        st, _, page = self.request("GET", "/admin", cookie=boss)
        self.assertEqual(st, 200)
        self.assertIn(b"report.pdf", page)
        self.assertIn(b'<table id="users">', page)
        atoken = self.csrf(boss, "/admin")
        # Without the form's CSRF token nothing happens.
        st, _, _ = self.request("POST", "/admin/unpublish", f"hash={ih}&delete_data=1", form, boss)
        self.assertEqual(st, 403)
        self.assertEqual(self.api("GET", "/v1/torrents")["total"], 1)
        # Unpublished with its data, and a user deleted (their session ends).
        st, _, page = self.request("POST", "/admin/unpublish",
                                   f"csrf={atoken}&hash={ih}&delete_data=1", form, boss)
        self.assertEqual(st, 200, page)
        self.assertIn(b"Unpublished report.pdf", page)
        self.assertEqual(self.api("GET", "/v1/torrents")["total"], 0)
        deadline = time.time() + 10
        while os.path.exists(data) and time.time() < deadline:
            time.sleep(0.05)
        self.assertFalse(os.path.exists(data))
        st, _, page = self.request("POST", "/admin/users/delete", f"csrf={atoken}&name=worker",
                                   form, boss)
        self.assertEqual(st, 200, page)
        self.assertIn(b"Deleted worker", page)
        self.assertEqual(self.request("GET", "/publish", cookie=worker)[0], 303)  # logged out
        st, _, page = self.request("POST", "/admin/users/delete", f"csrf={atoken}&name=boss",
                                   form, boss)
        self.assertIn(b"You cannot delete yourself", page)

    def test_reading_can_need_a_login(self):
        self.add_user("frank")
        st, h, _ = self.request("GET", "/")
        self.assertEqual((st, h["location"]), (303, "/login?next=%2F"))
        self.assertEqual(self.request("GET", "/feed.xml")[0], 401)
        self.assertEqual(self.request("GET", "/api/v1/torrents")[0], 401)
        st, _, body = self.request("GET", "/login")
        self.assertEqual(st, 200)
        cookie = self.login("frank")
        self.assertEqual(self.request("GET", "/", cookie=cookie)[0], 200)
    test_reading_can_need_a_login.web = "  read_access: login\n"


if __name__ == "__main__":
    unittest.main()
