"""Seccomp: profiles compiled with libseccomp and loaded in a forked child, checked by effect."""
import array
import errno
import fcntl
import json
import os
import signal
import socket
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyrunc import errors
from pyrunc.libcontainer import seccomp
from pyrunc.libcontainer.ocispec import spec as model
from pyrunc.libcontainer.seccomp import enosys

from pyrunc._seccomp import lib  # noqa: E402 - a missing native module is a failure, not a skip

SIGSYS = signal.SIGSYS
SIGURG = signal.SIGURG


def profile(*rules, default="SCMP_ACT_ALLOW", **extra):
    return dict({"defaultAction": default, "syscalls": list(rules)}, **extra)


def rule(names, action="SCMP_ACT_ERRNO", **extra):
    return dict({"names": names, "action": action}, **extra)


def run_filtered(program, body, timeout=20):
    """Fork; the child loads ``program`` and returns body(listener_fd) as JSON.

    Returns (wait status, result). The child is killed if it outlives ``timeout`` seconds.
    """
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.close(r)
            flags = program.flags | (lib.SECCOMP_FILTER_FLAG_NEW_LISTENER if program.notify else 0)
            fd = seccomp.load_filter(program.bpf, flags)
            result = body(fd)
        except BaseException as e:  # report everything: this is a forked test child
            result, code = {"error": repr(e)}, 1
        os.write(w, json.dumps(result).encode())
        os._exit(code)
    os.close(w)
    signal.alarm(timeout)
    try:
        with os.fdopen(r, "rb") as f:
            data = f.read()
        _, status = os.waitpid(pid, 0)
    except BaseException:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        raise
    finally:
        signal.alarm(0)
    return status, (json.loads(data) if data else None)


def errno_of(call, *args):
    try:
        call(*args)
    except OSError as e:
        return e.errno
    return 0


def test_denied_syscall_returns_the_configured_errno(tmp_path):
    program = seccomp.compile(profile(rule(["mkdir", "mkdirat"], errnoRet=errno.EXDEV)))
    assert program.notify is False and program.flags == 0 and len(program.bpf) % 8 == 0
    (tmp_path / "other").mkdir()
    status, result = run_filtered(program, lambda _fd: [
        errno_of(os.mkdir, str(tmp_path / "x")), errno_of(os.rmdir, str(tmp_path / "other"))])
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, result
    assert result == [errno.EXDEV, 0]
    assert not (tmp_path / "x").exists() and not (tmp_path / "other").exists()


def test_errno_defaults_to_eperm(tmp_path):
    program = seccomp.compile(profile(rule(["mkdir", "mkdirat"])))
    status, result = run_filtered(program, lambda _fd: errno_of(os.mkdir, str(tmp_path / "x")))
    assert result == errno.EPERM


@pytest.mark.parametrize("action", ["SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
                                    "SCMP_ACT_KILL_THREAD"])
def test_kill_actions_kill_with_sigsys(action):
    program = seccomp.compile(profile(rule(["getppid"], action)))
    status, result = run_filtered(program, lambda _fd: os.getppid())
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == SIGSYS, (status, result)
    assert result is None


def test_trap_raises_sigsys():
    program = seccomp.compile(profile(rule(["getppid"], "SCMP_ACT_TRAP")))
    status, _ = run_filtered(program, lambda _fd: os.getppid())
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == SIGSYS


def kill_results(_fd):
    me, parent = os.getpid(), os.getppid()
    signal.signal(SIGURG, signal.SIG_IGN)
    return {"self0": errno_of(os.kill, me, 0), "parent0": errno_of(os.kill, parent, 0),
            "selfurg": errno_of(os.kill, me, SIGURG),
            "selfwinch": errno_of(os.kill, me, signal.SIGWINCH)}


def test_conditions_on_different_arguments_must_all_match():
    # pid != the test process (the child's parent) and signal == 0: only kill(self, 0) matches.
    program = seccomp.compile(profile(rule(["kill"], errnoRet=errno.EXDEV, args=[
        {"index": 0, "value": os.getpid(), "op": "SCMP_CMP_NE"},
        {"index": 1, "value": 0, "op": "SCMP_CMP_EQ"}])))
    status, result = run_filtered(program, kill_results)
    assert result == {"self0": errno.EXDEV, "parent0": 0, "selfurg": 0, "selfwinch": 0}


