#!/usr/bin/python3
"""The web module in a real browser: Debian's Chromium, driven headless by Playwright (the node
scripts in tests/browser/, each printing one JSON line this harness asserts on), against the
real evertd (modules tracker, everseed and web) on loopback with a temporary state directory.

Today: Chromium downloads a published file through the web seed URL and reads a byte range of
it with fetch(). The page tests (log in, publish in the browser and download the result from
its magnet link with python3-libtorrent, the index and torrent pages' counts and files, a
torrent name that is HTML, a wrong password, reading without JavaScript) are written against
the pages' contract (docs/browser-tests.md) and are registered with ctest only with
-DEVERT_BROWSER_PAGE_TESTS=ON until the pages exist.

Node, Chromium and tests/browser/node_modules are installed by scripts/deps: a missing one fails
the test (it does not skip). Every wait is bounded: each node script has a time limit of its own
and is killed after it, with the browser it started (by PID: its process tree, and any Chromium
whose command line names this test's temporary folder); the daemon is stopped by PID too, also
when a test fails. KEEP=1 keeps the temporary folder (the daemon's log, and a screenshot and the
HTML of the pages open when a browser script failed)."""
import base64
import datetime
import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import time
import unittest
import urllib.parse
import urllib.request

import everseed_test
import web_test
from everseed_test import ADDR, EVERTCTL

HERE = os.path.dirname(os.path.abspath(__file__))
BROWSER_DIR = os.path.join(os.path.dirname(HERE), "browser")
CHROMIUM = os.environ.get("EVERT_CHROMIUM", "/usr/bin/chromium")
PASSWORD = "correct horse battery staple"
# The torrent page's address: /t/ and the 40 hex digits of the torrent's store key.
TORRENT_PAGE = re.compile(r"^/t/[0-9a-f]{40}$")


def browser_setup_problem():
    """Why the browser tests cannot run here (None when they can): each part comes from
    scripts/deps."""
    if not shutil.which("node"):
        return "node is not on the PATH: run scripts/deps (it installs Debian's nodejs and npm)"
    if not os.access(CHROMIUM, os.X_OK):
        return f"{CHROMIUM} is missing: run scripts/deps (it installs Debian's chromium)"
    installed = os.path.join(BROWSER_DIR, "node_modules", "playwright-core", "package.json")
    if not os.path.exists(installed):
        return ("tests/browser/node_modules has no playwright-core: run scripts/deps (npm ci in "
                "tests/browser)")
    with open(installed) as f:
        have = json.load(f)["version"]
    with open(os.path.join(BROWSER_DIR, "package-lock.json")) as f:
        want = json.load(f)["packages"]["node_modules/playwright-core"]["version"]
    if have != want:
        return (f"tests/browser/node_modules has playwright-core {have}, its lockfile {want}: "
                "run scripts/deps")
    return None


def children_by_parent():
    """{parent PID: [child PIDs]} of every process now."""
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # The command name in parentheses may hold spaces: the fields after its ')' are fixed.
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        out.setdefault(ppid, []).append(int(name))
    return out


def process_tree(pid):
    """pid and every process below it, parents first."""
    kids = children_by_parent()
    tree, i = [pid], 0
    while i < len(tree):
        tree += kids.get(tree[i], [])
        i += 1
    return tree


def kill_pids(pids):
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


