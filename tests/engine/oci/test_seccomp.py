"""The default seccomp profile: what it blocks, checked from inside containers run by pyrunc and
runc with a static probe (seccomp_probe.c, compiled here with gcc -static), and its rules as
data (capabilities, architectures, kernel versions, docker's profile format).

A call the filter refuses fails with EPERM; the same call in a container with
``seccomp=unconfined`` and the same capabilities must then fail otherwise (or succeed), which
shows that the filter, not the kernel's own checks, refused it.
"""
import json
import os
import shutil
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyrunc.errors import InvalidArgument
from pyrunc.engine.oci import seccomp
from pyrunc.libcontainer.ocispec.fields import Invalid
from pyrunc.libcontainer.ocispec.spec import Seccomp

EPERM, EFAULT, EINVAL, EBADF, ENOSYS = 1, 14, 22, 9, 38
HERE = os.path.dirname(os.path.abspath(__file__))

# refused by the default profile with default capabilities, and answered otherwise by the
# kernel without a filter
# (unshare_user last: a process in a user namespace of its own cannot make another one)
BLOCKED = ("keyctl", "add_key", "request_key", "clone_user", "mount", "umount2", "bpf",
           "perf_event_open", "socket_vsock", "socket_alg", "personality_bad", "unshare_user")
ORDINARY = ("getpid", "clone", "socket_inet", "mkdir")


@pytest.fixture(scope="session")
def probe(tmp_path_factory):
    gcc = shutil.which("gcc")
    if not gcc:
        pytest.skip("gcc is not installed")
    out = str(tmp_path_factory.mktemp("probe") / "probe")
    r = subprocess.run([gcc, "-static", "-O", "-o", out, os.path.join(HERE, "seccomp_probe.c")],
                       capture_output=True, text=True)
    if r.returncode != 0 and "cannot find -lc" in r.stderr:
        pytest.skip("static libc (libc6-dev) is not installed")
    assert r.returncode == 0, r.stderr
    return out


def run_probe(oci_run, probe, calls, host_config=None):
    def install(target):
        shutil.copy(probe, target)
    r = oci_run.run({"Cmd": ["/probe"] + list(calls)}, host_config,
                    files={"/probe": install})
    return dict(line.split("=") for line in r.stdout.split())


def as_ints(results):
    return {k: int(v) for k, v in results.items()}


def test_default_profile_blocks(oci_run, probe):
    calls = ORDINARY + ("clone3",) + BLOCKED
    filtered = as_ints(run_probe(oci_run, probe, calls))
    free = as_ints(run_probe(oci_run, probe, calls, {"SecurityOpt": ["seccomp=unconfined"]}))
    for call in BLOCKED:
        assert filtered[call] == EPERM, (call, filtered)
        assert free[call] != EPERM, (call, free)
    for call in ORDINARY:
        assert filtered[call] == 0 and free[call] == 0, (call, filtered, free)
    # clone3 cannot be filtered on its flags: ENOSYS makes the C library use clone
    assert filtered["clone3"] == ENOSYS and free["clone3"] == 0


def test_cap_sys_admin_reenables(oci_run, probe):
    got = as_ints(run_probe(oci_run, probe, ("mount", "umount2", "unshare_mnt", "setns", "bpf",
                                             "clone3", "clone_user", "keyctl"),
                            {"CapAdd": ["SYS_ADMIN"]}))
    assert got["mount"] == EFAULT and got["umount2"] == EFAULT
    assert got["unshare_mnt"] == 0 and got["setns"] == EBADF and got["bpf"] == EINVAL
    assert got["clone3"] == 0 and got["clone_user"] == 0
    assert got["keyctl"] == EPERM            # the keyring stays closed whatever the caps


def test_never_allowed_even_with_all_caps(oci_run, probe):
    calls = ("keyctl", "add_key", "request_key", "kexec_load", "swapon")
    got = as_ints(run_probe(oci_run, probe, calls, {"CapAdd": ["ALL"]}))
    assert all(got[c] == EPERM for c in calls), got
    free = as_ints(run_probe(oci_run, probe, ("keyctl", "add_key", "request_key"),
                             {"CapAdd": ["ALL"], "SecurityOpt": ["seccomp=unconfined"]}))
    assert all(v != EPERM for v in free.values()), free


def test_privileged_has_no_filter(oci_run, probe):
    got = as_ints(run_probe(oci_run, probe, ("keyctl", "mount"), {"Privileged": True}))
    assert got == {"keyctl": 0, "mount": EFAULT}


# -- the profile as data ---------------------------------------------------------------------