def test_conditions_on_the_same_argument_match_any():
    # runc's rule: several conditions on one index become one rule each (an OR).
    program = seccomp.compile(profile(rule(["kill"], errnoRet=errno.EXDEV, args=[
        {"index": 1, "value": 0, "op": "SCMP_CMP_EQ"},
        {"index": 1, "value": int(SIGURG), "op": "SCMP_CMP_EQ"}])))
    status, result = run_filtered(program, kill_results)
    assert result == {"self0": errno.EXDEV, "parent0": errno.EXDEV, "selfurg": errno.EXDEV,
                      "selfwinch": 0}


def test_masked_equal_and_ordering_operators():
    # odd signal numbers (mask 1 == 1) are denied: SIGURG (23) yes, SIGWINCH (28) and 0 no.
    program = seccomp.compile(profile(rule(["kill"], errnoRet=errno.EXDEV, args=[
        {"index": 1, "value": 1, "valueTwo": 1, "op": "SCMP_CMP_MASKED_EQ"}])))
    status, result = run_filtered(program, kill_results)
    assert result == {"self0": 0, "parent0": 0, "selfurg": errno.EXDEV, "selfwinch": 0}
    program = seccomp.compile(profile(rule(["kill"], errnoRet=errno.EXDEV, args=[
        {"index": 1, "value": 25, "op": "SCMP_CMP_GE"}])))
    status, result = run_filtered(program, kill_results)
    assert result == {"self0": 0, "parent0": 0, "selfurg": 0, "selfwinch": errno.EXDEV}


def test_unknown_syscall_is_skipped_with_a_warning(tmp_path, warnings_seen):
    program = seccomp.compile(profile(rule(["no_such_syscall", "mkdir", "mkdirat"],
                                           errnoRet=errno.EXDEV)))
    assert 'linux.seccomp.syscalls[0].names[0]: unknown syscall "no_such_syscall" skipped' \
        in "".join(warnings_seen)
    status, result = run_filtered(program, lambda _fd: errno_of(os.mkdir, str(tmp_path / "x")))
    assert result == errno.EXDEV


def ret_values(program):
    """The k of every BPF_RET|BPF_K instruction."""
    out = set()
    for code, _jt, _jf, k in struct.iter_unpack("=HBBI", program.bpf):
        if code == 0x06:
            out.add(k)
    return out


def test_default_errno_ret_and_rule_errno_ret_are_in_the_program():
    program = seccomp.compile(profile(rule(["mkdir"], "SCMP_ACT_ERRNO", errnoRet=33),
                                      rule(["rmdir"], "SCMP_ACT_TRACE", errnoRet=7),
                                      default="SCMP_ACT_ERRNO", defaultErrnoRet=38))
    rets = ret_values(program)
    assert {0x00050000 | 38, 0x00050000 | 33, 0x7FF00000 | 7} <= rets
    default_eperm = seccomp.compile(profile(rule(["mkdir"], "SCMP_ACT_ALLOW"),
                                            default="SCMP_ACT_ERRNO"))
    assert 0x00050000 | errno.EPERM in ret_values(default_eperm)


def test_rules_with_the_default_action_are_left_out():
    bare = seccomp.compile(profile())
    same = seccomp.compile(profile(rule(["mkdir"], "SCMP_ACT_ALLOW")))
    assert bare.bpf == same.bpf


def test_architectures_and_flags():
    one = seccomp.compile(profile(rule(["mkdir"])))
    two = seccomp.compile(profile(rule(["mkdir"]), architectures=[
        "SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        flags=["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
               "SECCOMP_FILTER_FLAG_SPEC_ALLOW"]))
    assert len(two.bpf) > len(one.bpf)
    assert two.flags == (lib.SECCOMP_FILTER_FLAG_TSYNC | lib.SECCOMP_FILTER_FLAG_LOG
                         | lib.SECCOMP_FILTER_FLAG_SPEC_ALLOW)


