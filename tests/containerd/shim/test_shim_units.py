"""The shim's pieces that work alone, each built with a small C driver (native/) under
AddressSanitizer and UndefinedBehaviorSanitizer (which abort on the first finding, leaks
included), fed from hypothesis:

- JSON escaping: Python's json decodes the output, to the input for any text, and for any bytes
  to what Go's encoding/json (Docker's json-file) makes of them: each byte of invalid UTF-8 is
  one U+FFFD.
- the request parser: any bytes a client may send, in reads of any size, never crash, leak or
  hang it, and each request line is parsed as the protocol (docs/containerd.md, "The shim
  protocol") says, against a model of C's strtok/atoi written here.
- the json-file log: rotation keeps whole lines, the newest ones, in at most max-file files of
  at most max-size bytes, rotating only when the next line would not fit; a write the kernel
  refuses (RLIMIT_FSIZE, as a full disk) drops the line whole and counts it.
"""
import json
import os
import struct
import subprocess

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import go_json_text

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
NATIVE = os.path.join(TOP, "native")
PARTS = ["util.c", "json.c", "logfile.c", "request.c"]
SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all"]
RUN_ENV = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:exitcode=99",
               UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:exitcode=98")
FUZZ = settings(max_examples=200, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.fixture(scope="session")
def drivers(tmp_path_factory):
    """{name: path} of the drivers, compiled with the sanitizers from the shim's sources."""
    out = tmp_path_factory.mktemp("shim-drivers")
    probe = out / "probe.c"
    probe.write_text("int main(void) { return 0; }\n")
    try:
        check = subprocess.run(["gcc", *SANITIZE, "-o", str(out / "probe"), str(probe)],
                               capture_output=True, text=True)
    except FileNotFoundError:
        pytest.skip("gcc is not installed")
    if check.returncode != 0:
        pytest.skip("gcc cannot build with -fsanitize=address,undefined here: "
                    + check.stderr.strip()[-200:])
    built = {}
    for name in ("escape", "request", "log"):
        target = str(out / ("%s_driver" % name))
        subprocess.run(["gcc", "-O1", "-g", *SANITIZE, "-Wall", "-Werror", "-I", NATIVE,
                        "-I", os.path.join(HERE, "native"), "-o", target,
                        os.path.join(HERE, "native", "%s_driver.c" % name)]
                       + [os.path.join(NATIVE, "shim", p) for p in PARTS], check=True)
        built[name] = target
    return built


def records(items):
    return b"".join(struct.pack(">I", len(x)) + x for x in items)


def run(driver, args, items, timeout=30, **kw):
    """Run a driver on records; its stdout. A sanitizer finding, a crash or a hang fails."""
    proc = subprocess.run([driver, *args], input=records(items), capture_output=True,
                          timeout=timeout, env=RUN_ENV, **kw)
    assert proc.returncode == 0 and not proc.stderr, (
        "driver failed (exit %d): %s" % (proc.returncode, proc.stderr.decode(errors="replace")))
    return proc.stdout


# ---------------------------------------------------------------- JSON escaping

def escaped(drivers, items):
    lines = run(drivers["escape"], [], items).split(b"\n")
    assert lines[-1] == b""
    return [json.loads(line.decode("utf-8")) for line in lines[:-1]]


@FUZZ
@given(items=st.lists(st.text(), min_size=1, max_size=20))
def test_escape_any_text_round_trips(drivers, items):
    assert escaped(drivers, [t.encode("utf-8") for t in items]) == items


# sequences at the edges of UTF-8: a lead byte (or a control, a quote, a stray continuation)
# followed by up to three bytes around the continuation range's bounds
LEADS = [0x00, 0x0a, 0x1f, 0x22, 0x5c, 0x61, 0x7f, 0x80, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf, 0xe0,
         0xe1, 0xed, 0xef, 0xf0, 0xf1, 0xf4, 0xf5, 0xff]
TRAILS = [0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0]
edge_bytes = st.lists(st.tuples(st.sampled_from(LEADS), st.lists(st.sampled_from(TRAILS),
                                                                 max_size=3)),
                      max_size=20).map(lambda seqs: b"".join(bytes([a, *t]) for a, t in seqs))
any_bytes = st.one_of(st.binary(max_size=300), edge_bytes)


@FUZZ
@given(items=st.lists(any_bytes, min_size=1, max_size=20))
def test_escape_any_bytes_as_go_would(drivers, items):
    assert escaped(drivers, items) == [go_json_text(b) for b in items]


@pytest.mark.parametrize("data, text", [
    (b'"\\\n\r\t\x00\x1f\x7f', '"\\\n\r\t\x00\x1f\x7f'),
    (b"\xed\xa0\x80", "\ufffd" * 3),            # a UTF-16 surrogate is not UTF-8
    (b"\xc0\xaf", "\ufffd" * 2),                # overlong '/'
    (b"\xe0\x80\xaf", "\ufffd" * 3),            # overlong '/' in three bytes
    (b"\xf0\x80\x80\xaf", "\ufffd" * 4),        # and in four
    (b"\xf4\x90\x80\x80", "\ufffd" * 4),        # above U+10FFFF
    (b"\xe2\x82", "\ufffd" * 2),                # truncated at the end
    ("\u20ac\U0001f600".encode(), "\u20ac\U0001f600"),
])
def test_escape_examples(drivers, data, text):
    assert escaped(drivers, [data]) == [text]


# ---------------------------------------------------------------- the request parser

SPACES = b" \t\n\v\f\r"


class Strtok:
    """C's strtok_r on a byte string: successive tokens with the delimiters given."""

    def __init__(self, s: bytes):
        self.s, self.pos = s, 0

    def next(self, delims: bytes):
        s, i = self.s, self.pos
        while i < len(s) and s[i] in delims:
            i += 1
        if i >= len(s):
            self.pos = len(s)
            return None
        j = i
        while j < len(s) and s[j] not in delims:
            j += 1
        self.pos = j + 1 if j < len(s) else len(s)
        return s[i:j]


def atoi(s: bytes) -> int:
    """glibc's atoi: (int) strtol(s, NULL, 10), strtol clamping to a 64-bit long."""
    i = 0
    while i < len(s) and s[i] in SPACES:
        i += 1
    sign = 1
    if i < len(s) and s[i] in b"+-":
        sign = -1 if s[i:i + 1] == b"-" else 1
        i += 1
    j = i
    while j < len(s) and s[j:j + 1].isdigit():
        j += 1
    v = max(-2 ** 63, min(2 ** 63 - 1, sign * int(s[i:j] or b"0")))
    v &= 0xffffffff
    return v - 2 ** 32 if v >= 2 ** 31 else v


def hx(s):
    if s is None:
        return "-"
    return s.hex() if s else "="


def parsed(kind, name, arg=None, signal=None, signo=0, all_=0, cols=0, rows=0, exec_id=None,
           process=None, tty=0, stdin=0, attach=0):
    return "R %s %s %s %s %d %d %d %d %s %s %d %d %d" % (
        kind, hx(name), hx(arg), hx(signal), signo, all_, cols, rows, hx(exec_id),
        hx(process), tty, stdin, attach)


def refused(message: bytes) -> str:
    return "E " + hx(message)


KINDS = ["state", "start", "kill", "pause", "resume", "wait", "wait-exec", "resize", "attach",
         "exec", "delete", "collect"]
ID_CHARS = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-"


def model_request(line: bytes) -> str:
    """What the protocol says of one request line (the line ends at a NUL, as a C string)."""
    line = line.split(b"\0", 1)[0]
    t = Strtok(line)
    cmd = t.next(b" ")
    rest = t.next(b"") if cmd is not None else None
    if cmd is None:
        return refused(b"empty request")
    kind = cmd.decode("latin-1")
    if kind not in KINDS:
        return refused(b"unknown request " + cmd)
    if kind == "kill":
        return model_kill(cmd, rest)
    if kind == "resize":
        return model_resize(cmd, rest)
    if kind == "exec":
        return model_exec(cmd, rest)
    if kind in ("wait-exec", "attach"):
        return parsed(kind, cmd, arg=rest)
    if kind == "start" and rest is not None:
        if rest != b"by-client":
            return refused(b"start: unknown option " + rest)
        return parsed(kind, cmd, arg=rest)
    return parsed(kind, cmd)


def model_kill(cmd, rest):
    t = Strtok(rest or b"")
    sig = t.next(b" ")
    every = t.next(b" ") if sig is not None else None
    signo = atoi(sig) if sig is not None else 0
    if not 0 < signo < 65:
        return refused(b"kill: bad signal number")
    return parsed("kill", cmd, signal=sig, signo=signo, all_=int(every == b"all"))


def model_resize(cmd, rest):
    t = Strtok(rest or b"")
    w = t.next(b" ")
    h = t.next(b" ") if w is not None else None
    exec_id = t.next(b" ") if h is not None else None
    if w is None or h is None or atoi(w) <= 0 or atoi(h) <= 0:
        return refused(b"usage: resize COLUMNS ROWS [EXEC_ID]")
    return parsed("resize", cmd, cols=atoi(w), rows=atoi(h), exec_id=exec_id)


def model_exec(cmd, rest):
    t = Strtok(rest or b"")
    exec_id = t.next(b" ") if rest is not None else None
    options = t.next(b" ") if exec_id is not None else None
    process = t.next(b"") if options is not None else None
    if (exec_id is None or process is None or len(exec_id) > 64
            or any(c not in ID_CHARS for c in exec_id)):
        return refused(b"usage: exec EXEC_ID OPTIONS PROCESS_JSON_PATH")
    flags = {"tty": 0, "stdin": 0, "attach": 0}
    o = Strtok(options)
    while (word := o.next(b",")) is not None:
        if word.decode("latin-1") in flags:
            flags[word.decode("latin-1")] = 1
        elif word != b"-":
            return refused(b"exec: unknown option " + word)
    return parsed("exec", cmd, exec_id=exec_id, process=process, **flags)


def model_connection(data: bytes, chunk: int) -> list:
    """The shim's reading of one connection, in reads of chunk bytes: each complete line is a
    request; a line of 4096 bytes or more, or more than 8192 bytes without a newline, is
    refused as too long and ends the connection."""
    out, pending = [], b""
    for at in range(0, len(data), chunk):
        pending += data[at:at + chunk]
        while b"\n" in pending:
            line, rest = pending.split(b"\n", 1)
            if len(line) >= 4096:
                return out + ["T", "."]
            out.append(model_request(line))
            pending = rest
        if len(pending) > 8192:
            return out + ["T", "."]
    return out + ["."]


def parse_connections(drivers, conns, chunk):
    out = run(drivers["request"], [str(chunk)], conns).decode("ascii")
    return out.splitlines()


WORDS = [w.encode() for w in KINDS] + [b"all", b"tty", b"stdin", b"attach", b"-", b"tty,stdin",
                                      b"9", b"0", b"65", b"-1", b"+15", b" 7", b"4294967305",
                                      b"99999999999999999999", b"80", b"x" * 65, b"a.b_c-d",
                                      b"/p.json", b"", b"\0", b"\r", b"\t", b"\xff\xfe", b","]
tokens = st.one_of(st.sampled_from(WORDS), st.binary(max_size=12))
request_lines = st.lists(tokens, max_size=6).map(lambda ws: b" ".join(ws))
connections = st.one_of(
    st.lists(request_lines, max_size=8).map(lambda ls: b"\n".join(ls) + b"\n"),
    st.lists(request_lines, max_size=8).map(lambda ls: b"\n".join(ls)),
    st.binary(max_size=600),
    st.builds(lambda n, tail: b"x" * n + tail, st.integers(4000, 9000),
              st.sampled_from([b"", b"\n", b"\nstate\n"])),
)


@FUZZ
@given(conns=st.lists(connections, min_size=1, max_size=8),
       chunk=st.one_of(st.sampled_from([4096, 1]), st.integers(1, 5000)))
def test_request_parser_fuzzed(drivers, conns, chunk):
    want = [x for c in conns for x in model_connection(c, chunk)]
    assert parse_connections(drivers, conns, chunk) == want


@pytest.mark.parametrize("line, want", [
    (b"state", parsed("state", b"state")),
    (b"  kill 9 all", parsed("kill", b"kill", signal=b"9", signo=9, all_=1)),
    (b"kill 9 none", parsed("kill", b"kill", signal=b"9", signo=9)),
    (b"kill 65", refused(b"kill: bad signal number")),
    (b"kill", refused(b"kill: bad signal number")),
    (b"resize 80 24 e1", parsed("resize", b"resize", cols=80, rows=24, exec_id=b"e1")),
    (b"resize 80", refused(b"usage: resize COLUMNS ROWS [EXEC_ID]")),
    (b"exec e1 tty,attach /p.json",
     parsed("exec", b"exec", exec_id=b"e1", process=b"/p.json", tty=1, attach=1)),
    (b"exec e1 - /a b", parsed("exec", b"exec", exec_id=b"e1", process=b"/a b")),
    (b"exec e1 bogus /p.json", refused(b"exec: unknown option bogus")),
    (b"exec e/1 - /p.json", refused(b"usage: exec EXEC_ID OPTIONS PROCESS_JSON_PATH")),
    (b"start", parsed("start", b"start")),
    (b"start by-client", parsed("start", b"start", arg=b"by-client")),
    (b"start by-client now", refused(b"start: unknown option by-client now")),
    (b"start now", refused(b"start: unknown option now")),
    (b"attach", parsed("attach", b"attach")),
    (b"wait-exec e1", parsed("wait-exec", b"wait-exec", arg=b"e1")),
    (b"", refused(b"empty request")),
    (b"sta\0te", refused(b"unknown request sta")),
    (b"frobnicate now", refused(b"unknown request frobnicate")),
])
def test_request_examples(drivers, line, want):
    assert model_request(line) == want       # the model says what the protocol says
    assert parse_connections(drivers, [line + b"\n"], 4096) == [want, "."]


def test_request_too_long(drivers):
    assert parse_connections(drivers, [b"x" * 4095 + b"\nstate\n"], 4096) == [
        refused(b"unknown request " + b"x" * 4095), parsed("state", b"state"), "."]
    assert parse_connections(drivers, [b"x" * 4096 + b"\nstate\n"], 4096) == ["T", "."]
    assert parse_connections(drivers, [b"x" * 8193], 4096) == ["T", "."]


# ---------------------------------------------------------------- the json-file log

def log_files(path, max_file):
    """The log's files, oldest first, and every file named like it (to find strays)."""
    folder, base = os.path.split(path)
    names = sorted(n for n in os.listdir(folder) if n == base or n.startswith(base + "."))
    ordered = ["%s.%d" % (path, k) for k in range(max_file - 1, 0, -1)] + [path]
    contents = []
    for name in ordered:
        if os.path.exists(name):
            with open(name, "rb") as f:
                contents.append(f.read())
    return contents, names


def split_lines(data):
    parts = data.split(b"\n")
    assert parts[-1] == b"", "a file ends with a partial line"
    return [p + b"\n" for p in parts[:-1]]


log_lines = st.lists(st.binary(max_size=120).map(lambda b: b.replace(b"\n", b"") + b"\n"),
                     min_size=1, max_size=60)


@FUZZ
@given(lines=log_lines, max_size=st.one_of(st.just(0), st.integers(1, 1500)),
       max_file=st.integers(1, 4), split=st.integers(0, 60))
def test_log_rotation(drivers, tmp_path_factory, lines, max_size, max_file, split):
    path = str(tmp_path_factory.mktemp("log") / "c-json.log")
    # two runs: the second opens the file the first left, as a restarted writer would
    for part in (lines[:split], lines[split:]):
        assert run(drivers["log"], [path, str(max_size), str(max_file)], part) == b"0\n"
    files, names = log_files(path, max_file)
    allowed = {os.path.basename(path)} | {
        "%s.%d" % (os.path.basename(path), k) for k in range(1, max_file)}
    assert set(names) <= allowed                    # never more than max-file files
    kept = [split_lines(f) for f in files]
    flat = [x for f in kept for x in f]
    assert flat and flat == lines[len(lines) - len(flat):]    # the newest whole lines
    if max_size == 0:
        assert flat == lines                        # no limit: one file, everything
    for f, data in zip(kept, files):
        assert len(data) <= max_size or len(f) == 1 or max_size == 0
    for older, newer in zip(kept, kept[1:]):        # rotated only when the next did not fit
        assert sum(map(len, older)) + len(newer[0]) > max_size
    if len(flat) < len(lines) and max_file > 1:     # a line dropped by rotation: files full
        assert len(files) == max_file


@FUZZ
@given(lines=log_lines, limit=st.integers(0, 3000))
def test_log_write_refused_drops_whole_lines(drivers, tmp_path_factory, lines, limit):
    path = str(tmp_path_factory.mktemp("log") / "c-json.log")
    out = run(drivers["log"], [path, "0", "1", str(limit)], lines)
    with open(path, "rb") as f:
        data = f.read()
    kept, size = [], 0          # the kernel fails any write past RLIMIT_FSIZE
    for line in lines:
        if size + len(line) <= limit:
            kept.append(line)
            size += len(line)
    assert split_lines(data) == kept
    assert int(out) == len(lines) - len(kept)
