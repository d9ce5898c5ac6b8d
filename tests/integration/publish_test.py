#!/usr/bin/python3
"""evertctl publish and the commands around it, against the real daemon over loopback: a file or
folder published with one command (descriptors handed over, copied into the content store)
downloads in python3-libtorrent from the printed magnet link alone after the original is gone;
--in-place and --torrent/--data; Ctrl-C and kill -9 leave no trace; selection by name and
hash prefix; verify; unpublish; bad requests on the descriptor socket; a full disk."""
import array
import json
import os
import re
import signal
import socket
import subprocess
import time
import unicodedata
import unittest

import everseed_test
from everseed_test import EVERTCTL, EVERTD, tree_digest


class PublishTest(everseed_test.EverseedTest):
    def ctl(self, *args, check=True, timeout=120):
        env = dict(os.environ, EVERT_SOCKET=self.sock)
        r = subprocess.run([EVERTCTL, *args], capture_output=True, text=True, env=env,
                           cwd=self.root, timeout=timeout)
        if check and r.returncode != 0:
            self.fail(f"evertctl {' '.join(args)}: {r.returncode}\n{r.stdout}\n{r.stderr}")
        return r

    def ctl_json(self, *args):
        return json.loads(self.ctl(*args, "--json").stdout)

    def content(self):
        d = os.path.join(self.root, "state", "content")
        return sorted(os.listdir(d)) if os.path.isdir(d) else []

    def sparse(self, name, size):
        path = os.path.join(self.root, name)
        with open(path, "wb") as f:
            f.truncate(size)
            f.seek(size // 2)
            f.write(os.urandom(4096))
        return path

    def test_publish_a_file_then_download_from_the_magnet_link_alone(self):
        src = os.path.join(self.root, "movie.bin")
        with open(src, "wb") as f:
            f.write(os.urandom(3 << 20))
        want = tree_digest(src)
        out = self.ctl_json("publish", src)
        self.assertFalse(out["already_published"])
        self.assertEqual(out["state"], "seeding")
        self.assertEqual(out["name"], "movie.bin")
        self.assertEqual(out["seeders"], 1)
        self.assertTrue(os.path.isfile(os.path.join(self.root, "movie.bin.torrent")))
        self.assertIn(f"tr=http%3A%2F%2F127.0.0.1%3A{self.http_port}%2Fannounce", out["magnet"])
        # The data now lives in the content store, read-only, under the v1 info-hash.
        stored = os.path.join(self.root, "state", "content", out["info_hash"], "movie.bin")
        self.assertEqual(out["data"], stored)
        self.assertEqual(os.stat(stored).st_mode & 0o777, 0o444)
        self.assertEqual(tree_digest(stored), want)
        # The human output names the hashes and the magnet link.
        again = self.ctl("publish", src, "-o", "again.torrent").stdout
        self.assertIn("Already published movie.bin", again)
        self.assertIn("magnet:?xt=urn:btih:" + out["info_hash"], again)
        self.assertEqual(self.content(), [out["info_hash"]])  # no second copy
        # The publisher may delete the original: the torrent stays alive.
        os.unlink(src)
        self.assertEqual(self.fetch(out["magnet"], "movie.bin", "magnet"), want)
        listed = self.ctl("list").stdout
        self.assertIn("movie.bin", listed)
        self.assertIn(out["info_hash"], listed)
        self.assertIn("seeding", listed)
        # Columns as wide as their contents, counted in characters: a long name with letters
        # of several bytes keeps the columns after it in place (issue 16).
        long_name = os.path.join(self.root, "Ünïcödé fïlé " + "ß" * 30 + ".bin")
        with open(long_name, "wb") as f:
            f.write(b"x" * 1000)
        self.ctl_json("publish", long_name)
        wide = os.path.join(self.root, "日本語のファイル.bin")  # two columns a character
        with open(wide, "wb") as f:
            f.write(b"y" * 1000)
        self.ctl_json("publish", wide)

        def columns(text):  # terminal columns, as wcwidth() counts them
            return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)
        lines = self.ctl("list").stdout.splitlines()
        hash_at = {columns(line[:re.search(r"\b[0-9a-f]{40}\b", line).start()])
                   for line in lines[1:-1]}
        self.assertEqual(len(hash_at), 1, lines)  # every info-hash starts in the same column
        self.assertEqual(lines[0].index("INFO-HASH"), hash_at.pop(), lines)
        self.assertTrue(all(line.endswith("seeding") for line in lines[1:-1]), lines)

    def test_publish_a_folder_with_empty_files_and_padding(self):
        src = os.path.join(self.root, "album")
        os.makedirs(os.path.join(src, "disc 2"))
        for rel, size in [("01.flac", 100_001), ("disc 2/02.flac", 70_000), ("cover.jpg", 5),
                          ("empty.txt", 0)]:
            with open(os.path.join(src, rel), "wb") as f:
                f.write(os.urandom(size))
        want = tree_digest(src)
        out = self.ctl_json("publish", src, "--piece-size", "16K", "-o", "album.torrent")
        self.assertEqual(out["files"], 4)
        shown = self.ctl_json("show", "album")
        self.assertEqual(shown["info_hash"], out["info_hash"])
        got = self.fetch(os.path.join(self.root, "album.torrent"), "album", "leech")
        self.assertEqual(got, want)

    def test_in_place_and_an_existing_torrent(self):
        src = os.path.join(self.root, "inplace.bin")
        with open(src, "wb") as f:
            f.write(os.urandom(1 << 20))
        # A folder evertd lists on a worker: what the listing finds wrong fails the job.
        empty = os.path.join(self.root, "empty-folder")
        os.makedirs(empty)
        r = self.ctl("publish", "--in-place", empty, check=False)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("evertd cannot publish it in place", r.stderr)
        self.assertIn("no files to share", r.stderr)
        r = self.ctl("publish", "--in-place", os.path.join(self.root, "missing"), check=False)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("cannot read", r.stderr)
        out = self.ctl_json("publish", "--in-place", src)
        self.assertTrue(out["in_place"])
        self.assertEqual(out["data"], src)
        self.assertEqual(self.content(), [])  # nothing copied
        # An existing torrent with its data elsewhere: verified, then copied into the store.
        other = os.path.join(self.root, "other.bin")
        with open(other, "wb") as f:
            f.write(os.urandom(1 << 20))
        self.ctl("create", "--v1", other, "-o", "other.torrent")
        out2 = self.ctl_json("publish", "--torrent", "other.torrent", "--data", other)
        self.assertFalse(out2["in_place"])
        self.assertEqual(self.content(), [out2["info_hash"]])
        # Data that does not match the torrent is refused, and nothing stays behind.
        with open(other, "r+b") as f:
            f.write(b"changed")
        self.ctl("unpublish", out2["info_hash"][:8], "--delete-data")
        r = self.ctl("publish", "--torrent", "other.torrent", "--data", other, check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("does not match", r.stderr)
        self.assertEqual(self.content(), [])
        # In-place data is never deleted by evertd.
        r = self.ctl("unpublish", "inplace.bin", "--delete-data", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("does not delete", r.stderr)
        self.assertTrue(os.path.exists(src))

    def test_ctrl_c_cancels_and_leaves_nothing(self):
        big = self.sparse("big.bin", 3 << 30)
        env = dict(os.environ, EVERT_SOCKET=self.sock)
        p = subprocess.Popen([EVERTCTL, "publish", big], cwd=self.root, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.children.append(p)
        deadline = time.time() + 20
        while not any(n.startswith(".incoming-") for n in self.content()):
            self.assertLess(time.time(), deadline, "the publish did not start")
            time.sleep(0.02)
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=60)
        self.assertEqual(p.returncode, 130, err)
        self.assertIn("nothing was published", err)
        self.assertEqual(self.content(), [])
        self.assertEqual(self.ctl_json("list")["torrents"], [])
        self.assertFalse(os.path.exists(os.path.join(self.root, "big.bin.torrent")))

    def test_kill_9_keeps_what_was_acknowledged_and_drops_the_rest(self):
        keep = os.path.join(self.root, "keep.bin")
        with open(keep, "wb") as f:
            f.write(os.urandom(2 << 20))
        want = tree_digest(keep)
        kept = self.ctl_json("publish", keep)
        big = self.sparse("big.bin", 3 << 30)
        job = self.ctl_json("publish", "--detach", big)["job"]
        deadline = time.time() + 20
        while not any(n.startswith(".incoming-") for n in self.content()):
            self.assertLess(time.time(), deadline, "the publish did not start")
            time.sleep(0.02)
        self.assertGreater(job, 0)
        self.proc.kill()
        self.proc.wait()
        self.assertTrue(any(n.startswith(".incoming-") for n in self.content()))
        self.restart()
        self.assertEqual(self.content(), [kept["info_hash"]])
        names = [t["name"] for t in self.ctl_json("list")["torrents"]]
        self.assertEqual(names, ["keep.bin"])
        self.assertIn("a publish interrupted before it was acknowledged", self.read_log())
        self.assertEqual(self.fetch(os.path.join(self.root, "keep.bin.torrent"), "keep.bin",
                                    "leech"), want)

    def restart(self):
        """Starts evertd again on the same ports (the published torrents name its tracker)."""
        cfg = os.path.join(self.root, "evertd.yaml")
        with open(cfg) as f:
            text = f.read()
        text = text.replace(f'http_listen: ["{everseed_test.ADDR}:0"]',
                            f'http_listen: ["{everseed_test.ADDR}:{self.http_port}"]')
        text = text.replace(f'udp_listen: ["{everseed_test.ADDR}:0"]',
                            f'udp_listen: ["{everseed_test.ADDR}:{self.udp_port}"]')
        text = text.replace(f'listen: ["{everseed_test.ADDR}:0"]',
                            f'listen: ["{everseed_test.ADDR}:{self.seed_port}"]')
        with open(cfg, "w") as f:
            f.write(text)
        self.proc = subprocess.Popen([EVERTD, "--config", cfg], stdout=self.log, stderr=self.log,
                                     stdin=subprocess.DEVNULL)
        self.wait_up()

    def test_names_and_prefixes_select_and_ambiguity_is_an_error(self):
        hashes = []
        for i in range(2):
            d = os.path.join(self.root, f"v{i}")
            os.makedirs(d)
            with open(os.path.join(d, "same.txt"), "wb") as f:
                f.write(os.urandom(1000))
            hashes.append(self.ctl_json("publish", os.path.join(d, "same.txt"),
                                        "-o", f"s{i}.torrent")["info_hash"])
        r = self.ctl("show", "same.txt", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("matches 2 torrents", r.stderr)
        for h in hashes:
            self.assertIn(h, r.stderr)
        self.assertEqual(self.ctl_json("show", hashes[1][:10])["info_hash"], hashes[1])
        self.assertEqual(self.ctl("magnet", hashes[0]).stdout.strip(),
                         self.ctl_json("show", hashes[0])["magnet"])
        self.ctl("torrent", hashes[0][:6], "-o", "copy.torrent")
        with open(os.path.join(self.root, "copy.torrent"), "rb") as a, \
                open(os.path.join(self.root, "s0.torrent"), "rb") as b:
            self.assertEqual(a.read(), b.read())
        r = self.ctl("show", "nothing-like-this", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("no published torrent matches", r.stderr)
        out = self.ctl("unpublish", hashes[0], "--delete-data").stdout
        self.assertIn("Unpublished same.txt", out)
        self.assertIn("its data was deleted", out)
        self.assertNotIn(hashes[0], self.content())  # out of the way at once, removed after
        deadline = time.time() + 10
        while self.content() != [hashes[1]] and time.time() < deadline:
            time.sleep(0.05)
        self.assertEqual(self.content(), [hashes[1]])
        self.assertEqual(self.ctl_json("show", "same.txt")["info_hash"], hashes[1])

    def test_verify_finds_changed_in_place_data(self):
        src = os.path.join(self.root, "changing.bin")
        with open(src, "wb") as f:
            f.write(os.urandom(1 << 20))
        self.ctl("publish", "--in-place", src)
        self.assertIn("matches every hash", self.ctl("verify", "changing.bin").stdout)
        with open(src, "r+b") as f:
            f.seek(1000)
            f.write(b"tampered")
        r = self.ctl("verify", "changing.bin", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("no longer served", r.stdout)
        t = self.ctl_json("show", "changing.bin")
        self.assertEqual(t["state"], "stopped")
        self.assertIn("does not match", t["problem"])
        self.assertIn("stopped: verify", self.ctl("list").stdout)

    def test_identical_publishes_at_once_commit_one_torrent_with_its_data(self):
        # A double submit: two evertctl publish of the same bytes at once, each handing its own
        # descriptor over. Both must succeed, one torrent committed once, its folder complete.
        digests = {}
        for i in range(6):
            src = os.path.join(self.root, f"twice{i}.bin")
            with open(src, "wb") as f:
                f.write(os.urandom(3 << 20))
            env = dict(os.environ, EVERT_SOCKET=self.sock)
            procs = [self.spawn([EVERTCTL, "publish", src, "--json", "-o", f"twice{i}-{k}.torrent"],
                                cwd=self.root, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for k in range(2)]
            outs = []
            for p in procs:
                out, err = p.communicate(timeout=120)
                self.assertEqual(p.returncode, 0, f"round {i}: {out}\n{err}\n{self.read_log()}")
                outs.append(json.loads(out))
            ih = outs[0]["info_hash"]
            self.assertEqual(outs[1]["info_hash"], ih)
            self.assertEqual(sorted(o["already_published"] for o in outs), [False, True], outs)
            self.assertEqual(sum(t["info_hash"] == ih for t in self.ctl_json("list")["torrents"]), 1)
            stored = os.path.join(self.root, "state", "content", ih, f"twice{i}.bin")
            self.assertEqual(tree_digest(stored), tree_digest(src), f"round {i}")
            self.assertIn("matches every hash", self.ctl("verify", ih).stdout)
            self.assertEqual(self.ctl_json("show", ih)["state"], "seeding")
            digests[ih] = (f"twice{i}.bin", tree_digest(src))
        deadline = time.time() + 10
        while any(n.startswith(".") for n in self.content()) and time.time() < deadline:
            time.sleep(0.05)
        self.assertEqual(self.content(), sorted(digests))  # no staged or incoming copy left
        for ih, (name, want) in digests.items():
            self.assertEqual(self.fetch(f"magnet:?xt=urn:btih:{ih}&tr=http%3A%2F%2F"
                                        f"{everseed_test.ADDR}%3A{self.http_port}%2Fannounce",
                                        name, "magnet"), want)

    def test_publishing_again_repairs_a_torrent_whose_data_is_gone(self):
        src = os.path.join(self.root, "fragile.bin")
        with open(src, "wb") as f:
            f.write(os.urandom(2 << 20))
        want = tree_digest(src)
        ih = self.ctl_json("publish", src)["info_hash"]
        stored = os.path.join(self.root, "state", "content", ih, "fragile.bin")
        os.unlink(stored)  # lost (the test runs as root: the read-only folder does not stop it)
        r = self.ctl("verify", ih, check=False)
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertEqual(self.ctl_json("show", ih)["state"], "stopped")
        again = self.ctl_json("publish", src)
        self.assertEqual(again["info_hash"], ih)
        self.assertEqual(again["state"], "seeding", again)
        self.assertEqual(tree_digest(stored), want)
        self.assertIn("matches every hash", self.ctl("verify", ih).stdout)
        deadline = time.time() + 10
        while self.content() != [ih] and time.time() < deadline:
            time.sleep(0.05)
        self.assertEqual(self.content(), [ih])
        # Data that is there is not copied again: the second publish only says so.
        self.assertTrue(self.ctl_json("publish", src)["already_published"])
        self.assertEqual(self.fetch(os.path.join(self.root, "fragile.bin.torrent"),
                                    "fragile.bin", "leech"), want)

    def send_fds(self, messages):
        """Sends (bytes, [fds]) messages on the descriptor socket; returns the answer or None."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        s.settimeout(10)
        s.connect(self.sock.replace(".sock", "-fds.sock"))
        try:
            for data, fds in messages:
                anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))] if fds else []
                s.sendmsg([data], anc)
            return s.recv(65536).decode()
        except OSError:
            return None
        finally:
            s.close()

    def test_bad_requests_on_the_descriptor_socket(self):
        path = os.path.join(self.root, "f.bin")
        with open(path, "wb") as f:
            f.write(b"x" * 100)
        fd = os.open(path, os.O_RDONLY)
        dfd = os.open(self.root, os.O_RDONLY)
        try:
            head = lambda **kw: json.dumps(dict({"op": "publish", "count": 1, "name": "n"},
                                                **kw)).encode()
            entry = lambda **kw: json.dumps({"files": [dict({"size": 100}, **kw)]}).encode()
            cases = [
                ([(b"not json", [])], "400"),
                ([(json.dumps({"op": "publish"}).encode(), [])], "400"),
                ([(json.dumps({"op": "nope", "count": 1}).encode(), [])], "404"),
                ([(head(count=10**9), [])], "413"),
                ([(head(), [fd])], "400"),                      # descriptors with the header
                ([(head(name=""), []), (entry(), [fd])], "400"),  # no name
                ([(head(), []), (entry(), [])], "400"),         # an entry without its descriptor
                ([(head(), []), (entry(), [fd, fd])], "400"),   # more descriptors than entries
                ([(head(name="../escape"), []), (entry(), [fd])], "400"),
                ([(head(), []), (entry(path=["..", "x"]), [fd])], "202"),  # refused by the job
                ([(head(), []), (entry(), [dfd])], "202"),      # a folder: refused by the job
                ([(head(), []), (entry(size=5), [fd])], "202"),  # wrong size: refused by the job
            ]
            for messages, status in cases:
                answer = self.send_fds(messages)
                self.assertIsNotNone(answer, messages)
                self.assertTrue(answer.startswith(status + " "), (messages, answer))
                if status == "202":
                    job = json.loads(answer[4:])["job"]
                    deadline = time.time() + 20
                    while self.api("GET", f"/v1/job?id={job}")["state"] not in ("failed", "done"):
                        self.assertLess(time.time(), deadline)
                        time.sleep(0.05)
                    self.assertEqual(self.api("GET", f"/v1/job?id={job}")["state"], "failed")
            # A client that connects and says nothing, and one that goes away half-way.
            idle = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            idle.connect(self.sock.replace(".sock", "-fds.sock"))
            half = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            half.connect(self.sock.replace(".sock", "-fds.sock"))
            half.sendmsg([head(count=2)])
            half.sendmsg([entry()], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))])
            half.close()
            idle.close()
        finally:
            os.close(fd)
            os.close(dfd)
        self.assertIsNone(self.proc.poll())
        self.assertEqual(self.ctl_json("list")["torrents"], [])
        self.assertEqual(self.content(), [])
        # The daemon holds none of the descriptors it was handed.
        target = os.path.realpath(path)
        fd_dir = f"/proc/{self.proc.pid}/fd"
        held = [os.readlink(os.path.join(fd_dir, n)) for n in os.listdir(fd_dir)]
        self.assertNotIn(target, held)

    def test_a_full_disk_is_a_clear_error_and_leaves_nothing(self):
        if os.geteuid() != 0:
            self.skipTest("needs root for a small tmpfs in a mount namespace")
        # Restart the daemon in its own mount namespace with a 16 MiB content store.
        self.proc.terminate()
        self.proc.wait()
        content = os.path.join(self.root, "state", "content")
        os.makedirs(content, exist_ok=True)
        cfg = os.path.join(self.root, "evertd.yaml")
        self.proc = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c",
             f"mount -t tmpfs -o size=16m evert-test '{content}' && exec '{EVERTD}' --config '{cfg}'"],
            stdout=self.log, stderr=self.log, stdin=subprocess.DEVNULL)
        self.wait_up()
        src = os.path.join(self.root, "toolarge.bin")
        with open(src, "wb") as f:
            f.write(os.urandom(24 << 20))
        r = self.ctl("publish", src, check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("not enough space in the content store", r.stderr)
        # One that fits, then one that no longer does.
        a = os.path.join(self.root, "a.bin")
        b = os.path.join(self.root, "b.bin")
        for p in (a, b):
            with open(p, "wb") as f:
                f.write(os.urandom(10 << 20))
        self.ctl("publish", a)
        r = self.ctl("publish", b, check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("not enough space in the content store", r.stderr)
        listing = subprocess.run(["nsenter", "-t", str(self.proc.pid), "-m", "ls", "-a", content],
                                 capture_output=True, text=True).stdout.split()
        self.assertEqual(len([n for n in listing if n not in (".", "..")]), 1, listing)
        self.assertEqual(len(self.ctl_json("list")["torrents"]), 1)
        self.assertIsNone(self.proc.poll())


if __name__ == "__main__":
    unittest.main(verbosity=2)