def test_log_flag_and_log_action_load(tmp_path):
    program = seccomp.compile(profile(rule(["getppid"], "SCMP_ACT_LOG"),
                                      flags=["SECCOMP_FILTER_FLAG_LOG"]))
    status, result = run_filtered(program, lambda _fd: os.getppid())
    assert result == os.getpid()


def test_no_default_action_and_no_syscalls_is_no_seccomp():
    assert seccomp.compile({}) is None
    assert seccomp.compile({"architectures": ["SCMP_ARCH_X86_64"]}) is None


@pytest.mark.parametrize("config, message", [
    (profile(default="SCMP_ACT_NOPE"),
     'linux.seccomp.defaultAction: "SCMP_ACT_NOPE" is not a seccomp action'),
    ({"syscalls": [rule(["mkdir"])]}, "linux.seccomp.defaultAction: is required"),
    (profile(rule(["mkdir"], "SCMP_ACT_DENY")),
     'linux.seccomp.syscalls[0].action: "SCMP_ACT_DENY" is not a seccomp action'),
    (profile(rule(["mkdir"], args=[{"index": 0, "value": 1, "op": "SCMP_CMP_XX"}])),
     'linux.seccomp.syscalls[0].args[0].op: "SCMP_CMP_XX" is not a seccomp operator'),
    (profile(rule(["mkdir"], args=[{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}])),
     "linux.seccomp.syscalls[0].args[0].index: must be an integer from 0 to 5"),
    (profile(architectures=["SCMP_ARCH_PDP11"]),
     'linux.seccomp.architectures[0]: "SCMP_ARCH_PDP11" is not an architecture libseccomp'),
    (profile(architectures=["x86_64"]),
     'linux.seccomp.architectures[0]: "x86_64" is not a seccomp architecture (SCMP_ARCH_*)'),
    (profile(flags=["SECCOMP_FILTER_FLAG_NEW_LISTENER"]),
     'linux.seccomp.flags[0]: "SECCOMP_FILTER_FLAG_NEW_LISTENER" is not a seccomp filter flag'),
    (profile(rule(["mkdir"], errnoRet=70000)),
     "linux.seccomp.syscalls[0].errnoRet: must be an integer from 0 to 65535"),
    (profile(rule([])), "linux.seccomp.syscalls[0].names: must be a non-empty array"),
    (profile(default="SCMP_ACT_NOTIFY"),
     "linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action"),
    (profile(rule(["read", "write"], "SCMP_ACT_NOTIFY"), listenerPath="/x"),
     "linux.seccomp.syscalls[0].names[1]: SCMP_ACT_NOTIFY cannot be used for the write syscall"),
    (profile(rule(["mkdir"], "SCMP_ACT_NOTIFY")),
     "linux.seccomp.listenerPath: is required when an action is SCMP_ACT_NOTIFY"),
    ([], "linux.seccomp: must be an object"),
    (profile(architectures=["SCMP_ARCH_X86", "SCMP_ARCH_S390X"]),
     'linux.seccomp.architectures[1]: "SCMP_ARCH_S390X" cannot share a filter with this host'),
])
def test_bad_profiles_name_the_path(config, message):
    with pytest.raises(errors.InvalidArgument) as e:
        seccomp.compile(config)
    assert str(e.value).startswith("config.json: " + message)


def test_notify_with_tsync_asks_for_tsync_esrch():
    program = seccomp.compile(profile(rule(["mkdir"], "SCMP_ACT_NOTIFY"), listenerPath="/x",
                                      flags=["SECCOMP_FILTER_FLAG_TSYNC"]))
    assert program.notify and program.listener_path == "/x"
    assert program.flags == lib.SECCOMP_FILTER_FLAG_TSYNC | lib.SECCOMP_FILTER_FLAG_TSYNC_ESRCH


