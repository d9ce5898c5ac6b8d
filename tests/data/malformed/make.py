#!/usr/bin/python3
"""Writes the malformed-torrent corpus (tests/data/malformed/*.torrent) and expected.txt, which
lists each file with a fragment of the error evert must give. Also writes the fuzz seeds in
tests/data/fuzz/. Deterministic: rerunning gives the same bytes.

    tests/data/malformed/make.py
"""
import hashlib
import os

HERE = os.path.dirname(os.path.abspath(__file__))
FUZZ = os.path.join(HERE, "..", "fuzz")


def enc(v, sort=True):
    """Bencode; sort=False keeps dict order as given (to write unsorted keys)."""
    if isinstance(v, int):
        return b"i%de" % v
    if isinstance(v, str):
        v = v.encode()
    if isinstance(v, bytes):
        return b"%d:%s" % (len(v), v)
    if isinstance(v, list):
        return b"l" + b"".join(enc(x, sort) for x in v) + b"e"
    if isinstance(v, dict):
        items = [(k.encode() if isinstance(k, str) else k, x) for k, x in v.items()]
        if sort:
            items.sort()
        return b"d" + b"".join(enc(k) + enc(x, sort) for k, x in items) + b"e"
    raise TypeError(v)


def v1(info_extra=None, length=100000, pl=32768, **top):
    info = {"name": "file.bin", "piece length": pl, "length": length,
            "pieces": b"h" * (20 * ((length + pl - 1) // pl))}
    info.update(info_extra or {})
    t = {"announce": "http://tracker.example/announce", "info": info}
    t.update(top)
    return t


def multi(files, pl=16384):
    total = sum(f["length"] for f in files)
    return {"info": {"name": "folder", "piece length": pl, "files": files,
                     "pieces": b"h" * (20 * ((total + pl - 1) // pl))}}


def sha(b):
    return hashlib.sha256(b).digest()


def merkle(leaves, width):
    pad = b"\0" * 32
    level = list(leaves)
    while width > 1:
        level = [sha(level[i] + (level[i + 1] if i + 1 < len(level) else pad))
                 for i in range(0, max(len(level), 1), 2)]
        pad = sha(pad + pad)
        width //= 2
    return level[0]


def v2(data, pl=16384):
    """A valid v2 torrent of one file with `data`, and its piece layer."""
    blocks = [sha(data[i:i + 16384]) for i in range(0, len(data), 16384)]
    per = pl // 16384
    pieces = [merkle(blocks[i:i + per], per) for i in range(0, len(blocks), per)]
    width = 1
    while width < len(pieces):
        width *= 2
    pad = b"\0" * 32
    for _ in range(per.bit_length() - 1):
        pad = sha(pad + pad)
    level = list(pieces)
    w = width
    while w > 1:
        level = [sha(level[i] + (level[i + 1] if i + 1 < len(level) else pad))
                 for i in range(0, len(level), 2)]
        pad = sha(pad + pad)
        w //= 2
    root = level[0]
    info = {"name": "v2.bin", "piece length": pl, "meta version": 2,
            "file tree": {"v2.bin": {"": {"length": len(data), "pieces root": root}}}}
    return {"info": info, "piece layers": {root: b"".join(pieces)}}, root


CASES = {}


def case(name, data, expect):
    CASES[name] = (data if isinstance(data, bytes) else enc(data), expect)


good = enc(v1())
case("truncated", good[: len(good) // 2], "not valid bencode")
case("trailing-bytes", good + b"xyz", "trailing bytes")
case("unsorted-keys", enc({"info": v1()["info"], "announce": "x"}, sort=False), "not sorted")
case("duplicate-key", b"d8:announce1:x8:announce1:y4:info" + enc(v1()["info"]) + b"e", "duplicate")
case("leading-zero", good.replace(b"i32768e", b"i032768e"), "leading zero")
case("negative-zero", b"d8:announcei-0ee", "negative zero")
case("int-overflow", good.replace(b"i100000e", b"i99999999999999999999e"), "64-bit")
case("not-a-dict", enc([1, 2]), "not a bencoded dictionary")
case("missing-info", {"announce": "x"}, "missing key 'info'")
t = v1(); del t["info"]["name"]
case("missing-name", t, "missing key 'name'")
case("name-not-string", v1({"name": 5}), "info.name: expected a string")
case("name-dotdot", v1({"name": ".."}), "would escape")
case("path-dotdot", multi([{"length": 10, "path": ["..", "etc", "passwd"]}]), "would escape")
case("absolute-path", multi([{"length": 10, "path": ["/etc/passwd"]}]), "absolute path")
case("empty-path-component", multi([{"length": 10, "path": ["a", "", "b"]}]), "empty path component")
case("path-conflict", multi([{"length": 10, "path": ["a"]}, {"length": 10, "path": ["a", "b"]}]),
     "path conflict")
case("negative-length", v1({"length": -1}), "negative length")
case("piece-count-mismatch", v1({"pieces": b"h" * 60}), "piece hashes, but the total length")
case("pieces-not-multiple-of-20", v1({"pieces": b"h" * 81}), "not a multiple of 20")
case("piece-length-zero", v1({"piece length": 0}), "must be positive")
case("announce-list-not-lists", v1(**{"announce-list": ["http://a"]}), "announce-list")
case("deep-nesting", b"d4:info" + b"l" * 100 + b"e" * 100 + b"e", "nesting deeper")
data = bytes(range(256)) * 200  # 51,200 bytes: four 16 KiB pieces
t, root = v2(data)
layer = bytearray(t["piece layers"][root]); layer[5] ^= 1
t["piece layers"][root] = bytes(layer)
case("v2-layer-mismatch", t, "does not match the file's pieces root")
t, root = v2(data)
t["piece layers"] = {}
case("v2-layer-missing", t, "missing")
t, root = v2(data)
t["info"]["piece length"] = 20000
case("v2-bad-piece-length", t, "power of two")
t, root = v2(data)
t["info"]["meta version"] = 3
case("v2-meta-version-3", t, "unsupported version 3")
t, root = v2(data)
t["info"]["files"] = [{"length": len(data) + 1, "path": ["v2.bin"]}]
t["info"]["name"] = "v2.bin"
t["info"]["pieces"] = b"h" * 20 * 4
case("hybrid-files-mismatch", t, "the v1 part and the v2 file tree disagree")
t, root = v2(data)
t["info"]["length"] = len(data) + 1
t["info"]["pieces"] = b"h" * 20 * 4
case("hybrid-length-mismatch", t, "differs from the v2 file tree")

with open(os.path.join(HERE, "expected.txt"), "w") as manifest:
    manifest.write("# file\terror fragment (tests/unit/metainfo_test.cpp checks both)\n")
    for name, (raw, expect) in sorted(CASES.items()):
        with open(os.path.join(HERE, name + ".torrent"), "wb") as f:
            f.write(raw)
        manifest.write("%s.torrent\t%s\n" % (name, expect))

# Fuzz seeds.
def seed(target, name, data):
    d = os.path.join(FUZZ, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())

for i, s in enumerate([b"4:spam", b"i-3e", b"l4:spam4:eggse", b"d3:cow3:moo4:spam4:eggse",
                       b"d4:spaml1:a1:bee", b"i03e", b"d1:bi1e1:ai2ee", b"5:spam", b"le", b"de",
                       b"i9223372036854775807e", b"lllleeee"]):
    seed("bencode", "seed-%02d" % i, s)
seed("metainfo", "v1-single", good)
seed("metainfo", "v1-multi", enc(multi([{"length": 10, "path": ["a"]},
                                         {"length": 20000, "path": ["d", "b"]}])))
t, root = v2(data)
seed("metainfo", "v2-single", enc(t))
t["info"]["pieces"] = b"h" * 20 * 4
t["info"]["length"] = len(data)
t["info"]["name"] = "v2.bin"
seed("metainfo", "hybrid-single", enc(t))
h1 = "c12fe1c06bba254a9dc9f519b335aa7c1367a88a"
h2 = "caf1e1c30e81cb361b9ee167c4aa64228a7fa4fa9f6105232b28ad099f3a302e"
for i, s in enumerate([
        "magnet:?xt=urn:btih:" + h1,
        "magnet:?xt=urn:btih:" + h1 + "&xt=urn:btmh:1220" + h2 + "&dn=a%20b&xl=10&tr=udp%3A%2F%2Fx%3A1",
        "magnet:?xt=urn:btih:YEX6DQDLXISUVHOJ6UM3GNNKPQJWPKEK&ws=http%3A%2F%2Fw%2F&so=0,2-4",
        "magnet:?xt=urn:btmh:1220" + h2 + "&x.pe=127.0.0.1:6881",
        "magnet:?dn=x", "magnet:?xt=urn:btih:%zz"]):
    seed("magnet", "seed-%02d" % i, s)
print("wrote %d malformed torrents" % len(CASES))
