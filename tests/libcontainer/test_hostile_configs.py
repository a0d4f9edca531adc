"""Hostile config.json documents: every refusal is one line of the right category.

A hypothesis fuzzer builds configs from the model's own declarations (every field the runtime
reads, at any depth), fills them with hostile values (wrong types, numbers beyond the field's
range and the C types behind it, negative numbers, NUL bytes, lone surrogates, huge strings,
deep nesting, unknown keys) and puts them in a valid bundle. Each document goes through all
that ``pyrunc create`` does before it spawns (load, Plan, cgroup planning, the native core's
``struct core_config``), and a sample through ``pyrunc create`` itself. The outcome must be a
container (then deleted) or a refusal: ``InvalidArgument`` (exit 2), ``Unavailable`` (7) for
an unsupported feature, or ``NotFound`` (3) for a named file that is missing; one line, never a
traceback nor "internal error", nothing left behind.

``CORPUS`` keeps the documents the fuzzer found failing, as regression cases.
"""
import copy
import json
import os
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyrunc.errors import InvalidArgument, NotFound, PyruncError, Unavailable
from pyrunc.containerd.runtime import spec as runtime_spec
from pyrunc.libcontainer.ocispec import fields as F
from pyrunc.libcontainer.ocispec import spec as S
from pyrunc.libcontainer.seccomp import cache as seccomp_cache

from support import unique_id

ALLOWED = (InvalidArgument, Unavailable, NotFound)
EXIT_CODES = {0, InvalidArgument.exit_code, Unavailable.exit_code, NotFound.exit_code}


# -- the documents ----------------------------------------------------------------------------

HOSTILE_STRINGS = ["", "\0", "a\0b", "/\0/", "\ud800", "x\udfffy", "/", "..", "../../..",
                   "/proc/self/fd/0", "x" * 70000, "\n", "é", "\u202e", "$(id)", "-1", "%n%s"]
HOSTILE_NUMBERS = [0, -1, 1, 2 ** 31, 2 ** 31 - 1, -2 ** 31 - 1, 2 ** 32, 2 ** 32 - 1,
                   2 ** 63, -2 ** 63 - 1, 2 ** 64, -2 ** 64, 10 ** 30, 65535, 65536, 4096,
                   1048576, 1.5, -0.5, 1e300, -1e300, 2.0]


def deep(depth):
    """Stands for ``depth`` nested arrays, written into the JSON text by ``_encode`` (too deep
    for Python's json to write)."""
    return "@@deep:%d@@" % depth


DEEP = deep(100000)


def nested(depth, leaf=0):
    out = leaf
    for i in range(depth):
        out = [out] if i % 2 else {"k": out}
    return out


def hostile_scalar():
    return st.one_of(
        st.sampled_from(HOSTILE_STRINGS), st.sampled_from(HOSTILE_NUMBERS),
        st.integers(), st.floats(allow_nan=False), st.text(max_size=20),
        st.sampled_from([None, True, False, [], {}, [None], {"": None}, {"unknown": 1},
                         nested(50), nested(400), deep(960), DEEP]))


GOOD_STRINGS = ["/tmp", "/bin/true", "/dev/null", "x", "RLIMIT_NOFILE", "4KB", "rwm", "0",
                "a=b", "monotonic"]


def good_value(kind):
    """A well-formed value of ``kind`` (required keys present, types and ranges right)."""
    if isinstance(kind, F.Bool):
        return st.booleans()
    if isinstance(kind, F.Int):
        return st.one_of(st.sampled_from([kind.low, kind.high, max(kind.low, 0),
                                          min(kind.high, 1)]),
                         st.integers(kind.low, kind.high))
    if isinstance(kind, F.Str):
        options = list(kind.choices or GOOD_STRINGS)
        if kind.matches is not None:
            options = [o for o in options if kind.matches(o)]
        return st.sampled_from(options)
    if isinstance(kind, F.Array):
        return st.lists(good_value(kind.item), min_size=1 if kind.non_empty else 0,
                        max_size=2)
    if isinstance(kind, F.Map):
        return st.dictionaries(st.sampled_from(["k", "monotonic", "net.ipv4.ip_forward",
                                                "kernel.shmmax", "cpu.max"]),
                               good_value(kind.value), max_size=2)
    if isinstance(kind, F.Object):
        return good_object(kind.model)
    raise AssertionError(kind)