def test_notify_sends_the_listener_fd_and_the_agent_answers(tmp_path):
    listener = str(tmp_path / "agent.sock")
    program = seccomp.compile(profile(rule(["mkdir", "mkdirat"], "SCMP_ACT_NOTIFY"),
                                      listenerPath=listener, listenerMetadata="meta=1"))
    assert program.notify and program.listener_metadata == "meta=1"
    agent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    agent.bind(listener)
    agent.listen(1)
    agent.settimeout(20)
    state = {"ociVersion": "1.2.0", "id": "c1", "status": "creating", "pid": 0,
             "bundle": "/b", "annotations": {"a": "b"}}

    def child(fd):
        seccomp.send_to_listener(listener, fd, dict(state, pid=os.getpid()), "meta=1")
        os.close(fd)
        return errno_of(os.mkdir, str(tmp_path / "denied"))

    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        agent.close()
        try:
            fd = seccomp.load_filter(program.bpf,
                                     program.flags | lib.SECCOMP_FILTER_FLAG_NEW_LISTENER)
            os.write(w, json.dumps(child(fd)).encode())
            os._exit(0)
        except BaseException as e:
            os.write(w, repr(e).encode())
            os._exit(1)
    os.close(w)
    notify_fd = None
    try:
        conn, _ = agent.accept()
        fds = array.array("i")
        msg, ancdata, _flags, _ = conn.recvmsg(65536, socket.CMSG_SPACE(fds.itemsize))
        conn.close()
        for level, kind, data in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(data[:len(data) - len(data) % fds.itemsize])
        assert len(fds) == 1
        notify_fd = fds[0]
        doc = json.loads(msg)
        assert doc == {"ociVersion": "1.2.0", "fds": ["seccompFd"], "pid": pid,
                       "metadata": "meta=1", "state": dict(state, pid=pid)}
        assert os.readlink("/proc/self/fd/%d" % notify_fd) == "anon_inode:seccomp notify"
        # struct seccomp_notif: id, pid, flags, then seccomp_data (nr, arch, ip, args[6])
        notif = bytearray(80)
        fcntl.ioctl(notify_fd, lib.SECCOMP_IOCTL_NOTIF_RECV, notif, True)
        nid, npid, _nflags, nr = struct.unpack_from("=QIIi", notif)
        assert npid == pid and nr in (83, 258)  # x86_64 mkdir, mkdirat
        resp = bytearray(struct.pack("=QqiI", nid, 0, -errno.EXDEV, 0))
        fcntl.ioctl(notify_fd, lib.SECCOMP_IOCTL_NOTIF_SEND, resp, True)
        with os.fdopen(r, "rb") as f:
            result = f.read()
        _, status = os.waitpid(pid, 0)
    except BaseException:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        raise
    finally:
        agent.close()
        if notify_fd is not None:
            os.close(notify_fd)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, result
    assert json.loads(result) == errno.EXDEV
    assert not (tmp_path / "denied").exists()


def test_send_to_a_missing_listener_fails_clearly(tmp_path):
    with pytest.raises(errors.SystemFailure) as e:
        seccomp.send_to_listener(str(tmp_path / "none.sock"), 0, {"pid": 1})
    assert str(e.value).startswith("seccomp: connect to the listener %s: no such file"
                                   % (tmp_path / "none.sock"))


def test_process_state_from_hook_state_json():
    doc = seccomp.process_state(b'{"ociVersion": "1.2.0", "id": "x", "status": "creating", '
                                b'"pid": 9, "bundle": "/b"}', metadata="m")
    assert doc["pid"] == 9 and doc["metadata"] == "m" and doc["state"]["status"] == "creating"


def test_process_state_matches_runtime_spec():
    doc = seccomp.process_state({"ociVersion": "1.0.2", "id": "x", "status": "running",
                                 "pid": 5, "bundle": "/b"}, pid=7)
    assert doc == {"ociVersion": "1.0.2", "fds": ["seccompFd"], "pid": 7,
                   "state": {"ociVersion": "1.0.2", "id": "x", "status": "running",
                             "pid": 5, "bundle": "/b"}}


# -- property: any profile compiles or fails with a pyrunc error --------------------------

names = st.sampled_from(["read", "mkdir", "kill", "getppid", "openat", "no_such", "", "write",
                         "socket", "clone3"])
