#!/usr/bin/python3
"""The HTTP client of bench/webseed: fetches one URL path over plain HTTP/1.1 keep-alive
connections and throws the body away in the kernel, then prints one JSON line of figures.

  webseed_fetch.py HOST PORT PATH SIZE CONNECTIONS RANGE_SIZE TIMEOUT_SECONDS

With RANGE_SIZE 0 each of the CONNECTIONS connections asks for the whole file (SIZE bytes) once.
Otherwise the file is cut into RANGE_SIZE ranges, as BEP 19 clients ask for it, and the
connections take the next range in turn, one request at a time, until the whole file was
fetched once.

The body is received with recv(MSG_TRUNC): for TCP the kernel discards the bytes instead of
copying them to user space (tcp(7)), so the client costs a few system calls per MiB and the
server is the limit; the TCP receive path itself (the same for every server) still runs. Each
response head is read normally and checked: status 200 (206 for a range), Content-Length the
length asked for.

Figures: "bytes" the body bytes received, "seconds" the time from the first request to the last
byte, "requests", "cpu" this process's CPU seconds over that time (user + system, all
threads). Exits 1 with "error" set when a response is wrong or the whole fetch did not finish
in TIMEOUT_SECONDS.
"""
import json
import os
import socket
import sys
import threading
import time

BUF = 4 << 20


def cpu_seconds():
    t = os.times()
    return t.user + t.system


class Fetch:
    def __init__(self, host, port, path, size, range_size, deadline):
        self.host, self.port, self.path, self.size = host, port, path, size
        self.range_size = range_size
        self.deadline = deadline
        self.lock = threading.Lock()
        self.next = 0  # the next range's first byte
        self.bytes = 0
        self.requests = 0
        self.error = None

    def take(self):
        """The next (first, last) range to ask for, None when the file is all handed out."""
        with self.lock:
            if self.error or self.next >= self.size:
                return None
            first = self.next
            self.next = min(self.size, first + self.range_size)
            return first, self.next - 1

    def head(self, s):
        """Reads a response head; returns (status, content length, body bytes read with it)."""
        data = b""
        while b"\r\n\r\n" not in data:
            if len(data) > 65536:
                raise ValueError("response head too large")
            chunk = s.recv(65536)
            if not chunk:
                raise ValueError("connection closed before the response head")
            data += chunk
        head, rest = data.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        length = None
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
        if length is None:
            raise ValueError("no Content-Length")
        return status, length, len(rest)

    def one(self, s, buf, rng):
        req = f"GET {self.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
        if rng:
            req += f"Range: bytes={rng[0]}-{rng[1]}\r\n"
        s.sendall((req + "\r\n").encode())
        status, length, got = self.head(s)
        want = rng[1] - rng[0] + 1 if rng else self.size
        if status != (206 if rng else 200) or length != want:
            raise ValueError(f"answer {status} with {length} bytes to a request for {want}")
        if got > length:
            raise ValueError("more bytes than Content-Length")
        while got < length:
            if time.monotonic() > self.deadline:
                raise TimeoutError("timed out")
            n = s.recv_into(buf, min(len(buf), length - got), socket.MSG_TRUNC)
            if n == 0:
                raise ValueError(f"connection closed after {got} of {length} bytes")
            got += n
        with self.lock:
            self.bytes += length
            self.requests += 1

    def connection(self):
        buf = bytearray(BUF)  # never written to: MSG_TRUNC
        try:
            s = socket.create_connection((self.host, self.port), timeout=10)
            s.settimeout(max(1.0, self.deadline - time.monotonic()))
            with s:
                if not self.range_size:
                    self.one(s, buf, None)
                    return
                while (rng := self.take()) is not None:
                    self.one(s, buf, rng)
        except (OSError, ValueError) as e:
            with self.lock:
                self.error = self.error or f"{type(e).__name__}: {e}"


def main():
    host, port, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    size, connections, range_size = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
    timeout = float(sys.argv[7])
    f = Fetch(host, port, path, size, range_size, time.monotonic() + timeout)
    threads = [threading.Thread(target=f.connection) for _ in range(connections)]
    c0, t0 = cpu_seconds(), time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    t1, c1 = time.monotonic(), cpu_seconds()
    res = {"bytes": f.bytes, "seconds": t1 - t0, "requests": f.requests, "cpu": c1 - c0}
    if f.error:
        res["error"] = f.error
    print(json.dumps(res))
    sys.exit(1 if f.error else 0)


if __name__ == "__main__":
    main()