def allowed(section):
    """Names some ALLOW entry of an OCI seccomp section lists (with or without conditions)."""
    out = set()
    for entry in section.get("syscalls", []):
        if entry["action"] == "SCMP_ACT_ALLOW":
            out.update(entry["names"])
    return out


ALL_CAPS = ["CAP_%s" % n for n in (
    "CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID SETUID SETPCAP "
    "LINUX_IMMUTABLE NET_BIND_SERVICE NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK IPC_OWNER "
    "SYS_MODULE SYS_RAWIO SYS_CHROOT SYS_PTRACE SYS_PACCT SYS_ADMIN SYS_BOOT SYS_NICE "
    "SYS_RESOURCE SYS_TIME SYS_TTY_CONFIG MKNOD LEASE AUDIT_WRITE AUDIT_CONTROL SETFCAP "
    "MAC_OVERRIDE MAC_ADMIN SYSLOG WAKE_ALARM BLOCK_SUSPEND AUDIT_READ PERFMON BPF "
    "CHECKPOINT_RESTORE").split()]


def test_never_listed_whatever_the_caps_and_arch():
    for arch in (("amd64", "SCMP_ARCH_X86_64"), ("arm64", "SCMP_ARCH_AARCH64"),
                 ("s390x", "SCMP_ARCH_S390X")):
        section = seccomp.to_oci(seccomp.default_profile(), ALL_CAPS, arch=arch, kernel=(6, 1))
        leaked = allowed(section) & {"add_key", "keyctl", "request_key", "kexec_load",
                                     "kexec_file_load", "swapon", "swapoff", "userfaultfd",
                                     "pivot_root", "io_uring_setup", "uselib", "_sysctl"}
        assert not leaked, (arch, leaked)


@pytest.mark.parametrize("cap, names", [
    ("CAP_SYS_ADMIN", {"mount", "umount2", "unshare", "setns", "bpf", "sethostname"}),
    ("CAP_SYS_MODULE", {"init_module", "finit_module", "delete_module"}),
    ("CAP_SYS_BOOT", {"reboot"}),
    ("CAP_SYS_TIME", {"settimeofday", "clock_settime"}),
    ("CAP_SYS_PTRACE", {"ptrace", "process_vm_readv"}),
    ("CAP_DAC_READ_SEARCH", {"open_by_handle_at"}),
    ("CAP_SYS_PACCT", {"acct"}),
    ("CAP_SYS_RAWIO", {"iopl", "ioperm"}),
])
def test_capability_reenables(cap, names):
    base = seccomp.to_oci(seccomp.default_profile(), [], arch=("amd64", "SCMP_ARCH_X86_64"),
                          kernel=(4, 4))
    more = seccomp.to_oci(seccomp.default_profile(), [cap], arch=("amd64", "SCMP_ARCH_X86_64"),
                          kernel=(4, 4))
    assert not names & allowed(base)
    assert names <= allowed(more)


def test_ptrace_needs_kernel_4_8_without_the_capability():
    profile = seccomp.default_profile()
    arch = ("amd64", "SCMP_ARCH_X86_64")
    assert "ptrace" not in allowed(seccomp.to_oci(profile, [], arch=arch, kernel=(4, 7, 9)))
    assert "ptrace" in allowed(seccomp.to_oci(profile, [], arch=arch, kernel=(4, 8)))


def test_architectures_and_arch_specific_calls():
    profile = seccomp.default_profile()
    amd = seccomp.to_oci(profile, [], arch=("amd64", "SCMP_ARCH_X86_64"), kernel=(6, 1))
    arm = seccomp.to_oci(profile, [], arch=("arm64", "SCMP_ARCH_AARCH64"), kernel=(6, 1))
    assert amd["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    assert arm["architectures"] == ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
    assert "arch_prctl" in allowed(amd) and "arch_prctl" not in allowed(arm)
    assert "set_tls" in allowed(arm) and "set_tls" not in allowed(amd)
    assert amd["defaultAction"] == "SCMP_ACT_ERRNO" and amd["defaultErrnoRet"] == EPERM


def test_clone_rules_follow_sys_admin():
    arch = ("amd64", "SCMP_ARCH_X86_64")
    base = seccomp.to_oci(seccomp.default_profile(), [], arch=arch, kernel=(6, 1))
    clone = [e for e in base["syscalls"] if "clone" in e["names"]]
    assert clone == [{"names": ["clone"], "action": "SCMP_ACT_ALLOW",
                      "args": [{"index": 0, "value": 0x7E020000, "valueTwo": 0,
                                "op": "SCMP_CMP_MASKED_EQ"}]}]
    s390 = seccomp.to_oci(seccomp.default_profile(), [], arch=("s390x", "SCMP_ARCH_S390X"),
                          kernel=(6, 1))
    assert [e["args"][0]["index"] for e in s390["syscalls"] if "clone" in e["names"]] == [1]


def test_docker_profile_format():
    profile = {
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [
            {"name": "read", "action": "SCMP_ACT_ALLOW"},
            {"names": ["write"], "action": "SCMP_ACT_ALLOW", "excludes": {"caps": ["CAP_KILL"]}},
            {"names": ["mount"], "action": "SCMP_ACT_ALLOW",
             "includes": {"caps": ["CAP_SYS_ADMIN"], "minKernel": "5.0"}},
            {"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38,
             "excludes": {"minKernel": "7.0"}},
        ]}
    got = seccomp.to_oci(seccomp.parse_profile(json.dumps(profile)), ["CAP_SYS_ADMIN"],
                         arch=("amd64", "SCMP_ARCH_X86_64"), kernel=(6, 1))
    assert got == {"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64"],
                   "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"},
                                {"names": ["write"], "action": "SCMP_ACT_ALLOW"},
                                {"names": ["mount"], "action": "SCMP_ACT_ALLOW"},
                                {"names": ["getpid"], "action": "SCMP_ACT_ERRNO",
                                 "errnoRet": 38}]}
    got = seccomp.to_oci(profile, ["CAP_KILL"], arch=("amd64", "SCMP_ARCH_X86_64"),
                         kernel=(4, 0))
    assert [e["names"] for e in got["syscalls"]] == [["read"], ["getpid"]]


