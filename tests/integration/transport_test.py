#!/usr/bin/python3
"""The everseed's transports against the real daemon: the MSE/PE handshake as each
everseed.encryption policy answers it (a Python initiator written from the spec, mse_peer.py,
downloading a block through plaintext and RC4 streams), encrypted handshakes that are wrong in
each way they can be, and uTP (BEP 29) datagrams from strangers: junk, packets of connections
the seed does not know (a RESET no larger than the packet), a flood of SYNs from one address
(bounded), while a python3-libtorrent client on another address downloads over uTP alone.

Every wait is bounded; every process a test starts is stopped by PID, also when it fails."""
import collections
import hashlib
import os
import socket
import struct
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from everseed_test import ADDR, EverseedCase, everseed_config, tree_digest  # noqa: E402
from mse_peer import (PLAINTEXT, RC4, MseError, MsePeer, bt_handshake, connect,  # noqa: E402
                      read_message)

HAVE_ALL = 14
BITFIELD = 5
UNCHOKE = 1
PIECE = 7

ST_DATA, ST_FIN, ST_STATE, ST_RESET, ST_SYN = 0, 1, 2, 3, 4


def utp_packet(kind, conn_id, seq, ack, payload=b"", wnd=1 << 20):
    ts = int(time.monotonic() * 1e6) & 0xFFFFFFFF
    return struct.pack(">BBHIIIHH", (kind << 4) | 1, 0, conn_id, ts, 0, wnd, seq, ack) + payload


def utp_header(datagram):
    tv, ext, conn, ts, tsd, wnd, seq, ack = struct.unpack(">BBHIIIHH", datagram[:20])
    return {"type": tv >> 4, "version": tv & 15, "conn": conn, "seq": seq, "ack": ack}


