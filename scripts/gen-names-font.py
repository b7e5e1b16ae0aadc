#!/usr/bin/env python3
"""Builds the compact u8g2 face devauth draws names and other server text with.

The faces that draw the screens' own words are ASCII-only u8g2 faces. Text that comes from the
provider or the owner (the person's name, the account, the device name) may hold any letter, so
it gets one extra face family: this script takes the glyphs of a u8g2 family that has them
(Latin-1 and Latin Extended-A from `<family>_te`, Greek from `<family>_t_greek`, Cyrillic from
`<family>_t_cyrillic`), keeps only the letters a name needs, and writes them as one u8g2 font
file with the smallest run-length coding (bits per run of 0s and 1s) that fits them.

    scripts/gen-names-font.py            # writes fonts/names_unifont.u8g2font
    scripts/gen-names-font.py --check    # fails when that file is not what this script makes

The source files are read from the u8g2-fonts crate in cargo's registry (the version in
Cargo.lock), so the output is the same on every machine. It is committed; CI runs --check.
"""
import glob
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "fonts", "names_unifont.u8g2font")
FAMILY = "unifont"
# (source face suffix, code point ranges taken from it)
SOURCES = [
    ("t_latin", [(0x20, 0x7E), (0xA0, 0xFF)]),
    ("t_extended", [(0x100, 0x17F)]),
    ("t_greek", [(0x386, 0x386), (0x388, 0x38A), (0x38C, 0x38C), (0x38E, 0x3CE)]),
    ("t_cyrillic", [(0x400, 0x45F)]),
]
# Symbols of Latin-1 a name never holds; dropped to save room.
DROPPED = set(range(0xA1, 0xBF + 1)) - {0xAA, 0xB7, 0xBA}


def crate_dir():
    meta = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--locked"],
        cwd=ROOT, check=True, capture_output=True, text=True).stdout
    import json
    for p in json.loads(meta)["packages"]:
        if p["name"] == "u8g2-fonts":
            return os.path.join(os.path.dirname(p["manifest_path"]), "src", "fonts")
    sys.exit("u8g2-fonts not found in cargo metadata")


class Bits:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def read(self, n):
        v = 0
        for i in range(n):
            byte = self.data[self.pos >> 3]
            v |= ((byte >> (self.pos & 7)) & 1) << i
            self.pos += 1
        return v


class Writer:
    def __init__(self):
        self.bits = []

    def write(self, v, n):
        for i in range(n):
            self.bits.append((v >> i) & 1)

    def bytes(self):
        out = bytearray()
        for i in range(0, len(self.bits), 8):
            chunk = self.bits[i:i + 8]
            out.append(sum(b << j for j, b in enumerate(chunk)))
        return bytes(out)


def parse(path):
    d = open(path, "rb").read()
    hdr = dict(m0=d[2], m1=d[3], bw=d[4], bh=d[5], bx=d[6], by=d[7], bd=d[8])
    metrics = d[9:17]
    glyphs = {}

    def decode(enc, blob):
        r = Bits(blob)
        w, h = r.read(hdr["bw"]), r.read(hdr["bh"])
        signed = lambda n: r.read(n) - (1 << (n - 1))
        x, y, dx = signed(hdr["bx"]), signed(hdr["by"]), signed(hdr["bd"])
        pixels = []
        while len(pixels) < w * h:
            zeros, ones = r.read(hdr["m0"]), r.read(hdr["m1"])
            while True:
                pixels += [0] * zeros + [1] * ones
                if len(pixels) >= w * h or r.read(1) == 0:
                    break
        glyphs[enc] = (w, h, x, y, dx, pixels[:w * h])

    p = 23
    while d[p + 1] != 0:
        decode(d[p], d[p + 2:p + d[p + 1]])
        p += d[p + 1]
    su = (d[21] << 8) | d[22]
    if su:
        p = 23 + su
        while True:
            enc = (d[p + 2] << 8) | d[p + 3]
            p += 4
            if enc == 0xFFFF:
                break
        while p + 2 < len(d):
            enc, jump = (d[p] << 8) | d[p + 1], d[p + 2]
            if enc == 0 or jump == 0:
                break
            decode(enc, d[p + 3:p + jump])
            p += jump
    return metrics, glyphs


def runs(pixels):
    """(zeros, ones) pairs covering the bitmap, as u8g2 codes them."""
    out, i, n = [], 0, len(pixels)
    while i < n:
        z = 0
        while i < n and pixels[i] == 0:
            z, i = z + 1, i + 1
        o = 0
        while i < n and pixels[i] == 1:
            o, i = o + 1, i + 1
        out.append((z, o))
    return out or [(0, 0)]


