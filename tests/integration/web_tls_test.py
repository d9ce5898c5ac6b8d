#!/usr/bin/python3
"""The web module over HTTPS (web.tls_certificate, web.tls_key) against the real daemon over
loopback, with a self-signed P-256 certificate made by openssl in the test's directory: pages,
the web seed whole, in ranges and across many 1 MiB chunks, keep-alive and pipelined requests;
the login cookie is Secure; plain HTTP to the TLS port gets a plain 400 and the daemon stays up;
a client that never sends its handshake, or stops reading, is dropped after web.timeout; aria2c
downloads from the web seed over https; a wrong configuration (one file of the two, a missing
file, a file that is no PEM, a key of another certificate) keeps evertd from starting with a
message naming the file.

Every wait is bounded; every process a test starts is stopped by PID, also when it fails."""
import hashlib
import http.client
import json
import os
import re
import socket
import ssl
import subprocess
import time
import unittest

import everseed_test
import web_test
from everseed_test import ADDR, EVERTCTL, EVERTD, free_port

PASSWORD = "correct horse battery"


def make_certificate(directory, name="server"):
    """(certificate, key) paths of a new self-signed certificate for 127.0.0.1 and localhost."""
    cert = os.path.join(directory, name + ".crt")
    key = os.path.join(directory, name + ".key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost",
                    "-keyout", key, "-out", cert],
                   check=True, capture_output=True, timeout=60)
    return cert, key


