"""The compiled-seccomp cache: a hit is the program a fresh compile gives, a container created
from the cache gets it (the kernel enforces it), and no hostile cache state is ever used."""
import errno
import hashlib
import multiprocessing
import os
import shutil
import stat
import subprocess
import tempfile
from _struct import pack

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyrunc import errors
from pyrunc.libcontainer import seccomp
from pyrunc.libcontainer.ocispec import spec as model
from pyrunc.libcontainer.seccomp import cache, filter as compiler
from support import unique_id
from libcontainer.test_seccomp import errno_of, profiles, run_filtered

from pyrunc._seccomp import lib  # noqa: E402 - a missing native module is a failure, not a skip

SECTION = "linux.seccomp"
MASK = compiler.FLAGS_WITHOUT_LISTENER
RET_ALLOW = pack("=HBBI", 0x06, 0, 0, 0x7FFF0000)     # BPF_RET|BPF_K SECCOMP_RET_ALLOW
NOBODY = 65534


def allow_but(*rules, **extra):
    return dict({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": list(rules)}, **extra)


def deny_mkdir(errno_ret):
    return allow_but({"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
                      "errnoRet": errno_ret})


def digest_of(config):
    return cache.key(config, SECTION, lib)


def cache_dir(root):
    return os.path.join(root, cache.DIR_NAME)


def entry_path(root, config):
    return os.path.join(cache_dir(root), digest_of(config).hex())


def outcome(config, **kwargs):
    """What compile gives, warnings included: ("ok", Seccomp, warnings) or ("error", ...)."""
    seen = []
    saved = errors.set_warning_sink(seen.append)
    try:
        return ("ok", seccomp.compile(config, **kwargs), seen)
    except errors.PyruncError as e:
        return ("error", type(e).__name__, str(e), seen)
    finally:
        errors.set_warning_sink(saved)


def assert_sane(root, config):
    """The cache directory is ours (0700) and holds the fresh program for ``config``."""
    st_dir = os.lstat(cache_dir(root))
    assert stat.S_ISDIR(st_dir.st_mode) and stat.S_IMODE(st_dir.st_mode) == 0o700
    assert st_dir.st_uid == os.geteuid()
    st_file = os.lstat(entry_path(root, config))
    assert stat.S_ISREG(st_file.st_mode) and stat.S_IMODE(st_file.st_mode) == 0o600
    entry = cache.load(root, digest_of(config), MASK)
    assert entry is not None and entry.bpf == seccomp.compile(config).bpf


# -- a hit is the fresh compile --------------------------------------------------------------

syscall_names = st.sampled_from(["read", "mkdir", "mkdirat", "kill", "getppid", "openat",
                                 "socket", "clone3", "no_such_syscall", "write", "ioctl"])
valid_args = st.lists(st.fixed_dictionaries(
    {"index": st.integers(0, 5), "value": st.integers(0, 2 ** 64 - 1),
     "op": st.sampled_from(compiler.OPERATORS)},
    optional={"valueTwo": st.integers(0, 2 ** 64 - 1)}), max_size=3)
valid_rules = st.fixed_dictionaries(
    {"names": st.lists(syscall_names, min_size=1, max_size=4),
     "action": st.sampled_from(sorted(set(model.SECCOMP_ACTIONS) - {"SCMP_ACT_NOTIFY"}))},
    optional={"errnoRet": st.integers(0, 0xFFFF), "args": valid_args})
valid_profiles = st.fixed_dictionaries(
    {"defaultAction": st.sampled_from(["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL",
                                       "SCMP_ACT_LOG", "SCMP_ACT_TRAP"])},
    optional={"defaultErrnoRet": st.integers(0, 0xFFFF),
              "architectures": st.lists(st.sampled_from(
                  ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64"]),
                  max_size=3),
              "flags": st.lists(st.sampled_from(model.SECCOMP_FLAGS), max_size=2),
              "syscalls": st.lists(valid_rules, max_size=4)})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(valid_profiles, profiles))
def test_a_cached_program_is_byte_identical_to_a_fresh_compile(config):
    root = tempfile.mkdtemp(prefix="seccomp-cache-")
    try:
        fresh = outcome(config)
        stored = outcome(config, state_root=root)    # a miss: compiled, stored
        hit = outcome(config, state_root=root)       # from the cache
        assert stored == fresh and hit == fresh
        names = os.listdir(cache_dir(root)) if os.path.isdir(cache_dir(root)) else []
        if fresh[0] == "ok" and fresh[1] is not None and not fresh[1].notify:
            entry = cache.load(root, digest_of(config), MASK)
            assert names == [digest_of(config).hex()]
            assert entry.bpf == fresh[1].bpf and entry.flags == fresh[1].flags
            assert entry.warnings == fresh[2]
        else:
            assert names == []      # errors, no filter, notify: nothing is stored
    finally:
        shutil.rmtree(root)


def test_the_hit_is_read_from_the_cache(tmp_path):
    """An entry that differs from the compile (written with a good checksum) is what a hit
    returns: the cache is read, not compiled around."""
    root = str(tmp_path)
    config = deny_mkdir(errno.EXDEV)
    seccomp.compile(config, state_root=root)
    other = seccomp.compile(deny_mkdir(errno.ENOTTY))
    with open(entry_path(root, config), "wb") as f:
        f.write(cache.encode(digest_of(config), other.bpf, other.flags, ["from the cache"]))
    seen = []
    saved = errors.set_warning_sink(seen.append)
    try:
        program = seccomp.compile(config, state_root=root)
    finally:
        errors.set_warning_sink(saved)
    assert program.bpf == other.bpf and seen == ["from the cache"]
    _, result = run_filtered(program, lambda _fd: errno_of(os.mkdir, str(tmp_path / "x")))
    assert result == errno.ENOTTY


def test_warnings_are_replayed_on_a_hit(tmp_path):
    config = allow_but({"names": ["no_such_syscall", "mkdir"], "action": "SCMP_ACT_ERRNO"})
    first = outcome(config, state_root=str(tmp_path))
    again = outcome(config, state_root=str(tmp_path))
    assert first[2] == again[2] == [
        'linux.seccomp.syscalls[0].names[0]: unknown syscall "no_such_syscall" skipped']


def test_the_key_covers_the_section_not_its_key_order():
    config = deny_mkdir(errno.EXDEV)
    reordered = dict(reversed(list(config.items())))
    reordered["syscalls"] = [dict(reversed(list(r.items()))) for r in config["syscalls"]]
    assert digest_of(reordered) == digest_of(config)
    for changed in (deny_mkdir(errno.EPERM), dict(config, listenerPath="/x"),
                    dict(config, flags=["SECCOMP_FILTER_FLAG_LOG"]),
                    dict(config, architectures=["SCMP_ARCH_X86"])):
        assert digest_of(changed) != digest_of(config)
    assert cache.key(config, "x.seccomp", lib) != digest_of(config)
    assert cache.key({"defaultAction": float("nan")}, SECTION, lib) is None
    assert cache.key({"defaultAction": {1: 2, "a": 3}}, SECTION, lib) is None


def test_notify_programs_are_compiled_every_time(tmp_path):
    config = allow_but({"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"},
                       listenerPath="/run/agent.sock")
    for _ in range(2):
        program = seccomp.compile(config, state_root=str(tmp_path))
        assert program.notify and program.listener_path == "/run/agent.sock"
        assert program == seccomp.compile(config)
    assert not os.path.exists(cache_dir(str(tmp_path))) or \
        os.listdir(cache_dir(str(tmp_path))) == []


def test_listener_fields_of_a_hit_come_from_the_config(tmp_path):
    config = dict(deny_mkdir(errno.EXDEV), listenerPath="/p", listenerMetadata="m")
    seccomp.compile(config, state_root=str(tmp_path))
    hit = seccomp.compile(config, state_root=str(tmp_path))
    assert hit == seccomp.compile(config)
    assert (hit.listener_path, hit.listener_metadata, hit.notify) == ("/p", "m", False)


def test_an_unusable_root_only_means_compiling(tmp_path):
    (tmp_path / "file").write_text("")
    config = deny_mkdir(errno.EXDEV)
    assert seccomp.compile(config, state_root=str(tmp_path / "file" / "root")) == \
        seccomp.compile(config)


def test_a_missing_root_is_not_made(tmp_path):
    config = deny_mkdir(errno.EXDEV)
    for _ in range(2):
        assert seccomp.compile(config, state_root=str(tmp_path / "a" / "root")) == \
            seccomp.compile(config)
    assert os.listdir(tmp_path) == []


def test_invalid_sections_still_fail_after_a_valid_one_is_cached(tmp_path):
    seccomp.compile(deny_mkdir(errno.EXDEV), state_root=str(tmp_path))
    bad = allow_but({"names": ["mkdir"], "action": "SCMP_ACT_NOPE"})
    for _ in range(2):
        with pytest.raises(errors.InvalidArgument, match="syscalls.0..action"):
            seccomp.compile(bad, state_root=str(tmp_path))


# -- entries: validation -----------------------------------------------------------------------

def forge(digest, bpf, flags=0, text=b"", *, n_bpf=None, magic=cache.MAGIC, zero=0,
          good_sum=True):
    """An entry file laid out by hand, with a correct checksum unless ``good_sum`` is False."""
    head = cache.HEADER.pack(magic, digest, flags, len(text),
                             len(bpf) if n_bpf is None else n_bpf, zero)
    h = hashlib.sha256(head)
    h.update(text + bpf)
    checksum = h.digest() if good_sum else bytes(32)
    return head + checksum + text + bpf


def test_entry_validation():
    d = bytes(range(32))
    good = forge(d, RET_ALLOW * 3)
    assert cache.parse(good, d, MASK).bpf == RET_ALLOW * 3
    bad = {
        "checksum": forge(d, RET_ALLOW, good_sum=False),
        "other key": forge(bytes(32), RET_ALLOW),
        "magic": forge(d, RET_ALLOW, magic=b"pyrunc-seccomp\x00\x02"),
        "reserved": forge(d, RET_ALLOW, zero=1),
        "listener flag": forge(d, RET_ALLOW, flags=1 << 3),
        "unknown flag": forge(d, RET_ALLOW, flags=1 << 20),
        "partial insn": forge(d, RET_ALLOW + b"\0" * 4),
        "empty program": forge(d, b""),
        "too many insns": forge(d, RET_ALLOW * (cache.BPF_MAXINSNS + 1)),
        "length field": forge(d, RET_ALLOW * 2, n_bpf=8),
        "truncated": good[:-8],
        "trailing": good + RET_ALLOW,
        "bad utf-8": forge(d, RET_ALLOW, text=b"\xff"),
        "header only": good[:cache.START],
    }
    for name, data in bad.items():
        assert cache.parse(data, d, MASK) is None, name
    assert cache.parse(forge(d, RET_ALLOW * cache.BPF_MAXINSNS), d, MASK) is not None


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.integers(0, 200), st.integers(0, 255))
def test_any_damage_to_an_entry_is_refused(junk, at, byte):
    d = bytes(range(32))
    good = cache.encode(d, RET_ALLOW * 8, 1, ["w"])
    assert cache.parse(junk, d, MASK) is None or junk == good
    if at < len(good) and good[at] != byte:
        damaged = good[:at] + bytes([byte]) + good[at + 1:]
        assert cache.parse(damaged, d, MASK) is None
    for cut in (at % len(good), len(good) - 1):
        assert cache.parse(good[:cut], d, MASK) is None
    assert cache.parse(good + junk[:1], d, MASK) is None or not junk


# -- bounds and concurrency ------------------------------------------------------------------

def test_the_cache_keeps_at_most_max_entries_evicting_the_least_recently_used(tmp_path):
    root = str(tmp_path)
    digests = [bytes([i]) * 32 for i in range(cache.MAX_ENTRIES + 5)]
    for age, d in enumerate(digests):
        assert cache.store(root, d, RET_ALLOW, 0, [])
        os.utime(os.path.join(cache_dir(root), d.hex()), ns=(age * 10 ** 9, age * 10 ** 9))
    names = set(os.listdir(cache_dir(root)))
    assert len(names) == cache.MAX_ENTRIES
    assert names == {d.hex() for d in digests[-cache.MAX_ENTRIES:]}   # the oldest 5 went
    oldest = digests[5]
    assert cache.load(root, oldest, MASK) is not None              # used: now the newest
    assert cache.store(root, b"\xee" * 32, RET_ALLOW, 0, [])
    names = set(os.listdir(cache_dir(root)))
    assert len(names) == cache.MAX_ENTRIES
    assert oldest.hex() in names and digests[6].hex() not in names


def test_a_stream_of_distinct_profiles_stays_bounded(tmp_path):
    for n in range(cache.MAX_ENTRIES + 8):
        config = deny_mkdir(n + 1)
        assert seccomp.compile(config, state_root=str(tmp_path)).bpf
    assert len(os.listdir(cache_dir(str(tmp_path)))) == cache.MAX_ENTRIES


def _race(root, digest, rounds, queue):
    bad = 0
    for i in range(rounds):
        cache.store(root, digest, RET_ALLOW * 64, 0, [])
        entry = cache.load(root, digest, MASK)
        if entry is None or entry.bpf != RET_ALLOW * 64:
            bad += 1
    queue.put(bad)


def test_concurrent_writers_and_readers_see_whole_entries(tmp_path):
    root, digest = str(tmp_path), b"\x42" * 32
    queue = multiprocessing.get_context("fork").SimpleQueue()
    procs = [multiprocessing.get_context("fork").Process(
        target=_race, args=(root, digest, 40, queue)) for _ in range(4)]
    for p in procs:
        p.start()
    try:
        assert [queue.get() for _ in procs] == [0] * len(procs)
    finally:
        for p in procs:
            p.join(30)
            if p.exitcode is None:
                p.kill()
                p.join()
    assert os.listdir(cache_dir(root)) == [digest.hex()]   # no temporary file left


# -- real containers: the kernel gets the cached program, never a hostile one ----------------

in_containers = pytest.mark.usefixtures("private_mount_ns")

SCRIPT = "grep '^Seccomp:' /proc/self/status; mkdir /tmp/x; echo rc=$?"
CONFIG = deny_mkdir(errno.EXDEV)


@pytest.fixture
def pyrunc_root(tmp_path, pyrunc_bin):
    """A state root that exists (the cache never makes one)."""
    root = str(tmp_path / "state")
    os.mkdir(root, 0o711)
    yield root
    if os.path.isdir(root):
        for cid in os.listdir(root):
            if cid != cache.DIR_NAME:
                subprocess.run([pyrunc_bin, "--root", root, "delete", "--force", cid],
                               capture_output=True)


@pytest.fixture
def run_container(make_bundle, pyrunc_bin, pyrunc_root):
    def change(spec):
        spec["mounts"] = [m for m in spec["mounts"] if m["type"] != "cgroup"]
        spec["linux"]["seccomp"] = CONFIG
    bundle = make_bundle(("sh", "-c", SCRIPT), mutate=change)

    def run():
        """``pyrunc run``: (status, stdout, stderr)."""
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            proc = subprocess.run([pyrunc_bin, "--root", pyrunc_root, "run", "--bundle",
                                   bundle, unique_id("scc")], stdin=subprocess.DEVNULL,
                                  stdout=out, stderr=err, timeout=60)
            out.seek(0)
            err.seek(0)
            return proc.returncode, out.read().decode(), err.read().decode()
    return run


@in_containers
def test_a_container_created_from_the_cache_gets_the_filter(run_container, pyrunc_root):
    status, out, err = run_container()            # a miss: compiled and stored
    assert (status, out) == (0, "Seccomp:\t2\nrc=1\n"), err
    assert "Invalid cross-device link" in err
    assert_sane(pyrunc_root, CONFIG)
    # The entry now holds another program (ENOTTY for mkdir), with a good checksum: the next
    # container gets exactly what the cache holds.
    other = seccomp.compile(deny_mkdir(errno.ENOTTY))
    with open(entry_path(pyrunc_root, CONFIG), "wb") as f:
        f.write(cache.encode(digest_of(CONFIG), other.bpf, other.flags, []))
    status, out, err = run_container()
    assert (status, out) == (0, "Seccomp:\t2\nrc=1\n"), err
    assert "Inappropriate ioctl for device" in err and "cross-device" not in err


def _write(path, data, mode=0o600):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    os.write(fd, data)
    os.close(fd)
    os.chmod(path, mode)


def _allowing(config):
    """A well-formed entry for ``config`` whose program allows everything: loaded, it would
    let mkdir succeed."""
    return cache.encode(digest_of(config), RET_ALLOW, 0, [])


def _plant_entry(name):
    """Each hostile state of the cache for CONFIG, made under ``root`` (``tmp``: elsewhere on
    the same filesystem)."""
    def plant(root, tmp):
        d = cache_dir(root)
        path = entry_path(root, CONFIG)
        good = _allowing(CONFIG)
        if name == "dir-symlink":
            os.makedirs(os.path.join(tmp, "elsewhere"), 0o700)
            _write(os.path.join(tmp, "elsewhere", os.path.basename(path)), good)
            os.symlink(os.path.join(tmp, "elsewhere"), d)
            return
        if name == "dir-file":
            _write(d, good)
            return
        os.makedirs(d, 0o700, exist_ok=True)
        if name == "dir-other-owner":
            _write(path, good)
            os.chown(d, NOBODY, NOBODY)
        elif name == "dir-lax-mode":
            _write(path, good)
            os.chmod(d, 0o777)
        elif name == "checksum":
            _write(path, good[:cache.HEADER.size] + bytes(32) + good[cache.START:])
        elif name == "truncated":
            _write(path, cache.encode(digest_of(CONFIG), RET_ALLOW * 4, 0, [])[:-8])
        elif name == "trailing":
            _write(path, good + RET_ALLOW)
        elif name == "oversized":
            _write(path, good + b"\0" * cache.MAX_FILE)
        elif name == "too-many-insns":
            _write(path, forge(digest_of(CONFIG), RET_ALLOW * (cache.BPF_MAXINSNS + 1)))
        elif name == "partial-insn":
            _write(path, forge(digest_of(CONFIG), RET_ALLOW + b"\0\0\0\0"))
        elif name == "wrong-key":
            _write(path, cache.encode(digest_of(deny_mkdir(1)), RET_ALLOW, 0, []))
        elif name == "listener-flag":
            _write(path, forge(digest_of(CONFIG), RET_ALLOW, flags=1 << 3))
        elif name == "symlink":
            _write(os.path.join(tmp, "target"), good)
            os.symlink(os.path.join(tmp, "target"), path)
        elif name == "other-owner":
            _write(path, good)
            os.chown(path, NOBODY, NOBODY)
        elif name == "group-writable":
            _write(path, good, 0o620)
        elif name == "hardlink":
            _write(path, good)
            os.link(path, os.path.join(tmp, "link"))
        elif name == "fifo":
            os.mkfifo(path, 0o600)
        elif name == "directory":
            os.mkdir(path, 0o700)
        else:
            raise AssertionError(name)
    return plant


HOSTILE = ["checksum", "truncated", "trailing", "oversized", "too-many-insns", "partial-insn",
           "wrong-key", "listener-flag", "symlink", "other-owner", "group-writable",
           "hardlink", "fifo", "directory", "dir-symlink", "dir-file", "dir-lax-mode",
           "dir-other-owner"]


@in_containers
@pytest.mark.parametrize("state", HOSTILE)
def test_a_hostile_cache_state_is_never_loaded(state, run_container, pyrunc_root, tmp_path):
    tmp = str(tmp_path / "outside")
    os.mkdir(tmp)
    _plant_entry(state)(pyrunc_root, tmp)
    status, out, err = run_container()
    # the program the kernel enforces is the compiled one: mkdir fails with EXDEV
    assert (status, out) == (0, "Seccomp:\t2\nrc=1\n"), err
    assert "Invalid cross-device link" in err
    if state == "dir-other-owner":   # not ours: neither used nor written
        assert os.stat(cache_dir(pyrunc_root)).st_uid == NOBODY
        assert os.listdir(cache_dir(pyrunc_root)) == [os.path.basename(
            entry_path(pyrunc_root, CONFIG))]
        with open(entry_path(pyrunc_root, CONFIG), "rb") as f:
            assert f.read() == _allowing(CONFIG)
        return
    assert_sane(pyrunc_root, CONFIG)       # replaced by the fresh program
    if state == "dir-symlink":             # what the symlink pointed to is left alone
        assert os.listdir(os.path.join(tmp, "elsewhere")) == [
            os.path.basename(entry_path(pyrunc_root, CONFIG))]
    if state == "symlink":
        with open(os.path.join(tmp, "target"), "rb") as f:
            assert f.read() == _allowing(CONFIG)
    status, out, err = run_container()     # and the next create is a good hit
    assert (status, out) == (0, "Seccomp:\t2\nrc=1\n"), err
    assert "Invalid cross-device link" in err


@in_containers
def test_exec_gets_the_cached_program_too(make_bundle, pyrunc_bin, pyrunc_root):
    def change(spec):
        spec["mounts"] = [m for m in spec["mounts"] if m["type"] != "cgroup"]
        spec["linux"]["seccomp"] = CONFIG
    bundle = make_bundle(("sleep", "100"), mutate=change)
    cid = unique_id("sce")
    pyrunc = [pyrunc_bin, "--root", pyrunc_root]
    with tempfile.TemporaryFile() as err:       # a file: the created init keeps its stderr
        subprocess.run(pyrunc + ["create", "--bundle", bundle, cid], check=True,
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                       timeout=60)
    # the entry now holds another program (ENOTTY): exec's process gets what the cache holds
    other = seccomp.compile(deny_mkdir(errno.ENOTTY))
    with open(entry_path(pyrunc_root, CONFIG), "wb") as f:
        f.write(cache.encode(digest_of(CONFIG), other.bpf, other.flags, []))
    subprocess.run(pyrunc + ["start", cid], check=True, timeout=60)
    r = subprocess.run(pyrunc + ["exec", cid, "sh", "-c", SCRIPT], stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=60)
    assert (r.returncode, r.stdout.decode()) == (0, "Seccomp:\t2\nrc=1\n"), r.stderr
    assert b"Inappropriate ioctl for device" in r.stderr
