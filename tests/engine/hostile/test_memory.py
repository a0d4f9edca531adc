"""The unpacker runs in bounded memory (and load and import with it): each worst case is run
by a child process inside a memory cgroup (v1, limit 256 MiB) and must end with its expected
outcome, without the cgroup ever reaching its limit. The peak of each is printed (the cgroup's max usage, which counts
the page cache too, and the child's own maximum resident set).

Before the limits, the first three cases drove the unpacker to gigabytes and the OOM killer.
"""
import os
import subprocess
import sys
import uuid

import pytest

from engine.hostile import corpus
from pyrunc.engine.images.unpack import DEFAULT_LIMITS

MEMCG = "/sys/fs/cgroup/memory"
LIMIT = 256 << 20

CHILD = r"""
import sys
from pyrunc.errors import InvalidArgument
mode, path, root, limit = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
try:
    if mode == "apply":
        from pyrunc.engine.layers import apply_layer
        with open(path, "rb") as f:
            apply_layer(f, root, max_size=limit)
    else:
        from pyrunc.engine.images import ImageService, import_image, load
        svc = ImageService(root, snapshotter="native")
        with open(path, "rb") as f:
            if mode == "load":
                load(svc, f)
            else:
                import_image(svc, f, "worst:1")
    print("applied")
except InvalidArgument as e:
    print("%s: %s" % (type(e).__name__, e))
with open("/proc/self/status") as f:
    print([line for line in f if line.startswith("VmHWM:")][0].split()[1])
"""


def _worst_cases():
    wanted = {"gnu-long-name-1M-components-gzip": "extended headers of",
              "pax-header-1GiB-gzip": "extended headers of",
              "zstd-rle-bomb-400KB-12GiB": "do not fit|exceed",
              "gzip-bomb-1GiB-of-zeros": "applied",      # within 1100 x 1 MiB: drained
              "xz-3GiB-dictionary": "[Mm]emory",
              "zstd-128MiB-window-filled": "applied"}
    out = []
    for cls, ident, data, _ in corpus.memory_cases():
        if ident in wanted:
            out.append((ident, data, wanted[ident]))
    out.append(("pax-header-1MiB-the-most-allowed",
                corpus.pax({"SCHILY.xattr.user.a": "v" * ((1 << 20) - 64)})
                + corpus.member("x") + corpus._END, "xattrs of more than"))
    out.append(("gnu-long-name-1MiB-the-most-allowed",
                corpus.gnu_long("n/" * ((1 << 19) - 8)) + corpus.member("x") + corpus._END,
                "longer than 4095"))
    out = [("apply", ident, data, expect) for ident, data, expect in out]
    # load and import read the same inputs through their own paths
    load_pax = corpus.pax_bomb(1 << 30)
    out.append(("load", "load-tar-with-a-1GiB-pax-header", load_pax, "extended headers of"))
    members = b"".join(corpus.member("blobs/sha256/%064x" % i, b"") for i in range(20_000))
    out.append(("load", "load-tar-of-20000-bogus-blobs", corpus.gz(members + corpus._END),
                "digest mismatch|index.json|manifest.json"))
    for ident in ("zstd-rle-bomb-400KB-12GiB", "gnu-long-name-1M-components-gzip"):
        data = [d for c, i, d, _ in corpus.memory_cases() if i == ident][0]
        out.append(("import", "import-" + ident, data, "expands past|extended headers"))
    assert len(out) == 12
    return out


@pytest.fixture
def memcg():
    if not os.path.isdir(MEMCG) or not os.path.exists(os.path.join(MEMCG,
                                                                   "memory.limit_in_bytes")):
        pytest.skip("this machine has no cgroup v1 memory controller at %s" % MEMCG)
    path = os.path.join(MEMCG, "pyrunc-hostile-" + uuid.uuid4().hex[:12])
    os.mkdir(path)
    try:
        with open(os.path.join(path, "memory.limit_in_bytes"), "w") as f:
            f.write(str(LIMIT))
        try:
            with open(os.path.join(path, "memory.memsw.limit_in_bytes"), "w") as f:
                f.write(str(LIMIT))          # no escape into swap either
        except OSError:
            pass
        yield path
    finally:
        with open(os.path.join(path, "cgroup.procs")) as f:
            for pid in f.read().split():
                try:
                    os.kill(int(pid), 9)
                except ProcessLookupError:
                    pass
        for _ in range(100):
            try:
                os.rmdir(path)
                break
            except OSError:
                import time
                time.sleep(0.05)


def _read(cg, name):
    with open(os.path.join(cg, name)) as f:
        return int(f.read())


def test_unpacker_memory_is_bounded(memcg, tmp_path, private_mount_ns):
    peaks = []
    procs = os.path.join(memcg, "cgroup.procs")
    for mode, ident, data, expect in _worst_cases():
        layer = tmp_path / (ident + ".layer")
        layer.write_bytes(data)
        root = tmp_path / (ident + ".root")
        if mode == "apply":
            root.mkdir()
        with open(os.path.join(memcg, "memory.max_usage_in_bytes"), "w") as f:
            f.write("0")
        failcnt = _read(memcg, "memory.failcnt")
        limit = DEFAULT_LIMITS.for_layer(len(data))
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, mode, str(layer), str(root), str(limit)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            preexec_fn=lambda: _join(procs))
        out, err = child.communicate(timeout=300)
        peak = _read(memcg, "memory.max_usage_in_bytes")
        assert child.returncode == 0, "%s: the child died (%s): %s" % (
            ident, child.returncode, err.strip().splitlines()[-1:] or "")
        assert __import__("re").search(expect, out), (ident, out, err[-2000:])
        rss = int(out.split()[-1]) << 10         # the child's own peak resident set
        assert _read(memcg, "memory.failcnt") == failcnt, "%s reached the cgroup's limit" % ident
        assert peak < LIMIT
        peaks.append((ident, peak, rss))
    worst = max(peaks, key=lambda p: p[1])
    print("\nunpacker peak memory per worst case (cgroup max usage incl. page cache / "
          "the child's peak RSS, MiB):")
    for ident, peak, rss in peaks:
        print("  %-44s %6.1f / %6.1f" % (ident, peak / 2 ** 20, rss / 2 ** 20))
    print("worst: %s, %.1f MiB (limit %d MiB)" % (worst[0], worst[1] / 2 ** 20, LIMIT >> 20))


def _join(procs):
    with open(procs, "w") as f:
        f.write(str(os.getpid()))