def good_object(model):
    @st.composite
    def build(draw):
        out = {}
        for key, _attr, kind in model._table:
            if key in model.required or draw(st.integers(0, 4)) == 0:
                out[key] = draw(st.deferred(lambda kind=kind: good_value(kind)))
        return out
    return build()


def hostile_value(kind):
    """A value for a field of ``kind``: a well-formed one with edge values, or a hostile one."""
    edges = []
    if isinstance(kind, F.Int):
        edges = [kind.low - 1, kind.high + 1, -1, 0, 2 ** 16, 2 ** 32, 2 ** 63, 2 ** 64,
                 kind.low, kind.high]
    elif isinstance(kind, F.Str):
        edges = HOSTILE_STRINGS + [c + "\0" for c in (kind.choices or ())[:1]]
    elif isinstance(kind, (F.Array, F.Map)):
        inner = kind.item if isinstance(kind, F.Array) else kind.value
        if isinstance(kind, F.Array):
            return st.one_of(st.lists(hostile_value(inner), min_size=1, max_size=3),
                             hostile_scalar(), good_value(kind))
        return st.one_of(
            st.dictionaries(st.sampled_from(HOSTILE_STRINGS[:8]), good_value(inner),
                            min_size=1, max_size=2),
            st.dictionaries(st.sampled_from(["k"]), hostile_value(inner), min_size=1),
            hostile_scalar())
    elif isinstance(kind, F.Object):
        return st.one_of(good_value(kind), hostile_scalar())
    return st.one_of(st.sampled_from(edges or [None]), hostile_scalar(), good_value(kind))


def field_paths(model, prefix=(), depth=0):
    """Every field the model declares as ((key, kind) steps from the top), arrays and maps
    entered at one element."""
    out = []
    for key, _attr, kind in model._table:
        path = prefix + ((key, kind),)
        out.append(path)
        if depth > 5:
            continue
        inner = kind
        if isinstance(inner, F.Array):
            path, inner = path + ((0, inner.item),), inner.item
            out.append(path)
        elif isinstance(inner, F.Map):
            path, inner = path + (("k", inner.value),), inner.value
            out.append(path)
        if isinstance(inner, F.Object):
            out.extend(field_paths(inner.model, path, depth + 1))
    return out


FIELDS = field_paths(S.Spec)


def base_spec():
    spec = runtime_spec.example_spec(args=["true"], terminal=False)
    spec["hooks"] = {"prestart": [{"path": "/bin/true"}]}
    spec["linux"]["resources"] = {"memory": {"limit": 1 << 30}, "pids": {"limit": 100}}
    return spec


def _container(kind):
    return list if isinstance(kind, F.Array) else dict


@st.composite
def hostile_docs(draw):
    """The base spec with one to three fields set to hostile values; what is missing on the
    way to a field is made well-formed, so the hostile value is what the runtime meets."""
    doc = base_spec()
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(FIELDS))
        node = doc
        for key, kind in path[:-1]:
            want = _container(kind)
            if isinstance(node, list):
                if not node or not isinstance(node[0], want):
                    node[:1] = [draw(good_value(kind))]
                if want is list and not node[0]:
                    node[0].append(draw(good_value(kind.item)))
                node = node[0]
            else:
                if not isinstance(node.get(key), want):
                    node[key] = draw(good_value(kind))
                if want is list and not node[key]:
                    node[key].append(draw(good_value(kind.item)))
                node = node[key]
        key, kind = path[-1]
        value = draw(hostile_value(kind))
        if isinstance(node, list):
            node[:1] = [value]
        else:
            node[key] = value
    return doc


# -- the checks ---------------------------------------------------------------------------------

def _encode(doc):
    """The document as config.json bytes (lone surrogates written as JSON escapes)."""
    text = json.dumps(doc)
    while '"@@deep:' in text:
        start = text.index('"@@deep:')
        end = text.index('@@"', start + 8)
        depth = int(text[start + 8:end])
        text = text[:start] + "[" * depth + "]" * depth + text[end + 3:]
    return text.encode()