json_scalars = st.none() | st.booleans() | st.integers(-2, 2 ** 64) | st.text(max_size=4)
args = st.fixed_dictionaries({"index": st.integers(-1, 7) | json_scalars,
                              "value": st.integers(0, 2 ** 64) | json_scalars,
                              "op": st.sampled_from(model.SECCOMP_OPERATORS) | json_scalars},
                             optional={"valueTwo": st.integers(0, 2 ** 64 - 1)})
rules = st.fixed_dictionaries(
    {"names": st.lists(names, max_size=3) | json_scalars,
     "action": st.sampled_from(model.SECCOMP_ACTIONS) | json_scalars},
    optional={"errnoRet": st.integers(0, 70000) | json_scalars,
              "args": st.lists(args, max_size=3) | json_scalars})
profiles = st.fixed_dictionaries(
    {"defaultAction": st.sampled_from(model.SECCOMP_ACTIONS) | json_scalars},
    optional={"defaultErrnoRet": st.integers(0, 70000),
              "architectures": st.lists(st.sampled_from(model.SECCOMP_ARCHES) | json_scalars,
                                        max_size=2),
              "flags": st.lists(st.sampled_from(model.SECCOMP_FLAGS) | json_scalars, max_size=2),
              "listenerPath": st.text(max_size=4) | json_scalars,
              "syscalls": st.lists(rules, max_size=3) | json_scalars})


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(profiles)
def test_any_profile_compiles_or_fails_with_a_pyrunc_error(config):
    try:
        program = seccomp.compile(config)
    except errors.PyruncError as e:
        assert "\n" not in str(e)
        return
    if program is not None:
        assert len(program.bpf) % 8 == 0 and len(program.bpf) > 0


def test_wait_killable_recv_is_kept_only_with_a_listener():
    flag = ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]
    plain = seccomp.compile(profile(rule(["mkdir"]), flags=flag))
    assert plain.flags == 0
    notify = seccomp.compile(profile(rule(["mkdir"], "SCMP_ACT_NOTIFY"), flags=flag,
                                     listenerPath="/x"))
    assert notify.flags == lib.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV


def test_features_in_runcs_shape():
    f = seccomp.features()
    assert f["enabled"] is True
    assert "SCMP_ACT_NOTIFY" in f["actions"] and "SCMP_CMP_MASKED_EQ" in f["operators"]
    assert "SCMP_ARCH_X86_64" in f["archs"] and "SCMP_ARCH_LOONGARCH64" not in f["archs"] \
        or seccomp.version() >= (2, 6, 0)
    assert set(f["supportedFlags"]) <= set(f["knownFlags"])
    assert "SECCOMP_FILTER_FLAG_LOG" in f["supportedFlags"]


# -- the -ENOSYS stub ----------------------------------------------------------------------

SURVIVAL = ["write", "exit", "exit_group", "brk", "mmap", "munmap", "mremap", "madvise",
            "futex", "rt_sigprocmask", "getppid"]


