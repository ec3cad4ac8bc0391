#!/usr/bin/env python3
"""A reader of a c2sp.org/tlog-tiles log written from the specifications
alone (c2sp.org/signed-note, tlog-checkpoint, tlog-tiles, RFC 6962), with
no code shared with signgate: the tests use it to check that what the
gateway and `signgate log mirror` publish is what the specification says.

    tiles_reader.py SOURCE VKEY [--cacert FILE]

SOURCE is an http(s) URL prefix or a directory.  It fetches the
checkpoint, verifies its Ed25519 signature with the verifier key, fetches
every entry bundle and every hash tile of the tree, checks that each
level-0 hash is the leaf hash of its entry and that each higher tile holds
the hashes of the complete subtrees below it, recomputes the root from
the entries, and prints "SIZE ROOT_BASE64" when it equals the
checkpoint's.  Any mismatch: a message on stderr and exit status 1.
"""
import base64
import hashlib
import os
import ssl
import sys
import urllib.error
import urllib.request

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

TILE_H = 8
TILE_W = 1 << TILE_H


class Bad(Exception):
    pass


class Source:
    def __init__(self, where, cacert):
        self.where = where.rstrip("/")
        self.http = where.startswith("http://") or where.startswith("https://")
        self.ctx = ssl.create_default_context(cafile=cacert) if cacert else None
        self.fetches = 0

    def get(self, path):
        """The bytes at path, or None when the source has none."""
        self.fetches += 1
        if not self.http:
            try:
                with open(os.path.join(self.where, path), "rb") as f:
                    return f.read()
            except FileNotFoundError:
                return None
        try:
            with urllib.request.urlopen(self.where + "/" + path,
                                        context=self.ctx, timeout=30) as r:
                return r.read()
        except urllib.error.HTTPError as e:
            if e.code == 404:
                return None
            raise Bad("GET %s: HTTP %d" % (path, e.code))


def parse_vkey(vkey):
    name, keyid, b64 = vkey.strip().split("+", 2)
    raw = base64.b64decode(b64, validate=True)
    if len(raw) != 33 or raw[0] != 1:
        raise Bad("not an Ed25519 verifier key")
    want = hashlib.sha256(name.encode() + b"\n" + raw).digest()[:4]
    if want.hex() != keyid:
        raise Bad("the verifier key's id does not match its key")
    return name, want, raw[1:]


def verify_note(note, name, keyid, pub):
    """The checkpoint text, once a signature line by the key verifies."""
    sep = note.find(b"\n\n")
    if sep < 0:
        raise Bad("the note has no signature block")
    text, sigs = note[:sep + 1], note[sep + 2:]
    key = Ed25519PublicKey.from_public_bytes(pub)
    for line in sigs.decode().split("\n"):
        if not line.startswith("\u2014 "):
            continue
        who, _, b64 = line[2:].partition(" ")
        sig = base64.b64decode(b64)
        if who != name or sig[:4] != keyid or len(sig) != 68:
            continue
        try:
            key.verify(sig[4:], text)
            return text
        except InvalidSignature:
            raise Bad("the checkpoint's signature does not verify")
    raise Bad("no signature by %s on the checkpoint" % name)


def index_path(n):
    """<N>: groups of three digits, all but the last prefixed by 'x'."""
    groups = []
    while True:
        groups.append("%03d" % (n % 1000))
        n //= 1000
        if n == 0:
            break
    groups.reverse()
    return "/".join(["x" + g for g in groups[:-1]] + [groups[-1]])


def tile_path(level, n, width):
    base = "tile/%s/%s" % (level, index_path(n))
    return base if width == TILE_W else base + ".p/%d" % width


def fetch_tile(src, level, n, width, unit):
    """A tile of `width` elements; falls back to the full tile when the
    partial one is gone (the specification lets a log drop it)."""
    data = src.get(tile_path(level, n, width))
    if data is None and width < TILE_W:
        data = src.get(tile_path(level, n, TILE_W))
        if data is not None and unit:
            data = data[:width * unit]
    if data is None:
        raise Bad("missing: " + tile_path(level, n, width))
    return data


def leaf_hash(e):
    return hashlib.sha256(b"\x00" + e).digest()


def node_hash(l, r):
    return hashlib.sha256(b"\x01" + l + r).digest()


def mth(hashes):
    """RFC 6962 section 2.1 over leaf hashes, by its recursive definition."""
    n = len(hashes)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashes[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return node_hash(mth(hashes[:k]), mth(hashes[k:]))


def read_log(src, vkey):
    name, keyid, pub = parse_vkey(vkey)
    note = src.get("checkpoint")
    if note is None:
        raise Bad("no checkpoint")
    lines = verify_note(note, name, keyid, pub).decode().split("\n")
    if lines[0] != name:
        raise Bad("the checkpoint's origin is %r, not %r" % (lines[0], name))
    size = int(lines[1])
    root = base64.b64decode(lines[2], validate=True)

    # Entries, and the level-0 tiles that must hold their leaf hashes.
    leaves = []
    for n in range((size + TILE_W - 1) // TILE_W):
        width = min(TILE_W, size - n * TILE_W)
        path = "tile/entries/" + index_path(n)
        bundle = src.get(path if width == TILE_W else path + ".p/%d" % width)
        if bundle is None and width < TILE_W:
            bundle = src.get(path)
        if bundle is None:
            raise Bad("missing entry bundle %d" % n)
        pos, got = 0, []
        while pos < len(bundle) and len(got) < width:
            ln = int.from_bytes(bundle[pos:pos + 2], "big")
            if pos + 2 + ln > len(bundle):
                raise Bad("entry bundle %d is truncated" % n)
            got.append(bundle[pos + 2:pos + 2 + ln])
            pos += 2 + ln
        if len(got) != width:
            raise Bad("entry bundle %d holds %d entries, not %d"
                      % (n, len(got), width))
        leaves.extend(leaf_hash(e) for e in got)

    # Every hash tile: level L holds the hashes of the complete subtrees
    # of 256^L leaves.
    level, span = 0, 1
    while size // span > 0:
        count = size // span
        for n in range((count + TILE_W - 1) // TILE_W):
            width = min(TILE_W, count - n * TILE_W)
            data = fetch_tile(src, level, n, width, 32)
            if len(data) != width * 32:
                raise Bad("tile %s is %d bytes" %
                          (tile_path(level, n, width), len(data)))
            for i in range(width):
                first = (n * TILE_W + i) * span
                want = mth(leaves[first:first + span]) if span > 1 \
                    else leaves[first]
                if data[i * 32:(i + 1) * 32] != want:
                    raise Bad("tile %s: hash %d is not the tree's" %
                              (tile_path(level, n, width), i))
        level, span = level + 1, span * TILE_W

    got = mth(leaves)
    if got != root:
        raise Bad("the entries give root %s, the checkpoint says %s" %
                  (base64.b64encode(got).decode(),
                   base64.b64encode(root).decode()))
    return size, root


def main(argv):
    args = argv[1:]
    cacert = None
    if "--cacert" in args:
        i = args.index("--cacert")
        cacert = args[i + 1]
        del args[i:i + 2]
    if len(args) != 2:
        print(__doc__.strip().split("\n\n")[1], file=sys.stderr)
        return 2
    src = Source(args[0], cacert)
    try:
        size, root = read_log(src, args[1])
    except (Bad, ValueError, OSError) as e:
        print("tiles_reader: %s" % e, file=sys.stderr)
        return 1
    print(size, base64.b64encode(root).decode())
    print("tiles_reader: %d fetches" % src.fetches, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