class BrowserTest(web_test.WebTest):
    def setUp(self):
        # Before the daemon starts: nothing to clean up when this fails.
        problem = browser_setup_problem()
        if problem:
            self.fail("the browser tests cannot run: " + problem)
        self.nodes = []
        super().setUp()
        self.browser_home = os.path.join(self.root, "browser")
        os.makedirs(os.path.join(self.browser_home, "tmp"))

    def tearDown(self):
        for proc in self.nodes:
            self.kill_node(proc)
        self.kill_stray_browsers()
        super().tearDown()

    # ---- the browser --------------------------------------------------------------------------

    def browser(self, script, timeout=90, **params):
        """Runs tests/browser/SCRIPT with params (JSON) and returns its result; fails the test
        with the script's error (and what it printed on stderr) unless it says ok. Chromium gets
        HOME and TMPDIR inside this test's folder, so its profile and caches go with it."""
        params.setdefault("time_limit", timeout - 10)  # the script's own limit says where it was
        params.setdefault("artifacts", os.path.join(self.root, "browser-failure"))
        env = dict(os.environ, HOME=self.browser_home, TMPDIR=os.path.join(self.browser_home, "tmp"),
                   EVERT_CHROMIUM=CHROMIUM)
        proc = subprocess.Popen(["node", os.path.join(BROWSER_DIR, script), json.dumps(params)],
                                cwd=BROWSER_DIR, env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.nodes.append(proc)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill_node(proc)
            out, err = proc.communicate()
            self.fail(f"{script} did not finish in {timeout} s:\n{out}\n{err[-4000:]}")
        finally:
            self.kill_node(proc)
        lines = out.strip().splitlines()
        try:
            result = json.loads(lines[-1])
        except (IndexError, ValueError):
            self.fail(f"{script} printed no result (exit {proc.returncode}):\n{out}\n{err[-4000:]}")
        if not result.get("ok"):
            error = re.sub(r"\x1b\[[0-9;]*m", "", str(result.get("error")))  # Playwright's colours
            if "\nsaved: " in error and not os.environ.get("KEEP"):
                error += " (KEEP=1 keeps them)"
            self.fail(f"{script}: {error}\n--- its stderr:\n{err[-4000:]}")
        # No page of ours opens a dialog or throws.
        self.assertEqual(result.get("dialogs", []), [], script)
        self.assertEqual(result.get("errors", []), [], script)
        return result

    def kill_node(self, proc):
        """Kills a node script and the browser below it (Playwright starts Chromium in a process
        group of its own, so the tree is walked by parent PID)."""
        if proc.poll() is None:
            kill_pids(reversed(process_tree(proc.pid)))
            proc.wait()

    def kill_stray_browsers(self):
        """A Chromium whose node was killed before it could be walked is no longer below it,
        but its command line names its profile in this test's folder."""
        mine = self.browser_home + "/"
        for name in os.listdir("/proc"):
            if not name.isdigit() or int(name) == os.getpid():
                continue
            try:
                with open(f"/proc/{name}/cmdline", "rb") as f:
                    argv = f.read().decode(errors="replace")
            except OSError:
                continue
            if mine in argv:
                kill_pids([int(name)])

    # ---- the daemon ---------------------------------------------------------------------------

    def ctl(self, *args, stdin=None):
        env = dict(os.environ, EVERT_SOCKET=self.sock)
        r = subprocess.run([EVERTCTL, *args], input=stdin, capture_output=True, text=True,
                           env=env, cwd=self.root, timeout=120)
        self.assertEqual(r.returncode, 0, f"evertctl {' '.join(args)}: {r.stderr}")
        return r.stdout

    def add_user(self, name, password=PASSWORD, admin=False):
        self.ctl("user", "add", name, "--password-stdin", *(["--admin"] if admin else []),
                 stdin=password + "\n")

    def publish_ctl(self, path, *options):
        """Publishes a file or folder with evertctl (copied into the content store); returns
        the torrent as GET /v1/torrent shows it."""
        out = json.loads(self.ctl("publish", "--json", *options, path))
        return self.torrent(out["info_hash"])

    def torrent(self, hex):
        return self.api("GET", "/v1/torrent?id=" + hex)

    def wait_counts(self, hex, seeders, leechers, completed, timeout=30):
        """Waits until the tracker counts the torrent's peers so."""
        want = (seeders, leechers, completed)
        deadline = time.time() + timeout
        while True:
            t = self.torrent(hex)
            if (t["seeders"], t["leechers"], t["completed"]) == want:
                return
            if time.time() > deadline:
                self.fail(f"counts of {hex}: {t['seeders']}, {t['leechers']}, {t['completed']}, "
                          f"want {want}")
            time.sleep(0.05)

    def announce_leecher(self, hex):
        """A leecher in the tracker's swarm (an announce with bytes left; no client behind it)."""
        # quote, not urlencode's default quote_plus: that writes a 0x20 byte of the hash as '+',
        # which a tracker reads as 0x2B (RFC 3986), so 1 hash in 13 was "unregistered".
        q = urllib.parse.urlencode({
            "info_hash": bytes.fromhex(hex), "peer_id": b"-XX0000-leecher00001", "port": 6881,
            "uploaded": 0, "downloaded": 0, "left": 1000, "event": "started", "compact": 1},
            quote_via=urllib.parse.quote)
        c = http.client.HTTPConnection(ADDR, self.http_port, timeout=5)
        try:
            c.request("GET", "/announce?" + q)
            body = c.getresponse().read()
        finally:
            c.close()
        if b"8:interval" not in body:
            warnings = [l for l in self.read_log().splitlines() if " warn" in l or "error" in l]
            self.fail(f"announce refused: {body!r}; the torrent: {self.torrent(hex)}; "
                      f"warnings: {warnings[-20:]}")

    def text_file(self, rel, size):
        """A file of printable ASCII (its text can be compared in a page); returns (path, bytes)."""
        path = os.path.join(self.root, "data", rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789 \n"
        data = bytes(alphabet[b % len(alphabet)] for b in os.urandom(size))
        with open(path, "wb") as f:
            f.write(data)
        return path, data

    def assert_count(self, shown, want, what):
        """A count as a page shows it (a number, maybe with words around it)."""
        m = re.search(r"\d+", shown or "")
        self.assertIsNotNone(m, f"{what}: {shown!r}")
        self.assertEqual(int(m.group()), want, f"{what}: {shown!r}")

    # ---- works today --------------------------------------------------------------------------

    def test_chromium_downloads_a_file_from_the_web_seed(self):
        path, data = self.text_file("hello.txt", 100000)
        ih = self.publish_path(path)
        save = os.path.join(self.root, "saved.txt")
        r = self.browser("smoke.mjs", base=self.base, url=f"/data/{ih}/hello.txt", save=save,
                         range=[1000, 1099])
        self.assertEqual(r["name"], "hello.txt")
        with open(save, "rb") as f:
            self.assertEqual(hashlib.sha256(f.read()).digest(), hashlib.sha256(data).digest())
        self.assertEqual(r["range"], {"status": 206, "contentRange": f"bytes 1000-1099/{len(data)}",
                                      "text": data[1000:1100].decode()})

    # ---- the pages (registered with -DEVERT_BROWSER_PAGE_TESTS=ON until they exist) -----------

    def test_publish_in_the_browser_then_download_from_the_magnet_link(self):
        self.add_user("alice")
        size = (3 << 20) + 4321
        path, data = self.random_file("upload/random.bin", size)
        name = "Random bytes.bin"
        description = "A few MiB of random bytes & <b>no markup</b>"
        r = self.browser("publish.mjs", base=self.base, user="alice", password=PASSWORD,
                         file=path, name=name, description=description, piece_size="262144",
                         upload_rate=2 << 20)
        hex = r["hex"]
        self.assertRegex(urllib.parse.urlsplit(r["url"]).path, TORRENT_PAGE)
        self.assertEqual(r["seen"], {"upload-progress": True, "hash-progress": True})
        self.assertEqual(r["options"]["details"], True)
        self.assertIn("262144", r["options"]["pieceSizes"])
        self.assertEqual((r["options"]["private"], r["options"]["trackers"] is not None),
                         (True, True))
        self.assertEqual(r["h1"], name)
        self.assertTrue(r["magnetReadonly"])

        # The daemon has it, as sent: the name, the piece size, seeded from the content store.
        t = self.torrent(hex)
        self.assertEqual((t["name"], t["size"], t["piece_length"], t["state"], t["in_place"]),
                         (name, size, 262144, "seeding", False))
        self.assertEqual(r["magnet"], t["magnet"])
        self.assertIn("xt=urn:btih:" + hex, r["magnet"])

        # Anyone with the magnet link alone downloads it from the everseed.
        lt = self.leech("magnet", r["magnet"])
        self.finished(lt)
        with open(os.path.join(lt.out, name), "rb") as f:
            self.assertEqual(hashlib.sha256(f.read()).digest(), hashlib.sha256(data).digest())

        # The description is text, shown as written.
        page = self.browser("pages.mjs", base=self.base, hex=hex)
        self.assertEqual(page["torrent"]["description"], description)
        self.assertNotIn("<b>", page["torrent"]["descriptionHtml"])

    def test_index_and_torrent_page_show_counts_and_files(self):
        files = {"album/one.txt": 1000, "album/sub/two.bin": 300000, "album/three.bin": 0}
        for rel, size in files.items():
            self.random_file(rel, size)
        t = self.publish_ctl(os.path.join(self.root, "data", "album"))
        hex = t["info_hash"]
        other_path, _ = self.random_file("other.bin", 5000)
        other = self.publish_ctl(other_path)

        # One client downloads and stays (a seeder), another announces with bytes left.
        lt = self.leech("magnet", t["magnet"])
        self.assertTrue(lt.poll(90), "libtorrent did not finish: " + self.read_log())
        self.announce_leecher(hex)
        self.wait_counts(hex, seeders=2, leechers=1, completed=1)

        r = self.browser("pages.mjs", base=self.base, hex=hex, search="alb", copy=True)
        rows = {row["name"]: row for row in r["index"]["rows"]}
        self.assertEqual(set(rows), {"album", "other.bin"})
        row = rows["album"]
        self.assertEqual(urllib.parse.urlsplit(row["href"]).path, f"/t/{hex}")
        self.assertEqual(urllib.parse.urlsplit(rows["other.bin"]["href"]).path,
                         f"/t/{other['info_hash']}")
        self.assert_count(row["files"], 3, "files")
        self.assert_count(row["seeders"], 2, "index seeders")
        self.assert_count(row["leechers"], 1, "index leechers")
        self.assert_count(row["completed"], 1, "index completed")
        self.assert_count(rows["other.bin"]["seeders"], 1, "other.bin seeders")
        self.assertTrue(row["size"], row)
        when = datetime.datetime.fromisoformat(row["datetime"])
        now = datetime.datetime.now(datetime.timezone.utc)
        self.assertLess(abs((now - when).total_seconds()), 600, row["datetime"])
        self.assertEqual(row["magnet"], t["magnet"])
        self.assertTrue(row["download"], row)
        self.assertTrue(r["index"]["search"])
        self.assertIsNone(r["index"]["prev"])  # the first page
        self.assertIsNone(r["index"]["next"])  # and the only one
        # The .torrent link gives the torrent the daemon has.
        with urllib.request.urlopen(row["torrentFile"], timeout=10) as f:
            got = f.read()
        want = self.api("GET", f"/v1/torrent?id={hex}&format=torrent")["torrent"]
        self.assertEqual(got, base64.b64decode(want))

        self.assertEqual(r["searched"]["rows"], ["album"])
        self.assertIn("q=alb", r["searched"]["url"])

        page = r["torrent"]
        self.assertEqual(page["h1"], "album")
        self.assertEqual(page["infohashV1"], hex)
        self.assertEqual(page["infohashV2"], t["info_hash_v2"])
        self.assertEqual(page["magnet"], t["magnet"])
        self.assertTrue(page["magnetReadonly"])
        self.assertEqual(r["copied"], t["magnet"])
        self.assertTrue(page["copyButton"])
        self.assertTrue(page["qr"])
        self.assert_count(page["seeders"], 2, "seeders")
        self.assert_count(page["leechers"], 1, "leechers")
        self.assert_count(page["completed"], 1, "completed")
        self.assertIn(f"http://{ADDR}:{self.http_port}/announce", page["trackers"])
        self.assertTrue(any(f"/data/{hex}/" in a for a in page["webseed"]), page["webseed"])
        # One row per file, naming its path below the torrent's folder.
        self.assertEqual(len(page["files"]), 3, page["files"])
        for rel in ("one.txt", "sub/two.bin", "three.bin"):
            self.assertEqual(sum(any(rel in cell for cell in cells) for cells in page["files"]),
                             1, (rel, page["files"]))

    def test_a_torrent_name_with_html_is_shown_as_text(self):
        # Markup that runs wherever it is pasted unescaped: in text (the img's error handler,
        # the svg's load handler) and in a quoted attribute (the quotes end it). A torrent name
        # cannot hold '/' (it is a path component), so there is no </script> here.
        name = """"><img src=x onerror=alert(1)>'<svg onload=alert(2)>&amp;"""
        path, _ = self.random_file("payload.bin", 1000)
        t = self.publish_ctl(path, "--name", name)
        self.assertEqual(t["name"], name)
        r = self.browser("pages.mjs", base=self.base, hex=t["info_hash"])
        self.assertEqual([row["name"] for row in r["index"]["rows"]], [name])
        self.assertEqual(r["torrent"]["h1"], name)
        self.assertIn(name, r["torrent"]["title"])
        # browser() has checked that no dialog opened and no script failed.

    def test_a_wrong_password_shows_an_error(self):
        self.add_user("bob")
        wrong = [("bob", "wrong"), ("nobody", PASSWORD)]
        r = self.browser("login.mjs", base=self.base, logout=True,
                         tries=[{"user": u, "password": p} for u, p in wrong] +
                               [{"user": "bob", "password": PASSWORD}])
        for (user, password), got in zip(wrong, r["tries"]):
            self.assertEqual(got["form"], {"user": 1, "password": 1, "submit": 1})
            self.assertTrue(got["error"], (user, password, got))
            self.assertFalse(got["loggedIn"], (user, password, got))
        right = r["tries"][-1]
        self.assertIsNone(right["error"], right)
        self.assertTrue(right["loggedIn"], right)
        # Logged out again: /publish shows no form to publish with.
        self.assertFalse(right["afterLogout"]["loggedIn"], right)
        self.assertEqual(right["afterLogout"]["publishForm"], 0, right)

    def test_pages_read_without_javascript(self):
        path, _ = self.random_file("plain.bin", 70000)
        t = self.publish_ctl(path)
        hex = t["info_hash"]
        r = self.browser("pages.mjs", base=self.base, hex=hex, javascript=False, search="pla")
        self.assertEqual([row["name"] for row in r["index"]["rows"]], ["plain.bin"])
        self.assert_count(r["index"]["rows"][0]["seeders"], 1, "seeders")  # the everseed
        self.assertEqual(r["searched"]["rows"], ["plain.bin"])
        page = r["torrent"]
        self.assertEqual((page["h1"], page["infohashV1"], page["magnet"]),
                         ("plain.bin", hex, t["magnet"]))
        self.assertEqual(len(page["files"]), 1)
        self.assertTrue(page["qr"])  # drawn by the server, not by a script
        self.assert_count(page["seeders"], 1, "seeders")
        self.assert_count(page["completed"], 0, "completed")

    # ---- docs/screenshots (scripts/screenshots; no test) --------------------------------------

    def screenshots(self):
        """Publishes a few torrents and saves a PNG of each page into EVERT_SCREENSHOTS (default
        docs/screenshots)."""
        out = os.path.abspath(os.environ.get("EVERT_SCREENSHOTS",
                                             os.path.join(HERE, "..", "..", "docs", "screenshots")))
        os.makedirs(out, exist_ok=True)
        self.add_user("admin", admin=True)
        self.add_user("alice")
        album = {"Field recordings/01 Dawn chorus.flac": 900000,
                 "Field recordings/02 Harbour.flac": 700000,
                 "Field recordings/notes.txt": 2000}
        for rel, size in album.items():
            self.random_file(rel, size)
        shown = self.publish_ctl(os.path.join(self.root, "data", "Field recordings"))
        for name, size in (("lecture-01.mp4", 3 << 20), ("survey-results.tar.gz", 2 << 20)):
            self.publish_ctl(self.random_file(name, size)[0])
        lt = self.leech("magnet", shown["magnet"])
        self.assertTrue(lt.poll(90), "libtorrent did not finish: " + self.read_log())
        r = self.browser("screenshots.mjs", base=self.base, user="admin", password=PASSWORD,
                         hex=shown["info_hash"], out=out)
        print("\n".join(r["files"]))


# Only the tests above: the web seed's own run in web_test.py.
for _name in dir(web_test.WebTest):
    if _name.startswith("test_") and _name not in BrowserTest.__dict__:
        setattr(BrowserTest, _name, None)

if __name__ == "__main__":
    unittest.main()