def prepare(bundle_dir, data):
    """Everything ``pyrunc create`` does before it spawns, in this process: the config, the
    Plan, the cgroup planning and the native core's struct. Returns the exception or None."""
    from pyrunc.libcontainer import process
    from pyrunc.libcontainer.container import Factory
    with open(os.path.join(bundle_dir, "config.json"), "wb") as f:
        f.write(data)
    try:
        plan = Factory(root="/nonexistent/state")._prepare("hostile", bundle_dir)[2]
        cfg, fds = process._Config(), []
        try:
            process._build(plan, cfg, fds, plan.namespaces)
        finally:
            for fd in fds:
                os.close(fd)
    except PyruncError as e:
        return e
    return None


def check_refusal(error, data):
    if error is None:
        return
    shown = data[:300]
    assert isinstance(error, ALLOWED), "%s: %s\n%s" % (type(error).__name__, error, shown)
    text = str(error)
    assert text and "\n" not in text and "\r" not in text, repr(text)
    assert len(text) < 2000, text[:300]
    if isinstance(error, NotFound):
        assert text.startswith("config.json: "), text


@pytest.fixture(scope="module")
def hostile_bundle(tmp_path_factory, busybox_rootfs):
    d = tmp_path_factory.mktemp("hostile")
    os.symlink(busybox_rootfs, str(d / "rootfs-link"))
    subprocess.run(["cp", "-al", busybox_rootfs, str(d / "rootfs")], check=True)
    return str(d)


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(doc=hostile_docs())
def test_fuzz_prepare(hostile_bundle, doc):
    data = _encode(doc)
    check_refusal(prepare(hostile_bundle, data), data)


# -- the corpus: documents that once ended in "internal error" --------------------------------

def _with(*changes):
    """The base spec with (json path, value) changes; missing objects are made."""
    doc = base_spec()
    for path, value in changes:
        node = doc
        for key in path[:-1]:
            if isinstance(node, list):
                node = node[key]
            else:
                node = node.setdefault(key, [] if isinstance(key, int) else {})
        node[path[-1]] = value
    return doc


def _device(**fields):
    return dict({"type": "c", "path": "/dev/x", "major": 1, "minor": 3}, **fields)


CORPUS = {
    # a device number beyond the C struct's unsigned int (OverflowError)
    "device-major-negative": (_with((("linux", "devices"), [_device(major=-1)])),
                              "linux.devices[0].major"),
    "device-major-huge": (_with((("linux", "devices"), [_device(major=2 ** 63 - 1)])),
                          "linux.devices[0].major"),
    "device-minor-huge": (_with((("linux", "devices"), [_device(minor=2 ** 32)])),
                          "linux.devices[0].minor"),
    # a console size beyond the pty's unsigned short (OverflowError)
    "console-height-huge": (_with((("process", "consoleSize"), {"height": 65536, "width": 80})),
                            "process.consoleSize.height"),
    # NUL and lone surrogates reaching os.path and the C strings (ValueError,
    # UnicodeEncodeError), or cut short silently by C
    "root-path-nul": (_with((("root", "path"), "rootfs\0x")), "root.path"),
    "root-path-surrogate": (_with((("root", "path"), "x\udfffy")), "root.path"),
    "mount-option-nul": (_with((("mounts", 0, "options"), ["nosuid\0,suid"])),
                         "mounts[0].options[0]"),
    "mount-source-nul": (_with((("mounts", 0, "source"), "proc\0x")), "mounts[0].source"),
    "mount-destination-nul": (_with((("mounts", 0, "destination"), "/proc\0/x")),
                              "mounts[0].destination"),
    "cgroups-path-surrogate": (_with((("linux", "cgroupsPath"), "/\ud800")),
                               "linux.cgroupsPath"),
    "hostname-nul": (_with((("hostname",), "a\0b")), "hostname"),
    "args-nul": (_with((("process", "args"), ["sh\0", "-c"])), "process.args[0]"),
    "env-nul": (_with((("process", "env"), ["A=b\0c"])), "process.env[0]"),
    "cwd-nul": (_with((("process", "cwd"), "/\0tmp")), "process.cwd"),
    "username-nul": (_with((("process", "user", "username"), "root\0")),
                     "process.user.username"),
    "hook-path-nul": (_with((("hooks", "prestart"), [{"path": "/bin/true\0x"}])),
                      "hooks.prestart[0].path"),
    "hook-arg-nul": (_with((("hooks", "poststop"), [{"path": "/bin/true", "args": ["\0"]}])),
                     "hooks.poststop[0].args[0]"),
    "sysctl-key-nul": (_with((("linux", "sysctl"), {"kernel.shm\0max": "1"})),
                       'linux.sysctl["kernel.shm\\u0000max"]'),
    "sysctl-value-nul": (_with((("linux", "sysctl"), {"kernel.shmmax": "1\0"})),
                         "linux.sysctl[\"kernel.shmmax\"]"),
    "masked-path-nul": (_with((("linux", "maskedPaths"), ["/proc\0"])),
                        "linux.maskedPaths[0]"),
    "rlimit-type-nul": (_with((("process", "rlimits"),
                               [{"type": "RLIMIT_NOFILE\0", "soft": 1, "hard": 1}])),
                        "process.rlimits[0].type"),
    "seccomp-syscall-nul": (_with((("linux", "seccomp"),
                                   {"defaultAction": "SCMP_ACT_ALLOW",
                                    "syscalls": [{"names": ["read\0x"],
                                                  "action": "SCMP_ACT_ERRNO"}]})),
                            "linux.seccomp.syscalls[0].names[0]"),
    "unified-key-nul": (_with((("linux", "resources", "unified"), {"cpu.max\0": "max"})),
                        "linux.resources.unified"),
    "namespace-path-nul": (_with((("linux", "namespaces"),
                                  [{"type": "network", "path": "/proc/1/ns/net\0"}])),
                           "linux.namespaces[0].path"),
    # too deep for the recursive walks after the decoder (RecursionError)
    "deep-unknown-key": (_with((("linux", "resources", "x"), deep(500))), "nested"),
    # a value quoted in a message 70000 characters long
    "long-capability": (_with((("process", "capabilities", "bounding"), ["X" * 70000])),
                        "process.capabilities.bounding[0]"),
}


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_corpus_prepare(hostile_bundle, name):
    doc, named = CORPUS[name]
    data = _encode(doc)
    error = prepare(hostile_bundle, data)
    assert error is not None, name
    check_refusal(error, data)
    assert named in str(error), str(error)


