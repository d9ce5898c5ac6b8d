#!/usr/bin/python3
"""Every torrent, forever (DESIGN.md): 10,000 small published torrents fit in the documented
memory budget (2 KiB per torrent of evertd's resident memory, measured after a restart, when
the torrents are idle), start-up stays fast, and any of them downloads at once."""
import base64
import hashlib
import os
import random
import shutil
import subprocess
import tempfile
import threading
import time
import unittest

import everseed_test
import publish_test

COUNT = int(os.environ.get("EVERT_SCALE_COUNT", "10000"))
BUDGET = 2048  # bytes of resident memory per idle published torrent (README, storage.md)


def rss(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


class ScaleTest(publish_test.PublishTest):
    def publish_all(self, paths):
        errors = []
        lock = threading.Lock()
        queue = list(paths)

        def worker():
            while True:
                with lock:
                    if not queue:
                        return
                    path = queue.pop()
                try:
                    job = self.api("POST", "/v1/publish", {"path": path,
                                                            "options": {"no_date": True}})["job"]
                    deadline = time.time() + 60
                    while True:
                        j = self.api("GET", f"/v1/job?id={job}")
                        if j["state"] in ("done", "failed", "cancelled"):
                            break
                        if time.time() > deadline:
                            raise RuntimeError("job did not finish")
                        time.sleep(0.002)
                    if j["state"] != "done":
                        raise RuntimeError(str(j))
                except Exception as e:  # collected and reported below
                    with lock:
                        errors.append(f"{path}: {e}")
                        queue.clear()

        threads = [threading.Thread(target=worker) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=900)
        self.assertEqual(errors, [])

    def test_ten_thousand_torrents_fit_the_budget_and_any_downloads_at_once(self):
        data = os.path.join(self.root, "files")
        os.makedirs(data)
        paths = []
        for i in range(COUNT):
            p = os.path.join(data, f"episode-{i:05d}.txt")
            with open(p, "wb") as f:
                f.write(f"episode {i}\n".encode() * 50)
            paths.append(p)
        t0 = time.time()
        self.publish_all(paths)
        publish_seconds = time.time() - t0
        self.assertEqual(self.api("GET", "/v1/torrents?limit=1")["total"], COUNT)

        # Idle cost: restart (a fresh process holds only what idle torrents need), then compare
        # with an empty daemon's resident memory.
        empty_rss = self.baseline_rss()
        self.proc.terminate()
        self.proc.wait(timeout=30)
        t0 = time.time()
        self.restart()
        startup = time.time() - t0
        time.sleep(1)  # let start-up work (content store check, tracker restore) settle
        full_rss = rss(self.proc.pid)
        per_torrent = (full_rss - empty_rss) / COUNT
        print(f"\n{COUNT} torrents: published in {publish_seconds:.1f} s, start-up {startup:.2f} s,"
              f" RSS {full_rss >> 20} MiB vs {empty_rss >> 20} MiB empty:"
              f" {per_torrent:.0f} B per torrent (budget {BUDGET})", flush=True)
        self.assertLessEqual(per_torrent, BUDGET)
        self.assertLess(startup, 5.0)

        # Any of them, picked at random, downloads at once from the everseed.
        pick = random.Random(7).choice(paths)
        name = os.path.basename(pick)
        t = self.api("GET", "/v1/torrent?id=" + name + "&format=torrent")
        self.assertEqual(t["state"], "seeding")
        torrent = os.path.join(self.root, "pick.torrent")
        with open(torrent, "wb") as f:
            f.write(base64.b64decode(t["torrent"]))
        with open(pick, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        t0 = time.time()
        self.assertEqual(self.fetch(torrent, name, "leech"), {"": digest})
        print(f"download of a random torrent: {time.time() - t0:.2f} s", flush=True)

    def baseline_rss(self):
        """Resident memory of an evertd with nothing published, same config, measured the same
        way (1 s after start)."""
        root = tempfile.mkdtemp(prefix="evert-scale-empty-")
        cfg = os.path.join(root, "evertd.yaml")
        with open(os.path.join(self.root, "evertd.yaml")) as f:
            text = f.read().replace(self.root, root)
        with open(cfg, "w") as f:
            f.write(text)
        p = subprocess.Popen([everseed_test.EVERTD, "--config", cfg], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        try:
            deadline = time.time() + 15
            while not os.path.exists(os.path.join(root, "evertd.sock")):
                self.assertLess(time.time(), deadline)
                time.sleep(0.02)
            time.sleep(1)
            return rss(p.pid)
        finally:
            p.terminate()
            p.wait(timeout=30)
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    unittest.main(verbosity=2)