def raw_syscalls(numbers):
    """In the child: errno of syscall(n, -1, -1, -1) for each n (0 when it succeeds)."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long

    def body(_fd):
        out = []
        for n in numbers:
            ctypes.set_errno(0)
            rc = libc.syscall(ctypes.c_long(n), ctypes.c_long(-1), ctypes.c_long(-1),
                              ctypes.c_long(-1))
            out.append(ctypes.get_errno() if rc == -1 else 0)
        return out
    return body


@pytest.mark.parametrize("arches", [[], ["SCMP_ARCH_X86_64"],
                                    ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
                                    ["SCMP_ARCH_X86", "SCMP_ARCH_AARCH64"]])
def test_newer_syscalls_than_the_profile_get_enosys(arches):
    largest = max(lib.seccomp_syscall_resolve_name_arch(lib.SCMP_ARCH_X86_64, n.encode())
                  for n in SURVIVAL)
    getpid = lib.seccomp_syscall_resolve_name(b"getpid")
    pidfd_open = lib.seccomp_syscall_resolve_name(b"pidfd_open")
    assert getpid < largest < pidfd_open
    program = seccomp.compile(profile(rule(SURVIVAL, "SCMP_ACT_ALLOW"), default="SCMP_ACT_ERRNO",
                                      architectures=arches))
    status, result = run_filtered(program, raw_syscalls([getpid, pidfd_open, largest + 1]))
    assert os.WIFEXITED(status), status
    # listed range: the default action (EPERM); above it: ENOSYS
    assert result == [errno.EPERM, errno.ENOSYS, errno.ENOSYS]


@pytest.mark.parametrize("default, stubbed", [
    ({"defaultAction": "SCMP_ACT_ERRNO"}, True),
    ({"defaultAction": "SCMP_ACT_KILL_PROCESS"}, True),
    ({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": errno.ENOSYS}, False),
    ({"defaultAction": "SCMP_ACT_ALLOW"}, False),
    ({"defaultAction": "SCMP_ACT_LOG"}, False),
    ({"defaultAction": "SCMP_ACT_TRACE"}, False),
])
def test_the_stub_is_only_there_for_refusing_defaults(default, stubbed):
    config = dict(default, syscalls=[rule(["read"], "SCMP_ACT_KILL_THREAD")])
    program = seccomp.compile(config)
    stub = enosys.stub(lib, [lib.seccomp_arch_native()], ["read"])
    assert len(stub) > 0 and program.bpf.startswith(stub) == stubbed


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32",
                                 "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM", "SCMP_ARCH_MIPSEL",
                                 "SCMP_ARCH_PPC64LE", "SCMP_ARCH_RISCV64"]), max_size=5),
       st.lists(st.sampled_from(["read", "openat", "clone3", "close_range", "socket", "ioctl",
                                 "no_such", "io_uring_setup", "landlock_create_ruleset"]),
                max_size=6))
def test_stubbed_programs_pass_the_kernels_checks(arches, names):
    program = seccomp.compile(profile(rule(SURVIVAL + names, "SCMP_ACT_ALLOW"),
                                      default="SCMP_ACT_ERRNO", architectures=arches))
    status, result = run_filtered(program, lambda _fd: "loaded")
    assert os.WIFEXITED(status) and result == "loaded", result


def test_syscall_names():
    names = seccomp.syscall_names()
    assert names[:3] == ["read", "write", "open"] and "clone3" in names
    assert len(set(names)) == len(names)
    assert "socketcall" in seccomp.syscall_names("SCMP_ARCH_X86")
    with pytest.raises(errors.InvalidArgument):
        seccomp.syscall_names("SCMP_ARCH_PDP11")


def test_a_program_longer_than_the_kernel_loads_is_a_config_error(tmp_path):
    # per syscall a rule on three arguments, on three architectures: over 4096 instructions
    names = seccomp.syscall_names()[:200]
    config = profile(*[rule([n], args=[{"index": j, "value": i * 7 + j, "op": "SCMP_CMP_EQ"}
                                       for j in range(3)]) for i, n in enumerate(names)],
                     architectures=["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"])
    with pytest.raises(errors.InvalidArgument) as e:
        seccomp.compile(config, state_root=str(tmp_path))
    assert str(e.value).startswith("config.json: linux.seccomp: the program has ")
    assert str(e.value).endswith(" instructions, more than the 4096 the kernel loads")
    assert os.listdir(tmp_path) == []


def test_the_native_core_gets_no_program_its_16_bit_length_would_cut(tmp_path):
    """sock_fprog.len is 16 bits: 65537 instructions would load as 1. Refused before any
    child exists."""
    from pyrunc.libcontainer import process
    from pyrunc.libcontainer.plan import Namespace, Plan, Seccomp
    allow = struct.pack("=HBBI", 0x06, 0, 0, 0x7FFF0000)
    plan = Plan(container_id="t", bundle=str(tmp_path), rootfs=str(tmp_path), args=["true"],
                namespaces=[Namespace(0x00020000), Namespace(0x20000000)],
                seccomp=Seccomp(bpf=allow * 65537))
    with pytest.raises(errors.InvalidArgument, match="65537 instructions, more than the 4096"):
        process.spawn_init(plan, exec_fifo_fd=-1)
