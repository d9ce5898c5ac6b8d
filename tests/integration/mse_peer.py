"""A small MSE/PE initiator for the everseed's tests (Python's standard library only): the
handshake of the Vuze wiki's "Message Stream Encryption" spec over a connected TCP socket, then
the BitTorrent stream through it, plaintext or RC4 as the responder selected. Written from the
spec, independently of lib/src/mse.cpp, so that a shared misreading cannot hide.

  peer = MsePeer(sock, skey, provide=RC4 | PLAINTEXT, ia=handshake_bytes)
  peer.handshake()        # -> the selected method; raises MseError when the responder hangs up
  peer.send(b"...")       # encrypted as selected
  peer.recv_exact(n)      # decrypted as selected
"""
import hashlib
import os
import socket
import struct

P = int(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A0879"
    "8E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A63A3621"
    "0000000000090563", 16)
PLAINTEXT = 0x01
RC4 = 0x02
VC = bytes(8)


class MseError(Exception):
    pass


def sha1(*parts):
    return hashlib.sha1(b"".join(parts)).digest()


class Rc4:
    def __init__(self, key, drop=1024):
        s = list(range(256))
        j = 0
        for i in range(256):
            j = (j + s[i] + key[i % len(key)]) % 256
            s[i], s[j] = s[j], s[i]
        self.s, self.i, self.j = s, 0, 0
        self.apply(bytes(drop))

    def apply(self, data):
        s, i, j = self.s, self.i, self.j
        out = bytearray(len(data))
        for k, c in enumerate(data):
            i = (i + 1) & 255
            j = (j + s[i]) & 255
            s[i], s[j] = s[j], s[i]
            out[k] = c ^ s[(s[i] + s[j]) & 255]
        self.i, self.j = i, j
        return bytes(out)


class MsePeer:
    def __init__(self, sock, skey, provide=RC4 | PLAINTEXT, ia=b"", pad_a=None):
        self.sock = sock
        self.skey = skey
        self.provide = provide
        self.ia = ia
        self.pad_a = os.urandom(pad_a if pad_a is not None else os.urandom(1)[0] % 64)
        self.buf = b""
        self.selected = None
        self.enc = self.dec = None

    def _fill(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise MseError("the responder closed the connection")
            self.buf += chunk

    def _take(self, n):
        self._fill(n)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def handshake(self):
        x = int.from_bytes(os.urandom(20), "big")
        self.sock.sendall(pow(2, x, P).to_bytes(96, "big") + self.pad_a)
        yb = int.from_bytes(self._take(96), "big")
        s = pow(yb, x, P).to_bytes(96, "big")
        enc = Rc4(sha1(b"keyA", s, self.skey))
        dec = Rc4(sha1(b"keyB", s, self.skey))
        req2 = sha1(b"req2", self.skey)
        req3 = sha1(b"req3", s)
        self.sock.sendall(
            sha1(b"req1", s) + bytes(a ^ b for a, b in zip(req2, req3)) +
            enc.apply(VC + struct.pack(">IH", self.provide, 0) + struct.pack(">H", len(self.ia))) +
            enc.apply(self.ia))
        # PadB (0 to 512 bytes) ends where ENCRYPT(VC) begins.
        want = dec.apply(VC)
        for _ in range(512 + 1):
            self._fill(8)
            if self.buf[:8] == want:
                self.buf = self.buf[8:]
                break
            self.buf = self.buf[1:]
        else:
            raise MseError("no ENCRYPT(VC) within 512 bytes of PadB")
        select, pad_len = struct.unpack(">IH", dec.apply(self._take(6)))
        dec.apply(self._take(pad_len))
        if select not in (PLAINTEXT, RC4) or not select & self.provide:
            raise MseError(f"crypto_select {select:#x} for crypto_provide {self.provide:#x}")
        self.selected = select
        if select == RC4:
            self.enc, self.dec = enc, dec
            self.buf = dec.apply(self.buf)
        return select

    def send(self, data):
        self.sock.sendall(self.enc.apply(data) if self.enc else data)

    def recv_exact(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise MseError("the responder closed the connection")
            self.buf += self.dec.apply(chunk) if self.dec else chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out


def bt_handshake(info_hash, peer_id=b"-PY0001-abcdefghijkl", reserved=b"\0\0\0\0\0\x10\0\x04"):
    return b"\x13BitTorrent protocol" + reserved + info_hash + peer_id


def read_message(peer):
    """One length-prefixed peer-wire message: (id or None for a keep-alive, payload)."""
    (length,) = struct.unpack(">I", peer.recv_exact(4))
    if length == 0:
        return None, b""
    body = peer.recv_exact(length)
    return body[0], body[1:]


def connect(addr, port, timeout=10):
    s = socket.create_connection((addr, port), timeout=timeout)
    s.settimeout(timeout)
    return s