class WebTlsTest(web_test.WebTest):
    def write_config(self, **everseed):
        super().write_config(**everseed)
        self.cert, self.key = make_certificate(self.root)
        with open(self.cfg, "a") as f:  # the web section is the file's last
            f.write(f'  tls_certificate: "{self.cert}"\n  tls_key: "{self.key}"\n')

    def wait_up(self):
        super().wait_up()
        self.base = f"https://{ADDR}:{self.web_port}"

    def curl(self, path, *args):
        return super().curl(path, "--cacert", self.cert, *args)

    def tls_context(self):
        ctx = ssl.create_default_context(cafile=self.cert)
        ctx.check_hostname = False  # the certificate names 127.0.0.1 as an IP SAN
        return ctx

    def wait_connections(self, n, timeout):
        deadline = time.time() + timeout
        while self.module("web")["connections"] != n and time.time() < deadline:
            time.sleep(0.05)
        return self.module("web")["connections"]

    def test_pages_and_the_web_seed_over_https(self):
        st, h, body = self.curl("/")
        self.assertEqual(st, 200)
        self.assertTrue(h["content-type"].startswith("text/html"), h)
        self.assertIn(b"<html", body.lower())
        web = self.module("web")
        self.assertTrue(web["tls"])

        size = (3 << 20) + 123
        path, data = self.random_file("movie.bin", size)
        ih = self.publish_path(path)
        url = f"/data/{ih}/movie.bin"
        self.assertEqual(self.module("web")["web_seed_url"], f"{self.base}/data/")
        st, h, body = self.curl(url)
        self.assertEqual((st, h["content-length"]), (200, str(size)))
        self.assertEqual(body, data)
        for rng, first, last in [("0-0", 0, 0), ("1048000-2097999", 1048000, 2097999),
                                 ("-100", size - 100, size - 1), (f"{size - 10}-", size - 10,
                                                                  size - 1)]:
            st, h, body = self.curl(url, "-H", f"Range: bytes={rng}")
            self.assertEqual((st, h["content-range"]), (206, f"bytes {first}-{last}/{size}"))
            self.assertEqual(body, data[first:last + 1], rng)

        # Many chunks (and many 256 KiB TLS reads): the bytes hash the same.
        big = (24 << 20) + 4097
        bpath, bdata = self.random_file("big.bin", big)
        bih = self.publish_path(bpath)
        st, _, body = self.curl(f"/data/{bih}/big.bin")
        self.assertEqual((st, len(body)), (200, big))
        self.assertEqual(hashlib.sha256(body).hexdigest(), hashlib.sha256(bdata).hexdigest())

        # Keep-alive: HEAD, a range and the whole file on one TLS session.
        c = http.client.HTTPSConnection(ADDR, self.web_port, timeout=20,
                                        context=self.tls_context())
        try:
            c.request("HEAD", url)
            r = c.getresponse()
            self.assertEqual((r.status, r.getheader("Content-Length"), r.read()),
                             (200, str(size), b""))
            c.request("GET", url, headers={"Range": "bytes=1-3"})
            r = c.getresponse()
            self.assertEqual((r.status, r.read()), (206, data[1:4]))
            c.request("GET", url)
            r = c.getresponse()
            self.assertEqual((r.status, r.read()), (200, data))
        finally:
            c.close()

        # Pipelined requests in one write: answered in order, then closed as asked.
        raw = socket.create_connection((ADDR, self.web_port), timeout=10)
        with self.tls_context().wrap_socket(raw) as s:
            s.sendall((f"GET {url} HTTP/1.1\r\nHost: x\r\nRange: bytes=0-1\r\n\r\n"
                       f"GET {url} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").encode())
            got = b""
            while True:
                chunk = s.recv(1 << 20)
                if not chunk:
                    break
                got += chunk
        self.assertEqual(got.count(b" 206 Partial Content\r\n"), 1)
        self.assertTrue(got.endswith(data))
        self.assertGreater(self.module("web")["bytes_sent"], 2 * size + big)

    def test_the_login_cookie_is_secure(self):
        r = subprocess.run([EVERTCTL, "user", "add", "alice", "--password-stdin", "--socket",
                            self.sock], input=PASSWORD + "\n", capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        st, h, _ = self.curl("/login", "--data", f"user=alice&password={PASSWORD}&next=/")
        self.assertEqual(st, 303, h)
        cookie = h["set-cookie"]
        for attr in ("HttpOnly", "SameSite=Strict", "Secure"):
            self.assertIn(attr, cookie)
        # Issue 15: on a wildcard listen address without public_url the cookie lost Secure
        # (it followed a base URL that such a listener does not have).
        self.stop()
        with open(self.cfg) as f:
            text = f.read()
        with open(self.cfg, "w") as f:
            f.write(text.replace(f'listen: ["{ADDR}:0"]', 'listen: ["0.0.0.0:0"]'))
        self.start()
        self.base = f"https://{ADDR}:{self.web_port}"
        st, h, _ = self.curl("/login", "--data", f"user=alice&password={PASSWORD}&next=/")
        self.assertEqual(st, 303, h)
        self.assertIn("Secure", h["set-cookie"])

    def test_an_upload_streams_over_https(self):
        # A body of many MiB read through SSL_read a chunk at a time into the upload's sink.
        r = subprocess.run([EVERTCTL, "user", "add", "erin", "--password-stdin", "--socket",
                            self.sock], input=PASSWORD + "\n", capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        r = subprocess.run([EVERTCTL, "token", "create", "erin", "--label", "ci", "--socket",
                            self.sock], capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        token = re.search(r"evt_[A-Za-z0-9_-]+", r.stdout).group(0)
        path, data = self.random_file("release.iso", (12 << 20) + 77)
        out = subprocess.run(["curl", "-sS", "--max-time", "60", "--cacert", self.cert, "-H",
                              f"Authorization: Bearer {token}", "-F", f"file=@{path}",
                              self.base + "/api/v1/publish"],
                             capture_output=True, text=True, timeout=90)
        self.assertEqual(out.returncode, 0, out.stderr)
        job = json.loads(out.stdout)["job"]
        deadline = time.time() + 60
        while time.time() < deadline:
            j = json.loads(self.curl(f"/api/v1/job?id={job}")[2])
            if j["state"] in ("done", "failed"):
                break
            time.sleep(0.05)
        self.assertEqual(j["state"], "done", j)
        ih = json.loads(self.curl("/api/v1/torrents")[2])["torrents"][0]["info_hash"]
        body = self.curl(f"/data/{ih}/release.iso")[2]
        self.assertEqual(hashlib.sha256(body).digest(), hashlib.sha256(data).digest())

    def test_a_reload_serves_a_renewed_certificate(self):
        with open(self.cert, "rb") as f:
            old = f.read()
        renewed, renewed_key = make_certificate(self.root, "renewed")
        os.replace(renewed, self.cert)
        os.replace(renewed_key, self.key)
        self.reload()
        self.assertEqual(self.curl("/")[0], 200)  # --cacert is the renewed certificate now
        stale = os.path.join(self.root, "stale.crt")
        with open(stale, "wb") as f:
            f.write(old)
        r = subprocess.run(["curl", "-sS", "--max-time", "10", "--cacert", stale,
                            self.base + "/"], capture_output=True, timeout=30)
        self.assertNotEqual(r.returncode, 0)
        # Turning TLS off needs a restart: the listener stays HTTPS.
        with open(self.cfg) as f:
            text = f.read()
        with open(self.cfg, "w") as f:
            f.write(text[:text.index("  tls_certificate:")])
        self.reload()
        self.assertEqual(self.curl("/")[0], 200)
        self.assertTrue(self.module("web")["tls"])

    def test_plain_http_to_the_tls_port_fails_cleanly(self):
        with socket.create_connection((ADDR, self.web_port), timeout=10) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            got = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                got += chunk
        self.assertTrue(got.startswith(b"HTTP/1.1 400 Bad Request\r\n"), got)
        self.assertIn(b"HTTPS", got)
        # Bytes that are neither HTTP nor TLS: closed (reset, the bytes being unread).
        with socket.create_connection((ADDR, self.web_port), timeout=10) as s:
            s.sendall(b"\x00" * 64)
            try:
                self.assertEqual(s.recv(4096), b"")
            except ConnectionResetError:
                pass
        # curl's http:// to it fails; https:// still works.
        r = subprocess.run(["curl", "-sS", "--max-time", "10", f"http://{ADDR}:{self.web_port}/"],
                           capture_output=True, timeout=30)
        self.assertIn(b"HTTPS only", r.stdout)
        self.assertEqual(self.curl("/")[0], 200)
        self.assertGreaterEqual(self.module("web")["tls_failures"], 3)
        self.assertEqual(self.wait_connections(0, 5), 0)

    def test_clients_that_stall_are_dropped_after_the_timeout(self):
        # web.timeout is 5 s: a TCP connection that sends no ClientHello, and one that stops
        # halfway through its handshake, are closed by the sweep after it.
        silent = socket.create_connection((ADDR, self.web_port), timeout=20)
        half = socket.create_connection((ADDR, self.web_port), timeout=20)
        half.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")  # a ClientHello's start
        try:
            self.assertEqual(self.wait_connections(2, 5), 2)
            start = time.time()
            self.assertEqual(silent.recv(10), b"")  # closed by the daemon, not by the timeout
            self.assertEqual(half.recv(10), b"")
            self.assertGreaterEqual(time.time() - start, 2)
        finally:
            silent.close()
            half.close()
        # A TLS client that asks for a large file and reads nothing more: dropped as well.
        size = 32 << 20
        path, data = self.random_file("stall.bin", size)
        ih = self.publish_path(path)
        raw = socket.create_connection((ADDR, self.web_port), timeout=5)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        with self.tls_context().wrap_socket(raw) as s:
            s.sendall(f"GET /data/{ih}/stall.bin HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            s.recv(1000)
            self.assertEqual(self.wait_connections(0, 15), 0)
            self.assertLess(self.module("web")["bytes_sent"], size)
        st, _, body = self.curl(f"/data/{ih}/stall.bin", "-H", "Range: bytes=-5")
        self.assertEqual((st, body), (206, data[-5:]))

    def test_aria2c_downloads_from_the_web_seed_over_https(self):
        size = 5 << 20
        path, data = self.random_file("payload.bin", size)
        ih = self.publish_path(path)
        seeded = os.path.join(self.root, "webseed.torrent")
        subprocess.run([EVERTCTL, "create", "--v1", "--force", "-w", f"{self.base}/data/{ih}/",
                        "-o", seeded, path], check=True, capture_output=True, timeout=60)
        out = os.path.join(self.root, "aria2")
        log = os.path.join(self.root, "aria2.log")
        aria = self.spawn(["aria2c", "--dir", out, "--enable-dht=false", "--enable-dht6=false",
                           "--bt-enable-lpd=false", "--enable-peer-exchange=false",
                           "--seed-time=0", "--bt-stop-timeout=60",
                           f"--listen-port={free_port()}", "--ca-certificate=" + self.cert,
                           "--console-log-level=warn", "--summary-interval=0", "--no-conf=true",
                           "--log=" + log, "--log-level=info", seeded],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            code = aria.wait(timeout=120)
        except subprocess.TimeoutExpired:
            code = "timeout"
        with open(log, errors="replace") as f:
            aria_log = f.read()[-3000:]
        self.assertEqual(code, 0, "aria2c did not download the file: " + aria_log)
        with open(os.path.join(out, "payload.bin"), "rb") as f:
            self.assertEqual(hashlib.sha256(f.read()).digest(), hashlib.sha256(data).digest())
        self.assertEqual(self.uploaded(ih), 0)  # no byte came from the everseed
        self.assertGreaterEqual(self.module("web")["bytes_sent"], size)

    def test_wrong_tls_settings_keep_evertd_from_starting(self):
        other_cert, other_key = make_certificate(self.root, "other")
        junk = os.path.join(self.root, "junk.pem")
        with open(junk, "w") as f:
            f.write("not a certificate\n")
        missing = os.path.join(self.root, "missing.pem")
        with open(self.cfg) as f:
            base = f.read()
        base = base[:base.index("  tls_certificate:")]
        cases = [
            ({"tls_certificate": self.cert}, "web.tls_certificate and web.tls_key go together"),
            ({"tls_key": self.key}, "web.tls_certificate and web.tls_key go together"),
            ({"tls_certificate": missing, "tls_key": self.key},
             f"web.tls_certificate: {missing}: cannot read it"),
            ({"tls_certificate": self.cert, "tls_key": missing}, f"web.tls_key: {missing}: cannot"),
            ({"tls_certificate": junk, "tls_key": self.key}, f"certificate {junk}: not a PEM"),
            ({"tls_certificate": self.cert, "tls_key": junk}, f"key {junk}: not"),
            ({"tls_certificate": self.cert, "tls_key": other_key},
             f"key {other_key} does not match the certificate in {self.cert}"),
        ]
        for i, (keys, message) in enumerate(cases):
            root = os.path.join(self.root, f"bad{i}")
            os.makedirs(root)
            text = base.replace(self.root + "/state", root + "/state").replace(
                self.sock, os.path.join(root, "evertd.sock"))
            text += "".join(f'  {k}: "{v}"\n' for k, v in keys.items())
            cfg = os.path.join(root, "evertd.yaml")
            with open(cfg, "w") as f:
                f.write(text)
            r = subprocess.run([EVERTD, "--config", cfg], capture_output=True, text=True,
                               timeout=30, stdin=subprocess.DEVNULL)
            self.assertNotEqual(r.returncode, 0, keys)
            self.assertIn(message, r.stdout + r.stderr, keys)
        # The running daemon never noticed.
        self.assertEqual(self.curl("/")[0], 200)
        del other_cert


# Only the tests above: WebTest's and the everseed's own run in their files.
for _name in dir(web_test.WebTest):
    if _name.startswith("test_") and _name not in WebTlsTest.__dict__:
        setattr(WebTlsTest, _name, None)

if __name__ == "__main__":
    unittest.main()