def bits_for(v, signed=False):
    n = 1
    while True:
        if signed and -(1 << (n - 1)) <= v < (1 << (n - 1)):
            return n
        if not signed and v < (1 << n):
            return n
        n += 1


def encode_glyph(g, f):
    w, h, x, y, dx, pixels = g
    wr = Writer()
    wr.write(w, f["bw"]); wr.write(h, f["bh"])
    wr.write(x + (1 << (f["bx"] - 1)), f["bx"])
    wr.write(y + (1 << (f["by"] - 1)), f["by"])
    wr.write(dx + (1 << (f["bd"] - 1)), f["bd"])
    if w * h:
        m0, m1 = f["m0"], f["m1"]
        pairs = []
        for z, o in runs(pixels):
            while z >= (1 << m0) or o >= (1 << m1):
                # A run too long for the field: emit what fits and carry on.
                zz, oo = min(z, (1 << m0) - 1), (0 if z >= (1 << m0) else min(o, (1 << m1) - 1))
                pairs.append((zz, oo)); z -= zz; o -= oo
            pairs.append((z, o))
        prev = None
        for pair in pairs:
            if pair == prev:
                wr.write(1, 1)
            else:
                if prev is not None:
                    wr.write(0, 1)
                wr.write(pair[0], m0); wr.write(pair[1], m1)
            prev = pair
        wr.write(0, 1)
    return wr.bytes()


def build(metrics, glyphs):
    f = dict(
        bw=max(bits_for(g[0]) for g in glyphs.values()),
        bh=max(bits_for(g[1]) for g in glyphs.values()),
        bx=max(bits_for(g[2], True) for g in glyphs.values()),
        by=max(bits_for(g[3], True) for g in glyphs.values()),
        bd=max(bits_for(g[4], True) for g in glyphs.values()))
    best = None
    for m0 in range(2, 9):
        for m1 in range(2, 9):
            f2 = dict(f, m0=m0, m1=m1)
            size = sum(len(encode_glyph(g, f2)) for g in glyphs.values())
            if best is None or size < best[0]:
                best = (size, f2)
    f = best[1]
    low = bytearray()
    offs = {}
    for enc in sorted(e for e in glyphs if e < 0x100):
        blob = encode_glyph(glyphs[enc], f)
        offs[enc] = len(low)
        low += bytes([enc, len(blob) + 2]) + blob
    low += b"\x00\x00"
    high_glyphs = []
    for enc in sorted(e for e in glyphs if e >= 0x100):
        blob = encode_glyph(glyphs[enc], f)
        high_glyphs.append((enc, bytes([enc >> 8, enc & 0xFF, len(blob) + 3]) + blob))
    blocks = [high_glyphs[i:i + 24] for i in range(0, len(high_glyphs), 24)]
    table = bytearray()
    prev_size = 4 * len(blocks)
    for i, block in enumerate(blocks):
        last = 0xFFFF if i == len(blocks) - 1 else block[-1][0]
        table += bytes([prev_size >> 8, prev_size & 0xFF, last >> 8, last & 0xFF])
        prev_size = sum(len(b) for _, b in block)
    high = bytes(table) + b"".join(b for _, b in high_glyphs) + b"\x00\x00\x00"
    header = bytes([min(len(glyphs), 255), 0, f["m0"], f["m1"], f["bw"], f["bh"], f["bx"],
                    f["by"], f["bd"]]) + metrics
    header += len_be(offs.get(ord("A"), 0)) + len_be(offs.get(ord("a"), 0)) + len_be(len(low))
    return header + bytes(low) + high


def len_be(v):
    return bytes([v >> 8, v & 0xFF])


def main():
    src = crate_dir()
    metrics, glyphs = None, {}
    for suffix, ranges in SOURCES:
        m, g = parse(os.path.join(src, f"u8g2_font_{FAMILY}_{suffix}.u8g2font"))
        metrics = metrics or m
        for lo, hi in ranges:
            for c in range(lo, hi + 1):
                if c in g and c not in DROPPED:
                    glyphs[c] = g[c]
    data = build(metrics, glyphs)
    if "--check" in sys.argv:
        if open(OUT, "rb").read() != data:
            sys.exit(f"{OUT} is not current: run scripts/gen-names-font.py")
        print(f"{OUT}: current ({len(data)} bytes, {len(glyphs)} glyphs)")
        return
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    open(OUT, "wb").write(data)
    print(f"{OUT}: {len(data)} bytes, {len(glyphs)} glyphs")


if __name__ == "__main__":
    main()