@pytest.mark.parametrize("text, message", [
    ("{", "invalid JSON"),
    ("[]", "must be a JSON object"),
    ('{"syscalls": []}', "defaultAction"),
    ('{"defaultAction": "SCMP_ACT_NOPE"}', "SCMP_ACT_NOPE"),
    ('{"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64"], '
     '"archMap": [{"architecture": "SCMP_ARCH_X86_64"}]}', "use either 'architectures'"),
    ('{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"name": "a", "names": ["b"], '
     '"action": "SCMP_ACT_ALLOW"}]}', "use either 'name' or 'names'"),
    ('{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["a"], '
     '"action": "SCMP_ACT_ALLOW", "args": [{"index": 9, "value": 1, "op": "SCMP_CMP_EQ"}]}]}',
     "index"),
    ('{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": "read"}', "syscalls: must be an array"),
    ('{"defaultAction": "SCMP_ACT_ERRNO", "bogus": 1}', "unknown field"),
])
def test_bad_profiles(text, message):
    with pytest.raises(InvalidArgument) as e:
        seccomp.to_oci(seccomp.parse_profile(text), [], arch=("amd64", "SCMP_ARCH_X86_64"),
                       kernel=(6, 1))
    assert "seccomp profile" in str(e.value) and message in str(e.value)
    assert "\n" not in str(e.value)


def test_default_profile_round_trips_as_json():
    profile = seccomp.default_profile()
    assert seccomp.parse_profile(json.dumps(profile)) == profile
    assert seccomp.to_oci(json.loads(json.dumps(profile)), ["CAP_KILL"]) == \
        seccomp.to_oci(profile, ["CAP_KILL"])


JSON = st.recursive(st.none() | st.booleans() | st.integers(-2 ** 70, 2 ** 70) |
                    st.text(max_size=12),
                    lambda inner: st.lists(inner, max_size=4) |
                    st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=20)
KEYS = st.sampled_from(["defaultAction", "defaultErrnoRet", "architectures", "archMap",
                        "syscalls", "flags", "listenerPath", "names", "name", "action", "args",
                        "includes", "excludes", "caps", "arches", "minKernel", "errnoRet",
                        "index", "value", "op", "architecture", "subArchitectures"])
PROFILE_LIKE = st.recursive(
    JSON | st.sampled_from(["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "CAP_SYS_ADMIN", "amd64",
                            "SCMP_ARCH_X86_64", "4.8", "SCMP_CMP_EQ"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=5),
    max_leaves=30)


@settings(max_examples=400, deadline=None)
@given(doc=st.dictionaries(KEYS, PROFILE_LIKE, max_size=6))
def test_hostile_profiles_never_crash(doc):
    """Any document: InvalidArgument, or a section the runtime spec's model accepts."""
    try:
        section = seccomp.to_oci(doc, ["CAP_SYS_ADMIN"], arch=("amd64", "SCMP_ARCH_X86_64"),
                                 kernel=(6, 1))
    except InvalidArgument as e:
        assert "\n" not in str(e)
        return
    try:
        Seccomp.decode(section, "seccomp")
    except Invalid as e:        # pragma: no cover - the failure message says what slipped by
        raise AssertionError("accepted an invalid section: %s: %s" % (e.path, e.reason))