class TransportTest(EverseedCase):
    def block_through(self, peer, ih):
        """Over an MSE stream: our BitTorrent handshake went as IA; reads the seed's handshake
        and its have-all, asks for the first block and returns it."""
        got = peer.recv_exact(68)
        self.assertEqual(got[:20], b"\x13BitTorrent protocol")
        self.assertEqual(got[28:48], ih)
        kinds = set()
        while HAVE_ALL not in kinds:
            kind, _ = read_message(peer)
            kinds.add(kind)
        peer.send(struct.pack(">IB", 1, 2))  # interested
        while True:
            kind, _ = read_message(peer)
            if kind == UNCHOKE:
                break
        peer.send(struct.pack(">IBIII", 13, 6, 0, 0, 16384))
        while True:
            kind, payload = read_message(peer)
            if kind == PIECE:
                self.assertEqual(struct.unpack(">II", payload[:8]), (0, 0))
                return payload[8:]

    def mse(self, ih, provide, pad_a=None):
        s = connect(ADDR, self.seed_port)
        peer = MsePeer(s, ih, provide=provide, ia=bt_handshake(ih), pad_a=pad_a)
        return s, peer

    def first_block(self, path):
        with open(path, "rb") as f:
            return f.read(16384)

    def encryption_counters(self):
        m = self.module("everseed")
        return m["peers_encrypted"], m["peers_rc4"]

    def test_mse_streams_follow_the_encryption_policy(self):
        torrent, path, _ = self.make(1 << 20, "--v1")
        j = self.publish(torrent, path)
        self.assertEqual(j["state"], "done", j)
        ih = bytes.fromhex(j["torrent"]["info_hash"])
        want = self.first_block(path)
        # allow (the default): the peer's choice; plaintext when it offers both.
        for provide, selected in [(RC4 | PLAINTEXT, PLAINTEXT), (RC4, RC4), (PLAINTEXT, PLAINTEXT)]:
            s, peer = self.mse(ih, provide)
            try:
                self.assertEqual(peer.handshake(), selected, f"provide {provide}")
                self.assertEqual(self.block_through(peer, ih), want)
            finally:
                s.close()
        self.assertEqual(self.encryption_counters(), (3, 1))
        # A plaintext BitTorrent handshake is still taken on the same port.
        s = self.seed_socket(ih)
        s.close()

        # prefer: RC4 whenever it is offered.
        self.write_config(encryption="prefer")
        self.reload()
        s, peer = self.mse(ih, RC4 | PLAINTEXT, pad_a=512)
        try:
            self.assertEqual(peer.handshake(), RC4)
            self.assertEqual(self.block_through(peer, ih), want)
        finally:
            s.close()

        # require: RC4 only; plaintext handshakes and plaintext-only offers are refused.
        self.write_config(encryption="require")
        self.reload()
        s, peer = self.mse(ih, RC4 | PLAINTEXT, pad_a=0)
        try:
            self.assertEqual(peer.handshake(), RC4)
            self.assertEqual(self.block_through(peer, ih), want)
        finally:
            s.close()
        s, peer = self.mse(ih, PLAINTEXT)
        try:
            with self.assertRaises((MseError, OSError)):
                peer.handshake()
        finally:
            s.close()
        with self.assertRaises((ConnectionError, OSError)):
            self.seed_socket(ih).close()
        self.assertIn("a plaintext handshake (everseed.encryption is require)", self.read_log())

    def test_wrong_encrypted_handshakes_are_dropped_and_bounded(self):
        torrent, path, _ = self.make(1 << 20, "--hybrid")
        j = self.publish(torrent, path)
        self.assertEqual(j["state"], "done", j)
        ih = bytes.fromhex(j["torrent"]["info_hash"])
        v2 = bytes.fromhex(j["torrent"]["info_hash_v2_truncated"])
        want = self.first_block(path)
        # A hybrid's truncated v2 hash names it too; the seed answers in kind (BEP 52).
        s = connect(ADDR, self.seed_port)
        peer = MsePeer(s, v2, provide=RC4, ia=bt_handshake(v2))
        try:
            self.assertEqual(peer.handshake(), RC4)
            self.assertEqual(self.block_through(peer, v2), want)
        finally:
            s.close()

        def refused(send, why):
            s = connect(ADDR, self.seed_port, timeout=15)
            try:
                try:
                    send(s)
                except (MseError, OSError):
                    pass  # the seed hung up
                s.settimeout(15)
                data = b""
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                    self.assertLess(len(data), 700, why)  # Yb + PadB at most
            except ConnectionResetError:
                pass
            finally:
                s.close()
            self.assertIn(why, self.read_log())

        # An unknown torrent.
        other = hashlib.sha1(b"no such torrent").digest()
        refused(lambda s: self.try_handshake(s, other), "encrypted handshake")
        # 1,000 bytes of junk: no HASH('req1', S) where it must be.
        refused(lambda s: s.sendall(os.urandom(1000)), "encrypted handshake")
        # The right torrent, but its BitTorrent handshake names another.
        s = connect(ADDR, self.seed_port)
        peer = MsePeer(s, ih, provide=RC4, ia=bt_handshake(other))
        try:
            peer.handshake()
            with self.assertRaises((MseError, OSError)):
                peer.recv_exact(68)
        finally:
            s.close()
        self.assertIn("its handshake names another torrent", self.read_log())
        # Half handshakes that stop: dropped after handshake_timeout, the daemon answers others.
        idle = [connect(ADDR, self.seed_port) for _ in range(5)]
        for s in idle:
            s.sendall(os.urandom(50))
        s, peer = self.mse(ih, RC4)
        try:
            peer.handshake()
            self.assertEqual(self.block_through(peer, ih), want)
        finally:
            s.close()
        for s in idle:
            s.close()
        self.assertIsNone(self.proc.poll())

    @everseed_config(idle_timeout=10)
    def test_a_quiet_seed_sends_keep_alives(self):
        torrent, path, _ = self.make(1 << 20, "--v1")
        j = self.publish(torrent, path)
        self.assertEqual(j["state"], "done", j)
        s = self.seed_socket(bytes.fromhex(j["torrent"]["info_hash"]))
        try:
            # Its messages after the handshake, then silence but for keep-alives: at half the
            # idle_timeout (5 s here). We keep talking, so it does not drop us as idle.
            start = time.time()
            buf = b""
            got_keep_alive = False
            while time.time() - start < 12 and not got_keep_alive:
                s.sendall(b"\0\0\0\0")
                s.settimeout(2)
                try:
                    buf += s.recv(65536)
                except socket.timeout:
                    continue
                while len(buf) >= 4 and len(buf) >= 4 + struct.unpack(">I", buf[:4])[0]:
                    n = struct.unpack(">I", buf[:4])[0]
                    if n == 0:
                        got_keep_alive = True
                        waited = time.time() - start
                    buf = buf[4 + n:]
            self.assertTrue(got_keep_alive, "no keep-alive in 12 s")
            self.assertGreater(waited, 3.5)
        finally:
            s.close()

    def try_handshake(self, s, skey):
        MsePeer(s, skey, provide=RC4, ia=bt_handshake(skey)).handshake()

    def udp(self):
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind((ADDR, 0))
        u.settimeout(1)
        return u

    def replies(self, u, timeout=0.5):
        out = []
        end = time.time() + timeout
        while time.time() < end:
            u.settimeout(max(0.01, end - time.time()))
            try:
                out.append(u.recv(65536))
            except socket.timeout:
                break
        return out

    @everseed_config(max_per_address=64)
    def test_utp_strangers_get_resets_and_syn_floods_are_bounded(self):
        size = 4 << 20
        torrent, path, digest = self.make(size, "--hybrid")
        j = self.publish(torrent, path)
        self.assertEqual(j["state"], "done", j)
        u = self.udp()
        dest = (ADDR, self.seed_port)
        # Junk and truncated headers: no answer at all.
        for junk in [b"", b"x", os.urandom(19), b"d1:ad2:id20:" + os.urandom(30),
                     bytes([0x41]) + os.urandom(40)]:
            u.sendto(junk, dest)
        self.assertEqual(self.replies(u), [])
        # A packet of a connection the seed does not know: one RESET, no larger.
        u.sendto(utp_packet(ST_DATA, 4242, 7, 1, b"hello"), dest)
        got = self.replies(u)
        self.assertEqual(len(got), 1)
        self.assertEqual(len(got[0]), 20)
        self.assertEqual(utp_header(got[0])["type"], ST_RESET)
        # A RESET is never answered.
        u.sendto(utp_packet(ST_RESET, 4242, 7, 1), dest)
        self.assertEqual(self.replies(u), [])
        # A SYN: a STATE of 20 bytes, and nothing more for 0.5 s (when it is resent).
        u.sendto(utp_packet(ST_SYN, 1000, 1, 0), dest)
        got = self.replies(u, 0.35)
        self.assertEqual([len(d) for d in got], [20])
        h = utp_header(got[0])
        self.assertEqual((h["type"], h["conn"], h["ack"]), (ST_STATE, 1000, 1))
        # A flood of SYNs from one address: at most 16 connections wait for their handshake,
        # and each SYN gets its STATE and at most two more (resent 0.5 s and 1.5 s after it,
        # while the initiator says nothing).
        for i in range(200):
            u.sendto(utp_packet(ST_SYN, 2000 + 2 * i, 1, 0), dest)
        states = [d for d in self.replies(u, 2.5) if utp_header(d)["type"] == ST_STATE]
        per_conn = collections.Counter(utp_header(d)["conn"] for d in states)
        self.assertLessEqual(len(per_conn), 16 + 1)
        self.assertGreaterEqual(len(per_conn), 10)
        self.assertLessEqual(max(per_conn.values()), 3, per_conn)
        self.assertTrue(all(len(d) == 20 for d in states))
        self.assertGreaterEqual(self.module("everseed")["utp"]["refused"], 150)
        # Meanwhile a client on another address downloads over uTP alone.
        lt = self.leech_from("127.0.0.2", torrent, utp_only=True)
        self.finished(lt)
        self.assertEqual(tree_digest(os.path.join(lt.out, "payload.bin")), {"": digest})
        self.assertGreaterEqual(self.module("everseed")["utp"]["accepted"], 1)
        self.assertIsNone(self.proc.poll())
        u.close()

    def leech_from(self, addr, torrent, utp_only=False):
        """A libtorrent download from the .torrent on its own loopback address."""
        env_addr = os.environ.get("EVERT_TEST_ADDR")
        os.environ["EVERT_TEST_ADDR"] = addr
        if utp_only:
            os.environ["EVERT_LT_UTP_ONLY"] = "1"
        try:
            return self.leech("leech", torrent)
        finally:
            os.environ.pop("EVERT_LT_UTP_ONLY", None)
            if env_addr is None:
                os.environ.pop("EVERT_TEST_ADDR", None)
            else:
                os.environ["EVERT_TEST_ADDR"] = env_addr


if __name__ == "__main__":
    unittest.main()