def test_huge_config_is_refused_before_it_is_decoded(private_mount_ns, pyrunc_bin, tmp_path):
    """A config.json of 64 MiB (one long string) is refused by its size: ``pyrunc create``
    reads at most the limit plus one byte (once it read, decoded and copied it all: 200 MiB
    and more)."""
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    with open(bundle / "config.json", "wb") as f:
        f.write(b'{"ociVersion": "')
        for _ in range(64):
            f.write(b"x" * (1 << 20))
        f.write(b'"}')
    probe = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:], "
             "capture_output=True, text=True); print(r.returncode, "
             "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); "
             "sys.stderr.write(r.stderr)")
    r = subprocess.run([sys.executable, "-c", probe, pyrunc_bin, "--root", str(tmp_path / "s"),
                        "create", "--bundle", str(bundle), unique_id()],
                       capture_output=True, text=True, timeout=120)
    code, max_rss_kib = map(int, r.stdout.split())
    assert code == InvalidArgument.exit_code and "larger than 8 MiB" in r.stderr, r.stderr
    assert max_rss_kib < 60 << 10, "pyrunc create used %d MiB" % (max_rss_kib >> 10)


def test_deep_config_is_refused_without_recursion(hostile_bundle):
    for depth in (101, 500, 990, 100000):
        data = b'{"ociVersion": "1", "x": ' + b"[" * depth + b"]" * depth + b"}"
        error = prepare(hostile_bundle, data)
        assert isinstance(error, InvalidArgument) and "nested" in str(error), (depth, error)



# -- through the pyrunc command ---------------------------------------------------------------

def pyrunc_create(pyrunc_bin, bundle_dir, data, root):
    """``pyrunc create`` of ``data``; returns (exit code, stderr). A container it made is
    deleted, and nothing may be left under ``root``."""
    with open(os.path.join(bundle_dir, "config.json"), "wb") as f:
        f.write(data)
    cid = unique_id("hostile")
    import tempfile
    with tempfile.TemporaryFile() as errfile:   # a file: the created init keeps its stderr
        r = subprocess.run([pyrunc_bin, "--root", root, "create", "--bundle", bundle_dir, cid],
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=errfile, timeout=60)
        errfile.seek(0)
        err = errfile.read().decode(errors="replace")
    if r.returncode == 0:
        subprocess.run([pyrunc_bin, "--root", root, "delete", "--force", cid], timeout=60,
                       check=True)
    # the compiled-seccomp cache stays by design (bounded; tests/libcontainer/test_seccomp_cache.py)
    left = [n for n in (os.listdir(root) if os.path.isdir(root) else [])
            if n != seccomp_cache.DIR_NAME]
    assert left == [], "left behind: %s (%s)" % (left, err)
    return r.returncode, err


