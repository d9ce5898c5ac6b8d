#!/usr/bin/python3
"""kill -9 under load: evertd is killed with SIGKILL at random moments while it publishes (files
and folders handed over by `evertctl publish`, uploads to POST /api/v1/publish with an API
token), answers HTTP and UDP announces and serves a python3-libtorrent download; it is started
again on the same ports, and then every publish a client saw acknowledged (its job "done"
before the kill) is listed, verifies and downloads with python3-libtorrent; every listed torrent
verifies and holds the bytes that were published (a publish that was not acknowledged may be
there or not, never half); the content store holds no .incoming-, .staged- or .deleting- folder
and no folder of a torrent that is not listed (docs/storage.md, "The content store").

The moments come from a seeded RNG; the seed is printed, and EVERT_CRASH_SEED=N replays the same
sizes, starts and kill moments (thread timing still varies). Every process the test starts is
stopped by PID, also when it fails."""
import base64
import http.client
import json
import os
import random
import re
import socket
import struct
import subprocess
import threading
import time
import unittest

import everseed_test
from everseed_test import ADDR, EVERTCTL, Leecher, tree_digest

ROUNDS = 5
PASSWORD = "correct horse battery"


class CrashTest(everseed_test.EverseedCase):
    """The daemon with the web module; restarts keep the ports the torrents name."""

    def setUp(self):
        self.ports = {"http": 0, "udp": 0, "seed": 0, "web": 0}
        self.halt = threading.Event()  # set when the test ends: every thread it started stops
        self.threads = []
        super().setUp()

    def tearDown(self):
        self.halt.set()
        for t in self.threads:
            t.join(timeout=60)
        super().tearDown()

    def write_config(self, **everseed):
        p = self.ports
        with open(self.cfg, "w") as f:
            f.write(f"""daemon:
  state_dir: {self.root}/state
  modules: [tracker, everseed, web]
control:
  socket: {self.sock}
  socket_group: ""
log:
  target: stderr
  level: info
tracker:
  http_listen: ["{ADDR}:{p['http']}"]
  udp_listen: ["{ADDR}:{p['udp']}"]
everseed:
  listen: ["{ADDR}:{p['seed']}"]
  announce_retry: 1
  announce_private: true
web:
  listen: ["{ADDR}:{p['web']}"]
  timeout: 5
""")

    def wait_up(self):
        super().wait_up()
        self.web_port = self.module("web")["ports"][0]
        self.base = f"http://{ADDR}:{self.web_port}"
        if not self.ports["http"]:
            # Later starts take the same ports: the torrents name the tracker and the web seed.
            self.ports = {"http": self.http_port, "udp": self.udp_port, "seed": self.seed_port,
                          "web": self.web_port}
            self.write_config()

    # ---- helpers ---------------------------------------------------------------------------

    def thread(self, fn, *args):
        t = threading.Thread(target=fn, args=args, daemon=True)
        self.threads.append(t)
        t.start()
        return t

    def evertctl(self, *args, stdin=None, timeout=60):
        env = dict(os.environ, EVERT_SOCKET=self.sock)
        p = self.spawn([EVERTCTL, *args], cwd=self.root, env=env, stdin=subprocess.PIPE,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            out, err = p.communicate(stdin, timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
        return p.returncode, out, err

    def content(self):
        return sorted(os.listdir(os.path.join(self.root, "state", "content")))

    def api_token(self, user):
        rc, _, err = self.evertctl("user", "add", user, "--password-stdin", stdin=PASSWORD + "\n")
        self.assertEqual(rc, 0, err)
        rc, out, err = self.evertctl("token", "create", user, "--label", "crash")
        self.assertEqual(rc, 0, err)
        return re.search(r"evt_[A-Za-z0-9_-]+", out).group(0)

    def source(self, rng, name, folder):
        """A file (or a folder of 1 to 3 files) of random bytes; its path."""
        path = os.path.join(self.root, "src", name)
        files = [""] if not folder else [f"part{i}.bin" for i in range(rng.randint(1, 3))]
        for rel in files:
            full = os.path.join(path, rel) if rel else path
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, "wb") as f:
                kib = rng.choice([0, 1, 16, 64, 256, 1024, 3072, 8192, 16384])
                f.write(rng.randbytes(kib * 1024 + rng.randint(1, 5000)))
        return path

    def job_state(self, job, web):
        """The job's answer, over the web module's /api/v1/ or the control socket."""
        if web:
            c = http.client.HTTPConnection(ADDR, self.web_port, timeout=10)
            try:
                c.request("GET", f"/api/v1/job?id={job}")
                return json.loads(c.getresponse().read())
            finally:
                c.close()
        return self.api("GET", f"/v1/job?id={job}")

    def follow(self, job, web):
        """Follows a job as a client does until it ends or the daemon is gone; the info-hash
        if the client saw it done (acknowledged), else None."""
        while not self.halt.is_set():
            try:
                j = self.job_state(job, web)
            except (OSError, ValueError, http.client.HTTPException):
                return None  # killed: whatever it did was not acknowledged
            if j.get("state") == "done":
                return j["info_hash"] if web else j["torrent"]["info_hash"]
            if j.get("state") in ("failed", "cancelled") or "error" in j and "state" not in j:
                return None
            time.sleep(0.02)
        return None

    def publish_one(self, how, path, token, out):
        """One publish as a client would do it; out["acked"] gets the info-hash of a publish
        acknowledged before the kill."""
        if how == "ctl":  # evertctl publish follows the job itself; exit 0: it saw "done"
            rc, stdout, _ = self.evertctl("publish", path, "--json", "-q", "-o",
                                          os.path.basename(path) + f".{id(out)}.torrent")
            if rc == 0:
                out["acked"] = json.loads(stdout)["info_hash"]
        elif how == "detach":  # descriptors handed over by evertctl, the job followed here
            rc, stdout, _ = self.evertctl("publish", path, "--json", "-q", "--detach")
            if rc == 0:
                out["acked"] = self.follow(json.loads(stdout)["job"], web=False)
        else:  # a script's upload: curl -F to /api/v1/publish with a token
            p = self.spawn(["curl", "-sS", "--max-time", "30", "-H",
                            f"Authorization: Bearer {token}", "-F", f"file=@{path}",
                            self.base + "/api/v1/publish"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            stdout, _ = p.communicate(timeout=60)
            if p.returncode == 0:
                try:
                    job = json.loads(stdout)["job"]
                except (ValueError, KeyError):
                    return  # an error answer
                out["acked"] = self.follow(job, web=True)

    # ---- the load --------------------------------------------------------------------------

    def announce_load(self, stop, hashes):
        """HTTP and UDP announces (BEP 3, BEP 15) for published torrents, paced, as long as the
        round runs; refused connections (the daemon is down) are only counted."""
        rng = random.Random(len(hashes))
        sent = {"http": 0, "udp": 0, "errors": 0}
        conn = None
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.settimeout(0.5)
        try:
            while not stop.is_set() and not self.halt.is_set():
                ih = rng.choice(hashes)
                peer = b"-XX0001-" + b"%012d" % rng.randrange(40)
                port = 40000 + rng.randrange(40)  # nothing listens there: refused at once
                try:
                    if rng.random() < 0.5:
                        q = lambda b: "".join("%%%02X" % x for x in b)
                        if conn is None:
                            conn = http.client.HTTPConnection(ADDR, self.ports["http"], timeout=2)
                        conn.request("GET", f"/announce?info_hash={q(ih)}&peer_id={q(peer)}"
                                            f"&port={port}&uploaded=0&downloaded=0&left=1000"
                                            f"&compact=1&numwant=5")
                        conn.getresponse().read()
                        sent["http"] += 1
                    else:
                        udp.sendto(struct.pack(">QII", 0x41727101980, 0, 1),
                                   (ADDR, self.ports["udp"]))
                        cid = struct.unpack(">IIQ", udp.recv(64)[:16])[2]
                        udp.sendto(struct.pack(">QII", cid, 1, 2) + ih + peer +
                                   struct.pack(">QQQIIIiH", 0, 1000, 0, 0, 0, 0, 5, port),
                                   (ADDR, self.ports["udp"]))
                        udp.recv(2048)
                        sent["udp"] += 1
                except (OSError, http.client.HTTPException):
                    sent["errors"] += 1
                    if conn is not None:
                        conn.close()
                        conn = None
                    stop.wait(0.05)
                    continue
                stop.wait(0.003)
        finally:
            udp.close()
            if conn is not None:
                conn.close()
        return sent

    def download_load(self, stop, torrent):
        """python3-libtorrent downloading a published torrent again and again, as long as the
        round runs."""
        n = 0
        while not stop.is_set() and not self.halt.is_set():
            n += 1
            lt = Leecher("leech", torrent, os.path.join(self.root, f"bg-{time.monotonic_ns()}"))
            self.leechers.append(lt)
            while not stop.is_set() and not self.halt.is_set() and not lt.poll(0.1):
                pass
            lt.stop()

    # ---- the checks --------------------------------------------------------------------------

    def torrent_file(self, ih):
        t = self.api("GET", f"/v1/torrent?id={ih}&format=torrent")
        path = os.path.join(self.root, f"check-{ih}.torrent")
        with open(path, "wb") as f:
            f.write(base64.b64decode(t["torrent"]))
        return path

    def verify_all(self, hashes):
        jobs = {ih: self.api("POST", f"/v1/verify?id={ih}")["job"] for ih in hashes}
        for ih, job in jobs.items():
            deadline = time.time() + 60
            while True:
                j = self.api("GET", f"/v1/job?id={job}")
                if j["state"] in ("done", "failed", "cancelled"):
                    break
                self.assertLess(time.time(), deadline, f"verify of {ih} did not end")
                time.sleep(0.05)
            self.assertEqual(j["state"], "done", j)
            self.assertTrue(j["torrent"]["verified"], j)

    def check_after_restart(self, label, acked, sources):
        """What a restart must find; returns the info-hashes listed."""
        # Start-up removed every unfinished folder before the daemon answered.
        self.assertEqual([n for n in self.content() if n.startswith(".")], [],
                         f"{label}: leftovers after start-up")
        listed = {t["info_hash"]: t for t in
                  self.api("GET", "/v1/torrents?limit=100000")["torrents"]}
        missing = set(acked) - set(listed)
        self.assertEqual(missing, set(), f"{label}: acknowledged publishes lost: "
                         + ", ".join(acked[ih] for ih in missing))
        # No folder without its torrent, no torrent without its folder.
        self.assertEqual(self.content(), sorted(listed), label)
        for ih, t in listed.items():
            self.assertEqual(t["state"], "seeding", f"{label}: {t}")
            self.assertIn(t["name"], sources, f"{label}: {t}")
            stored = os.path.join(self.root, "state", "content", ih, t["name"])
            self.assertEqual(tree_digest(stored), sources[t["name"]],
                             f"{label}: {t['name']} holds other bytes than were published")
        self.verify_all(listed)
        return listed

    def download_all(self, label, todo, sources):
        """Every torrent in `todo` ({info-hash: name}) downloads with libtorrent from the
        everseed, the bytes that were published. One at a time: several leechers at once on
        two cores took 6 s each instead of 0.7."""
        for ih, name in todo.items():
            lt = self.leech("leech", self.torrent_file(ih))
            self.assertTrue(lt.poll(90), f"{label}: {name} did not download")
            lt.stop()
            self.assertEqual(tree_digest(os.path.join(lt.out, name)), sources[name],
                             f"{label}: {name}")

    # ---- the test ----------------------------------------------------------------------------

    def test_kill_9_under_load_loses_no_acknowledged_publish(self):
        seed = int(os.environ.get("EVERT_CRASH_SEED") or random.SystemRandom().randrange(1 << 32))
        print(f"\nEVERT_CRASH_SEED={seed}", flush=True)
        rng = random.Random(seed)
        started = time.monotonic()
        token = self.api_token("crash")
        sources = {}  # torrent name -> tree_digest of what was published under it
        acked = {}  # info-hash -> name: every publish acknowledged so far
        bg = os.path.join(self.root, "src", "background.bin")
        os.makedirs(os.path.dirname(bg))
        with open(bg, "wb") as f:
            f.write(rng.randbytes(8 << 20))
        sources["background.bin"] = tree_digest(bg)
        rc, out, err = self.evertctl("publish", bg, "--json", "-q", "-o", "background.torrent")
        self.assertEqual(rc, 0, err)
        acked[json.loads(out)["info_hash"]] = "background.bin"
        bg_torrent = os.path.join(self.root, "background.torrent")
        for r in range(ROUNDS):
            label = f"seed {seed} round {r}"
            # Six to nine publishes of random kinds, one of them twice at once (a double submit).
            plan = []
            for i in range(rng.randint(6, 9)):
                how = rng.choice(["ctl", "detach", "web"])
                folder = how != "web" and rng.random() < 0.4
                path = self.source(rng, f"r{r}-{i}-{how}" + ("" if folder else ".bin"), folder)
                sources[os.path.basename(path)] = tree_digest(path)
                plan.append((how, path, rng.uniform(0.0, 1.2)))
            how, path, _ = rng.choice(plan)
            plan.append((how, path, rng.uniform(0.0, 1.2)))
            # A third of the rounds kill at a moment of the round; the others at the first
            # publish under way in the content store (copying, or staged for its commit) after
            # a moment, plus up to 20 ms: publishes are quick, a moment alone seldom finds one.
            kill_at = rng.uniform(0.15, 1.8)
            not_before = rng.uniform(0.1, 1.0)
            phase = rng.choice([None, ".incoming-", ".staged-"])
            after = rng.uniform(0.0, 0.02)
            # The load, then the publishes at their moments, then the kill at its own.
            stop = threading.Event()
            load = {}
            hashes = [bytes.fromhex(ih) for ih in acked]
            self.thread(lambda: load.update(self.announce_load(stop, hashes)))
            self.thread(self.download_load, stop, bg_torrent)
            t0 = time.monotonic()
            results = []
            for how, path, at in sorted(plan, key=lambda p: p[2]):
                out = {"how": how, "name": os.path.basename(path), "at": at, "acked": None}
                results.append(out)

                def run(how=how, path=path, at=at, out=out):
                    time.sleep(at)  # the moment the seed chose
                    if self.proc.poll() is None:
                        self.publish_one(how, path, token, out)
                results[-1]["thread"] = self.thread(run)
            if phase is None:
                time.sleep(max(0.0, t0 + kill_at - time.monotonic()))  # the moment to kill
            else:
                kill_at = 2.5  # at the latest
                time.sleep(not_before)
                while time.monotonic() < t0 + kill_at:
                    if any(n.startswith(phase) for n in self.content()):
                        time.sleep(after)
                        kill_at = time.monotonic() - t0
                        break
                    time.sleep(0.001)
            self.proc.kill()
            self.proc.wait()
            for out in results:
                out["thread"].join(timeout=90)
                self.assertFalse(out["thread"].is_alive(), f"{label}: a client hangs: {out}")
            stop.set()
            for t in self.threads:
                t.join(timeout=60)
            self.threads = []
            unfinished = [n for n in self.content() if n.startswith(".")]
            for out in results:
                if out["acked"]:
                    acked[out["acked"]] = out["name"]
            new = {out["acked"]: out["name"] for out in results if out["acked"]}
            self.log.close()
            self.start()
            listed = self.check_after_restart(label, acked, sources)
            print(f"{label}: killed at {kill_at:.3f} s{' on ' + phase if phase else ''}; "
                  f"{len(new)} of {len(results)} "
                  f"acknowledged, {len(set(listed) - set(acked))} present without; "
                  f"left by the kill: {', '.join(unfinished) or 'nothing'}; load {load}",
                  flush=True)
            self.download_all(label, new, sources)
        self.download_all(f"seed {seed} at the end", {k: v for k, v in acked.items()
                                                      if v == "background.bin"}, sources)
        print(f"seed {seed}: {len(acked)} acknowledged publishes kept over {ROUNDS} kills, "
              f"{time.monotonic() - started:.1f} s", flush=True)


if __name__ == "__main__":
    unittest.main(verbosity=2)
