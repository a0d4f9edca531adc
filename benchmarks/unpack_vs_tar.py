"""Unpack a ~200 MB multi-file layer: pyrunc's safe layer apply against GNU ``tar -x``.

Builds one layer (directories, thousands of small files, some large ones, symlinks and hard
links), then alternates runs of both sides on the same input, plain and gzip, and prints the
medians and the ratio ours/tar (goal: within 1.2x).

    python benchmarks/unpack_vs_tar.py [--runs N] [--size-mb N] [--dir DIR]

Run as root (both sides restore ownership).
"""
import argparse
import gzip
import io
import os
import random
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time

from pyrunc.engine.layers import apply_layer


def build_layer(path, size_mb, seed=1):
    rnd = random.Random(seed)
    target = size_mb << 20
    total = 0
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tf:
        n = 0
        while total < target:
            d = "usr/share/pkg%03d" % (n // 100)
            if n % 100 == 0:
                ti = tarfile.TarInfo(d)
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
                tf.addfile(ti)
            kind = rnd.random()
            size = (rnd.randint(1 << 20, 8 << 20) if kind < 0.02
                    else rnd.randint(0, 64 << 10))
            # half random (incompressible), half text-like
            text = b"lorem ipsum dolor sit amet\n" * (size // 54 + 1)
            data = rnd.randbytes(size // 2) + text[:size - size // 2]
            ti = tarfile.TarInfo("%s/file%05d" % (d, n))
            ti.size, ti.mode, ti.mtime = len(data), 0o644, 1_600_000_000
            tf.addfile(ti, io.BytesIO(data))
            if n % 50 == 7:
                s = tarfile.TarInfo("%s/link%05d" % (d, n))
                s.type, s.linkname = tarfile.SYMTYPE, "file%05d" % n
                tf.addfile(s)
                h = tarfile.TarInfo("%s/hard%05d" % (d, n))
                h.type, h.linkname = tarfile.LNKTYPE, ti.name
                tf.addfile(h)
            total += size
            n += 1
    return n


def timed(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--size-mb", type=int, default=200)
    p.add_argument("--dir", default=None, help="scratch directory (default: a temp dir)")
    args = p.parse_args()
    work = tempfile.mkdtemp(prefix="unpack-bench-", dir=args.dir)
    try:
        plain = os.path.join(work, "layer.tar")
        files = build_layer(plain, args.size_mb)
        gz = plain + ".gz"
        with open(plain, "rb") as src, gzip.open(gz, "wb", compresslevel=6) as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        print("layer: %d files, %.0f MB tar, %.0f MB gzip" % (
            files, os.path.getsize(plain) / 1e6, os.path.getsize(gz) / 1e6))
        out = os.path.join(work, "out")

        def fresh():
            shutil.rmtree(out, ignore_errors=True)
            os.mkdir(out)
            subprocess.run(["sync"])

        def ours(layer):
            with open(layer, "rb") as f:
                apply_layer(f, out)

        def tar(layer):
            flags = "-xzpf" if layer.endswith(".gz") else "-xpf"
            subprocess.run(["tar", "--same-owner", flags, layer, "-C", out], check=True)

        for label, layer in (("plain", plain), ("gzip", gz)):
            times = {"pyrunc": [], "tar": []}
            for _ in range(args.runs):
                for name, fn in (("pyrunc", ours), ("tar", tar)):
                    fresh()
                    times[name].append(timed(lambda: fn(layer)))
            mo, mt = statistics.median(times["pyrunc"]), statistics.median(times["tar"])
            print("%-5s  pyrunc median %.3fs  tar -x median %.3fs  ratio %.2fx"
                  % (label, mo, mt, mo / mt))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