def check_command_refusal(code, err):
    """Refused before anything ran: exit 2, 3 or 7. A config the checks pass may still fail
    while the container is set up (a mount the kernel refuses, a program not in PATH): exit 1,
    as with runc, with the failed step in one line (and maybe a hint), never "internal
    error"."""
    assert code in EXIT_CODES | {1}, (code, err)
    if code:
        lines = [line for line in err.splitlines() if not line.startswith("pyrunc: warning: ")]
        assert err.endswith("\n") and lines[0].startswith("pyrunc: "), err[:2000]
        assert len(lines) == 1 or (code == 1 and len(lines) == 2
                                   and lines[1].startswith("pyrunc: hint: ")), err[:2000]
        assert "internal error" not in err and "Traceback" not in err, err[:2000]
        assert len(err) < 2000, err[:300]


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_corpus_create(private_mount_ns, pyrunc_bin, hostile_bundle, tmp_path, name):
    code, err = pyrunc_create(pyrunc_bin, hostile_bundle, _encode(CORPUS[name][0]),
                              str(tmp_path / "state"))
    check_command_refusal(code, err)
    assert code == InvalidArgument.exit_code, err
    assert CORPUS[name][1] in err, err


def test_create_deep_in_resources(private_mount_ns, pyrunc_bin, hostile_bundle, tmp_path):
    """Nesting the decoder accepts, in a part of the config the runtime walks recursively
    (linux.resources) and writes into its state file: once a RecursionError."""
    for depth in (900, 980):
        data = _encode(_with((("linux", "resources", "x"), deep(depth))))
        code, err = pyrunc_create(pyrunc_bin, hostile_bundle, data, str(tmp_path / "state"))
        check_command_refusal(code, err)
        assert code == InvalidArgument.exit_code and "nested" in err, err


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(doc=hostile_docs())
def test_fuzz_create(private_mount_ns, pyrunc_bin, hostile_bundle, tmp_path_factory, doc):
    root = str(tmp_path_factory.mktemp("state"))
    code, err = pyrunc_create(pyrunc_bin, hostile_bundle, _encode(doc), root)
    check_command_refusal(code, err)


# -- pyrunc update --resources: the same object, from a file or stdin ------------------------

RESOURCES = [
    {"memory": {"limit": "64m"}},
    {"memory": {"limit": 2 ** 64}},
    {"pids": {"limit": None}},
    {"cpu": {"cpus": "0\0-1"}},
    {"blockIO": {"throttleReadBpsDevice": [{"major": 0, "minor": 0, "rate": 1}]}},
    {"devices": [{"allow": "yes"}]},
    {"unified": {"cpu.max\0": "max"}},
    {"hugepageLimits": [{"pageSize": "\ud800", "limit": 1}]},
    {"x": deep(500)},
    [],
    "memory",
]


def test_update_with_hostile_resources(private_mount_ns, pyrunc_bin, hostile_bundle, tmp_path):
    root = str(tmp_path / "state")
    with open(os.path.join(hostile_bundle, "config.json"), "wb") as f:
        f.write(_encode(_with((("process", "args"), ["sleep", "100"]))))
    cid = unique_id("hostile")
    subprocess.run([pyrunc_bin, "--root", root, "run", "-d", "--bundle", hostile_bundle, cid],
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, check=True, timeout=60)
    try:
        for resources in RESOURCES:
            path = tmp_path / "resources.json"
            path.write_bytes(_encode(resources))
            r = subprocess.run([pyrunc_bin, "--root", root, "update", "-r", str(path), cid],
                               capture_output=True, text=True, timeout=60)
            assert r.returncode == InvalidArgument.exit_code, (resources, r.stderr)
            check_command_refusal(r.returncode, r.stderr)
            r = subprocess.run([pyrunc_bin, "--root", root, "update", "-r", "-", cid],
                               input=_encode(resources), capture_output=True, timeout=60)
            assert r.returncode == InvalidArgument.exit_code, (resources, r.stderr)
    finally:
        subprocess.run([pyrunc_bin, "--root", root, "delete", "--force", cid], timeout=60)
