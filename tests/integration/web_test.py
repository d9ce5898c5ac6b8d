#!/usr/bin/python3
"""The web module's web seed (BEP 19) against the real daemon over loopback: a published file and
a published folder are served under /data/<info-hash>/<name>[/<path>] to curl, whole and in
single byte ranges (suffix ranges, open ranges, ranges clamped at the end), 416 past the end,
HEAD, ETag/Last-Modified and If-Range; path escapes, unknown hashes and unknown files are 404;
data the page cache does not hold is read on a worker first; aria2c downloads a v1 torrent from
the web seed alone (no tracker, no reachable peer).

Every wait is bounded; every process a test starts is stopped by PID, also when it fails."""
import hashlib
import http.client
import json
import os
import socket
import subprocess
import time
import unittest

import everseed_test
from everseed_test import ADDR, EVERTCTL, free_port


class WebTest(everseed_test.EverseedTest):
    def write_config(self, **everseed):
        super().write_config(**everseed)
        with open(self.cfg) as f:
            text = f.read()
        text = text.replace("modules: [tracker, everseed]", "modules: [tracker, everseed, web]")
        with open(self.cfg, "w") as f:
            f.write(text + f'web:\n  listen: ["{ADDR}:0"]\n  timeout: 5\n')

    def wait_up(self):
        super().wait_up()
        self.web_port = self.module("web")["ports"][0]
        self.base = f"http://{ADDR}:{self.web_port}"

    def curl(self, path, *args):
        """(status, {lower-case header: value}, body) of one request with curl."""
        head = os.path.join(self.root, "curl.head")
        body = os.path.join(self.root, "curl.body")
        for p in (head, body):
            if os.path.exists(p):
                os.remove(p)
        r = subprocess.run(["curl", "-sS", "--path-as-is", "--max-time", "20", "-D", head,
                            "-o", body, *args, self.base + path],
                           capture_output=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(head, "rb") as f:
            lines = f.read().decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        data = b""
        if os.path.exists(body):
            with open(body, "rb") as f:
                data = f.read()
        return status, headers, data

    def publish_path(self, path, *options):
        torrent = self.create(path, "--v1", *options, tracker=False)
        j = self.publish(torrent, path)
        self.assertEqual(j["state"], "done", j)
        return j["torrent"]["info_hash"]

    def random_file(self, rel, size):
        path = os.path.join(self.root, "data", rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        data = os.urandom(size)
        with open(path, "wb") as f:
            f.write(data)
        return path, data

    def test_a_file_whole_in_ranges_and_with_validators(self):
        size = (3 << 20) + 123  # several 1 MiB chunks and a bit
        path, data = self.random_file("movie.bin", size)
        ih = self.publish_path(path)
        url = f"/data/{ih}/movie.bin"
        st, h, body = self.curl(url)
        self.assertEqual(st, 200)
        self.assertEqual(body, data)
        self.assertEqual(h["content-length"], str(size))
        self.assertEqual(h["accept-ranges"], "bytes")
        self.assertEqual(h["content-type"], "application/octet-stream")
        etag, modified = h["etag"], h["last-modified"]
        self.assertTrue(etag.startswith('"') and etag.endswith('"'), etag)
        self.assertTrue(modified.endswith(" GMT"), modified)
        self.assertEqual(self.curl(f"/data/{ih.upper()}/movie.bin")[2], data)

        # HEAD: the headers of a GET, no body (the next answer on the connection follows them).
        c = http.client.HTTPConnection(ADDR, self.web_port, timeout=10)
        try:
            c.request("HEAD", url)
            r = c.getresponse()
            self.assertEqual((r.status, r.getheader("Content-Length"), r.getheader("ETag")),
                             (200, str(size), etag))
            self.assertEqual(r.read(), b"")
            c.request("GET", url, headers={"Range": "bytes=1-3"})
            r = c.getresponse()
            self.assertEqual((r.status, r.read()), (206, data[1:4]))
        finally:
            c.close()

        # HTTP/1.0 and Connection: close: the whole answer, then the server closes (no wait
        # for the idle timeout); pipelined requests are answered in order.
        for req in (f"GET {url} HTTP/1.0\r\n\r\n",
                    f"GET {url} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                    f"GET {url} HTTP/1.1\r\nHost: x\r\nRange: bytes=0-1\r\n\r\n"
                    f"GET {url} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"):
            with socket.create_connection((ADDR, self.web_port), timeout=3) as s:
                s.sendall(req.encode())
                got = b""
                deadline = time.time() + 3
                while time.time() < deadline:
                    chunk = s.recv(1 << 20)  # socket.timeout fails the test: no close
                    if not chunk:
                        break
                    got += chunk
            self.assertTrue(got.endswith(data), req)
            self.assertEqual(got.count(b" 206 Partial Content\r\n"), req.count("Range"), req)

        # Single ranges: first byte, middle, across chunk boundaries, open, suffix, clamped.
        for rng, first, last in [("0-0", 0, 0), ("100-199", 100, 199),
                                 ("1048000-2097999", 1048000, 2097999),
                                 (f"{size - 10}-", size - 10, size - 1),
                                 ("-100", size - 100, size - 1), (f"-{size * 2}", 0, size - 1),
                                 (f"5-{size * 5}", 5, size - 1),
                                 (f"{size - 1}-{size - 1}", size - 1, size - 1)]:
            st, h, body = self.curl(url, "-H", f"Range: bytes={rng}")
            self.assertEqual(st, 206, rng)
            self.assertEqual(h["content-range"], f"bytes {first}-{last}/{size}", rng)
            self.assertEqual(h["content-length"], str(last - first + 1), rng)
            self.assertEqual(body, data[first:last + 1], rng)
        # HEAD with a range: its headers.
        st, h, _ = self.curl(url, "-I", "-H", "Range: bytes=10-19")
        self.assertEqual((st, h["content-range"], h["content-length"]),
                         (206, f"bytes 10-19/{size}", "10"))

        # Past the end: 416 with the size; several unsatisfiable ranges too.
        for rng in (f"{size}-", f"{size + 5}-{size + 10}", "-0", f"{size}-,{size + 1}-"):
            st, h, body = self.curl(url, "-H", f"Range: bytes={rng}")
            self.assertEqual(st, 416, rng)
            self.assertEqual(h["content-range"], f"bytes */{size}", rng)
            self.assertEqual(body, b"", rng)
        # Malformed, another unit, or several ranges: the whole file (RFC 9110 §14.2).
        for rng in ("bytes=9-3", "bytes=x-1", "items=0-1", "bytes=0-1,5-6", "bytes"):
            st, h, body = self.curl(url, "-H", f"Range: {rng}")
            self.assertEqual((st, len(body)), (200, size), rng)
            self.assertEqual(body, data, rng)

        # If-Range: the current ETag or date honours the range; another validator, or a weak
        # tag, gets the whole file.
        for validator, want in ((etag, 206), (modified, 206), ('"stale"', 200), ("W/" + etag, 200),
                                ("Mon, 01 Jan 2001 00:00:00 GMT", 200)):
            st, h, body = self.curl(url, "-H", "Range: bytes=0-9", "-H", f"If-Range: {validator}")
            self.assertEqual(st, want, validator)
            self.assertEqual(body, data[:10] if want == 206 else data, validator)

        served = self.module("web")["bytes_sent"]
        self.assertGreater(served, 4 * size)

    def test_a_folder_its_files_and_paths_that_are_no_file(self):
        src = os.path.join(self.root, "data", "album")
        files = {"one.bin": 70000, "sub dir/two.bin": 1 << 20, "sub dir/odd%name #1.txt": 333,
                 "empty.txt": 0}
        content = {}
        for rel, size in files.items():
            content[rel] = self.random_file(os.path.join("album", rel), size)[1]
        ih = self.publish_path(src)
        quoted = {"one.bin": "one.bin", "sub dir/two.bin": "sub%20dir/two.bin",
                  "sub dir/odd%name #1.txt": "sub%20dir/odd%25name%20%231.txt",
                  "empty.txt": "empty.txt"}
        for rel, q in quoted.items():
            st, h, body = self.curl(f"/data/{ih}/album/{q}")
            self.assertEqual((st, body), (200, content[rel]), rel)
            self.assertEqual(h["content-length"], str(files[rel]), rel)
        st, h, body = self.curl(f"/data/{ih}/album/sub%20dir/two.bin", "-H", "Range: bytes=-1000")
        self.assertEqual((st, body), (206, content["sub dir/two.bin"][-1000:]))
        st, h, _ = self.curl(f"/data/{ih}/album/empty.txt", "-H", "Range: bytes=0-")
        self.assertEqual((st, h["content-range"]), (416, "bytes */0"))

        # Not files of the torrent: folders, other names, escapes (plain, encoded, backslash),
        # unknown hashes, other prefixes.
        secret = os.path.join(self.root, "secret.txt")
        with open(secret, "w") as f:
            f.write("secret")
        other = "0" * 40
        for path in (f"/data/{ih}/album", f"/data/{ih}/album/", f"/data/{ih}/album/sub%20dir",
                     f"/data/{ih}/album/nope.bin", f"/data/{ih}/other/one.bin",
                     f"/data/{ih}/album/../album/one.bin", f"/data/{ih}/album/%2e%2e/album/one.bin",
                     f"/data/{ih}/album/sub%20dir%2Ftwo.bin", f"/data/{ih}/../../../secret.txt",
                     f"/data/{ih}/album/./one.bin", f"/data/{ih}/album//one.bin",
                     f"/data/{ih}/album/one.bin%00", f"/data/{ih}/album/one%2",
                     f"/data/{other}/album/one.bin", f"/data/{ih[:39]}/album/one.bin", "/data/",
                     "/album/one.bin"):
            st, _, body = self.curl(path)
            self.assertEqual(st, 404, path)
            self.assertNotIn(b"secret", body)

        # A file changed after it was published stops the torrent: nothing of it is served.
        t = self.api("GET", "/v1/torrent?info_hash=" + ih)
        self.assertTrue(t["in_place"], t)
        two = os.path.join(src, "sub dir", "two.bin")
        os.utime(two, ns=(time.time_ns(), time.time_ns() + 10**9))
        self.assertEqual(self.curl(f"/data/{ih}/album/sub%20dir/two.bin")[0], 404)
        self.assertEqual(self.curl(f"/data/{ih}/album/one.bin")[0], 404)
        self.assertEqual(self.api("GET", "/v1/torrent?info_hash=" + ih)["state"], "stopped")

    def test_unpublished_torrents_are_not_served(self):
        path, data = self.random_file("gone.bin", 1000)
        ih = self.publish_path(path)
        self.assertEqual(self.curl(f"/data/{ih}/gone.bin")[2], data)
        c = everseed_test.UnixHTTP(self.sock)
        try:
            c.request("DELETE", "/v1/torrent?id=" + ih)
            self.assertEqual(c.getresponse().status, 200)
        finally:
            c.close()
        self.assertEqual(self.curl(f"/data/{ih}/gone.bin")[0], 404)

    def test_data_the_page_cache_does_not_hold_is_read_on_workers(self):
        size = 4 << 20
        path, data = self.random_file("cold.bin", size)
        ih = self.publish_path(path)
        stored = self.api("GET", "/v1/torrent?info_hash=" + ih)["data"]
        with open(stored, "rb") as f:
            os.fsync(f.fileno())  # dirty pages stay in the cache; clean ones can be dropped
            os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
        before = self.module("web")["cold_chunks"]
        st, _, body = self.curl(f"/data/{ih}/cold.bin")
        self.assertEqual((st, hashlib.sha256(body).digest()), (200, hashlib.sha256(data).digest()))
        self.assertGreater(self.module("web")["cold_chunks"], before)

    def test_a_client_that_stops_reading_is_dropped(self):
        size = 32 << 20  # more than loopback's socket buffers take
        path, data = self.random_file("big.bin", size)
        ih = self.publish_path(path)
        with socket.create_connection((ADDR, self.web_port), timeout=5) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
            s.sendall(f"GET /data/{ih}/big.bin HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            s.recv(1000)
            self.assertEqual(self.module("web")["connections"], 1)
            # web.timeout is 5 s here: the stalled transfer is closed within the sweep after it.
            deadline = time.time() + 15
            while self.module("web")["connections"] > 0 and time.time() < deadline:
                time.sleep(0.1)
            self.assertEqual(self.module("web")["connections"], 0)
            self.assertLess(self.module("web")["bytes_sent"], size)
        st, _, body = self.curl(f"/data/{ih}/big.bin", "-H", "Range: bytes=-5")
        self.assertEqual((st, body), (206, data[-5:]))

    def test_torrents_made_by_the_daemon_list_the_web_seed(self):
        path, data = self.random_file("show.bin", 100000)
        env = dict(os.environ, EVERT_SOCKET=self.sock)
        r = subprocess.run([EVERTCTL, "publish", "--json", path], capture_output=True, text=True,
                           env=env, cwd=self.root, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        ih = json.loads(r.stdout)["info_hash"]
        url = f"{self.base}/data/{ih}/"
        self.assertEqual(self.module("web")["web_seed_url"], f"{self.base}/data/")
        with open(os.path.join(self.root, "show.bin.torrent"), "rb") as f:
            torrent = f.read()
        self.assertIn(b"8:url-listl%d:%s" % (len(url), url.encode()), torrent)
        # The URL a BEP 19 client makes of it (url + name) serves the file.
        self.assertEqual(self.curl(url[len(self.base):] + "show.bin")[2], data)
        # A .torrent handed in with the data is published as it is.
        given, gpath, _ = self.make(5000, "--v1", name="given.bin", tracker=False)
        j = self.publish(given, gpath)
        self.assertEqual(j["state"], "done", j)
        with open(given, "rb") as f:
            self.assertNotIn(b"url-list", f.read())

    def test_aria2c_downloads_from_the_web_seed_alone(self):
        size = 5 << 20
        path, data = self.random_file("payload.bin", size)
        ih = self.publish_path(path)
        # The same info dictionary with a url-list: the info-hash does not change (BEP 19: a
        # URL ending in '/' gets the torrent's name appended).
        seeded = os.path.join(self.root, "webseed.torrent")
        subprocess.run([EVERTCTL, "create", "--v1", "--force", "-w", f"{self.base}/data/{ih}/",
                        "-o", seeded, path], check=True, capture_output=True, timeout=60)
        out = os.path.join(self.root, "aria2")
        log = os.path.join(self.root, "aria2.log")
        port = free_port()
        aria = self.spawn(["aria2c", "--dir", out, "--enable-dht=false", "--enable-dht6=false",
                           "--bt-enable-lpd=false", "--enable-peer-exchange=false",
                           "--seed-time=0", "--bt-stop-timeout=60", f"--listen-port={port}",
                           "--console-log-level=warn", "--summary-interval=0", "--no-conf=true",
                           "--log=" + log, "--log-level=info", seeded],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            code = aria.wait(timeout=120)
        except subprocess.TimeoutExpired:
            code = "timeout"
        self.assertEqual(code, 0, "aria2c did not download the file: " + self.read_log())
        with open(os.path.join(out, "payload.bin"), "rb") as f:
            self.assertEqual(hashlib.sha256(f.read()).digest(), hashlib.sha256(data).digest())
        self.assertEqual(self.uploaded(ih), 0)  # no byte came from the everseed
        self.assertGreaterEqual(self.module("web")["bytes_sent"], size)


# Only the tests above: the everseed's own run in everseed_test.py.
for _name in dir(everseed_test.EverseedTest):
    if _name.startswith("test_") and _name not in WebTest.__dict__:
        setattr(WebTest, _name, None)

if __name__ == "__main__":
    unittest.main()
